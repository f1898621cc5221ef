"""Metric agreement (methods.metrics.agreement.metric_agreement) on hand-made tables with known rankings.

Four methods on one layer, two images each. Per-method means (hand-set):

=========  ============  =============  ========  ========
method     deletion_auc  insertion_auc  avg_drop  increase
=========  ============  =============  ========  ========
m1         0.10          0.80           40        1.0
m2         0.20          0.70           30        0.5
m3         0.30          0.60           20        0.5
m4         0.40          0.50           10        0.0
=========  ============  =============  ========  ========

Best-first orders: deletion (lower) m1 m2 m3 m4; insertion (higher) m1 m2 m3 m4 -> rho = +1;
Average Drop (lower) m4 m3 m2 m1 -> rho = -1 with both; Increase (higher, %) m1 > m2 = m3 > m4 ->
with deletion: ranks (1, 2.5, 2.5, 4) vs (1, 2, 3, 4): rho = 4.5 / sqrt(4.5 * 5) = 0.9487;
Kendall tau_b = (5 - 0) / sqrt(6 * 5) = 0.9129 (5 concordant pairs, 1 tie in one metric).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from methods.errors import OptionError
from methods.metrics.agreement.metric_agreement import metric_agreement

MEANS = {
    "m1": (0.10, 0.80, 40.0, 1.0),
    "m2": (0.20, 0.70, 30.0, 0.5),
    "m3": (0.30, 0.60, 20.0, 0.5),
    "m4": (0.40, 0.50, 10.0, 0.0),
}


def _table(extra_rows: list[dict] | None = None) -> pd.DataFrame:
    rows = []
    for method, (d, i, drop, inc) in MEANS.items():
        for k, delta in enumerate((-0.05, 0.05)):  # two images whose mean is the hand-set value
            rows.append(
                dict(
                    image=f"img{k}",
                    method=method,
                    layer="layer4",
                    target=0,
                    deletion_auc=d + delta,
                    insertion_auc=i - delta,
                    avg_drop=drop + 100 * delta,
                    increase=bool(inc == 1.0 or (inc == 0.5 and k == 0)),
                )
            )
    return pd.DataFrame(rows + (extra_rows or []))


def _pair(res, a, b):
    row = res.pairs[
        ((res.pairs.metric_a == a) & (res.pairs.metric_b == b))
        | ((res.pairs.metric_a == b) & (res.pairs.metric_b == a))
    ]
    assert len(row) == 1
    return row.iloc[0]


def test_spearman_of_known_rankings():
    res = metric_agreement(_table())
    assert res.metrics == ("deletion_auc", "insertion_auc", "avg_drop", "increase")
    assert res.n_entries == 4
    assert _pair(res, "deletion_auc", "insertion_auc").correlation == pytest.approx(1.0)
    assert _pair(res, "deletion_auc", "avg_drop").correlation == pytest.approx(-1.0)
    assert _pair(res, "insertion_auc", "avg_drop").status == "disagree"
    inc = _pair(res, "deletion_auc", "increase")
    assert inc.correlation == pytest.approx(4.5 / math.sqrt(4.5 * 5)) and inc.n == 4 and inc.status == "agree"
    assert res.ranks.set_index("method")["increase"].tolist() == [1.0, 2.5, 2.5, 4.0]
    assert res.ranks.set_index("method")["avg_drop"].tolist() == [4.0, 3.0, 2.0, 1.0]
    np.testing.assert_allclose(res.scores.set_index("method")["increase"].to_numpy(), [100.0, 50.0, 50.0, 0.0])
    assert (
        res.matrix.loc["avg_drop", "deletion_auc"] == pytest.approx(-1.0)
        and res.matrix.loc["avg_drop", "avg_drop"] == 1.0
    )
    assert list(res.pairs["correlation"]) == sorted(res.pairs["correlation"])  # most disagreeing first
    assert set(res.disagreeing["status"]) == {"disagree"}


def test_kendall_with_a_tie():
    res = metric_agreement(_table(), statistic="kendall")
    assert _pair(res, "deletion_auc", "increase").correlation == pytest.approx(5 / math.sqrt(30))
    assert _pair(res, "deletion_auc", "avg_drop").correlation == pytest.approx(-1.0)


def test_references_are_entries_unless_left_out():
    ref = [
        dict(image=f"img{k}", method="random", layer="layer4", target=0, deletion_auc=0.9, insertion_auc=0.1,
             avg_drop=5.0, increase=False)
        for k in range(2)
    ]  # fmt: skip
    with_ref = metric_agreement(_table(ref))
    assert with_ref.n_entries == 5
    # random: worst by deletion and insertion, BEST by Average Drop
    assert with_ref.ranks.set_index("method").loc["random", "avg_drop"] == 1.0
    without = metric_agreement(_table(ref), references=False)
    assert without.n_entries == 4 and _pair(without, "deletion_auc", "avg_drop").correlation == pytest.approx(-1.0)


def test_weak_threshold_missing_values_and_too_few():
    t = _table()
    t["energy_pg"] = np.nan
    t.loc[t.method == "m4", "energy_pg"] = 0.2
    res = metric_agreement(t, metrics=["deletion_auc", "insertion_auc", "energy_pg"], low=1.0)
    assert _pair(res, "deletion_auc", "insertion_auc").status == "agree"  # 1.0 >= low
    few = _pair(res, "deletion_auc", "energy_pg")
    assert few.n == 1 and math.isnan(few.correlation) and few.status == "too few"
    weak = metric_agreement(_table(), low=0.96)
    assert _pair(weak, "deletion_auc", "increase").status == "weak"
    two = metric_agreement(_table()[lambda d: d.method.isin(["m1", "m2"])])
    assert two.notes and all(s == "too few" for s in two.pairs["status"])


def test_custom_columns_need_a_direction_and_errors_name_the_value():
    t = _table().assign(my_score=lambda d: d["deletion_auc"])
    res = metric_agreement(t, metrics=["my_score", "deletion_auc"], better={"my_score": "lower"})
    assert _pair(res, "my_score", "deletion_auc").correlation == pytest.approx(1.0)
    with pytest.raises(OptionError, match="my_score"):
        metric_agreement(t, metrics=["my_score", "deletion_auc"])
    with pytest.raises(OptionError, match="statistic"):
        metric_agreement(t, statistic="pearson")
    with pytest.raises(OptionError, match="method"):
        metric_agreement(pd.DataFrame({"x": [1]}))
    with pytest.raises(OptionError, match="road_morf"):
        metric_agreement(t, metrics=["road_morf", "deletion_auc"])
