"""Multi-layer fusion (methods/cams/core/fusion.py, LayerCAM's Eq. 9 and its max combination).

* two hand-set layer maps: the fused map equals the max / mean written out here with math.tanh;
* on a tiny conv net: ``explain_fused`` over three layers equals fusing the maps of three separate
  ``explain`` calls, and a naive per-sample loop written here; the model's forward runs ONCE;
* refusals: a method outside the gradient family, one layer, a bad option.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import methods
from methods.cams.core.fusion import deepest_layer
from methods.errors import LayerError, OptionError, WrongTypeError

T1, T2 = math.tanh(1.0), math.tanh(2.0)

#: shallow: a 2 x 2 map, max 2 -> S = [[0, 1], [0.5, 0]] (the -1 is dropped by the ReLU);
#: deep: a 1 x 2 map [[4, 0]] -> resized to 2 x 2 by repeating the row -> S = [[1, 0], [1, 0]].
SHALLOW = torch.tensor([[[0.0, 2.0], [1.0, -1.0]]])
DEEP = torch.tensor([[[4.0, 0.0]]])


@pytest.mark.parametrize(
    ("fuse", "scale", "expected"),
    [
        ("max", "shallow", [[1.0, T2], [1.0, 0.0]]),  # the paper: tanh on the shallow map only
        ("mean", "shallow", [[0.5, T2 / 2], [(T1 + 1.0) / 2, 0.0]]),
        ("max", "all", [[T2, T2], [T2, 0.0]]),
        ("mean", "none", [[0.5, 0.5], [0.75, 0.0]]),
    ],
)
def test_two_hand_set_maps_fuse_as_computed_by_hand(fuse, scale, expected):
    out = methods.fuse_layer_maps({"shallow": SHALLOW, "deep": DEEP}, (2, 2), fuse=fuse, scale=scale)
    torch.testing.assert_close(out, torch.tensor([expected]), atol=1e-7, rtol=0)


def test_gamma_and_a_sample_without_positive_evidence():
    both = {"shallow": torch.cat([SHALLOW, -SHALLOW.abs()]), "deep": torch.cat([DEEP, -DEEP])}  # (2, ...)
    out = methods.fuse_layer_maps(both, (2, 2), gamma=1.0)
    torch.testing.assert_close(out[0], torch.tensor([[1.0, T1], [1.0, 0.0]]), atol=1e-7, rtol=0)
    assert torch.equal(out[1], torch.zeros(2, 2))  # no layer has positive evidence: zero, never NaN
    one = methods.fuse_layer_maps({"shallow": SHALLOW[0], "deep": DEEP[0]}, (2, 2), fuse="mean", scale="none")
    assert one.shape == (2, 2)  # 2-D maps in, one 2-D map out


def test_the_deepest_layer_is_the_coarsest_grid_ties_to_the_last():
    assert deepest_layer({"a": (1, 4, 4), "b": (1, 2, 2), "c": (1, 2, 2)}) == "c"
    assert deepest_layer({"b": (1, 2, 2), "a": (1, 4, 4)}) == "b"


def _naive(maps: dict[str, torch.Tensor], size, gamma=2.0) -> torch.Tensor:
    """LayerCAM fusion one sample and one layer at a time (scale="shallow", fuse="max")."""
    deep = min(reversed(list(maps)), key=lambda k: maps[k].shape[-2] * maps[k].shape[-1])
    n = next(iter(maps.values())).shape[0]
    out = torch.zeros(n, *size)
    for i in range(n):
        for layer, m in maps.items():
            u = F.interpolate(m[i][None, None].float(), size=size, mode="bilinear", align_corners=False)[0, 0]
            u = torch.relu(u)
            s = u / u.max() if u.max() > 0 else torch.zeros_like(u)
            s = torch.tanh(gamma * s) if layer != deep else s
            out[i] = torch.maximum(out[i], s)
    return out


def test_fused_equals_fusing_separate_calls_from_one_forward(gap_net):
    x = torch.rand(2, 3, 12, 12)
    layers = ["features.1", "features.3", "features.5"]
    calls = []
    hook = gap_net.register_forward_hook(lambda *_: calls.append(1))
    try:
        fused = methods.explain_fused(gap_net, x, "layercam", layers=layers, target=1)
    finally:
        hook.remove()
    assert len(calls) == 1  # every layer's map from ONE recorded forward (+ its backward)
    assert not gap_net._forward_hooks and not gap_net.training
    separate = {layer: methods.explain(gap_net, x, "layercam", layers=layer, target=1).maps[layer] for layer in layers}
    for layer in layers:
        torch.testing.assert_close(fused.explanation.maps[layer], separate[layer], atol=1e-6, rtol=1e-5)
    expected = methods.fuse_layer_maps(separate, (12, 12))
    torch.testing.assert_close(fused.fused, expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(fused.fused, _naive(separate, (12, 12)), atol=1e-6, rtol=1e-5)
    assert fused.deepest == "features.5" and fused.layers == tuple(layers)
    assert fused.fused.shape == (2, 12, 12) and 0.0 <= float(fused.fused.min()) and float(fused.fused.max()) <= 1.0
    # each sample's peak: exactly 1 where the deepest map has positive evidence, else tanh(2) (a shallow one's)
    deep_positive = separate["features.5"].flatten(1).amax(dim=1) > 0
    assert deep_positive.tolist() == [True, False]  # this input has both cases
    torch.testing.assert_close(fused.fused.flatten(1).amax(dim=1), torch.tensor([1.0, T2]), atol=1e-7, rtol=0)
    assert any("features.5: no positive evidence" in n for n in fused.notes)


def test_grad_cam_fusion_with_mean_and_method_options(gap_net):
    x = torch.rand(1, 3, 12, 12)
    layers = ["features.3", "features.5"]
    got = methods.explain_fused(gap_net, x, "gradcam", layers=layers, fuse="mean", scale="all", gamma=3.0)
    maps = {layer: methods.explain(gap_net, x, "gradcam", layers=layer).maps[layer] for layer in layers}
    torch.testing.assert_close(
        got.fused, methods.fuse_layer_maps(maps, (12, 12), fuse="mean", scale="all", gamma=3.0), atol=1e-6, rtol=1e-5
    )
    assert got.options.as_dict() == {"fuse": "mean", "scale": "all", "gamma": 3.0}


def test_refusals(gap_net):
    x = torch.rand(1, 3, 12, 12)
    with pytest.raises(OptionError, match="gradient family"):
        methods.explain_fused(gap_net, x, "scorecam", layers=["features.3", "features.5"])
    with pytest.raises(LayerError, match="two or more layers"):
        methods.explain_fused(gap_net, x, "layercam", layers=["features.5"])
    with pytest.raises(OptionError, match="fuse='min'"):
        methods.explain_fused(gap_net, x, "layercam", layers=["features.3", "features.5"], fuse="min")
    with pytest.raises(OptionError, match="gamma"):
        methods.fuse_layer_maps({"a": SHALLOW}, (2, 2), gamma=0.0)
    with pytest.raises(LayerError):
        methods.explain_fused(gap_net, x, "layercam", layers=["features.3", "nope"])
    with pytest.raises(WrongTypeError):  # a method option that does not exist
        methods.explain_fused(gap_net, x, "layercam", layers=["features.3", "features.5"], fuse_all=True)
