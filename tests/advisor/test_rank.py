"""The Advisor's ranking on hand-made tables: known winner, closed-form sign-test p, the random
comparison by interval overlap, identical normalizations merged, and the equivalence rules."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from methods.advisor.metrics import METRICS
from methods.advisor.normalizations import apply, equivalence_groups, group_label
from methods.advisor.rank import rank
from methods.metrics.faithfulness.image_scores import image_scores
from methods.metrics.localization import energy_pointing_game


def _table(values: dict[tuple[str, str, str], list[float]], column: str = "insertion_auc") -> pd.DataFrame:
    rows = []
    for (method, layer, norm), vals in values.items():
        for i, v in enumerate(vals):
            rows.append(dict(image=f"img{i}", target=0, method=method, layer=layer, norm=norm, **{column: v}))
    return pd.DataFrame(rows)


def test_known_winner_and_closed_form_sign_test():
    """A beats B on 7 of 8 images: exact two-sided sign test p = 2 (C(8,0) + C(8,1)) / 2^8 = 18/256."""
    a = [0.90, 0.85, 0.80, 0.88, 0.92, 0.86, 0.84, 0.70]
    b = [0.80, 0.75, 0.70, 0.78, 0.82, 0.76, 0.74, 0.75]  # diffs: +0.1 x 7, -0.05 once
    r = [0.30, 0.35, 0.32, 0.31, 0.29, 0.33, 0.36, 0.34]
    t = _table({("a", "l4", "raw"): a, ("b", "l4", "raw"): b, ("random", "l4", "raw"): r})
    res = rank(t, METRICS["insertion"], labels={"a": "Method A", "b": "Method B"}, n_boot=500, test="sign")
    table = res.table
    assert table["method"].tolist() == ["a", "b", "random"]
    assert table["rank"].tolist() == [1, 2, 0]
    assert table.loc[1, "p_best"] == pytest.approx(18 / 256)
    assert table.loc[1, "diff_best"] == pytest.approx((7 * -0.1 + 0.05) / 8)
    assert table.loc[0, "mean"] == pytest.approx(sum(a) / 8)
    # random: a and b beat it (all 8 diffs positive: sign p = 2 / 256)
    assert table.loc[0, "p_random"] == pytest.approx(2 / 256)
    assert res.beats_random and bool(table.loc[0, "beats_random"])
    assert res.recommendation.startswith("Method A at l4, raw: insertion AUC 0.844 [")
    assert "next best: Method B at l4, raw:" in res.recommendation and "p = 0.0703" in res.recommendation
    # p = 0.07 > 0.05: no clear winner, and the notes say so
    assert not res.clear_winner
    assert any("no clear winner" in n for n in res.notes)


def test_lower_is_better_and_not_beating_random():
    """Deletion: the LOWEST mean wins; a best whose interval overlaps random's does not beat it."""
    a = [0.30, 0.32, 0.31, 0.29]
    b = [0.50, 0.52, 0.49, 0.51]
    r = [0.31, 0.30, 0.33, 0.28]
    t = _table({("a", "l", "raw"): a, ("b", "l", "raw"): b, ("random", "l", "raw"): r}, "deletion_auc")
    res = rank(t, METRICS["deletion"], n_boot=500)
    assert res.table["method"].tolist()[:2] == ["a", "b"]
    assert not res.beats_random
    assert any("does not beat the random map" in n for n in res.notes)


def test_separate_intervals_from_too_few_images_are_not_evidence():
    """Three images, the method above random on each: the bootstrap intervals do not overlap, but the
    exact sign test gives p = 2 / 2^3 = 0.25 >= 0.05, so the best does NOT beat random; one image (a
    point "interval") neither, with the note asking for more images."""
    a, r = [0.90, 0.91, 0.92], [0.30, 0.31, 0.32]
    t = _table({("a", "l", "raw"): a, ("random", "l", "raw"): r})
    res = rank(t, METRICS["insertion"], n_boot=500, test="sign")
    row = res.table.loc[0]
    assert row["low"] > row["random_high"] and row["p_random"] == pytest.approx(0.25)
    assert not res.beats_random and not bool(row["beats_random"])
    assert any("too few images" in n for n in res.notes)
    one = rank(_table({("a", "l", "raw"): a[:1], ("random", "l", "raw"): r[:1]}), METRICS["insertion"], n_boot=50)
    assert one.table.loc[0, "low"] == one.table.loc[0, "high"] == 0.90 and not one.beats_random
    # six images all above random: sign p = 2 / 64 < 0.05 and the intervals apart: it beats random
    six = rank(
        _table({("a", "l", "raw"): a * 2, ("random", "l", "raw"): r * 2}), METRICS["insertion"], n_boot=500, test="sign"
    )
    assert six.table.loc[0, "p_random"] == pytest.approx(2 / 64) and six.beats_random


