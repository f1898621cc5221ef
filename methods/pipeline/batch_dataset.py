"""An annotated data set as the batch command's images and labels.

``run_batch(images="coco:ann.json" | "voc:DIR" | "imagefolder:DIR" | "masks:DIR")`` explains each
image for the class its annotations name: the batch writes one set of maps per image, so an image
whose annotations name SEVERAL classes is skipped with the reason (``gradlens evaluate`` explains
every class of an image). The image files are the records' own; every record's path is
``root / name`` (COCO: the images root; VOC: ``JPEGImages``; an ImageFolder: its folder; a mask
folder: its ``images``), so the batch's relative names and output folders are the set's names. A
mask folder's classes are in its masks, which the batch does not read: its images are explained
for their top-1 class only when the set is given as a plain folder.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

from methods.data.annotated import AnnotatedOptions, DatasetSpec, iter_records
from methods.errors import OptionError

__all__ = ["dataset_root", "dataset_images"]


def dataset_root(spec: DatasetSpec) -> pathlib.Path:
    """The folder every image path of ``spec`` is relative to."""
    if spec.format == "coco":
        return spec.images_root if spec.images_root is not None else spec.path.parent
    if spec.format == "voc":
        return spec.path / "JPEGImages"
    if spec.format == "masks":
        return spec.path / "images"
    return spec.path


def dataset_images(
    spec: DatasetSpec, class_names: Sequence[str], options: AnnotatedOptions | None = None
) -> tuple[pathlib.Path, list[str], dict[str, int], list[tuple[str, str]]]:
    """``(root, relative names, {name: label}, skipped (name, reason))`` of an annotated set.

    Raises:
        OptionError: a mask folder (its classes are in the masks: use ``gradlens evaluate``).
        AnnotationError: the set is malformed or names classes the model does not have.
    """
    if spec.format == "masks":
        raise OptionError(
            f"images='{spec}': the batch explains one class per image, and a mask folder's classes are only in its "
            "masks; use 'gradlens evaluate' on it, or give the batch its images folder"
        )
    root, rels, labels, skipped = dataset_root(spec), [], {}, []
    for record in iter_records(spec, class_names, options or AnnotatedOptions()):
        name = record["name"]
        classes = dict.fromkeys((int(o["label"]), str(o["class"])) for o in record["objects"])
        if len({lab for lab, _ in classes}) > 1:
            listed = ", ".join(c for _, c in classes)
            skipped.append((name, f"its annotations name several classes ({listed}); the batch explains one class "
                                  "per image: 'gradlens evaluate' explains each"))  # fmt: skip
            continue
        rels.append(name)
        labels[name] = next(iter(classes))[0]
    return root, rels, labels, skipped
