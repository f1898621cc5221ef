"""FullGrad: completeness of the decomposition (every conv and BatchNorm bias covered), the hand
map of HandNet, BatchNorm's effective bias, and one shared pass."""

from __future__ import annotations

import torch
from torch import nn

import methods
from methods.cams.core.sites import site_name
from methods.cams.fullgrad import bias_modules, effective_bias, minmax_abs
from tiny_models import HandNet


class BnNet(nn.Module):
    """conv+BN+ReLU, max-pool, conv(bias)+BN(no affine)+ReLU, conv used TWICE (a reused module),
    GAP, linear: piecewise linear, so the full-gradient decomposition is exact."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(51)
        self.c1, self.b1 = nn.Conv2d(3, 5, 3, padding=1, bias=False), nn.BatchNorm2d(5)
        self.c2, self.b2 = nn.Conv2d(5, 6, 3, padding=1), nn.BatchNorm2d(6, affine=False)
        self.shared = nn.Conv2d(6, 6, 1)
        self.fc = nn.Linear(6, 3)
        with torch.no_grad():
            for bn in (self.b1, self.b2):
                bn.running_mean.uniform_(-1, 1)
                bn.running_var.uniform_(0.5, 2)
            self.b1.weight.uniform_(0.5, 1.5)
            self.b1.bias.uniform_(-1, 1)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.b1(self.c1(x))), 2)
        x = torch.relu(self.b2(self.c2(x)))
        x = torch.relu(self.shared(torch.relu(self.shared(x))))
        return self.fc(x.mean(dim=(2, 3)))


def test_completeness_every_bias_is_covered():
    """y_c = sum(x * dy/dx) + sum over every call of every covered module of sum(b * dy/dz) + b_fc[c]
    (Srinivas & Fleuret 2019, Theorem 1): to 1e-5, so no bias term is missing or counted twice."""
    net = BnNet().eval()
    assert bias_modules(net) == ["b1", "c2", "b2", "shared"]  # c1 has no bias
    x = torch.randn(2, 3, 8, 8)
    rec = methods.record(net, x, ["c1"], target=[0, 2], input_gradient=True, sites=bias_modules(net))
    assert sorted(rec.site_gradients) == ["b1#0", "b2#0", "c2#0", "shared#0", "shared#1"]
    named = dict(net.named_modules())
    total = (x * rec.input_gradient).sum(dim=(1, 2, 3)) + net.fc.bias.detach()[rec.targets]
    for key, grad in rec.site_gradients.items():
        b = effective_bias(named[key.split("#")[0]])
        total = total + (grad * b[None, :, None, None]).sum(dim=(1, 2, 3))
    torch.testing.assert_close(total, rec.logits[torch.arange(2), rec.targets], rtol=1e-5, atol=1e-5)


def test_batchnorm_effective_bias():
    bn = BnNet().b1.eval()
    z = torch.randn(1, 5, 2, 2)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    torch.testing.assert_close(bn(z), scale[None, :, None, None] * z + effective_bias(bn)[None, :, None, None])


def test_hand_map_of_hand_net():
    """HandNet, class 0: dy/dX = G1 - G2 = [[0.5, -0.5], [-0.5, -1.5]], so |X o dy/dX| = [[0.5, 1], [1.5, 6]],
    min-max scaled: [[0, 1/11], [2/11, 1]]. The conv's bias (0, 5) times its gradient (G1, G2):
    channel 1 is 0, channel 2 is 2.5 everywhere; scaled over both channels: 0 and 1; summed: 1.
    The map is [[1, 12/11], [13/11, 2]] (the Linear bias is not spatial: left out)."""
    exp = methods.explain(HandNet(), HandNet.X, "fullgrad", layers=["conv"], target=0)
    torch.testing.assert_close(exp.maps["conv"][0], torch.tensor([[1.0, 12 / 11], [13 / 11, 2.0]]))
    torch.testing.assert_close(minmax_abs(torch.full((1, 2, 2), -3.0)), torch.zeros(1, 2, 2))


def test_fullgrad_shares_the_recorded_pass():
    net = BnNet().eval()
    calls = []
    handle = net.register_forward_hook(lambda *a: calls.append(1))
    many = methods.explain_many(net, torch.randn(1, 3, 8, 8), ["fullgrad", "gradcam"], layers=["c2", "b2"])
    handle.remove()
    assert len(calls) == 1
    assert many["fullgrad"].maps["c2"] is many["fullgrad"].maps["b2"] and many["fullgrad"].maps["c2"].shape == (1, 8, 8)
    assert (many["fullgrad"].maps["c2"] >= 0).all()


def test_uncovered_bias_terms_get_a_note():
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.GroupNorm(2, 4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
    )
    exp = methods.explain(net, torch.randn(1, 3, 6, 6), "fullgrad", layers=["0"])
    assert any("GroupNorm bias terms are left out" in n for n in exp.notes)
    assert site_name("a", 1) == "a#1"
