"""The gradient family: maps from one layer's activations and gradients of one backward pass.

Notation used in every docstring below, for one sample and one layer:

* ``A^k_ij`` — activation of channel k at position (i, j) of the layer, shape (C, h, w);
* ``y``      — pre-softmax logit of the explained class;
* ``g^k_ij = dy/dA^k_ij`` — its gradient;
* ``Z = h * w`` — number of positions.

Every method returns the RAW, signed map ``M_ij``. Deviation (all methods): the papers apply a
ReLU to the map; here it is applied in the normalization stage (``methods.viz.normalize``, on by
default) so negative evidence can be looked at too.
"""

from __future__ import annotations

import torch

from methods.cams.base import GradientMethod
from methods.cams.registry import register_method

__all__ = ["GradCam", "GradCamPlusPlus", "XGradCam", "HiResCam", "LayerCam"]


def _weighted_sum(weights: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
    """``sum_k w_k A^k``: weights (N, C), activations (N, C, h, w) -> (N, h, w)."""
    return torch.einsum("nc,nchw->nhw", weights, activations)


@register_method(
    name="gradcam",
    label="Grad-CAM",
    family="gradient",
    cost="1 fwd + 1 bwd",
    paper="https://arxiv.org/abs/1610.02391",
    summary="Channel weights = spatial mean of the gradient.",
)
class GradCam(GradientMethod):
    """Grad-CAM (Selvaraju et al., ICCV 2017, arXiv:1610.02391).

    ``w_k = (1/Z) sum_ij g^k_ij``  and  ``M = sum_k w_k A^k``.

    On a network whose layer is followed by global average pooling and one linear layer, ``w_k``
    is the linear weight of class c for channel k divided by Z, so Grad-CAM equals CAM (Zhou et al.
    2016) up to that constant.
    """

    def compute(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        weights = gradients.mean(dim=(2, 3))  # (N, C)
        return _weighted_sum(weights, activations)  # (N, h, w)


@register_method(
    name="gradcampp",
    label="Grad-CAM++",
    family="gradient",
    cost="1 fwd + 1 bwd",
    paper="https://arxiv.org/abs/1710.11063",
    summary="Channel weights = positive gradients weighted by closed-form pixel coefficients alpha.",
)
class GradCamPlusPlus(GradientMethod):
    """Grad-CAM++ (Chattopadhay et al., WACV 2018, arXiv:1710.11063).

    With the paper's exponential-score closed form (its eq. 19), the higher derivatives become
    powers of the first one:

    ``alpha^k_ij = g^2 / (2 g^2 + sum_ab A^k_ab g^3)``  (g = g^k_ij), with ``alpha = 0`` where the
    denominator is 0 (then g = 0 too);
    ``w_k = sum_ij alpha^k_ij ReLU(g^k_ij)``  and  ``M = sum_k w_k A^k``.
    """

    def compute(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        # Where g != 0, alpha = g^2 / (g^2 (2 + S g)) = 1 / (2 + S g) with S = sum_ab A_ab, so
        # w_k = sum_{ij: g > 0} g / (2 + S g): the same numbers with one division and no powers.
        # Where 2 + S g = 0 the quotient is +-inf (or NaN where g = 0 too): alpha = 0 there.
        sum_a = activations.sum(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
        denom = (gradients * sum_a).add_(2)  # (N, C, h, w)
        ratio = gradients.clamp(min=0).div_(denom)  # (N, C, h, w)
        ratio = torch.nan_to_num_(ratio, nan=0.0, posinf=0.0, neginf=0.0)
        weights = ratio.sum(dim=(2, 3))  # (N, C)
        return _weighted_sum(weights, activations)


@register_method(
    name="xgradcam",
    label="XGrad-CAM",
    family="gradient",
    cost="1 fwd + 1 bwd",
    paper="https://arxiv.org/abs/2008.02312",
    summary="Channel weights = gradient averaged with the channel's normalized activations.",
)
class XGradCam(GradientMethod):
    """XGrad-CAM (Fu et al., BMVC 2020, arXiv:2008.02312).

    ``w_k = sum_ij (A^k_ij / sum_ab A^k_ab) g^k_ij``  and  ``M = sum_k w_k A^k``.

    A channel whose activations sum to 0 gets ``w_k = 0`` (the paper leaves it undefined).
    """

    def compute(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        total = activations.sum(dim=(2, 3))  # (N, C)
        weighted = torch.einsum("nchw,nchw->nc", activations, gradients)  # (N, C)
        safe = torch.where(total != 0, total, torch.ones_like(total))
        weights = torch.where(total != 0, weighted / safe, torch.zeros_like(total))  # (N, C)
        return _weighted_sum(weights, activations)


@register_method(
    name="hirescam",
    label="HiResCAM",
    family="gradient",
    cost="1 fwd + 1 bwd",
    paper="https://arxiv.org/abs/2011.08891",
    summary="Element-wise gradient x activation, summed over channels (no spatial averaging).",
)
class HiResCam(GradientMethod):
    """HiResCAM (Draelos & Carin, 2020, arXiv:2011.08891).

    ``M_ij = sum_k g^k_ij A^k_ij``.

    For a layer followed by global average pooling and a linear layer, HiResCAM equals Grad-CAM;
    elsewhere it keeps the gradient's spatial detail that Grad-CAM averages away.
    """

    def compute(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        return (gradients * activations).sum(dim=1)  # (N, h, w)


@register_method(
    name="layercam",
    label="LayerCAM",
    family="gradient",
    cost="1 fwd + 1 bwd",
    paper="https://doi.org/10.1109/TIP.2021.3089943",
    summary="Element-wise positive gradient x activation: sharp maps at shallow layers too.",
)
class LayerCam(GradientMethod):
    """LayerCAM (Jiang et al., IEEE TIP 30, 2021, "LayerCAM: Exploring Hierarchical Class
    Activation Maps for Localization").

    ``M_ij = sum_k ReLU(g^k_ij) A^k_ij``.
    """

    def compute(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        return (gradients.clamp(min=0) * activations).sum(dim=1)  # (N, h, w)
