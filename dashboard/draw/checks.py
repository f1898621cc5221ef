"""Plotly figures of the Compare and Sanity pages: pure plotly / numpy, no streamlit, no model.

* :func:`similarity_heatmap`: the layer x layer agreement of two models (hover: both layers,
  their grids and every agreement number), the matched depths marked;
* :func:`depth_figure`: agreement by matched depth, one line per pair of models;
* :func:`sanity_figure`: similarity to the trained map against the number of randomized blocks,
  one colour per method (Spearman solid, SSIM dashed), the target probability on a second axis.

Colours come from THE palette, :data:`methods.viz.styles.PALETTE`. Layer, model, method and class
names are user text (a checkpoint's classes, a saved snapshot's fields): every one reaches the figure
through :func:`dashboard.draw.text.plotly_text`, so none becomes Plotly markup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.draw.text import plotly_text, plotly_texts
from methods.viz.styles import PALETTE

__all__ = ["similarity_heatmap", "depth_figure", "sanity_figure"]

_CORRELATIONS = ("spearman", "pearson")  # in [-1, 1]: a diverging scale around 0


def similarity_heatmap(
    names_a: Sequence[str],
    names_b: Sequence[str],
    grids_a: Sequence[str],
    grids_b: Sequence[str],
    values: Mapping[str, np.ndarray],
    metric: str,
    labels: Mapping[str, str],
    *,
    model_a: str,
    model_b: str,
    marks: Sequence[tuple[str, str]] = (),
) -> go.Figure:
    """Rows = layers of A (forward order, top to bottom), columns = layers of B.

    Args:
        names_a, names_b: layer names; ``grids_a``, ``grids_b``: each layer's ``C×h×w`` text.
        values: metric -> (L_a, L_b) matrix (every metric goes into the hover).
        metric: the metric the colours show.
        labels: metric -> display name.
        marks: (layer of A, layer of B) cells to mark (the matched depths).
    """
    z = np.asarray(values[metric], dtype=float)  # (L_a, L_b)
    model_a, model_b = plotly_text(model_a), plotly_text(model_b)
    la, lb = z.shape
    names = list(values)
    custom = np.empty((la, lb, 2 + len(names)), dtype=object)  # (L_a, L_b, k)
    for i in range(la):
        for j in range(lb):
            custom[i, j, 0] = plotly_text(f"{names_a[i]} ({grids_a[i]})")
            custom[i, j, 1] = plotly_text(f"{names_b[j]} ({grids_b[j]})")
            for k, m in enumerate(names):
                custom[i, j, 2 + k] = f"{float(values[m][i, j]):.3f}"
    hover = (
        f"{model_a}: %{{customdata[0]}}<br>{model_b}: %{{customdata[1]}}<br>"
        + "<br>".join(f"{plotly_text(labels.get(m, m))} %{{customdata[{2 + k}]}}" for k, m in enumerate(names))
        + "<extra></extra>"
    )
    diverging = metric in _CORRELATIONS
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(range(lb)),
            y=list(range(la)),
            customdata=custom,
            hovertemplate=hover,
            colorscale="RdBu_r" if diverging else "Viridis",
            zmin=-1.0 if diverging else 0.0,
            zmax=1.0,
            colorbar=dict(title=dict(text=plotly_text(labels.get(metric, metric)), side="right"), thickness=14),
        )
    )
    if marks:
        ia = [list(names_a).index(a) for a, _ in marks]
        ib = [list(names_b).index(b) for _, b in marks]
        fig.add_trace(
            go.Scatter(
                x=ib,
                y=ia,
                mode="markers",
                name="matched depths",
                hoverinfo="skip",
                marker=dict(symbol="square-open", size=16, color="black", line=dict(width=2)),
            )
        )
    fig.update_layout(
        height=max(360, min(900, 22 * la + 160)),
        margin=dict(l=10, r=10, t=30, b=10),
        showlegend=bool(marks),
        legend=dict(orientation="h", y=1.02, x=0, yanchor="bottom"),
        xaxis=dict(
            title=f"{model_b} (forward order)",
            tickmode="array",
            tickvals=list(range(lb)),
            ticktext=plotly_texts(names_b),
            tickangle=-60,
            tickfont=dict(size=10),
        ),
        yaxis=dict(
            title=f"{model_a} (forward order)",
            tickmode="array",
            tickvals=list(range(la)),
            ticktext=plotly_texts(names_a),
            autorange="reversed",
            tickfont=dict(size=10),
        ),
    )
    return fig


def depth_figure(
    depths: Sequence[float],
    series: Mapping[str, Mapping[str, Sequence[float]]],
    hover: Mapping[str, Sequence[str]],
    labels: Mapping[str, str],
) -> go.Figure:
    """Agreement by matched depth: ``series[pair][metric]`` (one value per depth), one colour per
    pair, one dash per metric (the first solid); ``hover[pair]`` names the layers at each depth."""
    fig = go.Figure()
    dashes = ("solid", "dot", "dash", "dashdot")
    x = [100.0 * d for d in depths]
    for p, (pair, by_metric) in enumerate(series.items()):
        shown = plotly_text(pair)
        for k, (metric, values) in enumerate(by_metric.items()):
            what = plotly_text(labels.get(metric, metric))
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=list(values),
                    mode="lines+markers",
                    name=f"{shown}: {what}",
                    line=dict(
                        color=PALETTE[p % len(PALETTE)], dash=dashes[k % len(dashes)], width=2.5 if k == 0 else 1.8
                    ),
                    customdata=plotly_texts(hover.get(pair, [""] * len(x))),
                    hovertemplate=f"{shown}<br>depth %{{x:.0f}} %<br>%{{customdata}}<br>{what} %{{y:.3f}}<extra></extra>",
                )
            )
    fig.add_hline(y=0.0, line=dict(color="#999999", width=1))
    fig.update_layout(
        height=340,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", y=-0.25),
        xaxis=dict(
            title="matched depth (% of each model's block layers)", tickvals=x, ticktext=[f"{v:.0f} %" for v in x]
        ),
        yaxis=dict(title="agreement between the models' maps", range=[-1.02, 1.02]),
    )
    return fig


def sanity_figure(
    steps: Sequence[str],
    curves: Mapping[str, Mapping[str, Sequence[float]]],
    probs: Sequence[float],
    *,
    cascading: bool,
    target_name: str,
) -> go.Figure:
    """Similarity to the trained map by step: ``curves[method label]["spearman" | "ssim"]``, one
    colour per method (Spearman solid, SSIM dashed); the probability of the explained class on
    the right axis (grey). ``steps[k]`` names the block of step k (hover)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x = list(range(len(steps)))
    names = [plotly_text(f"{k}: {s}") for k, s in enumerate(steps)]
    target_name = plotly_text(target_name)
    styles = {"spearman": ("solid", "Spearman"), "ssim": ("dash", "SSIM")}
    for m, (label, by) in enumerate(curves.items()):
        for measure, values in by.items():
            dash, what = styles.get(measure, ("dot", plotly_text(measure)))
            shown = plotly_text(label)
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=list(values),
                    mode="lines+markers",
                    name=f"{shown}: {what}",
                    customdata=names,
                    line=dict(color=PALETTE[m % len(PALETTE)], dash=dash, width=2.5 if measure == "spearman" else 1.6),
                    hovertemplate=f"{shown}<br>%{{customdata}}<br>{what} %{{y:.3f}}<extra></extra>",
                ),
                secondary_y=False,
            )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=list(probs),
            mode="lines+markers",
            name=f"p({target_name})",
            customdata=names,
            line=dict(color="#777777", dash="dot", width=1.5),
            marker=dict(symbol="diamond", size=6),
            hovertemplate="%{customdata}<br>probability %{y:.3f}<extra></extra>",
        ),
        secondary_y=True,
    )
    fig.add_hline(y=0.0, line=dict(color="#bbbbbb", width=1))
    title = "blocks randomized, top down (cascading)" if cascading else "the one block randomized (independent)"
    fig.update_xaxes(
        title=title,
        tickmode="array",
        tickvals=x,
        ticktext=[str(k) for k in x] if cascading else ["trained"] + [str(k) for k in x[1:]],
    )
    fig.update_yaxes(title="similarity to the trained map", range=[-1.02, 1.02], secondary_y=False)
    fig.update_yaxes(
        title=f"probability of {target_name}",
        range=[0, 1.02],
        secondary_y=True,
        showgrid=False,
        tickvals=[0, 0.25, 0.5, 0.75, 1],
    )
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.22))
    return fig
