"""Normalization: hand values, shared scale, and no NaN whatever the input (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from methods.viz.normalize import MODES, normalize, normalize_many

M = np.array([[-2.0, 0.0], [1.0, 3.0]], dtype=np.float32)


def test_minmax_hand_values():
    np.testing.assert_allclose(normalize(M, mode="minmax", relu=False), [[0, 0.4], [0.6, 1]], rtol=1e-6)
    np.testing.assert_allclose(normalize(M, mode="minmax", relu=True), [[0, 0], [1 / 3, 1]], rtol=1e-6)


def test_max_keeps_sign_and_zero():
    np.testing.assert_allclose(normalize(M, mode="max", relu=False), [[-2 / 3, 0], [1 / 3, 1]], rtol=1e-6)


def test_raw_only_rectifies():
    np.testing.assert_array_equal(normalize(M, mode="raw", relu=True), [[0, 0], [1, 3]])
    np.testing.assert_array_equal(normalize(M, mode="raw", relu=False), M)


def test_percentile_clips_an_outlier():
    m = np.arange(101, dtype=np.float32)
    m[-1] = 1e6  # one outlier
    out = normalize(m, mode="percentile", relu=False, percentiles=(0.0, 99.0))
    # 99th percentile of [0..99, 1e6] by linear interpolation: 99 + 0.0 * ... = 99.0
    hi = np.percentile(m, 99.0)
    np.testing.assert_allclose(out[:100], np.clip(np.arange(100), 0, hi) / hi, rtol=1e-5)
    assert out[-1] == 1.0
    plain = normalize(m, mode="minmax", relu=False)
    assert plain[50] < 1e-4 < out[50]  # min-max lets the outlier squash the rest


def test_shared_scope_keeps_relative_magnitudes():
    a = np.array([[0.0, 1.0], [2.0, 4.0]], dtype=np.float32)
    b = 2 * a
    per_map = normalize_many([a, b], mode="max")
    shared = normalize_many([a, b], mode="max", scope="shared")
    np.testing.assert_allclose(per_map[0], per_map[1])
    np.testing.assert_allclose(shared[0], a / 8)
    np.testing.assert_allclose(shared[1], b / 8)
    small = np.ones((3, 3), np.float32)  # different shapes in one shared scale
    mm = normalize_many([a, small], mode="minmax", scope="shared")
    np.testing.assert_allclose(mm[1], np.full((3, 3), 0.25))


def test_stack_per_map_and_shared():
    stack = torch.tensor([[[0.0, 1.0]], [[0.0, 4.0]]])
    torch.testing.assert_close(normalize(stack, mode="max"), torch.tensor([[[0.0, 1.0]], [[0.0, 1.0]]]))
    torch.testing.assert_close(
        normalize(stack, mode="max", scope="shared"), torch.tensor([[[0.0, 0.25]], [[0.0, 1.0]]])
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value", [0.0, 5.0, -3.0, 1e-30])
def test_constant_maps_give_zeros_not_nan(mode, value):
    out = normalize(np.full((4, 4), value, np.float32), mode=mode, relu=False)
    assert np.isfinite(out).all()
    if mode != "raw":
        np.testing.assert_array_equal(out, 0.0)


def test_non_finite_values_become_zero():
    m = np.array([[np.nan, np.inf], [-np.inf, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(normalize(m, mode="minmax", relu=False), [[0, 0], [0, 1]])


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode='minmaxx' is not one of"):
        normalize(M, mode="minmaxx")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scope="):
        normalize(M, scope="global")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="percentiles"):
        normalize(M, mode="percentile", percentiles=(99, 1))


finite = st.floats(min_value=-(2.0**100), max_value=2.0**100, allow_nan=False, width=32)


@settings(max_examples=150, deadline=None)
@given(
    m=arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=finite),
    mode=st.sampled_from(MODES),
    relu=st.booleans(),
)
def test_never_nan_and_in_range(m, mode, relu):
    out = normalize(m, mode=mode, relu=relu)
    assert np.isfinite(out).all()
    if mode in ("minmax", "percentile"):
        assert out.min() >= 0.0 and out.max() <= 1.0 + 1e-6
    if mode == "max":
        assert np.abs(out).max() <= 1.0 + 1e-6
        if relu:
            assert out.min() >= 0.0


@settings(max_examples=60, deadline=None)
@given(
    maps=st.lists(
        arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(1, 5)), elements=finite), min_size=1, max_size=4
    ),
    mode=st.sampled_from(MODES),
)
def test_shared_scope_never_nan(maps, mode):
    for out in normalize_many(maps, mode=mode, scope="shared", relu=False):
        assert np.isfinite(out).all()
