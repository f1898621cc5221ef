"""COCO object annotations (``instances_*.json``): boxes, polygon masks and RLE masks.

Format (Lin et al., ECCV 2014, https://arxiv.org/abs/1405.0312; cocodataset.org "Data format"):
a JSON object with ``images`` (``id``, ``file_name``, ``width``, ``height``), ``categories``
(``id``, ``name``) and ``annotations`` (``image_id``, ``category_id``, ``bbox`` = ``[x, y, w, h]``
from the top-left corner, ``segmentation`` = a list of flat polygons or an RLE dict, ``iscrowd``).

Images are listed in the file's ``images`` order; an image without annotations is not part of the
set (it has nothing to score a map against). ``file_name`` is relative to ``images_root`` (default:
the JSON's own folder). The JSON is parsed whole (bounded by ``max_file_bytes``); its records keep
each image's own annotations only.

Deviation: none from the format; ``keypoints`` and ``area`` are not used (the mask's own pixels are).
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

from methods.data.annotated.classes import ClassMatcher
from methods.data.annotated.files import inside, read_bounded
from methods.data.annotated.frames import check_box
from methods.data.annotated.options import AnnotatedOptions
from methods.errors import AnnotationError

__all__ = ["coco_records"]

_EXPECTED = (
    "a COCO object: {'images': [{'id', 'file_name', 'width', 'height'}], 'annotations': "
    "[{'image_id', 'category_id', 'bbox': [x, y, w, h], 'segmentation'?}], 'categories': [{'id', 'name'}]}"
)


def _load(path: pathlib.Path, opts: AnnotatedOptions) -> dict:
    data = read_bounded(path, opts.max_file_bytes, "COCO annotation")
    try:
        doc = json.loads(data)
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"'{path}' is not UTF-8 text ({exc.reason}); expected {_EXPECTED}") from exc
    except json.JSONDecodeError as exc:
        raise AnnotationError(
            f"'{path}' is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}; expected {_EXPECTED}"
        ) from exc
    if not isinstance(doc, dict):
        raise AnnotationError(f"'{path}' holds a JSON {type(doc).__name__}; expected {_EXPECTED}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise AnnotationError(f"'{path}' has no '{key}' list; expected {_EXPECTED}")
    return doc


def _need(entry: object, keys: tuple[str, ...], where: str) -> dict:
    if not isinstance(entry, dict) or any(k not in entry for k in keys):
        got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise AnnotationError(f"{where}: expected an object with {list(keys)}; got {got}")
    return entry


def _geometry(ann: dict, where: str) -> tuple[list | None, dict | None]:
    seg = ann.get("segmentation")
    if seg is None or seg == []:
        return None, None
    if isinstance(seg, dict):
        return None, seg
    if isinstance(seg, list) and all(isinstance(p, list) for p in seg):
        return seg, None
    raise AnnotationError(
        f"{where}: 'segmentation' must be a list of flat polygons [[x1, y1, ...], ...] or an RLE "
        f"{{'size': [h, w], 'counts': ...}}; got {type(seg).__name__}"
    )


def coco_records(
    path: str | pathlib.Path,
    class_names,
    options: AnnotatedOptions | None = None,
    *,
    images_root: str | pathlib.Path | None = None,
) -> Iterator[dict]:
    """The records (:mod:`methods.data.annotated.sample`) of a COCO JSON, one per annotated image.

    Every check that needs no pixels runs here: the structure, each category name against the
    model's classes, each box against its image's ``width`` x ``height``, the image file's presence.

    Raises:
        AnnotationError: malformed JSON or entries, an unknown category id or class, a box outside
            its image, a missing image file, more annotations on an image than ``max_annotations``.
    """
    opts = options or AnnotatedOptions()
    path = pathlib.Path(path)
    root = pathlib.Path(images_root) if images_root is not None else path.parent
    doc = _load(path, opts)
    match = ClassMatcher(class_names, opts.class_map)
    cats = {}
    for i, c in enumerate(doc["categories"]):
        c = _need(c, ("id", "name"), f"'{path}', categories[{i}]")
        cats[c["id"]] = str(c["name"])
    per_image: dict[object, list[tuple[int, dict]]] = {}
    for i, a in enumerate(doc["annotations"]):
        per_image.setdefault(
            _need(a, ("image_id", "category_id"), f"'{path}', annotations[{i}]")["image_id"], []
        ).append((i, a))
    del doc["annotations"]
    n = 0
    for i, img in enumerate(doc["images"]):
        img = _need(img, ("id", "file_name", "width", "height"), f"'{path}', images[{i}]")
        anns = per_image.get(img["id"], [])
        if not anns:
            continue
        if n >= opts.max_images:
            return
        where = f"'{path}', image {img['file_name']!r}"
        w, h = img["width"], img["height"]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (w, h)):
            raise AnnotationError(f"{where}: width and height must be positive ints; got {w!r} x {h!r}")
        if len(anns) > opts.max_annotations:
            raise AnnotationError(
                f"{where} has {len(anns)} annotations, more than max_annotations={opts.max_annotations}"
            )
        file = inside(root, str(img["file_name"]), where)
        if not file.is_file():
            raise AnnotationError(f"{where}: the image file '{file}' does not exist (images_root is '{root}')")
        objects = []
        for j, a in anns:
            aw = f"'{path}', annotations[{j}] (image {img['file_name']!r})"
            if a["category_id"] not in cats:
                raise AnnotationError(
                    f"{aw}: category_id {a['category_id']!r} is not among the categories {sorted(cats)}"
                )
            name = cats[a["category_id"]]
            polygons, rle = _geometry(a, aw)
            bbox = a.get("bbox")
            if not (isinstance(bbox, list) and len(bbox) == 4):
                raise AnnotationError(f"{aw}: 'bbox' must be [x, y, width, height]; got {bbox!r}")
            box = check_box([bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1] + bbox[3]] if all(
                isinstance(v, (int, float)) for v in bbox) else bbox, w, h, opts.box_tolerance, aw)  # fmt: skip
            objects.append(
                {
                    "id": a.get("id", j),
                    "class": name,
                    "label": match(name, aw),
                    "box": list(box),
                    "polygons": polygons,
                    "rle": rle,
                    "difficult": False,
                    "iscrowd": bool(a.get("iscrowd", 0)),
                }
            )
        n += 1
        yield {
            "format": "coco",
            "name": str(img["file_name"]),
            "path": str(file),
            "frame": [w, h],
            "where": str(path),
            "objects": objects,
        }
