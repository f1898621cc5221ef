"""One forward (+ one backward) that records activations and gradients of many layers.

How it works, and why:

* A forward hook on each chosen module keeps the module's output ``A`` and hands a *clone* of it
  downstream. Whatever the rest of the network does in place (torchvision's VGG follows every
  conv with ``ReLU(inplace=True)``) happens to the clone, so ``A`` stays the layer's own output and
  ``dy/dA`` is the gradient of that output — exactly the map of the same model with out-of-place
  ReLUs.
* Gradients come from ``torch.autograd.grad(y, [A_1, ..., A_L])`` on the recorded tensors, never
  from module backward hooks. Parameters are frozen for the duration of the call, so autograd
  builds a graph only from the earliest recorded layer onward and computes no parameter
  gradients; the backward stops at that layer.
* Hooks live for one call: registered inside ``try``, removed in ``finally``. The model's
  train/eval mode and every parameter's ``requires_grad`` flag are restored, and the caller's input
  is never modified (the forward runs on a detached copy).
* A module that fires twice in one forward (a shared ``ReLU`` object used twice in a block) makes
  the pairing of activation and gradient ambiguous: it is an error, never a silent mismatch.

The explained score ``y`` is the pre-softmax logit of the target class, summed over the batch
(samples do not interact in eval mode, so each sample's gradient is its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from methods._checks import is_int
from methods._inputs import check_model_input
from methods._torch import HookScope, eval_mode
from methods.errors import LayerError, RecorderError, TargetError, suggest

__all__ = [
    "LayerError",
    "TargetError",
    "RecorderError",
    "Recording",
    "record",
    "resolve_modules",
    "resolve_targets",
]


@dataclass(frozen=True)
class Recording:
    """What one recorded pass returns. All tensors are detached float32 on the input's device.

    Attributes:
        activations: layer -> (N, C, h, w) output of the layer.
        gradients: layer -> (N, C, h, w) d(logit of target)/d(activation); None if not requested.
        logits: (N, K) pre-softmax outputs.
        targets: (N,) explained class per sample.
    """

    activations: dict[str, torch.Tensor]
    gradients: dict[str, torch.Tensor] | None
    logits: torch.Tensor
    targets: torch.Tensor


def resolve_modules(model: nn.Module, layers: Sequence[str]) -> dict[str, nn.Module]:
    """Map each layer name to its module, in the given order: the one layer check of the library.

    Raises:
        LayerError: no layer, a duplicate, or a name that is not a module of ``model`` (the
            message suggests the closest module names).
    """
    layers = list(layers)
    if not layers:
        raise LayerError("layers is empty: name at least one layer")
    if len(set(layers)) != len(layers):
        raise LayerError(f"layers {layers} contain duplicates")
    named = dict(model.named_modules())
    found: dict[str, nn.Module] = {}
    for name in layers:
        if not isinstance(name, str) or name not in named or name == "":
            candidates = [n for n in named if n]
            raise LayerError(
                f"layer {name!r} is not a module of {type(model).__name__}."
                f"{suggest(str(name), candidates)} "
                "Use methods.candidate_layers(model) to list the layers that give spatial maps."
            )
        found[name] = named[name]
    return found


def _class_index(value, k: int) -> int:
    """One class index: an int (Python, numpy or a 0-d integer tensor); bools and floats are refused."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            raise TargetError(f"target {value.tolist()!r} ({value.dtype}) is not a class index; give an integer in "
                              f"[0, {k - 1}]")
        value = value.item()
    if isinstance(value, (bool, np.bool_)):
        raise TargetError(f"target={value!r} is a bool; give a class index in [0, {k - 1}]")
    if not is_int(value):
        raise TargetError(f"target {value!r} is not a class index; give an integer in [0, {k - 1}] "
                          "(floats are refused, never rounded)")
    return int(value)


def resolve_targets(target: int | Sequence[int] | torch.Tensor | None, logits: torch.Tensor) -> torch.Tensor:
    """The explained class per sample as a (N,) long tensor.

    Args:
        target: None = top-1 class of each sample; an int = that class for every sample; a sequence
            (or 1-D tensor) of N ints = one class per sample.
        logits: (N, K) model outputs.

    Raises:
        TargetError: wrong length (never silently truncated), out of range, or not integers.
    """
    n, k = logits.shape
    if target is None:
        return logits.argmax(dim=1)
    scalar = is_int(target) or isinstance(target, (bool, float, np.bool_, np.floating)) or (
        isinstance(target, torch.Tensor) and target.ndim == 0)
    if scalar:
        values = [_class_index(target, k)] * n
    else:
        if isinstance(target, (torch.Tensor, np.ndarray)) and target.ndim != 1:
            raise TargetError(f"target must be None, an int or a sequence of {n} ints; got shape {tuple(target.shape)}")
        if not isinstance(target, (Sequence, torch.Tensor, np.ndarray)) or isinstance(target, (str, bytes)):
            raise TargetError(f"target must be None, an int or a sequence of {n} ints; got {target!r}")
        values = [_class_index(t, k) for t in target]
        if len(values) != n:
            raise TargetError(
                f"target has {len(values)} entries but the batch has {n} samples; give one class per "
                "sample, a single int for all, or None for each sample's top-1 class"
            )
    bad = [v for v in values if not 0 <= v < k]
    if bad:
        raise TargetError(f"target class {bad[0]} is out of range: the model has {k} classes (0..{k - 1})")
    return torch.tensor(values, dtype=torch.long, device=logits.device)


