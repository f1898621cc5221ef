"""What a report shows, computed from a stored snapshot: rendered maps and deletion/insertion curves.

No HTML here: :mod:`methods.review.report` lays these out. The Review page of the dashboard can use the
same two functions so that what it shows and what a report shows cannot drift apart.

Curves are read from ``metrics["curves"]``: ``{method: {"deletion" | "insertion": curve}}`` where
``curve`` is ``{"fractions": [...], "scores": [...], "auc": float}`` (``auc`` optional; other keys
such as ``baseline`` or ``steps`` are ignored; :class:`methods.metrics.faithfulness.curves.Curve` fields fit) or a
bare list of scores (fractions then evenly spaced from 0 to 1). Entries in any other shape are
skipped, not fatal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from methods.data import samples
from methods.review.records import Snapshot
from methods.viz.normalize import as_mode, as_scope, normalize_many
from methods.viz.ranges import display_colormap, display_ranges
from methods.viz.render import heatmap, overlay

__all__ = [
    "CURVE_KINDS",
    "image_label",
    "RenderedMap",
    "StoredCurve",
    "display_ranges",
    "fit_image",
    "rendered_maps",
    "curves_of",
]

CURVE_KINDS: tuple[str, ...] = ("deletion", "insertion")


# ----------------------------------------------------------------------------- the image


def image_label(s: Snapshot) -> str:
    """What the snapshot's image is called: its file name or gallery name, from what was saved.

    Read from ``metrics["image_name"]`` (a file name a saver recorded) or else the saved view's
    ``image`` id (the dashboard's ``ViewState.to_dict()``): a gallery sample is named with its
    description, ``""`` is the model's default sample, ``"upload:<digest>"`` an uploaded file whose
    name was not saved, ``"scene:<seed>"`` a generated scene. ``""`` when nothing names it.

    Examples:
        >>> from types import SimpleNamespace as S
        >>> image_label(S(metrics={}, view={"image": "chelsea"}, model_id="efficientnet_lite0"))
        'chelsea (gallery sample): Chelsea the cat (scikit-image sample photo; ImageNet: a cat class)'
        >>> image_label(S(metrics={}, view={"image": ""}, model_id="efficientnet_lite0"))
        "chelsea (gallery sample, the model's default): Chelsea the cat (scikit-image sample photo; ImageNet: a cat class)"
        >>> image_label(S(metrics={}, view={"image": "upload:ab12"}, model_id="m"))
        'an uploaded file (upload:ab12; its file name was not saved)'
    """
    named = s.metrics.get("image_name") if isinstance(s.metrics, Mapping) else None
    if isinstance(named, str) and named.strip():
        return named.strip()
    view = s.view if isinstance(s.view, Mapping) else {}
    if "image" not in view:
        return ""
    image = str(view.get("image") or "")
    default = ""
    if not image:  # the dashboard's default: a scene for scene models, else the first photo
        wanted = "scenes_vgg" if str(s.model_id).startswith("scenes_") else "imagenet"
        image = next((x.name for x in samples.list_samples() if x.suggested_model == wanted), "")
        default = ", the model's default"
    if image.startswith("upload:"):
        return f"an uploaded file ({image}; its file name was not saved)"
    known = {x.name: x for x in samples.list_samples()}
    if image in known:
        return f"{image} (gallery sample{default}): {known[image].description}"
    return image


# ----------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class RenderedMap:
    """One stored map, normalized and drawn with the snapshot's settings."""

    method: str
    layer: str
    raw: np.ndarray  # (h, w) float32, as stored
    normalized: np.ndarray  # (h, w) float32
    value_range: tuple[float, float]  # the colormap's two ends
    heatmap: np.ndarray  # (H, W, 3) uint8
    overlay: np.ndarray  # (H, W, 3) uint8


def fit_image(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """Downscale (never upscale) so the long side is at most ``max_side``."""
    h, w = image.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def rendered_maps(
    snapshot: Snapshot, *, max_side: int | None = None, image: np.ndarray | None = None
) -> list[RenderedMap]:
    """Every stored map of ``snapshot`` as heatmap and overlay, in stored order.

    With ``scope="shared"`` the normalization scale is shared by all maps of the snapshot.

    Args:
        max_side: draw at the image downscaled to this long side (``None``: full size).
        image: the decoded image, if the caller already has it.
    """
    img = fit_image(snapshot.image_array() if image is None else image, max_side)
    keys = [(method, layer) for method, layers in snapshot.maps.items() for layer in layers]
    raws = [snapshot.maps[m][l] for m, l in keys]
    norm = snapshot.normalization
    mode, scope = as_mode(norm.mode), as_scope(norm.scope)  # stored as text
    normalized = normalize_many(raws, mode=mode, relu=norm.relu, scope=scope, percentiles=norm.percentiles)
    ranges = display_ranges(normalized, mode=norm.mode, relu=norm.relu, scope=norm.scope)
    cmap = display_colormap(snapshot.colormap, mode=norm.mode, relu=norm.relu)
    out = []
    for (method, layer), raw, n, vr in zip(keys, raws, normalized, ranges):
        out.append(
            RenderedMap(
                method=method,
                layer=layer,
                raw=raw,
                normalized=n,
                value_range=vr,
                heatmap=heatmap(n, img.shape[:2], colormap=cmap, value_range=vr),
                overlay=overlay(img, n, colormap=cmap, alpha=snapshot.alpha, value_range=vr),
            )
        )
    return out


# ----------------------------------------------------------------------------- curves


@dataclass(frozen=True)
class StoredCurve:
    """One deletion or insertion curve read from a snapshot's metrics."""

    method: str
    kind: str  # "deletion" | "insertion"
    fractions: tuple[float, ...]
    scores: tuple[float, ...]
    auc: float | None


def _floats(values: Any) -> tuple[float, ...] | None:
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        return None
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError):
        return None


def curves_of(metrics: Mapping[str, Any]) -> list[StoredCurve]:
    """The curves in ``metrics["curves"]`` (format in the module docstring); malformed ones skipped."""
    found = metrics.get("curves") if isinstance(metrics, Mapping) else None
    if not isinstance(found, Mapping):
        return []
    out = []
    for method, kinds in found.items():
        if not isinstance(kinds, Mapping):
            continue
        for kind in CURVE_KINDS:
            entry = kinds.get(kind)
            auc = None
            if isinstance(entry, Mapping):
                scores, fractions = _floats(entry.get("scores")), _floats(entry.get("fractions"))
                try:
                    auc = float(entry["auc"]) if entry.get("auc") is not None else None
                except (TypeError, ValueError):
                    auc = None
            else:
                scores, fractions = _floats(entry), None
            if not scores:
                continue
            if fractions is None:
                fractions = tuple(np.linspace(0.0, 1.0, len(scores)).tolist())
            if len(fractions) != len(scores):
                continue
            out.append(StoredCurve(method=str(method), kind=kind, fractions=fractions, scores=scores, auc=auc))
    return out
