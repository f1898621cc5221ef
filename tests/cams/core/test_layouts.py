"""Token and channels-last maps (methods/cams/core/layouts.py): hand-computed maps on tiny
transformers, refusals that say why, and agreement with pytorch-grad-cam on timm ViT and Swin."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import methods
from methods.cams.core.blocks import block_layers
from methods.cams.core.layers import candidate_layers, default_layer
from methods.cams.core.layouts import Layout, token_grid
from methods.cams.core.recorder import record
from methods.errors import LayerError


class _PatchEmbed(nn.Module):
    """2 x 2 patches of a 1-channel image -> 2 channels: the patch's sum and its top-left pixel."""

    def __init__(self, grid: tuple[int, int]) -> None:
        super().__init__()
        self.grid_size = grid
        self.proj = nn.Conv2d(1, 2, 2, stride=2, bias=False)
        with torch.no_grad():
            self.proj.weight.zero_()
            self.proj.weight[0] = 1.0
            self.proj.weight[1, 0, 0, 0] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (N, P, 2)


class _Mix(nn.Module):
    """Identity-ish attention: the class token adds the mean of the patch tokens; patches unchanged."""

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return torch.cat([t[:, :1] + t[:, 1:].mean(dim=1, keepdim=True), t[:, 1:]], dim=1)


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1 = nn.Linear(2, 2)  # identity weights: its output is the tokens themselves
        with torch.no_grad():
            self.norm1.weight.copy_(torch.eye(2))
            self.norm1.bias.zero_()
        self.attn = _Mix()

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.attn(self.norm1(t))


class TinyViT(nn.Module):
    """A class token (zero) + a 1 x 3 patch grid (non-square), one block, a head on the class token."""

    def __init__(self) -> None:
        super().__init__()
        self.num_prefix_tokens = 1
        self.patch_embed = _PatchEmbed((1, 3))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 2))
        self.blocks = nn.Sequential(_Block())
        self.head = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[0.5, 1.0], [1.0, -2.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.patch_embed(x)
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], dim=1)  # (N, 4, 2)
        return self.head(self.blocks(t)[:, 0])


X = torch.arange(12.0).view(1, 1, 2, 6)  # patches [[0,1],[6,7]], [[2,3],[8,9]], [[4,5],[10,11]]


def test_token_gradcam_by_hand_class_token_dropped_non_square_grid():
    """Patch tokens t_p = (patch sum, top-left) = (14, 0), (22, 2), (30, 4). The class-1 logit is
    W_1 . (cls + mean_p t_p) with W_1 = (1, -2), so d y / d t_p = W_1 / 3 for every patch and the
    Grad-CAM weights are alpha = (1/3, -2/3): M_p = (t_p0 - 2 t_p1) / 3 = 14/3, 18/3, 22/3."""
    model = TinyViT()
    exp = methods.explain(model, X, "gradcam", layers="blocks.0.norm1", target=1)
    assert torch.allclose(exp.maps["blocks.0.norm1"], torch.tensor([[[14 / 3, 6.0, 22 / 3]]]), atol=1e-5)
    rec = record(model, X, ["blocks.0.norm1"], target=1)
    assert rec.layouts["blocks.0.norm1"] == Layout("tokens", 2, (1, 3), prefix=1, why="1 prefix token(s) + 1x3 patches")
    assert torch.equal(rec.activations["blocks.0.norm1"], torch.tensor([[[[14.0, 22.0, 30.0]], [[0.0, 2.0, 4.0]]]]))


def test_last_block_output_patches_get_no_gradient_hence_the_norm1_default():
    """After the last block only the class token reaches the head: its patch tokens' gradient is
    exactly 0, which is why a ViT's default layer is the last block's norm1 (docs/transformers.md)."""
    rec = record(TinyViT(), X, ["blocks.0"], target=1)
    assert float(rec.gradients["blocks.0"].abs().max()) == 0.0
    assert default_layer(TinyViT(), (2, 6)) == "blocks.0.norm1"  # built like timm's ViT: its rule
    assert token_grid(TinyViT(), (2, 6)).prefix == 1


def test_a_token_count_that_is_not_the_grid_is_refused():
    model = TinyViT()
    model.num_prefix_tokens = 2  # the model now says 2 + 3 tokens, the tensor has 4
    with pytest.raises(LayerError, match=r"4 tokens do not form the model's patch grid \(2 prefix token"):
        methods.explain(model, X, "gradcam", layers="blocks.0.norm1")


