"""The Compare page: one image through two or three models, block layer by block layer.

``controls(state)`` draws the partner models, the method, the depths and the heatmap's metric;
``show(state)`` draws everything from a view state. The model runs only on cache misses: each
model's block layers, prediction and maps are cached per model (``cache.maps``, under that
model's own lock); a saved comparison (``capture.preloaded_bundle``) is redrawn from its stored
maps without any model. Numbers and pictures come from :mod:`dashboard.views.compare.data`.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import pandas as pd
import streamlit as st

import methods
from dashboard.app import cache, capture, jobs, uploads, widgets
from dashboard.app.errors import md_escape, notice
from dashboard.core import menus, services
from dashboard.core.params import is_upload
from dashboard.core.state import ViewState
from dashboard.draw import checks, pictures
from dashboard.views.compare import data as cs
from dashboard.views.compare import drift as drift_report
from dashboard.views.compare.data import Side
from methods.cams.core.cost import SMALL_BUDGET
from methods.cams.core.layers import LayerInfo
from methods.metrics.border import border_share, border_threshold

__all__ = ["block_infos", "partners", "model_labels", "controls", "show"]

_NO_URL = "Uploaded files stay in this browser session: they cannot travel in a URL."


@st.cache_data(show_spinner="Finding the block layers…", max_entries=16)
def _blocks(model_id: str, _handle: services.ModelHandle) -> list[LayerInfo]:
    with cache.locked(_handle):
        cache.MODEL_CALLS["layers"] += 1
        return cs.block_infos(_handle.loaded)


def block_infos(handle: services.ModelHandle) -> list[LayerInfo]:
    """The model's block layers (cached per model; one probe forward on a miss)."""
    return _blocks(handle.key, _handle=handle)


def model_labels() -> dict[str, str]:
    """Menu label of every catalog model and of this session's uploads."""
    labels = {m.id: m.label for m in menus.model_choices()}
    labels.update({k: f"Uploaded: {v['name']} ({v['arch']})" for k, v in uploads.uploaded_models().items()})
    return labels


def partners(state: ViewState) -> tuple[tuple[str, ...], list[str], tuple[str, ...], list[str]]:
    """``(partners, options, default, messages)``: the models set beside ``state.model`` (the
    view's, or the default partner), what may be chosen, the default, and why a model of the
    view was dropped (an upload of another session, the sidebar's own model, an unknown one)."""
    held = uploads.uploaded_models()
    options = cs.partner_options(state.model, held)
    default = cs.default_partners(state.model, options, held)
    kept, messages = [], []
    for m in state.models:
        if m in options:
            kept.append(m)
        elif m == state.model:
            messages.append(f"{m} is the sidebar's model already; it is compared with the others.")
        elif is_upload(m):
            messages.append(f"This link names an uploaded checkpoint ({m}). {_NO_URL} Upload it again to compare it.")
        else:
            messages.append(f"Model {m!r} is not available here; it is left out.")
    return tuple(kept) or default, options, default, messages


def controls(state: ViewState) -> ViewState:
    """Partner models, method (and its options), matched depths, the heatmap's metric, slow switch."""
    chosen, options, default, messages = partners(state)
    for text in messages:
        notice(text, "warning", icon=":material/link_off:")  # model ids from the link: user text
    labels = model_labels()
    widgets.seed("w_cmp_models", list(chosen))
    followed = st.session_state.get("_cmp_default")  # the default the menu showed last
    current = st.session_state["w_cmp_models"]
    if any(m not in options for m in current) or (
        not state.models and followed is not None and list(followed) == current and followed != default
    ):
        widgets.force("w_cmp_models", list(chosen))  # another sidebar model: its own default partner
    st.session_state["_cmp_default"] = default
    top = st.columns([3, 2, 1, 1.5, 1.8], vertical_alignment="bottom")
    picked = top[0].multiselect(
        f"Compare {md_escape(labels.get(state.model, state.model))} with",
        options,
        key="w_cmp_models",
        max_selections=2,
        format_func=lambda k: labels.get(k, k),
        help="The sidebar's model is the first column; add one or two more (catalog models, or checkpoints "
        "uploaded in the sidebar).",
    )
    method = widgets.method_select(state, top[1])
    widgets.seed("w_cmp_depths", int(state.depths))
    depths = top[2].number_input(
        "Depths",
        2,
        8,
        step=1,
        key="w_cmp_depths",
        help="Rows: the layers at 1/n, 2/n, ... of each model's block layers (4: 25 %, 50 %, 75 %, last).",
    )
    metrics = list(cs.METRIC_LABELS)
    widgets.seed("w_cmp_metric", state.metric if state.metric in metrics else metrics[0])
    metric = top[3].selectbox("Heatmap shows", metrics, key="w_cmp_metric", format_func=cs.METRIC_LABELS.get)
    widgets.seed("w_slow", state.slow)
    slow = top[4].toggle("Run slow methods", key="w_slow", help="Otherwise a slow method waits for its Run button.")
    if not picked:
        notice(
            f"Choose at least one model to compare with; showing {', '.join(labels.get(m, m) for m in chosen)}.", "info"
        )
    models = tuple(picked) or chosen
    state = replace(
        state, models=() if models == default else models, method=method, depths=int(depths), metric=metric, slow=slow
    )
    return widgets.option_widgets(state, [method])


