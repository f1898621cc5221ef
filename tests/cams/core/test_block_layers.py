"""block_layers (one map per block) and forward_order, on torchvision architectures built on the
``meta`` device (shapes and names only, no arithmetic; see tests/cams/core/test_layers.py) and on the
bundled scene networks. The expected lists follow from each architecture's definition: the block
modules of its plain containers, the stem's leaves collapsed to the last one of equal shape."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import get_model

import methods
from methods.cams.core.blocks import block_layers, forward_order
from methods.cams.core.layers import candidate_layers
from methods.models.scenes import nets as scene_nets


def _meta(arch: str) -> nn.Module:
    with torch.device("meta"):
        return get_model(arch, weights=None)


def _stages(prefix: str, counts: list[int]) -> list[str]:
    return [f"{prefix}{s}.{i}" for s, n in enumerate(counts, start=1) for i in range(n)]


@pytest.mark.parametrize(
    ("arch", "expected"),
    [
        ("resnet18", ["relu", "maxpool"] + [f"layer{s}.{i}" for s in range(1, 5) for i in range(2)]),
        ("resnet50", ["relu", "maxpool"] + _stages("layer", [3, 4, 6, 3])),
        ("vgg16", [f"features.{i}" for i in (3, 4, 8, 9, 15, 16, 22, 29, 30)] + ["avgpool"]),
        (
            "densenet121",
            [
                "features.relu0",
                "features.pool0",
                "features.denseblock1",
                "features.transition1",
                "features.denseblock2",
                "features.transition2",
                "features.denseblock3",
                "features.transition3",
                "features.denseblock4",
                "features.norm5",
            ],
        ),
        (
            "efficientnet_b0",
            ["features.0", "features.1", "features.2.0", "features.2.1", "features.3.0", "features.3.1"]
            + [f"features.4.{i}" for i in range(3)]
            + [f"features.5.{i}" for i in range(3)]
            + [f"features.6.{i}" for i in range(4)]
            + ["features.7", "features.8"],
        ),
        ("mobilenet_v3_large", [f"features.{i}" for i in range(17)]),
    ],
)
def test_block_layers_of_torchvision_architectures(arch, expected):
    model = _meta(arch)
    blocks = block_layers(model)
    assert [b.name for b in blocks] == expected
    cands = candidate_layers(model)
    for b in blocks:  # every entry is a candidate, with its candidate index and shape
        assert cands[b.index].name == b.name and cands[b.index].shape == b.shape
    assert [b.index for b in blocks] == sorted(b.index for b in blocks)  # forward order


def test_vgg16_stage_outputs_have_the_expected_shapes():
    """The last layer of each run of equal shape: conv stages end at ReLUs 3/8/15/22/29, pools
    4/9/16/30 halve the grid (pool 23 has the shape of the conv after it, 512 x 14 x 14)."""
    shapes = {b.name: b.shape for b in block_layers(_meta("vgg16"))}
    assert shapes["features.3"] == (64, 224, 224) and shapes["features.4"] == (64, 112, 112)
    assert shapes["features.29"] == (512, 14, 14) and shapes["features.30"] == (512, 7, 7)


def test_block_layers_of_the_bundled_models():
    vgg = [b.name for b in block_layers(scene_nets.build("scenes_vgg"), 128)]
    assert vgg == ["features.2", "features.3", "features.6", "features.7", "features.13", "features.14", "features.20"]
    res = [(b.name, b.shape) for b in block_layers(scene_nets.build("scenes_resnet"), 128)]
    # a Sequential holding one block is named as the container (layer4, not layer4.0)
    assert res == [
        ("relu", (16, 64, 64)),
        ("layer1", (16, 64, 64)),
        ("layer2", (32, 32, 32)),
        ("layer3", (64, 16, 16)),
        ("layer4", (128, 16, 16)),
    ]


def test_a_single_sequential_and_a_custom_block():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.conv(x)) + x

    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        Block(),
        Block(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 2),
    )
    assert [b.name for b in block_layers(net, 8)] == ["2", "3", "4", "5", "6"]


def test_forward_order_and_public_face():
    net = nn.Sequential(nn.Conv2d(3, 2, 1), nn.Sequential(nn.ReLU(), nn.Identity()))
    assert forward_order(net, 4) == ["0", "1.0", "1.1", "1"]
    assert methods.block_layers is block_layers
