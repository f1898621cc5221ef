"""Drawing one object's explanation from plain data (no model): what the live page and a saved
snapshot reopened on the Review page both draw.

:class:`Shown` holds everything: the image as the model sees it, the objects, the chosen one,
RAW maps (methods at one layer; one method across layers), the deletion curve. Every number shown
is computed here from those, so a reopened snapshot shows the same figures as the live page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

import methods
from dashboard.app import widgets
from dashboard.app.errors import md_escape
from dashboard.core import services
from dashboard.core.state import ViewState
from dashboard.draw import pictures
from dashboard.draw.text import plotly_text
from dashboard.views.detection.objects import Obj, box_region, draw_objects, energy_inside
from methods.metrics.objects import object_scores
from methods.viz.ranges import display_ranges

__all__ = ["Shown", "region_of", "energy_table", "draw_shown", "to_extras", "from_extras"]


@dataclass(frozen=True)
class Shown:
    """One object's explanation, ready to draw.

    Attributes:
        task: ``"detection"`` or ``"segmentation"``.
        image: (h, w, 3) uint8, the model's view of the image.
        objects: every object the model reported; ``chosen`` is one of them.
        region: for a segment, ``"mask"`` or ``"box"``: the explained region.
        layer: the layer of ``maps``.
        maps: method -> RAW (h', w') map at ``layer``.
        method: the method of ``layer_maps``.
        layer_maps: layer -> RAW map of ``method``.
        score: the target's score on the image (detection score, or the region's summed logit).
        curve: ``{"fractions", "scores", "auc"}`` of the first method's deletion curve, or {}.
        notes: method -> notes of its maps.
    """

    task: str
    image: np.ndarray
    objects: tuple[Obj, ...]
    chosen: Obj
    region: str
    layer: str
    maps: dict[str, np.ndarray]
    method: str
    layer_maps: dict[str, np.ndarray]
    score: float
    curve: dict = field(default_factory=dict)
    notes: dict[str, tuple[str, ...]] = field(default_factory=dict)


def region_of(shown: Shown) -> np.ndarray:
    """(h, w) bool: the chosen object's box, or its predicted mask for a segment explained over the mask."""
    obj = shown.chosen
    if obj.mask is not None and shown.region == "mask":
        return np.asarray(obj.mask, dtype=bool)
    return box_region(obj.box, shown.image.shape[:2])


def energy_table(shown: Shown) -> pd.DataFrame:
    """Per map: the share of its positive energy inside the object's region and whether its maximum
    lies there (``methods.metrics.objects.object_scores``), with the random and centre reference
    maps' energy on the same grid, and the share a map spread evenly would have (the region's area)."""
    region = region_of(shown)
    h, w = region.shape
    rows = [("methods", m, shown.layer, v) for m, v in shown.maps.items()]
    rows += [("layers", shown.method, l, v) for l, v in shown.layer_maps.items()]
    x = torch.zeros(1, 3, h, w)  # only its size is read: no model runs
    scores = [object_scores(None, x, torch.as_tensor(v), 0, mask=region, curves=False) for *_, v in rows]
    return pd.DataFrame(
        {
            "Row": [r[0] for r in rows],
            "Method": [services.method_label(r[1]) for r in rows],
            "Layer": [r[2] for r in rows],
            "Energy in region": [round(s.energy["map"], 4) for s in scores],
            "Random map": [round(s.energy["random"], 4) for s in scores],
            "Centre map": [round(s.energy["centre"], 4) for s in scores],
            "Even spread": [round(float(region.mean()), 4)] * len(rows),
            "Maximum on the object": [bool(s.pointing["map"]) for s in scores],
        }
    )


def _overlays(shown: Shown, state: ViewState, raw: list[np.ndarray]) -> tuple[list[np.ndarray], pictures.ColourScale]:
    norm = services.normalized(raw, state)
    ranges = display_ranges(norm, mode=state.norm, relu=state.relu, scope=state.scope)
    pics = [
        draw_objects(
            methods.render_views(shown.image, m, colormap=state.draw_cmap, alpha=state.alpha, value_range=r).overlay,
            [shown.chosen],
            shown.chosen.rank,
            min_side=256,
        )
        for m, r in zip(norm, ranges)
    ]
    scale = pictures.scale_of(
        state.draw_cmap, ranges, pictures.scale_text(state.norm, state.relu, state.scope, (state.p_lo, state.p_hi))
    )
    return pics, scale


def _grid(pics: list[np.ndarray], captions: list[str], ncols: int = 4) -> None:
    for start in range(0, len(pics), ncols):
        cols = st.columns(ncols)
        for col, pic, cap in zip(cols, pics[start : start + ncols], captions[start : start + ncols]):
            col.image(pic, caption=md_escape(cap), width="stretch")  # layer names can come from a snapshot


def _curve_figure(curves: dict, label: str) -> go.Figure:
    """The map's deletion curve (solid) and the random and centre references' (grey, dashed / dotted)."""
    fig = go.Figure()
    for key, c in curves.items():
        name = plotly_text(label if key == "map" else f"{key} map") + f" (AUC {c['auc']:.3f})"
        line = dict(width=3) if key == "map" else dict(color="#999999", dash="dash" if key == "random" else "dot")
        x, y = np.asarray(c["fractions"], dtype=float), np.asarray(c["scores"], dtype=float)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=name, line=line))
    fig.update_xaxes(title="fraction of pixels deleted (most salient first)", range=[0, 1])
    fig.update_yaxes(title="the object's score", rangemode="tozero")
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.3))
    return fig


