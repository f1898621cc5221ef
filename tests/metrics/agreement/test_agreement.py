"""map_agreement / agreement_matrix against values computed by hand (each test's docstring has the
arithmetic), against scipy / numpy references, and across resolutions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

import methods
from methods._internal.torch_utils import upsample
from methods.errors import InputError, OptionError
from methods.metrics.agreement.maps import METRICS, agreement_matrix, map_agreement


def _close(agr, **expected):
    for name, value in expected.items():
        assert getattr(agr, name) == pytest.approx(value, abs=1e-12), name


def test_identical_maps_give_one_everywhere_exactly():
    """a = [[0, 1], [2, 3]], top 1/4 -> k = 1, T_a = {3}: correlations, IoU and mass overlap 1;
    mass share = 3 / (0 + 1 + 2 + 3) = 0.5."""
    a = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    agr = map_agreement(a, a.clone(), top=0.25)
    assert (agr.spearman, agr.pearson, agr.iou_top, agr.mass_overlap) == (1.0, 1.0, 1.0, 1.0)
    assert agr.mass_share == 0.5 and agr.flags == () and not agr.degenerate
    rng = np.random.default_rng(0)
    for _ in range(5):  # arbitrary maps: exactly 1, not 0.9999999999999998
        m = rng.normal(size=(7, 9)).astype(np.float32)
        agr = map_agreement(m, m.copy())
        assert (agr.spearman, agr.pearson, agr.iou_top, agr.mass_overlap) == (1.0, 1.0, 1.0, 1.0)


def test_negated_map():
    """a = [1, 2, 3, -1] (2 x 2, row-major), b = -a, top 1/2 -> k = 2.
    Correlations -1. T_a = {1, 2} (values 2, 3); b = [-1, -2, -3, 1] -> T_b = {3, 0} (values 1, -1):
    IoU 0. a+ = [1, 2, 3, 0], sum 6; a+ on T_b = 1 + 0 = 1; a+ on T_a = 5: overlap 1/5, share 1/6."""
    a = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    _close(map_agreement(a, -a, top=0.5), spearman=-1.0, pearson=-1.0, iou_top=0.0, mass_overlap=0.2, mass_share=1 / 6)


def test_spatially_shifted_map():
    """a = [0, 1, 2, 3] (one row), b = a rolled by one = [3, 0, 1, 2]. Both have mean 1.5:
    centred a = [-1.5, -0.5, 0.5, 1.5], centred b = [1.5, -1.5, -0.5, 0.5]; covariance sum
    -2.25 + 0.75 - 0.25 + 0.75 = -1, sums of squares 5 -> r = -0.2 (the ranks are the values + 1,
    so Spearman is -0.2 too).
    top 1/4 (k = 1): T_a = {3}, T_b = {0}: IoU 0, a+ on T_b = a_0 = 0 -> overlap and share 0.
    top 1/2 (k = 2): T_a = {2, 3}, T_b = {0, 3}: IoU 1 / 3; a+ on T_b = 0 + 3, on T_a = 2 + 3,
    total 6: overlap 3/5, share 1/2."""
    a = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    b = torch.roll(a, 1, dims=1)
    _close(map_agreement(a, b, top=0.25), spearman=-0.2, pearson=-0.2, iou_top=0.0, mass_overlap=0.0, mass_share=0.0)
    _close(map_agreement(a, b, top=0.5), spearman=-0.2, pearson=-0.2, iou_top=1 / 3, mass_overlap=0.6, mass_share=0.5)


def test_affinely_shifted_map_keeps_rank_and_top_region():
    """b = 2a + 5: correlations 1 (invariant to scale and offset), the same top region (IoU 1),
    so all of a's top mass lies in b's top region (overlap 1)."""
    a = torch.tensor([[0.0, 4.0, 1.0], [3.0, 2.0, 5.0]])
    _close(
        map_agreement(a, 2 * a + 5, top=1 / 3),
        spearman=1.0,
        pearson=1.0,
        iou_top=1.0,
        mass_overlap=1.0,
        mass_share=9 / 15,
    )


def test_ties_average_ranks_and_lower_index_top():
    """a = [1, 1, 1, 0], b = [0, 1, 1, 1]. Average ranks: a -> [3, 3, 3, 1], b -> [1, 3, 3, 3];
    centred (mean 2.5): [.5, .5, .5, -1.5] and [-1.5, .5, .5, .5]: covariance -1, sums of squares 3
    -> Spearman -1/3. Pearson: centred values [.25, .25, .25, -.75] / [-.75, .25, .25, .25]:
    -0.25 / 0.75 = -1/3. top 1/4 (k = 1): ties go to the LOWER index: T_a = {0}, T_b = {1}: IoU 0;
    a+ on T_b = a_1 = 1 = a+ on T_a: overlap 1, share 1/3."""
    a = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    b = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    _close(
        map_agreement(a, b, top=0.25), spearman=-1 / 3, pearson=-1 / 3, iou_top=0.0, mass_overlap=1.0, mass_share=1 / 3
    )


def test_constant_and_empty_maps_are_flagged_never_nan():
    """A constant a = ones(3, 3) against b = eye(3), top 1/3 (k = 3): no ranking, so
    correlations, IoU and overlap are 0; the share is defined: a+ on b's diagonal = 3 of 9."""
    agr = map_agreement(torch.ones(3, 3), torch.eye(3), top=1 / 3)
    _close(agr, spearman=0.0, pearson=0.0, iou_top=0.0, mass_overlap=0.0, mass_share=1 / 3)
    assert agr.degenerate and any(f.startswith("a is constant") for f in agr.flags)

    agr = map_agreement(torch.eye(3), torch.full((3, 3), 2.0), top=1 / 3)
    _close(agr, spearman=0.0, pearson=0.0, iou_top=0.0, mass_overlap=0.0, mass_share=0.0)
    assert any(f.startswith("b is constant") for f in agr.flags)

    zeros = map_agreement(torch.zeros(4, 4), torch.zeros(4, 4))  # identical, but nothing to agree on
    assert zeros.as_dict() == {m: 0.0 for m in METRICS} and len(zeros.flags) == 3

    # no positive value in a: the mass numbers are 0, the correlation is still defined (-1)
    agr = map_agreement(-torch.eye(3), torch.eye(3), top=1 / 3)
    _close(agr, spearman=-1.0, pearson=-1.0, mass_overlap=0.0, mass_share=0.0)
    assert agr.flags == ("a has no positive value: mass overlap set to 0",)

    nan = torch.tensor([[float("nan"), 1.0], [2.0, float("inf")]])  # NaN / inf count as 0
    agr = map_agreement(nan, torch.tensor([[0.0, 1.0], [2.0, 0.0]]))
    assert agr.spearman == 1.0 and all(math.isfinite(v) for v in agr.as_dict().values())


