"""One row per object: the maps and scores of every object of one image (detection, segmentation).

A detector's or segmenter's image holds several objects; each is its own explained target
(:mod:`methods.targets`: a :class:`~methods.targets.BoxTarget` per detected or ground-truth box, a
:class:`~methods.targets.RegionTarget` per segmented region). :func:`object_rows` explains each
object with every method and layer and scores each map with
:func:`methods.metrics.objects.object_scores` (pointing game, energy in the object, deletion and
insertion on the object's own score), next to the ``random`` and ``centre`` reference maps: the
rows :func:`methods.pipeline.evaluate.evaluate` writes for a classifier, one set per object.

:func:`detected_targets` makes the targets of a detector's own boxes (score >= ``min_score``); a data
set with ground truth makes them from its boxes or masks instead. Which label a ground-truth class
is in the detector's numbering (torchvision counts the background as 0) is the caller's to say:
nothing here guesses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from methods.cams.core.explain import explain_many
from methods.errors import OptionError
from methods.metrics.faithfulness.curves import reference_maps
from methods.metrics.objects import object_scores
from methods.targets import BoxTarget, Target, detect

__all__ = ["object_rows", "detected_targets"]


def detected_targets(model: Any, x: torch.Tensor, *, min_score: float = 0.5, max_objects: int = 20) -> list[BoxTarget]:
    """A :class:`BoxTarget` for each of the detector's boxes on ONE image ``x`` (1, 3, H, W) with a
    score >= ``min_score``, best first, at most ``max_objects``."""
    if not 0 <= float(min_score) <= 1 or int(max_objects) < 1:
        raise OptionError(f"min_score must be in [0, 1] and max_objects >= 1; got {min_score!r}, {max_objects!r}")
    d = detect(model, x)[0]
    keep = (d["scores"] >= float(min_score)).nonzero().flatten()[: int(max_objects)]
    return [BoxTarget(d["boxes"][i], int(d["labels"][i])) for i in keep.tolist()]


def object_rows(
    model: Any,
    x: torch.Tensor,
    targets: Sequence[Target],
    methods: Sequence[str],
    *,
    layers: Sequence[str] | None = None,
    image: str = "",
    references: bool = True,
    curves: bool = True,
    seed: int = 0,
    **curve_options: Any,
) -> list[dict]:
    """Rows ``{image, object, target, method, layer, score, pointing_hit, energy_pg, deletion_auc,
    insertion_auc, seconds}`` for each object x method x layer (and the references per layer).

    Args:
        model: the detector / segmenter (``nn.Module`` or LoadedModel).
        x: ONE preprocessed image (1, C, H, W) (torchvision detectors: RGB in [0, 1]).
        targets: one task target per object.
        methods: method keys (each must take the targets' kind: ``methods.list_methods(target=kind)``).
        layers: layer names (None: the model's default layer).
        image: the image's name, copied into each row.
        references: add the ``random`` and ``centre`` rows (seed ``seed``), scored the same way.
        curves: compute the deletion / insertion AUCs (else None): 2 x (steps + 1) forwards per map.
        seed: seed of the random reference map.
        **curve_options: :func:`methods.deletion_curve` options (``steps``, ``baseline``, ...).
    """
    rows: list[dict] = []
    for k, target in enumerate(targets):
        exps = explain_many(model, x, list(methods), layers=list(layers) if layers is not None else None, target=target)
        first = exps[methods[0]]
        score = float(first.logits[0, 0])
        maps: list[tuple[str, str, torch.Tensor, float]] = []
        for name in methods:
            for layer in first.layers:
                maps.append((name, layer, exps[name].maps[layer][0], exps[name].seconds))
        if references:
            for layer in first.layers:
                shape = first.maps[layer].shape
                for ref, m in reference_maps((int(shape[-2]), int(shape[-1])), seed=seed).items():
                    maps.append((ref, layer, m, 0.0))
        for name, layer, sal, seconds in maps:
            s = object_scores(model, x, sal, target, curves=curves, seed=seed, **curve_options)
            rows.append(
                dict(
                    image=image,
                    object=k,
                    target=target.describe(),
                    method=name,
                    layer=layer,
                    score=score,
                    pointing_hit=s.pointing["map"],
                    energy_pg=s.energy["map"],
                    deletion_auc=s.deletion.get("map"),
                    insertion_auc=s.insertion.get("map"),
                    seconds=seconds,
                )
            )
    return rows