def _gated(
    state: ViewState, ids: tuple[str, ...], infos: list[list[LayerInfo]], plan: list
) -> tuple[bool, tuple, bool]:
    """A request over the budget (the models' estimated costs summed, ``jobs.request_cost``) waits
    for its Run button, pressed in this session (``jobs.wait_for_click``); returns (may it run
    now?, the job, is it over the budget?)."""
    spec = methods.get_method(state.method)
    job = ("compare", ids, state.image, tuple(plan), state.method, tuple(state.options_of(state.method).items()))
    costs = [
        jobs.request_cost(replace(state, model=i), state.method, [x.name for x in info]) for i, info in zip(ids, infos)
    ]
    if not _over(costs):
        return True, job, False
    passes = sum(c.passes for c in costs)
    text = (
        f":material/hourglass_top: **{spec.label} is slow** here: about {passes:,} model passes over "
        f"{sum(map(len, infos))} block layers of {len(ids)} models ({spec.cost} per layer). It runs when you ask."
    )
    return jobs.wait_for_click(job, text, f"Run {spec.label}", key="compare_run", auto=state.slow), job, True


def _over(costs: list) -> bool:
    """Whether the models' requests together cost more than a link may start (any unknown cost does)."""
    return any(not c.known for c in costs) or sum(c.units for c in costs) > SMALL_BUDGET


def _compute(state: ViewState):
    """Every model's block-layer maps of the image (cached per model); None while gated.

    A fast method runs under each model's lock; a slow one on a private copy of each model behind
    a progress bar with Cancel (``jobs.run_with_progress``), like on the other pages.
    """
    ids = (state.model,) + partners(state)[0]
    handles = [cache.model_handle(i) for i in ids]
    plan = cs.class_plan(state.target, [h.class_names for h in handles])
    spec = methods.get_method(state.method)
    labels = model_labels()
    reasons = [(h.id, spec.why_not(h.loaded.model)) for h in handles]
    for model_id, reason in reasons:
        if reason is not None:
            notice(
                f"{spec.label} does not apply to {labels.get(model_id, model_id)}: {reason}",
                "info",
                icon=":material/block:",
            )
    if any(reason is not None for _, reason in reasons):
        return None
    infos = [block_infos(h) for h in handles]
    go_on, job, slow = _gated(state, ids, infos, plan)
    if not go_on:
        return None
    sides, views, first_probs = [], [], None
    for handle, info, wanted in zip(handles, infos, plan):  # one model after the other: one context each
        probs = cache.predictions(handle, state.image)
        target = services.check_target(wanted, probs, handle.id)
        layers = [i.name for i in info]
        kwargs = {}
        if slow:
            label = (
                f"Running {spec.label} ({spec.cost}) on {labels.get(handle.id, handle.id)}: {len(layers)} block layers"
            )
            kwargs = dict(private=True, run=partial(jobs.run_with_progress, label=label, job=job))
        request = services.map_request(replace(state, model=handle.id, target=target), [state.method], layers)
        bundle = cache.maps(request, **kwargs)
        first_probs = probs if first_probs is None else first_probs
        views.append(bundle.image)
        sides.append(
            Side(
                id=handle.id,
                label=labels.get(handle.id, handle.id),
                layers=tuple(layers),
                shapes=tuple(tuple(i.shape) for i in info),
                maps=bundle.maps[state.method],
                target=target,
                target_name=bundle.target_name,
                prob=float(probs[target]),
                input_size=tuple(int(s) for s in handle.loaded.input_size),
                seconds=float(bundle.seconds.get(state.method, 0.0)),
                placement=bundle.place,
                notes=tuple(bundle.notes.get(state.method, ())),
            )
        )
    if slow:
        jobs.mark_ran(job)
    shared = cs.same_classes([h.class_names for h in handles])
    return sides, cs.display_image(views), first_probs, handles[0].class_names, shared, bundle.picture


