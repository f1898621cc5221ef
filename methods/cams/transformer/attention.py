"""Record a vision transformer's attention weights for one call, and put token values on the patch grid.

Where the weights come from:

* timm (``timm.models.vision_transformer.Attention``, used by ViT, DeiT and friends, and
  ``timm.models.beit.Attention``): a forward hook on the module's ``attn_drop``, whose output is
  the softmax attention ``A`` (N, heads, T, T) that multiplies the values. timm computes the same
  product with a fused kernel (``F.scaled_dot_product_attention``) when the module's
  ``fused_attn`` is True, and then no ``A`` exists: the flag is switched off for the call and
  restored after it (try/finally), whatever the call raises.
* Hugging Face ``transformers`` (``ViTAttention``, ``DeiTAttention``, ``Dinov2Attention``): a
  forward hook on the attention module, whose output is ``(context, weights)``; the weights are
  only computed by the eager implementation, so the model config's ``_attn_implementation`` is
  ``"eager"`` for the call and restored after it.

Every hook lives for one call. Windowed attention (Swin), pooled attention and CNNs have no
global token-to-token ``A``: they are refused by :func:`why_not` with a one-line reason, which
is what the methods' specs (``MethodSpec.requires``) give menus to show "does not apply".

:func:`tokens_to_grid` is the one step from token values to the patch grid: the prefix tokens
(class, distillation, register tokens) are dropped and the patch tokens laid out row-major, as
every supported patch embedding orders them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from methods._internal.score_view import inner_model
from methods.errors import LayerError

__all__ = [
    "AttentionSite",
    "AttentionRecord",
    "find_sites",
    "why_not",
    "why_not_readout",
    "record_attention",
    "tokens_to_grid",
    "token_layout",
    "readout_rows",
    "layer_readout",
]

_TIMM_CLASSES = {
    "timm.layers.attention.Attention",  # timm.models.vision_transformer.Attention
    "timm.models.beit.Attention",
}
_HF_CLASSES = {"ViTAttention", "DeiTAttention", "Dinov2Attention"}
_WINDOWED = ("WindowAttention", "SwinSelfAttention", "SwinAttention")


@dataclass(frozen=True)
class AttentionSite:
    """One attention module: its name in ``model.named_modules()``, the module, ``"timm"`` or
    ``"hf"``, and the block whose output is the layer's tokens (the module's parent)."""

    name: str
    module: nn.Module
    kind: str
    block: nn.Module


@dataclass
class AttentionRecord:
    """What one recorded forward left: per layer, in forward order.

    Attributes:
        attentions: (N, heads, T, T) softmax attention of each layer (in the autograd graph).
        blocks: (N, T, C) output tokens of each layer's block.
    """

    attentions: list[torch.Tensor] = field(default_factory=list)
    blocks: list[torch.Tensor] = field(default_factory=list)


def _qualname(module: nn.Module) -> str:
    return f"{type(module).__module__}.{type(module).__name__}"


def find_sites(model: nn.Module) -> list[AttentionSite]:
    """The model's recordable attention modules, in definition order (which is forward order for
    the supported families); an empty list when there are none."""
    named = dict(model.named_modules())
    sites = []
    for name, mod in named.items():
        kind = "timm" if _qualname(mod) in _TIMM_CLASSES else "hf" if type(mod).__name__ in _HF_CLASSES else ""
        if not kind:
            continue
        parent = named.get(name.rsplit(".", 1)[0]) if "." in name else None
        if parent is not None:
            sites.append(AttentionSite(name, mod, kind, parent))
    return sites


def why_not(model: nn.Module) -> str | None:
    """None when the model's attention can be recorded; else a one-line reason (for menus and errors)."""
    if not isinstance(model, nn.Module):
        return f"a {type(model).__name__} is not a torch model"
    if find_sites(model):
        return None
    windowed = [type(m).__name__ for m in model.modules() if type(m).__name__ in _WINDOWED]
    if windowed:
        return (
            f"this model's attention is windowed ({windowed[0]}): it has no token-to-token attention over "
            "the whole image, so attention methods do not apply; use Grad-CAM on its last stage"
        )
    return (
        f"{type(inner_model(model)).__name__} has no recordable self-attention (a timm or Hugging Face "
        "ViT/DeiT/BEiT/DINOv2); attention methods apply to vision transformers only"
    )


@contextmanager
def record_attention(model: nn.Module) -> Iterator[AttentionRecord]:
    """Hooks that fill an :class:`AttentionRecord` during forwards inside the ``with`` block.

    timm's ``fused_attn`` flags and Hugging Face configs' ``_attn_implementation`` are set for
    eager attention on entry and restored on exit, as are the hooks removed, also when the
    block raises.

    Raises:
        LayerError: the model has no recordable attention (:func:`why_not` says why).
    """
    reason = why_not(model)
    if reason is not None:
        raise LayerError(reason)
    sites = find_sites(model)
    rec = AttentionRecord()
    handles = []
    saved: list[tuple[object, str, object]] = []
    try:
        for site in sites:
            mod: Any = site.module
            if site.kind == "timm":
                saved.append((mod, "fused_attn", mod.fused_attn))
                mod.fused_attn = False
                handles.append(mod.attn_drop.register_forward_hook(_keep(rec.attentions, None)))
            else:
                config = mod.config
                saved.append((config, "_attn_implementation", config._attn_implementation))
                config._attn_implementation = "eager"
                handles.append(mod.register_forward_hook(_keep(rec.attentions, 1)))
            handles.append(site.block.register_forward_hook(_keep(rec.blocks, 0)))
        yield rec
    finally:
        for h in handles:
            h.remove()
        for obj, attr, value in reversed(saved):
            setattr(obj, attr, value)


