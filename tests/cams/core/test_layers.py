"""Tests for methods/layers.py: candidate layers and the default layer.

torchvision models are built with ``weights=None`` (no download); only shapes and names matter
here. VGG16 runs a real CPU forward; the bigger ones are built on PyTorch's ``meta`` device, where
the probe forward computes shapes without any arithmetic (same modules, same hook order, same
tensor identities for in-place ops) - a 100x cheaper run of the same code path. Expected shapes
follow from the architectures (VGG16: five 2x2 max-pools on a 224 input; ResNet-50: stride 4 stem,
stages at strides 4/8/16/32 with 256/512/1024/2048 channels).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import get_model

from methods.cams.core.layers import LayerInfo, candidate_layers, default_layer

VGG16_CONVS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
VGG16_POOLS = [4, 9, 16, 23, 30]


@pytest.fixture(scope="module")
def vgg16() -> nn.Module:
    torch.manual_seed(0)
    return get_model("vgg16", weights=None)


def _meta(arch: str) -> nn.Module:
    with torch.device("meta"):
        return get_model(arch, weights=None)


@pytest.fixture(scope="module")
def resnet50() -> nn.Module:
    return _meta("resnet50")


@pytest.fixture(scope="module")
def resnet50_layers(resnet50) -> list[LayerInfo]:
    return candidate_layers(resnet50)


# ----------------------------------------------------------------------------- VGG16


def test_vgg16_full_candidate_list(vgg16):
    layers = candidate_layers(vgg16, input_size=(224, 224))
    names = [li.name for li in layers]
    # features.0 .. features.30 (13 conv + 13 ReLU + 5 max-pool), then the `features` container
    # (same tensor as features.30) and avgpool (AdaptiveAvgPool2d((7, 7)) keeps a 7x7 grid).
    assert names == [f"features.{i}" for i in range(31)] + ["features", "avgpool"]
    assert len(layers) == 33
    types = {li.name: li.type for li in layers}
    assert [i for i in range(31) if types[f"features.{i}"] == "Conv2d"] == VGG16_CONVS
    assert [i for i in range(31) if types[f"features.{i}"] == "MaxPool2d"] == VGG16_POOLS
    assert sum(t == "ReLU" for t in types.values()) == 13
    assert [li.index for li in layers] == list(range(33))

    by_name = {li.name: li for li in layers}
    assert by_name["features.0"].shape == (64, 224, 224)
    assert by_name["features.4"].shape == (64, 112, 112)
    assert by_name["features.9"].shape == (128, 56, 56)
    assert by_name["features.16"].shape == (256, 28, 28)
    assert by_name["features.23"].shape == (512, 14, 14)
    assert by_name["features.29"].shape == (512, 14, 14)
    assert by_name["features.30"].shape == (512, 7, 7)
    assert by_name["avgpool"].shape == (512, 7, 7)
    # the classifier's Linear/ReLU/Dropout outputs are 2-D: not candidates
    assert not any(n.startswith("classifier") for n in names)


def test_vgg16_default_is_last_relu(vgg16):
    assert default_layer(vgg16) == "features.29"


def test_vgg16_other_input_size(vgg16):
    by_name = {li.name: li for li in candidate_layers(vgg16, input_size=(64, 96))}
    assert by_name["features.0"].shape == (64, 64, 96)
    assert by_name["features.29"].shape == (512, 4, 6)
    assert by_name["features.30"].shape == (512, 2, 3)


# ----------------------------------------------------------------------------- ResNet-50


def test_resnet50_stages(resnet50_layers):
    layers = resnet50_layers
    by_name = {li.name: li for li in layers}
    assert by_name["conv1"].shape == (64, 112, 112)
    assert by_name["maxpool"].shape == (64, 56, 56)
    assert by_name["layer1"].shape == (256, 56, 56)
    assert by_name["layer2"].shape == (512, 28, 28)
    assert by_name["layer3"].shape == (1024, 14, 14)
    assert by_name["layer4"].shape == (2048, 7, 7)
    assert by_name["layer4.1"].shape == (2048, 7, 7)
    assert by_name["layer4"].type == "Sequential"
    assert by_name["layer4.1"].type == "Bottleneck"
    assert layers[0].name == "conv1"
    assert layers[-1].name == "layer4"  # avgpool gives 1x1: not a candidate


def test_resnet50_order_and_exclusions(resnet50_layers):
    names = [li.name for li in resnet50_layers]
    pos = {n: i for i, n in enumerate(names)}
    # forward-hook order: a container finishes after its children, stages in sequence
    assert pos["layer4.2.conv3"] < pos["layer4.2"] < pos["layer4"]
    assert pos["layer1"] < pos["layer2.0.conv1"]
    assert pos["layer4.0.downsample.0"] < pos["layer4.0"]
    # each Bottleneck calls its one `relu` module three times: ambiguous, so excluded;
    # the stem's relu runs once and stays
    assert "relu" in pos
    assert not any(n.endswith(".relu") for n in names)
    assert "avgpool" not in pos and "fc" not in pos
    # convs: stem 1 + 16 Bottlenecks x 3 + 4 downsample = 53, each with its BN (53);
    # 16 Bottlenecks, 4 stages, 4 downsample Sequentials, the stem relu, maxpool
    assert len(names) == 53 + 53 + 16 + 4 + 4 + 1 + 1


def test_resnet50_default(resnet50):
    assert default_layer(resnet50) == "layer4"


# ----------------------------------------------------------------------------- other backbones


@pytest.mark.parametrize(
    ("arch", "expected", "channels"),
    [
        ("resnet18", "layer4", 512),
        ("densenet121", "features.norm5:act", 1024),
        ("mobilenet_v3_large", "features.16", 960),
        ("efficientnet_b0", "features.8", 1280),
        ("convnext_tiny", "features.7", 768),
    ],
)
def test_default_layer_of_catalog_architectures(arch, expected, channels):
    model = _meta(arch)
    assert default_layer(model) == expected
    by_name = {li.name: li for li in candidate_layers(model)}
    assert by_name[expected].shape == (channels, 7, 7)  # all five have output stride 32


def test_real_cpu_forward_matches_meta_probe():
    """The meta-device shortcut gives the same answer as a real forward (checked on ResNet-18)."""
    torch.manual_seed(0)
    real = get_model("resnet18", weights=None)
    assert candidate_layers(real, input_size=(64, 64)) == candidate_layers(_meta("resnet18"), input_size=(64, 64))
    assert default_layer(real, input_size=(64, 64)) == "layer4"


# ----------------------------------------------------------------------------- rules on tiny models


class _Tiny(nn.Module):
    """conv -> shared relu -> conv -> shared relu (reused) -> squeeze to 1x1 -> tuple branch."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(3, 4, 3, padding=1)
        self.conv_b = nn.Conv2d(4, 4, 3, padding=1)
        self.shared = nn.ReLU()
        self.row = nn.Conv2d(4, 2, kernel_size=(8, 1))  # (2, 1, 8) for an 8x8 input: 1 x 8 grid
        self.point = nn.AdaptiveAvgPool2d(1)  # (4, 1, 1): no spatial grid
        self.unused = nn.Conv2d(4, 4, 1)  # never called
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        a = self.shared(self.conv_a(x))
        b = self.shared(self.conv_b(a))
        _ = self.row(b)
        return self.fc(self.point(b).flatten(1))


