"""Where the evaluation command's images come from: ``scenes:N``, ``scenes2:N`` or a folder.

* ``scenes:N``  — N single-object scenes ``make_scene(EVAL_SINGLE_START + seed + i)`` (seeds from
  10_000_000, never used in training), with the object's class and mask;
* ``scenes2:N`` — N two-object scenes ``make_scene(EVAL_TWO_START + seed + i, n_objects=2)``
  (seeds from 11_000_000), with both classes and masks;
* a folder — every regular, non-hidden file in it (not recursive, sorted by name) that
  :func:`methods.data.images.load_image` can read; the others are collected as (name, reason) and
  skipped, never a crash.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from methods.data.images import load_image
from methods.data.scenes import make_scene
from methods.errors import GradLensError, OptionError
from methods.models.scenes.evaluation import EVAL_SINGLE_START, EVAL_TWO_START

__all__ = ["Sample", "Source", "parse_images", "samples", "sample_items", "load_sample"]


@dataclass(frozen=True)
class Sample:
    """One image to evaluate.

    Attributes:
        name: file name or ``scene:<seed>``.
        image: (H, W, 3) uint8.
        labels: true class of each object (empty without ground truth).
        masks: (K, H, W) bool object masks, one per label (None without ground truth).
        seed: the scene's seed (None for files).
    """

    name: str
    image: np.ndarray
    labels: tuple[int, ...] = ()
    masks: np.ndarray | None = None
    seed: int | None = None


@dataclass(frozen=True)
class Source:
    """A parsed ``--images``: ``kind`` is ``"scenes"``, ``"scenes2"`` or ``"folder"``; ``count`` the
    number of scenes or of candidate files."""

    kind: str
    count: int
    folder: pathlib.Path | None = None


def parse_images(spec: str) -> Source:
    """Parse ``--images``: ``scenes:N``, ``scenes2:N`` or a folder path.

    Raises:
        ValueError: a malformed ``scenes`` spec, or a path that is not a folder.
    """
    if not isinstance(spec, str) or not spec:
        raise OptionError(f"images must be 'scenes:N', 'scenes2:N' or a folder path; got {spec!r}")
    head, sep, tail = spec.partition(":")
    if sep and head in ("scenes", "scenes2"):
        try:
            n = int(tail)
        except ValueError:
            n = 0
        if n < 1:
            raise OptionError(f"images={spec!r}: the count after '{head}:' must be an int >= 1, e.g. '{head}:200'")
        return Source(head, n)
    path = pathlib.Path(spec)
    if not path.is_dir():
        raise OptionError(f"images={spec!r} is neither 'scenes:N', 'scenes2:N' nor an existing folder")
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    return Source("folder", len(files), path)


def samples(source: Source, seed: int, skipped: list[tuple[str, str]]) -> Iterator[Sample]:
    """Yield the samples of ``source`` in order; unreadable files are appended to ``skipped`` as
    ``(file name, reason)`` and left out. ``seed`` offsets the scene seeds."""
    if source.kind in ("scenes", "scenes2"):
        two = source.kind == "scenes2"
        start = (EVAL_TWO_START if two else EVAL_SINGLE_START) + seed
        for i in range(source.count):
            sc = make_scene(start + i, n_objects=2 if two else 1)
            yield Sample(f"scene:{sc.seed}", sc.image, tuple(sc.labels), sc.masks, sc.seed)
        return
    assert source.folder is not None
    for path in sorted(p for p in source.folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            image = load_image(path)
        except (GradLensError, OSError, ValueError) as exc:
            skipped.append((path.name, str(exc)))
            continue
        yield Sample(path.name, image)


def sample_items(source: Source, seed: int, *, exclude: pathlib.Path | None = None) -> list[dict]:
    """The samples of ``source`` as plain dicts an engine can send to a worker (nothing is read
    yet): ``{"index", "name", "kind": "scene" | "file", "seed", "n_objects" | "path"}``.
    ``exclude`` is a file left out of a folder (the evaluation's own output table)."""
    if source.kind in ("scenes", "scenes2"):
        two = source.kind == "scenes2"
        start = (EVAL_TWO_START if two else EVAL_SINGLE_START) + seed
        return [
            {"index": i, "name": f"scene:{start + i}", "kind": "scene", "seed": start + i, "n_objects": 2 if two else 1}
            for i in range(source.count)
        ]
    assert source.folder is not None
    files = sorted(p for p in source.folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if exclude is not None:
        files = [p for p in files if p.resolve() != pathlib.Path(exclude).resolve()]
    return [{"index": i, "name": p.name, "kind": "file", "path": str(p)} for i, p in enumerate(files)]


def load_sample(item: dict) -> Sample:
    """The :class:`Sample` of one :func:`sample_items` entry (a scene is re-made from its seed).

    Raises:
        ImageError, OSError: the file cannot be read.
    """
    if item["kind"] == "scene":
        sc = make_scene(int(item["seed"]), n_objects=int(item["n_objects"]))
        return Sample(f"scene:{sc.seed}", sc.image, tuple(sc.labels), sc.masks, sc.seed)
    return Sample(item["name"], load_image(item["path"]))
