"""Small annotated data sets written into a test's tmp_path: COCO, VOC, ImageFolder, mask folder.

Every picture is a seeded noise image, so nothing is read from disk but what the test wrote.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
from PIL import Image

CLASSES = ("tench", "Egyptian cat", "espresso", "wallaby")


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
