"""A data set's leaderboard: per method x layer, each metric's mean with a bootstrap interval and
its paired difference to the reference maps, with a p-value.

The input is the table of ``python -m methods.evaluate`` (:mod:`methods.pipeline.evaluate`): one row
per image x method x layer x explained class, with the ``random`` and ``centre`` reference maps
scored on each layer's own grid.

* **Mean and 95 % interval** — the percentile bootstrap (Efron & Tibshirani, *An Introduction to
  the Bootstrap*, 1993, ch. 13): draw ``B`` resamples of the ``n`` values with replacement, take
  each resample's mean :math:`\\bar x^*_b`, and report the :math:`(1-L)/2` and :math:`(1+L)/2`
  quantiles of :math:`\\{\\bar x^*_b\\}_{b=1}^{B}` (``L`` = level, 0.95). Seeded: the same table
  and seed give the same interval.
* **Paired difference to a reference** — rows of a method and of a reference on the SAME layer
  are paired by ``(image, target)`` (the same image and explained class), and
  :math:`d_i = x_i^{\\text{method}} - x_i^{\\text{reference}}`; the table holds
  :math:`\\bar d` and its bootstrap interval (pairs resampled together). Sign: for deletion AUC
  and Average Drop lower is better, so a method that beats the reference has a NEGATIVE
  difference there and a positive one on the other metrics (ROAD MoRF, an opt-in column, is a
  lower-is-better one too).
* **p-value** (two-sided, H0: the differences are centred on zero) — ``"wilcoxon"``: the Wilcoxon
  signed-rank test (Wilcoxon 1945, *Biometrics Bulletin* 1(6):80-83) via
  :func:`scipy.stats.wilcoxon`, zero differences dropped (Wilcoxon's own rule); ``"sign"``: the
  exact sign test, :math:`p = \\min(1, 2\\sum_{i=0}^{k}\\binom{m}{i}2^{-m})` with ``m`` the non-zero
  differences and ``k`` the smaller count of positive or negative ones; on 0/1 metrics (Increase,
  pointing game) it is the exact McNemar test. ``"auto"`` (default): sign test for the 0/1
  metrics, Wilcoxon for the others. All differences zero: ``p = 1``.

Deviation: no correction for multiple comparisons (6 metrics x 2 references per row); read a
p-value near 0.05 with that in mind.

Units follow :func:`methods.pipeline.summary.summarize`: AUCs and energy in [0, 1], Average Drop in %,
Increase in Confidence and pointing game as % of the rows.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from methods._internal.progress import Progress
from methods.errors import OptionError

if TYPE_CHECKING:  # pandas is imported where a table is read: `import methods` stays light
    import pandas as pd

__all__ = [
    "METRICS",
    "REFERENCES",
    "MetricInfo",
    "Interval",
    "bootstrap_interval",
    "sign_test",
    "paired_p",
    "paired_differences",
    "reference_notes",
    "precision_notes",
    "leaderboard",
    "per_class",
]

Test = Literal["auto", "wilcoxon", "sign"]
KEY_COLUMNS: tuple[str, ...] = ("image", "method", "layer", "target")
#: The evaluation's reference maps (:func:`methods.metrics.faithfulness.curves.reference_maps`; the same
#: names as ``methods.pipeline.summary.REFERENCES``).
REFERENCES: tuple[str, ...] = ("random", "centre")


@dataclass(frozen=True)
class MetricInfo:
    """One leaderboard metric: its column, label, unit, which way is better, its kind and scale."""

    column: str
    label: str
    unit: str
    better: Literal["lower", "higher"]
    binary: bool = False
    scale: float = 1.0


METRICS: dict[str, MetricInfo] = {
    m.column: m
    for m in (
        MetricInfo("deletion_auc", "Deletion AUC", "", "lower"),
        MetricInfo("insertion_auc", "Insertion AUC", "", "higher"),
        MetricInfo("avg_drop", "Average Drop", "%", "lower"),
        MetricInfo("increase", "Increase in Confidence", "%", "higher", binary=True, scale=100.0),
        MetricInfo("pointing_hit", "Pointing game", "%", "higher", binary=True, scale=100.0),
        MetricInfo("energy_pg", "Energy pointing game", "", "higher"),
        MetricInfo("road_morf", "ROAD MoRF", "", "lower"),  # opt-in columns (evaluate road=True)
        MetricInfo("road_lerf", "ROAD LeRF", "", "higher"),
    )
}


DRAW_CHUNK = 1 << 21
"""Resample indices held at once by :func:`bootstrap_interval` (16 MB of int64 plus the gathered values)."""


@dataclass(frozen=True)
class Interval:
    """A mean with its percentile-bootstrap interval over ``n`` values (NaN when n == 0)."""

    mean: float
    low: float
    high: float
    n: int


def _check_boot(n_boot: int, level: float) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise OptionError(f"n_boot must be an int >= 1; got {n_boot!r}")
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.0 < float(level) < 1.0:
        raise OptionError(f"level must be a number in (0, 1), e.g. 0.95; got {level!r}")


def bootstrap_interval(values: Iterable[float], *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> Interval:
    """Mean of ``values`` and its percentile-bootstrap interval (see the module docstring).

    Args:
        values: (n,) numbers; NaN values are dropped first.
        n_boot: number of resamples ``B``.
        level: coverage ``L`` of the interval.
        seed: seed of ``numpy.random.default_rng`` (one fresh generator per call).

    Returns:
        :class:`Interval`; ``mean = low = high = NaN`` and ``n = 0`` for no values.

    Examples:
        >>> bootstrap_interval([2.0, 2.0, 2.0])
        Interval(mean=2.0, low=2.0, high=2.0, n=3)
    """
    _check_boot(n_boot, level)
    x = np.asarray(values if hasattr(values, "__len__") else list(values), dtype=float)
    x = x[~np.isnan(x)]  # (n,)
    if x.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    rng = np.random.default_rng(seed)
    # the B x n resample indices in chunks of rows, drawn in order from the one generator: the same
    # numbers as one (B, n) draw, with memory bounded by DRAW_CHUNK instead of growing with B x n
    rows = max(1, DRAW_CHUNK // x.size)
    means = np.concatenate(
        [
            x[rng.integers(0, x.size, size=(min(rows, int(n_boot) - start), x.size))].mean(axis=1)  # (b,)
            for start in range(0, int(n_boot), rows)
        ]
    )  # (B,)
    tail = (1.0 - float(level)) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    mean = float(x.mean())
    return Interval(mean, float(min(low, mean)), float(max(high, mean)), int(x.size))


def sign_test(diffs: Iterable[float]) -> float:
    """Two-sided exact sign test of paired differences (zeros and NaN dropped).

    :math:`p = \\min(1, 2\\sum_{i=0}^{k}\\binom{m}{i}2^{-m})`, ``m`` = non-zero differences,
    ``k`` = the smaller of the positive and negative counts; 1.0 when ``m == 0``.

    Examples:
        >>> sign_test([1, 1, 1, 1, 1, -1])  # m = 6, k = 1: 2 * (1 + 6) / 64
        0.21875
    """
    d = np.asarray(list(diffs), dtype=float)
    d = d[~np.isnan(d) & (d != 0)]
    m = int(d.size)
    if m == 0:
        return 1.0
    k = int(min((d > 0).sum(), (d < 0).sum()))
    tail = sum(math.comb(m, i) for i in range(k + 1)) / 2.0**m
    return float(min(1.0, 2.0 * tail))


def paired_p(diffs: Iterable[float], test: Literal["wilcoxon", "sign"] = "wilcoxon") -> float:
    """Two-sided p-value of paired differences: Wilcoxon signed-rank (:func:`scipy.stats.wilcoxon`,
    zeros dropped) or the exact :func:`sign_test`; 1.0 when every difference is zero, NaN for none."""
    if test not in ("wilcoxon", "sign"):
        raise OptionError(f"test={test!r} must be one of ['wilcoxon', 'sign']")
    d = np.asarray(list(diffs), dtype=float)
    d = d[~np.isnan(d)]
    if d.size == 0:
        return math.nan
    if test == "sign" or not np.any(d != 0):
        return sign_test(d)
    from scipy.stats import wilcoxon

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "too few samples for the normal approximation" on tiny tables
        return float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def _values(g: pd.DataFrame, column: str) -> pd.Series:
    import pandas as pd

    return pd.to_numeric(g[column].astype("Float64"), errors="coerce").astype(float) * METRICS[column].scale


def _check_table(df: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise OptionError(f"the table must be a pandas DataFrame; got {type(df).__name__}")
    missing = [c for c in KEY_COLUMNS if c not in df.columns]
    if missing and "object" in df.columns:
        raise OptionError(
            "this is a per-object table (a detector's or segmenter's `python -m methods.evaluate` result); "
            "the leaderboard ranks classification tables only for now: read the per-object energy, pointing "
            "and curves in the table itself"
        )
    if missing:
        raise OptionError(
            f"the table has no column(s) {missing}: it is not a `python -m methods.evaluate` result "
            f"(its columns: {list(df.columns)[:12]})"
        )
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise OptionError(f"metrics {unknown} are not leaderboard metrics; choose from {list(METRICS)}")
    present = [m for m in metrics if m in df.columns]
    if not present:
        raise OptionError(
            f"the table has none of the metric columns {list(metrics)}; a batch manifest holds maps, "
            "not scores: run `python -m methods.evaluate` on the same images for a leaderboard"
        )
    dup = df.duplicated(list(KEY_COLUMNS))
    if dup.any():
        first = df.loc[dup, list(KEY_COLUMNS)].iloc[0].tolist()
        raise OptionError(
            f"{int(dup.sum())} row(s) repeat an (image, method, layer, target), e.g. {first}: pairs would be ambiguous"
        )
    return present


def paired_differences(df: pd.DataFrame, method: str, layer: str, reference: str, metric: str) -> pd.DataFrame:
    """The method's and the reference's values on ``layer``, paired by ``(image, target)``.

    Returns:
        Columns ``image, target, value, reference, diff`` (``diff = value - reference``, in the
        metric's unit), one row per pair where both values exist, in the method's row order.

    Examples:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"image": ["a", "b", "a", "b"], "method": ["m", "m", "random", "random"],
        ...                   "layer": "l", "target": 0, "deletion_auc": [0.2, 0.3, 0.5, 0.4]})
        >>> paired_differences(t, "m", "l", "random", "deletion_auc")["diff"].round(3).tolist()
        [-0.3, -0.1]
    """
    _check_table(df, [metric])
    return _pairs(df, method, layer, reference, metric)


def _pairs(df: pd.DataFrame, method: str, layer: str, reference: str, metric: str) -> pd.DataFrame:
    import pandas as pd

    cols = ["image", "target"]
    mine = df[(df["method"] == method) & (df["layer"] == layer)]
    ref = df[(df["method"] == reference) & (df["layer"] == layer)]
    a = pd.DataFrame(
        {
            "image": mine["image"].astype(str).values,
            "target": mine["target"].astype("Int64").values,
            "value": _values(mine, metric).values,
        }
    )
    b = pd.DataFrame(
        {
            "image": ref["image"].astype(str).values,
            "target": ref["target"].astype("Int64").values,
            "reference": _values(ref, metric).values,
        }
    )
    pairs = a.merge(b, on=cols, how="inner").dropna(subset=["value", "reference"])
    pairs["diff"] = pairs["value"] - pairs["reference"]
    return pairs.reset_index(drop=True)


def _order(df: pd.DataFrame) -> list[tuple[str, str]]:
    methods = list(dict.fromkeys(df["method"]))
    ordered = [m for m in methods if m not in REFERENCES] + [m for m in REFERENCES if m in methods]
    return [(m, l) for m in ordered for l in dict.fromkeys(df.loc[df["method"] == m, "layer"])]


def reference_notes(df: pd.DataFrame, references: Sequence[str] = REFERENCES) -> list[str]:
    """One sentence per reference missing from a layer that methods were scored on (the
    differences to it are then empty on that layer)."""
    notes = []
    for layer in dict.fromkeys(df.loc[~df["method"].isin(references), "layer"]):
        have = set(df.loc[df["layer"] == layer, "method"])
        for ref in references:
            if ref not in have:
                notes.append(
                    f"No {ref!r} reference rows on layer {layer!r}: the differences to {ref} are empty there "
                    "(the evaluation ran without references, or with other layers)."
                )
    return notes


def leaderboard(
    df: pd.DataFrame,
    *,
    metrics: Sequence[str] = tuple(METRICS),
    references: Sequence[str] = REFERENCES,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    test: Test = "auto",
    progress: Progress | None = None,
) -> pd.DataFrame:
    """The leaderboard of an evaluate table, long form: one row per method x layer x metric.

    Args:
        df: a ``python -m methods.evaluate`` table (at least ``image, method, layer, target`` and
            one metric column).
        metrics: metric columns (:data:`METRICS` keys); those absent from ``df`` are left out.
        references: reference methods to pair against (default ``random`` and ``centre``).
        n_boot, level, seed: the bootstrap (:func:`bootstrap_interval`); every cell uses ``seed``.
        test: ``"auto"`` (sign test for 0/1 metrics, Wilcoxon otherwise), ``"wilcoxon"`` or ``"sign"``.
        progress: ``progress(done, total)`` after each method x layer group (it may raise
            :class:`methods.errors.Cancelled` to stop: the dashboard's Cancel and closed tabs).

    Returns:
        Columns ``method, layer, metric, n, mean, low, high``, then per reference ``R``:
        ``R_diff, R_low, R_high, R_p, R_pairs`` (NaN / 0 when there is no reference row to pair
        with, and for the reference itself), ``test``, and ``precision``: the precision(s) the
        rows' curves ran in (``"fp32"``, ``"bf16"``, ``"bf16+fp32"`` when mixed; ``"unrecorded"`` for
        a table without a ``precision`` column). Methods come in table order, the references
        last. ``attrs["notes"]`` lists missing references (:func:`reference_notes`) and says when
        the table mixes precisions.

    Raises:
        OptionError: not an evaluate table (missing columns, no metric column, repeated keys),
            unknown metrics, bad ``n_boot`` / ``level`` / ``test``.
    """
    import pandas as pd

    if test not in ("auto", "wilcoxon", "sign"):
        raise OptionError(f"test={test!r} must be one of ['auto', 'wilcoxon', 'sign']")
    _check_boot(n_boot, level)
    present = _check_table(df, metrics)
    interval = functools.partial(bootstrap_interval, n_boot=int(n_boot), level=float(level), seed=int(seed))
    rows = []
    groups = list(_order(df))
    for done, (method, layer) in enumerate(groups):
        if progress is not None:
            progress(done, len(groups))
        g = df[(df["method"] == method) & (df["layer"] == layer)]
        for metric in present:
            iv = interval(_values(g, metric).values)
            chosen = ("sign" if METRICS[metric].binary else "wilcoxon") if test == "auto" else test
            row = {
                "method": method,
                "layer": layer,
                "metric": metric,
                "n": iv.n,
                "mean": iv.mean,
                "low": iv.low,
                "high": iv.high,
            }
            for ref in references:
                pairs = _pairs(df, method, layer, ref, metric) if method != ref else pd.DataFrame({"diff": []})
                d = interval(pairs["diff"].values)
                row.update(
                    {
                        f"{ref}_diff": d.mean,
                        f"{ref}_low": d.low,
                        f"{ref}_high": d.high,
                        f"{ref}_p": paired_p(pairs["diff"].values, chosen) if d.n else math.nan,
                        f"{ref}_pairs": d.n,
                    }
                )
            row["test"] = chosen
            row["precision"] = _precisions(g)
            rows.append(row)
    if progress is not None:
        progress(len(groups), len(groups))
    out = pd.DataFrame(rows)
    out.attrs["notes"] = reference_notes(df, references) + precision_notes(df)
    return out


def _precisions(g: pd.DataFrame) -> str:
    """The precisions a group of rows ran in, sorted and joined by "+" ("unrecorded" without the column)."""
    if "precision" not in g.columns:
        return "unrecorded"
    return "+".join(sorted({str(p) for p in g["precision"].dropna()})) or "unrecorded"


def precision_notes(df: pd.DataFrame) -> list[str]:
    """A note when the table's rows ran in more than one precision (their numbers are not strictly
    comparable: bf16 moves a deletion AUC by ~1e-3, see docs/precision.md).

    Examples:
        >>> import pandas as pd
        >>> precision_notes(pd.DataFrame({"precision": ["fp32", "bf16"]}))
        ['rows ran in more than one precision (bf16, fp32): differences of about 0.003 in an AUC can come from precision alone; rerun with GRADLENS_PRECISION=fp32 to compare like with like']
        >>> precision_notes(pd.DataFrame({"precision": ["fp32", "fp32"]}))
        []
    """
    if "precision" not in df.columns:
        return []
    seen = sorted({str(p) for p in df["precision"].dropna()})
    if len(seen) <= 1:
        return []
    return [
        f"rows ran in more than one precision ({', '.join(seen)}): differences of about 0.003 in an AUC can "
        "come from precision alone; rerun with GRADLENS_PRECISION=fp32 to compare like with like"
    ]


def per_class(df: pd.DataFrame, metric: str, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Mean and bootstrap interval of ``metric`` per method x layer x explained class.

    Returns:
        Columns ``method, layer, target, target_name, n, mean, low, high`` (``target_name`` is the
        target's index as text when the table has no names), sorted by method order then class.
    """
    import pandas as pd

    _check_table(df, [metric])
    names = df["target_name"].astype(str) if "target_name" in df.columns else df["target"].astype(str)
    rows = []
    for method, layer in _order(df):
        g = df[(df["method"] == method) & (df["layer"] == layer)]
        for target in sorted(g["target"].dropna().unique()):
            cell = g[g["target"] == target]
            iv = bootstrap_interval(_values(cell, metric).values, n_boot=n_boot, level=level, seed=seed)
            rows.append(
                {
                    "method": method,
                    "layer": layer,
                    "target": int(target),
                    "target_name": names[cell.index[0]],
                    "n": iv.n,
                    "mean": iv.mean,
                    "low": iv.low,
                    "high": iv.high,
                }
            )
    return pd.DataFrame(rows, columns=["method", "layer", "target", "target_name", "n", "mean", "low", "high"])
