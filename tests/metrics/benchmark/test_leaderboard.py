"""methods.metrics.benchmark.leaderboard against hand computations.

Provenance of the reference values (all by hand, in each test's docstring): bootstrap quantiles
of a two-point sample, binomial tails of the exact sign test, the exact Wilcoxon null
distribution for n = 5 (32 equally likely sign patterns), and means of hand-written tables.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import methods
from methods.errors import OptionError
from methods.metrics.benchmark import leaderboard as lb


def _table() -> pd.DataFrame:
    """Two images; image "a" has two explained classes (a two-object scene), "b" one. Method m and
    the two references on layer L."""
    rows = []
    values = {  # (image, target) -> deletion, insertion, pointing, for m / random / centre
        "m": {("a", 0): (0.10, 0.9, True), ("a", 1): (0.20, 0.8, True), ("b", 2): (0.30, 0.7, False)},
        "random": {("a", 0): (0.40, 0.5, False), ("a", 1): (0.30, 0.4, False), ("b", 2): (0.50, 0.6, False)},
        "centre": {("a", 0): (0.10, 0.6, True), ("a", 1): (0.25, 0.8, False), ("b", 2): (0.35, 0.7, True)},
    }
    for method, cells in values.items():
        for (image, target), (dele, ins, hit) in cells.items():
            rows.append(
                {
                    "image": image,
                    "method": method,
                    "layer": "L",
                    "target": target,
                    "target_name": f"c{target}",
                    "deletion_auc": dele,
                    "insertion_auc": ins,
                    "pointing_hit": hit,
                }
            )
    df = pd.DataFrame(rows)
    df["pointing_hit"] = df["pointing_hit"].astype("boolean")
    return df


def test_bootstrap_of_a_constant_is_a_point():
    iv = lb.bootstrap_interval([0.25] * 17, n_boot=500, seed=3)
    assert (iv.mean, iv.low, iv.high, iv.n) == (0.25, 0.25, 0.25, 17)


def test_bootstrap_of_two_points_spans_both():
    """Resample means of {0, 1} (n = 2) are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4: the 2.5 %
    and 97.5 % quantiles are 0 and 1 (with 4000 draws, fewer than 100 zeros has probability ~1e-40)."""
    iv = lb.bootstrap_interval([0.0, 1.0], n_boot=4000, seed=0)
    assert (iv.mean, iv.low, iv.high) == (0.5, 0.0, 1.0)


def test_bootstrap_is_seeded_and_drops_nan():
    x = np.random.default_rng(1).normal(size=40)
    a = lb.bootstrap_interval(x, seed=7)
    assert a == lb.bootstrap_interval(list(x) + [math.nan], seed=7)
    b = lb.bootstrap_interval(x, seed=8)
    assert a.mean == b.mean and a.low != b.low
    assert a.low < a.mean < a.high
    # the interval of a mean shrinks like 1/sqrt(n): 1.96 * std / sqrt(40) ~ 0.31 half-width
    assert 0.2 < (a.high - a.low) / 2 < 0.45
    empty = lb.bootstrap_interval([math.nan])
    assert empty.n == 0 and math.isnan(empty.mean)


def test_bootstrap_checks_its_options():
    with pytest.raises(OptionError, match="n_boot"):
        lb.bootstrap_interval([1.0], n_boot=0)
    with pytest.raises(OptionError, match="level"):
        lb.bootstrap_interval([1.0], level=95)


@pytest.mark.parametrize(
    "diffs, p",
    [
        ([1, 1, 1, 1, 1, -1], 2 * (1 + 6) / 64),  # m = 6, k = 1
        ([1] * 10, 2 / 1024),  # m = 10, k = 0
        ([0.5, -2, 0, 0, 3, -1], 1.0),  # zeros dropped: m = 4, k = 2: 2 * (1 + 4 + 6) / 16 > 1
        ([0, 0, 0], 1.0),  # nothing to test
        ([-1, -1, -1, 2, -1, -1, -1, -1], 2 * (1 + 8) / 256),  # m = 8, k = 1
    ],
)
def test_sign_test_is_the_binomial_tail(diffs, p):
    assert lb.sign_test(diffs) == pytest.approx(p, abs=1e-15)


def test_wilcoxon_on_five_positive_differences():
    """d = 1..5, all positive: W- = 0, the one most extreme of 2^5 sign patterns on each side,
    so the exact two-sided p = 2/32."""
    assert lb.paired_p([1, 2, 3, 4, 5], "wilcoxon") == pytest.approx(0.0625)
    assert lb.paired_p([0, 0], "wilcoxon") == 1.0
    assert math.isnan(lb.paired_p([], "sign"))
    with pytest.raises(OptionError, match="test"):
        lb.paired_p([1.0], "t")


def test_paired_differences_pair_by_image_and_class():
    """m - random on deletion: a/0: 0.1-0.4, a/1: 0.2-0.3, b/2: 0.3-0.5 (not crossed between the
    two classes of image a)."""
    pairs = lb.paired_differences(_table(), "m", "L", "random", "deletion_auc")
    assert pairs[["image", "target"]].values.tolist() == [["a", 0], ["a", 1], ["b", 2]]
    assert pairs["diff"].tolist() == pytest.approx([-0.3, -0.1, -0.2])


def test_leaderboard_numbers_by_hand():
    board = lb.leaderboard(_table(), n_boot=300, seed=0)
    row = board[(board["method"] == "m") & (board["metric"] == "deletion_auc")].iloc[0]
    assert row["n"] == 3 and row["mean"] == pytest.approx(0.2)
    assert row["low"] >= 0.1 - 1e-12 and row["high"] <= 0.3 + 1e-12
    assert row["random_diff"] == pytest.approx(-0.2) and row["random_pairs"] == 3
    # three negative differences, exact Wilcoxon n = 3: 2 * 1/8
    assert row["random_p"] == pytest.approx(0.25) and row["test"] == "wilcoxon"
    # centre: 0.1-0.1 = 0, 0.2-0.25, 0.3-0.35: mean -1/30
    assert row["centre_diff"] == pytest.approx(-0.1 / 3)
    hit = board[(board["method"] == "m") & (board["metric"] == "pointing_hit")].iloc[0]
    assert hit["mean"] == pytest.approx(200 / 3)  # 2 of 3 hits, in %
    assert hit["test"] == "sign"
    # vs random: +100, +100, 0 -> m = 2 non-zero, k = 0: p = 2 * 1/4
    assert hit["random_diff"] == pytest.approx(200 / 3) and hit["random_p"] == pytest.approx(0.5)
    # the references come last, without a difference to themselves
    assert board["method"].drop_duplicates().tolist() == ["m", "random", "centre"]
    ref = board[(board["method"] == "random") & (board["metric"] == "insertion_auc")].iloc[0]
    assert math.isnan(ref["random_diff"]) and ref["random_pairs"] == 0
    assert ref["centre_diff"] == pytest.approx(((0.5 - 0.6) + (0.4 - 0.8) + (0.6 - 0.7)) / 3)
    assert board.attrs["notes"] == []
    # columns absent from the table (avg_drop, ...) are left out
    assert set(board["metric"]) == {"deletion_auc", "insertion_auc", "pointing_hit"}


def test_missing_reference_is_said():
    df = _table()
    df = df[df["method"] != "centre"]
    board = methods.leaderboard(df, n_boot=50)
    assert board["centre_pairs"].eq(0).all() and board["centre_diff"].isna().all()
    assert board.attrs["notes"] == [
        "No 'centre' reference rows on layer 'L': the differences to centre are empty there (the evaluation ran "
        "without references, or with other layers)."
    ]


def test_not_an_evaluate_table_is_refused_clearly():
    manifest = pd.DataFrame(
        {
            "image": ["a.png"],
            "method": ["gradcam"],
            "layer": ["l4"],
            "target": [1],
            "overlay": ["a.png/gradcam__l4__overlay.png"],
        }
    )
    with pytest.raises(OptionError, match="batch manifest holds maps, not scores"):
        lb.leaderboard(manifest)
    with pytest.raises(OptionError, match=r"no column\(s\) \['target'\]"):
        lb.leaderboard(pd.DataFrame({"image": [1], "method": ["m"], "layer": ["l"]}))
    twice = pd.concat([_table(), _table().iloc[:1]])
    with pytest.raises(OptionError, match="1 row\\(s\\) repeat"):
        lb.leaderboard(twice)
    with pytest.raises(OptionError, match="not leaderboard metrics"):
        lb.leaderboard(_table(), metrics=["accuracy"])


def test_per_class_by_hand():
    out = lb.per_class(_table(), "insertion_auc", n_boot=100)
    m = out[out["method"] == "m"]
    assert m["target_name"].tolist() == ["c0", "c1", "c2"]
    assert m["mean"].tolist() == pytest.approx([0.9, 0.8, 0.7])
    assert (m["low"] == m["mean"]).all() and (m["high"] == m["mean"]).all()  # one value per class


def test_leaderboard_says_which_precision_made_each_row():
    """A row names the precision its curves ran in; a table that mixes precisions gets a note."""
    df = _table()
    board = lb.leaderboard(df, n_boot=20)
    assert set(board["precision"]) == {"unrecorded"}  # an old table without the column
    df["precision"] = "fp32"
    df.loc[(df["method"] == "m") & (df["image"] == "b"), "precision"] = "bf16"
    board = lb.leaderboard(df, n_boot=20)
    assert set(board.loc[board["method"] == "m", "precision"]) == {"bf16+fp32"}
    assert set(board.loc[board["method"] == "random", "precision"]) == {"fp32"}
    assert len(board.attrs["notes"]) == 1 and "more than one precision (bf16, fp32)" in board.attrs["notes"][0]
    assert lb.leaderboard(df.assign(precision="bf16"), n_boot=20).attrs["notes"] == []


def test_bootstrap_draws_in_bounded_chunks_with_the_same_numbers(monkeypatch):
    """The index matrix was drawn whole (n_boot x rows: 1.6 GB for 50,000 rows at 2,000 resamples);
    now in chunks of DRAW_CHUNK indices, drawn in order from one generator, so the interval is the
    one of a single (B, n) draw: computed here by hand with numpy."""
    x = np.random.default_rng(5).normal(size=37)
    rng = np.random.default_rng(3)
    means = x[rng.integers(0, x.size, size=(500, x.size))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    expected = (min(float(low), float(x.mean())), max(float(high), float(x.mean())))
    monkeypatch.setattr(lb, "DRAW_CHUNK", 37 * 64)  # 64 resamples per chunk: 8 chunks, the last of 52
    got = lb.bootstrap_interval(x, n_boot=500, seed=3)
    assert (got.low, got.high) == pytest.approx(expected, abs=1e-12)
    assert got.mean == pytest.approx(float(x.mean()))


def test_a_per_object_table_is_refused_with_the_reason():
    """A detector's evaluate table (one row per object, no `target` column) is not mistaken for a
    table of another program: the message says it is per-object and not ranked yet."""
    objects = pd.DataFrame(
        {"image": ["a", "a"], "object": [0, 1], "method": ["gradcam"] * 2, "layer": ["l"] * 2, "energy_pg": [0.2, 0.3]}
    )
    with pytest.raises(OptionError, match="per-object table"):
        lb.leaderboard(objects)