def test_tiny_model_rules():
    layers = candidate_layers(_Tiny(), input_size=8)
    assert [(li.name, li.type, li.shape) for li in layers] == [
        ("conv_a", "Conv2d", (4, 8, 8)),
        ("conv_b", "Conv2d", (4, 8, 8)),
        ("row", "Conv2d", (2, 1, 8)),  # h = 1 but w = 8: still a spatial map
    ]
    assert all(isinstance(li, LayerInfo) for li in layers)


def test_default_skips_backbone_that_sees_the_image():
    """backbone (receives the image) and backbone.1 share one output; backbone.1 is chosen."""
    model = nn.Sequential()
    model.add_module("backbone", nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))
    model.add_module("pool", nn.AdaptiveAvgPool2d(1))
    model.add_module("flat", nn.Flatten())
    model.add_module("fc", nn.Linear(4, 2))
    names = [li.name for li in candidate_layers(model, input_size=(10, 10))]
    assert names == ["backbone.0", "backbone.1", "backbone"]
    assert default_layer(model, input_size=(10, 10)) == "backbone.1"


def test_default_single_conv_model():
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveMaxPool2d(1), nn.Flatten())
    assert default_layer(model, input_size=(6, 6)) == "0"


def test_inplace_relu_group_prefers_relu():
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1))
    assert default_layer(model, input_size=(6, 6)) == "1"


