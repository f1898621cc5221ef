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
  "its output" ambiguous: naming it is an error (never a silent mismatch) whose message lists the
  call sites ``relu#0``, ``relu#1`` ... that can be recorded instead; ``name:act`` records the
  output after the activation that follows the module (:mod:`methods.cams.core.sites`).

The explained score ``y`` is the pre-softmax logit of the target class, summed over the batch
(samples do not interact in eval mode, so each sample's gradient is its own).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from methods._internal.checks import is_int
from methods._internal.inputs import check_model_input
from methods._internal.torch_utils import HookScope, eval_mode
from methods.cams.core.layouts import Layout, ModelFacts, decide_layout, model_facts
from methods.cams.core.sites import LayerRef, TensorWatch, parse_layer, site_name
from methods.errors import LayerError, RecorderError, TargetError, brief

__all__ = [
    "LayerError",
    "TargetError",
    "RecorderError",
    "Recording",
    "layer_names",
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
        input_gradient: (N, C, H, W) d(logit of target)/dx, when asked for (``input_gradient=True``).
        site_gradients: ``"module#k"`` -> (N, C, h, w) gradient of call k's output, for the modules
            given as ``sites`` (every call), else None.
        layouts: layer -> the :class:`methods.cams.core.layouts.Layout` its output was read with
            (``"nchw"``, ``"nhwc"`` or ``"tokens"``); activations and gradients above are already
            converted to (N, C, h, w).
    """

    activations: dict[str, torch.Tensor]
    gradients: dict[str, torch.Tensor] | None
    logits: torch.Tensor
    targets: torch.Tensor
    input_gradient: torch.Tensor | None = None
    site_gradients: dict[str, torch.Tensor] | None = None
    layouts: dict[str, Layout] = field(default_factory=dict)


def layer_names(model: nn.Module, layers: str | nn.Module | Sequence[str | nn.Module]) -> list[str]:
    """The layer names of ``layers``: a name stays as it is; a module object (pytorch-grad-cam's
    ``target_layers=[model.layer4[-1]]`` habit) becomes its qualified name in
    ``model.named_modules()``, found by identity (a module registered under two names gets the first).

    Raises:
        LayerError: a module that is not inside ``model``, or ``model`` itself (the message names
            the module's class, never its printout).

    Examples:
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU())
        >>> layer_names(net, [net[1], "0"]), layer_names(net, net[0])
        (['1', '0'], ['0'])
    """
    items: list[Any] = [layers] if isinstance(layers, (str, nn.Module)) else list(layers)
    if not any(isinstance(item, nn.Module) for item in items):
        return list(items)
    names: dict[int, str] = {}
    for name, module in model.named_modules():
        names.setdefault(id(module), name)
    out: list = []
    for item in items:
        if not isinstance(item, nn.Module):
            out.append(item)
            continue
        name = names.get(id(item))
        if name is None:
            raise LayerError(
                f"layers: {brief(item)} is not inside the model (modules are matched by identity); pass one "
                "of the model's own modules (e.g. model.layer4[-1]) or its name (methods.candidate_layers lists them)"
            )
        if name == "":
            raise LayerError(f"layers: {brief(item)} is the model itself; name one of its modules instead")
        out.append(name)
    return out


def resolve_modules(model: nn.Module, layers: str | nn.Module | Sequence[str | nn.Module]) -> dict[str, nn.Module]:
    """Map each layer to its module, in the given order: the one layer check of the library.

    A layer is a module name, optionally with a call site ``#k`` and/or ``:act``
    (:mod:`methods.cams.core.sites`; the module of ``"act#1:act"`` is ``act``), or a module object
    of ``model`` (:func:`layer_names` turns it into its name, the key of maps and recordings).

    Raises:
        LayerError: no layer, a duplicate, a module not inside ``model``, or a name that is not a
            module of ``model`` (the message suggests the closest module names).
    """
    names = layer_names(model, layers)
    if not names:
        raise LayerError("layers is empty: name at least one layer")
    if len(set(map(str, names))) != len(names):
        raise LayerError(f"layers [{', '.join(map(brief, names))}] contain duplicates")
    named = dict(model.named_modules())
    found: dict[str, nn.Module] = {}
    for name in names:
        ref = parse_layer(name, named)
        found[ref.spec] = named[ref.module]
    return found


def _class_index(value, k: int) -> int:
    """One class index: an int (Python, numpy or a 0-d integer tensor); bools and floats are refused."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            raise TargetError(
                f"target {value.tolist()!r} ({value.dtype}) is not a class index; give an integer in [0, {k - 1}]"
            )
        value = value.item()
    if isinstance(value, (bool, np.bool_)):
        raise TargetError(f"target={value!r} is a bool; give a class index in [0, {k - 1}]")
    if not is_int(value):
        raise TargetError(
            f"target {brief(value)} is not a class index; give an integer in [0, {k - 1}] "
            "(floats are refused, never rounded)"
        )
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
    scalar = (
        is_int(target)
        or isinstance(target, (bool, float, np.bool_, np.floating))
        or (isinstance(target, torch.Tensor) and target.ndim == 0)
    )
    if scalar:
        values = [_class_index(target, k)] * n
    else:
        if isinstance(target, (torch.Tensor, np.ndarray)) and target.ndim != 1:
            raise TargetError(f"target must be None, an int or a sequence of {n} ints; got shape {tuple(target.shape)}")
        if not isinstance(target, (Sequence, torch.Tensor, np.ndarray)) or isinstance(target, (str, bytes)):
            raise TargetError(f"target must be None, an int or a sequence of {n} ints; got {brief(target)}")
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
    layers: str | nn.Module | Sequence[str | nn.Module] | Mapping[str, nn.Module],
    *,
    target: int | Sequence[int] | torch.Tensor | None = None,
    gradients: bool = True,
    input_gradient: bool = False,
    sites: Sequence[str] = (),
) -> Recording:
    """Run one forward (and, if ``gradients``, one backward) and record the given layers.

    Args:
        model: any ``nn.Module`` returning (N, K) logits.
        x: input batch (N, C, H, W), floating point and finite; not modified.
            A layer may output (N, C, h, w), transformer tokens (N, T, C) or channels-last
            (N, h, w, C): :mod:`methods.cams.core.layouts` decides which from the model's structure
            (or refuses); recordings are always (N, C, h, w), gradients taken on the original tensor.
        layers: layer names (module names, optionally with ``#k`` / ``:act``, see
            :mod:`methods.cams.core.sites`) or module objects of ``model`` to record, at least one;
            or the ``{name: module}`` mapping
            :func:`resolve_modules` returned (then nothing is looked up again).
        target: see :func:`resolve_targets`.
        gradients: also compute d(logit_target)/d(activation) for every layer.
        input_gradient: also compute d(logit_target)/dx (:attr:`Recording.input_gradient`).
        sites: module names whose output gradient is wanted at EVERY call
            (:attr:`Recording.site_gradients`, FullGrad's bias terms); implies gradients.

    Returns:
        A :class:`Recording`.

    Raises:
        InputError: ``x`` is not a finite floating-point (N, C, H, W) tensor, or does not fit the
            model (dtype or device of its weights, channels of its first convolution).
        LayerError: unknown layer name, or a layer whose output is not a map: not a tensor, or one
            whose layout cannot be decided (:mod:`methods.cams.core.layouts`).
        RecorderError: a layer that fires twice (name a call site ``#k``) or never, a ``#k``
            beyond the module's calls, a ``:act`` layer whose output is not passed to an
            activation next, or NaN / inf logits.
        TargetError: a bad target.

    Examples:
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Flatten(), nn.Linear(8, 3))
        >>> rec = record(net, torch.ones(1, 1, 2, 2), ["0"], target=1)
        >>> rec.activations["0"].shape, rec.gradients["0"].shape, rec.targets.tolist()
        (torch.Size([1, 2, 2, 2]), torch.Size([1, 2, 2, 2]), [1])
    """
    check_model_input(model, x)
    modules = (
        dict(layers)
        if isinstance(layers, Mapping) and not isinstance(layers, nn.Module)
        else resolve_modules(model, layers)
    )
    if not modules:
        raise LayerError("layers is empty: name at least one layer")
    named = dict(model.named_modules())
    refs = [parse_layer(spec, named) for spec in modules]
    site_modules = {name: named[name] for name in sites}
    gradients = gradients or input_gradient or bool(site_modules)

    by_module: dict[str, list[LayerRef]] = {}
    for ref in refs:
        by_module.setdefault(ref.module, []).append(ref)
    captured: dict[str, torch.Tensor] = {}
    site_outputs: dict[str, torch.Tensor] = {}
    calls: dict[str, int] = {name: 0 for name in set(by_module) | set(site_modules)}

    facts: list[ModelFacts] = []  # read from the model once, when a layer needs it
    layouts: dict[str, Layout] = {}
    spec_module = {r.spec: r.module for r in refs}

    def layout_of(spec: str, module: nn.Module, out: torch.Tensor) -> Layout:
        if out.ndim == 4 and not facts and isinstance(module, _PLAIN_FIRST):
            return Layout("nchw", int(out.shape[1]), (int(out.shape[2]), int(out.shape[3])))
        if not facts:
            facts.append(model_facts(model, (int(x.shape[-2]), int(x.shape[-1]))))
        return decide_layout(facts[0], spec, module, out, int(x.shape[0]))

    def on_activation(spec: str, func, args, kwargs):
        out = func(*args, **kwargs)
        if not isinstance(out, torch.Tensor) or out.ndim not in (3, 4):
            return out
        layouts[spec] = layout_of(spec, named[spec_module[spec]], out)
        captured[spec] = out
        return out.clone()  # downstream in-place ops change the clone, never the recorded tensor

    watch = TensorWatch(on_activation) if any(r.post_act for r in refs) else None

    def make_hook(name: str):
        wanted = by_module.get(name, [])
        is_site = name in site_modules

        def hook(module: nn.Module, inputs, output):
            k = calls[name]
            calls[name] += 1
            now = [r for r in wanted if r.call_index == k]
            if not now and not is_site:
                return None
            if now and not isinstance(output, torch.Tensor):
                raise LayerError(
                    f"layer {now[0].spec!r} ({type(module).__name__}) outputs {type(output).__name__}, not a "
                    "(N, C, h, w) map; choose a convolutional layer (methods.candidate_layers lists them)"
                )
            plain = [r for r in now if not r.post_act]
            if plain:
                layout = layout_of(plain[0].spec, module, output)
                layouts.update({r.spec: layout for r in plain})
            if not isinstance(output, torch.Tensor):
                return None
            if gradients and not output.requires_grad:
                output = output.detach().requires_grad_(True)  # graph starts here: params are frozen
            if is_site:
                site_outputs[site_name(name, k)] = output
            downstream = output.clone()  # downstream in-place ops change the clone, never ``output``
            for r in now:
                if r.post_act:
                    assert watch is not None  # made above whenever a ref has post_act
                    watch.watch(downstream, r.spec)
                else:
                    captured[r.spec] = output
            return downstream

        return hook

    grad_flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        with eval_mode(model), HookScope() as hooks:
            for p, _ in grad_flags:
                p.requires_grad_(False)
            for name in calls:
                hooks.forward(named[name], make_hook(name))
            x_in = x.detach().clone().requires_grad_(input_gradient)
            with torch.enable_grad() if gradients else torch.no_grad():
                with watch if watch is not None else contextlib.nullcontext():
                    logits = model(x_in)
                if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
                    raise RecorderError(
                        f"the model must return (N, classes) logits; it returned "
                        f"{tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__}"
                    )
                _check_finite(logits)
                _check_calls(refs, calls, captured, watch, named)
                targets = resolve_targets(target, logits)
                grads_out: dict[str, torch.Tensor] | None = None
                input_grad = None
                site_grads: dict[str, torch.Tensor] | None = None
                if gradients:
                    score = logits.gather(1, targets[:, None]).sum()
                    acts = [captured[r.spec] for r in refs]
                    site_keys = list(site_outputs)
                    wrt = acts + [site_outputs[k] for k in site_keys] + ([x_in] if input_gradient else [])
                    raw_grads = torch.autograd.grad(score, wrt, allow_unused=True)
                    grads = [
                        (g if g is not None else torch.zeros_like(t)).detach().float() for t, g in zip(wrt, raw_grads)
                    ]
                    grads_out = {r.spec: g for r, g in zip(refs, grads)}
                    site_grads = {k: g for k, g in zip(site_keys, grads[len(acts) :])} if site_modules else None
                    input_grad = grads[-1] if input_gradient else None
                    grads_out = {k: layouts[k].to_map(g) for k, g in grads_out.items()}
            activations = {r.spec: layouts[r.spec].to_map(captured[r.spec].detach()).float() for r in refs}
            return Recording(
                activations=activations,
                gradients=grads_out,
                logits=logits.detach().float(),
                targets=targets,
                input_gradient=input_grad,
                site_gradients=site_grads,
                layouts=dict(layouts),
            )
    finally:
        for p, flag in grad_flags:
            p.requires_grad_(flag)


