"""The metrics the Advisor ranks by: a small table, so a new metric is one entry and one scorer.

Each :class:`AdvisorMetric` names its column in the scores table, which way is better, which
normalizations leave it unchanged (:mod:`methods.advisor.normalizations`), whether it needs object
masks, and its SCORER: a function that scores every map of one image and explained class at once
(maps of one image share forwards). Scorers:

* ``"curves"`` — :func:`methods.metrics.faithfulness.image_scores.image_scores`, the evaluate
  command's scorer: RISE deletion and insertion AUCs (Petsiuk et al. 2018,
  https://arxiv.org/abs/1806.07421) and Grad-CAM++'s Average Drop (Chattopadhyay et al. 2018,
  https://arxiv.org/abs/1710.11063);
* ``"masks"`` — the pointing game (Zhang et al. 2016, https://arxiv.org/abs/1608.00507) and the
  energy-based pointing game (Score-CAM, Wang et al. 2020, https://arxiv.org/abs/1910.01279),
  against the object's mask on the picture (:mod:`methods.metrics.localization`);
* ``"road"`` — ROAD (Rong et al., ICML 2022, https://arxiv.org/abs/2202.00449): the mean class
  probability over the MoRF / LeRF removal fractions with noisy linear imputation
  (:func:`methods.metrics.faithfulness.road.road`, default fractions and noise, noise seeded with the
  run's seed). It depends only on the order of the map's pixels, so it is affine-invariant. Slow:
  18 forwards and 18 sparse solves per map.

:func:`register_metric` adds one (a scorer returns one ``{column: value}`` per map).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from methods.advisor.normalizations import Invariance
from methods.errors import OptionError
from methods.metrics.faithfulness.image_scores import image_scores
from methods.metrics.faithfulness.road import RoadOptions, road
from methods.metrics.localization import energy_pointing_game, pointing_game

__all__ = ["AdvisorMetric", "ImageJob", "Scorer", "METRICS", "SCORERS", "register_metric", "get_metric"]


@dataclass(frozen=True)
class ImageJob:
    """One image and explained class, handed to a scorer.

    Attributes:
        loaded: the ``LoadedModel``.
        x: (1, 3, H, W) preprocessed input.
        target: the explained class.
        mask: (H0, W0) bool mask of the explained object on the picture, or None.
        on_picture: ``map -> map on the picture`` (a centre crop placed back; identity for a squash).
        options: the run's curve options (``steps, baseline, insertion_baseline, batch_size, precision``).
    """

    loaded: Any
    x: torch.Tensor
    target: int
    mask: Any
    on_picture: Callable[[torch.Tensor], torch.Tensor]
    options: dict[str, Any]


Scorer = Callable[[ImageJob, Sequence[torch.Tensor]], list[dict[str, float]]]
"""``scorer(job, maps) -> one {column: value} per map``."""


@dataclass(frozen=True)
class AdvisorMetric:
    """A metric the Advisor can rank by.

    Attributes:
        key: the ``metric=`` value (``"insertion"``).
        column: its column in the scores table (``"insertion_auc"``).
        label: for sentences and tables.
        better: ``"higher"`` or ``"lower"``.
        invariance: the transforms that leave it unchanged (``"affine"``, ``"scale"``, ``"none"``).
        needs_masks: needs ground-truth object masks (annotated images, the scenes).
        scorer: key of :data:`SCORERS`.
        binary: 0/1 per map (the sign test is the paired test then).
    """

    key: str
    column: str
    label: str
    better: Literal["higher", "lower"]
    invariance: Invariance
    needs_masks: bool
    scorer: str
    binary: bool = False


def _curves(job: ImageJob, maps: Sequence[torch.Tensor]) -> list[dict[str, float]]:
    o = job.options
    scores = image_scores(
        job.loaded,
        job.x,
        list(maps),
        job.target,
        steps=o["steps"],
        baseline=o["baseline"],
        insertion_baseline=o["insertion_baseline"],
        batch_size=o["batch_size"],
        precision=o["precision"],
    )
    return [
        {"deletion_auc": s.deletion.auc, "insertion_auc": s.insertion.auc, "avg_drop": s.confidence.drop}
        for s in scores
    ]


def _masks(job: ImageJob, maps: Sequence[torch.Tensor]) -> list[dict[str, float]]:
    if job.mask is None:
        raise OptionError("this metric needs object masks: use annotated images (scenes:N, scenes2:N)")
    out = []
    for m in maps:
        placed = job.on_picture(m)
        out.append(
            {
                "pointing_hit": float(pointing_game(placed, job.mask)),
                "energy_pg": float(energy_pointing_game(placed, job.mask)),
            }
        )
    return out


def _road(job: ImageJob, maps: Sequence[torch.Tensor]) -> list[dict[str, float]]:
    o = job.options
    opts = RoadOptions(seed=int(o.get("seed", 0)), batch_size=min(int(o["batch_size"]), 1024), precision=o["precision"])
    out = []
    for m in maps:
        r = road(job.loaded, job.x, m, job.target, options=opts)
        out.append({"road_morf": r.road_morf, "road_lerf": r.road_lerf})
    return out


SCORERS: dict[str, Scorer] = {"curves": _curves, "masks": _masks, "road": _road}

METRICS: dict[str, AdvisorMetric] = {
    m.key: m
    for m in (
        AdvisorMetric("insertion", "insertion_auc", "insertion AUC", "higher", "affine", False, "curves"),
        AdvisorMetric("deletion", "deletion_auc", "deletion AUC", "lower", "affine", False, "curves"),
        AdvisorMetric("avg_drop", "avg_drop", "Average Drop %", "lower", "scale", False, "curves"),
        AdvisorMetric("pointing", "pointing_hit", "pointing game", "higher", "affine", True, "masks", binary=True),
        AdvisorMetric("energy", "energy_pg", "energy pointing game", "higher", "scale", True, "masks"),
        AdvisorMetric("road_morf", "road_morf", "ROAD MoRF", "lower", "affine", False, "road"),
        AdvisorMetric("road_lerf", "road_lerf", "ROAD LeRF", "higher", "affine", False, "road"),
    )
}


def register_metric(metric: AdvisorMetric, scorer: Scorer | None = None, *, replace: bool = False) -> AdvisorMetric:
    """Add a metric (and its scorer, under ``metric.scorer``, when it is new).

    Raises:
        OptionError: the key is taken (without ``replace``), or its scorer is unknown.
    """
    if metric.key in METRICS and not replace:
        raise OptionError(f"metric {metric.key!r} is registered already; pass replace=True to replace it")
    if scorer is not None:
        SCORERS[metric.scorer] = scorer
    if metric.scorer not in SCORERS:
        raise OptionError(f"metric {metric.key!r}: no scorer {metric.scorer!r}; pass scorer=")
    METRICS[metric.key] = metric
    return metric


def get_metric(key: str) -> AdvisorMetric:
    """The metric ``key``.

    Raises:
        OptionError: unknown, naming the valid keys.
    """
    try:
        return METRICS[key]
    except (KeyError, TypeError):
        raise OptionError(f"metric={key!r} is not one of {list(METRICS)}") from None
