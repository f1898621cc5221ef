"""The Sanity page: model-parameter randomization (Adebayo et al. 2018, arXiv 1810.03292) and a
class-sensitivity check, for the sidebar's model, image and a chosen layer.

``controls(state)`` draws the methods, the layer and the mode; ``show(state)`` draws everything.
Every number is the library's: :func:`methods.sanity_check` (one explain per step on a deep copy of
the model; the caller's model is never touched) and :func:`methods.class_sensitivity`; the verdicts
and their criteria are ``SanityResult.verdict()`` / ``ClassSensitivity.verdict()``. Results are
cached per (model, image, method, layer, target, mode, seed, options); each run works on its own
copy of the model (the shared model's lock is held only while it is copied), behind a progress bar
with Cancel. A slow method waits for its Run button, as on the other pages.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace
from functools import partial

import numpy as np
import pandas as pd
import streamlit as st

import methods
from dashboard.app import cache, capture, jobs, widgets
from dashboard.app.errors import md_escape
from dashboard.core import services
from dashboard.core.services import MapBundle
from dashboard.core.state import ViewState
from dashboard.draw import checks, pictures
from methods.metrics.sanity.check import MODES, PAPER
from methods.viz.ranges import display_ranges

__all__ = ["controls", "show"]


def controls(state: ViewState) -> ViewState:
    """Methods (several), the layer, the randomization mode, the number of classes."""
    specs = methods.list_methods()
    names = [s.name for s in specs]
    labels = {s.name: s.label + (" (slow)" if s.is_slow else "") for s in specs}
    top = st.columns([3, 2, 1.6, 1.2, 1.4], vertical_alignment="bottom")
    widgets.seed("w_methods", [m for m in state.methods if m in names])
    chosen = top[0].multiselect("Methods", names, key="w_methods", format_func=labels.get)
    layer = widgets.layer_select(state, top[1])
    widgets.seed("w_sn_mode", state.mode if state.mode in MODES else MODES[0])
    mode = top[2].selectbox(
        "Randomization",
        MODES,
        key="w_sn_mode",
        help="cascading: blocks re-initialised from the top (classifier) down, accumulating; "
        "independent: one block at a time.",
    )
    widgets.seed("w_sn_classes", int(state.classes))
    classes = top[3].number_input(
        "Classes",
        2,
        10,
        step=1,
        key="w_sn_classes",
        help="Class sensitivity: the top-1's map against the least likely class's (the verdict, as in the "
        "Grad-CAM paper: a dissimilar class), then against the next most likely classes up to this many "
        "(near-synonyms, whose maps may agree for a good reason).",
    )
    widgets.seed("w_slow", state.slow)
    slow = top[4].toggle("Run slow methods", key="w_slow", help="Otherwise a slow method waits for its Run button.")
    state = replace(state, methods=tuple(chosen), layer=layer, mode=mode, classes=int(classes), slow=slow)
    return widgets.option_widgets(state, list(chosen))


@st.cache_data(show_spinner=False, max_entries=64)
def _check(
    kind: str,
    model_id: str,
    image_key: str,
    method: str,
    layer: str,
    target: int,
    mode: str,
    seed: int,
    classes: int | tuple[int, ...],
    options_key: str,
    _handle: services.ModelHandle,
    _x,
    _progress=None,
):
    # a private copy in one of the shared slow-job slots (the checks of three link-opened tabs ran
    # at once, beside the two slow jobs the slots allow): the shared model is free meanwhile
    with cache.private_model(_handle, _progress) as own:
        cache.MODEL_CALLS["sanity"] += 1
        options = json.loads(options_key)
        if kind == "classes":
            return methods.class_sensitivity(
                own, _x, method=method, layer=layer, classes=list(classes), options=options
            )
        return methods.sanity_check(
            own,
            _x,
            method=method,
            layer=layer,
            target=target,
            mode=mode,
            seed=seed,
            options=options,
            progress=_progress,
        )


def class_picks(probs, target: int, count: int) -> tuple[int, ...]:
    """The class check's classes: the explained class, the LEAST likely class (the verdict's pair, a
    dissimilar class as in the Grad-CAM paper), then the next most likely classes up to ``count``
    classes in all (near-synonyms, shown for comparison).

    Examples:
        >>> class_picks(np.array([0.1, 0.6, 0.05, 0.25]), 1, 3)
        (1, 2, 3)
    """
    order = [int(c) for c in np.argsort(-np.asarray(probs), kind="stable")]
    least = order[-1] if order[-1] != target else order[-2]
    rest = [c for c in order if c not in (target, least)]
    return (int(target), least, *rest[: max(0, int(count) - 2)])


def _run(state: ViewState, kind: str, method: str, label: str):
    handle = cache.model_handle(state.model)
    ctx = cache.context(handle, state.image)
    probs = cache.predictions(handle, state.image)
    target = cache.resolve_target(state, probs)
    layer = cache.resolve_layer(handle, state.layer)
    key = (
        kind,
        handle.key,
        ctx.key,
        method,
        layer,
        target,
        state.mode,
        state.seed,
        class_picks(probs, target, state.classes) if kind == "classes" else state.classes,
        json.dumps(state.options_of(method), sort_keys=True),
    )
    job = ("sanity",) + key
    spec = methods.get_method(method)
    maps = state.classes if kind == "classes" else len(cache.block_infos(handle)) + 1  # one map per step
    cost = jobs.request_cost(state, method, [layer], images=maps)
    if cost.over():
        text = jobs.slow_text(spec.label, spec.cost, cost, "per map, one map per step here")
        if not jobs.wait_for_click(job, text, f"Run {spec.label}", key=f"sanity_run_{kind}_{method}", auto=state.slow):
            return None
    result = jobs.run_with_progress(lambda p: _check(*key, _handle=handle, _x=ctx.x, _progress=p), label, job=job)
    jobs.mark_ran(job)
    return result, ctx, probs


def _strip(bundle: MapBundle, maps, state: ViewState) -> list[np.ndarray]:
    """Overlays of raw maps with the view's normalization (each map its own scale unless shared),
    on the user's picture where the bundle knows it (``bundle.picture`` / ``bundle.place``, as on
    the Home page: the part the model did not see dimmed), else on the model's view."""
    norm = services.normalized([np.asarray(m, dtype=np.float32) for m in maps], state)
    ranges = display_ranges(norm, mode=state.norm, relu=state.relu, scope=state.scope)
    return [
        methods.render_views(
            bundle.picture, m, colormap=state.draw_cmap, alpha=state.alpha, value_range=r, placement=bundle.place
        ).overlay
        for m, r in zip(norm, ranges)
    ]


