"""Files of the batch command: which images go in, where each output goes, and how a file is
written so that no reader ever sees half of it.

* :func:`find_images` — every regular, non-hidden file under a folder, recursively, sorted by its
  POSIX relative path (hidden folders and the output folder are left out); readability is decided
  later, by :func:`methods.data.images.load_image` in the worker;
* :func:`image_dir` — ``OUTDIR/<relative path of the image>/``: the whole relative path, file
  name and extension included, so ``a.jpg`` and ``a.png`` never share a folder;
* atomic writes — :func:`write_atomic` writes ``.<name>.<pid>-<random>.partial`` next to the
  target and ``os.replace`` s it onto the final name (atomic on POSIX and Windows): a killed run
  leaves at most hidden ``.partial`` files, which :func:`remove_partials` deletes on the next run;
  a file under its final name is always complete. (No ``fsync``: this protects against a killed
  process, not against a power cut.)
* :func:`prepare_out` — the output folder, checked before any work: not the images folder nor
  one that holds it (the outputs would be read back as inputs), not a file, and writable;
* :func:`quarantine` — a file that cannot be read is renamed to ``<name>.broken-<n>`` (kept for a
  look, never read again);
* :func:`read_labels` — the ``--targets`` label file.
"""

from __future__ import annotations

import io
import os
import pathlib
import uuid
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from methods.errors import InputError, OptionError

__all__ = [
    "VIEWS",
    "view_name",
    "PARTIAL_SUFFIX",
    "PROBLEMS",
    "prepare_out",
    "check_writable",
    "quarantine",
    "find_images",
    "image_dir",
    "write_atomic",
    "write_png",
    "write_npz",
    "read_npz",
    "remove_partials",
    "read_labels",
    "file_stamp",
]

PARTIAL_SUFFIX = ".partial"
PROBLEMS = "skipped.csv"
"""The skip report's name in the output folder."""

PNG_PARAMS = [
    cv2.IMWRITE_PNG_COMPRESSION,
    1,
    cv2.IMWRITE_PNG_STRATEGY,
    cv2.IMWRITE_PNG_STRATEGY_RLE,
    cv2.IMWRITE_PNG_FILTER,
    cv2.IMWRITE_PNG_FILTER_SUB,
]
"""zlib level 1, run-length matching, the "sub" row filter: on the four views of a scenes_vgg map
2.4x faster to encode than level 1 with the default strategy and filters (1.75 vs 4.13 ms CPU for
the four), for the same size (78.5 vs 79.2 KB). Lossless either way."""


def find_images(root: pathlib.Path, *, exclude: pathlib.Path | None = None) -> list[str]:
    """POSIX paths (relative to ``root``) of every regular, non-hidden file below it, sorted.

    Args:
        root: the ``--images`` folder.
        exclude: a folder to leave out (the output folder, when it is inside ``root``).

    Raises:
        OptionError: ``root`` is not a folder.
    """
    root = pathlib.Path(root)
    if not root.is_dir():
        raise OptionError(f"images={str(root)!r} is not a folder")
    skip = exclude.resolve() if exclude is not None else None
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = pathlib.Path(dirpath)
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and (skip is None or (here / d).resolve() != skip)]
        for name in filenames:
            path = here / name
            if not name.startswith(".") and path.is_file():
                found.append(path.relative_to(root).as_posix())
    return sorted(found)


def image_dir(out: pathlib.Path, rel: str) -> pathlib.Path:
    """The output folder of the image at relative path ``rel``: ``out / rel``.

    Examples:
        >>> image_dir(pathlib.Path("out"), "cats/a.jpg").as_posix()
        'out/cats/a.jpg'
    """
    return pathlib.Path(out, *rel.split("/"))


def file_stamp(path: pathlib.Path) -> tuple[int, int]:
    """``(size in bytes, mtime in ns)`` of a file: what tells a changed input from the one done before."""
    st = os.stat(path)
    return int(st.st_size), int(st.st_mtime_ns)