def show(state: ViewState) -> None:
    """Draw the Compare page from a view state (from a saved snapshot's maps when one is open)."""
    drift_report.section()  # a `gradlens drift` report, opened beside the live comparison
    pre = capture.preloaded_bundle()
    if pre is not None and "compare" in pre.extras:
        method, sides = cs.from_bundle(pre)
        image, shared = pre.image, bool(pre.extras["compare"].get("shared"))
        capture.record_bundle(pre)
    else:
        got = _compute(state)
        if got is None:
            return
        sides, image, probs, names, shared, picture = got
        method = state.method
        capture.record_bundle(cs.to_bundle(sides, method, image, probs, names, shared=shared))
        image = picture if all(s.placement is not None for s in sides) else image  # drawn on the user's picture
    _draw(state, method, sides, image, shared)


def _explained(sides: list[Side], shared: bool, state: ViewState) -> str:
    """Which class each map explains (markdown; model labels and class names escaped)."""
    each = " · ".join(f"**{md_escape(s.label)}** → {md_escape(s.target_name)} ({s.prob:.1%})" for s in sides)
    if shared and len({s.target for s in sides}) == 1 and state.target is not None:
        return f"Every model explains the class you chose, **{md_escape(sides[0].target_name)}**: {each}."
    hint = (
        " The models share a class list: choose a class in the sidebar (*Explain the class*) to have every model "
        "explain it."
        if shared
        else " They do not share a class list, so each explains its own top-1 class"
        + (" (the sidebar's class applies to the first model)." if state.target is not None else ".")
    )
    return f"Each map explains its model's own class: {each}.{hint}"


