"""Every faithfulness curve runs its forwards with Conv2d -> BatchNorm2d pairs folded (checked first).

The reference is the same call with folding switched off: in fp32 the scores must agree to float
rounding, the fold must really have run (resnet18's 20 pairs), and the model must come back as it
was (no instance forwards left, its train/eval flags and parameters untouched). A model whose
convolution output is used twice is not folded and still scores right.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import methods.metrics.faithfulness.perturbation as perturbation
from methods._internal.bn_folding import FoldedBatchNorm
from methods.metrics.faithfulness import curves as fa
from methods.metrics.faithfulness.confidence import confidence_change
from methods.metrics.faithfulness.image_scores import image_scores
from methods.metrics.faithfulness.road import RoadOptions, road


class NoFold(FoldedBatchNorm):
    """Folding switched off: the reference arithmetic."""

    def __enter__(self) -> NoFold:
        self.reason = "switched off by the test"
        return self


def _resnet18() -> nn.Module:
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=5)
    with torch.no_grad():  # batch norms that are far from the identity, or folding would be a no-op
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return net.train()  # the curves put it in eval mode for the call and back afterwards


def _all_scores(net: nn.Module, x: torch.Tensor, sal: torch.Tensor) -> list[np.ndarray]:
    d = fa.deletion_curve(net, x, sal, 3, steps=6, precision="fp32")
    i = fa.insertion_curve(net, x, sal, 3, steps=6, precision="fp32")
    c = confidence_change(net, x, sal, 3, precision="fp32")
    shared = image_scores(net, x, [sal, sal.T.contiguous()], 3, steps=6, precision="fp32")
    r = road(net, x, sal, 3, options=RoadOptions(fractions=(0.2, 0.6), precision="fp32"))
    return [
        d.scores,
        i.scores,
        np.array([c.score, c.masked_score]),
        *[s.deletion.scores for s in shared],
        *[s.insertion.scores for s in shared],
        np.concatenate([r.morf, r.lerf, [r.score]]),
    ]


def test_every_curve_folds_and_gives_the_unfolded_scores(monkeypatch):
    net = _resnet18()
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    sal = torch.rand(4, 4, generator=torch.Generator().manual_seed(2))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    pairs = []

    class Spy(FoldedBatchNorm):
        def __enter__(self) -> Spy:
            super().__enter__()
            pairs.append(self.pairs)
            return self

    monkeypatch.setattr(perturbation, "FoldedBatchNorm", Spy)
    folded = _all_scores(net, x, sal)
    assert pairs == [20] * 5  # conv1/bn1, 8 blocks x 2, 3 downsample pairs; every curve function folded
    monkeypatch.setattr(perturbation, "FoldedBatchNorm", NoFold)
    plain = _all_scores(net, x, sal)
    for a, b in zip(folded, plain):
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-6)
    assert not any("forward" in m.__dict__ for m in net.modules())  # the folded forwards are gone
    assert net.training and all(m.training for m in net.modules())
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


class ReusedConv(nn.Module):
    """conv -> BN, with the conv's raw output added back: the batch norm cannot be dropped."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4).eval()
        self.fc = nn.Linear(4, 3)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-1, 1)
            self.bn.running_var.uniform_(0.5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.fc((self.bn(y) + y).mean(dim=(2, 3)))


def test_a_model_that_reuses_the_convolution_is_not_folded_and_scores_right(monkeypatch):
    net = ReusedConv()
    x = torch.randn(1, 3, 12, 12, generator=torch.Generator().manual_seed(4))
    sal = torch.rand(3, 3, generator=torch.Generator().manual_seed(5))
    reasons = []

    class Spy(FoldedBatchNorm):
        def __enter__(self) -> Spy:
            super().__enter__()
            reasons.append((self.pairs, self.reason))
            return self

    monkeypatch.setattr(perturbation, "FoldedBatchNorm", Spy)
    got = fa.deletion_curve(net, x, sal, 1, steps=4, precision="fp32").scores
    assert reasons == [(0, "folding changed the logits (a convolution's raw output is used elsewhere)")]
    # by hand: each step's image through the model itself, softmax of class 1
    counts = perturbation.step_counts(144, 4)
    rank = perturbation.pixel_ranks(sal, 12, 12)
    substrate, _ = perturbation.baseline_substrate(x, "blur", None)
    with torch.no_grad():
        want = [net(perturbation.perturb("deletion", x, substrate, rank < int(k))).softmax(1)[0, 1] for k in counts]
    np.testing.assert_allclose(got, torch.stack(want).numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("kinds", [(nn.Conv2d,), (nn.BatchNorm2d,), ()])
def test_no_search_forward_without_both_kinds_of_module(kinds):
    layers = [k(3, 3, 1) if k is nn.Conv2d else k(3) for k in kinds]

    class Counting(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
            self.seen = 0

        def forward(self, x):
            self.seen += x.shape[0]
            return self.body(x)

    net = Counting().eval()
    with FoldedBatchNorm(net, torch.randn(1, 3, 4, 4)) as fold:
        assert (fold.pairs, fold.reason, net.seen) == (0, "no Conv2d -> BatchNorm2d pair", 0)
