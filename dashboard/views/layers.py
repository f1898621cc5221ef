"""Layers: one method at every block output (or every candidate layer, or a chosen subset), from ONE explain call."""

import math
from dataclasses import replace
from functools import partial

import pandas as pd
import streamlit as st

import methods
from dashboard.app import cache, jobs, widgets
from dashboard.app.errors import md_escape, notice
from dashboard.core import services
from dashboard.core.state import ViewState
from dashboard.draw import figures, pictures
from methods.metrics.border import border_share, border_threshold
from methods.viz.ranges import display_ranges

TOP_FRACTION = 0.10
#: Panels per page of the Layers page (a page selector in the URL, ``lpage``, beyond that).
PER_PAGE = 24


_SET_LABELS = {"blocks": "Block outputs", "all": "Every candidate layer"}


def layer_set(handle, which: str) -> list:
    """The layers a view without a chosen subset shows: one per block (``methods.cams.core.blocks.block_layers``)
    or every candidate layer, in forward order (``LayerInfo`` rows)."""
    rows, _ = cache.layer_infos(handle)
    if which == "all":  # every layer that does something: no Identity, no dropout in eval, no empty .aa / .se
        return [r for r in rows if not getattr(r, "no_op", False)]
    blocks = {b.name for b in cache.block_infos(handle)}
    return [r for r in rows if r.name in blocks] or rows  # a model without blocks: every layer


def controls(state: ViewState) -> ViewState:
    """The method, its options, and the layers: the block outputs (or every candidate layer)
    unless a subset is chosen."""
    handle = cache.model_handle(state.model)
    rows, default = cache.layer_infos(handle)
    by_name = {r.name: r for r in rows}
    left, mid, right = st.columns([1, 1, 3], vertical_alignment="bottom")
    method = widgets.method_select(state, left)
    widgets.seed("w_layer_set", state.layer_set)
    which = mid.radio(
        "Layers shown",
        list(_SET_LABELS),
        key="w_layer_set",
        format_func=_SET_LABELS.get,
        horizontal=True,
        help="Block outputs: one map per block, what a network is read by. "
        f"Every candidate layer: the {sum(not getattr(r, 'no_op', False) for r in rows)} of {len(rows)} layers with "
        f"a spatial output that change their input (no Identity), {PER_PAGE} to a page.",
    )
    if which != state.layer_set:  # another set: its own layers, not the old subset
        state = replace(state, layer_set=which, layers=())
        st.session_state.pop("w_layers", None)
    shown = [r.name for r in layer_set(handle, which)]
    known = [l for l in state.layers if l in by_name]  # the sidebar reported unknown ones
    widgets.seed("w_layers", known or shown)
    chosen = right.multiselect(
        "Layers",
        list(by_name),
        key="w_layers",
        format_func=lambda n: f"{n} · {services.resolution(by_name[n])}" + (" (default)" if n == default else ""),
        help="Every candidate layer in forward order; remove some to focus on a few, or add any.",
    )
    chosen = sorted(chosen, key=lambda n: by_name[n].index)
    layers = () if chosen == shown else tuple(chosen)
    count = max(1, math.ceil(len(chosen) / PER_PAGE))
    page = 1
    if count > 1:
        widgets.seed("w_layer_page", min(max(1, state.layer_page), count))
        if st.session_state.get("w_layer_page", 1) not in range(1, count + 1):  # fewer pages than before
            widgets.force("w_layer_page", count)
        page = st.selectbox(
            "Page",
            list(range(1, count + 1)),
            key="w_layer_page",
            format_func=lambda p: (
                f"{p} of {count}: {chosen[(p - 1) * PER_PAGE]} … {chosen[min(p * PER_PAGE, len(chosen)) - 1]}"
            ),
            help=f"{len(chosen)} layers, {PER_PAGE} to a page; each page is one explain call.",
        )
    state = replace(state, method=method, layers=layers, layer_page=int(page))
    return widgets.option_widgets(state, [method])


def page_of(names: list[str], page: int) -> tuple[list[str], int, int]:
    """The layers on ``page`` (1-based, clamped), that page and the number of pages.

    Examples:
        >>> page_of([str(i) for i in range(30)], 2)[0][:2], page_of([str(i) for i in range(30)], 9)[1:]
        (['24', '25'], (2, 2))
    """
    count = max(1, math.ceil(len(names) / PER_PAGE))
    page = min(max(1, int(page)), count)
    return names[(page - 1) * PER_PAGE : page * PER_PAGE], page, count