def test_against_scipy_and_numpy_references():
    rng = np.random.default_rng(1)
    for _ in range(5):
        a = np.round(rng.normal(size=(6, 6)), 1)  # rounding makes ties
        b = np.round(a + rng.normal(size=(6, 6)), 1)
        agr = map_agreement(a, b)
        assert agr.spearman == pytest.approx(spearmanr(a.ravel(), b.ravel()).statistic, abs=1e-12)
        assert agr.pearson == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1], abs=1e-12)


def test_top_fraction_against_a_naive_sort():
    """IoU of the top k pixels by a naive stable sort of -a (ties to the lower index)."""
    rng = np.random.default_rng(2)
    a, b = np.round(rng.normal(size=(10, 10)), 1), np.round(rng.normal(size=(10, 10)), 1)
    for top in (0.01, 0.1, 0.25, 0.5, 1.0):
        k = max(1, int(math.floor(top * 100 + 0.5)))
        ta = set(np.argsort(-a.ravel(), kind="stable")[:k].tolist())
        tb = set(np.argsort(-b.ravel(), kind="stable")[:k].tolist())
        pos = np.maximum(a.ravel(), 0)
        agr = map_agreement(a, b, top=top)
        assert agr.iou_top == pytest.approx(len(ta & tb) / len(ta | tb), abs=1e-12)
        assert agr.mass_share == pytest.approx(pos[list(tb)].sum() / pos.sum(), abs=1e-12)
        assert agr.mass_overlap == pytest.approx(pos[list(tb)].sum() / pos[list(ta)].sum(), abs=1e-12)


