"""Guided backpropagation and Guided Grad-CAM: input-resolution maps from a rectified backward pass.

The guided rule, for EVERY elementwise activation ``a = f(z)`` of the forward (not only ``nn.ReLU``)::

    R_in = ReLU(R_out) * max(f'(z), 0)

Only positive backward signal passes, scaled by the activation's local slope. For ReLU,
``f'(z) = [z > 0]`` and this is exactly Springenberg et al.'s rule (eq. 6); for ReLU6 (which arrives
as ``hardtanh(z, 0, 6)``) the signal passes where ``0 < z < 6``; LeakyReLU passes it with its slope
on the negative side; ELU, SELU, CELU and softplus with their (positive) derivative.

Choice for activations that are not monotone — SiLU, GELU, Hardswish, Mish: their derivative is
negative on part of the negative axis (SiLU below z ≈ -1.28), where the guided signal would change
sign. GradLens clamps the derivative at zero there (``max(f'(z), 0)``), so the guided signal stays
non-negative, as it does through every ReLU, and the map carries a note naming those activations.
The paper defines the rule for ReLU networks only; this extension is ours (docs/methods.md).

How, for one call only: a thread-local :class:`torch.overrides.TorchFunctionMode` active during the
forward intercepts every activation function by name (:data:`methods.cams.core.sites.ACTIVATIONS`:
``F.relu``, ``torch.relu_``, ``Tensor.relu``, and the functions ``nn.ReLU``, ``nn.ReLU6``,
``nn.SiLU`` ... call), computes ``f`` and ``f'`` with the original function and hands back a tensor
whose backward is the guided rule. In-place calls keep their semantics (the result is written into
the input). Nothing on the model is changed, no hook is registered; the forward runs in eval mode on
a copy of the input, parameters are frozen for the pass and their ``requires_grad`` flags restored.
Sigmoid and tanh (gates, e.g. squeeze-and-excitation) are not activations in this sense and keep
their plain backward.
"""

from __future__ import annotations

import contextlib
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from methods._internal.torch_utils import eval_mode, upsample
from methods.cams.core.base import CallContext, PixelMethod, RecordingNeeds
from methods.cams.core.cost import Passes
from methods.cams.core.options import Options, option
from methods.cams.core.registry import register_method
from methods.cams.core.sites import ACTIVATIONS
from methods.errors import GradLensWarning, RecorderError

__all__ = [
    "NON_MONOTONE",
    "guided_activation",
    "guided_activations",
    "guided_gradients",
    "reduce_channels",
    "GuidedBackprop",
    "GuidedGradCam",
    "GuidedOptions",
    "GuidedPass",
]

NON_MONOTONE: frozenset[str] = frozenset({"silu", "gelu", "hardswish", "mish"})
"""Activations whose derivative is negative somewhere: guided with ``max(f'(z), 0)``, and said in a note."""