#: Module types whose output is channels first whatever the model: no model facts needed for them.
_PLAIN_FIRST = (nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm)


def _check_finite(logits: torch.Tensor) -> None:
    """The logits are finite, or a RecorderError says so (a NaN would give a silent all-zero map)."""
    bad = (~torch.isfinite(logits.detach())).any(dim=1)  # (N,)
    if bool(bad.any()):
        rows = bad.nonzero()[:, 0].tolist()
        shown = ", ".join(map(str, rows[:8])) + (" ..." if len(rows) > 8 else "")
        raise RecorderError(
            f"the model returned non-finite logits (NaN or inf) for {len(rows)} of {len(bad)} sample(s) "
            f"(sample {shown}) from a finite input, so no map can be computed; check the model's weights "
            "and its numerics (an overflow, a division by zero)"
        )


def _check_calls(
    refs: list[LayerRef],
    calls: dict[str, int],
    captured: dict[str, torch.Tensor],
    watch: TensorWatch | None,
    named: Mapping[str, nn.Module],
) -> None:
    """After the forward: every layer ran exactly as its name says, or a RecorderError says why."""
    silent = [r.spec for r in refs if calls[r.module] == 0]
    if silent:
        raise RecorderError(
            f"layer(s) {', '.join(map(repr, silent))} did not run in the forward pass; "
            "choose layers that the model actually uses"
        )
    for r in refs:
        n = calls[r.module]
        kind = type(named[r.module]).__name__
        sites_text = ", ".join(repr(site_name(r.module, k)) for k in range(min(n, 6))) + (" ..." if n > 6 else "")
        if r.call is None and n > 1:
            raise RecorderError(
                f"layer {r.spec!r} ({kind}) runs more than once in one forward ({n} calls: the module object "
                f"is reused), so its activations and gradients cannot be paired. Name one call site: "
                f"{sites_text} (forward order), or record a module that runs once, e.g. its parent block."
            )
        if r.call is not None and r.call >= n:
            raise RecorderError(
                f"layer {r.spec!r}: module {r.module!r} ({kind}) runs {n} time(s) in one forward; "
                f"valid call sites: {sites_text}"
            )
        if r.post_act and r.spec not in captured:
            used = watch.first_use.get(r.spec) if watch is not None else None
            how = f"it goes to {used!r} first" if used else "nothing uses it"
            base = r.spec[: -len(":act")]
            raise RecorderError(
                f"layer {r.spec!r}: the output of {base!r} is not passed to an activation function next "
                f"({how}); record {base!r} itself"
            )
