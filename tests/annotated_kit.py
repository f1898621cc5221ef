"""Small annotated data sets written into a test's tmp_path (COCO, VOC, ImageFolder, mask folder, the
quokka as imgaug names it) and the tiny classifier over their classes.

Every picture is a seeded noise image, so nothing is read from disk but what the test wrote.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
from PIL import Image

from methods.data.quokka import quokka_box, quokka_polygon
from methods.models import LoadedModel
from tiny_models import GapNet

CLASSES = ("tench", "Egyptian cat", "espresso", "wallaby")


def tiny_gap(input_size: tuple[int, int] = (48, 64)) -> LoadedModel:
    """A seeded GapNet over :data:`CLASSES` (class names matched by the loaders), input ``input_size``."""
    return LoadedModel(
        name="tiny_gap",
        model=GapNet(classes=len(CLASSES), seed=0).eval(),
        input_size=input_size,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        class_names=CLASSES,
        default_layer="features.4",
        source="checkpoint",
    )


def write_quokka_coco(path: pathlib.Path) -> pathlib.Path:
    """The quokka as a COCO set at ``path``: its box and its polygon, the class named "animal" as
    imgaug does (so a class map is needed to reach the model's "wallaby")."""
    x0, y0, x1, y1 = quokka_box()
    doc = {
        "images": [{"id": 1, "file_name": "quokka.jpg", "width": 960, "height": 643}],
        "categories": [{"id": 1, "name": "animal"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "segmentation": [quokka_polygon()],
            }
        ],
    }
    path.write_text(json.dumps(doc))
    return path


def picture(path: pathlib.Path, width: int, height: int, seed: int = 0) -> pathlib.Path:
    """A (height, width) RGB noise PNG (or JPEG by suffix) at ``path``."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    return path


def encode_string(counts: list[int]) -> str:
    """A naive reference encoder of COCO's compressed RLE string (written from the format's
    description, for round trips): delta to the count two back from the 4th on, 5-bit groups."""
    out = []
    for i, c in enumerate(counts):
        x = c - counts[i - 2] if i > 2 else c
        more = True
        while more:
            ch = x & 0x1F
            x >>= 5
            more = not ((x == 0 and not ch & 0x10) or (x == -1 and ch & 0x10))
            out.append(chr(ch + (0x20 if more else 0) + 48))
    return "".join(out)


def write_coco(root: pathlib.Path, images: list[dict], annotations: list[dict], categories=None) -> pathlib.Path:
    """``root/ann.json`` with the given entries (categories default to CLASSES with ids 1..)."""
    cats = categories if categories is not None else [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]
    path = root / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": cats}))
    return path


def voc_xml(filename: str, width: int, height: int, objects: list[tuple]) -> str:
    """A VOC annotation; objects are (name, xmin, ymin, xmax, ymax, difficult)."""
    objs = "".join(
        f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{a}</xmin><ymin>{b}</ymin>"
        f"<xmax>{c}</xmax><ymax>{e}</ymax></bndbox></object>"
        for n, a, b, c, e, d in objects
    )
    return (
        f"<annotation><filename>{filename}</filename><size><width>{width}</width><height>{height}</height>"
        f"<depth>3</depth></size>{objs}</annotation>"
    )
