"""Do the metrics agree? Rank correlation between every pair of metrics over the methods.

LATEC (Klein et al., NeurIPS 2024, https://arxiv.org/abs/2409.16756) found that faithfulness
metrics often rank the same explanation methods differently. :func:`metric_agreement` shows it on
the user's own evaluation table instead of hiding it:

1. every entry ``e`` = (method, layer) of the table gets, per metric ``m``, its mean over the rows
   ``s_m(e)`` in the leaderboard's units (:data:`methods.metrics.benchmark.leaderboard.METRICS`);
2. scores are DIRECTION-ALIGNED: ``a_m(e) = s_m(e)`` when higher is better and ``-s_m(e)`` when
   lower is better (deletion AUC, Average Drop, ROAD MoRF), so "better" is always "larger";
3. for each pair of metrics (m, m') over the ``n`` entries where both exist, the rank correlation
   of ``a_m`` and ``a_m'``: Spearman's ``rho = Pearson(rank(a_m), rank(a_m'))`` (average ranks for
   ties) or Kendall's ``tau_b`` (:func:`scipy.stats.kendalltau`). +1: the two metrics order the
   methods alike; -1: in reverse.

A pair is ``"disagree"`` when the correlation is negative, ``"weak"`` when it is in
``[0, low)`` (default ``low = 0.5``), ``"agree"`` from ``low`` up, and ``"too few"`` when
``n < 3`` or one metric gives every entry the same score (no ranking, NaN).

Deviation: LATEC correlates metrics over many data sets and models; this is one table's view,
and with few entries a correlation is coarse (n = 4 entries allow only a handful of values), which
is why ``n`` stands beside every number. The reference maps (random, centre) are entries too unless
``references=False``: they anchor the bottom of every ranking, which raises agreement.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from methods._internal.checks import check_choice, check_number
from methods.errors import OptionError
from methods.metrics.benchmark.leaderboard import METRICS, REFERENCES

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["STATISTICS", "MetricAgreement", "metric_agreement"]

Statistic = Literal["spearman", "kendall"]
STATISTICS: tuple[Statistic, ...] = ("spearman", "kendall")
STATUSES: tuple[str, ...] = ("agree", "weak", "disagree", "too few")


@dataclass(frozen=True, eq=False)
class MetricAgreement:
    """How the metrics of one evaluation table rank its methods.

    Attributes:
        statistic: ``"spearman"`` or ``"kendall"``.
        metrics: the metric columns compared, in :data:`METRICS` order.
        scores: one row per entry (``method``, ``layer``), one column per metric: the mean in the
            leaderboard's units (not direction-aligned).
        ranks: the same shape: rank 1 = best by that metric (average ranks for ties; NaN where absent).
        pairs: one row per metric pair: ``metric_a, metric_b, n, correlation, status``, the most
            disagreeing pair first.
        matrix: metrics x metrics correlation (1 on the diagonal; NaN for too few entries).
        n_entries: number of (method, layer) entries.
        low: the threshold below which a non-negative correlation is ``"weak"``.
        notes: what to know (too few entries, metrics left out).
    """

    statistic: str
    metrics: tuple[str, ...]
    scores: pd.DataFrame
    ranks: pd.DataFrame
    pairs: pd.DataFrame
    matrix: pd.DataFrame
    n_entries: int
    low: float
    notes: tuple[str, ...] = field(default=())

    @property
    def disagreeing(self) -> pd.DataFrame:
        """The pairs whose status is ``"disagree"`` or ``"weak"``."""
        return self.pairs[self.pairs["status"].isin(["disagree", "weak"])].reset_index(drop=True)


def _correlation(a: np.ndarray, b: np.ndarray, statistic: str) -> float:
    from scipy.stats import kendalltau, rankdata

    if a.size < 3 or np.all(a == a[0]) or np.all(b == b[0]):
        return math.nan
    if statistic == "kendall":
        return float(kendalltau(a, b).statistic)
    return float(np.corrcoef(rankdata(a), rankdata(b))[0, 1])


def _status(value: float, low: float) -> str:
    if math.isnan(value):
        return "too few"
    return "disagree" if value < 0 else ("weak" if value < low else "agree")


def metric_agreement(
    df: pd.DataFrame,
    *,
    metrics: Sequence[str] | None = None,
    statistic: Statistic = "spearman",
    low: float = 0.5,
    references: bool = True,
    better: Mapping[str, str] | None = None,
) -> MetricAgreement:
    """Rank correlation between every pair of metrics over an evaluate table's methods (module docstring).

    Args:
        df: a ``python -m methods.evaluate`` table (columns ``method``, ``layer`` and metric columns).
        metrics: the metric columns to compare (default: every :data:`METRICS` column the table
            has with at least one value).
        statistic: ``"spearman"`` (default) or ``"kendall"``.
        low: a correlation in [0, low) is ``"weak"``; in [-1, 1].
        references: count the reference maps (random, centre) as entries.
        better: ``{column: "lower" | "higher"}`` for columns that are not :data:`METRICS` (or to override).

    Returns:
        A :class:`MetricAgreement`.

    Raises:
        OptionError: not an evaluate table, an unknown metric (without ``better``), a bad option.

    Examples:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"method": ["a", "b", "c"], "layer": "l", "deletion_auc": [0.1, 0.2, 0.3],
        ...                   "insertion_auc": [0.9, 0.8, 0.7], "avg_drop": [90.0, 10.0, 50.0]})
        >>> res = metric_agreement(t)
        >>> res.pairs[["metric_a", "metric_b", "correlation", "status"]].values.tolist()
        [['deletion_auc', 'avg_drop', -0.5, 'disagree'], ['insertion_auc', 'avg_drop', -0.5, 'disagree'], ['deletion_auc', 'insertion_auc', 1.0, 'agree']]
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise OptionError(f"the table must be a pandas DataFrame; got {type(df).__name__}")
    missing = [c for c in ("method", "layer") if c not in df.columns]
    if missing:
        raise OptionError(f"the table has no column(s) {missing}: it is not a `python -m methods.evaluate` result")
    statistic = check_choice("statistic", statistic, STATISTICS)
    low = check_number("low", low, minimum=-1.0, maximum=1.0)
    directions = {m: info.better for m, info in METRICS.items()}
    for col, way in dict(better or {}).items():
        directions[col] = check_choice(f"better[{col!r}]", way, ("lower", "higher"))
    if metrics is None:
        chosen = [m for m in directions if m in df.columns and df[m].notna().any()]
    else:
        chosen = list(metrics)
        unknown = [m for m in chosen if m not in directions]
        if unknown:
            raise OptionError(f"metrics {unknown} have no known direction; pass better={{name: 'lower' | 'higher'}}")
        absent = [m for m in chosen if m not in df.columns]
        if absent:
            raise OptionError(f"the table has no column(s) {absent}; its columns: {list(df.columns)[:16]}")
    rows = df if references else df[~df["method"].isin(REFERENCES)]
    notes: list[str] = []
    scores = pd.DataFrame(columns=["method", "layer", *chosen])
    if len(rows):
        num = {
            m: pd.to_numeric(rows[m].astype("Float64"), errors="coerce").astype(float)
            * (METRICS[m].scale if m in METRICS else 1.0)
            for m in chosen
        }
        frame = pd.DataFrame({"method": rows["method"].astype(str), "layer": rows["layer"].astype(str), **num})
        scores = frame.groupby(["method", "layer"], sort=False).mean().reset_index()
    aligned = {m: (scores[m] if directions[m] == "higher" else -scores[m]).to_numpy(dtype=float) for m in chosen}
    ranks = scores[["method", "layer"]].copy()
    for m in chosen:
        ranks[m] = pd.Series(-aligned[m]).rank(method="average").to_numpy()  # 1 = best; NaN stays NaN
    matrix = pd.DataFrame(np.eye(len(chosen)), index=chosen, columns=chosen)
    pairs = []
    for i, a in enumerate(chosen):
        for b in chosen[i + 1 :]:
            ok = ~np.isnan(aligned[a]) & ~np.isnan(aligned[b])
            value = _correlation(aligned[a][ok], aligned[b][ok], statistic)
            matrix.loc[a, b] = matrix.loc[b, a] = value
            pairs.append(
                {"metric_a": a, "metric_b": b, "n": int(ok.sum()), "correlation": value, "status": _status(value, low)}
            )
    pair_frame = pd.DataFrame(pairs, columns=["metric_a", "metric_b", "n", "correlation", "status"])
    if len(pair_frame):
        pair_frame = (
            pair_frame.assign(_o=pair_frame["correlation"].fillna(np.inf))
            .sort_values(["_o"], kind="stable")
            .drop(columns="_o")
            .reset_index(drop=True)
        )
    if len(scores) < 3:
        notes.append(
            f"only {len(scores)} method x layer entr{'y' if len(scores) == 1 else 'ies'}: a rank correlation needs at "
            "least 3; evaluate more methods or layers"
        )
    if len(chosen) < 2:
        notes.append(f"only {len(chosen)} metric column(s) with values: nothing to compare")
    return MetricAgreement(
        statistic=statistic,
        metrics=tuple(chosen),
        scores=scores,
        ranks=ranks,
        pairs=pair_frame,
        matrix=matrix,
        n_entries=int(len(scores)),
        low=low,
        notes=tuple(notes),
    )
