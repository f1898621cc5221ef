"""The Advisor's ranking: every candidate's mean with a bootstrap interval, a paired test against
the best and against the random map, and the recommendation in one sentence with its evidence.

Statistics (all from :mod:`methods.metrics.benchmark.leaderboard`):

* **mean and interval** — :func:`~methods.metrics.benchmark.leaderboard.bootstrap_interval`: the
  percentile bootstrap (Efron & Tibshirani 1993, ch. 13) over the images (x explained classes),
  ``B = n_boot`` resamples, coverage ``level``, seeded;
* **paired test against the best** — the candidate's and the best's values on the SAME image and
  class, ``d_i = x_i - x_i^best``; two-sided p from the Wilcoxon signed-rank test or the exact sign
  test (:func:`~methods.metrics.benchmark.leaderboard.paired_p`; ``test="auto"``: the sign test for
  a 0/1 metric such as the pointing game, Wilcoxon otherwise);
* **against the random map** — the random reference map on the candidate's layer and
  normalization, paired the same way; the candidate BEATS random when the two bootstrap intervals
  do not overlap and the candidate's lies on the better side.

The candidates are ranked by their mean (the metric's better direction); equal means keep the
grid's order. Deviation: no correction for multiple comparisons; a p near ``alpha`` is weak evidence.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from methods.advisor.metrics import AdvisorMetric
from methods.errors import OptionError
from methods.metrics.benchmark.leaderboard import bootstrap_interval, paired_p

__all__ = ["RANK_COLUMNS", "Ranking", "rank", "fmt_p"]

RANK_COLUMNS: tuple[str, ...] = (
    "rank",
    "method",
    "label",
    "layer",
    "norm",
    "normalization",
    "n",
    "mean",
    "low",
    "high",
    "diff_best",
    "diff_best_low",
    "diff_best_high",
    "p_best",
    "random_mean",
    "random_low",
    "random_high",
    "diff_random",
    "p_random",
    "beats_random",
)


@dataclass(frozen=True, eq=False)
class Ranking:
    """The ranked table and what it says.

    Attributes:
        table: :data:`RANK_COLUMNS`, best first; the random reference rows last (``rank`` 0).
        recommendation: the sentence with its evidence ("" when nothing could be ranked).
        best: the best row as a dict (empty when none).
        beats_random: the best's interval lies wholly on the better side of the random map's AND its
            paired test against the random map gives p < alpha (a few images give narrow intervals by
            accident: one image's "interval" is a point).
        clear_winner: the best beats the next best with non-overlapping intervals AND p < alpha.
        notes: what a reader must know (overlapping intervals, ties, a best that does not beat random).
        test: the paired test that ran.
    """

    table: pd.DataFrame
    recommendation: str
    best: dict[str, Any] = field(default_factory=dict)
    beats_random: bool = False
    clear_winner: bool = False
    notes: tuple[str, ...] = ()
    test: str = "wilcoxon"


def fmt_p(p: float) -> str:
    """``"p = 0.031"``, ``"p < 0.001"`` or ``"p = n/a"``.

    Examples:
        >>> fmt_p(0.0703125), fmt_p(1e-5), fmt_p(float("nan"))
        ('p = 0.0703', 'p < 0.001', 'p = n/a')
    """
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "p = n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3g}"


def _key(df: pd.DataFrame) -> pd.Series:
    return df["image"].astype(str) + "\x00" + df["target"].astype(str)


def _paired(a: pd.DataFrame, b: pd.DataFrame, column: str) -> pd.Series:
    """``a - b`` on the (image, target) pairs both have."""
    left = pd.Series(a[column].astype(float).values, index=_key(a).values)
    right = pd.Series(b[column].astype(float).values, index=_key(b).values)
    both = left.index.intersection(right.index)
    return (left.loc[both] - right.loc[both]).dropna()


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return not (a[1] < b[0] or b[1] < a[0])


def rank(
    scores: pd.DataFrame,
    metric: AdvisorMetric,
    *,
    groups: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    failed_sanity: Sequence[str] = (),
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    test: str = "auto",
    alpha: float = 0.05,
) -> Ranking:
    """Rank every (method, layer, norm) of ``scores`` by ``metric`` (see the module docstring).

    Args:
        scores: one row per image x target x method x layer x norm (columns ``image, target,
            method, layer, norm`` and ``metric.column``); ``method == "random"`` rows are the reference.
        metric: the ranking metric.
        groups: norm -> its label in the table (``"min-max ≡ raw ≡ max"``); default the norm itself.
        labels: method -> display label; default the key.
        failed_sanity: labels of the methods dropped by the sanity check (named in the sentence).
        n_boot, level, seed: the bootstrap; test: ``"auto"``, ``"wilcoxon"`` or ``"sign"``; alpha:
            the level below which a difference is called significant in the notes.

    Returns:
        A :class:`Ranking`.

    Examples:
        >>> import pandas as pd
        >>> from methods.advisor.metrics import METRICS
        >>> t = pd.DataFrame({"image": list("abcdefgh") * 3, "target": 0, "layer": "l4", "norm": "raw",
        ...     "method": ["gradcam"] * 8 + ["layercam"] * 8 + ["random"] * 8,
        ...     "insertion_auc": [.9, .8, .85, .95, .88, .92, .83, .9,
        ...                       .7, .75, .72, .71, .74, .7, .73, .76,
        ...                       .3, .35, .32, .31, .33, .3, .34, .36]})
        >>> r = rank(t, METRICS["insertion"], n_boot=200, test="sign")
        >>> r.table["method"].tolist(), r.beats_random
        (['gradcam', 'layercam', 'random'], True)

        Four images could not show it: a sign test on four pairs has p >= 0.125.

        >>> rank(t[t["image"] < "e"], METRICS["insertion"], n_boot=200, test="sign").beats_random
        False
    """
    col, higher = metric.column, metric.better == "higher"
    if test not in ("auto", "wilcoxon", "sign"):
        raise OptionError(f"test={test!r} must be one of ['auto', 'wilcoxon', 'sign']")
    chosen: Literal["wilcoxon", "sign"] = ("sign" if metric.binary else "wilcoxon") if test == "auto" else test  # type: ignore[assignment]
    interval = functools.partial(bootstrap_interval, n_boot=int(n_boot), level=float(level), seed=int(seed))
    groups = dict(groups or {})
    labels = dict(labels or {})
    df = scores.dropna(subset=[col])
    rows: list[dict[str, Any]] = []
    tied: list[str] = []
    for method, layer, norms, g in _candidates(df, col):
        iv = interval(g[col].astype(float).values)
        label = labels.get(method, "random map" if method == "random" else method)
        if len(norms) > 1 and method != "random":
            tied.append(f"{label} at {layer}: " + " and ".join(groups.get(n, n) for n in norms))
        rows.append(
            dict(
                method=method,
                label=label,
                layer=layer,
                norm=norms[0],
                normalization=" ≡ ".join(groups.get(n, n) for n in norms),
                n=iv.n,
                mean=iv.mean,
                low=iv.low,
                high=iv.high,
                _rows=g,
                _norms=norms,
            )
        )
    refs = {(r["layer"], n): r for r in rows if r["method"] == "random" for n in r["_norms"]}
    ranked = [r for r in rows if r["method"] != "random"]
    ranked.sort(key=lambda r: (-r["mean"] if higher else r["mean"]) if not math.isnan(r["mean"]) else math.inf)
    best = ranked[0] if ranked else None
    for i, r in enumerate(ranked):
        r["rank"] = i + 1
        if best is not None and r is not best:
            d = _paired(r["_rows"], best["_rows"], col)
            di = interval(d.values)
            r.update(
                diff_best=di.mean,
                diff_best_low=di.low,
                diff_best_high=di.high,
                p_best=paired_p(d.values, chosen) if len(d) else math.nan,
            )
        ref = refs.get((r["layer"], r["norm"]))
        if ref is not None:
            d = _paired(r["_rows"], ref["_rows"], col)
            better_side = r["low"] > ref["high"] if higher else r["high"] < ref["low"]
            p_random = paired_p(d.values, chosen) if len(d) else math.nan
            r.update(
                random_mean=ref["mean"],
                random_low=ref["low"],
                random_high=ref["high"],
                diff_random=float(d.mean()) if len(d) else math.nan,
                p_random=p_random,
                # both: a bootstrap interval of a handful of images is narrow by accident (one image: a point)
                beats_random=bool(better_side) and not math.isnan(p_random) and p_random < alpha,
            )
    references = [r for r in rows if r["method"] == "random"]
    for r in references:
        r["rank"] = 0
    out = pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("_")} for r in ranked + references])
    out = out.reindex(columns=list(RANK_COLUMNS))
    if best is None:
        return Ranking(out, "", notes=("no candidate could be scored",), test=chosen)
    ranking = _recommend(out, best, ranked, refs, metric, failed_sanity, alpha, chosen)
    if tied:
        note = (
            "normalizations that gave identical scores on every image here (e.g. ReLU changes nothing on a map "
            "with no negative values), shown as one row: " + "; ".join(tied)
        )
        ranking = dataclasses.replace(ranking, notes=(*ranking.notes, note))
    return ranking


def _candidates(df: pd.DataFrame, col: str) -> list[tuple[str, str, list[str], pd.DataFrame]]:
    """``(method, layer, norms, rows)`` in table order; the norms of one method and layer whose
    values are identical on every image and class are one candidate (their rows: the first's)."""
    out: list[tuple[str, str, list[str], pd.DataFrame]] = []
    for method, layer in dict.fromkeys(zip(df["method"], df["layer"])):
        g = df[(df["method"] == method) & (df["layer"] == layer)]
        kept: list[tuple[list[str], pd.DataFrame, pd.Series]] = []
        for norm in dict.fromkeys(g["norm"]):
            rows = g[g["norm"] == norm]
            values = pd.Series(rows[col].astype(float).values, index=_key(rows).values).sort_index()
            for norms, _, seen in kept:
                if seen.index.equals(values.index) and bool((seen.values == values.values).all()):
                    norms.append(norm)
                    break
            else:
                kept.append(([norm], rows, values))
        out += [(method, layer, norms, rows) for norms, rows, _ in kept]
    return out


def _same_values(a: pd.DataFrame, b: pd.DataFrame, column: str) -> bool:
    """The two candidates' values are equal on every (image, target), and they share all of them."""
    x = pd.Series(a[column].astype(float).values, index=_key(a).values).sort_index()
    y = pd.Series(b[column].astype(float).values, index=_key(b).values).sort_index()
    return bool(x.index.equals(y.index) and (x.values == y.values).all())


def _fmt(r: Mapping[str, Any]) -> str:
    return f"{r['mean']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"


def _recommend(out, best, ranked, refs, metric, failed_sanity, alpha, test) -> Ranking:
    notes: list[str] = []
    head = f"{best['label']} at {best['layer']}, {best['normalization']}: {metric.label} {_fmt(best)} (n = {best['n']})"
    tied = [r for r in ranked[1:] if _same_values(r["_rows"], best["_rows"], metric.column)]
    if tied:
        names = "; ".join(f"{r['label']} at {r['layer']}, {r['normalization']}" for r in tied)
        head += f" (tied with {names}: identical scores on every image)"
        notes.append(
            f"{best['label']} at {best['layer']}, {best['normalization']} and {names} gave identical scores on "
            "every image: their maps coincide here "
            "(e.g. HiResCAM and XGrad-CAM equal Grad-CAM where the layer reaches the logits by global average "
            "pooling and one linear map): a tie, not a ranking"
        )
    parts = [head]
    clear = not tied
    rest = [r for r in ranked[1:] if not any(r is t for t in tied)]
    if rest:
        nxt = rest[0]
        p = nxt.get("p_best", math.nan)
        parts.append(
            f"next best: {nxt['label']} at {nxt['layer']}, {nxt['normalization']}: {_fmt(nxt)}, "
            f"paired {fmt_p(p)} ({test})"
        )
        overlap = _overlap((best["low"], best["high"]), (nxt["low"], nxt["high"]))
        significant = not math.isnan(p) and p < alpha
        clear = clear and not overlap and significant
        if overlap or not significant:
            notes.append(
                f"intervals overlap or the paired difference is not significant ({fmt_p(p)}): no clear winner "
                f"between {best['label']} at {best['layer']}, {best['normalization']} and {nxt['label']} at "
                f"{nxt['layer']}, {nxt['normalization']}"
            )
    ref = refs.get((best["layer"], best["norm"]))
    beats = bool(best.get("beats_random", False))
    if ref is not None:
        parts.append(f"random map at {best['layer']}: {_fmt(ref)}, paired {fmt_p(best.get('p_random', math.nan))}")
        if not beats:
            notes.append(
                f"the best choice does not beat the random map (that needs non-overlapping intervals and a "
                f"paired p < {alpha:g}; here {_fmt(best)} vs {_fmt(ref)}, {fmt_p(best.get('p_random', math.nan))}): "
                "trust no map of this grid on these images"
                + (" — too few images for any evidence; score more" if int(best.get("n", 0)) < 6 else "")
            )
    else:
        notes.append("no random reference on the best's layer: chance level unknown")
    if failed_sanity:
        parts.append("failed sanity: " + ", ".join(failed_sanity))
    return Ranking(
        table=out,
        recommendation="; ".join(parts),
        best={k: v for k, v in best.items() if not k.startswith("_")},
        beats_random=beats,
        clear_winner=clear,
        notes=tuple(notes),
        test=test,
    )