class _NormAct(nn.Module):
    """timm's BatchNormAct2d in miniature: BatchNorm, an Identity ``drop``, an in-place ReLU."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(c)
        self.drop = nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.drop(self.bn(x)))


def test_pass_through_does_not_hide_the_module_it_passes_on():
    """An Identity (or eval Dropout) hands on its input unchanged: it is never the default, but the
    module whose output it passes on still can be. Before this rule, timm's EfficientNet defaulted
    to ``conv_head`` (pre-BN, signed) because ``bn2.drop`` shares ``bn2``'s output."""
    model = nn.Sequential()
    model.add_module("stem", nn.Conv2d(3, 4, 3))
    model.add_module("conv_head", nn.Conv2d(4, 6, 1))
    model.add_module("bn2", _NormAct(6))
    model.add_module("drop", nn.Dropout(0.5))  # eval mode: passes through on a 4-D map
    model.add_module("pool", nn.AdaptiveAvgPool2d(1))
    names = [li.name for li in candidate_layers(model, input_size=(8, 8))]
    assert names == ["stem", "conv_head", "bn2.bn", "bn2.drop", "bn2.act", "bn2", "drop"]
    assert default_layer(model, input_size=(8, 8)) == "bn2"
    # a max-pool still disqualifies what shares its output (a container ending in it)
    pooled = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2)), nn.Flatten())
    assert default_layer(pooled, input_size=(10, 10)) == "0.1"


class _Staged(nn.Module):
    """A stem, then ``stages`` (two stages of different resolutions), then an Identity and pooling,
    as in timm's ConvNeXt / RegNet."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.stages = nn.Sequential(
            nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()),
            nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.ReLU()),
        )
        self.norm_pre = nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.pool(self.norm_pre(self.stages(self.stem(x)))).flatten(1)


def test_container_of_several_stages_is_not_the_default():
    """``stages`` does not receive the image (the stem does) but holds maps of two sizes: the
    whole backbone. The last stage is chosen, as torchvision's ``features.7`` is for ConvNeXt."""
    assert default_layer(_Staged(), input_size=(8, 8)) == "stages.1"


#: timm architectures (meta device) and the default layer the rule finds; every entry of the
#: checkpoint menu's short timm list (methods.models.checkpoints.timm_archs.TIMM_SUGGESTED) is here.
TIMM_DEFAULTS = {
    "convnext_nano": ("stages.3", 640),
    "convnext_tiny": ("stages.3", 768),
    "densenet121": ("features.norm5", 1024),
    "efficientnet_b0": ("bn2", 1280),
    "mobilenetv3_large_100": ("blocks.6", 960),
    "regnetx_002": ("s4", 368),
    "regnety_008": ("s4", 768),
    "resnet18": ("layer4", 512),
    "resnet50": ("layer4", 2048),
    "resnet50d": ("layer4", 2048),
    "resnext50_32x4d": ("layer4", 2048),
    "tf_efficientnet_lite0": ("bn2", 1280),
    # transformers (docs/transformers.md): a class-token read-out -> the last block's norm1; BEiT averages
    # its patch tokens (global_pool "avg") -> the last block itself; Swin's last stage (channels last)
    "vit_tiny_patch16_224": ("blocks.11.norm1", 192, 14),
    "deit_tiny_patch16_224": ("blocks.11.norm1", 192, 14),
    "beit_base_patch16_224": ("blocks.11", 768, 14),
    "swin_tiny_patch4_window7_224": ("layers.3", 768, 7),
}


