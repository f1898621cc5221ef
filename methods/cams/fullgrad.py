"""FullGrad: the input-gradient term plus every convolution's and BatchNorm's bias-gradient term.

Which bias terms are covered (every call of each module, from the call's ONE shared recorded pass:
:func:`methods.cams.core.recorder.record` with ``input_gradient=True`` and these modules as ``sites``):

* ``nn.Conv2d`` with a bias: ``b = conv.bias``;
* ``nn.BatchNorm2d`` with running statistics (eval mode): its effective bias
  ``b = beta - gamma * mu / sqrt(var + eps)`` (``BN(z) = (gamma / sigma) z + b``; gamma = 1 and
  beta = 0 without affine parameters).

Not covered, and why: ``nn.Linear`` biases (no spatial map; the reference code drops them from the
saliency map too), BatchNorm without running statistics (its shift depends on the batch), other
normalisation layers (GroupNorm, LayerNorm, InstanceNorm: a data-dependent shift), transposed or 1-D
/ 3-D convolutions, and the "implicit biases" of non-ReLU activations (SiLU, GELU...), which the
paper's completeness needs. A model holding any of the first kinds gets a note
(:class:`methods.errors.GradLensWarning`).

Completeness (the paper's Theorem): for a network of convolutions, BatchNorms in eval mode,
ReLU / max-pool / average-pool and linear layers,
``y = sum(x * dy/dx) + sum over bias terms of sum(b * dy/dz) + (the Linear biases' share)``;
the tests check it to 1e-5.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from methods._internal.torch_utils import upsample
from methods.cams.core.base import CallContext, PixelMethod, RecordingNeeds
from methods.cams.core.layouts import token_grid
from methods.cams.core.registry import register_method
from methods.cams.core.sites import site_name
from methods.errors import GradLensWarning, LayerError

__all__ = ["FullGrad", "bias_modules", "effective_bias", "minmax_abs"]

_UNCOVERED = (
    nn.GroupNorm,
    nn.LayerNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.ConvTranspose2d,
    nn.Conv1d,
    nn.Conv3d,
    nn.BatchNorm1d,
    nn.BatchNorm3d,
)


def effective_bias(module: nn.Module) -> torch.Tensor | None:
    """The bias FullGrad uses for ``module`` (C,), or None when it has none that is covered."""
    if isinstance(module, nn.Conv2d):
        return module.bias.detach() if module.bias is not None else None
    if isinstance(module, nn.BatchNorm2d):
        if module.running_mean is None or module.running_var is None:
            return None
        var, mean = module.running_var.detach(), module.running_mean.detach()
        gamma = module.weight.detach() if module.weight is not None else torch.ones_like(var)
        beta = module.bias.detach() if module.bias is not None else torch.zeros_like(var)
        return beta - gamma * mean / torch.sqrt(var + module.eps)
    return None


def bias_modules(model: nn.Module) -> list[str]:
    """Names of the modules whose bias terms FullGrad covers (see the module docstring)."""
    return [name for name, m in model.named_modules() if name and effective_bias(m) is not None]


def minmax_abs(t: torch.Tensor) -> torch.Tensor:
    """The paper's post-processing psi before aggregation: ``|t|`` min-max scaled to [0, 1] per
    sample over all its channels and positions; (N, ...) -> same shape, 0 for a constant sample."""
    a = t.abs()
    flat = a.flatten(1)  # (N, rest)
    lo = flat.amin(dim=1).view(-1, *([1] * (a.ndim - 1)))
    span = flat.amax(dim=1).view(-1, *([1] * (a.ndim - 1))) - lo
    return torch.where(span > 0, (a - lo) / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(a))


@register_method(
    name="fullgrad",
    label="FullGrad",
    family="pixel",
    cost="1 fwd + 1 bwd",
    paper="https://arxiv.org/abs/1905.00780",
    summary="Input-gradient x input plus the bias-gradients of every conv and BatchNorm, each rectified and summed.",
    needs_gradients=True,
    layer_independent=True,
    class_agnostic=True,
)
class FullGrad(PixelMethod):
    """FullGrad (Srinivas & Fleuret, NeurIPS 2019, "Full-Gradient Representation for Neural
    Network Visualization", arXiv:1905.00780).

    ``M = sum_c psi(x o dy/dx)_c + sum_l sum_c U(psi(b_l o dy/dz_l)_c)`` where ``z_l`` is the output
    of bias term l (every call of every covered conv / BatchNorm, see the module docstring), ``b_l``
    its bias broadcast over positions, ``psi`` = absolute value min-max scaled to [0, 1] over the
    whole (C, h, w) tensor of one sample (:func:`minmax_abs`, as the reference code does), ``U``
    bilinear upsampling to the input size, ``c`` the channels. (N, H, W), >= 0, the same for every
    requested layer; ``y`` is the target's logit.

    Class sensitivity: the map is computed for the target class, but taking absolute values and
    rescaling every term to [0, 1] removes most of what distinguishes classes: on the bundled
    ``scenes_vgg``, the maps of the two objects' classes in a two-object scene correlate at r = 0.95
    and peak on the right object 42 % of the time (chance: about half; Grad-CAM: r = -0.60, 95 %;
    ``benchmarks/class_sensitivity.py``, docs/methods.md). The spec marks it ``class_agnostic``.

    Deviation: ``U`` uses ``align_corners=False`` (the library's one rule; the reference code uses
    True) and psi has no epsilon (a constant term is 0, not 0/eps). pytorch-grad-cam min-max scales
    each CHANNEL separately before summing; the reference code and this one scale each term's whole
    tensor.
    """

    def recording_needs(self, model: nn.Module) -> RecordingNeeds:
        if token_grid(model, (224, 224)) is not None:
            raise LayerError(
                "FullGrad does not apply to this model: it is a vision transformer (it has a patch embedding), "
                "whose bias terms sit in Linear and LayerNorm layers acting on every token; FullGrad's "
                "Conv2d / BatchNorm2d rule would leave nearly all of them out and give a map of the patch "
                "embedding alone. Use a gradient method (gradcam) at a block layer, or rise / occlusion"
            )
        return RecordingNeeds(gradients=True, input_gradient=True, sites=tuple(bias_modules(model)))

    def compute_input(self, call: CallContext) -> torch.Tensor:
        rec, size = call.recording, call.input_size
        uncovered = sorted(
            {
                type(m).__name__
                for m in call.model.modules()
                if (isinstance(m, _UNCOVERED) and getattr(m, "bias", None) is not None)
                or (isinstance(m, nn.BatchNorm2d) and m.running_mean is None)
            }
        )
        if uncovered:
            warnings.warn(
                f"FullGrad covers Conv2d and BatchNorm2d (running statistics) biases only; this model's "
                f"{', '.join(uncovered)} bias terms are left out of the map",
                GradLensWarning,
                stacklevel=2,
            )
        assert rec.input_gradient is not None  # recording_needs asks for it
        total = minmax_abs(call.x.detach().float() * rec.input_gradient).sum(dim=1)  # (N, H, W)
        named = dict(call.model.named_modules())
        sites = rec.site_gradients or {}
        for name in bias_modules(call.model):
            covered = effective_bias(named[name])
            assert covered is not None  # bias_modules lists modules with a covered bias only
            bias = covered.float()  # (C,)
            k = 0
            while site_name(name, k) in sites:
                grad = sites[site_name(name, k)]  # (N, C, h, w)
                term = minmax_abs(grad * bias.to(grad.device)[None, :, None, None]).sum(dim=1)  # (N, h, w)
                total = total + upsample(term, size)  # (N, H, W)
                k += 1
        return total
