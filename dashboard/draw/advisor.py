"""The Advisor page's figure: every candidate's mean with its bootstrap interval (error bars), best
first, the random reference maps grey. Method, layer and normalization names reach Plotly only
through :func:`dashboard.draw.text.plotly_text` (a layer name is a user's module name)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard.draw.text import plotly_text

__all__ = ["ranking_figure", "row_label"]

_REF_COLOUR = "#9e9e9e"
_BEST_COLOUR = "#1b9e77"
_COLOUR = "#386cb0"


def row_label(row: dict | pd.Series) -> str:
    """``"1. Grad-CAM @ features.20 · min-max ≡ raw"`` (``"random @ ..."`` for a reference row)."""
    head = "ref" if int(row["rank"]) == 0 else f"{int(row['rank'])}."
    return f"{head} {row['label']} @ {row['layer']} · {row['normalization']}"


def ranking_figure(table: pd.DataFrame, metric_label: str, better: str) -> go.Figure:
    """Horizontal error bars: one row per candidate (best at the top), x = the metric's mean,
    bars = its bootstrap interval; reference rows grey at the bottom."""
    rows = table.to_dict(orient="records")
    labels = [plotly_text(row_label(r)) for r in rows]
    colours = [_REF_COLOUR if int(r["rank"]) == 0 else (_BEST_COLOUR if int(r["rank"]) == 1 else _COLOUR) for r in rows]
    fig = go.Figure(
        go.Scatter(
            x=[r["mean"] for r in rows],
            y=labels,
            mode="markers",
            marker=dict(color=colours, size=10),
            error_x=dict(
                type="data",
                symmetric=False,
                array=[r["high"] - r["mean"] for r in rows],
                arrayminus=[r["mean"] - r["low"] for r in rows],
                thickness=2,
            ),
            hovertemplate="%{y}<br>mean %{x:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        xaxis_title=plotly_text(f"{metric_label} ({better} is better), 95 % bootstrap interval"),
        yaxis=dict(autorange="reversed", automargin=True),
        height=max(260, 34 * len(rows) + 90),
        margin=dict(l=10, r=10, t=30, b=50),
        showlegend=False,
    )
    return fig
