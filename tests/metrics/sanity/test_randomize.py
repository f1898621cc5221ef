"""The blocks of the randomization test and their re-initialisation."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import get_model

from methods.errors import OptionError, WrongTypeError
from methods.metrics.sanity.randomize import Block, block_seed, check_blocks, default_blocks, reinitialise
from methods.models.scenes import nets as scene_nets
from tiny_models import GapNet


def _meta(arch: str) -> nn.Module:
    with torch.device("meta"):
        return get_model(arch, weights=None)


def test_default_blocks_of_torchvision_models_top_down():
    r50 = [b.name for b in default_blocks(_meta("resnet50"))]
    stages = [f"layer{s}.{i}" for s, n in zip((4, 3, 2, 1), (3, 6, 4, 3)) for i in reversed(range(n))]
    assert r50 == ["fc"] + stages + ["conv1 + bn1"]
    vgg = [b.name for b in default_blocks(_meta("vgg16"))]
    convs = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    assert vgg == ["classifier.6", "classifier.3", "classifier.0"] + [f"features.{i}" for i in reversed(convs)]
    vgg_bn = default_blocks(_meta("vgg11_bn"))
    assert vgg_bn[3] == Block("features.25 + features.26", ("features.25", "features.26"))  # conv + its BN


def test_default_blocks_of_the_bundled_models():
    vgg = [b.name for b in default_blocks(scene_nets.build("scenes_vgg"), (128, 128))]
    assert vgg == [
        "classifier",
        "features.18 + features.19",
        "features.15 + features.16",
        "features.11 + features.12",
        "features.8 + features.9",
        "features.4 + features.5",
        "features.0 + features.1",
    ]
    res = [b.name for b in default_blocks(scene_nets.build("scenes_resnet"), (128, 128))]
    assert res == ["fc", "layer4", "layer3", "layer2", "layer1", "conv1 + bn1"]


def test_single_sequential_and_wrapped_models():
    """A model that IS a Sequential: one block per parameterised layer, a BatchNorm joined to the
    conv before it. A model wrapping everything in one custom module: the walk goes down a level."""
    seq = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    )
    assert [b.name for b in default_blocks(seq, (8, 8))] == ["6", "3", "0 + 1"]

    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = GapNet()

        def forward(self, x):
            return self.body(x)

    assert [b.name for b in default_blocks(Wrapper(), (8, 8))] == [
        "body.fc",
        "body.features.4",
        "body.features.2",
        "body.features.0",
    ]


def test_a_holder_that_never_runs_is_looked_inside():
    class Holder(nn.Module):  # no forward of its own: the parent calls its children
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 4, 3)
            self.conv2 = nn.Conv2d(4, 4, 3)

    class Parent(nn.Module):
        def __init__(self):
            super().__init__()
            self.parts = Holder()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(self.parts.conv2(self.parts.conv1(x)).mean((2, 3)))

    assert [b.name for b in default_blocks(Parent(), (8, 8))] == ["fc", "parts.conv2", "parts.conv1"]


class Scaled(nn.Module):
    """A module with a parameter and no reset_parameters (like a layer-scale vector)."""

    def __init__(self):
        super().__init__()
        self.gamma = nn.Parameter(torch.linspace(-3, 3, 10_000))

    def forward(self, x):
        return x * self.gamma[: x.shape[1]].view(1, -1, 1, 1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.scale = Scaled()
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(self.scale(self.bn(self.conv(x))).mean((2, 3)))


def test_reinitialise_each_kind_of_tensor():
    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        net.bn.weight.fill_(3.0), net.bn.bias.fill_(-2.0), net.bn.running_mean.fill_(5.0), net.bn.running_var.fill_(9.0)
    net.bn.num_batches_tracked.fill_(7)
    fc_before = net.fc.weight.clone()
    sigma = float(net.scale.gamma.detach().std())
    rng_before = torch.get_rng_state()
    reinitialise(net, Block("conv + bn + scale", ("conv", "bn", "scale")), seed=11)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's RNG is left alone
    # BatchNorm: its own reset_parameters (gamma 1, beta 0, running stats 0 / 1)
    assert torch.equal(net.bn.weight, torch.ones(8)) and torch.equal(net.bn.bias, torch.zeros(8))
    assert torch.equal(net.bn.running_mean, torch.zeros(8)) and torch.equal(net.bn.running_var, torch.ones(8))
    assert int(net.bn.num_batches_tracked) == 0
    # conv: PyTorch's init, bound 1/sqrt(fan_in) = 1/sqrt(27)
    assert float(net.conv.weight.detach().abs().max()) <= 27**-0.5
    # no reset_parameters: N(0, sigma^2), sigma = the trained tensor's std (10 000 draws: within 5 %)
    assert float(net.scale.gamma.detach().std()) == pytest.approx(sigma, rel=0.05)
    assert abs(float(net.scale.gamma.detach().mean())) < 0.05 * sigma
    assert torch.equal(net.fc.weight, fc_before)  # not in the block: untouched
    again = Net()
    reinitialise(again, Block("conv + bn + scale", ("conv", "bn", "scale")), seed=11)
    assert torch.equal(again.conv.weight, net.conv.weight) and torch.equal(again.scale.gamma, net.scale.gamma)


def test_block_seeds_and_checks():
    assert block_seed(0, 1) == block_seed(0, 1) != block_seed(0, 2) != block_seed(1, 2)
    net = Net()
    assert check_blocks(net, ["fc", ["conv", "bn"]]) == [Block("fc", ("fc",)), Block("conv + bn", ("conv", "bn"))]
    with pytest.raises(OptionError, match="Did you mean 'conv'"):
        check_blocks(net, ["cnv"])
    with pytest.raises(OptionError, match="no parameters"):
        check_blocks(nn.Sequential(nn.Conv2d(1, 1, 1), nn.ReLU()), ["1"])
    with pytest.raises(OptionError, match="two blocks"):
        check_blocks(net, ["fc", ["fc", "bn"]])
    with pytest.raises(OptionError, match="empty"):
        check_blocks(net, [])
    with pytest.raises(WrongTypeError):
        check_blocks(net, "fc")
