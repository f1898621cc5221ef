"""Tests of methods.metrics.localization on hand-made maps and masks (every answer worked out by hand)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from methods.metrics.localization import energy_pointing_game, pointing_game


def mask_at(*pixels, size=(4, 4)) -> np.ndarray:
    m = np.zeros(size, bool)
    for r, c in pixels:
        m[r, c] = True
    return m


def test_pointing_hit_and_miss_at_full_resolution():
    sal = np.zeros((4, 4))
    sal[1, 2] = 5.0
    assert pointing_game(sal, mask_at((1, 2), (1, 3))) is True
    assert pointing_game(sal, mask_at((3, 3))) is False
    assert pointing_game(torch.from_numpy(sal), torch.from_numpy(mask_at((1, 2)))) is True


def test_pointing_upsamples_the_map_bilinearly():
    # 2x2 -> 4x4 with align_corners=False: the value 1 survives only at (0, 3), where both source
    # coordinates clamp to the top-right cell; (0, 2) gets 0.75, (1, 3) gets 0.75.
    sal = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    assert pointing_game(sal, mask_at((0, 3))) is True
    assert pointing_game(sal, mask_at((0, 2), (1, 3), (1, 2))) is False


def test_pointing_ties_go_to_the_first_maximum_in_row_major_order():
    sal = torch.tensor([[0.0, 2.0, 0.0], [2.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    assert pointing_game(sal, mask_at((0, 1), size=(3, 3))) is True
    assert pointing_game(sal, mask_at((1, 0), (1, 2), size=(3, 3))) is False
    assert pointing_game(torch.ones(3, 3), mask_at((0, 0), size=(3, 3))) is True  # a flat map points top-left
    assert pointing_game(torch.ones(3, 3), mask_at((1, 1), size=(3, 3))) is False


def test_pointing_tolerance_is_euclidean_pixels():
    sal = np.zeros((8, 8))
    sal[2, 2] = 1.0
    mask = mask_at((4, 3), size=(8, 8))  # distance sqrt(4 + 1) = 2.236 from the peak
    assert pointing_game(sal, mask) is False
    assert pointing_game(sal, mask, tolerance=2.2) is False
    assert pointing_game(sal, mask, tolerance=2.25) is True
    assert pointing_game(sal, np.zeros((8, 8), bool), tolerance=100) is False  # empty mask never hit
    with pytest.raises(ValueError, match="tolerance"):
        pointing_game(sal, mask, tolerance=-1)


def test_energy_is_the_positive_mass_share_inside_the_mask():
    sal = torch.tensor([[1.0, 3.0], [0.0, -2.0]])
    assert energy_pointing_game(sal, mask_at((0, 1), size=(2, 2))) == pytest.approx(0.75)  # 3 / (1 + 3)
    assert energy_pointing_game(sal, mask_at((0, 0), (1, 1), size=(2, 2))) == pytest.approx(0.25)  # -2 is cut
    assert energy_pointing_game(sal, np.ones((2, 2), bool)) == pytest.approx(1.0)
    assert energy_pointing_game(sal, np.zeros((2, 2), bool)) == 0.0


def test_energy_upsamples_before_relu():
    # a constant 2x2 map of ones -> a constant 4x4 map: any 4 of the 16 pixels hold a quarter of the mass
    assert energy_pointing_game(torch.ones(2, 2), mask_at((0, 0), (0, 1), (3, 2), (2, 2))) == pytest.approx(0.25)
    # (+1, -1) on a 1x2 grid upsampled to 1x4 gives (1, .5, -.5, -1): ReLU mass 1.5, pixel 0 holds 1
    sal = torch.tensor([[1.0, -1.0]])
    assert energy_pointing_game(sal, mask_at((0, 0), size=(1, 4))) == pytest.approx(1.0 / 1.5)


@pytest.mark.parametrize("sal", [torch.zeros(3, 3), -torch.ones(3, 3), torch.full((3, 3), float("nan"))])
def test_energy_of_a_map_without_positive_mass_is_zero_not_nan(sal):
    value = energy_pointing_game(sal, mask_at((1, 1), size=(3, 3)))
    assert value == 0.0 and not np.isnan(value)


def test_non_finite_values_count_as_zero():
    sal = torch.tensor([[float("nan"), 1.0], [float("inf"), 1.0]])
    assert energy_pointing_game(sal, mask_at((0, 1), size=(2, 2))) == pytest.approx(0.5)
    assert pointing_game(sal, mask_at((0, 1), size=(2, 2))) is True


@pytest.mark.parametrize(
    "sal, mask, needle",
    [
        (torch.rand(1, 3, 3), mask_at((0, 0), size=(3, 3)), "saliency"),
        (torch.rand(3, 3), np.zeros((1, 3, 3), bool), "mask"),
        (torch.rand(3, 3), np.full((3, 3), 2), "boolean"),
    ],
)
def test_bad_inputs_are_clear_errors(sal, mask, needle):
    for fn in (pointing_game, energy_pointing_game):
        with pytest.raises(ValueError, match=needle):
            fn(sal, mask)