def test_tokens_in_a_model_without_a_patch_grid_are_refused():
    model = nn.Sequential(nn.Flatten(2), nn.Linear(4, 3), nn.Flatten(), nn.Linear(6, 2))  # (N, 2, 3) in the middle
    with pytest.raises(LayerError, match="no patch embedding to read a token grid from"):
        record(model, torch.rand(1, 2, 2, 2), ["1"])


class ChannelsLast(nn.Module):
    """conv stem (4 channels, 4 x 4) -> NHWC -> LayerNorm -> GELU -> mean over h, w -> head."""

    def __init__(self, declared: str | None = None) -> None:
        super().__init__()
        if declared:
            self.output_fmt = declared
        self.stem = nn.Conv2d(3, 4, 1)
        self.norm = nn.LayerNorm(4)
        self.act = nn.GELU()
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.act(self.norm(self.stem(x).permute(0, 2, 3, 1)))  # (N, 4, 4, 4): h = w = C
        return self.head(z.mean(dim=(1, 2)))


def _manual_nhwc_gradcam(model: nn.Module, x: torch.Tensor, module: nn.Module, target: int) -> torch.Tensor:
    """Grad-CAM written out for an (N, h, w, C) output: alpha_c = mean_hw dy/dA, M = sum_c alpha_c A."""
    store = {}
    handle = module.register_forward_hook(lambda m, i, o: store.setdefault("a", o))
    try:
        y = model(x)[:, target].sum()
    finally:
        handle.remove()
    a = store["a"]
    g = torch.autograd.grad(y, a)[0]
    return (a * g.mean(dim=(1, 2), keepdim=True)).sum(dim=3).detach()  # (N, h, w)


def test_channels_last_is_read_by_the_layer_type_and_never_as_channels_first():
    torch.manual_seed(0)
    model, x = ChannelsLast(), torch.randn(2, 3, 4, 4)
    exp = methods.explain(model, x, "gradcam", layers="norm", target=2)
    assert torch.allclose(exp.maps["norm"], _manual_nhwc_gradcam(model, x, model.norm, 2), atol=1e-6)
    assert record(model, x, ["norm"]).layouts["norm"].kind == "nhwc"


def test_an_undecidable_channels_last_output_is_refused_unless_the_model_declares_it():
    """GELU has no axis of its own; (N, 4, 4, 4) reads as NCHW (C = 4 = the stem's width) and
    as NHWC (C = 4 = the LayerNorm's width): refused, never guessed; a declared NHWC decides it."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, 4, 4)
    with pytest.raises(LayerError, match="will not guess"):
        methods.explain(ChannelsLast(), x, "gradcam", layers="act")
    assert "act" not in [i.name for i in candidate_layers(ChannelsLast(), (4, 4))]
    model = ChannelsLast(declared="NHWC")
    exp = methods.explain(model, x, "gradcam", layers="act", target=0)
    assert torch.allclose(exp.maps["act"], _manual_nhwc_gradcam(model, x, model.act, 0), atol=1e-6)


# --- agreement with pytorch-grad-cam (its ViT / Swin recipes with the usual reshape_transform) ---


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def _ours_like_theirs(exp, layer: str, size: int) -> np.ndarray:
    """pytorch-grad-cam's post-processing of a raw map: ReLU, bilinear to the input size."""
    up = F.interpolate(exp.maps[layer].clamp(min=0)[None], size=(size, size), mode="bilinear", align_corners=False)
    return up[0].numpy()


def test_vit_agrees_with_pytorch_grad_cam():
    timm = pytest.importorskip("timm")
    cams = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=96, depth=4).eval()  # short test
    x = torch.rand(1, 3, 96, 96)

    def reshape(t: torch.Tensor) -> torch.Tensor:  # the recipe: drop the class token, (N, C, 6, 6)
        return t[:, 1:].reshape(t.shape[0], 6, 6, t.shape[2]).permute(0, 3, 1, 2)

    theirs = cams.GradCAM(model=model, target_layers=[model.blocks[-1].norm1], reshape_transform=reshape)(
        input_tensor=x, targets=[ClassifierOutputTarget(3)]
    )
    exp = methods.explain(model, x, "gradcam", target=3)  # the default layer IS the recipe's
    assert exp.layers == ("blocks.3.norm1",)
    assert _pearson(_ours_like_theirs(exp, "blocks.3.norm1", 96), theirs) >= 0.999