def test_resolution_independence():
    """The coarser map is upsampled to the finer grid (bilinear, align_corners=False): handing it
    over already upsampled changes nothing, a map agrees fully with its own upsampled copy, and
    the order of the arguments does not change the symmetric numbers."""
    rng = np.random.default_rng(3)
    a7 = torch.from_numpy(rng.normal(size=(7, 7)))
    b14 = torch.from_numpy(rng.normal(size=(14, 14)))
    direct = map_agreement(a7, b14)
    assert direct.grid == (14, 14)
    assert map_agreement(upsample(a7, (14, 14)), b14) == direct
    same = map_agreement(a7, upsample(a7, (28, 28)))
    assert (same.spearman, same.pearson, same.iou_top, same.mass_overlap) == (1.0, 1.0, 1.0, 1.0)
    swapped = map_agreement(b14, a7)
    for m in ("spearman", "pearson", "iou_top"):
        assert getattr(swapped, m) == pytest.approx(getattr(direct, m), abs=1e-12)
    assert map_agreement(torch.ones(2, 3), torch.ones(5, 4)).grid == (5, 4)


def test_matrix_cells_equal_pairwise_calls():
    rng = np.random.default_rng(4)
    maps_a = [rng.normal(size=s) for s in ((4, 4), (8, 8), (16, 16))]
    maps_b = [rng.normal(size=s) for s in ((2, 2), (16, 16))] + [maps_a[1]]
    mat = agreement_matrix(maps_a, maps_b, top=0.2)
    assert mat.grid == (16, 16) and mat["spearman"].shape == (3, 3)
    for i, a in enumerate(maps_a):
        for j, b in enumerate(maps_b):
            pair = map_agreement(a, b, top=0.2, size=mat.grid)
            for m in METRICS:
                assert mat[m][i, j] == pytest.approx(getattr(pair, m), abs=1e-12), (i, j, m)
    assert mat["spearman"][1, 2] == 1.0  # the same map on both sides


def test_matrix_grid_is_capped_and_finer_maps_are_shrunk_without_skipping_pixels():
    """Default grid of a matrix: the finest map grid, at most MAX_GRID (64) a side. A 256 x 256 map
    with one bright pixel at (0, 0) shrinks to 64 x 64 with the antialiased filter: the pixel still
    counts (plain bilinear at factor 4 would sample pixels 1 and 2 of each 4 and skip it, leaving an
    all-zero, constant map)."""
    delta = torch.zeros(256, 256)
    delta[0, 0] = 1.0
    mat = agreement_matrix([delta], [torch.eye(8)])
    assert mat.grid == (64, 64) and not bool(mat.constant_a[0])
    plain = torch.nn.functional.interpolate(delta[None, None], size=(64, 64), mode="bilinear", align_corners=False)
    assert float(plain.abs().max()) == 0.0  # what the antialiased shrink avoids


def test_bad_arguments():
    m = torch.eye(3)
    with pytest.raises(InputError, match="ONE non-empty 2-D"):
        map_agreement(torch.zeros(1, 3, 3), m)
    with pytest.raises(InputError):
        map_agreement(m, "map")
    for top in (0, -0.1, 1.5, float("nan"), True):
        with pytest.raises(OptionError, match="top"):
            map_agreement(m, m, top=top)
    with pytest.raises(InputError, match="at least one"):
        agreement_matrix([], [m])


def test_public_face():
    assert methods.map_agreement is map_agreement
    assert methods.Agreement is type(map_agreement(torch.eye(2), torch.eye(2)))
