"""Default layers of the transformer families, where the generic CNN rule would pick a wrong one.

The generic rule (:func:`methods.cams.core.layers.default_layer`: "the end of the convolutional
backbone") picks the LAST map-shaped output. In a ViT that is the final ``norm`` (or the last
block), and the classifier reads only the class token from it: the patch tokens there get NO
gradient (d score / d patch token = 0), so every gradient method would give an empty map. The
last place where patch tokens still influence the class token is the input of the last block's
attention, i.e. the output of its first norm — the layer pytorch-grad-cam's ViT recipe targets
too (``model.blocks[-1].norm1``).

An average-pooled timm ViT (``global_pool`` "avg", "avgmax" or "max"; e.g. ``class_token=False``,
as ``scenes_vit``) has no class-token read-out: the pool reads every patch token of the last
block's output, so those tokens DO reach the score and the default is the last block itself, the
map the head reads (on ``scenes_vit``: Grad-CAM pointing 0.64 at ``blocks.3`` against 0.26 at
``blocks.3.norm1``, docs/scenes.md).

==================================== ============================================ ==================================
family                               default layer                                why
==================================== ============================================ ==================================
timm ViT / DeiT / EVA, class token   ``blocks.<last>.norm1``                      patch tokens of the last block's
                                                                                  output get no gradient
timm ViT, average-pooled (*)         ``blocks.<last>``                            the pool reads every patch token
(``global_pool`` avg / avgmax / max;                                              of the last block's output
                                                                                  (timm's BEiT is one)
timm Swin                            ``layers.<last>``                            the last stage (N, h, w, C)
timm ConvNeXt                        ``stages.<last>`` (generic rule)             the last stage
HF ViT / DeiT / BEiT                 ``<base>.layers.<last>.layernorm_before``    as timm ViT
HF DINOv2 (with registers)           ``<base>.encoder.layer.<last>.norm1``        as timm ViT
HF Swin                              ``swin.layernorm``                           its stages return tuples; this is
                                                                                  the last stage, normalised, and the
                                                                                  pooler averages every token
HF ConvNeXt                          ``convnext.encoder.stages.<last>``           the last stage (generic rule)
==================================== ============================================ ==================================

(*) and any model built like them: a ``num_prefix_tokens`` attribute and a ``blocks`` module.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from torch import nn

from methods._internal.score_view import inner_model

__all__ = ["family_default"]

_VIT_BLOCK_NORM = re.compile(r"^blocks\.\d+\.norm1$")
_HF_LAYER_NORM = re.compile(r"(^|\.)(layers|layer)\.\d+\.(layernorm_before|norm1)$")
_HF_SWIN_NORM = re.compile(r"^swin\w*\.layernorm$")
_TIMM_SWIN_STAGE = re.compile(r"^layers\.\d+$")
_VIT_BLOCK = re.compile(r"^blocks\.\d+$")
#: timm ViT pools that read every patch token of the last block's output (no class-token read-out).
_TOKEN_AVERAGING_POOLS = ("avg", "avgmax", "max")


def _last_match(pattern: re.Pattern[str], names: Sequence[str]) -> str | None:
    found = [n for n in names if pattern.search(n)]
    return found[-1] if found else None


def family_default(model: nn.Module, candidates: Sequence[str]) -> str | None:
    """The default layer of a known transformer family among ``candidates`` (forward order), or
    None (the generic rule applies). A :class:`methods._internal.score_view.ScoreView` is looked through.

    Examples:
        >>> import timm
        >>> vit = timm.create_model("vit_tiny_patch16_224", pretrained=False)
        >>> family_default(vit, ["blocks.0.norm1", "blocks.11.norm1", "norm"])
        'blocks.11.norm1'
        >>> pooled = timm.create_model("vit_tiny_patch16_224", pretrained=False, class_token=False, global_pool="avg")
        >>> family_default(pooled, ["blocks.0", "blocks.11.norm1", "blocks.11", "norm"])
        'blocks.11'
    """
    net = inner_model(model)
    module = type(net).__module__
    if hasattr(net, "num_prefix_tokens") and isinstance(getattr(net, "blocks", None), nn.Module):
        if getattr(net, "global_pool", None) in _TOKEN_AVERAGING_POOLS:
            return _last_match(_VIT_BLOCK, candidates)  # the pool reads the last block's patch tokens
        return _last_match(_VIT_BLOCK_NORM, candidates)  # timm's ViT layout (and models written like it)
    if module.startswith("timm."):
        if module.endswith("swin_transformer"):
            return _last_match(_TIMM_SWIN_STAGE, candidates)
        return None
    if module.startswith("transformers."):
        kind = str(getattr(getattr(net, "config", None), "model_type", ""))
        if kind in ("vit", "deit", "beit", "dinov2", "dinov2_with_registers", "data2vec-vision", "vit_msn"):
            return _last_match(_HF_LAYER_NORM, candidates)
        if kind in ("swin", "donut-swin"):
            return _last_match(_HF_SWIN_NORM, candidates)
    return None