def objects_caption(shown: Shown) -> str:
    """The caption under the picture with the boxes (markdown; a class name is user text, escaped)."""
    return f"{len(shown.objects)} object(s) reported by the model; explained: {md_escape(shown.chosen.text())} (yellow)"


def draw_shown(shown: Shown, state: ViewState, *, saved: bool = False) -> None:
    """The page below the controls: objects, maps by method, maps by layer, energy, deletion, downloads."""
    obj = shown.chosen
    what = "box" if shown.task == "detection" else f"predicted {shown.region}"
    st.image(
        draw_objects(shown.image, shown.objects, obj.rank),
        caption=objects_caption(shown),
        width=512,
    )
    st.caption(
        f"Explained: **{md_escape(obj.name)}** ({what}), score on the image {shown.score:.4g}"
        + (" (saved snapshot: the model did not run)." if saved else ".")
    )
    labels = {m: services.method_label(m) for m in shown.maps}
    names = list(shown.maps)
    pics, scale = _overlays(shown, state, [shown.maps[m] for m in names])
    region = region_of(shown)
    captions = [
        f"{labels[m]} · {shown.layer} · energy in {what} {energy_inside(shown.maps[m], region):.2f}" for m in names
    ]
    st.subheader("The object's maps, by method")
    _grid(pics, captions)
    for m in names:
        for note in shown.notes.get(m, ()):
            st.caption(f"{labels[m]}: {md_escape(note)}")
    layers = list(shown.layer_maps)
    lpics, _ = _overlays(shown, state, [shown.layer_maps[l] for l in layers])
    lcaps = [f"{l} · energy {energy_inside(shown.layer_maps[l], region):.2f}" for l in layers]
    st.subheader(f"{services.method_label(shown.method)} across layers")
    _grid(lpics, lcaps)
    _, bar = st.columns([2, 2])
    bar.image(pictures.colorbar(scale, 480), caption=f"Overlay colours: {scale.range_text}", width="stretch")
    table = energy_table(shown)
    st.subheader("How much of each map falls on the object?")
    st.caption(
        "Share of the map's positive energy inside the object's region (the energy-based pointing game, "
        f"Wang et al. 2020); a map spread evenly would put {float(region.mean()):.2f} there."
    )
    st.dataframe(table, hide_index=True, width="stretch")
    if shown.curve:
        first = names[0]
        st.subheader("Deletion curve")
        st.plotly_chart(_curve_figure(shown.curve, labels[first]), width="stretch", key="det_deletion")
        auc = {k: c["auc"] for k, c in shown.curve.items()}
        beats = [r for r in ("random", "centre") if r in auc and auc["map"] < auc[r]]
        verdict = (
            f"On this image it falls faster than the {' and the '.join(beats)} map."
            if beats
            else "On this image it does not fall faster than the reference maps."
        )
        st.caption(
            f"{labels[first]}'s map at {shown.layer}: the image's pixels are replaced (blurred) in the map's order, "
            "most salient first, and the model scores the same object again; a faithful map makes the score fall fast "
            f"(a low area under the curve). {verdict} One image is no evidence: the Benchmark page has intervals."
        )
    a, b = st.columns(2)
    with a:
        grid = partial(
            pictures.compose_grid,
            pics + lpics,
            captions + lcaps,
            ncols=4,
            cell=224,
            scale=scale,
            title=f"{shown.task} · {state.model} · {state.image} · {obj.name} #{obj.rank + 1}",
        )
        widgets.download_png("Maps as PNG", grid, "gradlens_detection.png", key="dl_det_png", info=scale.png_info())
    with b:
        widgets.download_csv("Energy table as CSV", table, "gradlens_detection.csv", key="dl_det_csv")


def to_extras(shown: Shown) -> dict:
    """What a snapshot stores besides the maps (JSON-friendly); :func:`from_extras` reads it back."""
    return {
        "task": shown.task,
        "objects": [[o.rank, o.label, o.name, o.score, list(o.box)] for o in shown.objects],
        "chosen": shown.chosen.rank,
        "region": shown.region,
        "layer": shown.layer,
        "methods": list(shown.maps),
        "method": shown.method,
        "layers": list(shown.layer_maps),
        "score": shown.score,
        "curve": shown.curve,
    }


def from_extras(extras: dict, image: np.ndarray, maps: dict[str, dict[str, np.ndarray]], notes: dict) -> Shown:
    """A :class:`Shown` from a snapshot's extras and maps (a segment's mask is not stored: its
    region is drawn and measured as its box)."""
    objs = tuple(
        Obj(int(r), int(lab), str(n), float(s), tuple(float(v) for v in b)) for r, lab, n, s, b in extras["objects"]
    )  # type: ignore[arg-type]
    chosen = next(o for o in objs if o.rank == int(extras["chosen"]))
    layer, method = str(extras["layer"]), str(extras["method"])
    at_layer = {m: maps[m][layer] for m in extras["methods"] if layer in maps.get(m, {})}
    layer_maps = {l: maps[method][l] for l in extras["layers"] if l in maps.get(method, {})}
    return Shown(
        str(extras["task"]),
        image,
        objs,
        chosen,
        "box" if extras["task"] != "detection" else str(extras["region"]),
        layer,
        at_layer,
        method,
        layer_maps,
        float(extras["score"]),
        dict(extras.get("curve") or {}),
        {k: tuple(v) for k, v in notes.items()},
    )
