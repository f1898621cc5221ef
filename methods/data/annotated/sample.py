"""One annotated image: what the loaders yield, built from a plain-dict record.

A loader lists RECORDS (plain dicts, cheap: paths and annotation values, no pixels), so an
engine can send them to workers; :func:`build_sample` turns one record into an
:class:`AnnotatedSample` (the image decoded, each object's mask drawn) when it is needed. Record
keys: ``format``, ``name`` (the image's name within the set), ``path`` (the image file),
``frame`` (``[width, height]`` the annotations were made on, or None), ``where`` (the annotation
file, for messages), ``objects`` (a list of ``{"class", "label", "box", "polygons", "rle",
"difficult", "iscrowd"}``), and for a mask folder ``mask_path`` and ``mask_classes``
(``[[value, class name, label], ...]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from methods.data.annotated.frames import box_mask, check_box, load_framed, read_index_mask, resize_nearest
from methods.data.annotated.options import AnnotatedOptions
from methods.data.annotated.polygon import rasterize_polygons
from methods.data.annotated.rle import decode_rle
from methods.errors import AnnotationError

__all__ = ["AnnotatedSample", "MaskSource", "build_sample"]

MaskSource = Literal["polygon", "rle", "mask_png", "box", "none"]


@dataclass(frozen=True, eq=False)
class AnnotatedSample:
    """One image with its objects, all on the grid of ``image``.

    Attributes:
        name: the image's name within the set (COCO ``file_name``, VOC file name, path under an
            ImageFolder or mask folder, ``/``-separated).
        path: the image file.
        image: (H, W, 3) uint8 RGB, downscaled to ``max_side`` if larger.
        labels: (K,) the model class index of each object.
        class_names: (K,) each object's class as the annotation names it.
        boxes: (K, 4) float64 ``(x0, y0, x1, y1)`` in ``image`` pixels (pixel edges); None for an
            ImageFolder (an image-level label has no box).
        masks: (K, H, W) bool; None for an ImageFolder.
        mask_source: (K,) where each mask came from: ``"polygon"``, ``"rle"``, ``"mask_png"``, or
            ``"box"`` (no mask was annotated: the box's pixels stand in); ``"none"`` for an
            ImageFolder.
        difficult: (K,) bool, Pascal VOC's ``difficult`` flag (False elsewhere).
        iscrowd: (K,) bool, COCO's ``iscrowd`` flag (False elsewhere).
        scale: ``(sx, sy)`` from the annotation frame to ``image`` (1.0 unless downscaled).
    """

    name: str
    path: str
    image: np.ndarray
    labels: tuple[int, ...]
    class_names: tuple[str, ...]
    boxes: np.ndarray | None
    masks: np.ndarray | None
    mask_source: tuple[MaskSource, ...]
    difficult: tuple[bool, ...]
    iscrowd: tuple[bool, ...]
    scale: tuple[float, float] = (1.0, 1.0)


def _object_mask(obj: dict, size: tuple[int, int], shape: tuple[int, int], scale, where: str):
    """(mask (h, w), its source) of one COCO / VOC object on the image grid."""
    h, w = shape
    if obj.get("rle") is not None:
        rle = obj["rle"]
        full = decode_rle(rle, where=where)
        if full.shape != (size[1], size[0]):
            raise AnnotationError(
                f"{where}: the RLE mask is {full.shape[0]}x{full.shape[1]} (rows x columns) but its image is "
                f"{size[1]}x{size[0]}"
            )
        return resize_nearest(full, h, w), "rle"
    if obj.get("polygons"):
        return rasterize_polygons(obj["polygons"], h, w, scale=scale, where=where), "polygon"
    return box_mask(obj["box"], h, w, scale), "box"


def _mask_objects(record: dict, size: tuple[int, int], opts: AnnotatedOptions) -> list[dict]:
    """The objects of a label-index mask PNG: one per class value present, in value order."""
    where = record["mask_path"]
    values = read_index_mask(record["mask_path"], opts.max_file_bytes, where)
    if values.shape != (size[1], size[0]):
        raise AnnotationError(
            f"the mask '{where}' is {values.shape[1]}x{values.shape[0]} (width x height) but its image "
            f"'{record['path']}' is {size[0]}x{size[1]}"
        )
    known = {int(v): (str(c), int(lab)) for v, c, lab in record["mask_classes"]}
    ignored = set(int(v) for v in record.get("mask_ignore", ()))
    objects = []
    for v in np.unique(values).tolist():
        if v in ignored:
            continue
        if v not in known:
            raise AnnotationError(
                f"the mask '{where}' has pixel value {v}, which classes.txt does not name (it names values "
                f"{sorted(known)}; background and 255 are ignored)"
            )
        name, label = known[v]
        objects.append({"class": name, "label": label, "value": v, "difficult": False, "iscrowd": False})
    record_max = opts.max_annotations
    if len(objects) > record_max:
        raise AnnotationError(f"the mask '{where}' has {len(objects)} classes, more than max_annotations={record_max}")
    for obj in objects:
        obj["full"] = values == obj["value"]
    return objects


def build_sample(record: dict, options: AnnotatedOptions | None = None) -> AnnotatedSample:
    """The :class:`AnnotatedSample` of one record (module docstring): the image decoded and each
    object's mask drawn on its grid.

    Raises:
        AnnotationError: a missing or unreadable image or mask, an image whose size is not the one
            the annotations give, a malformed mask.
    """
    opts = options or AnnotatedOptions()
    where = record.get("where") or record["path"]
    image, size = load_framed(record["path"], record.get("frame"), opts.max_side, where)
    h, w = image.shape[:2]
    scale = (w / size[0], h / size[1])
    if record["format"] == "imagefolder":
        obj = record["objects"][0]
        return AnnotatedSample(
            record["name"], record["path"], image, (int(obj["label"]),), (obj["class"],), None, None,
            ("none",), (False,), (False,), scale,
        )  # fmt: skip
    objects = _mask_objects(record, size, opts) if record["format"] == "masks" else record["objects"]
    masks = np.zeros((len(objects), h, w), dtype=bool)
    boxes = np.zeros((len(objects), 4), dtype=np.float64)
    sources: list[MaskSource] = []
    for k, obj in enumerate(objects):
        label = f"{where}, image {record['name']!r}, annotation {obj.get('id', k)} ({obj['class']})"
        if "full" in obj:  # a mask PNG: the class's pixels
            masks[k], src = resize_nearest(obj["full"], h, w), "mask_png"
            rows, cols = np.nonzero(obj["full"].any(axis=1))[0], np.nonzero(obj["full"].any(axis=0))[0]
            box = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
        else:
            box = check_box(obj["box"], size[0], size[1], opts.box_tolerance, label)
            masks[k], src = _object_mask(dict(obj, box=box), size, (h, w), scale, label)
        boxes[k] = (box[0] * scale[0], box[1] * scale[1], box[2] * scale[0], box[3] * scale[1])
        sources.append(src)  # type: ignore[arg-type]
    return AnnotatedSample(
        name=record["name"],
        path=record["path"],
        image=image,
        labels=tuple(int(o["label"]) for o in objects),
        class_names=tuple(str(o["class"]) for o in objects),
        boxes=boxes,
        masks=masks,
        mask_source=tuple(sources),
        difficult=tuple(bool(o.get("difficult", False)) for o in objects),
        iscrowd=tuple(bool(o.get("iscrowd", False)) for o in objects),
        scale=scale,
    )
