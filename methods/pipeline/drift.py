"""Explanation drift between two checkpoints of one model: :func:`drift`, for the CI of model releases.

Two checkpoints A (the released model) and B (the candidate) of ONE architecture
(:mod:`methods.pipeline.drift_models`) explain the same images with one method at one layer. Per
image ``i``, with ``c_i`` = A's top-1 class (both maps explain that class, so they are comparable):

* **map agreement** of A's raw map ``M^A_i`` and B's ``M^B_i`` on one grid
  (:func:`methods.metrics.agreement.maps.map_agreement`): Spearman ``rho_i``, Pearson ``r_i``, IoU
  of the top-``top`` regions; ``map_change_i = 1 - rho_i`` in [0, 2] (0: the same ranking of pixels;
  identical maps give exactly rho = 1.0, so exactly 0);
* **top-1 change**: ``top1_changed_i = [argmax_k p^A_ik != argmax_k p^B_ik]`` (0 or 1);
* **faithfulness** of each model's own map ON ITS OWN MODEL (:func:`methods.metrics.faithfulness.image_scores.image_scores`,
  RISE deletion and insertion curves of class ``c_i``, Petsiuk et al. 2018, https://arxiv.org/abs/1806.07421):
  ``F^X_i = insertion AUC - deletion AUC`` (higher is more faithful) and
  ``faithfulness_drop_i = F^A_i - F^B_i`` in [-2, 2] (positive: B's maps explain B worse than
  A's explain A).

The summary holds the mean of every per-image number over the ``n`` images with its percentile
bootstrap interval (:func:`methods.metrics.benchmark.leaderboard.bootstrap_interval`). Thresholds
(:class:`DriftThresholds`) are checked on the MEANS: ``mean map_change <= max_map_change``,
``mean top1_changed <= max_top1_change`` (the share of images whose class changed),
``mean faithfulness_drop <= max_faithfulness_drop``; the report names every one that failed.
Rows are sorted by how far they moved (``map_change``, then a changed class, then ``|drop|``).

Cost per image: one recorded pass per model (a gradient method: 1 forward + 1 backward) and
``2 x (2 (S - 1) + 1 + 3)`` faithfulness forwards for ``S`` steps. Bounded by ``limit`` images
(at most :data:`MAX_IMAGES`).

Deviation: the faithfulness numbers are computed in fp32 by default (``precision="fp32"``), not
``"auto"``, so that two identical checkpoints give bit-identical curves on every machine.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from methods._internal.allocator import keep_large_blocks
from methods._internal.checks import check_choice, check_int, check_number
from methods.cams.core.explain import explain
from methods.cams.core.registry import get_method
from methods.errors import InputError, OptionError
from methods.metrics.agreement.maps import map_agreement
from methods.metrics.benchmark.leaderboard import bootstrap_interval
from methods.metrics.faithfulness.curves import BASELINES, PRECISIONS
from methods.metrics.faithfulness.image_scores import image_scores
from methods.models.loaded import LoadedModel
from methods.models.model_config import ModelConfig
from methods.pipeline.drift_models import check_same_architecture, load_side, side_card
from methods.pipeline.sources import parse_images, samples

__all__ = [
    "MAX_IMAGES",
    "REPORT_KIND",
    "REPORT_VERSION",
    "STATISTICS",
    "DriftThresholds",
    "DriftOptions",
    "image_drift",
    "summarize_drift",
    "failed_thresholds",
    "drift",
]

#: The most images one drift run explains (``limit``).
MAX_IMAGES = 2000
REPORT_KIND = "gradlens-drift"
REPORT_VERSION = 1

#: The per-image numbers the summary averages, in the order reports show them.
STATISTICS: tuple[str, ...] = (
    "map_change",
    "spearman",
    "pearson",
    "iou_top",
    "top1_changed",
    "faithfulness_a",
    "faithfulness_b",
    "faithfulness_drop",
    "deletion_change",
    "insertion_change",
)

#: threshold field -> (the statistic whose mean it bounds, its bounds).
_LIMITS: dict[str, tuple[str, float, float]] = {
    "max_map_change": ("map_change", 0.0, 2.0),
    "max_top1_change": ("top1_changed", 0.0, 1.0),
    "max_faithfulness_drop": ("faithfulness_drop", -2.0, 2.0),
}


@dataclass(frozen=True)
class DriftThresholds:
    """The most drift a release may show (None: not checked).

    Attributes:
        max_map_change: bound on the mean ``1 - Spearman`` of the two maps, in [0, 2].
        max_top1_change: bound on the share of images whose top-1 class changed, in [0, 1].
        max_faithfulness_drop: bound on the mean ``F^A - F^B`` (insertion - deletion AUC), in [-2, 2].
    """

    max_map_change: float | None = None
    max_top1_change: float | None = None
    max_faithfulness_drop: float | None = None

    def __post_init__(self) -> None:
        for name, (_, lo, hi) in _LIMITS.items():
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, check_number(name, value, minimum=lo, maximum=hi))

    def as_dict(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in _LIMITS}


@dataclass(frozen=True)
class DriftOptions:
    """How a drift run explains and scores (validated at construction).

    Attributes:
        method: a registered method key with layer maps (default ``"gradcam"``).
        layer: the layer of both models (default: A's default layer).
        limit: the most images taken from ``images``, 1 .. :data:`MAX_IMAGES` (default 100).
        steps: deletion / insertion steps, 1 .. 200 (default 20).
        baseline: what deleted pixels become and where insertion starts (``"blur"`` default).
        precision: of the faithfulness forwards (``"fp32"`` default; see the module's Deviation).
        top: the top fraction of pixels for the IoU, in (0, 1] (default 0.1).
        batch_size: perturbed images per forward, >= 1.
        n_boot: bootstrap resamples, 1 .. 100 000; seed: their seed.
        most_moved: how many images the report lists as the most moved, 1 .. 1000.
    """

    method: str = "gradcam"
    layer: str | None = None
    limit: int = 100
    steps: int = 20
    baseline: str = "blur"
    precision: str = "fp32"
    top: float = 0.1
    batch_size: int = 32
    n_boot: int = 2000
    seed: int = 0
    most_moved: int = 10

    def __post_init__(self) -> None:
        spec = get_method(self.method)  # unknown -> UnknownMethodError with suggestions
        if spec.resolution != "layer" or spec.layer_independent:
            raise OptionError(
                f"method={self.method!r} gives one input-resolution map per image, not a map of a layer; drift "
                "compares layer maps: choose a gradient or CAM method (gradcam, layercam, ...)"
            )
        if self.layer is not None and (not isinstance(self.layer, str) or not self.layer):
            raise OptionError(f"layer must be a module name or None (the default layer); got {self.layer!r}")
        check_int("limit", self.limit, 1, MAX_IMAGES)
        check_int("steps", self.steps, 1, 200)
        check_choice("baseline", self.baseline, BASELINES)
        check_choice("precision", self.precision, PRECISIONS)
        check_number("top", self.top, minimum=0.0, maximum=1.0, exclusive_minimum=True)
        check_int("batch_size", self.batch_size, 1)
        check_int("n_boot", self.n_boot, 1, 100_000)
        check_int("seed", self.seed, 0)
        check_int("most_moved", self.most_moved, 1, 1000)


def _faithfulness(loaded: LoadedModel, x: Any, saliency: Any, target: int, opts: DriftOptions) -> tuple[float, float]:
    (scores,) = image_scores(
        loaded,
        x,
        [saliency],
        target,
        steps=opts.steps,
        baseline=opts.baseline,  # type: ignore[arg-type]
        insertion_baseline=opts.baseline,  # type: ignore[arg-type]
        batch_size=opts.batch_size,
        precision=opts.precision,  # type: ignore[arg-type]
    )
    return scores.deletion.auc, scores.insertion.auc


def image_drift(a: LoadedModel, b: LoadedModel, image: np.ndarray, name: str, opts: DriftOptions) -> dict[str, Any]:
    """The drift numbers of one (H, W, 3) uint8 image (see the module docstring).

    Returns:
        A JSON-ready row: ``image``, ``target`` (A's top-1, explained by both), ``top1_a``,
        ``top1_b``, ``prob_a``, ``prob_b``, every name of :data:`STATISTICS` except the
        interval-only ones, the four AUCs and ``flags`` (a degenerate map, in words).
    """
    layer = opts.layer or a.default_layer
    x_a = a.preprocess(image)[None]  # (1, 3, h, w)
    x_b = b.preprocess(image)[None]  # (1, 3, h, w)
    exp_a = explain(a, x_a, opts.method, layers=layer)
    target = int(exp_a.targets[0])
    exp_b = explain(b, x_b, opts.method, layers=layer, target=target)
    top1_a, top1_b = int(exp_a.probs[0].argmax()), int(exp_b.probs[0].argmax())
    map_a, map_b = exp_a.maps[layer][0], exp_b.maps[layer][0]  # (h, w) raw, signed
    agr = map_agreement(map_a, map_b, top=opts.top)
    del_a, ins_a = _faithfulness(a, x_a, map_a, target, opts)
    del_b, ins_b = _faithfulness(b, x_b, map_b, target, opts)
    f_a, f_b = ins_a - del_a, ins_b - del_b
    return {
        "image": name,
        "target": target,
        "target_name": a.class_names[target],
        "top1_a": top1_a,
        "top1_b": top1_b,
        "prob_a": float(exp_a.probs[0, target]),
        "prob_b": float(exp_b.probs[0, target]),
        "top1_changed": int(top1_a != top1_b),
        "spearman": agr.spearman,
        "pearson": agr.pearson,
        "iou_top": agr.iou_top,
        "map_change": 1.0 - agr.spearman,
        "deletion_a": del_a,
        "deletion_b": del_b,
        "insertion_a": ins_a,
        "insertion_b": ins_b,
        "faithfulness_a": f_a,
        "faithfulness_b": f_b,
        "faithfulness_drop": f_a - f_b,
        "deletion_change": del_b - del_a,
        "insertion_change": ins_b - ins_a,
        "flags": list(agr.flags),
    }


def _moved_key(row: dict[str, Any]) -> tuple[float, int, float]:
    return (-row["map_change"], -row["top1_changed"], -abs(row["faithfulness_drop"]))


def summarize_drift(rows: list[dict[str, Any]], *, n_boot: int = 2000, seed: int = 0) -> dict[str, dict[str, Any]]:
    """``{statistic: {"mean", "low", "high", "n"}}`` over the rows (bootstrap intervals, level 0.95).

    Examples:
        >>> rows = [dict({s: 0.0 for s in STATISTICS}, spearman=1.0) for _ in range(3)]
        >>> summarize_drift(rows)["map_change"]
        {'mean': 0.0, 'low': 0.0, 'high': 0.0, 'n': 3}
    """
    out = {}
    for stat in STATISTICS:
        iv = bootstrap_interval([float(r[stat]) for r in rows], n_boot=n_boot, seed=seed)
        out[stat] = {"mean": _finite(iv.mean), "low": _finite(iv.low), "high": _finite(iv.high), "n": iv.n}
    return out


def failed_thresholds(summary: dict[str, dict[str, Any]], thresholds: DriftThresholds) -> list[dict[str, Any]]:
    """Every threshold whose statistic's mean lies past it: ``[{"threshold", "statistic", "limit",
    "value"}]`` (empty: the release is within its thresholds).

    Examples:
        >>> s = {"map_change": {"mean": 0.3}, "top1_changed": {"mean": 0.0}, "faithfulness_drop": {"mean": 0.0}}
        >>> [f["threshold"] for f in failed_thresholds(s, DriftThresholds(max_map_change=0.2, max_top1_change=0.0))]
        ['max_map_change']
    """
    failed = []
    for name, (stat, _, _) in _LIMITS.items():
        limit = getattr(thresholds, name)
        value = summary[stat]["mean"]
        if limit is not None and value is not None and value > limit:
            failed.append({"threshold": name, "statistic": stat, "limit": limit, "value": value})
    return failed


def _finite(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def drift(
    a: Any,
    b: Any,
    images: str,
    *,
    arch: str | None = None,
    config: ModelConfig | None = None,
    thresholds: DriftThresholds | None = None,
    options: DriftOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Explanation drift of checkpoint ``b`` against ``a`` on ``images``: the report (a JSON-ready dict).

    Args:
        a, b: catalog names, weight files (with ``arch``) or LoadedModels, of ONE architecture.
        images: ``"scenes:N"``, ``"scenes2:N"``, a folder or an annotated data set (``coco:``, ``voc:``,
            ``imagefolder:``, ``masks:``; :func:`methods.pipeline.sources.parse_images`);
            the first ``options.limit`` images are taken.
        arch: the architecture of a weight file (a torchvision name, ``timm:<name>`` or a catalog
            model such as ``"scenes_vgg"``).
        config: class names and preprocessing of a torchvision / timm checkpoint.
        thresholds: :class:`DriftThresholds` (default: none checked).
        options: :class:`DriftOptions`.
        progress: ``(done, total)`` after every image.

    Returns:
        A dict with ``kind`` (``"gradlens-drift"``), ``version``, ``model_a``, ``model_b``,
        ``options``, ``images_spec``, ``n_images``, ``limited``, ``skipped``, ``summary``,
        ``thresholds``, ``failed``, ``passed``, ``most_moved`` and ``images`` (one row per image
        of :func:`image_drift`, most moved first).

    Raises:
        OptionError, UnknownModelError, UnknownMethodError, LayerError: bad arguments.
        CheckpointError: an unsafe file, or A and B are not one architecture.
        InputError: no readable image.

    Examples:
        >>> r = drift("scenes_vgg", "scenes_vgg", "scenes:2", options=DriftOptions(steps=2, n_boot=10))
        >>> r["passed"], r["summary"]["map_change"]["mean"], r["summary"]["top1_changed"]["mean"]
        (True, 0.0, 0.0)
    """
    thresholds = thresholds if thresholds is not None else DriftThresholds()
    opts = options if options is not None else DriftOptions()
    if not isinstance(thresholds, DriftThresholds) or not isinstance(opts, DriftOptions):
        raise OptionError("thresholds must be a DriftThresholds and options a DriftOptions")
    keep_large_blocks()  # both models' batches reuse the heap's large blocks (methods._internal.allocator)
    source = parse_images(images)
    model_a = load_side(a, arch=arch, config=config, what="A")
    model_b = load_side(b, arch=arch, config=config, what="B")
    check_same_architecture(model_a, model_b)
    for m in (model_a, model_b):
        if m.task != "classification":
            raise OptionError(f"{m.name} is a {m.task} model; drift compares classifiers (one top-1 class per image)")
    # A data set's size is known once listed (count 0): the limit bounds it.
    total = min(source.count, opts.limit) if source.kind != "annotated" else opts.limit
    skipped: list[tuple[str, str]] = []
    rows = []
    stream = samples(source, 0, skipped, class_names=model_a.class_names)
    for i, sample in enumerate(itertools.islice(stream, total)):
        rows.append(image_drift(model_a, model_b, sample.image, sample.name, opts))
        if progress is not None:
            progress(i + 1, total)
    if not rows:
        raise InputError(f"images={images!r} gave no readable image ({len(skipped)} file(s) skipped)")
    rows.sort(key=_moved_key)
    summary = summarize_drift(rows, n_boot=opts.n_boot, seed=opts.seed)
    failed = failed_thresholds(summary, thresholds)
    return {
        "kind": REPORT_KIND,
        "version": REPORT_VERSION,
        "model_a": side_card(model_a, a),
        "model_b": side_card(model_b, b),
        "arch": arch,
        "layer": opts.layer or model_a.default_layer,
        "options": {k: getattr(opts, k) for k in opts.__dataclass_fields__},
        "images_spec": str(images),
        "n_images": len(rows),
        "limited": source.count > opts.limit if source.kind != "annotated" else len(rows) >= opts.limit,
        "skipped": [list(s) for s in skipped],
        "summary": summary,
        "thresholds": thresholds.as_dict(),
        "failed": failed,
        "passed": not failed,
        "most_moved": [r["image"] for r in rows[: opts.most_moved]],
        "images": rows,
    }
