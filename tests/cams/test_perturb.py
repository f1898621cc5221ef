"""RISE and occlusion against closed forms and naive one-input-at-a-time references; batching,
seeds, progress and precision."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import methods
from methods.cams.perturb import rise_masks, window_starts
from tiny_models import GapNet


class SumNet(nn.Module):
    """logits = (sum_ij V_ij x_ij, 0): p_0(x) = sigmoid(sum V o x), written down for any input."""

    def __init__(self, v: torch.Tensor) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)  # a layer to name; the identity
        self.v = v
        with torch.no_grad():
            self.conv.weight.fill_(1.0)

    def forward(self, x):
        s = (self.conv(x)[:, 0] * self.v).sum(dim=(1, 2))
        return torch.stack([s, torch.zeros_like(s)], dim=1)


def test_occlusion_hand_values():
    """4x4 input, 2x2 windows, stride 2: each pixel lies in one window, whose drop it gets:
    d_w = sigmoid(S) - sigmoid(S - S_w) with S = sum V o x and S_w the window's share."""
    x = torch.arange(16.0).view(1, 1, 4, 4) / 10
    v = torch.tensor([[1.0, -1.0, 2.0, 0.0], [0.5, 0.5, -2.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, -3.0]])
    net = SumNet(v)
    exp = methods.explain(net, x, "occlusion", layers=["conv"], target=0, window=2, stride=2)
    s = float((v * x[0, 0]).sum())
    sig = lambda t: 1 / (1 + math.exp(-t))  # noqa: E731
    expected = torch.zeros(4, 4)
    for y0 in (0, 2):
        for x0 in (0, 2):
            s_w = float((v * x[0, 0])[y0 : y0 + 2, x0 : x0 + 2].sum())
            expected[y0 : y0 + 2, x0 : x0 + 2] = sig(s) - sig(s - s_w)
    torch.testing.assert_close(exp.maps["conv"][0], expected, rtol=1e-5, atol=1e-6)


def test_occlusion_overlapping_windows_match_a_naive_reference():
    net, x = GapNet(classes=3, seed=61).eval(), torch.randn(2, 3, 12, 12)
    got = methods.explain(
        net, x, "occlusion", layers=["features.5"], target=[2, 0], window=5, stride=3, baseline=-0.5, batch_size=7
    ).maps["features.5"]
    starts = window_starts(12, 5, 3)
    assert starts == [0, 3, 6, 7]  # the last window ends at the edge
    with torch.no_grad():
        for i, c in enumerate((2, 0)):
            p = net(x[i : i + 1]).softmax(1)[0, c]
            total, count = torch.zeros(12, 12), torch.zeros(12, 12)
            for y0 in starts:
                for x0 in starts:
                    occ = x[i : i + 1].clone()
                    occ[..., y0 : y0 + 5, x0 : x0 + 5] = -0.5
                    total[y0 : y0 + 5, x0 : x0 + 5] += p - net(occ).softmax(1)[0, c]
                    count[y0 : y0 + 5, x0 : x0 + 5] += 1
            torch.testing.assert_close(got[i], total / count, rtol=1e-4, atol=1e-6)


def test_rise_with_every_cell_kept_is_the_class_probability():
    """p = 1 keeps every cell: every mask is all ones, so M = (1/N) sum_i p_c(x) = p_c(x) everywhere."""
    net, x = GapNet(classes=3, seed=62).eval(), torch.randn(1, 3, 16, 16)
    exp = methods.explain(net, x, "rise", layers=["features.5"], target=1, num_masks=5, p=1.0)
    torch.testing.assert_close(exp.maps["features.5"][0], torch.full((16, 16), float(exp.probs[0, 1])))


def test_rise_matches_a_naive_reference_and_is_batch_independent():
    net, x = GapNet(classes=3, seed=63).eval(), torch.randn(2, 3, 16, 16)
    opts = dict(num_masks=12, cell=5, p=0.4, seed=3)
    got = methods.explain(net, x, "rise", layers=["features.5"], target=[0, 2], batch_size=5, **opts).maps["features.5"]
    masks = rise_masks(12, (16, 16), cell=5, p=0.4, seed=3)  # (12, 16, 16)
    assert masks.shape == (12, 16, 16) and float(masks.min()) >= 0 and float(masks.max()) <= 1
    with torch.no_grad():
        for i, c in enumerate((0, 2)):
            ref = sum(net(x[i : i + 1] * m).softmax(1)[0, c] * m for m in masks) / (12 * 0.4)
            torch.testing.assert_close(got[i], ref, rtol=1e-4, atol=1e-6)
    one = methods.explain(net, x[1:], "rise", layers=["features.5"], target=2, batch_size=32, **opts)
    torch.testing.assert_close(one.maps["features.5"][0], got[1], rtol=1e-5, atol=1e-6)
    assert torch.equal(rise_masks(12, (16, 16), cell=5, p=0.4, seed=3), masks)
    assert not torch.equal(rise_masks(12, (16, 16), cell=5, p=0.4, seed=4), masks)


@pytest.mark.parametrize(
    "name, opts, rows", [("rise", {"num_masks": 9}, 18), ("occlusion", {"window": 8, "stride": 8}, 10)]
)
def test_progress_and_bf16(name, opts, rows):
    """Progress counts rows and ends at done == total; bf16 (emulated here, still correct) is close to fp32."""
    net, x = GapNet(classes=3, seed=64).eval(), torch.randn(2, 3, 16, 16)
    seen = []
    fp32 = methods.explain(
        net, x, name, layers=["features.5"], target=1, batch_size=4, progress=lambda d, t: seen.append((d, t)), **opts
    )
    assert seen[-1][0] == seen[-1][1] and all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))
    assert len(seen) == math.ceil(rows / 4)
    bf16 = methods.explain(net, x, name, layers=["features.5"], target=1, precision="bf16", **opts)
    m32, m16 = fp32.maps["features.5"], bf16.maps["features.5"]
    assert float((m32 - m16).abs().max()) <= 0.05 * float(m32.abs().max()) + 1e-3


def test_bad_options():
    with pytest.raises(methods.OptionError, match="p=0 is not valid"):
        methods.create_method("rise", p=0)
    with pytest.raises(methods.OptionError, match="window=0"):
        methods.create_method("occlusion", window=0)