def write_atomic(path: pathlib.Path, write: Callable[[io.BufferedWriter], None] | bytes) -> None:
    """Write ``path`` through a hidden ``.partial`` file and an atomic rename.

    ``write`` is the bytes, or a function writing to the open binary file. The parent folder is
    created. If writing fails the partial file is removed and the error re-raised; ``path`` is
    either the old complete file or the new complete file, never a mix.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}")
    try:
        with open(tmp, "wb") as fh:
            if isinstance(write, (bytes, bytearray, memoryview)):
                fh.write(write)
            else:
                write(fh)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def prepare_out(images: pathlib.Path, out: pathlib.Path, keep: Sequence[str] = ()) -> None:
    """Create the output folder and check, before any work, that the run can write there.

    Args:
        images: the ``--images`` folder.
        out: the ``--out`` folder (created with its parents when missing).
        keep: names the run writes at the top of ``out`` (the manifest, the skip report): each must
            not be a folder already.

    Raises:
        OptionError: ``out`` is ``images`` or holds it (every output would be read back as an input
            next run), is a file, or cannot be created or written (the OS's reason).
    """
    images, out = pathlib.Path(images), pathlib.Path(out)
    where, src = out.resolve(), images.resolve()
    if src == where or src.is_relative_to(where):
        raise OptionError(
            f"out={str(out)!r} is the images folder or holds it (images={str(images)!r}): the outputs would be "
            "read back as inputs; choose an output folder outside the images folder"
        )
    if out.exists() and not out.is_dir():
        raise OptionError(f"out={str(out)!r} is a file, not a folder; give a folder (it is created when missing)")
    for name in keep:
        if (out / name).is_dir():
            raise OptionError(
                f"out={str(out)!r} holds a folder {name!r} where the run writes its file {name!r}; move it away"
            )
    check_writable(out, f"out={str(out)!r}")


def check_writable(folder: pathlib.Path, what: str) -> None:
    """Create ``folder`` (with its parents) and write and delete a hidden probe file in it.

    Raises:
        OptionError: ``"<what> cannot be written: <the OS's reason>"``.
    """
    folder = pathlib.Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        write_atomic(probe, b"")
        probe.unlink(missing_ok=True)
    except OSError as exc:
        raise OptionError(f"{what} cannot be written: {exc.strerror or exc}") from None


def quarantine(path: pathlib.Path) -> pathlib.Path:
    """Rename a file that cannot be read to ``<name>.broken-<n>`` (the first free ``n``); returns the
    new path. The file is kept for a look and never read again."""
    path = pathlib.Path(path)
    n = 1
    while path.with_name(f"{path.name}.broken-{n}").exists():
        n += 1
    dest = path.with_name(f"{path.name}.broken-{n}")
    os.replace(path, dest)
    return dest


def write_png(path: pathlib.Path, image: np.ndarray) -> None:
    """An (H, W) gray or (H, W, 3) RGB uint8 image as a lossless PNG (atomically)."""
    arr = np.ascontiguousarray(image)
    bgr = arr if arr.ndim == 2 else cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".png", bgr, PNG_PARAMS)
    if not ok:  # pragma: no cover  (OpenCV encodes any uint8 array)
        raise InputError(f"OpenCV could not encode an image of shape {arr.shape}, dtype {arr.dtype} as {path}")
    write_atomic(path, data.tobytes())


def write_npz(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
    """Arrays in ONE compressed ``.npz`` (``np.savez_compressed``), written atomically."""
    # allow_pickle=True is numpy's default, named so that no array's key can be taken for it
    write_atomic(path, lambda fh: np.savez_compressed(fh, allow_pickle=True, **arrays))


def read_npz(path: pathlib.Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` (``{}`` when the file does not exist)."""
    if not pathlib.Path(path).is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def remove_partials(out: pathlib.Path) -> int:
    """Delete the ``.partial`` files an interrupted run left under ``out``; returns how many."""
    n = 0
    if not pathlib.Path(out).is_dir():
        return 0
    for dirpath, _, filenames in os.walk(out):
        for name in filenames:
            if name.startswith(".") and name.endswith(PARTIAL_SUFFIX):
                pathlib.Path(dirpath, name).unlink(missing_ok=True)
                n += 1
    return n


def read_labels(path: pathlib.Path, class_names: Sequence[str]) -> dict[str, int]:
    """The label file of ``--targets``: a CSV with the columns ``image`` (path relative to the
    images folder, ``/``-separated) and ``label`` (a class index or an exact class name).

    Returns:
        relative path -> class index.

    Raises:
        OptionError: no such file, missing columns, or labels that are not a class (the message
            lists the first bad rows and the valid range).
    """
    import pandas as pd

    path = pathlib.Path(path)
    if not path.is_file():
        raise OptionError(f"targets={str(path)!r} is neither 'top1' nor an existing label file (CSV: image,label)")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, OSError) as exc:
        raise OptionError(f"targets={str(path)!r} is not a readable CSV: {exc}") from None
    if not {"image", "label"} <= set(df.columns):
        raise OptionError(
            f"the label file {str(path)!r} needs the columns 'image' and 'label'; it has {list(df.columns)}"
        )
    index = {name: i for i, name in enumerate(class_names)}
    out: dict[str, int] = {}
    bad: list[str] = []
    for image, label in zip(df["image"], df["label"]):
        label = label.strip()
        if label.lstrip("-").isdigit() and 0 <= int(label) < len(class_names):
            out[image.strip().replace("\\", "/")] = int(label)
        elif label in index:
            out[image.strip().replace("\\", "/")] = index[label]
        else:
            bad.append(f"{image}: {label!r}")
    if bad:
        raise OptionError(
            f"the label file {str(path)!r} has labels that are not classes of the model "
            f"(indices 0..{len(class_names) - 1} or exact class names): {', '.join(bad[:5])}"
            + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        )
    return out


VIEWS: tuple[str, ...] = ("grayscale", "heatmap", "overlay")


def view_name(method: str, layer: str, view: str) -> str:
    """The file name of one view of one map.

    Examples:
        >>> view_name("gradcam", "features.20", "overlay")
        'gradcam__features.20__overlay.png'
    """
    return f"{method}__{layer}__{view}.png"
