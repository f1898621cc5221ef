"""The model-aware check of an input batch: what :func:`methods._internal.torch_utils.check_input` cannot know.

:func:`check_model_input` adds to the shape / dtype / finiteness check of ``check_input`` what only
the model knows: the dtype and device of its weights, and the channels its first convolution
takes. A float64 batch for float32 weights, a 2-channel batch for an RGB network or a CPU batch
for a CUDA model then get an :class:`~methods.errors.InputError` that says how to convert the
input, instead of a torch ``RuntimeError`` from inside the forward pass.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from methods._internal.torch_utils import check_input
from methods.errors import InputError

__all__ = ["first_conv", "check_model_input"]


def first_conv(net: nn.Module) -> tuple[str, nn.Conv2d] | None:
    """The first ``nn.Conv2d`` in registration order (the stem of every torchvision CNN), or None;
    a lazy convolution that has not seen an input yet (``in_channels == 0``) is skipped."""
    for name, module in net.named_modules():
        if isinstance(module, nn.Conv2d) and module.in_channels > 0:
            return name, module
    return None


def check_model_input(net: nn.Module, x: Any, *, what: str = "x", batch: int | None = None) -> torch.Tensor:
    """:func:`methods._internal.torch_utils.check_input`, then ``x`` against ``net``: same floating dtype and
    device as its first floating parameter, and as many channels as its first convolution takes.

    Returns:
        ``x`` itself (not copied).

    Raises:
        InputError: anything :func:`check_input` refuses; another dtype or device than the
            model's weights; another channel count than the first convolution's ``in_channels``.

    Examples:
        >>> net = nn.Sequential(nn.Conv2d(3, 2, 1))
        >>> check_model_input(net, torch.zeros(1, 3, 4, 4)).shape
        torch.Size([1, 3, 4, 4])
        >>> check_model_input(net, torch.zeros(1, 3, 4, 4, dtype=torch.float64))
        Traceback (most recent call last):
        ...
        methods.errors.InputError: x is torch.float64 but the model's weights are torch.float32; convert it with x.to(torch.float32)
    """
    check_input(x, what=what, batch=batch)
    weight = next((p for p in net.parameters() if p.is_floating_point()), None)
    if weight is not None:
        if x.dtype != weight.dtype:
            raise InputError(
                f"{what} is {x.dtype} but the model's weights are {weight.dtype}; "
                f"convert it with {what}.to({weight.dtype})"
            )
        if x.device != weight.device:
            raise InputError(
                f"{what} is on {x.device} but the model's weights are on {weight.device}; "
                f"move it with {what}.to({str(weight.device)!r})"
            )
    conv = first_conv(net)
    if conv is not None and x.shape[1] != conv[1].in_channels:
        name, module = conv
        raise InputError(
            f"{what} has {x.shape[1]} channel(s) (shape {tuple(x.shape)}) but the model's first convolution "
            f"{name!r} takes {module.in_channels}; give (N, {module.in_channels}, H, W) "
            "(LoadedModel.preprocess makes one from an RGB image)"
        )
    return x
