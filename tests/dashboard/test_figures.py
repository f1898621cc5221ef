"""dashboard/draw/figures.py: pure figure builders, checked with numbers."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from dashboard.draw import figures, pictures
from methods.viz import render
from methods.viz.ranges import display_range, display_ranges


def test_top_share_closed_forms():
    assert figures.top_share(np.ones((10, 10)), 0.1) == pytest.approx(0.1)
    hot = np.zeros((10, 10))
    hot[3, 4] = 5.0
    assert figures.top_share(hot, 0.1) == pytest.approx(1.0)
    # 100 pixels, top 10 hold 10 * 9 of a total 10 * 9 + 90 * 1 -> 0.5
    half = np.ones(100)
    half[:10] = 9.0
    assert figures.top_share(half, 0.1) == pytest.approx(0.5)
    # negative values do not count (ReLU first)
    signed = np.array([4.0, -100.0, 1.0, 0.0])
    assert figures.top_share(signed, 0.25) == pytest.approx(0.8)
    assert math.isnan(figures.top_share(np.zeros((4, 4))))
    with pytest.raises(ValueError):
        figures.top_share(np.ones(3), 0.0)


def test_display_range():
    m = np.array([[-2.0, 0.5], [1.0, 3.0]])
    assert display_range(m, mode="minmax", relu=False) == (0.0, 1.0)
    assert display_range(m, mode="max", relu=True) == (0.0, 1.0)
    assert display_range(m, mode="max", relu=False) == (-1.0, 1.0)
    assert display_range(m, mode="raw", relu=False) == (-3.0, 3.0)  # signed: symmetric, 0 in the middle
    assert display_range(m, mode="raw", relu=True) == (-2.0, 3.0)
    assert display_range(np.full((2, 2), 7.0), mode="raw", relu=True) == (7.0, 8.0)  # never empty
    a, b = np.array([0.0, 1.0]), np.array([5.0, 9.0])
    assert display_ranges([a, b], mode="raw", relu=True, scope="shared") == [(0.0, 9.0)] * 2
    assert display_ranges([a, b], mode="raw", relu=True, scope="per_map") == [(0.0, 1.0), (5.0, 9.0)]


def test_colorscale_uses_the_rendered_colours():
    scale = figures.colorscale("viridis", n=5)
    assert [s[0] for s in scale] == [0.0, 0.25, 0.5, 0.75, 1.0]
    ends = render.heatmap(np.array([[0.0, 1.0]]), (1, 2), colormap="viridis")[0]
    assert scale[0][1] == "rgb({},{},{})".format(*ends[0])
    assert scale[-1][1] == "rgb({},{},{})".format(*ends[1])


def test_compose_grid_places_each_picture():
    red = np.zeros((10, 10, 3), np.uint8)
    red[..., 0] = 255
    grey = np.full((20, 10), 128, np.uint8)
    grid = pictures.compose_grid([red, grey, red], ["a", "b", "c"], ncols=2, cell=40, pad=4)
    # 2 columns, 2 rows, a caption line under each row
    assert grid.shape == (2 * (40 + 22) + 3 * 4, 2 * 40 + 3 * 4, 3)
    assert grid.dtype == np.uint8
    assert tuple(grid[4 + 20, 4 + 20]) == (255, 0, 0)  # centre of the first cell is red
    assert tuple(grid[4 + 20, 4 + 40 + 4 + 20]) == (128, 128, 128)  # second cell grey
    assert tuple(grid[4 + 20, 4 + 40 + 4 + 2]) == (255, 255, 255)  # grey picture is 20x40: white margin
    png = pictures.png_bytes(grid)
    assert Image.open(io.BytesIO(png)).size == (grid.shape[1], grid.shape[0])
    with pytest.raises(ValueError):
        pictures.compose_grid([])


def test_enlarge_is_an_exact_nearest_neighbour_upscale():
    img = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    big = pictures.enlarge(img, 6)
    assert big.shape == (6, 6, 3)
    assert (big[::3, ::3] == img).all() and (big[2, 2] == img[0, 0]).all()
    assert pictures.enlarge(np.zeros((500, 600, 3), np.uint8), 384).shape == (500, 600, 3)


def test_map_figure_hover_carries_raw_values_and_cells():
    image = np.zeros((32, 32, 3), np.uint8)
    raw = np.arange(16, dtype=np.float32).reshape(4, 4) - 5.0
    norm = np.clip(raw, 0, None) / raw.max()
    fig = figures.map_figure(image, [norm, norm], [raw, raw * 2], ["A", "B"], cmap="jet", alpha=0.3)
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 2 and len([t for t in fig.data if t.type == "image"]) == 2
    custom = np.asarray(heat[1].customdata)
    assert custom.shape == (4, 4, 3)
    np.testing.assert_allclose(custom[..., 0], raw * 2)
    assert custom[2, 3, 1] == 2 and custom[2, 3, 2] == 3  # (row, col) of the cell
    assert heat[0].dx == 8 and heat[0].x0 == 3.5  # a 4x4 map over 32 px: cells 8 px wide, centred
    assert heat[0].opacity == 0.3 and (heat[0].zmin, heat[0].zmax) == (0.0, 1.0)
    assert "raw %{customdata[0]" in heat[0].hovertemplate and "normalized %{z" in heat[0].hovertemplate
    assert heat[1].showscale and not heat[0].showscale  # one colorbar for a shared range
    with pytest.raises(ValueError):
        figures.map_figure(image, [norm], [raw[:2]], ["A"])


def test_histogram_counts_every_value():
    values = np.array([0.0, 0.1, 0.1, 0.9, 1.0, 1.0, 1.0])
    fig = figures.histogram_figure(values, value_range=(0.0, 1.0), bins=10)
    counts = np.asarray(fig.data[0].y)
    assert counts.sum() == values.size and counts[-1] == 4 and counts[1] == 2


def test_curves_figure_draws_methods_and_grey_references():
    f = np.linspace(0, 1, 5)
    curves = {"gradcam": (f, 1 - f), "random": (f, 1 - f / 2)}
    fig = figures.curves_figure(curves, curves, labels={"gradcam": "Grad-CAM"}, references=("random",), marker=0.5)
    assert len(fig.data) == 4
    names = [t.name for t in fig.data]
    assert names.count("Grad-CAM") == 2 and names.count("random") == 2
    ref = next(t for t in fig.data if t.name == "random")
    assert ref.line.dash == "dot"
    assert sum(1 for t in fig.data if t.showlegend) == 2  # one legend entry per curve


# ------------------------------------------------------------------------------------------
# colour scales on pictures and exports (dashboard/draw/pictures.py)


def _ramp(cmap: str, n: int) -> np.ndarray:
    return render.heatmap(np.linspace(0, 1, n, dtype=np.float32)[None], (1, n), colormap=cmap)[0]  # (n, 3)


def test_colorbar_is_the_colormap_pixel_for_pixel():
    scale = pictures.ColourScale("viridis", (-2.0, 3.0), "raw values, no ReLU")
    bar = pictures.colorbar(scale, 200, pad=8)
    assert bar.shape[1] == 200 and bar.dtype == np.uint8
    np.testing.assert_array_equal(bar[0, 8:192], _ramp("viridis", 184))  # the first row of the bar
    assert (bar[0, :8] == 255).all() and (bar[-1] == 255).all()  # white margins
    assert (bar[20:] < 128).any()  # ticks and text are drawn under the bar


def test_compose_grid_with_a_scale_and_a_note_adds_the_bar_under_the_pictures():
    red = np.zeros((10, 10, 3), np.uint8)
    red[..., 0] = 255
    plain = pictures.compose_grid([red, red], ["a", "b"], ncols=2, cell=40, pad=4)
    scale = pictures.ColourScale("jet", (0.0, 1.0), "min-max normalization after ReLU")
    grid = pictures.compose_grid([red, red], ["a", "b"], ncols=2, cell=40, pad=4, scale=scale, note="raw 0 … 1")
    bar = pictures.colorbar(scale, plain.shape[1], pad=4)
    assert grid.shape == (plain.shape[0] + bar.shape[0] + 22, plain.shape[1], 3)
    np.testing.assert_array_equal(grid[: plain.shape[0]], plain)
    np.testing.assert_array_equal(grid[plain.shape[0] : plain.shape[0] + bar.shape[0]], bar)


def test_scale_of_says_per_map_when_the_ranges_differ():
    shared = pictures.scale_of("jet", [(0.0, 1.0), (0.0, 1.0)], "t")
    assert shared.value_range == (0.0, 1.0) and shared.range_text == "0 (left) to 1 (right)"
    own = pictures.scale_of("jet", [(0.0, 1.0), (-1.0, 5.0)], "t")
    assert own.value_range is None and "its own" in own.range_text
    assert (
        pictures.scale_text("percentile", False, "shared", (2.0, 98.0))
        == "percentile normalization (2–98 %), no ReLU (0 is not the middle here: choose max for a zero-centred "
        "view), one shared scale"
    )
    assert pictures.scale_text("max", False, None).endswith(
        "no ReLU: diverging colours, blue below 0, white at 0, red above"
    )


def test_png_bytes_writes_text_chunks():
    scale = pictures.ColourScale("turbo", (-1.0, 1.0), "max normalization (M / max|M|), no ReLU")
    data = pictures.png_bytes(np.zeros((4, 4, 3), np.uint8), info=scale.png_info())
    text = Image.open(io.BytesIO(data)).text
    assert text == {
        "GradLens normalization": "max normalization (M / max|M|), no ReLU",
        "GradLens colour range": "-1 (left) to 1 (right)",
        "GradLens colormap": "turbo",
    }


def test_with_colorbar_keeps_the_picture_and_its_width():
    pic = np.full((30, 50, 3), 7, np.uint8)
    out = pictures.with_colorbar(pic, pictures.ColourScale("bone", (0.0, 1.0), "x"))
    assert out.shape[1] == 50 and out.shape[0] > 30
    np.testing.assert_array_equal(out[:30], pic)
