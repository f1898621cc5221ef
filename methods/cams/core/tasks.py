"""How :func:`methods.explain_many` takes a target of any kind (:mod:`methods.targets`).

* ``None``, an int, N ints, a 1-D integer tensor: a classifier's class, unchanged;
  a :class:`methods.targets.ClassTarget` (or N of them) becomes its int.
* one task target (box, region, embedding): the call explains ``target.view(model)``, whose
  forward returns (N, 1) scores, with class 0 — every sample scored against that one reference.
* N task targets (one per sample): one call per sample, the results concatenated along the batch
  (maps, scores); each sample's maps equal a call with that sample alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch

from methods.errors import TargetError
from methods.targets import ClassTarget, Target

__all__ = ["split_target", "concat_explanations"]


def split_target(target: Any, n: int) -> tuple[str, Any]:
    """``("class", int-like target)``, ``("task", Target)`` or ``("per_sample", [Target] * n)``."""
    if isinstance(target, ClassTarget):
        return "class", target.index
    if isinstance(target, Target):
        return "task", target
    if isinstance(target, Sequence) and not isinstance(target, (str, bytes)) and target:
        items = list(target)
        if all(isinstance(t, ClassTarget) for t in items):
            return "class", [t.index for t in items]
        if any(isinstance(t, Target) for t in items):
            if not all(isinstance(t, Target) and not isinstance(t, ClassTarget) for t in items):
                raise TargetError(
                    "target mixes task targets with class indices; give one kind: N ints, or N box/region/"
                    "embedding targets"
                )
            if len(items) != n:
                raise TargetError(
                    f"target has {len(items)} task targets but the batch has {n} samples; give one per "
                    "sample, or ONE target to score every sample against"
                )
            return "per_sample", items
    return "class", target


def concat_explanations(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One ``{method: Explanation}`` from per-sample ones (maps, targets, scores concatenated; a
    map tensor shared by several layers stays shared)."""
    out: dict[str, Any] = {}
    for name, first in parts[0].items():
        exps = [p[name] for p in parts]
        maps: dict[str, torch.Tensor] = {}
        joined: dict[tuple[int, ...], torch.Tensor] = {}
        for layer in first.layers:
            key = tuple(id(e.maps[layer]) for e in exps)
            if key not in joined:
                joined[key] = torch.cat([e.maps[layer] for e in exps])
            maps[layer] = joined[key]
        notes = tuple(dict.fromkeys(n for e in exps for n in e.notes))
        out[name] = replace(
            first,
            maps=maps,
            targets=torch.cat([e.targets for e in exps]),
            logits=torch.cat([e.logits for e in exps]),
            probs=torch.cat([e.probs for e in exps]),
            seconds=sum(e.seconds for e in exps),
            notes=notes,
            target=tuple(e.target for e in exps),
        )
    return out


def per_sample(run: Callable[..., dict[str, Any]], x: torch.Tensor, targets: list[Target], **kwargs: Any) -> dict:
    """``run(x[i:i+1], target=targets[i], **kwargs)`` for each sample, concatenated."""
    return concat_explanations([run(x[i : i + 1], target=t, **kwargs) for i, t in enumerate(targets)])
