"""The Benchmark page's figures: one metric's distribution per method (box or violin), references
grey; the metric-agreement heatmap.

Method and layer names come from an uploaded table (user text): they reach the figure only through
:func:`dashboard.draw.text.plotly_text`.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd
import plotly.graph_objects as go

from dashboard.draw.text import plotly_text
from methods.metrics.agreement.metric_agreement import MetricAgreement
from methods.metrics.benchmark.leaderboard import METRICS, REFERENCES

__all__ = ["distribution_figure", "agreement_figure"]

_REF_COLOUR = "#9e9e9e"


def distribution_figure(
    df: pd.DataFrame,
    metric: str,
    layer: str,
    *,
    kind: Literal["box", "violin"] = "box",
    labels: dict[str, str] | None = None,
) -> go.Figure:
    """One box (or violin) per method of ``metric``'s per-row values on ``layer``, every point
    drawn; the mean is the dashed line (box) or the mean line (violin). Values in the metric's
    unit (:data:`methods.metrics.benchmark.leaderboard.METRICS`: 0/1 metrics as 0 or 100 %)."""
    info = METRICS[metric]
    labels = labels or {}
    rows = df[df["layer"] == layer]
    order = [m for m in dict.fromkeys(rows["method"]) if m not in REFERENCES] + [
        m for m in REFERENCES if m in set(rows["method"])
    ]
    fig = go.Figure()
    for method in order:
        values = pd.to_numeric(rows.loc[rows["method"] == method, metric], errors="coerce").dropna() * info.scale
        name = plotly_text(labels.get(method, method))
        colour = _REF_COLOUR if method in REFERENCES else None
        if kind == "violin":
            fig.add_trace(
                go.Violin(
                    y=values,
                    name=name,
                    points="all",
                    meanline_visible=True,
                    box_visible=True,
                    line_color=colour,
                    spanmode="hard",
                )
            )
        else:
            fig.add_trace(
                go.Box(y=values, name=name, boxpoints="all", jitter=0.4, pointpos=0, boxmean=True, marker_color=colour)
            )
    unit = f" ({info.unit})" if info.unit else ""
    fig.update_layout(
        title=f"{info.label}{unit} per map on {plotly_text(layer)} · {'lower' if info.better == 'lower' else 'higher'} is better",
        yaxis_title=f"{info.label}{unit}",
        showlegend=False,
        height=420,
        margin=dict(l=60, r=20, t=50, b=40),
    )
    return fig


def agreement_figure(res: MetricAgreement) -> go.Figure:
    """Heatmap of the metric-by-metric rank correlations of a :class:`MetricAgreement`: red where
    two metrics order the methods in reverse, blue where alike (-1 .. 1, white at 0); each cell
    shows its value and ``n`` (entries both metrics scored)."""
    labels = [plotly_text(METRICS[m].label if m in METRICS else m) for m in res.metrics]
    z = res.matrix.loc[list(res.metrics), list(res.metrics)].to_numpy(dtype=float)  # (M, M)
    n = {(p.metric_a, p.metric_b): int(p.n) for p in res.pairs.itertuples()}
    text = [
        [
            "1"
            if a == b
            else (f"{z[i, j]:.2f}" if z[i, j] == z[i, j] else "n/a")
            + ("" if a == b else f"<br>n={n.get((a, b), n.get((b, a), 0))}")
            for j, b in enumerate(res.metrics)
        ]
        for i, a in enumerate(res.metrics)
    ]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=labels,
            text=text,
            texttemplate="%{text}",
            colorscale="RdBu",
            zmin=-1.0,
            zmax=1.0,
            zmid=0.0,
            hovertemplate="%{y} vs %{x}: %{z:.2f}<extra></extra>",
        )
    )
    what = "Spearman ρ" if res.statistic == "spearman" else "Kendall τ"
    fig.update_layout(
        title=f"{what} between the metrics' rankings of {res.n_entries} method × layer entries",
        height=140 + 60 * len(res.metrics),
        margin=dict(l=160, r=20, t=50, b=120),
        yaxis=dict(autorange="reversed"),
    )
    return fig