def test_clear_winner_with_many_images():
    a = [0.9 + 0.001 * i for i in range(20)]
    b = [0.5 + 0.001 * i for i in range(20)]
    t = _table({("a", "l", "raw"): a, ("b", "l", "raw"): b})
    res = rank(t, METRICS["insertion"], n_boot=500, test="sign")
    assert res.clear_winner
    assert res.table.loc[1, "p_best"] == pytest.approx(2 / 2**20)
    assert any("no random reference" in n for n in res.notes)


def test_identical_normalizations_are_one_row():
    """Two norms with equal values on every image are merged into one row, and a note says so."""
    v = [0.5, 0.6, 0.7]
    t = _table({("a", "l", "minmax"): v, ("a", "l", "relu_minmax"): v, ("a", "l", "percentile"): [0.4, 0.5, 0.6]})
    res = rank(t, METRICS["insertion"], groups={"minmax": "min-max", "relu_minmax": "ReLU + min-max"}, n_boot=200)
    assert res.table["normalization"].tolist() == ["min-max ≡ ReLU + min-max", "percentile"]
    assert any("identical scores" in n for n in res.notes)


def test_equivalence_groups():
    norms = ["minmax", "raw", "max", "relu_minmax", "percentile"]
    assert equivalence_groups(norms, "affine") == [("minmax", "raw", "max"), ("relu_minmax",), ("percentile",)]
    assert equivalence_groups(norms, "scale") == [("minmax",), ("raw", "max"), ("relu_minmax",), ("percentile",)]
    assert equivalence_groups(norms, "none") == [(n,) for n in norms]
    assert group_label(("minmax", "raw")) == "min-max ≡ raw"


def test_positive_affine_normalizations_give_identical_curves(fp32, gap_net):
    """The claim behind the merged rows: raw, max and min-max of a signed map give the same
    deletion and insertion AUCs (same pixel order after bilinear upsampling); ReLU + min-max,
    which ties every negative value, gives a different one on this map."""
    torch.manual_seed(3)
    x = torch.rand(1, 3, 16, 16)
    m = torch.randn(4, 4)  # signed
    maps = [apply(n, m) for n in ("raw", "max", "minmax", "relu_minmax")]
    s = image_scores(gap_net, x, maps, 0, steps=16, baseline="zero", insertion_baseline="zero", precision="fp32")
    for k in (1, 2):
        assert s[k].deletion.auc == pytest.approx(s[0].deletion.auc, abs=1e-7)
        assert s[k].insertion.auc == pytest.approx(s[0].insertion.auc, abs=1e-7)
    assert not math.isclose(s[3].deletion.auc, s[0].deletion.auc, abs_tol=1e-6)


def test_methods_with_identical_scores_are_a_tie_not_a_ranking():
    """HiResCAM equals Grad-CAM on a GAP + linear head: identical values are named as a tie, and the
    'next best' of the sentence is the first candidate that differs."""
    g = [0.8, 0.7, 0.9, 0.85]
    t = _table(
        {("gradcam", "l4", "raw"): g, ("hirescam", "l4", "raw"): g, ("layercam", "l4", "raw"): [0.6, 0.5, 0.7, 0.65]}
    )
    res = rank(
        t,
        METRICS["insertion"],
        labels={"gradcam": "Grad-CAM", "hirescam": "HiResCAM", "layercam": "LayerCAM"},
        n_boot=200,
        test="sign",
    )
    assert "(tied with HiResCAM at l4, raw: identical scores on every image)" in res.recommendation
    assert "next best: LayerCAM at l4, raw:" in res.recommendation
    assert "p = 0.125" in res.recommendation  # 4 of 4 positive: 2 / 2^4
    assert not res.clear_winner and any("a tie, not a ranking" in n for n in res.notes)


def test_energy_is_unchanged_by_a_positive_scale_only():
    """The energy pointing game sum_mask ReLU(L) / sum ReLU(L): raw and max (a positive scale) give
    the same value; min-max (a shift) moves negative mass into the map and changes it — so for
    energy the Advisor scores raw ≡ max as one row and min-max as another."""
    m = torch.tensor([[2.0, -1.0], [-1.0, 1.0]])
    mask = torch.tensor([[True, False], [False, False]])
    raw = energy_pointing_game(apply("raw", m), mask)
    assert raw == pytest.approx(energy_pointing_game(apply("max", m), mask))
    assert raw == pytest.approx(2.0 / 3.0)  # a 2x2 map on a 2x2 mask: no upsampling; 2 / (2 + 1)
    # min-max: (m + 1) / 3 = [[1, 0], [0, 2/3]]: 1 / (1 + 2/3) = 0.6
    assert energy_pointing_game(apply("minmax", m), mask) == pytest.approx(0.6)
