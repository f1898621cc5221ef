"""Base classes a CAM method derives from, and the per-call context the explain engine hands them.

:func:`methods.explain_many` runs ONE recorded forward (+ backward) for the whole call, then asks
every method for its maps with :meth:`CamMethod.explain_layers` (a :class:`CallContext` ->
``{layer: map}``). The base classes implement that entry point for the common cases:

* :class:`RecordedMethod` — the map is a function of the layer's recorded activations (and, for
  the gradient family, gradients) from the shared pass: ``compute(A, G) -> (N, h, w)``. Many such
  methods and layers share a single pass.
* :class:`ForwardMethod` — the map needs further forward passes of the model (the score-weighted
  family): ``compute_layer(ctx) -> (N, h, w)`` with a :class:`LayerContext`.
* :class:`PixelMethod` — one map at the input's resolution per call (guided backprop, FullGrad,
  RISE, occlusion): ``compute_input(call) -> (N, H, W)``, shared by every requested layer key.

What a method needs from the shared pass beyond activations (gradients, the input gradient, the
output gradients of chosen modules) it says in :meth:`CamMethod.recording_needs`. Work that two
methods of one call can share (the augmented passes of ``aug_smooth``, the guided backward pass of
guided backprop and Guided Grad-CAM) goes through :meth:`CallContext.shared`.

Every method returns RAW, signed maps. Rectification and scaling are a separate stage
(:mod:`methods.viz.normalize`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from methods._internal.progress import Progress
from methods.cams.core.options import NoOptions, Options, build_options
from methods.cams.core.recorder import Recording
from methods.cams.core.registry import MethodSpec

__all__ = [
    "CamMethod",
    "RecordedMethod",
    "GradientMethod",
    "ForwardMethod",
    "PixelMethod",
    "LayerContext",
    "CallContext",
    "RecordingNeeds",
    "Progress",
    "sub_progress",
]


@dataclass(frozen=True)
class RecordingNeeds:
    """What a method needs from the call's shared recorded pass.

    Attributes:
        gradients: layer gradients ``dy/dA``.
        input_gradient: ``dy/dx`` (:attr:`methods.Recording.input_gradient`).
        sites: module names whose every call's output gradient is needed (FullGrad's biases).
    """

    gradients: bool = False
    input_gradient: bool = False
    sites: tuple[str, ...] = ()


@dataclass
class CallContext:
    """One :func:`methods.explain_many` call as the methods see it.

    Attributes:
        model: the model, in eval mode (the caller's modes come back after the call).
        x: the preprocessed input (N, C, H, W); never to be modified.
        modules: layer name -> module, in the requested order (names may carry ``#k`` / ``:act``).
        recording: the shared recorded pass over ``modules`` (activations, gradients if any method
            asked, logits, targets).
        progress: this method's share of the call's progress callback (None = no reporting).
        cache: work shared by the methods of this call (see :meth:`shared`).
    """

    model: nn.Module
    x: torch.Tensor
    modules: dict[str, nn.Module]
    recording: Recording
    progress: Progress | None = None
    cache: dict = field(default_factory=dict)

    @property
    def layers(self) -> list[str]:
        return list(self.modules)

    @property
    def targets(self) -> torch.Tensor:
        """(N,) explained class per sample."""
        return self.recording.targets

    @property
    def logits(self) -> torch.Tensor:
        """(N, K) logits of ``x``."""
        return self.recording.logits

    @property
    def input_size(self) -> tuple[int, int]:
        return int(self.x.shape[-2]), int(self.x.shape[-1])

    def shared(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()`` once per call for ``key``; later callers get the same object."""
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]


def sub_progress(progress: Progress | None, start: int, units: int, total: int) -> Progress | None:
    """Scale a progress ``(done, of)`` into the share ``[start, start + units)`` of ``total`` units,
    reported as ``(done', 1000 * total)``."""
    if progress is None or units <= 0:
        return None
    scale = 1000

    def sub(done: int, of: int) -> None:
        frac = start + units * (done / of if of else 1.0)
        progress(int(round(frac * scale)), scale * max(total, 1))

    return sub


class CamMethod:
    """A configured CAM method. Options are keyword-only and validated at construction.

    A subclass declares its options as a frozen dataclass (:class:`methods.cams.core.options.Options`)
    in ``options_class``; construction builds and validates it (an unknown keyword is a
    ``WrongTypeError``, a bad value an ``OptionError``, both naming the option and the valid
    values). Constructing a method registers no hooks and touches no model.

    Attributes:
        config: the validated options (a frozen dataclass instance).
        options: the same as a plain dict (what an :class:`methods.Explanation` records).
    """

    spec: ClassVar[MethodSpec]
    options_class: ClassVar[type[Options]] = NoOptions
    config: Options  # a subclass narrows this to an instance of its ``options_class``

    def __init__(self, **options: Any) -> None:
        self.config = build_options(self.options_class, self.spec.label, options)

    @property
    def options(self) -> dict[str, Any]:
        return self.config.as_dict()

    def recording_needs(self, model: nn.Module) -> RecordingNeeds:
        """What this method reads from the shared pass (default: the layer gradients if
        ``spec.needs_gradients``)."""
        return RecordingNeeds(gradients=bool(self.spec.needs_gradients))

    def progress_units(self, n_layers: int) -> int:
        """How many units of the call's progress this method reports (0: it is fast)."""
        return 0

    def explain_layers(self, call: CallContext) -> dict[str, torch.Tensor]:
        """RAW maps ``{layer: (N, h, w) or (N, H, W)}`` for every layer of ``call``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({opts})"


class RecordedMethod(CamMethod):
    """A method computed from one layer's recorded activations (and gradients)."""

    def check_layer(self, layer: str, activations: torch.Tensor) -> None:
        """Called before :meth:`compute` for each layer: warn (GradLensWarning) about a layer the
        method is known to misread. Default: nothing."""

    def explain_layers(self, call: CallContext) -> dict[str, torch.Tensor]:
        rec = call.recording
        out = {}
        for layer in call.layers:
            acts = rec.activations[layer]
            self.check_layer(layer, acts)
            grads = rec.gradients[layer] if (self.spec.needs_gradients and rec.gradients) else None
            out[layer] = self.compute(acts, grads)
        return out

    def compute(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        """Raw map from activations ``A`` (N, C, h, w) and gradients ``dy/dA`` (N, C, h, w).

        ``gradients`` is None when ``spec.needs_gradients`` is False. Returns (N, h, w) float32.
        """
        raise NotImplementedError


class GradientMethod(RecordedMethod):
    """Gradient family: needs ``dy_c/dA`` from one backward pass."""


@dataclass(frozen=True)
class LayerContext:
    """Everything a :class:`ForwardMethod` may use for one layer.

    Attributes:
        model: the model, in eval mode, hooks off.
        x: the preprocessed input (N, 3, H, W); never to be modified.
        layer: the layer's module name.
        activations: the layer's output for ``x`` (N, C, h, w), detached.
        targets: explained class per sample (N,).
        logits: the model's logits for ``x`` (N, K), detached.
        progress: callback ``(done, total)`` or None.
        module: the layer's module, resolved once by :func:`methods.explain_many` (None when a
            caller builds a context by hand; then methods look it up by name).
        layout: how the layer's own output is laid out (``"nchw"``, ``"nhwc"`` or ``"tokens"``,
            :mod:`methods.cams.core.layouts`); ``activations`` are (N, C, h, w) whatever it is.
    """

    model: nn.Module
    x: torch.Tensor
    layer: str
    activations: torch.Tensor
    targets: torch.Tensor
    logits: torch.Tensor
    progress: Progress | None = None
    module: nn.Module | None = None
    layout: str = "nchw"


class ForwardMethod(CamMethod):
    """A method that runs further forward passes per layer (score-weighted family)."""

    def compute_layer(self, ctx: LayerContext) -> torch.Tensor:
        """Raw map (N, h, w) for ``ctx.layer``."""
        raise NotImplementedError

    def progress_units(self, n_layers: int) -> int:
        return n_layers

    def explain_layers(self, call: CallContext) -> dict[str, torch.Tensor]:
        rec, out = call.recording, {}
        for i, layer in enumerate(call.layers):
            ctx = LayerContext(
                model=call.model,
                x=call.x,
                layer=layer,
                activations=rec.activations[layer],
                targets=rec.targets,
                logits=rec.logits,
                progress=sub_progress(call.progress, i, 1, len(call.layers)),
                module=call.modules[layer],
                layout=rec.layouts[layer].kind if layer in rec.layouts else "nchw",
            )
            out[layer] = self.compute_layer(ctx)
        return out


class PixelMethod(CamMethod):
    """A map at the input's resolution, the same for every layer (``spec.layer_independent``):
    :meth:`compute_input` runs once per call and every layer key gets that one tensor."""

    def compute_input(self, call: CallContext) -> torch.Tensor:
        """Raw map (N, H, W) at the input's resolution."""
        raise NotImplementedError

    def progress_units(self, n_layers: int) -> int:
        return 1 if self.spec.slow else 0

    def explain_layers(self, call: CallContext) -> dict[str, torch.Tensor]:
        one = self.compute_input(call)  # (N, H, W)
        return {layer: one for layer in call.layers}
