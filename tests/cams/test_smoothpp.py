"""Smooth Grad-CAM++ against Grad-CAM++ (std = 0, and a model whose gradients ignore the input),
the hand value, and a naive one-draw-at-a-time reference."""

from __future__ import annotations

import torch

import methods
from methods.cams.gradient import gradcampp_weights
from methods.cams.smoothpp import input_noise
from tiny_models import GapNet, HandNet


def test_linear_model_gives_grad_cam_pp_whatever_the_noise():
    """HandNet is linear in its input: every noisy copy has the same gradients, so D1, D2, D3 are
    g, g^2, g^3 and the map is Grad-CAM++'s hand value A1/12 + (2/7) A2 (tests/cams/test_gradient.py)."""
    exp = methods.explain(HandNet(), HandNet.X, "smoothgradcampp", layers=["conv"], target=0, num_samples=5, std=1.0)
    torch.testing.assert_close(exp.maps["conv"][0], HandNet.A1 / 12 + (2 / 7) * HandNet.A2, rtol=1e-6, atol=1e-6)


def test_std_zero_is_grad_cam_pp():
    net, x = GapNet(classes=4, seed=41), torch.randn(2, 3, 16, 16)
    many = methods.explain_many(
        net,
        x,
        ["smoothgradcampp", "gradcampp"],
        layers=["features.3", "features.5"],
        options={"smoothgradcampp": {"std": 0.0}},
        target=[1, 2],
    )
    for layer in ("features.3", "features.5"):
        torch.testing.assert_close(
            many["smoothgradcampp"].maps[layer], many["gradcampp"].maps[layer], rtol=1e-5, atol=1e-6
        )


def test_matches_a_naive_reference_and_is_batch_independent():
    """One noisy forward+backward at a time with explicit autograd; the clean activations weight the map."""
    net, x = GapNet(classes=4, seed=42).eval(), torch.randn(2, 3, 16, 16)
    got = methods.explain(
        net, x, "smoothgradcampp", layers=["features.3"], target=[0, 3], num_samples=3, std=0.5, seed=7
    ).maps["features.3"]
    draws = list(input_noise(7, 3, (1, 3, 16, 16), 0.5))
    expected = []
    for i, c in enumerate((0, 3)):
        with torch.no_grad():
            clean = net.features[:4](x[i : i + 1])
        sums = [torch.zeros_like(clean, dtype=torch.float64) for _ in range(3)]
        for d in draws:
            a = net.features[:4](x[i : i + 1] + d).detach().requires_grad_(True)
            y = net.fc(net.pool(net.features[4:](a.clone())).flatten(1))[0, c]
            (g,) = torch.autograd.grad(y, a)
            g = g.double()
            sums = [sums[0] + g, sums[1] + g * g, sums[2] + g * g * g]
        w = gradcampp_weights(clean.double(), *(s / 3 for s in sums))
        expected.append(torch.einsum("nc,nchw->nhw", w, clean.double())[0].float())
    torch.testing.assert_close(got, torch.stack(expected), rtol=1e-4, atol=1e-6)
    one = methods.explain(
        net, x[1:], "smoothgradcampp", layers=["features.3"], target=3, num_samples=3, std=0.5, seed=7
    )
    torch.testing.assert_close(one.maps["features.3"][0], got[1], rtol=1e-5, atol=1e-6)


def test_noise_draws_are_seeded_and_match_torch_normal_with_a_global_seed():
    """Matched seeds with torch-cam: torch.manual_seed(s) then Normal(0, std).sample(shape) per draw."""
    a, b = list(input_noise(3, 2, (1, 3, 4, 4), 0.3)), list(input_noise(3, 2, (1, 3, 4, 4), 0.3))
    assert all(torch.equal(p, q) for p, q in zip(a, b)) and not torch.equal(a[0], a[1])
    torch.manual_seed(3)
    normal = torch.distributions.Normal(0.0, 0.3)
    for draw in a:
        torch.testing.assert_close(draw, normal.sample((1, 3, 4, 4)), rtol=1e-6, atol=1e-7)