def cost_text(spec, layers: list) -> str:
    """What the maps of these layers cost, from the registry spec (a score method runs its masked
    forwards layer by layer: Score-CAM at 8 layers of 1,536 channels in all is 1,536 of them)."""
    if spec.family == "score":
        channels = sum(info.shape[0] for info in layers)
        return (
            f"from one explain call that costs {spec.cost} for each layer, C being the layer's channels: "
            f"{channels:,} channels over these {len(layers)} layers"
        )
    if spec.needs_gradients:
        return f"from one explain call: {spec.cost} records all {len(layers)} layers at once"
    return f"from one explain call ({spec.cost} for each layer)"


FUSE_KEY = "w_layers_fuse"


def _fused(state: ViewState, bundle, names: list[str], raw: list, spec) -> None:
    """LayerCAM's fusion of the shown layers' maps (``methods.fuse_layer_maps``): from the maps
    already computed, so no model pass; a gradient-family method and two or more layers only."""
    if spec.family != "gradient" or len(names) < 2:
        return
    fuse = st.selectbox(
        "Fuse these layers (LayerCAM)",
        ["off", "max", "mean"],
        key=FUSE_KEY,
        help="Each layer's map resized to the input, rectified, divided by its maximum and scaled by tanh(2·) "
        "except the coarsest layer (LayerCAM, Jiang et al. 2021), then combined; docs/methods.md.",
    )
    if fuse == "off":
        return
    size = tuple(int(s) for s in bundle.image.shape[:2])
    fused = methods.fuse_layer_maps(dict(zip(names, raw)), size, fuse=fuse).numpy()  # (H, W) in [0, 1]
    pic = methods.render_views(
        bundle.picture,
        fused,
        colormap=state.draw_cmap,
        alpha=state.alpha,
        value_range=(0.0, 1.0),
        placement=bundle.place,
    ).overlay
    _, col, _ = st.columns([1, 2, 1])
    col.image(
        pictures.enlarge(pic, 256),
        caption=f"Fused ({fuse}) of {len(names)} layers · peak {fused.max():.3f} · mean {fused.mean():.3f} · "
        "colours 0 to 1",
        width="stretch",
    )