def _compute(state: ViewState):
    """``(image context, probs, model handle, {method: (SanityResult, ClassSensitivity | None)})``,
    or None while every method waits for its button."""
    out = {}
    ctx = probs = None
    for method in jobs.applicable(state, state.methods):  # a note for each method that does not apply
        label = services.method_label(method)
        got = _run(state, "cascade", method, f"{label}: randomizing the blocks ({state.mode})")
        if got is None:
            continue
        res, ctx, probs = got
        cls = _run(state, "classes", method, f"{label}: maps of the top {state.classes} classes")
        out[method] = (res, None if cls is None else cls[0])
    if not out:
        return None
    return ctx, probs, cache.model_handle(state.model), out


def _to_bundle(ctx, probs, handle, results) -> MapBundle:
    """What "Save to review" stores: each step's and each class's raw map, the rest in ``extras``."""
    maps, saved = {}, {}
    names = handle.class_names
    for method, (res, cls) in results.items():
        maps[method] = {f"step {k}": np.asarray(m, dtype=np.float32) for k, m in enumerate(res.maps)}
        entry = {
            "label": res.label,
            "layer": res.layer,
            "target": res.target,
            "mode": res.mode,
            "steps": list(res.steps),
            "probs": [float(p) for p in res.probs],
            "grid": list(res.grid),
            "similarity": {k: [float(x) for x in v] for k, v in res.similarity.items()},
            "verdict": dataclasses.asdict(res.verdict()) if res.mode == "cascading" else None,
            "notes": [str(n) for n in getattr(res, "notes", ())],
        }
        if cls is not None:
            maps[method].update({f"class {c}": np.asarray(m, dtype=np.float32) for c, m in zip(cls.classes, cls.maps)})
            entry["classes"] = {
                "classes": list(cls.classes),
                "names": [str(names[c]) if 0 <= c < len(names) else str(c) for c in cls.classes],
                "probs": list(cls.probs),
                "iou_top": [a.iou_top for a in cls.agreements],
                "spearman": [a.spearman for a in cls.agreements],
                "verdict": dataclasses.asdict(cls.verdict()),
            }
        saved[method] = entry
    first = next(iter(saved.values()))
    return MapBundle(
        ctx.view,
        maps,
        int(first["target"]),
        np.asarray(probs),
        tuple(names),
        {},
        {"sanity": saved},
        original=ctx.image,
        placement=cache.placement_of(handle.loaded, ctx.image),
    )


#: Pictures per row of a strip: wide enough that a caption wraps at its words, never per character.
PER_ROW = 5


def number(value: float) -> str:
    """``-0.03`` as ``−0.03`` (U+2212: no line break after the sign, unlike a hyphen)."""
    return f"{value:.2f}".replace("-", "\u2212")


def _show_strip(pics: list[np.ndarray], caps: list[str]) -> None:
    """A strip in rows of at most :data:`PER_ROW` pictures (the last row keeps the same widths)."""
    for start in range(0, len(pics), PER_ROW):
        cols = st.columns(PER_ROW)
        for col, pic, cap in zip(cols, pics[start : start + PER_ROW], caps[start : start + PER_ROW]):
            col.image(pictures.enlarge(pic, 128), caption=md_escape(cap), width="stretch")