class _GuidedFunction(torch.autograd.Function):
    """Forward: the activation's output ``a`` (computed outside). Backward: ``ReLU(R_out) * slope``."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, a: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(slope)  # the slope, not z: an in-place caller may overwrite z
        return a.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (slope,) = ctx.saved_tensors
        return grad.clamp(min=0) * slope, None, None


def guided_activation(func: Callable[..., Any], z: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """``func(z, *args, **kwargs)`` (an elementwise activation, possibly in place) with the guided backward.

    The forward value is the activation's own; ``f'(z)`` comes from autograd on a detached copy,
    clamped at zero. An in-place ``func`` writes the result into ``z`` and returns ``z``, as it would.

    Examples:
        >>> z = torch.tensor([-1.0, 0.5, 7.0], requires_grad=True)
        >>> a = guided_activation(torch.nn.functional.relu6, z)
        >>> a.tolist()
        [0.0, 0.5, 6.0]
        >>> (g,) = torch.autograd.grad(a, z, torch.tensor([1.0, -1.0, 1.0]))
        >>> g.tolist()  # negative signal stopped; slope 0 below 0 and above 6
        [0.0, 0.0, 0.0]
    """
    with torch.enable_grad():
        leaf = z.detach().requires_grad_(True)
        work = leaf * 1.0  # a non-leaf copy: in-place activations may write into it
        out = func(work, *args, **kwargs)
        (slope,) = torch.autograd.grad(out, leaf, torch.ones_like(out))
    guided = _GuidedFunction.apply(z, out.detach(), slope.clamp(min=0))
    if out.data_ptr() == work.data_ptr():  # the call was in place: keep that semantics
        return z.copy_(guided)
    return guided


@dataclass
class GuidedPass:
    """What one guided pass did: ``guided`` activation calls by name (trailing ``_`` dropped),
    ``clamped`` the non-monotone ones among them (:data:`NON_MONOTONE`)."""

    guided: Counter = field(default_factory=Counter)

    @property
    def clamped(self) -> Counter:
        return Counter({k: v for k, v in self.guided.items() if k in NON_MONOTONE})


class _GuideMode(TorchFunctionMode):
    """Routes every activation call (by name) through :func:`guided_activation` and counts them."""

    def __init__(self, info: GuidedPass) -> None:
        super().__init__()
        self.info = info

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in ACTIVATIONS and args and isinstance(args[0], torch.Tensor) and args[0].is_floating_point():
            self.info.guided[name.rstrip("_")] += 1
            return guided_activation(func, args[0], *args[1:], **kwargs)
        return func(*args, **kwargs)


@contextlib.contextmanager
def guided_activations(model: nn.Module) -> Iterator[GuidedPass]:
    """Every activation call made while the block runs is guided (see the module docstring); the
    mode is thread-local and gone after the block, also after an exception. ``model`` is unchanged."""
    info = GuidedPass()
    with _GuideMode(info):
        yield info


def guided_gradients(model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, GuidedPass]:
    """``d y_target / d x`` (N, C, H, W) float32 with every activation's backward guided, and what was guided.

    Args:
        model: any ``nn.Module`` returning (N, K) logits (run in eval mode; restored after).
        x: (N, C, H, W) input; not modified.
        targets: (N,) class per sample.
    """
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        with eval_mode(model), torch.enable_grad():
            for p, _ in flags:
                p.requires_grad_(False)
            x_in = x.detach().clone().requires_grad_(True)
            with guided_activations(model) as info:
                logits = model(x_in)
            if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
                raise RecorderError("the model must return (N, classes) logits")
            score = logits.gather(1, targets.to(logits.device)[:, None]).sum()
            (grad,) = torch.autograd.grad(score, x_in)
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
    return grad.detach().float(), info


def reduce_channels(grad: torch.Tensor, how: str) -> torch.Tensor:
    """A (N, H, W) map from an input gradient (N, C, H, W): ``"abs_max"`` = ``max_c |G_c|``
    (Simonyan et al.'s saliency), ``"sum"`` = ``sum_c G_c`` (signed)."""
    return grad.abs().amax(dim=1) if how == "abs_max" else grad.sum(dim=1)


def _shared_guided(call: CallContext) -> torch.Tensor:
    def make() -> torch.Tensor:
        grad, info = guided_gradients(call.model, call.x, call.targets)
        if not info.guided:
            warnings.warn(
                "guided backpropagation found no activation function in this model's forward, so the "
                "map is the plain input gradient",
                GradLensWarning,
                stacklevel=2,
            )
        elif info.clamped:
            listed = ", ".join(f"{name} x{n}" for name, n in sorted(info.clamped.items()))
            warnings.warn(
                f"guided through non-monotone activations ({listed}) with their derivative clamped at "
                "zero where it is negative: GradLens's extension of the ReLU rule (docs/methods.md)",
                GradLensWarning,
                stacklevel=2,
            )
        return grad

    return call.shared("guided_gradients", make)


@dataclass(frozen=True)
class GuidedOptions(Options):
    """Options of :class:`GuidedBackprop` and :class:`GuidedGradCam`."""

    reduce: str = option(
        "abs_max",
        "colour channels -> one map: 'abs_max' = max |G_c| (Simonyan et al.), 'sum' = signed sum",
        choices=("abs_max", "sum"),
    )


@register_method(
    name="guidedbackprop",
    label="Guided Backprop",
    family="pixel",
    cost="1 fwd + 1 bwd",
    paper="https://arxiv.org/abs/1412.6806",
    summary="Input gradient with every activation's backward rectified: fine edges, nearly the same for any class.",
    needs_gradients=True,
    class_agnostic=True,
    layer_independent=True,
)
class GuidedBackprop(PixelMethod):
    """Guided backpropagation (Springenberg et al., ICLR-W 2015, "Striving for Simplicity: The All
    Convolutional Net", arXiv:1412.6806).

    ``G = d y_c / d x`` computed with every activation's backward replaced by
    ``R_in = ReLU(R_out) * max(f'(z), 0)`` (for a ReLU: its input positive AND the gradient positive),
    then one map per pixel: ``M_ij = max_c |G_cij|`` (``reduce="abs_max"``) or ``sum_c G_cij``
    (``"sum"``); (N, H, W) at the input's resolution, the same for every requested layer.

    Class sensitivity: the map is computed for the target class, but it barely depends on it —
    guided backprop mostly reconstructs the image (Nie et al. 2018, arXiv:1805.07039; Adebayo et al.
    2018, arXiv:1810.03292; the Grad-CAM paper's Fig. 1 shows the same picture for "cat" and
    "dog"). On the bundled ``scenes_vgg``, the maps of the two objects' classes in a two-object
    scene correlate at r = 0.75 and peak on the right object 53 % of the time (Grad-CAM: r = -0.60,
    95 %; ``benchmarks/class_sensitivity.py``). The spec marks it ``class_agnostic``: class-
    discrimination checks skip it and the dashboard says not to read class evidence into it.

    Deviation: the paper shows the 3-channel gradient image; a heat map needs one value per pixel
    (``reduce``). The paper guides ReLUs only; here every activation is guided (the module
    docstring gives the rule and the choice for non-monotone activations).
    """

    options_class = GuidedOptions
    config: GuidedOptions

    def recording_needs(self, model: nn.Module) -> RecordingNeeds:
        return RecordingNeeds()

    def compute_input(self, call: CallContext) -> torch.Tensor:
        return reduce_channels(_shared_guided(call), self.config.reduce)  # (N, H, W)


@register_method(
    name="guidedgradcam",
    label="Guided Grad-CAM",
    family="pixel",
    cost="2 fwd + 2 bwd",
    paper="https://arxiv.org/abs/1610.02391",
    summary="Guided backprop times the upsampled, rectified Grad-CAM of the layer: fine and class-discriminative.",
    needs_gradients=True,
)
class GuidedGradCam(PixelMethod):
    """Guided Grad-CAM (Selvaraju et al., ICCV 2017, arXiv:1610.02391, section 3).

    ``M = R(G) o U(ReLU(L))``: the guided-backprop map ``R(G)`` (:class:`GuidedBackprop`, same
    ``reduce``) times the layer's Grad-CAM ``L = sum_k w_k A^k`` (``w_k`` = spatial mean of
    ``dy_c/dA^k``), rectified and upsampled bilinearly to the input size (``U``, align_corners=False).
    Unlike guided backprop alone it depends on the layer and on the class.

    Deviation: pytorch-grad-cam min-max scales Grad-CAM to [0, 1] before the product; here the raw
    rectified Grad-CAM is used (the same map up to a positive factor per image).
    """

    options_class = GuidedOptions
    config: GuidedOptions

    def recording_needs(self, model: nn.Module) -> RecordingNeeds:
        return RecordingNeeds(gradients=True)

    def passes(self, *, channels: int, input_size: tuple[int, int]) -> Passes:
        return Passes(forwards=2, backwards=2)  # the shared pass and the guided one

    def explain_layers(self, call: CallContext) -> dict[str, torch.Tensor]:
        guided = reduce_channels(_shared_guided(call), self.config.reduce)  # (N, H, W)
        rec, out = call.recording, {}
        assert rec.gradients is not None  # recording_needs asks for them
        for layer in call.layers:
            acts, grads = rec.activations[layer], rec.gradients[layer]
            gradcam = torch.einsum("nc,nchw->nhw", grads.mean(dim=(2, 3)), acts).clamp(min=0)  # (N, h, w)
            out[layer] = guided * upsample(gradcam, call.input_size)  # (N, H, W)
        return out
