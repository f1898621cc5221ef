"""The Advisor's grid: which methods, at which layers, and the sanity check that drops methods.

* methods — the caller's, or :data:`methods.advisor.options.DEFAULT_METHODS` (those registered that
  apply to the model); a slow method (``MethodSpec.slow``: the score family, RISE, occlusion) is
  refused unless ``include_slow``; a layer-independent method (guided backprop ...) is scored once,
  on the input's grid (layer ``"input"``); CAM only where it works (a layer that reaches the logits
  by global average pooling and one linear map);
* layers ``"auto"`` — the model's default layer and the last module of up to ``max_layers - 1``
  earlier stages: siblings of the default layer (same parent module) after which the output's
  channels or grid change, pooling layers left out (scenes_vgg: ``features.6, features.13,
  features.20``; scenes_resnet: ``layer2, layer3, layer4``);
* sanity — the model-parameter randomization test (Adebayo et al. 2018,
  https://arxiv.org/abs/1810.03292; :func:`methods.metrics.sanity.check.sanity_check`, cascading,
  its default verdict: Spearman with the trained map below 0.5 once the top half of the blocks is
  random) on the first ``n_sanity`` images, at the method's deepest grid layer. A method FAILS when
  more of its verdicts fail than pass; "cannot tell" verdicts (a constant map) count for neither.
  Deviation: the paper judges by eye over many images; this is a small-sample screen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from methods.advisor.options import DEFAULT_METHODS, AdviseOptions
from methods.advisor.work import INPUT
from methods.cams.core.explain import explain_many, resolve_layers
from methods.cams.core.layers import LayerInfo, candidate_layers
from methods.cams.core.registry import get_method, list_methods
from methods.errors import GradLensError, HeadError, OptionError
from methods.metrics.sanity.check import sanity_check
from methods.pipeline.common import layers_arg, method_names

__all__ = ["SanityVerdict", "choose_methods", "auto_layers", "choose_layers", "method_grid", "sanity_screen"]


@dataclass(frozen=True)
class SanityVerdict:
    """A method's sanity screen: ``passes`` (True / False / None = cannot tell), the layer, the
    per-image verdicts (True / False / None) and one sentence per image."""

    method: str
    label: str
    layer: str
    passes: bool | None
    verdicts: tuple[bool | None, ...]
    texts: tuple[str, ...]


def choose_methods(loaded: Any, options: AdviseOptions) -> tuple[list[str], list[str]]:
    """``(methods to evaluate, notes)``.

    Raises:
        UnknownMethodError: an unknown key (with suggestions). OptionError: a slow method without
            ``include_slow``, or a method that does not apply to the model.
    """
    notes: list[str] = []
    if options.methods:
        names = method_names(list(options.methods))
    else:
        known = {s.name for s in list_methods()}
        names = [m for m in DEFAULT_METHODS if m in known and get_method(m).why_not(loaded.model) is None]
    for name in names:
        spec = get_method(name)
        why = spec.why_not(loaded.model)
        if why:
            raise OptionError(f"method {name!r} does not apply to this model: {why}")
        if spec.slow and not options.include_slow:
            raise OptionError(
                f"method {name!r} is slow ({spec.cost}); pass include_slow=True (--include-slow) to evaluate it"
            )
    return names, notes


def auto_layers(loaded: Any, max_layers: int) -> list[str]:
    """The default layer and the last module of up to ``max_layers - 1`` earlier stages (module docstring)."""
    infos: list[LayerInfo] = candidate_layers(loaded.model, tuple(loaded.input_size))
    default = loaded.default_layer or (infos[-1].name if infos else None)
    if default is None:
        raise OptionError("the model has no layer with a spatial output: give layers by name")
    parent = default.rpartition(".")[0]
    siblings = [i for i in infos if i.name.rpartition(".")[0] == parent and not i.no_op]
    before = [i for i in siblings if i.index < next((s.index for s in siblings if s.name == default), 10**9)]
    ends = []
    for a, b in zip(before, before[1:] + [s for s in siblings if s.name == default][:1]):
        if a.shape != b.shape and "Pool" not in a.type:
            ends.append(a.name)
    return ends[-(max_layers - 1) :] + [default] if max_layers > 1 else [default]


def choose_layers(loaded: Any, options: AdviseOptions) -> list[str]:
    """The candidate layers (names checked against the model).

    Raises:
        LayerError: an unknown name (with suggestions).
    """
    if options.layers == "auto":
        names = auto_layers(loaded, options.max_layers)
    else:
        arg = layers_arg(options.layers if isinstance(options.layers, str) else list(options.layers))
        names = list(resolve_layers(loaded.model, arg, tuple(loaded.input_size), loaded.default_layer))
    resolve_layers(loaded.model, names, tuple(loaded.input_size), loaded.default_layer)
    return names


def method_grid(
    loaded: Any, names: Sequence[str], layers: Sequence[str]
) -> tuple[list[tuple[str, tuple[str, ...]]], list[str]]:
    """``([(method, its layers)], notes)``: layer-independent methods on ``(INPUT,)``; a
    final-layer-only method (CAM) on the layers where one forward on zeros shows it works."""
    grid: list[tuple[str, tuple[str, ...]]] = []
    notes: list[str] = []
    x0 = torch.zeros(1, 3, *tuple(loaded.input_size))
    for name in names:
        spec = get_method(name)
        if spec.layer_independent:
            grid.append((name, (INPUT,)))
            continue
        if spec.final_layer_only:
            ok = []
            for layer in layers:
                try:
                    explain_many(loaded, x0, [name], layers=[layer], target=0)
                    ok.append(layer)
                except HeadError:
                    pass
            if not ok:
                notes.append(
                    f"{spec.label} works at none of the layers {list(layers)} (it needs the layer before GAP + one linear map): left out"
                )
                continue
            grid.append((name, tuple(ok)))
            continue
        grid.append((name, tuple(layers)))
    return grid, notes


def sanity_screen(
    loaded: Any,
    grid: Sequence[tuple[str, tuple[str, ...]]],
    samples: Sequence[Any],
    *,
    seed: int = 0,
    tick: Callable[[], None] | None = None,
) -> list[SanityVerdict]:
    """The sanity verdict of every method of ``grid`` on ``samples`` (see the module docstring);
    ``tick()`` after each check (it may raise Cancelled)."""
    out = []
    for name, layers in grid:
        layer = loaded.default_layer if layers == (INPUT,) else layers[-1]
        verdicts: list[bool | None] = []
        texts: list[str] = []
        label = get_method(name).label
        for sample in samples:
            x = loaded.preprocess(sample.image)[None]  # (1, 3, H, W)
            target = sample.labels[0] if sample.labels else None
            try:
                v = sanity_check(loaded, x, method=name, layer=layer, target=target, seed=seed).verdict()
                verdicts.append(v.passes)
                texts.append(f"{sample.name}: {v.text}")
            except GradLensError as exc:
                verdicts.append(None)
                texts.append(f"{sample.name}: could not run the check ({exc})")
            if tick is not None:
                tick()
        fails, passes = verdicts.count(False), verdicts.count(True)
        verdict = None if fails == passes == 0 else (fails <= passes)
        out.append(SanityVerdict(name, label, layer, verdict, tuple(verdicts), tuple(texts)))
    return out
