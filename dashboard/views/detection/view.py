"""Detection and segmentation: the model's boxes (or a segmenter's regions) on the image; pick one
object; its maps for several methods at one layer and for one method across the block layers; how
much of each map's energy falls on the object; the deletion curve of the object's score.

The object is named in the URL (``box``: the detection's rank; a segmenter's class is ``target``,
its region ``region``), so a link reopens the same object. "Save to review" stores the maps and
the objects; the Review page redraws them without the model (:mod:`dashboard.views.detection.draw`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import streamlit as st

import methods
from dashboard.app import cache, capture, widgets
from dashboard.app.errors import md_escape, notice
from dashboard.core import services
from dashboard.core.params import REGIONS
from dashboard.core.services import MapBundle
from dashboard.core.state import ViewState
from dashboard.views.detection import data
from dashboard.views.detection.draw import Shown, draw_shown, from_extras, to_extras
from dashboard.views.detection.objects import Obj, draw_objects

__all__ = ["controls", "show", "chosen_object", "page_methods"]

_REGION_LABELS = {"mask": "Its predicted pixels", "box": "The box around them"}


def page_methods(kind: str = "box") -> list[str]:
    """The methods offered here: every registered method that explains a ``kind`` target (``"box"``
    for a detector, ``"region"`` for a segmenter; ``MethodSpec.targets``) and is not slow (slow ones
    would run a forward per channel or per mask of a detector on every rerun)."""
    return [s.name for s in methods.list_methods(target=kind) if not s.is_slow]


def chosen_object(state: ViewState, objects: list[Obj], task: str) -> tuple[Obj, str]:
    """The object the view names, and a message when it names one the model did not report
    (then the first object is explained)."""
    if task == "detection":
        found = next((o for o in objects if o.rank == state.box), None)
        if found is None:
            return objects[0], (
                f"Detection #{state.box + 1} is not among the {len(objects)} the model reports here; explaining #1."
            )
        return found, ""
    if state.target is None:
        return objects[0], ""
    found = next((o for o in objects if o.label == state.target), None)
    if found is None:
        return objects[0], f"Class {state.target} is not predicted on this image; explaining {objects[0].name}."
    return found, ""


def controls(state: ViewState) -> ViewState:
    """The object (a detection, or a class and its region), the methods, the layer, and the method
    shown across layers."""
    handle = cache.model_handle(state.model)
    ctx = cache.context(handle, state.image)
    task = handle.loaded.task
    objects = data.model_objects(handle, ctx)
    if not objects:
        return state
    obj, message = chosen_object(state, objects, task)
    if message:
        notice(message, "warning", icon=":material/link_off:")
    by_rank = {o.rank: o for o in objects}
    left, mid, right = st.columns([3, 2, 2], vertical_alignment="bottom")
    if task == "detection":
        widgets.seed("w_box", obj.rank)
        if st.session_state["w_box"] not in by_rank:
            widgets.force("w_box", obj.rank)
        rank = left.selectbox(
            "Object",
            list(by_rank),
            key="w_box",
            format_func=lambda r: by_rank[r].text(),
            help="The model's detections.",
        )
        state = replace(state, box=int(rank), target=None)
    else:
        by_label = {o.label: o for o in objects}
        widgets.seed("w_seg_class", obj.label)
        if st.session_state["w_seg_class"] not in by_label:
            widgets.force("w_seg_class", obj.label)
        label = left.selectbox(
            "Class",
            list(by_label),
            key="w_seg_class",
            format_func=lambda k: by_label[k].text(),
            help="Predicted classes.",
        )
        widgets.seed("w_region", state.region)
        region = mid.radio("Region", list(REGIONS), key="w_region", format_func=_REGION_LABELS.get, horizontal=True)
        state = replace(state, target=None if label == objects[0].label else int(label), region=region, box=0)
    offered = page_methods("box" if task == "detection" else "region")
    widgets.seed("w_methods", [m for m in state.methods if m in offered] or offered[:3])
    chosen = st.multiselect(
        "Methods", offered, key="w_methods", format_func=services.method_label, help="Fast methods only on this page."
    )
    a, b = st.columns(2)
    layer = widgets.layer_select(state, a)
    widgets.seed("w_method", state.method if state.method in offered else offered[0])
    if st.session_state["w_method"] not in offered:
        widgets.force("w_method", offered[0])
    method = b.selectbox("Method across layers", offered, key="w_method", format_func=services.method_label)
    state = replace(state, methods=tuple(chosen) or state.methods, method=method, layer=layer)
    return widgets.option_widgets(state, list(dict.fromkeys([*state.methods, method])))


def _compute(state: ViewState) -> Shown | None:
    handle = cache.model_handle(state.model)
    ctx = cache.context(handle, state.image)
    task = handle.loaded.task
    objects = data.model_objects(handle, ctx)
    if not objects:
        st.info(f"{md_escape(state.model)} reports no object on this image: nothing to explain.")
        return None
    obj, _ = chosen_object(state, objects, task)
    if not data.HAVE_TARGETS:
        st.image(draw_objects(ctx.view, objects, obj.rank), caption=f"{len(objects)} object(s) reported", width=512)
        st.info("This GradLens has no task targets (methods.targets): the maps need them.")
        return None
    layer = cache.resolve_layer(handle, state.layer)
    blocks = tuple(b.name for b in cache.block_infos(handle)) or (layer,)
    region = state.region if task != "detection" else "box"
    options = {m: state.options_of(m) for m in dict.fromkeys([*state.methods, state.method])}
    main = data.object_maps(handle, ctx, obj, region, tuple(state.methods), (layer,), options)
    across = data.object_maps(handle, ctx, obj, region, (state.method,), blocks, options)
    first = state.methods[0]
    with st.spinner("Deleting pixels…"):
        curve = data.deletion(handle, ctx, obj, region, main["maps"][first][layer], state.steps)
    return Shown(
        task,
        ctx.view,
        tuple(objects),
        obj,
        region,
        layer,
        {m: main["maps"][m][layer] for m in state.methods},
        state.method,
        dict(across["maps"][state.method]),
        float(main["score"]),
        curve,
        {**across["notes"], **main["notes"]},
    )


def _record(shown: Shown, seconds: dict[str, float]) -> None:
    """What "Save to review" stores: the maps (methods at the layer, the method across layers),
    the objects as the 'classes' (their scores as the probabilities), and the rest in ``extras``."""
    maps: dict[str, dict[str, np.ndarray]] = {m: {shown.layer: v} for m, v in shown.maps.items()}
    maps.setdefault(shown.method, {}).update(shown.layer_maps)
    capture.record_bundle(
        MapBundle(
            image=shown.image,
            maps=maps,
            target=shown.chosen.rank,
            probs=np.array([o.score for o in shown.objects], dtype=float),
            class_names=tuple(f"{o.name} #{o.rank + 1}" for o in shown.objects),
            seconds=seconds,
            extras={"detection": to_extras(shown)},
            notes=dict(shown.notes),
        )
    )


def show(state: ViewState) -> None:
    """Draw the page from a view state (or from a saved snapshot, without the model)."""
    saved = capture.preloaded_bundle()
    if saved is not None and "detection" in saved.extras:
        shown = from_extras(saved.extras["detection"], saved.image, saved.maps, saved.notes)
        draw_shown(shown, state, saved=True)
        return
    shown = _compute(state)
    if shown is None:
        return
    _record(shown, {})
    draw_shown(shown, state)
