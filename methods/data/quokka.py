"""The quokka: one real annotated photo that ships offline (from imgaug 0.4.0, MIT).

``assets/quokka/quokka.jpg`` (960 x 643) and ``quokka_annotations.json`` (one box labelled
"animal", seven keypoints, one 39-point polygon around the animal) are copied unchanged from the
imgaug 0.4.0 wheel; its MIT notice is in ``assets/quokka/LICENSE`` and ``NOTICE``.

Its class: ImageNet-1k has no quokka. The quokka (*Setonix brachyurus*) is a small macropod, the
family of kangaroos and wallabies, and is commonly called a small wallaby, so its ImageNet class
here is ``"wallaby"`` (index 104). EfficientNet-Lite0 (evaluation crop) calls it wombat 0.35,
wallaby 0.05 (second), marmot 0.03 — measured on this machine; a model's disagreement is part of
what the photo shows.

imgaug's box (148, 50, 550, 642) is not the polygon's extent (143, 50, 548, 641): the outline
reaches 5 px left of the box. Both are shipped as imgaug wrote them.

Its mask is the polygon rasterised by :func:`methods.data.annotated.rasterize_polygons` (pixel
centres inside, COCO's continuous coordinates). Deviation: imgaug draws its polygons with pixel
centres at integer coordinates, half a pixel from COCO's convention used here; the area differs
from the polygon's shoelace area by the outline only (tests check it).
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np

from methods.data.annotated.polygon import rasterize_polygons
from methods.data.images import load_image

__all__ = [
    "QUOKKA_CLASS",
    "QUOKKA_CLASS_ID",
    "quokka_path",
    "load_quokka",
    "quokka_annotations",
    "quokka_polygon",
    "quokka_box",
    "quokka_mask",
    "quokka_dataset",
]

QUOKKA_CLASS = "wallaby"
QUOKKA_CLASS_ID = 104


def quokka_path(name: str = "quokka.jpg") -> str:
    """The path of a file of the quokka assets (``quokka.jpg``, ``quokka_annotations.json``)."""
    return str(resources.files("methods.data").joinpath("assets", "quokka", name))


def load_quokka() -> np.ndarray:
    """The photo, (643, 960, 3) uint8 RGB, a fresh array.

    Examples:
        >>> load_quokka().shape
        (643, 960, 3)
    """
    return load_image(quokka_path())


def quokka_annotations() -> dict:
    """imgaug's annotation file as it ships (``bounding_boxes``, ``keypoints``, ``polygons``)."""
    with open(quokka_path("quokka_annotations.json"), encoding="utf-8") as f:
        return json.load(f)


def quokka_polygon() -> list[float]:
    """The outline as a COCO flat polygon ``[x1, y1, x2, y2, ...]`` (39 points).

    Examples:
        >>> len(quokka_polygon()) // 2
        39
    """
    points = quokka_annotations()["polygons"][0]["keypoints"]
    return [float(v) for p in points for v in (p["x"], p["y"])]


def quokka_box() -> tuple[float, float, float, float]:
    """The box ``(x0, y0, x1, y1)`` imgaug gives: (148, 50, 550, 642)."""
    b = quokka_annotations()["bounding_boxes"][0]
    return (float(b["x1"]), float(b["y1"]), float(b["x2"]), float(b["y2"]))


def quokka_mask() -> np.ndarray:
    """(1, 643, 960) bool: the polygon's pixels (module docstring).

    Examples:
        >>> int(quokka_mask().sum()) > 150_000
        True
    """
    return rasterize_polygons([quokka_polygon()], 643, 960)[None]


def quokka_dataset() -> str:
    """The quokka as an annotated data set for the commands: ``coco:<assets>/quokka_coco.json`` (one
    image, one object of class ``wallaby``, its 39-point outline as the mask; derived from imgaug's
    file, see ``assets/quokka/NOTICE``).

    Examples:
        >>> quokka_dataset().startswith("coco:") and quokka_dataset().endswith("quokka_coco.json")
        True
    """
    return "coco:" + quokka_path("quokka_coco.json")
