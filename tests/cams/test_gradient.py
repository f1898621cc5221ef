"""Gradient-family maps against hand computations and closed forms.

HandNet (tests/tiny_models.py) has A^1 = [[1,2],[3,4]], A^2 = [[4,3],[2,1]],
G^1 = [[1,0],[0,-1]], G^2 = 0.5 everywhere for class 0; the expected maps below were worked out
on paper from each method's formula.
"""

from __future__ import annotations

import pytest
import torch

import methods
from methods.cams.gradient import GradCamPlusPlus
from tiny_models import GapNet, HandNet

A1, A2 = HandNet.A1, HandNet.A2

HAND_MAPS = {
    # w = mean(G) = (0, 0.5)  ->  0.5 * A2
    "gradcam": 0.5 * A2,
    # alpha = 1/(2 + S g) where g > 0 (S = 10 for both channels): channel 1 has one g = 1 -> 1/12;
    # channel 2 has four g = 0.5 -> 4 * 0.5 / (2 + 5) = 2/7
    "gradcampp": A1 / 12 + (2 / 7) * A2,
    # w_k = sum(A G) / sum(A): (1 - 4)/10 = -0.3 and (0.5 * 10)/10 = 0.5
    "xgradcam": -0.3 * A1 + 0.5 * A2,
    # sum_k G * A
    "hirescam": torch.tensor([[3.0, 1.5], [1.0, -3.5]]),
    # sum_k ReLU(G) * A
    "layercam": torch.tensor([[3.0, 1.5], [1.0, 0.5]]),
}


@pytest.mark.parametrize("name", sorted(HAND_MAPS))
def test_hand_computed_map_class0(name):
    exp = methods.explain(HandNet(), HandNet.X, name, layers=["conv"], target=0)
    torch.testing.assert_close(exp.maps["conv"][0], HAND_MAPS[name], rtol=1e-6, atol=1e-6)


def test_hand_computed_class1_gradcam():
    # class 1: G^1 = 0, G^2 = [[1,0],[0,0]] -> w = (0, 0.25) -> 0.25 * A2
    exp = methods.explain(HandNet(), HandNet.X, "gradcam", layers=["conv"], target=1)
    torch.testing.assert_close(exp.maps["conv"][0], 0.25 * A2)


def test_recorded_gradients_are_the_hand_values():
    rec = methods.record(HandNet(), HandNet.X, ["conv"], target=0)
    torch.testing.assert_close(rec.activations["conv"][0], torch.stack([A1, A2]))
    torch.testing.assert_close(rec.gradients["conv"][0], torch.stack([HandNet.G1, HandNet.G2]))


def test_gradcam_equals_cam_on_gap_linear_net():
    """Zhou et al. 2016: CAM_c = sum_k W_ck A^k. With GAP over Z positions, dy/dA = W_ck / Z, so
    Grad-CAM = CAM / Z, and HiResCAM (sum_k g A) is the same map."""
    torch.manual_seed(1)
    net = GapNet(classes=5)
    x = torch.randn(3, 3, 16, 16)
    targets = [0, 3, 4]
    gc = methods.explain_many(net, x, ["gradcam", "hirescam"], layers=["features.5"], target=targets)
    with torch.no_grad():
        acts = net.features(x)  # (3, 12, 8, 8)
    z = acts.shape[-1] * acts.shape[-2]
    cam = torch.einsum("nc,nchw->nhw", net.fc.weight[targets], acts) / z
    torch.testing.assert_close(gc["gradcam"].maps["features.5"], cam, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gc["hirescam"].maps["features.5"], cam, rtol=1e-5, atol=1e-6)


def test_gradcampp_matches_literal_closed_form_on_random_values():
    """The implementation uses alpha = 1/(2 + S g); compare with the paper's literal
    alpha = g^2 / (2 g^2 + S g^3) (alpha = 0 where that denominator is 0) on random values,
    including exact zeros in the gradient."""
    gen = torch.Generator().manual_seed(0)
    # float64: with signed random values some denominators nearly cancel, where float32 rounding
    # of the two algebraically equal forms differs by ~1e-3 relative
    acts = torch.randn(2, 6, 5, 5, generator=gen, dtype=torch.float64)
    grads = torch.randn(2, 6, 5, 5, generator=gen, dtype=torch.float64)
    grads[grads.abs() < 0.3] = 0.0
    g2, g3 = grads**2, grads**3
    s = acts.sum(dim=(2, 3), keepdim=True)
    denom = 2 * g2 + s * g3
    alpha = torch.where(denom != 0, g2 / torch.where(denom != 0, denom, 1.0), 0.0)
    weights = (alpha * grads.clamp(min=0)).sum(dim=(2, 3))
    expected = torch.einsum("nc,nchw->nhw", weights, acts)
    torch.testing.assert_close(GradCamPlusPlus().compute(acts, grads), expected, rtol=1e-10, atol=1e-12)


def test_gradcampp_zero_gradient_gives_zero_map():
    acts = torch.rand(1, 3, 4, 4)
    out = GradCamPlusPlus().compute(acts, torch.zeros_like(acts))
    assert torch.equal(out, torch.zeros(1, 4, 4))


def test_xgradcam_channel_with_zero_sum_gets_zero_weight():
    acts = torch.zeros(1, 2, 2, 2)
    acts[0, 1] = 1.0
    grads = torch.ones(1, 2, 2, 2)
    out = methods.create_method("xgradcam").compute(acts, grads)
    torch.testing.assert_close(out[0], torch.ones(2, 2))  # w = (0, 1)
    assert torch.isfinite(out).all()
