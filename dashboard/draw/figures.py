"""Figure builders for the dashboard: pure numpy / plotly, no streamlit.

Everything here takes arrays that are already computed (raw or normalized maps, curves) and
returns a Plotly figure or a number. Nothing runs a model. Titles, layer and method names may be
user text: each reaches a figure through :func:`dashboard.draw.text.plotly_text`. The pictures and PNG grids are in
:mod:`dashboard.draw.pictures`; colours and curve styles come from :mod:`methods.viz.styles`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.draw.pictures import data_uri
from dashboard.draw.text import plotly_text, plotly_texts
from methods.viz import render as _render
from methods.viz.styles import (
    CURVE_TITLES,
    PALETTE,
    REFERENCE_KEYS,
    SCORE_LABEL,
    curve_lines,
)

__all__ = ["colorscale", "map_figure", "histogram_figure", "top_share", "concentration_figure", "curves_figure"]


# ------------------------------------------------------------------------------------------
# colours and value ranges


def colorscale(cmap: str, n: int = 33) -> list[list]:
    """The OpenCV colormap ``cmap`` (as used by :func:`methods.viz.render.heatmap`) as a Plotly
    colorscale, so interactive figures and rendered PNGs use the very same colours."""
    ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)[None, :]  # (1, n)
    rgb = _render.heatmap(ramp, (1, n), colormap=cmap)[0]  # (n, 3)
    return [[float(t), f"rgb({r},{g},{b})"] for t, (r, g, b) in zip(np.linspace(0, 1, n), rgb)]


# ------------------------------------------------------------------------------------------
# interactive maps


def map_figure(
    image: np.ndarray,
    norm_maps: Sequence[np.ndarray],
    raw_maps: Sequence[np.ndarray],
    titles: Sequence[str],
    *,
    cmap: str = "jet",
    alpha: float = 0.5,
    ranges: Sequence[tuple[float, float]] | None = None,
    ncols: int = 3,
    cell_px: int = 420,
    placement=None,
) -> go.Figure:
    """Maps over the image, one panel each; hover shows the cell, normalized and raw value.

    Each map is drawn at its layer resolution (one coloured cell per map value) over the image,
    with opacity ``alpha``.

    Args:
        image: (H, W, 3) uint8: the model's input view, or with ``placement`` the user's own picture.
        norm_maps: (h, w) normalized maps (what the colours show).
        raw_maps: (h, w) raw maps of the same shapes (shown on hover).
        titles: one per map.
        ranges: colour range of each map (default: (0, 1)).
        placement: where the model input lies on ``image`` (``MapBundle.place``,
            :class:`methods.data.placement.Placement`): each cell is drawn where its part of the input
            lies on the picture (the affine ``u = scale * X - offset`` inverted), and the part of the
            picture the model did not see is dimmed as in :func:`methods.viz.render.render_views`.
    """
    n = len(norm_maps)
    if not (n == len(raw_maps) == len(titles)) or n == 0:
        raise ValueError("map_figure needs as many normalized maps, raw maps and titles, at least one")
    ranges = list(ranges) if ranges is not None else [(0.0, 1.0)] * n
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    if placement is not None:  # the picture with its unseen border dimmed (alpha 0: no colour)
        image = _render.render_views(image, np.zeros((1, 1), np.float32), alpha=0.0, placement=placement).overlay
    height, width = image.shape[:2]
    in_h, in_w = placement.input_size if placement is not None else (height, width)
    (sy, sx), (oy, ox) = (placement.scale, placement.offset) if placement is not None else ((1.0, 1.0), (0, 0))
    fig = make_subplots(
        rows=nrows,
        cols=ncols,
        subplot_titles=plotly_texts(titles),
        horizontal_spacing=0.03,
        vertical_spacing=0.08 if nrows > 1 else 0.02,
    )
    shared = len(set(ranges)) == 1
    scale = colorscale(cmap)
    src = data_uri(image)
    traces, rows, cols = [], [], []
    for i, (nm, rm) in enumerate(zip(norm_maps, raw_maps)):
        nm = np.asarray(nm, dtype=np.float32)
        rm = np.asarray(rm, dtype=np.float32)
        if nm.shape != rm.shape:
            raise ValueError(f"map {titles[i]!r}: normalized {nm.shape} and raw {rm.shape} shapes differ")
        h, w = nm.shape
        dx, dy = in_w / w / sx, in_h / h / sy  # one cell, in picture pixels
        rows_idx, cols_idx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        custom = np.stack([rm, rows_idx, cols_idx], axis=-1)  # (h, w, 3)
        lo, hi = ranges[i]
        traces.append(go.Image(source=src, hoverinfo="skip"))
        traces.append(
            go.Heatmap(
                z=nm,
                customdata=custom,
                x0=(in_w / w / 2 + ox) / sx - 0.5,  # cell centre on the picture; pixel i is centred at i
                dx=dx,
                y0=(in_h / h / 2 + oy) / sy - 0.5,
                dy=dy,
                zmin=lo,
                zmax=hi,
                colorscale=scale,
                opacity=alpha,
                showscale=shared and i == n - 1,
                colorbar=dict(thickness=12, len=0.8) if shared else None,
                hovertemplate=(
                    "cell (row %{customdata[1]}, col %{customdata[2]})"
                    f" of {h}×{w}<br>normalized %{{z:.3f}}<br>raw %{{customdata[0]:.4g}}"
                    f"<extra>{plotly_text(titles[i])}</extra>"
                ),
            )
        )
        row, col = divmod(i, ncols)
        rows += [row + 1, row + 1]
        cols += [col + 1, col + 1]
    fig.add_traces(traces, rows=rows, cols=cols)
    axes = {}
    for i in range(nrows * ncols):
        suffix = "" if i == 0 else str(i + 1)
        axes[f"xaxis{suffix}"] = dict(showticklabels=False, showgrid=False, zeroline=False, range=[-0.5, width - 0.5])
        axes[f"yaxis{suffix}"] = dict(
            showticklabels=False,
            showgrid=False,
            zeroline=False,
            range=[height - 0.5, -0.5],
            scaleanchor=f"x{suffix}",
            scaleratio=1,
        )
    fig.update_layout(
        **axes,
        height=int(nrows * min(cell_px, 1000 / ncols) * max(0.6, height / width) + 40 + 30 * nrows),
        margin=dict(l=10, r=10, t=40, b=10),
    )
    return fig


def histogram_figure(
    values: np.ndarray, *, value_range: tuple[float, float], title: str = "", bins: int = 40
) -> go.Figure:
    """A small bar histogram of a map's values over ``value_range`` (counts computed here; log
    count axis, so the spike of zeros after a ReLU does not flatten everything else)."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = value_range
    if not hi > lo:
        hi = lo + 1.0
    counts, edges = np.histogram(np.clip(arr, lo, hi), bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure(
        go.Bar(
            x=centres,
            y=counts,
            width=(hi - lo) / bins,
            marker_color="#4a6fa5",
            hovertemplate="%{x:.3g}: %{y} values<extra></extra>",
        )
    )
    fig.update_layout(
        title=dict(text=plotly_text(title), font=dict(size=12)) if title else None,
        height=170,
        margin=dict(l=10, r=10, t=28 if title else 8, b=10),
        bargap=0,
        showlegend=False,
        xaxis=dict(range=[lo, hi], tickfont=dict(size=10)),
        yaxis=dict(tickfont=dict(size=10), title=None, type="log"),  # a spike at 0 must not hide the rest
    )
    return fig


# ------------------------------------------------------------------------------------------
# layers


def top_share(m: np.ndarray, frac: float = 0.1) -> float:
    """Share of the positive mass of ``m`` held by its top ``frac`` of pixels.

    ``ReLU(m)`` is used; a uniform map gives ``frac``, a single hot pixel gives 1, a map with no
    positive value gives NaN.
    """
    if not 0.0 < frac <= 1.0:
        raise ValueError(f"frac={frac!r} must be in (0, 1]")
    pos = np.maximum(np.asarray(m, dtype=np.float64).ravel(), 0.0)
    total = pos.sum()
    if pos.size == 0 or total <= 0:
        return float("nan")
    k = max(1, int(math.ceil(frac * pos.size)))
    top = np.partition(pos, pos.size - k)[pos.size - k :]
    return float(top.sum() / total)


def concentration_figure(
    layers: Sequence[str], shares: Sequence[float], resolutions: Sequence[str], frac: float = 0.1
) -> go.Figure:
    """Share of positive mass in the top ``frac`` of pixels, by layer in forward order."""
    fig = go.Figure(
        go.Scatter(
            x=list(range(len(layers))),
            y=list(shares),
            mode="lines+markers",
            customdata=np.stack(
                [np.asarray(plotly_texts(layers), dtype=object), np.asarray(plotly_texts(resolutions), dtype=object)],
                axis=-1,
            )
            if layers
            else None,
            hovertemplate="%{customdata[0]} (%{customdata[1]})<br>top share %{y:.2f}<extra></extra>",
            line=dict(color=PALETTE[0]),
        )
    )
    fig.add_hline(
        y=frac,
        line=dict(color="#999999", dash="dot"),
        annotation_text="uniform map",
        annotation_position="bottom right",
    )
    fig.update_layout(
        height=300,
        margin=dict(l=10, r=10, t=30, b=10),
        xaxis=dict(
            tickmode="array",
            tickvals=list(range(len(layers))),
            ticktext=plotly_texts(layers),
            title="layer (forward order)",
            tickangle=-45 if len(layers) > 6 else 0,
        ),
        yaxis=dict(range=[0, 1.02], title=f"mass in top {frac:.0%} of pixels"),
    )
    return fig


# ------------------------------------------------------------------------------------------
# faithfulness


def curves_figure(
    deletion: Mapping[str, tuple[np.ndarray, np.ndarray]],
    insertion: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    labels: Mapping[str, str] | None = None,
    references: Sequence[str] = REFERENCE_KEYS,
    marker: float | None = None,
    score_label: str = SCORE_LABEL,
) -> go.Figure:
    """Deletion and insertion curves side by side on one figure, in the library's curve styles
    (:func:`methods.viz.styles.curve_lines`: palette colours for methods, grey for references).

    Args:
        deletion, insertion: name -> (fractions, scores).
        labels: display name per key (default: the key).
        references: keys drawn as grey dashed reference curves.
        marker: a fraction to mark with a vertical line (the step being shown).
    """
    labels = dict(labels or {})
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=(CURVE_TITLES["deletion"], CURVE_TITLES["insertion"]), horizontal_spacing=0.08
    )
    lines = curve_lines([*deletion, *insertion], references)
    for col, curves in ((1, deletion), (2, insertion)):
        for key, (fractions, scores) in curves.items():
            name = plotly_text(labels.get(key, key))
            line = lines[key]
            fig.add_trace(
                go.Scatter(
                    x=np.asarray(fractions, dtype=float),
                    y=np.asarray(scores, dtype=float),
                    mode="lines",
                    name=name,
                    legendgroup=key,
                    showlegend=col == 1,
                    line=line,
                    hovertemplate=f"{name}<br>fraction %{{x:.2f}}<br>score %{{y:.3f}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    if marker is not None:
        for col in (1, 2):
            fig.add_vline(x=float(marker), line=dict(color="#aaaaaa", width=1), row=1, col=col)
    fig.update_xaxes(title="fraction of pixels", range=[0, 1])
    fig.update_yaxes(title=score_label, rangemode="tozero")
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=50, b=10), legend=dict(orientation="h", y=-0.2))
    return fig
