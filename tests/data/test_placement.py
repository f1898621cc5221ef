"""Where a picture lands in a model's input and where a map lands back (methods/data/placement.py,
``LoadedModel.resize``; issue 25: photos were squashed to the square input).

References: torchvision's ``Resize(int)`` + ``CenterCrop`` (the evaluation transform of timm's and
torchvision's ImageNet weights) computed in the test; the inverse map checked on a ramp whose
value is its own input coordinate, so the expected value at every picture pixel is the affine
formula itself.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.transforms import v2 as T

from methods.data.placement import placement
from methods.errors import OptionError
from methods.models.loaded import LoadedModel
from methods.viz.render import UNSEEN_DIM, render_views


def _model(resize: str, crop_pct: float = 1.0, size=(224, 224)) -> LoadedModel:
    return LoadedModel(
        "m", nn.Identity(), size, (0.0,) * 3, (1.0,) * 3, ("a",), "x", "bundled", resize=resize, crop_pct=crop_pct
    )


def _photo(h: int = 300, w: int = 451) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("shape", [(300, 451), (451, 300), (224, 224), (100, 150)])
def test_crop_is_torchvisions_resize_then_centre_crop(shape):
    """chelsea's 300 x 451: short side 256 (= floor(224 / 0.875)), long 384, crop corner (16, 80)."""
    img = _photo(*shape)
    got = _model("crop", 0.875).preprocess(img) * 255.0  # (3, 224, 224), mean 0 std 1
    x = torch.from_numpy(img).permute(2, 0, 1).float()
    ref = T.CenterCrop(224)(T.Resize(256, antialias=True)(x))
    torch.testing.assert_close(got, ref, atol=1e-3, rtol=0)
    if shape == (300, 451):
        p = placement(shape, (224, 224), "crop", 0.875)
        assert (p.resized, p.offset) == ((256, 384), (16, 80))


def test_squash_is_the_old_whole_image_resize_and_letterbox_keeps_the_aspect():
    img = _photo()
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    squash = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", antialias=True)[0]
    torch.testing.assert_close(_model("squash").preprocess(img) * 255.0, squash, atol=1e-3, rtol=0)
    box = _model("letterbox").preprocess(img) * 255.0  # (3, 224, 224)
    # 451 x 300 fits as 224 x 149 (s = 224 / 451), centred: rows 37..185; the pad is the mean (0 here)
    assert placement((300, 451), (224, 224), "letterbox").resized == (149, 224)
    assert float(box[:, :37].abs().max()) == 0.0 and float(box[:, 186:].abs().max()) == 0.0
    inner = torch.nn.functional.interpolate(x, size=(149, 224), mode="bilinear", antialias=True)[0]
    torch.testing.assert_close(box[:, 37:186], inner, atol=1e-3, rtol=0)


@pytest.mark.parametrize("mode", ["squash", "crop", "letterbox"])
def test_a_map_goes_back_onto_the_picture_by_the_affine_formula(mode):
    """A map whose value at input row i is i + 0.5 (its own coordinate) sampled at picture row Y
    must read s (Y + 0.5) - o (for input coordinates in [0.5, h - 0.5], where bilinear is exact)."""
    p = placement((300, 451), (224, 224), mode, 0.875 if mode == "crop" else 1.0)
    rows = np.repeat((np.arange(224, dtype=np.float32) + 0.5)[:, None], 224, axis=1)  # (224, 224)
    cols = rows.T.copy()
    on_rows, on_cols = p.onto(rows), p.onto(cols)  # (300, 451) each
    (sy, sx), (oy, ox) = p.scale, p.offset
    uy = (np.arange(300) + 0.5) * sy - oy
    ux = (np.arange(451) + 0.5) * sx - ox
    ok_y = (uy >= 0.5) & (uy <= 223.5)
    ok_x = (ux >= 0.5) & (ux <= 223.5)
    np.testing.assert_allclose(on_rows[ok_y][:, ok_x], np.repeat(uy[ok_y][:, None], ok_x.sum(), 1), atol=1e-3)
    np.testing.assert_allclose(on_cols[ok_y][:, ok_x], np.repeat(ux[ok_x][None], ok_y.sum(), 0), atol=1e-3)
    unseen = np.isnan(on_rows)
    if mode == "crop":  # the border outside the crop: 18.75 px top and bottom, 94 px each side
        top, left, bottom, right = p.seen
        assert unseen[:18].all() and unseen[282:].all() and unseen[:, :93].all() and unseen[:, 358:].all()
        assert not unseen[19:281, 95:357].any()
        assert p.seen_share == pytest.approx((bottom - top) * (right - left) / (300 * 451))
    else:  # the model saw every pixel
        assert not unseen.any() and p.seen_share == 1.0


def test_overlay_on_the_picture_dims_what_the_model_did_not_see():
    img = np.full((300, 451, 3), 200, np.uint8)
    p = placement((300, 451), (224, 224), "crop", 0.875)
    views = render_views(img, np.ones((7, 7), np.float32), colormap="jet", alpha=0.5, placement=p)
    assert views.overlay.shape == (300, 451, 3) and views.original.shape == (300, 451, 3)
    assert (views.overlay[0, 0] == round(200 * UNSEEN_DIM)).all()  # outside the crop: dimmed picture
    assert (views.overlay[150, 225] != round(200 * UNSEEN_DIM)).any()  # inside: blended heat
    np.testing.assert_array_equal(
        render_views(img, np.ones((7, 7)), placement=placement((300, 451), (224, 224))).overlay,
        render_views(img, np.ones((7, 7))).overlay,
    )  # a squash is the old drawing


def test_bad_resize_options_are_refused():
    with pytest.raises(OptionError, match="resize must be one of"):
        _model("stretch")
    with pytest.raises(OptionError, match="crop_pct must be in"):
        _model("crop", 1.5)
