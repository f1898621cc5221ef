"""The objects of the Detection page, without streamlit: a detector's boxes and a segmenter's regions,
drawn on the image, and how much of a map falls on the chosen one.

* :func:`detected_objects`: torchvision's detection output (one image) -> :class:`Obj` rows, in
  the model's order (torchvision sorts by score), so ``rank`` is what the ``box`` URL field names.
* :func:`segmented_objects`: a segmenter's (K, H, W) logits -> one row per predicted class other
  than the background (its pixels, their box, its share of the image), largest first.
* :func:`draw_objects`: the boxes with "label score" tags drawn on the image; the chosen one thick
  and yellow, the rest thin and white.
* :func:`energy_inside`: the share of the map's positive energy inside a region (the energy-based
  pointing game of Score-CAM, Wang et al. 2020, arXiv 1910.01279:
  :func:`methods.metrics.localization.energy_pointing_game`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from methods.metrics.localization import energy_pointing_game

__all__ = ["Obj", "detected_objects", "segmented_objects", "box_region", "draw_objects", "energy_inside"]

MIN_SCORE = 0.5  # detections below it are listed only when nothing scores higher


@dataclass(frozen=True)
class Obj:
    """One object a model reported.

    Attributes:
        rank: its index in the model's output (detections) or among the predicted classes (segments).
        label: the model's label id (index into its class names; 0 = background).
        name: the label's name.
        score: the detection's score, or the class's share of the image's pixels.
        box: ``(x0, y0, x1, y1)`` in the model input's pixels.
        mask: (H, W) bool pixels of a segmented class; None for a detection.
    """

    rank: int
    label: int
    name: str
    score: float
    box: tuple[float, float, float, float]
    mask: np.ndarray | None = None

    def text(self) -> str:
        x0, y0, x1, y1 = self.box
        what = f"{self.score:.2f}" if self.mask is None else f"{self.score:.1%} of the image"
        return f"#{self.rank + 1} {self.name} {what} · box ({x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f})"


def _name(names: Sequence[str], label: int) -> str:
    return str(names[label]) if 0 <= label < len(names) else f"label {label}"


def detected_objects(det: dict, names: Sequence[str], *, min_score: float = MIN_SCORE) -> list[Obj]:
    """The detections of one image (``{"boxes", "labels", "scores"}``, tensors or arrays) scoring at
    least ``min_score`` (all of them when none does), in the model's order."""
    boxes = np.asarray(det["boxes"], dtype=np.float64).reshape(-1, 4)
    labels = np.asarray(det["labels"]).reshape(-1).astype(int)
    scores = np.asarray(det["scores"], dtype=np.float64).reshape(-1)
    rows = [
        Obj(i, int(labels[i]), _name(names, int(labels[i])), float(scores[i]), tuple(float(v) for v in boxes[i]))  # type: ignore[arg-type]
        for i in range(len(scores))
    ]
    kept = [r for r in rows if r.score >= min_score]
    return kept or rows


def segmented_objects(logits: np.ndarray, names: Sequence[str], *, min_pixels: int = 4) -> list[Obj]:
    """One row per predicted class other than 0 (the background) with at least ``min_pixels``
    pixels, largest first; ``label`` is the class, ``mask`` its pixels, ``box`` their extent."""
    pred = np.asarray(logits).argmax(axis=0)  # (H, W)
    h, w = pred.shape
    found = []
    for label in np.unique(pred):
        if label == 0:
            continue
        mask = pred == label
        n = int(mask.sum())
        if n < min_pixels:
            continue
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        box = (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))
        found.append((n, int(label), mask, box))
    found.sort(key=lambda t: (-t[0], t[1]))
    return [Obj(i, lab, _name(names, lab), n / (h * w), box, mask) for i, (n, lab, mask, box) in enumerate(found)]


def box_region(box: Sequence[float], size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the pixels whose centres lie in ``box`` (x0, y0, x1, y1)."""
    h, w = size
    x0, y0, x1, y1 = box
    cy, cx = np.arange(h) + 0.5, np.arange(w) + 0.5
    return ((cy >= y0) & (cy < y1))[:, None] & ((cx >= x0) & (cx < x1))[None, :]


def energy_inside(saliency: np.ndarray, region: np.ndarray) -> float:
    """Share of the map's positive energy inside ``region``: ``sum(relu(m) in R) / sum(relu(m))``,
    the map upsampled (bilinear) to the region's grid first; 0 when the map has no positive value.

    Examples:
        >>> m = np.array([[1.0, 3.0], [0.0, -2.0]])
        >>> energy_inside(m, np.array([[False, True], [False, False]]))
        0.75
    """
    return float(energy_pointing_game(np.asarray(saliency, dtype=np.float64), np.asarray(region, dtype=bool)))


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def draw_objects(image: np.ndarray, objects: Sequence[Obj], chosen: int | None, *, min_side: int = 512) -> np.ndarray:
    """``image`` enlarged to at least ``min_side`` (nearest) with every object's box and a
    "#rank name score" tag; the chosen one (by rank) thick and yellow, drawn last."""
    h, w = image.shape[:2]
    k = max(1, int(np.ceil(min_side / max(1, min(h, w)))))
    big = Image.fromarray(np.ascontiguousarray(image)).resize((w * k, h * k), Image.NEAREST)
    draw = ImageDraw.Draw(big)
    font = _font(max(12, 4 * k))
    order = [o for o in objects if o.rank != chosen] + [o for o in objects if o.rank == chosen]
    for o in order:
        on = o.rank == chosen
        colour = (255, 221, 0) if on else (255, 255, 255)
        x0, y0, x1, y1 = (v * k for v in o.box)
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], outline=(0, 0, 0), width=(5 if on else 3))
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], outline=colour, width=(3 if on else 1))
        tag = f"#{o.rank + 1} {o.name} {o.score:.2f}" if o.mask is None else f"#{o.rank + 1} {o.name}"
        tx, ty = x0 + 2, max(0, y0 - font.size - 6) if hasattr(font, "size") else max(0, y0 - 16)
        bbox = draw.textbbox((tx, ty), tag, font=font)
        draw.rectangle([bbox[0] - 2, bbox[1] - 2, bbox[2] + 2, bbox[3] + 2], fill=(0, 0, 0))
        draw.text((tx, ty), tag, fill=colour, font=font)
    return np.asarray(big)
