"""Run only the part of a network after a layer: Ablation-CAM's fast path ("trunk substitution").

Ablation-CAM needs the class score for C copies of the layer's output, each with one channel set
to zero. Everything before the layer (the trunk) is the same for all C copies, so recomputing it
C times is waste. Instead of tracing the model (``torch.fx`` tracing patches
``torch.nn.Module.__call__`` for every thread while it runs, which would corrupt forwards of other
models running concurrently in a dashboard server), the network is run as it is, with:

* the layer's ``forward`` replaced by one that returns the given (ablated) activations, and
* every *trunk module* — a module whose last call ends before the layer's first call starts —
  replaced by one that returns a free placeholder: a NaN tensor of its recorded output shape,
  expanded (no memory) to the batch. Only the top-most such modules are replaced, so the trunk
  costs nothing but the functional glue between them.

The replacement is an instance attribute ``module.forward``, set inside ``try`` and removed in
``finally``; it affects this model instance only, for the duration of the call (the dashboard
serialises use of a model with a lock, as it must for hooks anyway).

Correctness is checked, not assumed: the placeholders are NaN, so if any trunk value reaches the
output by a path that bypasses the layer (a skip connection around a layer inside a residual
block, a DenseNet concatenation, a model that reads its input again later), the check run on the
unablated activations gives NaN or different logits and the caller falls back to full forwards.
The check compares with the logits of the real forward pass (``max |diff| <= 1e-4 (1 + max |y|)``).

Layer names with a call site or ``:act`` (:mod:`methods.cams.core.sites`): ``act#1`` replaces only the
second call of ``act`` (its other calls run as usual, and "before the layer" means before that
call starts); ``bn:act`` makes ``bn`` return a free marker tensor and a thread-local torch function
mode hands the activations to the model where the activation function consumes that marker (the
activation itself is not run).

Which layers get the fast path: any layer whose output is the only route from the input to the
logits — e.g. torchvision VGG/AlexNet ``features.N``; ResNet ``conv1`` ... ``maxpool``,
``layerK`` and whole blocks ``layerK.j``; MobileNet/EfficientNet/DenseNet ``features.*`` stages;
the bundled scene models' ``features.N`` / ``layerK``. Layers *inside* a residual block
(``layer4.1.conv2``) are bypassed by the skip connection and take the slow path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from methods._internal.forward_patch import ForwardPatcher
from methods._internal.torch_utils import HookScope
from methods.cams.core.sites import TensorWatch, parse_layer
from methods.errors import RecorderError, ScoreError

__all__ = ["TailPlan", "plan_tail", "SubstitutedForward", "check_tail"]


@dataclass(frozen=True)
class TailPlan:
    """Which modules to replace so that a forward pass runs only the layer's tail.

    Attributes:
        layer: the layer's module name.
        stubs: names of the top-most trunk modules (replaced by placeholders).
        placeholders: name -> (1, ...) NaN tensor of that module's output shape.
        trunk_modules: how many modules (at any depth) finish before the layer starts.
        reason: why no module could be stubbed (empty when ``stubs`` is not empty).
    """

    layer: str
    stubs: tuple[str, ...]
    placeholders: dict[str, torch.Tensor] = field(repr=False)
    trunk_modules: int
    reason: str = ""


def plan_tail(model: nn.Module, x_one: torch.Tensor, layer: str) -> TailPlan:
    """Record the execution order of every module on one input and choose the trunk stubs.

    Runs ONE forward pass of ``x_one`` (1, C, H, W) under ``torch.inference_mode`` with hooks on
    every module (removed in ``finally``). The caller puts the model in eval mode.
    """
    named = dict(model.named_modules())
    ref = parse_layer(layer, named)
    tick = [0]
    start: dict[str, int] = {}
    starts: dict[str, list[int]] = {}
    end: dict[str, int] = {}
    calls: dict[str, int] = {}
    outputs: dict[str, Any] = {}

    def pre(name: str) -> Callable:
        def hook(module, args):
            tick[0] += 1
            start.setdefault(name, tick[0])
            starts.setdefault(name, []).append(tick[0])
            calls[name] = calls.get(name, 0) + 1

        return hook

    def post(name: str) -> Callable:
        def hook(module, args, output):
            tick[0] += 1
            end[name] = tick[0]
            if (
                isinstance(output, torch.Tensor)
                and output.is_floating_point()
                and output.ndim >= 1
                and output.shape[0] == 1
            ):
                outputs[name] = (tuple(output.shape), output.dtype)
            else:
                outputs[name] = None

        return hook

    with HookScope() as hooks, torch.inference_mode():
        for name, module in named.items():
            if name:
                hooks.forward_pre(module, pre(name))
                hooks.forward(module, post(name))
        model(x_one)
    if len(starts.get(ref.module, [])) <= ref.call_index:
        raise RecorderError(f"layer {layer!r} did not run in the forward pass")
    layer_start = starts[ref.module][ref.call_index]
    trunk = [n for n in named if n and n in end and end[n] < layer_start]
    stubs: list[str] = []
    for name in trunk:  # named_modules order: parents before children
        if any(name.startswith(s + ".") for s in stubs):
            continue
        if calls.get(name) == 1 and outputs.get(name) is not None:
            stubs.append(name)
    placeholders = {n: torch.full(outputs[n][0], float("nan"), dtype=outputs[n][1], device=x_one.device) for n in stubs}
    reason = "" if stubs else "no module finishes before the layer starts: there is no trunk to skip"
    return TailPlan(layer=layer, stubs=tuple(stubs), placeholders=placeholders, trunk_modules=len(trunk), reason=reason)


class SubstitutedForward(ForwardPatcher):
    """While entered, ``self(x_rows, activations)`` runs ``model(x_rows)`` with the layer's output
    replaced by ``activations`` and the plan's trunk modules replaced by placeholders.

    With ``stubs=()`` the trunk is computed for real (the slow path): only the layer is replaced.
    """

    def __init__(self, model: nn.Module, layer: str, placeholders: dict[str, torch.Tensor] | None = None) -> None:
        self.model = model
        self.layer = layer
        self.ref = parse_layer(layer, dict(model.named_modules()))
        self.placeholders = dict(placeholders or {})
        self._acts: torch.Tensor | None = None
        self._saved: list[tuple[nn.Module, bool, Any]] = []
        self._calls = 0
        self._original: Callable | None = None

    def __enter__(self) -> SubstitutedForward:
        named = dict(self.model.named_modules())
        try:
            self._original = named[self.ref.module].forward
            self._patch(named[self.ref.module], self._layer_forward)
            for name, ph in self.placeholders.items():
                self._patch(named[name], self._stub_forward(ph))
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        self._acts = None

    def _layer_forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self._acts is None:
            raise ScoreError(f"layer {self.layer!r} ran outside a substituted forward")
        call = self._calls
        self._calls += 1
        if call != self.ref.call_index:
            assert self._original is not None  # saved by __enter__ before this forward was patched in
            return self._original(*args, **kwargs)  # another call site of a reused module
        if not self.ref.post_act:
            return self._acts
        marker = self._acts.view_as(self._acts)  # a new tensor object the activation will consume
        self._watch.watch(marker, self.layer)
        return marker

    def _hand_over(self, key: Any, func: Callable, args: tuple, kwargs: dict) -> torch.Tensor:
        assert self._acts is not None  # only the watch of a substituted forward calls this
        return self._acts  # the activation's output IS the substituted tensor

    def _stub_forward(self, placeholder: torch.Tensor) -> Callable:
        def forward(*args: Any, **kwargs: Any) -> torch.Tensor:
            batch = self._acts.shape[0] if self._acts is not None else 1
            return placeholder.expand(batch, *placeholder.shape[1:])

        return forward

    def __call__(self, x_rows: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
        """Logits of ``model`` on ``x_rows`` (B, ...) with the layer's output = ``activations`` (B, C, h, w)."""
        self._acts = activations
        self._calls = 0
        self._watch = TensorWatch(self._hand_over)
        try:
            with self._watch if self.ref.post_act else contextlib.nullcontext():
                return self.model(x_rows)
        finally:
            self._acts = None