def _keep(into: list[torch.Tensor], index: int | None) -> Callable:
    def hook(module: nn.Module, args: object, output: object) -> None:
        out = output if index is None else (output[index] if isinstance(output, tuple) else output)
        if not isinstance(out, torch.Tensor):
            raise LayerError(
                f"{type(module).__name__} returned no attention weights (got {type(out).__name__}); "
                "the model's attention implementation could not be switched to eager"
            )
        into.append(out)

    return hook


def _patch_size(model: nn.Module) -> tuple[int, int] | None:
    for mod in model.modules():
        size = getattr(mod, "patch_size", None)  # timm PatchEmbed, HF *PatchEmbeddings
        if size is None and hasattr(mod, "config"):
            size = getattr(mod.config, "patch_size", None)
        if isinstance(size, int):
            return size, size
        if isinstance(size, (tuple, list)) and len(size) == 2:
            return int(size[0]), int(size[1])
    return None


def token_layout(model: nn.Module, input_size: tuple[int, int], n_tokens: int) -> tuple[int, tuple[int, int]]:
    """``(n_prefix, (h, w))``: how many prefix tokens precede the patch grid of ``n_tokens`` tokens.

    The grid is the input size over the model's patch size; the remainder are prefix tokens
    (at most 16: a class token, a distillation token, register tokens).

    Raises:
        LayerError: no patch size, or ``n_tokens`` does not fit that grid (the grid is never guessed).
    """
    patch = _patch_size(model)
    if patch is None:
        raise LayerError(f"{type(inner_model(model)).__name__} names no patch size; the token grid cannot be placed")
    h, w = input_size[0] // patch[0], input_size[1] // patch[1]
    n_prefix = n_tokens - h * w
    if not 0 <= n_prefix <= 16:
        raise LayerError(
            f"{n_tokens} tokens do not fit a {h}x{w} patch grid (input {input_size[0]}x{input_size[1]}, "
            f"patch {patch[0]}x{patch[1]}) plus up to 16 prefix tokens; the map cannot be placed"
        )
    return n_prefix, (h, w)


def tokens_to_grid(values: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(N, T) token values -> (N, h, w) patch map: the first ``T - h*w`` (prefix) tokens dropped,
    the rest laid out row-major.

    Raises:
        LayerError: fewer than ``h*w`` tokens.
    """
    n, t = values.shape
    h, w = grid
    if t < h * w:
        raise LayerError(f"{t} tokens cannot fill a {h}x{w} patch grid")
    return values[:, t - h * w :].reshape(n, h, w)


def _timm_pool(model: nn.Module) -> str | None:
    inner = inner_model(model)
    pool = getattr(inner, "global_pool", None)
    return pool if isinstance(pool, str) else None


def readout_rows(model: nn.Module, n_tokens: int, n_prefix: int) -> torch.Tensor:
    """(T,) weights of the query rows the classifier reads: the class token (one-hot at 0) for
    class-token pooling, the mean of the patch tokens for average pooling; a DeiT with a
    distillation head reads the mean of tokens 0 and 1.

    Raises:
        LayerError: a pooling GradLens does not know (the row is never guessed).
    """
    inner = inner_model(model)
    rows = torch.zeros(n_tokens)
    pool = _timm_pool(model)
    if pool == "avg":
        rows[n_prefix:] = 1.0 / (n_tokens - n_prefix)
    elif pool == "token" or (pool is None and type(inner).__name__ in _HF_HEADS and n_prefix >= 1):
        if type(inner).__name__ == "DeiTForImageClassificationWithTeacher":
            rows[:2] = 0.5
        else:
            rows[0] = 1.0
    else:
        raise LayerError(
            f"{type(inner).__name__} pools its tokens as {pool!r}; GradLens reads class-token or average "
            "pooling only, so the attention row the classifier reads is unknown"
        )
    return rows


_HF_HEADS = {"ViTForImageClassification", "DeiTForImageClassification", "DeiTForImageClassificationWithTeacher"}


def layer_readout(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's head applied to one layer's tokens: (N, T, C) -> (N, K) scores, as if that
    layer were the last (final norm, pooling, classifier). What LeGrad scores each layer with.

    Raises:
        LayerError: a model whose head GradLens cannot apply to intermediate tokens.
    """
    inner: Any = inner_model(model)
    name = type(inner).__name__
    if hasattr(inner, "forward_head") and isinstance(getattr(inner, "norm", None), nn.Module):
        return lambda z: inner.forward_head(inner.norm(z))
    if name in ("ViTForImageClassification", "DeiTForImageClassification"):
        backbone = inner.vit if hasattr(inner, "vit") else inner.deit
        return lambda z: inner.classifier(backbone.layernorm(z)[:, 0])
    if name == "DeiTForImageClassificationWithTeacher":

        def both(z: torch.Tensor) -> torch.Tensor:
            z = inner.deit.layernorm(z)
            return (inner.cls_classifier(z[:, 0]) + inner.distillation_classifier(z[:, 1])) / 2

        return both
    raise LayerError(
        f"{name}: GradLens cannot apply its head to intermediate tokens (timm VisionTransformer-style "
        "models and Hugging Face ViT/DeiT classifiers only)"
    )


def why_not_readout(model: nn.Module) -> str | None:
    """:func:`why_not`, and also None only when :func:`layer_readout` knows the model's head."""
    reason = why_not(model)
    if reason is not None:
        return reason
    try:
        layer_readout(model)
    except LayerError as e:
        return str(e)
    return None