INDEPENDENT = (
    "Independent mode: each step randomizes one block only, so there is no top half to judge; "
    "switch to cascading for a verdict."
)


def _say(verdict: dict | None, notes=()) -> None:
    if verdict is None:
        return  # independent mode: said once for the page (INDEPENDENT)
    box = st.success if verdict["passes"] else st.warning if verdict["passes"] is False else st.info
    caveat = (
        " This verdict comes from a map with a note (above): it holds for the map as computed, read it with the note."
        if notes
        else ""
    )
    box(f"{md_escape(verdict['text'])} Criterion: {md_escape(verdict['criterion'])}.{md_escape(caveat)}")


def show(state: ViewState) -> None:
    """Draw the Sanity page from a view state (from a saved snapshot's maps when one is open)."""
    pre = capture.preloaded_bundle()
    if pre is not None and "sanity" in pre.extras:
        bundle = pre
    else:
        if not state.methods:
            st.info("Choose at least one method.")
            return
        got = _compute(state)
        if got is None:
            return
        bundle = _to_bundle(*got)
    capture.record_bundle(bundle)
    _draw(state, bundle)


def _draw(state: ViewState, bundle: MapBundle) -> None:
    saved = bundle.extras["sanity"]
    first = next(iter(saved.values()))
    target_name = bundle.class_names[first["target"]]
    st.markdown(
        "A method whose map does not change when the model's weights are destroyed explains the image, "
        f"not the model ([Adebayo et al. 2018, *Sanity Checks for Saliency Maps*]({PAPER}))."
    )
    st.caption(
        f"Class **{md_escape(target_name)}**, layer {md_escape(first['layer'])}, {md_escape(first['mode'])} "
        "randomization, top block first; similarity to the trained map on the "
        f"{md_escape(first['grid'][0])}×{md_escape(first['grid'][1])} input grid, from the raw maps (colours never "
        "change a number)."
    )
    if first["mode"] != "cascading":
        st.info(INDEPENDENT)  # once for the page, not once per method
    rows, strips, captions = [], [], []
    for method, entry in saved.items():
        st.markdown(f"**{md_escape(entry['label'])}**")
        for text in entry.get("notes", ()):
            st.warning(md_escape(f"{entry['label']}: {text}"), icon=":material/report:")
        pics = _strip(bundle, [bundle.maps[method][f"step {k}"] for k in range(len(entry["steps"]))], state)
        caps = [
            f"{k}: {entry['steps'][k]} · ρ\u00a0{number(entry['similarity']['spearman'][k])}" for k in range(len(pics))
        ]
        _show_strip(pics, caps)
        strips += pics
        captions += [f"{entry['label']} {cap}" for cap in caps]
        _say(entry["verdict"], entry.get("notes", ()))
        rows += [
            {
                "method": entry["label"],
                "step": k,
                "block": b,
                "probability": entry["probs"][k],
                **{m: v[k] for m, v in entry["similarity"].items()},
            }
            for k, b in enumerate(entry["steps"])
        ]
    curves = {
        e["label"]: {"spearman": e["similarity"]["spearman"], "ssim": e["similarity"]["ssim"]} for e in saved.values()
    }
    st.plotly_chart(
        checks.sanity_figure(
            first["steps"], curves, first["probs"], cascading=first["mode"] == "cascading", target_name=target_name
        ),
        width="stretch",
        key="sanity_curves",
    )
    table = pd.DataFrame(rows)
    notes = pictures.notes_text({e["label"]: e.get("notes", ()) for e in saved.values()})
    left, right = st.columns(2)
    with left:
        widgets.download_png(
            "Strips as PNG",
            partial(
                pictures.compose_grid,
                strips,
                captions,
                ncols=len(first["steps"]),
                cell=160,
                title=f"Sanity · {state.model} · {state.image}",
                note=notes or None,
            ),
            "gradlens_sanity.png",
            key="dl_sanity_png",
            info=pictures.with_notes({}, notes),
        )
    with right:
        widgets.download_csv("Similarity by step as CSV", table, "gradlens_sanity.csv", key="dl_sanity_csv")

    st.subheader("Does the map depend on the class?")
    for method, entry in saved.items():
        cls = entry.get("classes")
        if cls is None:
            continue
        st.markdown(f"**{md_escape(entry['label'])}**")
        pics = _strip(bundle, [bundle.maps[method][f"class {c}"] for c in cls["classes"]], state)
        caps = []
        for j in range(len(pics)):
            agree = (
                "reference"
                if j == 0
                else f"IoU\u00a0{number(cls['iou_top'][j - 1])} · ρ\u00a0{number(cls['spearman'][j - 1])}"
            )
            role = " · least likely" if j == 1 else ""
            name = cls["names"][j] if "names" in cls else bundle.class_names[cls["classes"][j]]  # a snapshot keeps them
            caps.append(f"{name} ({cls['probs'][j]:.1%}){role} · {agree}")
        _show_strip(pics, caps)
        _say(cls["verdict"], entry.get("notes", ()))
