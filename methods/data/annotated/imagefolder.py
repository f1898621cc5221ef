"""An ImageFolder: ``DIR/<class name>/<images>``, each sub-folder's name the label of its images.

The layout of ``torchvision.datasets.ImageFolder``: the class folders are the sub-folders of
``DIR`` (sorted by name, hidden ones left out), and every image file under a class folder
(recursively; :data:`methods.data.annotated.files.IMAGE_SUFFIXES`) belongs to that class. A folder
name is matched to the model's class names (:mod:`methods.data.annotated.classes`), NOT taken as
an index in sorted order the way torchvision numbers them: a model's numbering is its own.

There is no box or mask: localization needs COCO, VOC or a mask folder; an ImageFolder gives the
explained class (and a per-class view).
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

from methods.data.annotated.classes import ClassMatcher
from methods.data.annotated.files import image_files
from methods.data.annotated.options import AnnotatedOptions
from methods.errors import AnnotationError

__all__ = ["imagefolder_records"]


def imagefolder_records(
    folder: str | pathlib.Path, class_names, options: AnnotatedOptions | None = None
) -> Iterator[dict]:
    """The records (:mod:`methods.data.annotated.sample`) of an ImageFolder, class by class.

    Raises:
        AnnotationError: not a folder, no class sub-folder, or a folder name the model does not know
            (checked for every class folder before the first record).
    """
    opts = options or AnnotatedOptions()
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise AnnotationError(f"imagefolder:{folder} is not a folder")
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise AnnotationError(f"imagefolder:{folder} has no class sub-folders; expected DIR/<class name>/<images>")
    match = ClassMatcher(class_names, opts.class_map)
    labels = {c.name: match(c.name, f"imagefolder:{folder}, folder '{c.name}/'") for c in classes}
    n = 0
    for c in classes:
        for file in image_files(c):
            if n >= opts.max_images:
                return
            n += 1
            obj = {"class": c.name, "label": labels[c.name], "box": None, "polygons": None, "rle": None}
            yield {
                "format": "imagefolder",
                "name": file.relative_to(folder).as_posix(),
                "path": str(file),
                "frame": None,
                "where": str(file),
                "objects": [obj],
            }