@pytest.mark.parametrize("arch", sorted(TIMM_DEFAULTS))
def test_default_layer_of_timm_architectures(arch):
    import timm

    from methods.models.checkpoints.timm_archs import TIMM_SUGGESTED

    assert {a.split(":", 1)[1] for a in TIMM_SUGGESTED} == set(TIMM_DEFAULTS)
    with torch.device("meta"):
        model = timm.create_model(arch, pretrained=False)
    expected, channels, *grid = TIMM_DEFAULTS[arch]
    assert default_layer(model) == expected
    info = {li.name: li for li in candidate_layers(model)}[expected]
    side = grid[0] if grid else 7
    assert info.shape == (channels, side, side)


def test_no_candidate_is_an_error():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    assert candidate_layers(model, input_size=(2, 2)) == []
    with pytest.raises(ValueError, match="no layer with a spatial output"):
        default_layer(model, input_size=(2, 2))


def test_first_conv_channels_and_dtype():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()).double()
    layers = candidate_layers(model, input_size=(5, 7))
    assert [li.shape for li in layers] == [(2, 3, 5), (2, 3, 5)]


@pytest.mark.parametrize("bad", [(0, 5), (5,), (1, 2, 3), "224", (2.5, 3), None, True])
def test_bad_input_size(bad):
    with pytest.raises(ValueError, match="input_size"):
        candidate_layers(nn.Conv2d(3, 1, 1), input_size=bad)


def test_not_a_module():
    with pytest.raises(TypeError, match="nn.Module"):
        candidate_layers(lambda x: x)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- state is left alone


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_modes_bn_stats_hooks_and_rng_restored():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5))
    model.train()  # BN in train mode: a forward in train mode would change its statistics
    model[2].eval()  # mixed modes must come back exactly as they were
    before_modes = [m.training for m in model.modules()]
    assert before_modes == [True, True, True, False, True]
    before_stats = (model[1].running_mean.clone(), model[1].running_var.clone(), int(model[1].num_batches_tracked))
    rng = torch.get_rng_state()

    candidate_layers(model, input_size=(8, 8))
    default_layer(model, input_size=(8, 8))

    assert [m.training for m in model.modules()] == before_modes
    assert torch.equal(model[1].running_mean, before_stats[0])
    assert torch.equal(model[1].running_var, before_stats[1])
    assert int(model[1].num_batches_tracked) == before_stats[2]
    assert _hook_count(model) == 0
    assert torch.equal(torch.get_rng_state(), rng)


def test_hooks_removed_and_modes_restored_when_forward_raises():
    class Boom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 1)

        def forward(self, x):
            self.conv(x)
            raise RuntimeError("layer exploded")

    model = Boom().train()
    with pytest.raises(RuntimeError, match="layer exploded"):
        candidate_layers(model, input_size=(4, 4))
    assert _hook_count(model) == 0
    assert model.training and model.conv.training


def test_existing_user_hooks_are_kept():
    model = nn.Sequential(nn.Conv2d(3, 2, 1))
    seen = []
    handle = model[0].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    candidate_layers(model, input_size=(3, 3))
    assert len(model[0]._forward_hooks) == 1
    assert seen == [torch.Size([1, 2, 3, 3])]
    handle.remove()


def test_no_op_layers_are_marked_from_one_recorded_pass():
    """Issue 25: a layer whose output equals its input (Identity, Dropout in eval mode, a module
    that returns an equal copy) is marked ``no_op``; an in-place ReLU returns its input OBJECT,
    changed (its version counter moved), and is not."""
    import torch
    from torch import nn

    from methods.cams.core.layers import candidate_layers

    class Copy(nn.Module):
        def forward(self, x):
            return x.clone()

    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),  # 0
        nn.Identity(),  # 1: no-op
        nn.Dropout(0.5),  # 2: no-op in eval mode
        Copy(),  # 3: an equal copy: no-op
        nn.ReLU(inplace=True),  # 4: changes its input in place: NOT a no-op
        nn.Conv2d(4, 4, 3, padding=1),  # 5
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    ).train()  # the probe runs in eval mode and restores train mode
    torch.manual_seed(0)
    infos = {i.name: i.no_op for i in candidate_layers(net, (8, 8))}
    assert infos == {"0": False, "1": True, "2": True, "3": True, "4": False, "5": False}
    assert net.training
