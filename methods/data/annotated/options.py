"""The bounds of an annotated data set: how many images, objects and bytes GradLens will read."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from methods._internal.checks import check_int, check_number
from methods.errors import AnnotationError, OptionError

__all__ = ["AnnotatedOptions", "read_class_map"]


@dataclass(frozen=True)
class AnnotatedOptions:
    """Limits and settings of the annotated loaders (keyword-only, bounds checked at construction).

    Attributes:
        max_images: read at most this many images, the first ones in the set's order (1 to 10_000_000).
        max_annotations: an image with more objects than this is refused (1 to 10_000): a
            map scored against part of the objects would be wrong.
        max_file_bytes: an annotation file (COCO JSON, VOC XML, classes.txt) or mask PNG larger
            than this is refused before it is read (1 KiB to 4 GiB; default 256 MiB). A COCO JSON
            is parsed whole; the images and masks are decoded one at a time.
        max_side: images are downscaled so the long side is at most this
            (:func:`methods.data.images.load_image`); boxes and masks follow (16 to 16384).
        box_tolerance: a box may stick out of its image by this many pixels (rounding in
            annotation tools) and is clipped; further out is an error (0 to 16).
        class_map: annotation class name -> model class name, for names that differ
            (``{"animal": "wallaby"}``); applied before matching.
    """

    max_images: int = 100_000
    max_annotations: int = 100
    max_file_bytes: int = 256 * 2**20
    max_side: int = 2048
    box_tolerance: float = 1.0
    class_map: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        check_int("max_images", self.max_images, 1, 10_000_000)
        check_int("max_annotations", self.max_annotations, 1, 10_000)
        check_int("max_file_bytes", self.max_file_bytes, 1024, 4 * 2**30)
        check_int("max_side", self.max_side, 16, 16384)
        check_number("box_tolerance", self.box_tolerance, minimum=0.0, maximum=16.0)
        pairs = self.class_map.items() if isinstance(self.class_map, Mapping) else self.class_map
        try:
            pairs = tuple((str(a), str(b)) for a, b in pairs if isinstance(a, str) and isinstance(b, str))
        except (TypeError, ValueError):
            pairs = None  # type: ignore[assignment]
        if pairs is None or len(pairs) != len(self.class_map):
            raise OptionError(
                f"class_map must map annotation class names to model class names (a dict of str -> str); got {self.class_map!r}"
            )
        object.__setattr__(self, "class_map", pairs)

    def as_dict(self) -> dict:
        """Plain values (an engine sends them to its workers with each item)."""
        d = asdict(self)
        d["class_map"] = [list(p) for p in self.class_map]
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> AnnotatedOptions:
        """The inverse of :meth:`as_dict`."""
        d = dict(d)
        d["class_map"] = tuple(tuple(p) for p in d.get("class_map", ()))
        return cls(**d)


def read_class_map(path: str | os.PathLike[str], max_bytes: int = 2**20) -> dict[str, str]:
    """A class map from a JSON file: ``{"annotation name": "model class name" | "#index", ...}``.

    Raises:
        AnnotationError: missing, larger than ``max_bytes``, not JSON, or not an object of strings.
    """
    from methods.data.annotated.files import read_bounded

    data = read_bounded(path, max_bytes, "class map")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AnnotationError(
            f'the class map \'{path}\' is not JSON ({exc}); expected {{"cat": "tabby", ...}}'
        ) from exc
    if not isinstance(doc, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in doc.items()):
        raise AnnotationError(
            f"the class map '{path}' must be a JSON object of annotation name -> model class name (or '#index')"
        )
    return doc