def show(state: ViewState) -> None:
    """Draw the Layers page from a view state."""
    handle = cache.model_handle(state.model)
    rows, default = cache.layer_infos(handle)
    by_name = {r.name: r for r in rows}
    everyone = list(state.layers) or [r.name for r in layer_set(handle, state.layer_set)]
    if not everyone:
        st.info("Choose at least one layer.")
        return
    names, page, count = page_of(everyone, state.layer_page)
    if count > 1 or (state.layer_set == "all" and not state.layers):
        skipped = [r.name for r in rows if getattr(r, "no_op", False)] if not state.layers else []
        st.caption(
            (
                f"Page {page} of {count}: layers {(page - 1) * PER_PAGE + 1}–{(page - 1) * PER_PAGE + len(names)} of "
                f"{len(everyone)}. "
                if count > 1
                else ""
            )
            + (
                f"Left out: {len(skipped)} layers whose output equals their input in one recorded forward pass "
                "(Identity, dropout in eval mode, empty .aa / .se placeholders): their maps are the previous layer's."
                if skipped
                else ""
            )
        )
    bundle = jobs.gated_maps(state, [state.method], names, key="layers")
    if bundle is None:
        return
    raw = [bundle.maps[state.method][n] for n in names]
    widgets.map_notes(bundle, [state.method], services.method_label)
    spec = methods.get_method(state.method)
    if len(names) > 1 and (spec.layer_independent or spec.family == "attention"):
        notice(
            f"{spec.label} draws one map whatever the layer (it reads "
            f"{'every block’s attention' if spec.family == 'attention' else 'the whole model'}, not one layer): "
            "every picture below is that same map. To see what each layer holds, choose a layer method such as Grad-CAM.",
            "info",
            icon=":material/layers_clear:",
        )
    widgets.note_constant(dict(zip(names, raw)))
    norm = services.normalized(raw, state)
    ranges = display_ranges(norm, mode=state.norm, relu=state.relu, scope=state.scope)
    label = services.method_label(state.method)
    st.caption(
        f"{label} for class **{md_escape(bundle.target_name)}** at {len(names)} layers, in forward order, "
        f"{cost_text(methods.get_method(state.method), [by_name[n] for n in names])} "
        f"({bundle.seconds.get(state.method, 0.0):.2f} s). "
        f"{'One shared scale: compare strengths across layers.' if state.scope == 'shared' else 'Each map on its own scale.'}"
    )
    overlays = [
        methods.render_views(
            bundle.picture, m, colormap=state.draw_cmap, alpha=state.alpha, value_range=r, placement=bundle.place
        ).overlay
        for m, r in zip(norm, ranges)
    ]
    scale = pictures.scale_of(
        state.draw_cmap, ranges, pictures.scale_text(state.norm, state.relu, state.scope, (state.p_lo, state.p_hi))
    )
    size = tuple(int(s) for s in handle.loaded.input_size)
    borders = [border_share(m, size) for m in raw]
    limit = border_threshold(size)
    captions = [
        f"{n} · {services.resolution(by_name[n])}"
        + (" · default" if n == default else "")
        + (" · no positive value" if state.relu and m.max() <= 0 else "")
        + (f" · ⚠ border {b:.2f}" if b >= limit else "")
        + ("" if scale.value_range is not None else f" · [{r[0]:.3g}, {r[1]:.3g}]")
        for n, m, r, b in zip(names, raw, ranges, borders)
    ]
    widgets.note_border(names, borders, size)
    ncols = 4
    for start in range(0, len(names), ncols):
        cols = st.columns(ncols)
        for col, pic, cap in zip(cols, overlays[start : start + ncols], captions[start : start + ncols]):
            col.image(pictures.enlarge(pic, 256), caption=cap, width="stretch")
    _, bar = st.columns([2, 2])
    bar.image(pictures.colorbar(scale, 480), caption=f"Overlay colours: {scale.range_text}", width="stretch")
    _fused(state, bundle, names, raw, spec)

    st.subheader("How concentrated is the map, by depth?")
    size = bundle.image.shape[:2]
    shares = [figures.top_share(methods.viz.render.resize_map(m, size), TOP_FRACTION) for m in raw]
    st.plotly_chart(
        figures.concentration_figure(names, shares, [services.resolution(by_name[n]) for n in names], TOP_FRACTION),
        width="stretch",
        key="layers_concentration",
    )
    empty = [n for n, s in zip(names, shares) if s != s]  # NaN: nothing positive to share
    st.caption(
        f"Share of the map's positive mass in its top {TOP_FRACTION:.0%} of pixels (map resized to the "
        f"image): {TOP_FRACTION:.2f} = spread evenly, 1 = all on a few pixels; computed on the raw map after "
        "ReLU, so it does not depend on the normalization."
        + (f" Gaps: {', '.join(empty)} have no positive value for this class." if empty else "")
    )
    table = pd.DataFrame(
        {
            "Layer": names,
            "Type": [by_name[n].type for n in names],
            "Output C×h×w": [services.resolution(by_name[n]) for n in names],
            f"Top {TOP_FRACTION:.0%} share": [round(s, 4) for s in shares],
            "Border share": [round(b, 4) for b in borders],
            "Raw min": [float(m.min()) for m in raw],
            "Raw max": [float(m.max()) for m in raw],
        }
    )
    notes = pictures.notes_text({label: bundle.notes.get(state.method, ())})
    a, b = st.columns(2)
    with a:
        grid = partial(
            pictures.compose_grid,
            overlays,
            captions,
            ncols=ncols,
            cell=224,
            scale=scale,
            title=f"{label} · {state.model} · {state.image} · class {bundle.target_name}",
            note=notes or None,
        )
        widgets.download_png(
            "Layer grid as PNG",
            grid,
            "gradlens_layers.png",
            key="dl_layers_png",
            info=pictures.with_notes(scale.png_info(), notes),
        )
    with b:
        widgets.download_csv("Layer table as CSV", table, "gradlens_layers.csv", key="dl_layers_csv")
    with st.expander("Layer table"):
        st.dataframe(table, hide_index=True, width="stretch")
