"""The Benchmark page's "Where the metrics disagree" section: the rank correlation between every pair
of metrics over the table's method x layer entries
(:func:`methods.metrics.agreement.metric_agreement.metric_agreement`), as a heatmap and a table of
the pairs, the most disagreeing first. Names from the table reach the page only as dataframe cells
and through ``plotly_text`` / ``md_escape``.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.app.errors import notice
from dashboard.draw.benchmark import agreement_figure
from methods.metrics.agreement.metric_agreement import metric_agreement
from methods.metrics.benchmark.leaderboard import METRICS

__all__ = ["show_agreement", "pairs_table"]

STATUS_TEXT = {
    "disagree": "disagree (reverse order)",
    "weak": "weak agreement",
    "agree": "agree",
    "too few": "too few entries",
}


@st.cache_data(show_spinner=False, max_entries=32)
def _agreement(digest: str, statistic: str, references: bool, _df: pd.DataFrame):
    return metric_agreement(_df, statistic=statistic, references=references)


def pairs_table(res) -> pd.DataFrame:
    """The pairs as the page shows them: labels, n, the correlation (rounded) and the status in words."""

    def label(m: str) -> str:
        return METRICS[m].label if m in METRICS else m

    return pd.DataFrame(
        {
            "metric": [label(m) for m in res.pairs["metric_a"]],
            "versus": [label(m) for m in res.pairs["metric_b"]],
            "entries": res.pairs["n"].astype(int),
            "correlation": res.pairs["correlation"].round(3),
            "verdict": [STATUS_TEXT[s] for s in res.pairs["status"]],
        }
    )


def show_agreement(df: pd.DataFrame, digest: str) -> None:
    """The section: statistic and reference toggles, the heatmap, the pairs."""
    st.subheader("Where the metrics disagree", anchor=False)
    a, b = st.columns(2)
    statistic = a.radio(
        "Rank correlation",
        ["spearman", "kendall"],
        key="bm_agree_stat",
        horizontal=True,
        format_func={"spearman": "Spearman ρ", "kendall": "Kendall τ"}.get,
    )
    references = b.checkbox(
        "Count the reference maps as entries",
        value=True,
        key="bm_agree_refs",
        help="The random and centre maps anchor the bottom of most rankings, which raises agreement.",
    )
    res = _agreement(digest, statistic, bool(references), _df=df)
    for note in res.notes:
        notice(note, "info")
    if len(res.metrics) < 2:
        return
    st.caption(
        "Each metric ranks the method × layer entries by its mean (direction-aligned: better is always higher), "
        "and every pair of rankings is correlated: +1 the two metrics order the methods alike, −1 in reverse. "
        f"Below {res.low:g} is weak; below 0 they disagree. With few entries a correlation is coarse: read n."
    )
    st.plotly_chart(agreement_figure(res), width="stretch", key="bm_agree_fig")
    st.dataframe(pairs_table(res), hide_index=True, width="stretch", key="bm_agree_pairs")
