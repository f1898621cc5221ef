"""Base classes a CAM method derives from; the explain engine calls one of two entry points.

* :class:`RecordedMethod` — the map is a function of the layer's recorded activations (and, for
  the gradient family, gradients) from ONE shared forward+backward: ``compute(A, G) -> (N, h, w)``.
  Many such methods and layers share a single pass (see :func:`methods.explain_many`).
* :class:`ForwardMethod` — the map needs further forward passes of the model (the score-weighted
  family): ``compute_layer(ctx) -> (N, h, w)`` with a :class:`LayerContext`.

Every method returns a RAW, signed map at the layer's resolution. Rectification and scaling are a
separate stage (:mod:`methods.viz.normalize`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from methods._torch import Progress
from methods.cams.options import NoOptions, Options, build_options
from methods.cams.registry import MethodSpec

__all__ = ["CamMethod", "RecordedMethod", "GradientMethod", "ForwardMethod", "LayerContext", "Progress"]


class CamMethod:
    """A configured CAM method. Options are keyword-only and validated at construction.

    A subclass declares its options as a frozen dataclass (:class:`methods.cams.options.Options`)
    in ``options_class``; construction builds and validates it (an unknown keyword is a
    ``WrongTypeError``, a bad value an ``OptionError``, both naming the option and the valid
    values). Constructing a method registers no hooks and touches no model.

    Attributes:
        config: the validated options (a frozen dataclass instance).
        options: the same as a plain dict (what an :class:`methods.Explanation` records).
    """

    spec: ClassVar[MethodSpec]
    options_class: ClassVar[type[Options]] = NoOptions

    def __init__(self, **options: Any) -> None:
        self.config = build_options(self.options_class, self.spec.label, options)

    @property
    def options(self) -> dict[str, Any]:
        return self.config.as_dict()

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({opts})"


class RecordedMethod(CamMethod):
    """A method computed from one layer's recorded activations (and gradients)."""

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
    """

    model: nn.Module
    x: torch.Tensor
    layer: str
    activations: torch.Tensor
    targets: torch.Tensor
    logits: torch.Tensor
    progress: Progress | None = None
    module: nn.Module | None = None


class ForwardMethod(CamMethod):
    """A method that runs further forward passes per layer (score-weighted family)."""

    def compute_layer(self, ctx: LayerContext) -> torch.Tensor:
        """Raw map (N, h, w) for ``ctx.layer``."""
        raise NotImplementedError
