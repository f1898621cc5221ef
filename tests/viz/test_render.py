"""Rendering: grayscale, heatmap, overlay values and sizes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import methods
from methods.viz import render
from methods.viz.render import COLORMAPS, grayscale, heatmap, overlay, render_views, resize_map, to_uint8


def test_to_uint8_values():
    np.testing.assert_array_equal(to_uint8(np.array([[0.0, 0.5, 1.0, 2.0, -1.0]])), [[0, 128, 255, 255, 0]])
    np.testing.assert_array_equal(to_uint8(np.array([[-1.0, 0.0, 1.0]]), value_range=(-1, 1)), [[0, 128, 255]])


def test_resize_matches_torch_bilinear_align_corners_false():
    m = np.random.default_rng(0).random((7, 7)).astype(np.float32)
    ours = resize_map(m, (28, 21))
    ref = F.interpolate(torch.from_numpy(m)[None, None], size=(28, 21), mode="bilinear", align_corners=False)[0, 0]
    np.testing.assert_allclose(ours, ref.numpy(), atol=1e-5)


def test_heatmap_is_the_cv2_colormap_in_rgb():
    m = np.array([[0.0, 1.0]], dtype=np.float32)
    out = heatmap(m, (1, 2), colormap="jet")
    bgr = cv2.applyColorMap(np.array([[0, 255]], np.uint8), cv2.COLORMAP_JET)
    np.testing.assert_array_equal(out, bgr[..., ::-1])
    assert tuple(out[0, 1]) == (128, 0, 0)  # jet's top is dark red in RGB
    for name in COLORMAPS:
        assert heatmap(m, (4, 4), colormap=name).shape == (4, 4, 3)


def test_overlay_alpha_endpoints_and_midpoint():
    img = np.full((4, 6, 3), 100, np.uint8)
    m = np.ones((2, 3), np.float32)
    heat = heatmap(m, (4, 6))
    np.testing.assert_array_equal(overlay(img, m, alpha=0.0), img)
    np.testing.assert_array_equal(overlay(img, m, alpha=1.0), heat)
    mid = overlay(img, m, alpha=0.5)
    np.testing.assert_array_equal(mid, np.round(0.5 * img + 0.5 * heat.astype(np.float32)).astype(np.uint8))


def test_render_views_sizes_and_original():
    img = np.random.default_rng(1).integers(0, 255, (50, 80, 3), dtype=np.uint8)
    m = np.random.default_rng(2).random((7, 7)).astype(np.float32)
    v = render_views(img, m, colormap="viridis", alpha=0.3)
    assert v.original.shape == (50, 80, 3) and np.array_equal(v.original, img)
    assert v.grayscale.shape == (50, 80) and v.grayscale.dtype == np.uint8
    assert v.heatmap.shape == (50, 80, 3) and v.overlay.shape == (50, 80, 3)
    np.testing.assert_array_equal(v.grayscale, grayscale(m, (50, 80)))


def test_bad_inputs():
    with pytest.raises(ValueError, match="colormap='rainbowz'"):
        heatmap(np.zeros((2, 2)), (2, 2), colormap="rainbowz")
    with pytest.raises(ValueError, match="alpha"):
        overlay(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2)), alpha=1.5)
    with pytest.raises(ValueError, match="uint8 RGB"):
        overlay(np.zeros((2, 2), np.uint8), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="2-D"):
        grayscale(np.zeros((1, 2, 2)), (2, 2))


def test_render_views_equals_the_three_calls_and_colours_once(monkeypatch):
    """The overlay is blended from the heatmap just made: one resize, one colormap per call."""
    from methods.viz import render

    img = np.random.default_rng(3).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    m = np.random.default_rng(4).normal(size=(5, 6)).astype(np.float32)
    v = render_views(img, m, colormap="turbo", alpha=0.4, value_range=(-1.0, 1.0))
    np.testing.assert_array_equal(v.grayscale, grayscale(m, (30, 40), value_range=(-1.0, 1.0)))
    np.testing.assert_array_equal(v.heatmap, heatmap(m, (30, 40), colormap="turbo", value_range=(-1.0, 1.0)))
    np.testing.assert_array_equal(v.overlay, overlay(img, m, colormap="turbo", alpha=0.4, value_range=(-1.0, 1.0)))
    calls = {"resize": 0, "colour": 0}
    real_resize, real_colour = render.resize_map, cv2.applyColorMap

    def counting_resize(*a, **k):
        calls["resize"] += 1
        return real_resize(*a, **k)

    def counting_colour(*a, **k):
        calls["colour"] += 1
        return real_colour(*a, **k)

    monkeypatch.setattr(render, "resize_map", counting_resize)
    monkeypatch.setattr(render.cv2, "applyColorMap", counting_colour)
    render_views(img, m, colormap="turbo", alpha=0.4)
    assert calls == {"resize": 1, "colour": 1}
    with pytest.raises(ValueError, match="alpha"):
        render_views(img, m, alpha=-0.1)


def test_a_signed_map_is_drawn_with_zero_at_the_diverging_colormaps_white_centre():
    """Signed maps were drawn with jet after "no ReLU", where zero is cyan-green. The display rule
    (methods.viz.ranges) now draws a signed display with the blue - white - red colormap on a
    symmetric range: zero gets the LUT's middle (near-white), -a blue, +a red."""
    from methods.viz.ranges import display_colormap, display_ranges

    m = np.array([[-2.0, 0.0, 1.0, 2.0]], dtype=np.float32)  # (1, 4) raw, signed
    for mode in ("raw", "max"):
        norm = methods.normalize(m, mode=mode, relu=False)
        (rng,) = display_ranges([norm], mode=mode, relu=False, scope="per_map")
        assert rng[0] == -rng[1]  # zero-centred
        cmap = display_colormap("jet", mode=mode, relu=False)
        assert cmap == "diverging"
        heat = render.heatmap(norm, (1, 4), colormap=cmap, value_range=rng)  # (1, 4, 3) RGB
        lut = render.diverging_lut()[:, 0, ::-1].astype(int)  # (256, 3) RGB
        assert heat[0, 1].tolist() in (lut[127].tolist(), lut[128].tolist())  # 0 -> the white centre
        assert min(heat[0, 1]) >= 235  # near-white
        assert heat[0, 0].tolist() == lut[0].tolist() and heat[0, 3].tolist() == lut[255].tolist()  # -a blue, +a red
        assert heat[0, 0][2] > heat[0, 0][0] and heat[0, 3][0] > heat[0, 3][2]
    # with ReLU, or with min-max (zero is not the middle there), the chosen colormap stays
    assert display_colormap("jet", mode="max", relu=True) == "jet"
    assert display_colormap("jet", mode="minmax", relu=False) == "jet"
