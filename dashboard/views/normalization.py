"""Normalization: one raw map under every normalization choice, each with its value histogram."""

from dataclasses import replace
from functools import partial

import pandas as pd
import streamlit as st

import methods
from dashboard.app import jobs, widgets
from dashboard.app.errors import md_escape
from dashboard.core import services
from dashboard.core.state import ViewState
from dashboard.draw import figures, pictures
from methods.viz.ranges import display_colormap, display_range

MODE_TEXT = {
    "raw": "unchanged; the colours stretch over the map's own range",
    "minmax": "(M − min) / (max − min): always full contrast, even for a weak map",
    "max": "M / max|M|: 0 stays 0 and the sign survives; a weak map stays pale next to a strong one",
    "percentile": "clip to the percentiles, then min-max: one hot outlier cannot squash the rest",
}

WHY = """
**Why both *max* and *min-max*?** Min-max maps the smallest value to 0 and the largest to 1, so every
map looks equally confident, and without ReLU it moves zero to wherever the minimum was (compare the
two *min-max* panels: the negative evidence becomes "warm"). *Max* divides by the largest magnitude
only: zero stays zero, negative evidence stays negative (the colormap's lower half when ReLU is off),
and with a shared scale across maps a weak map stays weak. *Percentile* is min-max that ignores the
extreme tails. ReLU first (the papers' choice) keeps only evidence *for* the class.
"""


def same_max_minmax(raw) -> bool:
    """True when, after ReLU, *max* and *min-max* normalization give the same map: the rectified
    map's minimum is 0 (a value <= 0 before ReLU) and it has a positive value.

    Examples:
        >>> import numpy as np
        >>> same_max_minmax(np.array([[-1.0, 2.0]])), same_max_minmax(np.array([[1.0, 2.0]]))
        (True, False)
    """
    return float(raw.min()) <= 0.0 < float(raw.max())


def controls(state: ViewState) -> ViewState:
    left, right = st.columns(2)
    method = widgets.method_select(state, left)
    layer = widgets.layer_select(state, right)
    return widgets.option_widgets(replace(state, method=method, layer=layer), [method])


def show(state: ViewState) -> None:
    """Draw the Normalization page from a view state."""
    bundle = jobs.gated_maps(state, [state.method], [state.layer], key="norm")
    if bundle is None:
        return
    layer = next(iter(bundle.maps[state.method]))
    raw = bundle.maps[state.method][layer]
    widgets.map_notes(bundle, [state.method], services.method_label)
    label = services.method_label(state.method)
    st.caption(
        f"{label} for class **{md_escape(bundle.target_name)}** at {md_escape(layer)} ({raw.shape[0]}×{raw.shape[1]}). "
        f"Raw values from **{raw.min():.4g}** to **{raw.max():.4g}** "
        f"({(raw > 0).mean():.0%} positive). Histograms count the {raw.size} map values."
    )
    widgets.note_constant({f"{label} at {layer}": raw})
    st.markdown(WHY)
    panels, captions, stats = [], [], []
    for relu in (True, False):
        st.subheader("ReLU, then scale" if relu else "No ReLU: the sign is kept")
        if relu and same_max_minmax(raw):
            st.caption(
                "*max* and *min-max* draw the same picture here: after ReLU the map is non-negative and its "
                "minimum is 0 (some value is ≤ 0 before ReLU), so M / max M and (M − min) / (max − min) coincide. "
                "They differ below, without ReLU, where the minimum is negative."
            )
        if not relu and raw.min() >= 0:
            st.caption(
                "This map has no negative value, so ReLU changes nothing here; only *max* draws it "
                "differently, over [−1, 1] with 0 in the middle of the colormap."
            )
        cols = st.columns(len(services.NORM_MODES))
        for col, mode in zip(cols, services.NORM_MODES):
            norm = services.normalized([raw], state, mode=mode, relu=relu, scope="per_map")[0]
            lo, hi = display_range(norm, mode=mode, relu=relu)
            cmap = display_colormap(state.cmap, mode=mode, relu=relu)  # signed panels: diverging, 0 white
            heat = methods.viz.render.heatmap(norm, bundle.image.shape[:2], colormap=cmap, value_range=(lo, hi))
            title = f"{mode}{' (' + format(state.p_lo, 'g') + '–' + format(state.p_hi, 'g') + ' %)' if mode == 'percentile' else ''}"
            scale = pictures.ColourScale(cmap, (lo, hi), f"{title}, {'ReLU' if relu else 'no ReLU'}")
            heat = pictures.with_colorbar(pictures.enlarge(heat, 256), scale)  # each variant: its own range
            with col:
                st.markdown(f"**{title}**")
                st.image(heat, width="stretch")
                st.plotly_chart(
                    figures.histogram_figure(norm, value_range=(lo, hi)),
                    width="stretch",
                    key=f"hist_{mode}_{relu}",
                    config={"displayModeBar": False},
                )
                st.caption(
                    f"values {norm.min():.3g} … {norm.max():.3g} · colours span [{lo:.3g}, {hi:.3g}] · "
                    f"{MODE_TEXT[mode]}"
                )
            panels.append(heat)
            captions.append(f"{title}, {'ReLU' if relu else 'no ReLU'}")
            stats.append(
                {
                    "mode": mode,
                    "relu": relu,
                    "min": float(norm.min()),
                    "max": float(norm.max()),
                    "mean": float(norm.mean()),
                    "share >= half of max": float((norm >= 0.5 * max(norm.max(), 1e-12)).mean()),
                    "colour low": lo,
                    "colour high": hi,
                }
            )
    table = pd.DataFrame(stats)
    a, b = st.columns(2)
    with a:
        grid = partial(
            pictures.compose_grid,
            panels,
            captions,
            ncols=len(services.NORM_MODES),
            cell=max(panels[0].shape[:2]),  # drawn 1:1: each variant's colour bar stays sharp
            title=f"{label} · {layer} · class {bundle.target_name}",
            note=f"raw map values {float(raw.min()):.4g} … {float(raw.max()):.4g}; under each variant: "
            "its colour bar, value range and normalization",
        )
        widgets.download_png(
            "All variants as PNG",
            grid,
            "gradlens_normalization.png",
            key="dl_norm_png",
            info={
                "GradLens normalization": "every mode, with and without ReLU (one colour bar under each variant)",
                "GradLens colour range": "each variant its own, written on its colour bar",
                "GradLens raw range": f"{float(raw.min()):.6g} .. {float(raw.max()):.6g}",
                "GradLens colormap": f"{state.cmap} (signed panels: {methods.viz.render.DIVERGING})",
            },
        )
    with b:
        widgets.download_csv("Value summary as CSV", table, "gradlens_normalization.csv", key="dl_norm_csv")
    with st.expander("Value summary"):
        st.dataframe(table.round(4), hide_index=True, width="stretch")