def record(
    model: nn.Module,
    x: torch.Tensor,
    layers: Sequence[str] | Mapping[str, nn.Module],
    *,
    target: int | Sequence[int] | torch.Tensor | None = None,
    gradients: bool = True,
) -> Recording:
    """Run one forward (and, if ``gradients``, one backward) and record the given layers.

    Args:
        model: any ``nn.Module`` returning (N, K) logits.
        x: input batch (N, C, H, W), floating point and finite; not modified.
        layers: module names (``model.named_modules()``) to record, at least one; or the
            ``{name: module}`` mapping :func:`resolve_modules` returned (then nothing is looked up
            again).
        target: see :func:`resolve_targets`.
        gradients: also compute d(logit_target)/d(activation) for every layer.

    Returns:
        A :class:`Recording`.

    Raises:
        InputError: ``x`` is not a finite floating-point (N, C, H, W) tensor, or does not fit the
            model (dtype or device of its weights, channels of its first convolution).
        LayerError: unknown layer name, or a layer whose output is not a 4-D tensor.
        RecorderError: a layer that fires twice or never in the forward.
        TargetError: a bad target.

    Examples:
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Flatten(), nn.Linear(8, 3))
        >>> rec = record(net, torch.ones(1, 1, 2, 2), ["0"], target=1)
        >>> rec.activations["0"].shape, rec.gradients["0"].shape, rec.targets.tolist()
        (torch.Size([1, 2, 2, 2]), torch.Size([1, 2, 2, 2]), [1])
    """
    check_model_input(model, x)
    modules = dict(layers) if isinstance(layers, Mapping) else resolve_modules(model, layers)
    if not modules:
        raise LayerError("layers is empty: name at least one layer")

    captured: dict[str, torch.Tensor] = {}
    fired: dict[str, int] = {name: 0 for name in modules}

    def make_hook(name: str):
        def hook(module: nn.Module, inputs, output):
            fired[name] += 1
            if fired[name] > 1:
                raise RecorderError(
                    f"layer {name!r} ({type(module).__name__}) runs more than once in one forward "
                    "(the module object is reused), so its activations and gradients cannot be paired. "
                    "Record a module that runs once, e.g. its parent block."
                )
            if not isinstance(output, torch.Tensor) or output.ndim != 4:
                got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
                raise LayerError(
                    f"layer {name!r} ({type(module).__name__}) outputs {got}, not a (N, C, h, w) map; "
                    "choose a convolutional layer (methods.candidate_layers lists them)"
                )
            if gradients and not output.requires_grad:
                output = output.detach().requires_grad_(True)  # graph starts here: params are frozen
            captured[name] = output
            return output.clone()  # downstream in-place ops change the clone, never ``output``

        return hook

    grad_flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        with eval_mode(model), HookScope() as hooks:
            for p, _ in grad_flags:
                p.requires_grad_(False)
            for name, module in modules.items():
                hooks.forward(module, make_hook(name))
            x_in = x.detach().clone()
            with torch.enable_grad() if gradients else torch.no_grad():
                logits = model(x_in)
                if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
                    raise RecorderError(
                        f"the model must return (N, classes) logits; it returned "
                        f"{tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__}"
                    )
                silent = [name for name, count in fired.items() if count == 0]
                if silent:
                    raise RecorderError(
                        f"layer(s) {', '.join(map(repr, silent))} did not run in the forward pass; "
                        "choose layers that the model actually uses"
                    )
                targets = resolve_targets(target, logits)
                grads_out: dict[str, torch.Tensor] | None = None
                if gradients:
                    score = logits.gather(1, targets[:, None]).sum()
                    acts = [captured[name] for name in modules]
                    grads = torch.autograd.grad(score, acts, allow_unused=True)
                    grads_out = {
                        name: (g if g is not None else torch.zeros_like(a)).detach().float()
                        for name, a, g in zip(modules, acts, grads)
                    }
            activations = {name: captured[name].detach().float() for name in modules}
            return Recording(
                activations=activations,
                gradients=grads_out,
                logits=logits.detach().float(),
                targets=targets,
            )
    finally:
        for p, flag in grad_flags:
            p.requires_grad_(flag)
