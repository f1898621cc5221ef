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

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import nn

from methods.errors import InputError, LayerError, RecorderError, TargetError, suggest

__all__ = [
    "eval_mode",
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


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every module in eval mode for the block; restore each module's OWN flag afterwards
    (a model may mix modes, e.g. a frozen BatchNorm kept in eval inside a training model)."""
    flags = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield model
    finally:
        for m, flag in flags:
            m.training = flag


def resolve_modules(model: nn.Module, layers: Sequence[str]) -> dict[str, nn.Module]:
    """Map each layer name to its module; an unknown name raises :class:`LayerError`."""
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
    if isinstance(target, bool):
        raise TargetError(f"target={target!r} is a bool; give a class index in [0, {k - 1}]")
    if isinstance(target, int) or (isinstance(target, torch.Tensor) and target.ndim == 0):
        values = [int(target)] * n
    else:
        try:
            values = [int(t) for t in target]  # type: ignore[union-attr]
        except (TypeError, ValueError) as exc:
            raise TargetError(
                f"target must be None, an int or a sequence of {n} ints; got {target!r}"
            ) from exc
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
    layers: Sequence[str],
    *,
    target: int | Sequence[int] | torch.Tensor | None = None,
    gradients: bool = True,
) -> Recording:
    """Run one forward (and, if ``gradients``, one backward) and record the given layers.

    Args:
        model: any ``nn.Module`` returning (N, K) logits.
        x: input batch (N, C, H, W); not modified.
        layers: module names (``model.named_modules()``) to record; at least one.
        target: see :func:`resolve_targets`.
        gradients: also compute d(logit_target)/d(activation) for every layer.

    Returns:
        A :class:`Recording`.

    Raises:
        LayerError: unknown layer name, or a layer whose output is not a 4-D tensor.
        RecorderError: a layer that fires twice or never in the forward.
        TargetError: a bad target.
    """
    if not layers:
        raise LayerError("layers is empty: name at least one layer")
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a (N, C, H, W) tensor; got {shape}")
    modules = resolve_modules(model, layers)

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
    handles = []
    stack = ExitStack()
    try:
        stack.enter_context(eval_mode(model))
        for p, _ in grad_flags:
            p.requires_grad_(False)
        for name, module in modules.items():
            handles.append(module.register_forward_hook(make_hook(name)))
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
        for handle in handles:
            handle.remove()
        for p, flag in grad_flags:
            p.requires_grad_(flag)
        stack.close()
