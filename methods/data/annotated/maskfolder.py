"""A mask folder: images beside label-index mask PNGs, with the classes the mask values stand for.

Layout::

    DIR/images/<path>/<stem>.<ext>     the pictures (any image format, recursively)
    DIR/masks/<path>/<stem>.png        one label-index mask per picture, same relative path and stem
    DIR/classes.txt                    line v (from 0) = the class of pixel value v

A mask is a one-channel PNG (mode P, L, I or I;16: a palette PNG like Pascal VOC's
``SegmentationClass`` gives its palette INDICES, not its colours) of the picture's size. A line
``background`` (any case) or ``-`` in ``classes.txt`` marks a value that is not an object, and
value 255 is always ignored (VOC's "void" outline). Each other value present in a mask is one
object: its pixels the mask, their bounding box the box. Every class ``classes.txt`` names is
matched to the model's classes before the first image is read.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

from methods.data.annotated.classes import ClassMatcher
from methods.data.annotated.files import image_files, read_bounded
from methods.data.annotated.options import AnnotatedOptions
from methods.errors import AnnotationError

__all__ = ["maskfolder_records", "IGNORED_VALUE", "BACKGROUND_NAMES"]

IGNORED_VALUE = 255
BACKGROUND_NAMES = ("background", "-")


def _classes(folder: pathlib.Path, class_names, opts: AnnotatedOptions) -> tuple[list, list]:
    path = folder / "classes.txt"
    try:
        text = read_bounded(path, opts.max_file_bytes, "classes").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"'{path}' is not UTF-8 text: {exc.reason}") from exc
    except AnnotationError as exc:
        raise AnnotationError(
            f"masks:{folder} needs DIR/classes.txt (line v = the class of mask value v): {exc}"
        ) from exc
    match = ClassMatcher(class_names, opts.class_map)
    known, ignore = [], [IGNORED_VALUE]
    for v, line in enumerate(text.splitlines()):
        name = line.strip()
        if not name:
            raise AnnotationError(
                f"'{path}', line {v + 1} is empty; write 'background' or '-' for a value that is not an object"
            )
        if name.lower() in BACKGROUND_NAMES:
            ignore.append(v)
        else:
            known.append([v, name, match(name, f"'{path}', line {v + 1}")])
    return known, ignore


def maskfolder_records(
    folder: str | pathlib.Path, class_names, options: AnnotatedOptions | None = None
) -> Iterator[dict]:
    """The records (:mod:`methods.data.annotated.sample`) of a mask folder, in image path order.
    The objects of each image come from its mask when the sample is built.

    Raises:
        AnnotationError: no ``images/`` folder, no or malformed ``classes.txt``, a class the model
            does not know, an image without its mask.
    """
    opts = options or AnnotatedOptions()
    folder = pathlib.Path(folder)
    images, masks = folder / "images", folder / "masks"
    if not images.is_dir() or not masks.is_dir():
        raise AnnotationError(f"masks:{folder} needs the folders DIR/images/ and DIR/masks/ (and DIR/classes.txt)")
    known, ignore = _classes(folder, class_names, opts)
    n = 0
    for file in image_files(images):
        if n >= opts.max_images:
            return
        rel = file.relative_to(images)
        mask = (masks / rel).with_suffix(".png")
        if not mask.is_file():
            raise AnnotationError(f"the image '{file}' has no mask: expected '{mask}'")
        n += 1
        yield {
            "format": "masks",
            "name": rel.as_posix(),
            "path": str(file),
            "frame": None,
            "where": str(mask),
            "objects": [],
            "mask_path": str(mask),
            "mask_classes": known,
            "mask_ignore": ignore,
        }
