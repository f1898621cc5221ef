"""Methods side by side: one layer, several methods, one normalization; hover shows the values."""

from dataclasses import replace

import numpy as np
import pandas as pd
import streamlit as st

import methods
from dashboard.app import jobs, widgets
from dashboard.app.errors import md_escape, notice
from dashboard.core import services
from dashboard.core.state import ViewState
from dashboard.draw import figures, pictures
from methods.viz.ranges import display_ranges


def controls(state: ViewState) -> ViewState:
    """Methods, layer, the switch for slow methods, and each method's options (above the maps)."""
    specs = methods.list_methods()
    names = [s.name for s in specs]
    labels = {s.name: s.label + (" (slow)" if s.is_slow else "") for s in specs}
    wanted = [m for m in state.methods if m in names] or names[:1]
    widgets.seed("w_methods", wanted)
    left, mid, right = st.columns([3, 2, 1.3], vertical_alignment="bottom")
    chosen = left.multiselect(
        "Methods",
        names,
        key="w_methods",
        format_func=labels.get,
        help="Every method registered in the library (methods.list_methods()).",
    )
    layer = widgets.layer_select(state, mid)
    widgets.seed("w_slow", state.slow)
    slow = right.toggle("Run slow methods", key="w_slow", help="Otherwise each slow method waits for its Run button.")
    state = replace(state, methods=tuple(chosen) or state.methods, layer=layer, slow=slow)
    return widgets.option_widgets(state, state.methods)  # an expander per chosen method with options


#: The percentile a fine-grained pixel map is clipped at for display (its brightest 1 % saturate).
FINE_CLIP = 99.0


def fine_grained(name: str, raw: np.ndarray, input_size) -> bool:
    """A pixel-family method's gradient map at the input's own resolution (Guided Backprop, Guided
    Grad-CAM, FullGrad): a few pixels hold the maximum, so min-max leaves the rest nearly black."""
    spec = methods.get_method(name)
    return spec.family == "pixel" and spec.needs_gradients and tuple(raw.shape) == tuple(input_size)


def display_norms(names: list[str], raw: list, state: ViewState, input_size) -> tuple[list, list[str]]:
    """The maps as drawn, and the methods drawn with a percentile clip: under the default per-map
    min-max, a fine-grained pixel map (:func:`fine_grained`) is scaled from 0 (or its minimum without
    ReLU) to its :data:`FINE_CLIP` th percentile instead of its maximum, brighter pixels saturating."""
    norm = services.normalized(raw, state)
    if state.norm != "minmax" or state.scope != "per_map":
        return norm, []
    clipped = []
    for k, (name, r) in enumerate(zip(names, raw)):
        if fine_grained(name, r, input_size):
            norm[k] = services.normalized([r], state, mode="percentile", percentiles=(0.0, FINE_CLIP))[0]
            clipped.append(name)
    return norm, clipped


def shared_scale_warning(titles: list[str], raw: list, relu: bool) -> str:
    """What a shared scale across methods does: their raw units differ (Grad-CAM++ peaked at 22.8
    where the others peaked near 0.19), so the small-unit maps draw pale or blank."""
    peaks = [float(max(r.max(), 0.0) if relu else abs(r).max()) for r in raw]
    order = sorted(range(len(titles)), key=lambda i: -peaks[i])
    listed = ", ".join(f"{titles[i]} {peaks[i]:.3g}" for i in order)
    ratio = peaks[order[0]] / peaks[order[-1]] if peaks[order[-1]] > 0 else float("inf")
    return (
        f"One shared scale across methods compares raw values whose units differ from method to method "
        f"(largest {'positive ' if relu else ''}value: {listed}"
        + (f"; ×{ratio:.3g} apart" if ratio != float("inf") else "")
        + "). Maps with small units then draw pale or blank. The shared scale is meant for maps of one "
        "method (the Layers page); choose “per map” in the sidebar to compare where each method looks."
    )


#: Maps equal by mathematics: the registry names of methods whose rules coincide, and when.
IDENTITIES: tuple[tuple[frozenset[str], str], ...] = (
    (
        frozenset({"gradcam", "xgradcam", "hirescam"}),
        "where the gradient of the class score is the same at every position of the layer, as when the "
        "layer feeds global average pooling and a linear head (y = Σ_k w_k · mean(A_k), so ∂y/∂A_k = "
        "w_k/(h·w) everywhere), Grad-CAM's averaged gradient, XGrad-CAM's activation-weighted gradient and "
        "HiResCAM's element-wise gradient × activation all reduce to Σ_k w_k A_k/(h·w).",
    ),
    (
        frozenset({"layercam", "gradcam_elementwise"}),
        "both rules are ReLU(∂y/∂A) ⊙ A summed over channels, at every layer.",
    ),
)
SAME_TOL = 1e-6  # largest difference of two min-max normalized maps that still reads as the same map
SECONDS = "Seconds (incl. the shared forward+backward, counted once per method)"


def identical_groups(names: list[str], raw: list[np.ndarray], tol: float = SAME_TOL) -> list[list[str]]:
    """Groups (two or more, in the given order) of methods whose maps are equal to ``tol`` after
    min-max; constant maps are left out (they are equal for no reason worth a note).

    Examples:
        >>> a = np.array([[0.0, 1.0], [2.0, 3.0]])
        >>> identical_groups(["g", "x", "l"], [a, 5 * a + 1, a[::-1]])
        [['g', 'x']]
    """
    scaled = {}
    for n, r in zip(names, raw):
        lo, hi = float(r.min()), float(r.max())
        if r.size and hi > lo:
            scaled[n] = (np.asarray(r, dtype=np.float64) - lo) / (hi - lo)
    groups: list[list[str]] = []
    for n, m in scaled.items():
        home = next(
            (g for g in groups if scaled[g[0]].shape == m.shape and np.abs(scaled[g[0]] - m).max() <= tol), None
        )
        if home is None:
            groups.append([n])
        else:
            home.append(n)
    return [g for g in groups if len(g) > 1]


