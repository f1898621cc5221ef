"""Guided backpropagation and Guided Grad-CAM: input-resolution maps from a rectified backward pass.

How the ReLUs are guided, for one call only:

* every ``nn.ReLU`` module (any depth, ``isinstance``) is swapped for a :class:`GuidedReLU` with the
  same ``inplace`` flag, and the ORIGINAL objects are put back in ``finally`` — also when the
  forward raises (:func:`guided_relus`);
* functional ReLUs (``F.relu``, ``torch.relu``, ``torch.relu_``, ``Tensor.relu``, as in
  torchvision's DenseNet ``forward``) are guided by a thread-local
  :class:`torch.overrides.TorchFunctionMode` active during the forward only;
* not covered: every other activation (ReLU6 arrives as ``hardtanh``, SiLU, GELU, Hardswish, ...):
  their backward is the plain gradient. The mode counts them and the call warns (a
  :class:`methods.errors.GradLensWarning`, so :attr:`methods.Explanation.notes` says so).

While the call runs the model object is changed (its ReLU modules are replaced): serialise the
use of one model across threads (the dashboard holds a lock per model, as it must for hooks).
The forward runs in eval mode on a copy of the input; parameters are frozen for the pass and their
``requires_grad`` flags restored; no hook is registered.
"""

from __future__ import annotations

import contextlib
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from methods._internal.torch_utils import eval_mode, upsample
from methods.cams.core.base import CallContext, PixelMethod, RecordingNeeds
from methods.cams.core.options import Options, option
from methods.cams.core.registry import register_method
from methods.cams.core.sites import ACTIVATIONS
from methods.errors import GradLensWarning, RecorderError

__all__ = ["GuidedReLU", "guided_relu", "guided_relus", "guided_gradients", "reduce_channels",
           "GuidedBackprop", "GuidedGradCam", "GuidedOptions"]


class _GuidedReluFunction(torch.autograd.Function):
    """Forward: ReLU. Backward: ``grad_in = ReLU(grad_out) * [x > 0]`` (Springenberg et al., eq. 6)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        mask = x > 0
        ctx.save_for_backward(mask)  # the mask, not x: an in-place caller may overwrite x
        return x * mask

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (mask,) = ctx.saved_tensors
        return grad.clamp(min=0) * mask


def guided_relu(x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """ReLU with the guided backward; ``inplace=True`` writes the result into ``x`` and returns it."""
    out = _GuidedReluFunction.apply(x)
    if inplace:
        return x.copy_(out)
    return out


class GuidedReLU(nn.Module):
    """A ReLU module whose backward is guided (what :func:`guided_relus` puts in place of ``nn.ReLU``)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return guided_relu(x, self.inplace)


class _FunctionalGuide(TorchFunctionMode):
    """Guides functional ReLU calls; counts the other activations it lets through."""

    def __init__(self) -> None:
        super().__init__()
        self.guided = 0
        self.unguided: Counter[str] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in ("relu", "relu_") and args and isinstance(args[0], torch.Tensor):
            self.guided += 1
            inplace = name == "relu_" or bool(kwargs.get("inplace", args[1] if len(args) > 1 else False))
            return guided_relu(args[0], inplace)
        if name in ACTIVATIONS:
            self.unguided[name] += 1
        return func(*args, **kwargs)


@dataclass
class GuidedPass:
    """What one guided pass changed: ``modules`` ReLU modules swapped, ``functional`` ReLU calls
    guided, ``unguided`` other activation calls (name -> count) left with their plain backward."""

    modules: int = 0
    functional: int = 0
    unguided: Counter | None = None


@contextlib.contextmanager
def guided_relus(model: nn.Module) -> Iterator[GuidedPass]:
    """Every ``nn.ReLU`` of ``model`` swapped for :class:`GuidedReLU` and functional ReLUs guided,
    for the block; the original modules are back in ``finally`` (also after an exception)."""
    sites = [(parent, key, child) for parent in model.modules() for key, child in parent._modules.items()
             if isinstance(child, nn.ReLU)]
    info = GuidedPass(modules=len(sites))
    mode = _FunctionalGuide()
    try:
        for parent, key, child in sites:
            parent._modules[key] = GuidedReLU(inplace=bool(child.inplace))
        with mode:
            yield info
    finally:
        for parent, key, child in reversed(sites):
            parent._modules[key] = child
        info.functional, info.unguided = mode.guided, mode.unguided


def guided_gradients(model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, GuidedPass]:
    """``d y_target / d x`` (N, C, H, W) float32 with every ReLU's backward guided, and what was guided.

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
            with guided_relus(model) as info:
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
        if info.unguided:
            listed = ", ".join(f"{name} x{n}" for name, n in sorted(info.unguided.items()))
            warnings.warn(
                f"guided backpropagation rectifies ReLU only ({info.modules} ReLU module(s) swapped, "
                f"{info.functional} functional ReLU call(s) guided); this model also applies {listed}, whose "
                "backward is the plain gradient, so the map is only partly guided",
                GradLensWarning, stacklevel=2)
        return grad

    return call.shared("guided_gradients", make)


@dataclass(frozen=True)
class GuidedOptions(Options):
    """Options of :class:`GuidedBackprop` and :class:`GuidedGradCam`."""

    reduce: str = option("abs_max", "colour channels -> one map: 'abs_max' = max |G_c| (Simonyan et al.), "
                         "'sum' = signed sum", choices=("abs_max", "sum"))


@register_method(
    name="guidedbackprop",
    label="Guided Backprop",
    family="pixel",
    cost="1 fwd + 1 bwd",
    paper="https://arxiv.org/abs/1412.6806",
    summary="Input gradient with every ReLU's backward rectified: fine edges, nearly the same for any class.",
    needs_gradients=True,
    class_agnostic=True,
    layer_independent=True,
)
class GuidedBackprop(PixelMethod):
    """Guided backpropagation (Springenberg et al., ICLR-W 2015, "Striving for Simplicity: The All
    Convolutional Net", arXiv:1412.6806).

    ``G = d y_c / d x`` computed with every ReLU's backward replaced by
    ``R_in = ReLU(R_out) * [x > 0]`` (the input of the ReLU positive AND the gradient positive),
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
    (``reduce``). Which ReLUs are guided and what is not covered: the module docstring.
    """

    options_class = GuidedOptions

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

    def recording_needs(self, model: nn.Module) -> RecordingNeeds:
        return RecordingNeeds(gradients=True)

    def explain_layers(self, call: CallContext) -> dict[str, torch.Tensor]:
        guided = reduce_channels(_shared_guided(call), self.config.reduce)  # (N, H, W)
        rec, out = call.recording, {}
        for layer in call.layers:
            acts, grads = rec.activations[layer], rec.gradients[layer]
            gradcam = torch.einsum("nc,nchw->nhw", grads.mean(dim=(2, 3)), acts).clamp(min=0)  # (N, h, w)
            out[layer] = guided * upsample(gradcam, call.input_size)  # (N, H, W)
        return out
