"""timm architectures for your own checkpoints: ``arch="timm:<name>"``.

`timm <https://github.com/huggingface/pytorch-image-models>`_ defines hundreds of image models;
any of its names, prefixed with ``timm:``, is an architecture :func:`methods.load_checkpoint`
accepts (``"timm:convnext_tiny"``, ``"timm:regnety_008"``, ``"timm:resnet50d"`` ...; a pretrained
tag such as ``"timm:resnet50.a1_in1k"`` names the same architecture). The model is built with
``timm.create_model(name, pretrained=False, num_classes=...)`` on the ``meta`` device (nothing is
downloaded, no random init) and the file's tensors are assigned strictly.

Convolutional models and vision transformers both give maps: a ViT / DeiT / BEiT block's tokens
and a Swin stage's channels-last output are read as (N, C, h, w) maps by
:mod:`methods.cams.core.layouts` (default layers: docs/transformers.md). :data:`TIMM_SUGGESTED` is
a short list for menus; ``timm.list_models()`` lists every name. timm is imported only when a ``timm:`` name is used (importing it takes seconds).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from methods.cams.core.layers import default_layer
from methods.errors import LayerError, UnknownModelError, suggest
from methods.models.checkpoints.weight_files import build_from

__all__ = ["TIMM_PREFIX", "TIMM_SUGGESTED", "timm_name", "check_timm_name", "build_timm", "timm_default_layer"]

TIMM_PREFIX = "timm:"

#: timm CNNs and vision transformers offered in menus (any other ``timm:<name>`` is accepted too). Their default layers
#: are checked in tests/cams/core/test_layers.py (TIMM_DEFAULTS).
TIMM_SUGGESTED: tuple[str, ...] = tuple(
    TIMM_PREFIX + n
    for n in (
        "convnext_nano",
        "convnext_tiny",
        "densenet121",
        "efficientnet_b0",
        "mobilenetv3_large_100",
        "regnetx_002",
        "regnety_008",
        "resnet18",
        "resnet50",
        "resnet50d",
        "resnext50_32x4d",
        "tf_efficientnet_lite0",
        "vit_tiny_patch16_224",
        "deit_tiny_patch16_224",
        "beit_base_patch16_224",
        "swin_tiny_patch4_window7_224",
    )
)


def timm_name(arch: object) -> str | None:
    """The timm model name in ``arch`` (``"timm:resnet50"`` -> ``"resnet50"``); None otherwise.

    Examples:
        >>> timm_name("timm:convnext_tiny"), timm_name("resnet18")
        ('convnext_tiny', None)
    """
    if isinstance(arch, str) and arch.startswith(TIMM_PREFIX):
        return arch[len(TIMM_PREFIX) :]
    return None


def check_timm_name(name: str) -> str:
    """``name`` if timm defines it (a ``.tag`` suffix allowed).

    Raises:
        UnknownModelError: timm has no such model; the message suggests close timm names.
    """
    import timm

    if name and (timm.is_model(name) or timm.is_model(name.split(".", 1)[0])):
        return name
    examples = ", ".join(repr(a) for a in TIMM_SUGGESTED[:4])
    raise UnknownModelError(
        f"unknown timm architecture {TIMM_PREFIX + str(name)!r}.{suggest(name, timm.list_models())} "
        f"Any name of timm.list_models() works after 'timm:', e.g. {examples}."
    )


def timm_factory(name: str, num_classes: int):
    """A zero-argument function building timm's ``name`` with ``num_classes`` outputs (no weights)."""

    def create() -> nn.Module:
        import timm

        return timm.create_model(name, pretrained=False, num_classes=num_classes)

    return create


def _create(name: str, num_classes: int) -> nn.Module:
    return timm_factory(name, num_classes)()


def build_timm(name: str, state: dict[str, torch.Tensor], *, num_classes: int, context: str) -> nn.Module:
    """timm's ``name`` with ``num_classes`` outputs and ``state`` loaded strictly (eval mode, CPU).

    Raises:
        CheckpointError: the tensors do not fit (missing / unexpected keys, shapes, num_classes).
    """
    return build_from(
        timm_factory(name, num_classes), state, context=context, num_classes=num_classes, arch=TIMM_PREFIX + name
    )


def timm_default_layer(name: str, num_classes: int, input_size: Sequence[int], model: nn.Module) -> str:
    """:func:`methods.cams.core.layers.default_layer` of timm's ``name``, probed on a ``meta`` copy
    (shapes only); when a model cannot run on the meta device, probed on ``model`` itself.

    Raises:
        LayerError: the model has no layer that gives a map.
    """
    try:
        with torch.device("meta"):
            template = _create(name, num_classes)
        return default_layer(template, input_size=input_size)
    except LayerError:
        raise
    except (RuntimeError, NotImplementedError, TypeError, ValueError):  # an op without a meta kernel
        return default_layer(model, input_size=input_size)
