"""Guided backprop and Guided Grad-CAM: the guided rule by hand, functional ReLUs, what is not
covered, restored modules, and Guided Grad-CAM = guided map x upsampled rectified Grad-CAM."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import methods
from methods._internal.torch_utils import upsample
from methods.cams.guided import guided_gradients
from tiny_models import GapNet, count_hooks


class SignNet(nn.Module):
    """x (1, 1, 1, 2) -> h = (ReLU(x), ReLU(-x)) (1x1 conv, weights 1 and -1) -> y = sum_ij (c1 h1 + c2 h2).

    With c = (-2, 3): the plain gradient is dy/dx = c1 [x > 0] - c2 [x < 0] = (-2, -3) at x = (1, -1).
    Guided: the gradient reaching each ReLU is (c1, c2); only its positive part passes, and only
    where the ReLU's input is positive: dy/dx = max(c1, 0) [x > 0] - max(c2, 0) [x < 0] = (0, -3).
    """

    def __init__(self, functional: bool = False) -> None:
        super().__init__()
        self.split = nn.Conv2d(1, 2, 1, bias=False)
        self.relu = nn.ReLU()
        self.mix = nn.Conv2d(2, 1, 1, bias=False)
        self.functional = functional
        with torch.no_grad():
            self.split.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
            self.mix.weight.copy_(torch.tensor([-2.0, 3.0]).view(1, 2, 1, 1))

    def forward(self, x):
        h = self.split(x)
        h = torch.relu(h) if self.functional else self.relu(h)
        y = self.mix(h).sum(dim=(1, 2, 3))
        return torch.stack([y, torch.zeros_like(y)], dim=1)

    X = torch.tensor([[[[1.0, -1.0]]]])


@pytest.mark.parametrize("functional", [False, True], ids=["module", "functional"])
def test_guided_rule_by_hand(functional):
    net = SignNet(functional)
    plain_x = SignNet.X.clone().requires_grad_(True)
    (plain,) = torch.autograd.grad(net(plain_x)[0, 0], plain_x)
    torch.testing.assert_close(plain[0, 0, 0], torch.tensor([-2.0, -3.0]))
    grad, info = guided_gradients(net, SignNet.X, torch.tensor([0]))
    torch.testing.assert_close(grad[0, 0, 0], torch.tensor([0.0, -3.0]))
    assert (info.modules, info.functional) == (1, int(functional))  # the (unused) module is swapped either way
    exp = methods.explain(net, SignNet.X, "guidedbackprop", layers=["split"], target=0)
    torch.testing.assert_close(exp.maps["split"][0, 0], torch.tensor([0.0, 3.0]))  # abs_max over the one channel
    signed = methods.explain(net, SignNet.X, "guidedbackprop", layers=["split"], target=0, reduce="sum")
    torch.testing.assert_close(signed.maps["split"][0, 0], torch.tensor([0.0, -3.0]))
    assert type(net.relu) is nn.ReLU and count_hooks(net) == 0


def test_inplace_relus_keep_their_semantics():
    """GapNet's in-place ReLUs, guided: the forward is unchanged (same logits) and the gradient is the
    guided one of the out-of-place network."""
    a, b = GapNet(inplace=True, seed=43), GapNet(inplace=False, seed=43)
    x = torch.randn(2, 3, 16, 16)
    ga, _ = guided_gradients(a, x, torch.tensor([1, 2]))
    gb, _ = guided_gradients(b, x, torch.tensor([1, 2]))
    torch.testing.assert_close(ga, gb)
    assert all(type(m) is nn.ReLU and m.inplace for m in a.features if isinstance(m, nn.ReLU))


def test_unguided_activations_are_reported():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.SiLU(), nn.Conv2d(4, 4, 3), nn.ReLU6(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(4, 2))
    exp = methods.explain(net, torch.randn(1, 3, 9, 9), "guidedbackprop", layers=["0"])
    (note,) = exp.notes
    assert "rectifies ReLU only" in note and "silu x1" in note and "hardtanh x1" in note


def test_guided_grad_cam_is_the_product():
    net, x = GapNet(classes=4, seed=44), torch.randn(2, 3, 16, 16)
    layers = ["features.3", "features.5"]
    many = methods.explain_many(net, x, ["guidedgradcam", "guidedbackprop", "gradcam"], layers=layers, target=[0, 1])
    guided = many["guidedbackprop"].maps["features.3"]
    for layer in layers:
        gc = upsample(many["gradcam"].maps[layer].clamp(min=0), (16, 16))
        torch.testing.assert_close(many["guidedgradcam"].maps[layer], guided * gc)
    assert not torch.allclose(many["guidedgradcam"].maps["features.3"], many["guidedgradcam"].maps["features.5"])


def test_one_guided_pass_for_both_methods():
    net = GapNet(seed=45)
    calls = []
    handle = net.register_forward_hook(lambda *a: calls.append(1))
    methods.explain_many(net, torch.randn(1, 3, 16, 16), ["guidedbackprop", "guidedgradcam"], layers=["features.5"])
    handle.remove()
    assert len(calls) == 2  # the shared recorded pass + one guided pass
