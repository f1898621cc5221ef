"""The deletion / insertion chart of a review report, drawn as the dashboard draws it.

Colours, reference styles, titles and the y-axis label come from :mod:`methods.viz.styles` (shared
with the dashboard's Faithfulness page); a method's legend label is its registry label
("Grad-CAM++"); the reference curves (``ref:random``, ``ref:centre``) are grey and dashed.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from methods.cams.core.registry import get_method
from methods.errors import GradLensError
from methods.review.report_data import StoredCurve
from methods.viz.styles import CURVE_TITLES, SCORE_LABEL, curve_label, curve_lines

__all__ = ["method_labels", "curves_figure"]


def method_labels(keys: Sequence[str]) -> dict[str, str]:
    """Registry label per key ("gradcampp" -> "Grad-CAM++"); keys no method has keep their name."""
    out = {}
    for key in keys:
        try:
            out[key] = get_method(key).label
        except GradLensError:
            out[key] = key
    return out


def curves_figure(curves: Sequence[StoredCurve]) -> go.Figure:
    """Deletion (left) and insertion (right) curves, one legend entry per method or reference."""
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=(CURVE_TITLES["deletion"], CURVE_TITLES["insertion"]), horizontal_spacing=0.08
    )
    keys = list(dict.fromkeys(c.method for c in curves))
    lines = curve_lines(keys)
    labels = method_labels(keys)
    in_legend: set[str] = set()
    for c in curves:
        name = html.escape(curve_label(c.method, labels))  # plotly.js draws names as HTML-ish text
        fig.add_trace(
            go.Scatter(
                x=list(c.fractions),
                y=list(c.scores),
                mode="lines",
                name=name,
                legendgroup=c.method,
                showlegend=c.method not in in_legend,
                line=lines[c.method],
                hovertemplate=f"{name}<br>fraction %{{x:.2f}}<br>score %{{y:.3f}}<extra></extra>",
            ),
            row=1,
            col=1 if c.kind == "deletion" else 2,
        )
        in_legend.add(c.method)
    fig.update_xaxes(title="fraction of pixels", range=[0, 1])
    fig.update_yaxes(title=SCORE_LABEL, rangemode="tozero")
    fig.update_layout(
        height=380, margin=dict(l=10, r=10, t=50, b=10), legend=dict(orientation="h", y=-0.25), template="plotly_white"
    )
    return fig