def check_tail(
    model: nn.Module,
    x: torch.Tensor,
    layer: str,
    plan: TailPlan,
    activations: torch.Tensor,
    logits: torch.Tensor,
    batch_size: int,
) -> str:
    """Run the stubbed network on the unablated activations; "" if it reproduces ``logits``.

    Returns the reason for refusing the fast path otherwise. Batches of at most ``batch_size``.
    """
    outs = []
    try:
        with torch.inference_mode(), SubstitutedForward(model, layer, plan.placeholders) as run:
            for start in range(0, x.shape[0], batch_size):
                rows = slice(start, start + batch_size)
                outs.append(run(x[rows], activations[rows].clone()).float())
    except Exception as exc:  # noqa: BLE001 - any failure means: not separable this way
        return f"running only the tail failed ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})"
    out = torch.cat(outs)
    if out.shape != logits.shape:
        return f"the tail returned {tuple(out.shape)}, the model {tuple(logits.shape)}"
    if not torch.isfinite(out).all():
        return "a path from the input to the output bypasses the layer (e.g. a skip connection around it)"
    diff = float((out - logits).abs().max())
    tol = 1e-4 * (1.0 + float(logits.abs().max()))
    if diff > tol:
        return f"the tail alone does not reproduce the model's logits (max diff {diff:.3g} > {tol:.3g})"
    return ""
