"""The border share of a map (methods/metrics/border.py, issue 25): closed forms on maps given at
the input's own size (no resize), so every value is a count of pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from methods.metrics.border import border_share, border_threshold, is_border_concentrated, ring_area


def test_uniform_map_gives_the_rings_area():
    assert border_share(np.ones((224, 224))) == pytest.approx(1 - (168 / 224) ** 2) == pytest.approx(0.4375)
    assert border_share(np.ones((7, 7)), size=(224, 224)) == pytest.approx(0.4375)  # resized first
    # 300 x 451: ring 38 rows and 56 columns -> 1 - 224 * 339 / (300 * 451)
    assert border_share(np.ones((300, 451))) == pytest.approx(1 - 224 * 339 / (300 * 451))
    assert ring_area((300, 451)) == pytest.approx(1 - 224 * 339 / (300 * 451))


def test_hand_placed_mass():
    m = np.zeros((8, 8))  # ring = 1 pixel
    m[0, 0] = 3.0  # corner: in the ring
    m[4, 4] = 1.0  # inside
    m[7, 3] = -5.0  # negative values do not count
    assert border_share(m) == pytest.approx(3 / 4)
    m[1, 1] = 2.0  # one pixel in from the corner: inside the 1-pixel ring
    assert border_share(torch.from_numpy(m)) == pytest.approx(3 / 6)
    assert border_share(-np.ones((8, 8))) == 0.0  # no positive mass
    assert border_share(np.pad(np.ones((6, 6)), 1)) == 0.0  # all inside


def test_threshold_is_twice_the_inside_density():
    s = border_threshold()
    a = 0.4375
    assert s == pytest.approx(2 * a / (2 * a + 1 - a)) == pytest.approx(0.6087, abs=1e-4)
    assert (s / a) / ((1 - s) / (1 - a)) == pytest.approx(2.0)
    assert not is_border_concentrated(0.4375) and not is_border_concentrated(0.60)
    assert is_border_concentrated(0.63) and is_border_concentrated(0.91)
