"""How a command names an annotated data set, and the one entry point that lists or loads it.

Spellings (``--images`` of ``gradlens evaluate`` and ``gradlens batch``):

=================================== =========================================================
``coco:ANN.json``                   COCO JSON; images under the JSON's folder
``coco:ANN.json:IMAGES_DIR``        COCO JSON; images under ``IMAGES_DIR``
``voc:DIR``                         Pascal VOC: ``DIR/Annotations/*.xml``, ``DIR/JPEGImages/``
``imagefolder:DIR``                 ``DIR/<class name>/<images>``
``masks:DIR``                       ``DIR/images/``, ``DIR/masks/<stem>.png``, ``DIR/classes.txt``
=================================== =========================================================
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from methods.data.annotated.coco import coco_records
from methods.data.annotated.imagefolder import imagefolder_records
from methods.data.annotated.maskfolder import maskfolder_records
from methods.data.annotated.options import AnnotatedOptions
from methods.data.annotated.sample import AnnotatedSample, build_sample
from methods.data.annotated.voc import voc_records
from methods.errors import OptionError

__all__ = ["FORMATS", "DatasetSpec", "parse_dataset", "is_dataset", "iter_records", "iter_annotated"]

Format = Literal["coco", "voc", "imagefolder", "masks"]
FORMATS: tuple[Format, ...] = ("coco", "voc", "imagefolder", "masks")
_SPELLING = "'coco:ANN.json[:IMAGES_DIR]', 'voc:DIR', 'imagefolder:DIR' or 'masks:DIR'"


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed data set name: its format, its path (the JSON for COCO, else the folder) and the
    COCO images root (None: the JSON's folder)."""

    format: Format
    path: pathlib.Path
    images_root: pathlib.Path | None = None

    def __str__(self) -> str:
        root = f":{self.images_root}" if self.images_root is not None else ""
        return f"{self.format}:{self.path}{root}"


def is_dataset(text: object) -> bool:
    """Whether ``text`` is spelled as an annotated data set (``coco:``, ``voc:`` ...).

    Examples:
        >>> is_dataset("coco:ann.json"), is_dataset("scenes:10"), is_dataset("photos/")
        (True, False, False)
    """
    return isinstance(text, str) and text.partition(":")[0] in FORMATS and ":" in text


def parse_dataset(text: str) -> DatasetSpec:
    """Parse a data set name (module docstring); the paths must exist.

    Raises:
        OptionError: an unknown format, an empty path, a missing file or folder.

    Examples:
        >>> parse_dataset("coco:/no/such.json")
        Traceback (most recent call last):
        ...
        methods.errors.OptionError: images='coco:/no/such.json': the COCO annotation file '/no/such.json' does not exist
    """
    head, _, rest = text.partition(":") if isinstance(text, str) else ("", "", "")
    if head not in FORMATS or not rest:
        raise OptionError(f"images={text!r} is not a data set; spell it {_SPELLING}")
    root = None
    if head == "coco":
        lower = rest.lower()
        cut = lower.find(".json:")
        if cut >= 0:
            rest, root = rest[: cut + 5], pathlib.Path(rest[cut + 6 :])
        path = pathlib.Path(rest)
        if not path.is_file():
            raise OptionError(f"images={text!r}: the COCO annotation file '{path}' does not exist")
        if root is not None and not root.is_dir():
            raise OptionError(f"images={text!r}: the images folder '{root}' does not exist")
        return DatasetSpec("coco", path, root)
    path = pathlib.Path(rest)
    if not path.is_dir():
        raise OptionError(f"images={text!r}: '{path}' is not a folder ({head}:DIR names a folder)")
    return DatasetSpec(head, path)


def iter_records(
    spec: DatasetSpec | str, class_names: Sequence[str], options: AnnotatedOptions | None = None
) -> Iterator[dict]:
    """The plain-dict records of a data set, in its order (:mod:`methods.data.annotated.sample`).

    Raises:
        AnnotationError: the data set is malformed or names classes the model does not have.
    """
    spec = parse_dataset(spec) if isinstance(spec, str) else spec
    opts = options or AnnotatedOptions()
    if spec.format == "coco":
        return coco_records(spec.path, class_names, opts, images_root=spec.images_root)
    loader = {"voc": voc_records, "imagefolder": imagefolder_records, "masks": maskfolder_records}[spec.format]
    return loader(spec.path, class_names, opts)


def iter_annotated(
    spec: DatasetSpec | str, class_names: Sequence[str], options: AnnotatedOptions | None = None
) -> Iterator[AnnotatedSample]:
    """The samples of a data set, ONE AT A TIME (each image decoded when it is reached).

    Args:
        spec: a :class:`DatasetSpec` or its spelling (``"coco:ann.json"`` ...).
        class_names: the model's class names (``LoadedModel.class_names``); annotation classes
            are matched to them (:mod:`methods.data.annotated.classes`).
        options: limits (:class:`AnnotatedOptions`).

    Raises:
        AnnotationError: a malformed data set, an unknown class (with the closest names), a
            missing image, a box outside its image.
        OptionError: a malformed spelling or a missing path.
    """
    opts = options or AnnotatedOptions()
    for record in iter_records(spec, class_names, opts):
        yield build_sample(record, opts)
