"""The gradient family: maps from one layer's activations and gradients of one backward pass.

Notation used in every docstring below, for one sample and one layer:

* ``A^k_ij`` — activation of channel k at position (i, j) of the layer, shape (C, h, w);
* ``y``      — pre-softmax logit of the explained class;
* ``g^k_ij = dy/dA^k_ij`` — its gradient;
* ``Z = h * w`` — number of positions.

Every method returns the RAW, signed map ``M_ij``. Deviation (all methods): the papers apply a
ReLU to the map; here it is applied in the normalization stage (``methods.viz.normalize``, on by
default) so negative evidence can be looked at too.

Each map is written as ``M_ij = sum_k T^k_ij`` of per-channel terms (:meth:`terms`), so every method
has the ``aug_smooth`` and ``eigen_smooth`` options of :mod:`methods.cams.core.smoothing` (off by
default; their cost is there).
"""

from __future__ import annotations

import torch

from methods.cams.core.registry import register_method
from methods.cams.core.signed import warn_if_signed
from methods.cams.core.smoothing import AugOptions, SmoothedMethod, first_component
from methods.errors import RecorderError

__all__ = [
    "GradCam",
    "GradCamPlusPlus",
    "XGradCam",
    "HiResCam",
    "LayerCam",
    "EigenGradCam",
    "GradCamElementWise",
    "gradcampp_weights",
    "PP_SIGNED_NOTE",
]


def recorded(gradients: torch.Tensor | None) -> torch.Tensor:
    """The gradients a gradient method asked for (``needs_gradients=True``), never None.

    Raises:
        RecorderError: the recording has no gradients (a method registered with
            ``needs_gradients=False`` that uses this family's maths).
    """
    if gradients is None:
        raise RecorderError(
            "this method needs the layer's gradients, but the recording has none; register it with needs_gradients=True"
        )
    return gradients


