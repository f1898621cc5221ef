"""Pascal VOC detection annotations: one XML file per image, boxes with a ``difficult`` flag.

Layout (the VOCdevkit's): ``DIR/Annotations/*.xml`` and the images in ``DIR/JPEGImages/``. Each
XML is ``<annotation>`` with ``<filename>``, ``<size><width><height>`` and ``<object>`` entries of
``<name>``, ``<difficult>`` (0/1, optional) and ``<bndbox><xmin><ymin><xmax><ymax>``. Everingham
et al., "The PASCAL Visual Object Classes (VOC) Challenge", IJCV 2010,
http://host.robots.ox.ac.uk/pascal/VOC/.

VOC box corners are 1-based pixel INDICES, both inclusive: ``xmin = 1`` is the first column and
``xmax`` the last column the box covers. They become pixel edges ``(xmin - 1, ymin - 1, xmax, ymax)``.
Files are read in name order, one at a time, each bounded by ``max_file_bytes``; Python's expat
refuses entity-expansion bombs and resolves no external entities.

Deviation: none; ``difficult`` objects are kept (and flagged), as are ``truncated`` ones.
"""

from __future__ import annotations

import pathlib
import xml.etree.ElementTree as ET
from collections.abc import Iterator

from methods.data.annotated.classes import ClassMatcher
from methods.data.annotated.files import inside, read_bounded
from methods.data.annotated.frames import check_box
from methods.data.annotated.options import AnnotatedOptions
from methods.errors import AnnotationError

__all__ = ["voc_records"]

_EXPECTED = (
    "<annotation><filename>...</filename><size><width/><height/></size><object><name/><difficult/>"
    "<bndbox><xmin/><ymin/><xmax/><ymax/></bndbox></object>...</annotation>"
)


def _text(node: ET.Element, tag: str, where: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise AnnotationError(f"{where}: no <{tag}> in <{node.tag}>; expected {_EXPECTED}")
    return child.text.strip()


def _number(node: ET.Element, tag: str, where: str) -> float:
    text = _text(node, tag, where)
    try:
        return float(text)
    except ValueError:
        raise AnnotationError(f"{where}: <{tag}> must be a number; got {text!r}") from None


def _parse(xml: pathlib.Path, opts: AnnotatedOptions) -> ET.Element:
    data = read_bounded(xml, opts.max_file_bytes, "VOC annotation")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        line, col = exc.position
        raise AnnotationError(
            f"'{xml}' is not well-formed XML (line {line}, column {col}): {exc}; expected {_EXPECTED}"
        ) from None
    if root.tag != "annotation":
        raise AnnotationError(f"'{xml}': the root element is <{root.tag}>; expected {_EXPECTED}")
    return root


def voc_records(folder: str | pathlib.Path, class_names, options: AnnotatedOptions | None = None) -> Iterator[dict]:
    """The records (:mod:`methods.data.annotated.sample`) of a VOC folder, one per XML with objects.

    Raises:
        AnnotationError: no ``Annotations`` folder, malformed XML, an unknown class, a box outside
            its image, a missing image file, more objects than ``max_annotations``.
    """
    opts = options or AnnotatedOptions()
    folder = pathlib.Path(folder)
    ann_dir, img_dir = folder / "Annotations", folder / "JPEGImages"
    if not ann_dir.is_dir():
        raise AnnotationError(
            f"voc:{folder} has no 'Annotations' folder; expected the VOCdevkit layout DIR/Annotations/*.xml and "
            "DIR/JPEGImages/"
        )
    match = ClassMatcher(class_names, opts.class_map)
    n = 0
    for xml in sorted(p for p in ann_dir.iterdir() if p.suffix.lower() == ".xml" and not p.name.startswith(".")):
        if n >= opts.max_images:
            return
        root, where = _parse(xml, opts), f"'{xml}'"
        size = root.find("size")
        if size is None:
            raise AnnotationError(f"{where}: no <size>; expected {_EXPECTED}")
        w, h = int(_number(size, "width", where)), int(_number(size, "height", where))
        if w <= 0 or h <= 0:
            raise AnnotationError(f"{where}: <size> is {w}x{h}; width and height must be positive")
        filename = root.findtext("filename", default="").strip() or xml.stem + ".jpg"
        objs = root.findall("object")
        if not objs:
            continue
        if len(objs) > opts.max_annotations:
            raise AnnotationError(f"{where} has {len(objs)} objects, more than max_annotations={opts.max_annotations}")
        file = inside(img_dir, filename, where)
        if not file.is_file():
            raise AnnotationError(f"{where}: the image file '{file}' does not exist")
        objects = []
        for k, obj in enumerate(objs):
            ow = f"{where}, object {k}"
            name = _text(obj, "name", ow)
            bb = obj.find("bndbox")
            if bb is None:
                raise AnnotationError(f"{ow} ({name}): no <bndbox>; expected {_EXPECTED}")
            x0, y0, x1, y1 = (_number(bb, t, ow) for t in ("xmin", "ymin", "xmax", "ymax"))
            box = check_box(
                [x0 - 1, y0 - 1, x1, y1],
                w,
                h,
                opts.box_tolerance,
                f"{ow} ({name}, VOC corners {x0:g},{y0:g},{x1:g},{y1:g})",
            )
            difficult = (obj.findtext("difficult", default="0") or "0").strip()
            objects.append(
                {
                    "id": k,
                    "class": name,
                    "label": match(name, ow),
                    "box": list(box),
                    "polygons": None,
                    "rle": None,
                    "difficult": difficult not in ("0", ""),
                    "iscrowd": False,
                }
            )
        n += 1
        yield {
            "format": "voc",
            "name": filename,
            "path": str(file),
            "frame": [w, h],
            "where": str(xml),
            "objects": objects,
        }