def _draw(state: ViewState, method: str, sides: list[Side], image, shared: bool) -> None:
    label = services.method_label(method)
    rows = cs.matched_rows(sides, state.depths)
    grid = cs.compare_grid(sides)
    agreements = cs.row_agreements(rows, sides, grid)
    st.markdown(_explained(sides, shared, state))
    for side in sides:  # what the method said about each model's maps, beside them
        for text in side.notes:
            notice(f"{label} on {side.label}: {text}", "warning", icon=":material/report:")
    pics, ranges = cs.overlays(image, sides, rows, state)
    scale = pictures.scale_of(
        state.draw_cmap, ranges, pictures.scale_text(state.norm, state.relu, state.scope, (state.p_lo, state.p_hi))
    )
    st.caption(
        f"{md_escape(label)} at each model's block layers (`methods.block_layers`), rows at matched relative depth "
        f"(`methods.matched_layers`). The agreement numbers are computed on the raw maps, on one "
        f"{grid[0]}×{grid[1]} grid: the colours ({scale.text}) never change a number."
    )
    widths = [0.55] + [1.0] * len(sides)
    head = st.columns(widths)
    head[0].markdown("**Depth**")
    for k, (col, side) in enumerate(zip(head[1:], sides)):
        number = f"{k + 1} · " if len(sides) > 2 else ""  # the row labels name pairs by these numbers
        col.markdown(
            f"**{number}{md_escape(side.label)}**  \n{len(side.layers)} block layers · {md_escape(side.target_name)}"
        )
    captions, empty, border_names, border_values = [], [], [], []
    for r, row in enumerate(rows):
        cols = st.columns(widths, vertical_alignment="center")
        cols[0].markdown(cs.row_label(r, row, sides, agreements, state.relu))
        for i, (col, side) in enumerate(zip(cols[1:], sides)):
            layer = row.layers[i]
            lo, hi = ranges[r * len(sides) + i]
            why = cs.empty_reason(side.maps[layer], state.relu)
            share = border_share(side.maps[layer], side.input_size)
            flagged = share >= border_threshold(side.input_size)
            if why:
                empty.append(f"{side.label} {layer}: {why}")
            if flagged:
                border_names.append(f"{side.label} {layer}")
                border_values.append(share)
            cap = (
                f"{layer} · {side.resolution(layer)}"
                + ("" if scale.value_range is not None else f" · [{lo:.3g}, {hi:.3g}]")
                + (f" · {why}" if why else "")
                + (f" · ⚠ border {share:.2f}" if flagged else "")
            )
            captions.append(f"{row.target:.0%} {side.label}: {cap}")
            col.image(pictures.enlarge(pics[r][i], 224), caption=md_escape(cap), width="stretch")
    _, bar = st.columns([1, 2])
    bar.image(pictures.colorbar(scale, 480), caption=f"Overlay colours: {scale.range_text}", width="stretch")
    if empty:
        notice(
            f"Drawn as nothing: {'; '.join(empty)}. No agreement number is shown beside such a row: a raw-map "
            "Spearman there would read as a verdict on a picture that shows nothing (the table keeps the number, "
            "with this reason).",
            "info",
            icon=":material/visibility_off:",
        )
    widgets.note_border(border_names, border_values, sides[0].input_size)
    seen = {tuple(round(v, 1) for v in s.placement.seen) for s in sides if s.placement is not None}
    if len(seen) > 1:
        notice(
            "The models see different parts of the picture (each its own evaluation crop or the whole picture; the "
            "dimmed border of an overlay is what that model did not see). The agreement numbers compare each "
            "model's map over its own input, so they also count that difference.",
            "info",
            icon=":material/crop:",
        )

    st.subheader("Agreement at the matched depths")
    table = cs.agreement_table(rows, sides, agreements, state.relu)
    shown = table.drop(columns="Models") if len(sides) == 2 else table.assign(Models=cs.pair_numbers(rows, sides))
    numbers = {c: st.column_config.NumberColumn(c, width=92, format="%.4f") for c in shown.columns[4:-1]}
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={  # sized so that every column is in view at once (the CSV has the model names)
            "Depth": st.column_config.TextColumn("Depth", width=56),
            "Models": st.column_config.TextColumn("Models", width=64, help="The numbered models above"),
            "Layers": st.column_config.TextColumn("Layers", width=180),
            "Grids": st.column_config.TextColumn("Grids", width=170),
            **numbers,
            "Note": st.column_config.TextColumn("Note", width=240, help="Hover a cell for the whole note"),
        },
    )
    names = {(i, j): f"{sides[i].label} ↔ {sides[j].label}" for i, j in cs.pairs(len(sides))}
    series = {
        names[p]: {m: [getattr(agreements[(r, *p)], m) for r in range(len(rows))] for m in ("spearman", "iou_top")}
        for p in names
    }
    hover = {names[p]: [f"{row.layers[p[0]]} ↔ {row.layers[p[1]]}" for row in rows] for p in names}
    st.plotly_chart(
        checks.depth_figure([r.target for r in rows], series, hover, cs.METRIC_LABELS),
        width="stretch",
        key="compare_depths",
    )

    st.subheader("Every block layer against every block layer")
    st.caption(
        f"{cs.METRIC_LABELS[state.metric]} of each pair of layers' maps (rows: the first model, columns: the "
        "second); hover a cell for both layers and every number. Squares: the matched depths above."
    )
    tabs = st.tabs([md_escape(names[p]) for p in names]) if len(names) > 1 else [st.container()]
    long = []
    for tab, (i, j) in zip(tabs, names):
        a, b = sides[i], sides[j]
        matrix = cs.pair_matrix(a, b, grid)
        fig = checks.similarity_heatmap(
            a.layers,
            b.layers,
            [a.resolution(l) for l in a.layers],
            [b.resolution(l) for l in b.layers],
            matrix.values,
            state.metric,
            cs.METRIC_LABELS,
            model_a=a.label,
            model_b=b.label,
            marks=[(row.layers[i], row.layers[j]) for row in rows],
        )
        tab.plotly_chart(fig, width="stretch", key=f"compare_matrix_{i}{j}")
        long.append(cs.matrix_table(a, b, matrix))
    left, mid, right = st.columns(3)
    flat = [p for row in pics for p in row]
    notes = pictures.notes_text({f"{label} on {s.label}": s.notes for s in sides})
    grid_png = partial(
        pictures.compose_grid,
        flat,
        captions,
        ncols=len(sides),
        cell=224,
        scale=scale,
        title=f"{label} · {' vs '.join(s.label for s in sides)} · {state.image}",
        note=notes or None,
    )
    with left:
        widgets.download_png(
            "Overlays as PNG",
            grid_png,
            "gradlens_compare.png",
            key="dl_compare_png",
            info=pictures.with_notes(scale.png_info(), notes),
        )
    with mid:
        widgets.download_csv("Agreement table as CSV", table, "gradlens_compare_depths.csv", key="dl_compare_csv")
    with right:
        frame = pd.concat(long, ignore_index=True)
        widgets.download_csv(
            "Layer × layer matrix as CSV", frame, "gradlens_compare_matrix.csv", key="dl_compare_matrix"
        )