def _terms(weights: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
    """``T^k = w_k A^k``: weights (N, C), activations (N, C, h, w) -> (N, C, h, w)."""
    return weights[:, :, None, None] * activations


def gradcampp_weights(activations: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor, d3: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++ channel weights from the derivatives' estimates (all (N, C, h, w)).

    ``alpha^k_ij = d2 / (2 d2 + sum_ab A^k_ab d3)`` (0 where the denominator is 0 or not finite) and
    ``w_k = sum_ij alpha^k_ij ReLU(d1)``. With the exponential-score closed form, d1 = g, d2 = g^2,
    d3 = g^3 (Grad-CAM++); Smooth Grad-CAM++ passes their means over noisy inputs. Returns (N, C).
    """
    sum_a = activations.sum(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
    denom = 2 * d2 + sum_a * d3  # (N, C, h, w)
    alpha = torch.where(denom != 0, d2 / torch.where(denom != 0, denom, torch.ones_like(denom)), torch.zeros_like(d2))
    alpha = torch.nan_to_num(alpha, nan=0.0, posinf=0.0, neginf=0.0)
    return (alpha * d1.clamp(min=0)).sum(dim=(2, 3))  # (N, C)


PP_SIGNED_NOTE = "Its alpha coefficients divide by 2 g^2 + (sum of the channel's activations) g^3"


@register_method(
    name="gradcam",
    label="Grad-CAM",
    family="gradient",
    cost="1 fwd + 1 bwd",
    paper="https://arxiv.org/abs/1610.02391",
    summary="Channel weights = spatial mean of the gradient.",
)
class GradCam(SmoothedMethod):
    """Grad-CAM (Selvaraju et al., ICCV 2017, arXiv:1610.02391).

    ``w_k = (1/Z) sum_ij g^k_ij``  and  ``M = sum_k w_k A^k``.

    On a network whose layer is followed by global average pooling and one linear layer, ``w_k``
    is the linear weight of class c for channel k divided by Z, so Grad-CAM equals CAM (Zhou et al.
    2016) up to that constant.
    """

    def terms(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        gradients = recorded(gradients)
        return _terms(gradients.mean(dim=(2, 3)), activations)  # (N, C, h, w)


@register_method(
    name="gradcampp",
    label="Grad-CAM++",
    family="gradient",
    cost="1 fwd + 1 bwd",
    paper="https://arxiv.org/abs/1710.11063",
    summary="Channel weights = positive gradients weighted by closed-form pixel coefficients alpha.",
)
class GradCamPlusPlus(SmoothedMethod):
    """Grad-CAM++ (Chattopadhay et al., WACV 2018, arXiv:1710.11063).

    With the paper's exponential-score closed form (its eq. 19), the higher derivatives become
    powers of the first one:

    ``alpha^k_ij = g^2 / (2 g^2 + sum_ab A^k_ab g^3)``  (g = g^k_ij), with ``alpha = 0`` where the
    denominator is 0 (then g = 0 too);
    ``w_k = sum_ij alpha^k_ij ReLU(g^k_ij)``  and  ``M = sum_k w_k A^k``.
    """

    def check_layer(self, layer: str, activations: torch.Tensor) -> None:
        warn_if_signed(self.spec.label, layer, activations, PP_SIGNED_NOTE)

    def terms(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        gradients = recorded(gradients)
        # Where g != 0, alpha = g^2 / (g^2 (2 + S g)) = 1 / (2 + S g) with S = sum_ab A_ab, so
        # w_k = sum_{ij: g > 0} g / (2 + S g): the same numbers with one division and no powers.
        # Where 2 + S g = 0 the quotient is +-inf (or NaN where g = 0 too): alpha = 0 there.
        sum_a = activations.sum(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
        denom = (gradients * sum_a).add_(2)  # (N, C, h, w)
        ratio = gradients.clamp(min=0).div_(denom)  # (N, C, h, w)
        ratio = torch.nan_to_num_(ratio, nan=0.0, posinf=0.0, neginf=0.0)
        return _terms(ratio.sum(dim=(2, 3)), activations)  # (N, C, h, w)


@register_method(
    name="xgradcam",
    label="XGrad-CAM",
    family="gradient",
    cost="1 fwd + 1 bwd",
    paper="https://arxiv.org/abs/2008.02312",
    summary="Channel weights = gradient averaged with the channel's normalized activations.",
)
class XGradCam(SmoothedMethod):
    """XGrad-CAM (Fu et al., BMVC 2020, arXiv:2008.02312).

    ``w_k = sum_ij (A^k_ij / sum_ab A^k_ab) g^k_ij``  and  ``M = sum_k w_k A^k``.

    A channel whose activations sum to 0 gets ``w_k = 0`` (the paper leaves it undefined).
    """

    def check_layer(self, layer: str, activations: torch.Tensor) -> None:
        warn_if_signed(
            self.spec.label, layer, activations, "Its channel weights divide by each channel's activation sum"
        )

    def terms(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        gradients = recorded(gradients)
        total = activations.sum(dim=(2, 3))  # (N, C)
        weighted = torch.einsum("nchw,nchw->nc", activations, gradients)  # (N, C)
        safe = torch.where(total != 0, total, torch.ones_like(total))
        weights = torch.where(total != 0, weighted / safe, torch.zeros_like(total))  # (N, C)
        return _terms(weights, activations)


@register_method(
    name="hirescam",
    label="HiResCAM",
    family="gradient",
    cost="1 fwd + 1 bwd",
    paper="https://arxiv.org/abs/2011.08891",
    summary="Element-wise gradient x activation, summed over channels (no spatial averaging).",
)
class HiResCam(SmoothedMethod):
    """HiResCAM (Draelos & Carin, 2020, arXiv:2011.08891).

    ``M_ij = sum_k g^k_ij A^k_ij``.

    For a layer followed by global average pooling and a linear layer, HiResCAM equals Grad-CAM;
    elsewhere it keeps the gradient's spatial detail that Grad-CAM averages away.
    """

    def terms(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        gradients = recorded(gradients)
        return gradients * activations  # (N, C, h, w)


@register_method(
    name="layercam",
    label="LayerCAM",
    family="gradient",
    cost="1 fwd + 1 bwd",
    paper="https://doi.org/10.1109/TIP.2021.3089943",
    summary="Element-wise positive gradient x activation: sharp maps at shallow layers too.",
)
class LayerCam(SmoothedMethod):
    """LayerCAM (Jiang et al., IEEE TIP 30, 2021, "LayerCAM: Exploring Hierarchical Class
    Activation Maps for Localization").

    ``M_ij = sum_k ReLU(g^k_ij) A^k_ij``.
    """

    def terms(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        gradients = recorded(gradients)
        return gradients.clamp(min=0) * activations  # (N, C, h, w)


@register_method(
    name="eigengradcam",
    label="Eigen-Grad-CAM",
    family="gradient",
    cost="1 fwd + 1 bwd + SVD",
    paper="https://arxiv.org/abs/2008.00299",
    summary="First principal component of gradient x activation (class-discriminative Eigen-CAM).",
)
class EigenGradCam(SmoothedMethod):
    """Eigen-Grad-CAM: Eigen-CAM (Muhammad & Yeasin, IJCNN 2020, arXiv:2008.00299) applied to the
    element-wise products ``T^k_ij = g^k_ij A^k_ij`` instead of the activations, as pytorch-grad-cam's
    ``EigenGradCAM`` does (it has no paper of its own).

    With ``X`` (Z, C) the terms as Z = h*w observations of C channels, centred per channel,
    ``X_c = U S V^T``: ``M = X_c v_1`` reshaped to (h, w) — HiResCAM's terms, projected instead of
    summed, so ``eigengradcam == hirescam(eigen_smooth=True)``.

    Deviation: the sign of ``v_1`` is chosen so that ``M`` correlates positively with HiResCAM's
    map ``sum_k T^k`` (pytorch-grad-cam keeps whatever sign the SVD returns, so its map is sometimes
    negated; its own ReLU then keeps the wrong half).

    Options (:class:`methods.cams.core.smoothing.AugOptions`): ``aug_smooth`` only — the map already is
    the principal component, so ``eigen_smooth`` would change nothing.
    """

    options_class = AugOptions
    svds_per_layer = 1

    def terms(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        gradients = recorded(gradients)
        return gradients * activations  # (N, C, h, w)

    def compute(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        return first_component(self.terms(activations, gradients))  # (N, h, w)


@register_method(
    name="gradcam_elementwise",
    label="Grad-CAM element-wise",
    family="gradient",
    cost="1 fwd + 1 bwd",
    paper="https://github.com/jacobgil/pytorch-grad-cam",
    summary="Rectified element-wise gradient x activation, summed over channels.",
)
class GradCamElementWise(SmoothedMethod):
    """Grad-CAM element-wise: pytorch-grad-cam's ``GradCAMElementWise`` (no paper; a variant of
    HiResCAM, Draelos & Carin 2020, arXiv:2011.08891, that rectifies each term before summing).

    ``M_ij = sum_k ReLU(g^k_ij A^k_ij)``.

    Where HiResCAM lets a channel's negative product cancel another's positive one at a position,
    this map keeps only positive evidence, so it is >= 0 everywhere.
    """

    def terms(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        gradients = recorded(gradients)
        return (gradients * activations).clamp(min=0)  # (N, C, h, w)
