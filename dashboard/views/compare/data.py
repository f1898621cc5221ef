"""The Compare page without streamlit: which models, which class each explains, matched depths,
agreement numbers, and the pictures and figures of a comparison.

Every number comes from the library: the block layers are :func:`methods.block_layers`, the rows
:func:`methods.matched_layers` (model 1 against each other model, so one row holds one layer per
model), the agreement :func:`methods.map_agreement` / :func:`methods.metrics.agreement.maps.agreement_matrix`
on ONE grid for the whole comparison (the finest map grid of the compared models, at most
:data:`methods.metrics.agreement.maps.MAX_GRID` a side), on the RAW maps: normalization is display only.
A comparison is a list of :class:`Side` (one per model); :func:`to_bundle` / :func:`from_bundle`
turn it into the :class:`~dashboard.core.services.MapBundle` a snapshot stores, and back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

import methods
from dashboard.core import services
from dashboard.core.params import is_upload
from dashboard.core.services import MapBundle
from dashboard.core.state import ViewState
from methods import models as zoo
from methods.cams.core.blocks import block_layers
from methods.cams.core.layers import LayerInfo
from methods.metrics.agreement.maps import (
    MAX_GRID,
    METRICS,
    Agreement,
    AgreementMatrix,
    agreement_matrix,
    map_agreement,
)
from methods.metrics.agreement.matching import matched_layers
from methods.viz.ranges import display_ranges

__all__ = [
    "METRIC_LABELS",
    "TABLE_METRICS",
    "Side",
    "Row",
    "block_infos",
    "partner_options",
    "default_partners",
    "base_model",
    "same_classes",
    "class_plan",
    "pairs",
    "compare_grid",
    "matched_rows",
    "row_agreements",
    "agreement_table",
    "pair_matrix",
    "matrix_table",
    "overlays",
    "display_image",
    "to_bundle",
    "from_bundle",
]

METRIC_LABELS: dict[str, str] = {
    "spearman": "Spearman",
    "pearson": "Pearson",
    "iou_top": "Top-10 % IoU",
    "mass_overlap": "Mass overlap",
    "mass_share": "Mass share",
}
assert set(METRIC_LABELS) == set(METRICS), "a label for every agreement number"
#: The numbers of the agreement table (mass_share is a's concentration more than an agreement).
TABLE_METRICS: tuple[str, ...] = ("spearman", "pearson", "iou_top", "mass_overlap")


@dataclass(frozen=True, eq=False)
class Side:
    """One compared model's part of a comparison.

    Attributes:
        id, label: the model id and its menu label.
        layers: its block layers in forward order; ``shapes``: each one's output ``(C, h, w)``.
        maps: layer -> RAW (h, w) float32 map.
        target, target_name, prob: the explained class, its name, its softmax probability.
        input_size: ``(H, W)`` of the model's input (the largest gives the page's picture).
        seconds: wall time of its explain call.
        placement: where its input lies on the user's picture (``LoadedModel.placement``; None
            for a saved comparison, drawn on the stored model view).
        notes: the method's notes on this model's maps (``Explanation.notes``).
    """

    id: str
    label: str
    layers: tuple[str, ...]
    shapes: tuple[tuple[int, int, int], ...]
    maps: dict[str, np.ndarray]
    target: int
    target_name: str
    prob: float
    input_size: tuple[int, int]
    seconds: float = 0.0
    placement: Any = None
    notes: tuple[str, ...] = ()

    def resolution(self, layer: str) -> str:
        c, h, w = self.shapes[self.layers.index(layer)]
        return f"{c}×{h}×{w}"


@dataclass(frozen=True)
class Row:
    """One matched depth: ``layers[i]`` of model i; ``depths[i]`` its relative depth (i / (L_i - 1))."""

    target: float
    layers: tuple[str, ...]
    depths: tuple[float, ...]


# ------------------------------------------------------------------------------------------
# models and classes


def block_infos(loaded) -> list[LayerInfo]:
    """The model's block layers (:func:`methods.block_layers`) at its input size (one probe forward)."""
    return block_layers(loaded.model, tuple(loaded.input_size))