def test_swin_channels_last_agrees_with_pytorch_grad_cam_and_the_issue_case_is_right():
    """The issue's case: Swin's ``norm`` outputs (N, h, w, 768) (7 x 7 at 224 px); it used to be read
    as (C=7, 7, 768). A 128 px Swin-T made narrow (window 4, depths 2-2-2-2, width 32, random weights) keeps the
    test short;
    the 224 px model's default layer and shapes are checked in test_layers.py (TIMM_DEFAULTS)."""
    timm = pytest.importorskip("timm")
    cams = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(0)
    model = timm.create_model(
        "swin_tiny_patch4_window7_224",
        pretrained=False,
        img_size=128,
        window_size=4,
        depths=(2, 2, 2, 2),
        embed_dim=32,
        num_heads=(1, 2, 4, 8),
    ).eval()
    x = torch.rand(1, 3, 128, 128)
    exp = methods.explain(model, x, "gradcam", target=3, layers=["layers.3.blocks.1.norm1", "norm"])
    for layer, module in (("layers.3.blocks.1.norm1", model.layers[-1].blocks[-1].norm1), ("norm", model.norm)):
        theirs = cams.GradCAM(model=model, target_layers=[module], reshape_transform=lambda t: t.permute(0, 3, 1, 2))(
            input_tensor=x, targets=[ClassifierOutputTarget(3)]
        )
        assert exp.maps[layer].shape == (1, 4, 4)
        assert _pearson(_ours_like_theirs(exp, layer, 128), theirs) >= 0.999, layer
    assert default_layer(model, (128, 128)) == "layers.3"
    assert [b.name for b in block_layers(model, (128, 128))][-2:] == ["layers.3", "norm"]


@pytest.mark.parametrize("method", [spec.name for spec in methods.list_methods()])
def test_every_method_gives_a_finite_map_on_tokens_or_refuses(method):
    """No plausible wrong map on a token layer: each registered method either returns a finite map
    on the 1 x 3 patch grid (or at the input's size), or refuses with a GradLensError that says why.
    Ablation-CAM (it would substitute (N, C, h, w) copies as a token output) and FullGrad (a
    transformer's biases sit in Linear / LayerNorm layers) refuse. (CAM applies here: the class
    token is zero, so the logits ARE the head applied to the patches' average.)"""
    refused = {"ablationcam", "fullgrad"}
    model = TinyViT()
    if methods.get_method(method).why_not(model):  # attention methods: TinyViT has no timm/HF attention
        with pytest.raises(methods.GradLensError, match="does not apply"):
            methods.explain(model, X, method, layers="blocks.0.norm1", target=1)
        return
    if method in refused:
        with pytest.raises(methods.GradLensError):
            methods.explain(model, X, method, layers="blocks.0.norm1", target=1)
        return
    exp = methods.explain(model, X, method, layers="blocks.0.norm1", target=1)
    m = exp.maps["blocks.0.norm1"]
    assert m.shape == ((1, 1, 3) if exp.resolution == "layer" else (1, 2, 6))
    assert torch.isfinite(m).all()


@pytest.mark.parametrize("method", [s.name for s in methods.list_methods() if s.resolution == "layer"])
def test_every_layer_method_runs_on_a_channels_last_layer_or_refuses(method):
    """The same on an (N, h, w, C) layer read through its LayerNorm (only Ablation-CAM refuses)."""
    torch.manual_seed(0)
    model, x = ChannelsLast(), torch.randn(1, 3, 4, 4)
    if methods.get_method(method).why_not(model):  # attention methods refuse a model without attention
        with pytest.raises(methods.GradLensError, match="does not apply"):
            methods.explain(model, x, method, layers="norm", target=0)
        return
    if method == "ablationcam":
        with pytest.raises(LayerError, match="channels last"):
            methods.explain(model, x, method, layers="norm", target=0)
        return
    try:
        exp = methods.explain(model, x, method, layers="norm", target=0)
    except methods.GradLensError as exc:  # a method's own precondition (CAM's head check)
        assert method == "cam", exc
        return
    assert exp.maps["norm"].shape == (1, 4, 4) and torch.isfinite(exp.maps["norm"]).all()
