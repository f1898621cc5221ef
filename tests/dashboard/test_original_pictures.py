"""Issue 25, "photos are squashed": the Methods page's interactive maps and the Sanity page's strips
draw on the user's own picture at its own size and aspect (chelsea, 451 x 300), with the map where
the model's input lies on it and the border the model did not see dimmed, as Home, Layers and
Compare do. Before, both drew on the model's 224 x 224 centre crop.

Lite0 takes chelsea by timm's evaluation transform: short side to 256 (256 x 384), centre crop
224 x 224 at offset (16, 80): the model saw picture columns 93.96 .. 357.04 and rows 18.75 .. 281.25
(``methods.data.placement``).
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from app_kit import HOME, PAGES, assert_clean, open_app, plotly_specs, run_page
from dashboard.draw import pictures
from methods.data.samples import load_sample
from methods.viz.render import UNSEEN_DIM

LITE0 = "efficientnet_lite0"
SEEN = (18.75, 93.96, 281.25, 357.04)  # (top, left, bottom, right) of chelsea that Lite0 sees


def _chelsea() -> np.ndarray:
    return np.asarray(load_sample("chelsea"))


def _grid(z) -> tuple[int, int]:
    """Rows and columns of a Plotly heatmap's ``z`` (nested lists, or a typed array with a shape)."""
    if isinstance(z, dict):
        shape = z["shape"]
        return tuple(int(v) for v in (shape.split(",") if isinstance(shape, str) else shape))  # type: ignore[return-value]
    return len(z), len(z[0])


def _dimmed_corner_ok(drawn: np.ndarray, photo: np.ndarray) -> None:
    """The top-left corner lies outside the crop: the photo dimmed, no map colour."""
    want = np.round(photo[:10, :10].astype(np.float32) * UNSEEN_DIM)
    assert np.abs(drawn[:10, :10].astype(np.float32) - want).max() <= 1.0


def test_methods_page_draws_the_maps_on_the_photo_at_its_own_size():
    at = run_page("methods", {"methods": "gradcam"}, model=None)  # Lite0, chelsea: the app's default
    assert_clean(at)
    photo = _chelsea()
    assert photo.shape[:2] == (300, 451)
    spec = next(s for s in plotly_specs(at) if any(t.get("type") == "image" for t in s["data"]))
    image = next(t for t in spec["data"] if t["type"] == "image")
    drawn = np.asarray(Image.open(io.BytesIO(base64.b64decode(image["source"].split(",", 1)[1]))).convert("RGB"))
    assert drawn.shape == (300, 451, 3)  # was (224, 224, 3): the model's centre crop
    _dimmed_corner_ok(drawn, photo)
    assert np.abs(drawn[150, 225].astype(int) - photo[150, 225].astype(int)).max() <= 1  # seen: the photo itself
    layout = spec["layout"]
    assert layout["xaxis"]["range"] == [-0.5, 450.5] and layout["yaxis"]["range"] == [299.5, -0.5]
    # the map's cells cover exactly what the model saw (pixel i is centred at i, so edges are X - 0.5)
    heat = next(t for t in spec["data"] if t["type"] == "heatmap")
    h, w = _grid(heat["z"])
    assert (h, w) == (7, 7)  # bn2 of Lite0 at 224 x 224
    left = heat["x0"] - heat["dx"] / 2 + 0.5
    top = heat["y0"] - heat["dy"] / 2 + 0.5
    assert abs(left - SEEN[1]) < 0.05 and abs(left + w * heat["dx"] - SEEN[3]) < 0.05
    assert abs(top - SEEN[0]) < 0.05 and abs(top + h * heat["dy"] - SEEN[2]) < 0.05


def test_sanity_strips_are_drawn_on_the_photo_at_its_own_size(monkeypatch):
    shown: list[np.ndarray] = []
    enlarge = pictures.enlarge

    def spy(image, min_side=384):
        shown.append(np.asarray(image).copy())
        return enlarge(image, min_side)

    at = open_app(HOME, {"methods": "gradcam", "classes": "2"}, model=None)
    at.run()  # Home first (its own pictures are not counted)
    monkeypatch.setattr(pictures, "enlarge", spy)  # every strip picture goes through it (_show_strip)
    at.switch_page(PAGES["sanity"]).run()
    for kind in ("cascade", "classes"):  # on two shared cores Lite0's check waits for its button
        button = [b for b in at.button if b.key == f"sanity_run_{kind}_gradcam"]
        if button:
            button[0].click().run()
    assert_clean(at)
    photo = _chelsea()
    assert len(shown) >= 3  # the cascade's steps and the classes
    for pic in shown:
        assert pic.shape == (300, 451, 3)  # was (224, 224, 3)
        _dimmed_corner_ok(pic, photo)