def partner_options(model_id: str, uploads: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Models that can stand beside ``model_id``: the catalog's available ones, then this session's
    uploaded checkpoints (never ``model_id`` itself). Detectors and segmenters are left out: the page
    compares classifiers (``scenes_vit``'s next catalog model is ``scenes_det``)."""
    ids = [
        e.name for e in zoo.list_models() if e.available and getattr(e, "task", "classification") == "classification"
    ] + list(uploads)
    return [i for i in ids if i != model_id]


def default_partners(
    model_id: str, options: Sequence[str], uploads: Mapping[str, Mapping[str, Any]]
) -> tuple[str, ...]:
    """The page's default partner: for an uploaded checkpoint its base architecture when that is
    a catalog model (a fine-tuned network against its base), else the next catalog model of the
    same domain (scenes_vgg -> scenes_resnet, efficientnet_lite0 -> efficientnet_lite1), else the
    first option."""
    if not options:
        return ()
    if is_upload(model_id):
        base = base_model((uploads.get(model_id) or {}).get("arch") or "", options)
        if base is not None:
            return (base,)
    entries = list(zoo.list_models())
    domain = {e.name: getattr(e, "domain", None) for e in entries}
    order = [e.name for e in entries]
    start = order.index(model_id) + 1 if model_id in order else 0
    for name in order[start:] + order[:start]:
        if name in options and domain.get(name) == domain.get(model_id):
            return (name,)
    return (options[0],)


def base_model(arch: str, options: Sequence[str]) -> str | None:
    """The catalog model an uploaded checkpoint's architecture is built like, or None: the
    architecture's own name, without a ``timm:`` source and a ``tf_`` port prefix
    (``timm:tf_efficientnet_lite0`` -> ``efficientnet_lite0``).

    Examples:
        >>> base_model("timm:tf_efficientnet_lite0", ["scenes_vgg", "efficientnet_lite0"])
        'efficientnet_lite0'
        >>> base_model("squeezenet1_1", ["scenes_vgg"]) is None
        True
    """
    bare = arch.split(":", 1)[-1]
    for name in (arch, bare, bare.removeprefix("tf_")):
        if name in options:
            return name
    return None


def same_classes(class_lists: Sequence[Sequence[str]]) -> bool:
    """True when every model has the same class list (same names, same order): one class index
    then means the same thing for all of them."""
    first = tuple(class_lists[0])
    return all(tuple(c) == first for c in class_lists[1:])


def class_plan(target: int | None, class_lists: Sequence[Sequence[str]]) -> list[int | None]:
    """The class each model explains (None = its own top-1): the sidebar's ``target`` for every
    model when they share a class list, else for the first model only."""
    if target is not None and same_classes(class_lists):
        return [target] * len(class_lists)
    return [target] + [None] * (len(class_lists) - 1)


def pairs(n: int) -> list[tuple[int, int]]:
    """Every pair of model indices: ``[(0, 1)]``, or ``[(0, 1), (0, 2), (1, 2)]`` for three."""
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


# ------------------------------------------------------------------------------------------
# numbers


def compare_grid(sides: Sequence[Side]) -> tuple[int, int]:
    """The comparison's one grid: the finest map grid of all models, each side at most MAX_GRID."""
    h = max(m.shape[0] for s in sides for m in s.maps.values())
    w = max(m.shape[1] for s in sides for m in s.maps.values())
    return min(h, MAX_GRID), min(w, MAX_GRID)


def matched_rows(sides: Sequence[Side], n: int) -> list[Row]:
    """``n`` matched depths ``(j + 1) / n``: model 1's layer and each other model's layer there."""
    matches = [matched_layers(sides[0].layers, s.layers, n=n) for s in sides[1:]]
    rows = []
    for r, t in enumerate(matches[0].targets):
        layers = (matches[0].pairs[r][0],) + tuple(m.pairs[r][1] for m in matches)
        depths = (matches[0].depths_a[r],) + tuple(m.depths_b[r] for m in matches)
        rows.append(Row(float(t), layers, depths))
    return rows


def row_agreements(
    rows: Sequence[Row], sides: Sequence[Side], grid: tuple[int, int]
) -> dict[tuple[int, int, int], Agreement]:
    """``(row, i, j) -> methods.map_agreement`` of model i's and model j's maps at that row, on ``grid``."""
    out = {}
    for r, row in enumerate(rows):
        for i, j in pairs(len(sides)):
            out[(r, i, j)] = map_agreement(sides[i].maps[row.layers[i]], sides[j].maps[row.layers[j]], size=grid)
    return out


def empty_reason(m: np.ndarray, relu: bool) -> str:
    """Why a map draws as nothing ("" when it draws): constant, or no positive value with ReLU on."""
    arr = np.asarray(m)
    if arr.size == 0 or float(arr.max()) == float(arr.min()):
        return "constant map (nothing to rank)"
    if relu and float(arr.max()) <= 0.0:
        return "no positive value: empty after ReLU, drawn blank"
    return ""


def row_label(
    r: int, row: Row, sides: Sequence[Side], agreements: Mapping, relu: bool, short: Sequence[str] | None = None
) -> str:
    """The depth cell of a row (markdown): its depth, then the Spearman of EVERY pair of models
    ("1↔2 0.71 · 1↔3 0.40 · 2↔3 0.52" for three), and no number for a pair with a map that draws
    as nothing (a constant map, or one with no positive value under ReLU): its raw-map Spearman
    would read as a verdict on a picture that shows nothing (the table keeps it, with the reason).

    Examples:
        >>> import numpy as np
        >>> empty_reason(-np.ones((2, 2)) - np.eye(2), relu=True)
        'no positive value: empty after ReLU, drawn blank'
    """
    names = list(short) if short is not None else [str(i + 1) for i in range(len(sides))]
    parts = []
    for i, j in pairs(len(sides)):
        why = [empty_reason(sides[k].maps[row.layers[k]], relu) for k in (i, j)]
        pair = f"{names[i]}↔{names[j]} " if len(sides) > 2 else ""
        if any(why):
            parts.append(f"{pair}Spearman — (a map draws as nothing)")
        else:
            noted = " (from a map with a note)" if sides[i].notes or sides[j].notes else ""
            rho = f"{agreements[(r, i, j)].spearman:.2f}".replace("-", "\u2212")  # no line break after the sign
            parts.append(f"{pair}Spearman\u00a0{rho}{noted}")
    return f"**{row.target:.0%}**  \n" + "  \n".join(parts)


def pair_numbers(rows: Sequence[Row], sides: Sequence[Side]) -> list[str]:
    """The "Models" cells of :func:`agreement_table` as the page's numbers ("1 ↔ 3"), row by row."""
    return [f"{i + 1} ↔ {j + 1}" for _ in rows for i, j in pairs(len(sides))]


def agreement_table(rows: Sequence[Row], sides: Sequence[Side], agreements: Mapping, relu: bool = True) -> pd.DataFrame:
    """One line per depth and pair of models: layers, grids and the agreement numbers."""
    lines = []
    for r, row in enumerate(rows):
        for i, j in pairs(len(sides)):
            agr = agreements[(r, i, j)]
            lines.append(
                {
                    "Depth": f"{row.target:.0%}",
                    "Models": f"{sides[i].label} ↔ {sides[j].label}",
                    "Layers": f"{row.layers[i]} ↔ {row.layers[j]}",
                    "Grids": f"{sides[i].resolution(row.layers[i])} ↔ {sides[j].resolution(row.layers[j])}",
                    **{METRIC_LABELS[m]: round(getattr(agr, m), 4) for m in TABLE_METRICS},
                    "Note": "; ".join(
                        list(agr.flags)
                        + [
                            f"{sides[k].label}: {why}"
                            for k in (i, j)
                            if (why := empty_reason(sides[k].maps[row.layers[k]], relu))
                        ]
                    ),
                }
            )
    return pd.DataFrame(lines)


def pair_matrix(a: Side, b: Side, grid: tuple[int, int]) -> AgreementMatrix:
    """Every block layer of ``a`` against every block layer of ``b`` (what
    :func:`methods.layer_similarity` computes, from maps already at hand)."""
    return agreement_matrix([a.maps[l] for l in a.layers], [b.maps[l] for l in b.layers], size=grid)


def matrix_table(a: Side, b: Side, matrix: AgreementMatrix) -> pd.DataFrame:
    """The layer x layer matrix in long form (one line per cell, every metric), for a CSV."""
    return pd.DataFrame(
        [
            {
                "model A": a.label,
                "layer A": la,
                "grid A": a.resolution(la),
                "model B": b.label,
                "layer B": lb,
                "grid B": b.resolution(lb),
                **{m: float(matrix[m][i, j]) for m in METRICS},
            }
            for i, la in enumerate(a.layers)
            for j, lb in enumerate(b.layers)
        ]
    )


# ------------------------------------------------------------------------------------------
# pictures


def display_image(views: Sequence[np.ndarray]) -> np.ndarray:
    """The picture every overlay is drawn on: the largest model view (every model sees the whole
    image resized, so the views differ only in resolution)."""
    return max(views, key=lambda v: v.shape[0] * v.shape[1])


def overlays(
    image: np.ndarray, sides: Sequence[Side], rows: Sequence[Row], state: ViewState
) -> tuple[list[list[np.ndarray]], list[tuple[float, float]]]:
    """``[row][model]`` overlay pictures, normalized with the view's settings (shared scale = one
    scale for every cell), and the display range of each cell in row-major order (for the colour bar).

    ``image`` is the user's picture when every side has its placement for it (each map then lies
    where that model's input lies: a centre crop leaves the border dimmed), else a model view."""
    raw = [sides[i].maps[row.layers[i]] for row in rows for i in range(len(sides))]
    norm = services.normalized(raw, state)
    ranges = display_ranges(norm, mode=state.norm, relu=state.relu, scope=state.scope)
    n = len(sides)
    on_picture = all(s.placement is not None and tuple(s.placement.image_size) == image.shape[:2] for s in sides)
    pics = [
        methods.render_views(
            image,
            m,
            colormap=state.draw_cmap,
            alpha=state.alpha,
            value_range=r,
            placement=sides[k % n].placement if on_picture else None,
        ).overlay
        for k, (m, r) in enumerate(zip(norm, ranges))
    ]
    return [pics[k * n : (k + 1) * n] for k in range(len(rows))], list(ranges)


# ------------------------------------------------------------------------------------------
# snapshots


def _key(side: Side, layer: str) -> str:
    return f"{side.id} · {layer}"


def to_bundle(
    sides: Sequence[Side],
    method: str,
    image: np.ndarray,
    probs: np.ndarray,
    class_names: Sequence[str],
    *,
    shared: bool = False,
) -> MapBundle:
    """The bundle "Save to review" stores: every model's block-layer maps under
    ``maps[method]["<model> · <layer>"]``, model 1's probabilities, and the rest in ``extras``
    (``shared``: the models share one class list)."""
    maps = {method: {_key(s, l): s.maps[l] for s in sides for l in s.layers}}
    info = []
    for s in sides:
        d = asdict(s)
        d.pop("maps")
        d.pop("placement", None)  # the user's picture is not stored: a saved view draws on the model view
        d["notes"] = list(s.notes)
        d["shapes"] = [list(x) for x in s.shapes]
        d["layers"], d["input_size"] = list(s.layers), list(s.input_size)
        info.append(d)
    extras = {
        "model_id": " vs ".join(s.id for s in sides),
        "compare": {"method": method, "models": info, "shared": bool(shared)},
    }
    return MapBundle(
        image,
        maps,
        sides[0].target,
        np.asarray(probs),
        tuple(class_names),
        {method: float(sum(s.seconds for s in sides))},
        extras,
        notes={method: tuple(f"{s.label}: {n}" for s in sides for n in s.notes)},
    )


def from_bundle(bundle: MapBundle) -> tuple[str, list[Side]]:
    """Inverse of :func:`to_bundle`: the method and the sides of a saved comparison."""
    saved = bundle.extras["compare"]
    method = saved["method"]
    sides = []
    for d in saved["models"]:
        layers = tuple(d["layers"])
        side = Side(
            id=d["id"],
            label=d["label"],
            layers=layers,
            shapes=tuple(tuple(x) for x in d["shapes"]),
            maps={},
            target=int(d["target"]),
            target_name=d["target_name"],
            prob=float(d["prob"]),
            input_size=tuple(d["input_size"]),
            seconds=float(d.get("seconds", 0.0)),
            notes=tuple(str(n) for n in d.get("notes", ())),
        )
        side.maps.update({l: np.asarray(bundle.maps[method][_key(side, l)]) for l in layers})
        sides.append(side)
    return method, sides
