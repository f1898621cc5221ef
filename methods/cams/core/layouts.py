"""Which axis of a layer's output is the channel axis: token and channels-last maps read right.

Every map in GradLens is computed on a ``(N, C, h, w)`` tensor. Convolutional networks give that
directly; vision transformers do not:

* a ViT / DeiT / BEiT / DINOv2 block gives ``(N, T, C)`` tokens: ``p`` prefix tokens (class,
  distillation, register) followed by the ``h * w`` patches of the patch grid, row-major;
* a Swin block in timm gives ``(N, H, W, C)`` (channels LAST), and inside a ConvNeXt block the
  ``LayerNorm`` / ``Linear`` / activation run on ``(N, h, w, C)`` between two permutes.

The layout of each recorded output is DECIDED from the model's structure, never guessed from the
shape alone (:func:`decide_layout`), in this order:

1. the module's own type: convolutions, BatchNorm, GroupNorm, 2-D pooling and channels-first
   layer norms (timm ``LayerNorm2d``, Hugging Face ``data_format="channels_first"``) output
   channels first; ``nn.Linear`` and ``nn.LayerNorm`` act on the LAST axis, so a 4-D output of
   theirs is channels last (its last size must equal their width, else the call is refused);
2. a 3-D ``(N, T, C)`` output is a token map only when the model has a patch grid
   (:func:`token_grid`: timm ``patch_embed`` + ``num_prefix_tokens``, Hugging Face
   ``embeddings.patch_embeddings`` + ``config.patch_size`` and the input size, the prefix tokens
   counted from the embedding's ``cls_token`` / ``distillation_token`` / ``register_tokens``) and
   ``T = p + h * w`` (or, with no prefix, ``T`` = the grid downsampled by a power of two: Swin's
   merged stages). Anything else is refused, with the token count and the grid in the message;
3. any other 4-D output ``(N, a, b, c)`` in a model with channels-last operations (an
   ``nn.LayerNorm`` that is not channels-first, or a declared NHWC format) has two readings:
   channels first (``a`` is the width of one of the model's channels-first modules) and channels
   last (``c`` is the width of one of its ``Linear`` / ``LayerNorm`` modules). One consistent
   reading is taken; when both are, the model's declared format decides (timm ``output_fmt``,
   e.g. ``"NHWC"`` for Swin; timm and Hugging Face ConvNeXt are channels first between blocks);
   with no declaration the call is refused, saying why. A model with no channels-last operation
   at all (torchvision's and timm's CNNs) is read channels first, as PyTorch's convention says.

Gradients are always taken with respect to the ORIGINAL recorded tensor (a reshape made in a hook
is not on the path to the score) and converted with the same :meth:`Layout.to_map` afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from methods._internal.score_view import inner_model
from methods.errors import LayerError

__all__ = ["Layout", "ModelFacts", "TokenGrid", "decide_layout", "model_facts", "token_grid"]

LayoutKind = Literal["nchw", "nhwc", "tokens"]

_FIRST_TYPES: tuple[type, ...] = (
    nn.modules.conv._ConvNd,
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
)
_FIRST_NORM_NAMES = frozenset({"LayerNorm2d", "LayerNormAct2d", "LayerNorm2dNoBias"})


@dataclass(frozen=True)
class TokenGrid:
    """How a model's token sequence maps onto its patch grid.

    Attributes:
        prefix: tokens before the patches (class, distillation, register), dropped from maps.
        grid: ``(h, w)`` patches for the given input size (non-square grids included).
    """

    prefix: int
    grid: tuple[int, int]


@dataclass(frozen=True)
class Layout:
    """The decided layout of one layer output and its map shape.

    Attributes:
        kind: ``"nchw"``, ``"nhwc"`` (channels last) or ``"tokens"`` (``(N, T, C)``).
        channels: ``C`` of the map.
        grid: ``(h, w)`` of the map.
        prefix: tokens dropped before the grid (``"tokens"`` only).
        why: one line saying what decided it (shown in refusals and docs).
    """

    kind: LayoutKind
    channels: int
    grid: tuple[int, int]
    prefix: int = 0
    why: str = ""

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, h, w)`` of the map."""
        return self.channels, self.grid[0], self.grid[1]

    def to_map(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` (the layer's output, or its gradient) as ``(N, C, h, w)``.

        Examples:
            >>> Layout("tokens", 2, (1, 2), prefix=1).to_map(torch.arange(6.).view(1, 3, 2)).tolist()
            [[[[2.0, 4.0]], [[3.0, 5.0]]]]
        """
        if self.kind == "nchw":
            return t
        if self.kind == "nhwc":
            return t.permute(0, 3, 1, 2).contiguous()  # (N, C, h, w)
        n = t.shape[0]
        return t[:, self.prefix :].transpose(1, 2).reshape(n, self.channels, *self.grid)  # (N, C, h, w)


@dataclass(frozen=True)
class ModelFacts:
    """What a model says about its layouts (static: read from its modules once per call)."""

    tokens: TokenGrid | None
    first_widths: frozenset[int]
    last_widths: frozenset[int]
    channels_last: bool
    declared: str | None


def _is_transformers(model: nn.Module) -> bool:
    return type(model).__module__.startswith("transformers.")


def _size2(value) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[-1])
    return int(value), int(value)


def token_grid(model: nn.Module, input_size: tuple[int, int]) -> TokenGrid | None:
    """The prefix-token count and patch grid of a ViT-like model for an ``(H, W)`` input, or None.

    Read from the model, never from a tensor: timm's ``patch_embed`` (``dynamic_feat_size`` for
    the input size, else ``grid_size``) and ``num_prefix_tokens`` (0 when absent: Swin);
    Hugging Face's embedding module with ``patch_embeddings`` (grid = input // ``config.patch_size``,
    prefix = its ``cls_token`` + ``distillation_token`` + ``register_tokens``). A
    :class:`methods._internal.score_view.ScoreView` is looked through.

    Examples:
        >>> import timm
        >>> token_grid(timm.create_model("vit_tiny_patch16_224", pretrained=False), (224, 224))
        TokenGrid(prefix=1, grid=(14, 14))
    """
    net = inner_model(model)
    pe = getattr(net, "patch_embed", None)
    if isinstance(pe, nn.Module):
        dynamic = getattr(pe, "dynamic_feat_size", None)
        if callable(dynamic):
            grid = _size2(dynamic(tuple(input_size)))
        elif hasattr(pe, "grid_size"):
            grid = _size2(pe.grid_size)
        else:
            return None
        return TokenGrid(prefix=int(getattr(net, "num_prefix_tokens", 0) or 0), grid=grid)
    config = getattr(net, "config", None)
    patch = getattr(config, "patch_size", None)
    if not _is_transformers(net) or patch is None:
        return None
    for _, module in net.named_modules():
        if isinstance(getattr(module, "patch_embeddings", None), nn.Module):
            ph, pw = _size2(patch)
            prefix = sum(1 for name in ("cls_token", "distillation_token") if getattr(module, name, None) is not None)
            registers = getattr(module, "register_tokens", None)
            if isinstance(registers, torch.Tensor):
                prefix += int(registers.shape[1])
            return TokenGrid(prefix=prefix, grid=(int(input_size[0]) // ph, int(input_size[1]) // pw))
    return None


def _declared(net: nn.Module) -> str | None:
    fmt = getattr(net, "output_fmt", None)
    if fmt is not None:
        text = str(getattr(fmt, "value", fmt)).lower()
        if text in ("nhwc", "nchw"):
            return text
    if type(net).__module__.startswith("timm."):
        return "nchw"  # timm's convention: feature maps are NCHW unless output_fmt says otherwise
    if _is_transformers(net) and getattr(getattr(net, "config", None), "model_type", "") in ("convnext", "convnextv2"):
        return "nchw"  # the stages and layers give NCHW; only the inner LayerNorm / Linear run NHWC
    return None


def _is_first_norm(module: nn.Module) -> bool:
    return type(module).__name__ in _FIRST_NORM_NAMES or getattr(module, "data_format", None) == "channels_first"


def model_facts(model: nn.Module, input_size: tuple[int, int]) -> ModelFacts:
    """Read :class:`ModelFacts` from ``model``'s modules (a ScoreView is looked through)."""
    net = inner_model(model)
    first: set[int] = set()
    last: set[int] = set()
    channels_last = False
    for m in net.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            first.add(int(m.out_channels))
        elif isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)):
            first.add(int(m.num_features))
        elif isinstance(m, nn.GroupNorm):
            first.add(int(m.num_channels))
        elif isinstance(m, nn.LayerNorm):
            (first if _is_first_norm(m) else last).add(int(m.normalized_shape[-1]))
            channels_last = channels_last or not _is_first_norm(m)
        elif isinstance(m, nn.Linear):
            last.add(int(m.out_features))
    declared = _declared(net)
    return ModelFacts(
        tokens=token_grid(net, input_size),
        first_widths=frozenset(first),
        last_widths=frozenset(last),
        channels_last=channels_last or declared == "nhwc",
        declared=declared,
    )


def _own_kind(module: nn.Module) -> LayoutKind | None:
    if isinstance(module, _FIRST_TYPES) or (isinstance(module, nn.LayerNorm) and _is_first_norm(module)):
        return "nchw"
    if isinstance(module, (nn.Linear, nn.LayerNorm)):
        return "nhwc"
    return None


def _width(module: nn.Module) -> int | None:
    if isinstance(module, nn.Linear):
        return int(module.out_features)
    if isinstance(module, nn.LayerNorm):
        return int(module.normalized_shape[-1])
    return None


def _tokens(facts: ModelFacts, spec: str, kind: str, shape: tuple[int, ...]) -> Layout:
    _, t, c = shape
    where = f"layer {spec!r} ({kind}) outputs {shape}"
    if facts.tokens is None:
        raise LayerError(
            f"{where}, not a (N, C, h, w) map, and the model has no patch embedding to read a token grid from "
            "(timm patch_embed or Hugging Face embeddings.patch_embeddings); choose a convolutional layer "
            "(methods.candidate_layers lists them)"
        )
    p, (gh, gw) = facts.tokens.prefix, facts.tokens.grid
    if t == p + gh * gw:
        return Layout("tokens", c, (gh, gw), prefix=p, why=f"{p} prefix token(s) + {gh}x{gw} patches")
    s = 1
    while gh % s == 0 and gw % s == 0 and gh // s >= 1 and gw // s >= 1:
        if t == (gh // s) * (gw // s):
            return Layout("tokens", c, (gh // s, gw // s), why=f"{gh // s}x{gw // s} tokens (patch grid / {s})")
        s *= 2
    raise LayerError(
        f"{where}: {t} tokens do not form the model's patch grid ({p} prefix token(s) + {gh}x{gw} = "
        f"{p + gh * gw} patches, or that grid downsampled by 2, 4, ... with no prefix), so they cannot be "
        "read as a map (a per-window or pooled sequence?); choose a block or norm layer whose output "
        "holds every patch"
    )


def _on_grid(facts: ModelFacts, grid: tuple[int, int]) -> bool:
    """``grid`` is the model's patch grid downsampled by a power of two (floor or ceil), or the
    model has no patch grid (then any grid is possible)."""
    if facts.tokens is None:
        return True
    gh, gw = facts.tokens.grid
    s = 1
    while s <= max(gh, gw):
        if grid[0] in (gh // s, -(-gh // s)) and grid[1] in (gw // s, -(-gw // s)):
            return True
        s *= 2
    return False


def decide_layout(facts: ModelFacts, spec: str, module: nn.Module, output: torch.Tensor, batch: int) -> Layout:
    """The :class:`Layout` of ``module``'s ``output`` (rules in the module docstring).

    Args:
        facts: :func:`model_facts` of the model.
        spec: the layer's name (for messages).
        module: the module that produced ``output``.
        output: the recorded tensor.
        batch: N of the model's input.

    Raises:
        LayerError: the output is not 3-D or 4-D, its first axis is not the batch, or its layout
            cannot be decided (the message says why and what to record instead).
    """
    kind = type(module).__name__
    shape = tuple(int(s) for s in output.shape)
    if output.ndim not in (3, 4):
        raise LayerError(
            f"layer {spec!r} ({kind}) outputs {shape}, not a (N, C, h, w) map; "
            "choose a convolutional or transformer block layer (methods.candidate_layers lists them)"
        )
    own = _own_kind(module)
    transformerish = facts.tokens is not None or facts.channels_last
    if transformerish and shape[0] != batch:
        raise LayerError(
            f"layer {spec!r} ({kind}) outputs {shape}: its first axis ({shape[0]}) is not the batch ({batch}), "
            "so it is a per-window or per-head tensor, not a map of the image; choose the block or norm "
            "layer around it"
        )
    if output.ndim == 3:
        return _tokens(facts, spec, kind, shape)
    _, a, b, c = shape
    if own == "nchw" or not facts.channels_last:
        why = f"{kind} is channels first" if own else "the model has no channels-last operation"
        return Layout("nchw", a, (b, c), why=why)
    if own == "nhwc":
        width = _width(module)
        if width != c:
            raise LayerError(
                f"layer {spec!r} ({kind}) outputs {shape}, but a {kind} of width {width} acts on the last axis; "
                "its layout cannot be decided, choose another layer"
            )
        return Layout("nhwc", c, (a, b), why=f"{kind} acts on the last axis")
    first_ok = a in facts.first_widths and _on_grid(facts, (b, c))
    last_ok = c in facts.last_widths and _on_grid(facts, (a, b))
    if first_ok and last_ok:
        if facts.declared is None:
            raise LayerError(
                f"layer {spec!r} ({kind}) outputs {shape}: it reads as channels first (C={a}, {b}x{c}) and as "
                f"channels last ({a}x{b}, C={c}) and the model declares no format (timm output_fmt), so GradLens "
                "will not guess; choose a convolution, norm or Linear layer next to it, whose type fixes the axis"
            )
        first_ok, last_ok = facts.declared == "nchw", facts.declared == "nhwc"
        if first_ok:
            return Layout("nchw", a, (b, c), why=f"both readings fit; the model declares {facts.declared}")
        return Layout("nhwc", c, (a, b), why=f"both readings fit; the model declares {facts.declared}")
    if first_ok:
        return Layout("nchw", a, (b, c), why=f"{a} is a channel width of the model's convolutions / norms")
    if last_ok:
        return Layout("nhwc", c, (a, b), why=f"{c} is a width of the model's Linear / LayerNorm layers")
    raise LayerError(
        f"layer {spec!r} ({kind}) outputs {shape}: neither {a} (channels first) nor {c} (channels last) is a "
        "channel width of the model's layers, so its layout cannot be decided; choose a block, "
        "convolution or norm layer"
    )
