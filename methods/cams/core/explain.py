"""The public entry points: :func:`explain` and :func:`explain_many`.

Every method of one call reads ONE recorded forward (+ backward) over all requested layers
(:func:`methods.cams.core.recorder.record`): the gradient and activation families and the baselines
are computed from it alone; FullGrad takes its input and bias gradients from the same pass; the
score family and the pixel perturbation methods (RISE, occlusion) run their own forwards, reusing
that pass's activations, logits and targets; work two methods share (the augmented passes of
``aug_smooth=True``, the guided backward of guided backprop and Guided Grad-CAM) runs once.

How maps are keyed. ``Explanation.maps`` is always ``{layer: (N, h, w) or (N, H, W)}`` with one
entry per requested layer, for every method, so code that loops over ``exp.layers`` works the
same whatever the method:

* layer maps (``spec.resolution == "layer"``) are at the layer's grid;
* input-resolution maps (``"input"``, the pixel family) are (N, H, W) at the input's size;
  a layer-independent method (``spec.layer_independent``: guided backprop, FullGrad, RISE,
  occlusion) computes ONE map per call, whatever ``layers`` says (None, ``"all"``, names), and
  every layer key holds that same tensor (not a copy; treat maps as read-only). Guided Grad-CAM is
  input-resolution but layer-dependent (its Grad-CAM factor comes from the layer).
  ``Explanation.resolution`` says which kind a map is; :meth:`Explanation.upsampled` is the
  identity for input-resolution maps.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union

import torch
from torch import nn

from methods._internal.inputs import check_model_input
from methods._internal.progress import Progress
from methods._internal.torch_utils import ModelLike, eval_mode, resolve_precision, unwrap_model, upsample
from methods.cams.core.base import CallContext, CamMethod, sub_progress
from methods.cams.core.layers import candidate_layers, default_layer
from methods.cams.core.recorder import record, resolve_modules
from methods.cams.core.registry import create_method
from methods.cams.core.tasks import per_sample, split_target
from methods.errors import GradLensWarning, LayerError, OptionError, TargetError, WrongTypeError, brief
from methods.targets import Target, TargetView
from methods.targets.outputs import padding_note

__all__ = ["Explanation", "explain", "explain_many", "resolve_layers"]

LayerSpec = Union[None, Literal["all"], str, nn.Module, Sequence[Union[str, nn.Module]]]
ClassSpec = Union[None, int, Sequence[int], torch.Tensor]
TargetSpec = Union[ClassSpec, Target, Sequence[Target]]


@dataclass(frozen=True)
class Explanation:
    """The maps of one method for a batch.

    Attributes:
        method: registry key of the method.
        maps: layer -> (N, h, w) float32 RAW map (signed, un-normalized, layer resolution).
        layers: the layers, in the order requested.
        targets: (N,) explained class per sample (0 for a task target: the view's one score column).
        logits: (N, K) pre-softmax outputs; for a task target (box, region, embedding) the (N, 1)
            scores of the explained input.
        probs: (N, K) softmax of ``logits``; for a task target the scores themselves (N, 1).
        input_size: (H, W) of the explained input.
        seconds: wall time of this method's share of the call (the shared pass counted once per method).
        options: the method's options; a ``precision`` option records the precision that RAN
            (``"auto"`` resolved for the input's device: ``"fp32"`` or ``"bf16"``).
        notes: what the user should know about these maps (messages the method warned with a
            :class:`methods.errors.GradLensWarning`, e.g. a slower route or a signed layer).
        resolution: ``"layer"`` (maps at each layer's grid) or ``"input"`` (maps at the input's
            size; see the module docstring for how such maps are keyed).
        precision: the precision the map's computation RAN in: ``"fp32"`` for the gradient,
            activation and baseline families (always fp32), the resolved ``precision`` option
            (``"fp32"`` or ``"bf16"``) for methods that run their own forwards.
        target: the task target explained (:mod:`methods.targets`; a tuple of them when each sample
            had its own), None for a class target.
    """

    method: str
    maps: dict[str, torch.Tensor]
    layers: tuple[str, ...]
    targets: torch.Tensor
    logits: torch.Tensor
    probs: torch.Tensor
    input_size: tuple[int, int]
    seconds: float = 0.0
    options: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    resolution: str = "layer"
    precision: str = "fp32"
    target: Any = None

    def upsampled(self, layer: str | None = None, size: tuple[int, int] | None = None) -> torch.Tensor:
        """The raw map of ``layer`` resized to ``size`` (default: the input size), bilinear,
        ``align_corners=False``. Returns (N, H, W). ``layer`` may be omitted when there is one."""
        if layer is None:
            if len(self.layers) != 1:
                raise LayerError(f"this explanation has {len(self.layers)} layers; name one of {list(self.layers)}")
            layer = self.layers[0]
        if layer not in self.maps:
            raise LayerError(f"layer {brief(layer)} is not in this explanation; it has {list(self.layers)}")
        return upsample(self.maps[layer], size if size is not None else self.input_size)  # (N, H, W)


def resolve_layers(
    model: nn.Module, layers: LayerSpec, input_size: tuple[int, int], default: str | None = None
) -> dict[str, nn.Module]:
    """Turn the ``layers`` argument into ``{name: module}``, in order: the call's one layer check.

    None -> the model's default layer; ``"all"`` -> every candidate layer (spatial 4-D outputs, in
    forward order, modules that run once); a name, a module of ``model`` (``model.layer4``, matched
    by identity and keyed by its name) or a list of both -> checked against
    ``model.named_modules()``. The modules are handed down to the recorder and to the forward
    methods (:attr:`LayerContext.module`), so nothing looks a layer up twice.

    Raises:
        LayerError: an empty list, a duplicate, a module not inside ``model``, or a name that is
            not a module (with suggestions).
    """
    names: list[str | nn.Module]
    if layers is None:
        names = [default] if default else [default_layer(model, input_size=input_size)]
    elif isinstance(layers, str):
        names = [info.name for info in candidate_layers(model, input_size=input_size)] if layers == "all" else [layers]
    elif isinstance(layers, nn.Module):  # before the sequence case: an nn.Sequential iterates its children
        names = [layers]
    else:
        names = list(layers)
        if not names:
            raise LayerError("layers is an empty list; give layer names, 'all' or None for the default layer")
    return resolve_modules(model, names)


def _instantiate(methods: Iterable[str | CamMethod], options: Mapping[str, Mapping[str, Any]]) -> list[CamMethod]:
    out: list[CamMethod] = []
    for m in methods:
        if isinstance(m, CamMethod):
            out.append(m)
        else:
            out.append(create_method(m, **dict(options.get(m, {}))))
    names = [m.spec.name for m in out]
    if len(set(names)) != len(names):
        raise OptionError(f"methods {names} contain duplicates")
    if not out:
        raise OptionError("methods is empty; name at least one method (methods.list_methods() lists them)")
    return out


def _check_kinds(configured: Sequence[CamMethod], kind: str) -> None:
    """Every method explains this kind of target (``MethodSpec.targets``), or a TargetError says so."""
    for m in configured:
        kinds = getattr(m.spec, "targets", ())
        if kind not in kinds:
            what = "a class index" if kind == "class" else f"a {kind} target"
            raise TargetError(
                f"{m.spec.label} explains only {', '.join(kinds)} targets and the target is {what}; "
                f"pass one of those (methods.targets) or choose another method (methods.list_methods(target={kind!r}))"
            )


def _clean(m: torch.Tensor) -> torch.Tensor:
    """float32, finite (a NaN or inf becomes 0: never NaN in a map)."""
    return torch.nan_to_num(m.detach().float(), nan=0.0, posinf=0.0, neginf=0.0)


def explain_many(
    model: ModelLike,
    x: torch.Tensor,
    methods: Sequence[str | CamMethod] = ("gradcam",),
    *,
    layers: LayerSpec = None,
    target: TargetSpec = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Progress | None = None,
) -> dict[str, Explanation]:
    """Explain ``x`` with several methods; all recorded methods share ONE forward+backward.

    Args:
        model: an ``nn.Module`` (returning (N, K) logits) or a ``LoadedModel``.
        x: preprocessed input (N, 3, H, W); never modified.
        methods: registry keys (or configured method objects).
        layers: None (default layer), ``"all"``, a name, a module of the model, or a list of
            names and modules.
        target: None (top-1 per sample), an int, or N ints (a classifier's class); a task target
            (:class:`methods.targets.BoxTarget`, ``RegionTarget``, ``EmbeddingTarget``) scored for
            every sample, or N of them (one per sample: one call per sample, concatenated).
        options: per-method keyword options, ``{"random": {"seed": 3}}``.
        progress: ``(done, total)`` callback for forward methods (score family).

    Returns:
        method key -> :class:`Explanation`; each equals a separate :func:`explain` call.

    Examples:
        >>> import torch, methods
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
        ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
        >>> many = methods.explain_many(net, torch.rand(1, 3, 8, 8), ["gradcam", "hirescam"], layers="all")
        >>> sorted(many), many["gradcam"].layers
        (['gradcam', 'hirescam'], ('0', '1'))

    Raises:
        UnknownMethodError, LayerError, TargetError, RecorderError (all ``GradLensError``).
    """
    net, default = unwrap_model(model)
    check_model_input(net, x)
    kind, target = split_target(target, int(x.shape[0]))
    if kind == "per_sample":
        assert isinstance(target, list)  # split_target gives the N task targets
        configured_many = _instantiate(methods, options or {})
        return per_sample(
            lambda xi, target: explain_many(
                model, xi, configured_many, layers=layers, target=target, progress=progress
            ),
            x,
            target,
        )
    configured = _instantiate(methods, options or {})
    _check_kinds(configured, target.kind if isinstance(target, Target) else "class")
    class_target: ClassSpec = target  # type: ignore[assignment]  # split_target left a class spec or a Target
    notes: tuple[str, ...] = ()
    if isinstance(target, Target):  # a box, region or embedding: explain its (N, 1) score view
        note = padding_note(net, (int(x.shape[-2]), int(x.shape[-1])))
        notes = (note,) if note else ()
        net, class_target = target.view(net), 0
    input_size = (int(x.shape[-2]), int(x.shape[-1]))
    modules = resolve_layers(net, layers, input_size, default)

    with eval_mode(net):  # forward methods too run the model in eval mode; each flag restored after
        return _explain_in_eval(net, x, configured, modules, input_size, class_target, progress, notes)


def _explain_in_eval(
    net: nn.Module,
    x: torch.Tensor,
    configured: list[CamMethod],
    modules: dict[str, nn.Module],
    input_size: tuple[int, int],
    target: ClassSpec,
    progress: Progress | None,
    call_notes: tuple[str, ...] = (),
) -> dict[str, Explanation]:
    needs = [m.recording_needs(net) for m in configured]
    start = time.perf_counter()
    layer_names = list(modules)
    view = net if isinstance(net, TargetView) else None
    with view.strict_scores() if view is not None else contextlib.nullcontext():  # the input must hold the target
        rec = record(
            net,
            x,
            modules,
            target=target,
            gradients=any(n.gradients for n in needs),
            input_gradient=any(n.input_gradient for n in needs),
            sites=list(dict.fromkeys(s for n in needs for s in n.sites)),
        )
    shared_seconds = time.perf_counter() - start
    probs = rec.logits if view is not None else rec.logits.softmax(dim=1)  # a task score is no logit

    units = [m.progress_units(len(layer_names)) for m in configured]
    total_units = sum(units)
    cache: dict = {}
    results: dict[str, Explanation] = {}
    done = 0
    for method, n_units in zip(configured, units):
        if not isinstance(method, CamMethod):
            raise WrongTypeError(f"{type(method).__name__} is not a CamMethod")
        t0 = time.perf_counter()
        call = CallContext(
            model=net,
            x=x,
            modules=modules,
            recording=rec,
            progress=sub_progress(progress, done, n_units, total_units),
            cache=cache,
        )
        done += n_units
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            raw = method.explain_layers(call)
            maps = _clean_maps(raw, layer_names)
        for message, w in _collapsed(caught, len(layer_names)):  # passed on to the caller's filters, once
            warnings.warn_explicit(message, w.category, w.filename, w.lineno, source=w.source)
        notes = tuple(
            dict.fromkeys([*call_notes, *(str(w.message) for w in caught if issubclass(w.category, GradLensWarning))])
        )
        options = _recorded_options(method, x.device)
        results[method.spec.name] = Explanation(
            method=method.spec.name,
            maps=maps,
            layers=tuple(layer_names),
            targets=rec.targets,
            logits=rec.logits,
            probs=probs,
            input_size=input_size,
            seconds=shared_seconds + time.perf_counter() - t0,
            options=options,
            notes=notes,
            resolution=method.spec.resolution,
            precision=str(options.get("precision", "fp32")),
            target=getattr(view.target, "source", view.target) if view is not None else None,
        )
    return results


def _collapsed(caught: Sequence[warnings.WarningMessage], n_layers: int) -> list[tuple[Warning | str, Any]]:
    """The warnings a method's computation raised, as the caller sees them: each distinct message
    once, and the per-layer warnings of one kind (a :class:`GradLensWarning` with ``layer`` and
    ``kind``) as ONE line for all their layers; each layer's full message stays in the notes."""
    groups: dict[tuple, list[warnings.WarningMessage]] = {}
    layers: dict[tuple, list[str]] = {}
    for w in caught:
        m = w.message
        if isinstance(m, GradLensWarning) and m.layer is not None and m.kind is not None:
            key: tuple = (w.category, m.label, m.kind, m.advice)
            layers.setdefault(key, []).append(m.layer)
        else:
            key = (w.category, str(m))
        groups.setdefault(key, []).append(w)
    out: list[tuple[Warning | str, Any]] = []
    for key, ws in groups.items():
        first = ws[0].message
        if key not in layers or not isinstance(first, GradLensWarning):
            out.append((first, ws[0]))
            continue
        names = list(dict.fromkeys(layers[key]))
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        verb = "is" if len(names) == 1 else "are"
        line = (
            f"{first.label}: {len(names)} of {n_layers} layer{'s' if n_layers != 1 else ''} {verb} "
            f"{first.kind} ({shown})"
            + (f": {first.advice}" if first.advice else "")
            + " (details per layer: Explanation.notes)"
        )
        out.append((type(first)(line, label=first.label, kind=first.kind, advice=first.advice), ws[0]))
    return out


def _recorded_options(method: CamMethod, device: torch.device) -> dict[str, Any]:
    """The options an Explanation records: ``precision="auto"`` becomes the precision that ran on
    ``device`` (:func:`methods._internal.torch_utils.resolve_precision`, the rule the method's runner applies)."""
    opts = dict(method.options)
    if opts.get("precision") == "auto":
        opts["precision"] = resolve_precision("auto", device)
    return opts


def _clean_maps(raw: Mapping[str, torch.Tensor], layer_names: Sequence[str]) -> dict[str, torch.Tensor]:
    """float32 and finite, one entry per layer; one tensor shared by several layers stays shared."""
    cleaned: dict[int, torch.Tensor] = {}
    out: dict[str, torch.Tensor] = {}
    for layer in layer_names:
        m = raw[layer]
        if id(m) not in cleaned:
            cleaned[id(m)] = _clean(m)
        out[layer] = cleaned[id(m)]
    return out


def explain(
    model: ModelLike,
    x: torch.Tensor,
    method: str | CamMethod = "gradcam",
    *,
    layers: LayerSpec = None,
    target: TargetSpec = None,
    progress: Progress | None = None,
    **options: Any,
) -> Explanation:
    """Explain ``x`` with one method.

    Args:
        model: an ``nn.Module`` returning (N, K) logits, or a ``LoadedModel``.
        x: preprocessed input (N, 3, H, W); never modified.
        method: registry key (``methods.list_methods()``), a peer library's name for the same
            method (``"GradCAMPlusPlus"``, :data:`methods.cams.core.registry.ALIASES`) or a
            configured method object.
        layers: None = the model's default layer; a name or list of names from
            ``model.named_modules()``, or the modules themselves (``model.layer4``,
            ``[model.layer4[-1]]``; maps are keyed by their names); ``"all"`` = every candidate layer.
        target: None = top-1 class per sample; an int for all samples; N ints (a length mismatch is
            an error). The explained score is the pre-softmax logit of that class. A task target
            (:mod:`methods.targets`: ``BoxTarget``, ``RegionTarget``, ``EmbeddingTarget``) or N
            of them explains that target's score instead (docs/targets.md).
        progress: ``(done, total)`` callback, used by the slow (score) methods.
        **options: the method's keyword options (e.g. ``seed=3`` for ``random``).

    Returns:
        An :class:`Explanation` with raw maps per layer: ``maps[layer]`` is (N, h, w).

    Raises:
        UnknownMethodError, OptionError, LayerError, TargetError, InputError, RecorderError (all
        :class:`methods.GradLensError`).

    Examples:
        >>> import torch, methods
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
        ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
        >>> exp = methods.explain(net, torch.rand(2, 3, 8, 8), "gradcam", layers="1", target=0)
        >>> exp.maps["1"].shape, exp.targets.tolist()
        (torch.Size([2, 8, 8]), [0, 0])
        >>> methods.explain(net, torch.rand(1, 3, 8, 8), "gradcm")
        Traceback (most recent call last):
        ...
        methods.errors.UnknownMethodError: unknown method 'gradcm'. Did you mean 'gradcam', ...
    """
    if isinstance(method, CamMethod):
        if options:
            raise WrongTypeError("pass options when constructing the method object, not to explain()")
        configured = method
    else:
        configured = create_method(method, **options)
    results = explain_many(model, x, [configured], layers=layers, target=target, progress=progress)
    return results[configured.spec.name]
