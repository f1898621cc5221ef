"""The signed-layer note: a layer whose activations are mostly negative inverts some methods.

Grad-CAM-style maps were designed for post-ReLU layers (activations >= 0). At a layer without a
rectifier after it (a linear bottleneck such as EfficientNet's last block, a BatchNorm output before
its activation) many activations are negative, and methods whose channel weights divide by or
multiply a channel's activation sum, or that zero a channel, flip the sign of such channels'
contributions. As reported in issue 14 (pretrained EfficientNet-Lite0 ``blocks.15``, 51 % negative
values, chelsea|coffee composite): XGrad-CAM gave 0.67 of the cat map's mass on the cat's side
(0.97 for the espresso map on its side) and Ablation-CAM 0.13 (fully inverted) against 0.99. The maths is right
on such a layer; the reader must be told, so these methods warn with a
:class:`methods.errors.GradLensWarning` (recorded in :attr:`methods.Explanation.notes`; a call
over many such layers passes ONE line on for all of them, see :func:`methods.explain_many`).
"""

from __future__ import annotations

import warnings

import torch

from methods.errors import GradLensWarning

__all__ = ["SIGNED_FRACTION", "negative_fraction", "warn_if_signed"]

SIGNED_FRACTION = 0.5
"""A layer is "signed" when more than this share of its activation values is negative."""


def negative_fraction(activations: torch.Tensor) -> float:
    """Share of values < 0 in ``activations`` (any shape; 0.0 when empty).

    Examples:
        >>> negative_fraction(torch.tensor([-1.0, 0.0, 2.0, -3.0]))
        0.5
    """
    if activations.numel() == 0:
        return 0.0
    return float((activations < 0).double().mean())


def warn_if_signed(label: str, layer: str, activations: torch.Tensor, why: str) -> str | None:
    """Warn (GradLensWarning) when more than half of ``activations`` is negative; return the message.

    Args:
        label: the method's display name (``"XGrad-CAM"``).
        layer: the layer's name.
        activations: the layer's recorded activations (N, C, h, w).
        why: how the method uses activation sums (one clause).
    """
    share = negative_fraction(activations)
    if share <= SIGNED_FRACTION:
        return None
    message = (
        f"{label} at layer {layer!r}: {share:.0%} of the activations are negative (a layer without a "
        f"rectifier after it, e.g. a linear bottleneck). {why}, so channels with negative activations "
        "flip the sign of their contribution and the map can invert. The maths is right for this layer; "
        "for a map that follows the evidence, explain a layer after an activation function, or use "
        "Grad-CAM / HiResCAM here."
    )
    advice = (
        "channels with negative activations flip the sign of their contribution and the map can invert; "
        "explain a layer after an activation function, or use Grad-CAM / HiResCAM there"
    )
    warning = GradLensWarning(message, label=label, layer=layer, kind="mostly negative", advice=advice)
    warnings.warn(warning, stacklevel=3)
    return message