def identity_note(group: list[str], layer: str) -> str:
    """What a reader must know about methods that draw the same map: one piece of evidence, and why."""
    titles = [services.method_label(m) for m in group]
    listed = ", ".join(titles[:-1]) + f" and {titles[-1]}"
    why = next((reason for members, reason in IDENTITIES if set(group) <= members), None)
    text = f"{listed} draw the same map at layer {layer} (equal to {SAME_TOL:g} after min-max). "
    text += (
        f"That is mathematics, not chance: {why}"
        if why
        else "Their rules coincide on this image and layer, for no reason the dashboard knows of."
    )
    return text + " Their agreement is one piece of evidence, not several."


def show(state: ViewState) -> None:
    """Draw the Methods page from a view state."""
    if not state.methods:
        st.info("Choose at least one method.")
        return
    bundle = jobs.gated_maps(state, state.methods, [state.layer], key="methods")
    if bundle is None:
        return
    names = [m for m in state.methods if m in bundle.maps]
    layer = next(iter(bundle.maps[names[0]]))
    raw = [bundle.maps[m][layer] for m in names]
    widgets.note_constant({services.method_label(m): r for m, r in zip(names, raw)})
    widgets.map_notes(bundle, names, services.method_label)
    for group in identical_groups(names, raw):
        notice(identity_note(group, layer), "info", icon=":material/equal:")
    input_size = bundle.image.shape[:2]
    norm, clipped = display_norms(names, raw, state, input_size)
    if clipped:
        notice(
            f"{', '.join(services.method_label(m) for m in clipped)}: a fine-grained pixel map, drawn with a "
            f"{FINE_CLIP:g}th-percentile clip (values up to the {FINE_CLIP:g}th percentile span the colours, the "
            "brightest 1 % saturate): under plain min-max a few pixels hold the maximum and the rest is nearly "
            "invisible. Choose another normalization in the sidebar to drop the clip.",
            "info",
            icon=":material/contrast:",
        )
    ranges = display_ranges(norm, mode=state.norm, relu=state.relu, scope=state.scope)
    target = bundle.target_name
    h, w = raw[0].shape
    st.caption(
        f"Class **{md_escape(target)}** · layer {md_escape(layer)} ({h}×{w} cells) · {state.norm} normalization"
        f"{' after ReLU' if state.relu else ''}, {'one shared scale' if state.scope == 'shared' else 'each map on its own scale'}. "
        "Hover a cell for its raw and normalized value."
    )
    titles = [services.method_label(m) for m in names]
    if state.scope == "shared" and len(names) > 1:
        notice(shared_scale_warning(titles, raw, state.relu), "info", icon=":material/straighten:")
    fig = figures.map_figure(
        bundle.picture,
        norm,
        raw,
        titles,
        cmap=state.draw_cmap,
        alpha=state.alpha,
        ranges=ranges,
        ncols=2 if len(names) == 4 else min(3, len(names)),
        placement=bundle.place,
    )
    st.plotly_chart(fig, width="stretch", key="methods_fig")

    scale = pictures.scale_of(
        state.draw_cmap, ranges, pictures.scale_text(state.norm, state.relu, state.scope, (state.p_lo, state.p_hi))
    )

    notes = pictures.notes_text({services.method_label(m): bundle.notes.get(m, ()) for m in names})

    def grid():  # composed only when the PNG is downloaded
        overlays = [
            methods.viz.render.overlay(
                bundle.picture, m, colormap=state.draw_cmap, alpha=state.alpha, value_range=r, placement=bundle.place
            )
            for m, r in zip(norm, ranges)
        ]
        caps = (
            titles
            if scale.value_range is not None
            else [f"{t} [{r[0]:.3g}, {r[1]:.3g}]" for t, r in zip(titles, ranges)]
        )
        return pictures.compose_grid(
            [bundle.picture] + overlays,
            ["Image"] + caps,
            ncols=min(5, len(names) + 1),
            cell=224,
            title=f"{state.model} · {state.image} · class {target} · {layer}",
            scale=scale,
            note=notes or None,
        )

    specs = {m: methods.get_method(m) for m in names}
    table = pd.DataFrame(
        {
            "Method": titles,
            "Family": [specs[m].family for m in names],
            "Cost": [specs[m].cost for m in names],
            SECONDS: [round(bundle.seconds.get(m, float("nan")), 4) for m in names],
            "Raw min": [float(r.min()) for r in raw],
            "Raw max": [float(r.max()) for r in raw],
            "Positive share": [float((r > 0).mean()) for r in raw],
        }
    )
    st.dataframe(table, hide_index=True, width="stretch")
    st.caption(
        "Seconds: the methods computed together share ONE forward and backward pass of the model, and "
        "each row counts that shared pass again plus the method's own work, so the rows do not add up "
        "to the time the page took; between methods computed in the same run, the difference of two rows "
        "is the difference of their own extra times."
    )
    a, b = st.columns(2)
    with a:
        widgets.download_png(
            "Overlays as PNG",
            grid,
            "gradlens_methods.png",
            key="dl_methods_png",
            info=pictures.with_notes(scale.png_info(), notes),
        )
    with b:
        widgets.download_csv("Table as CSV", table, "gradlens_methods.csv", key="dl_methods_csv")
