"""The evaluate command's worker: one image in, its rows of faithfulness and localization scores out.

:class:`EvalWorker` is built once per worker process / Ray actor from an :class:`EvalSpec` (so
the model loads once) and maps items of :func:`methods.pipeline.sources.sample_items` to results
(``"done"`` with rows, ``"skipped"`` for an unreadable file, ``"failed"`` with the error): one bad
image never stops the others.

Per image and explained class, every map (each method x layer, then the ``random`` and
``centre`` references on each layer's grid) is scored by ONE
:func:`methods.metrics.faithfulness.image_scores.image_scores` call: the unperturbed and the fully perturbed
images, which are the same for every map, run once, and the curve forwards of all maps share
full batches. On the CPU each chunk of curve forwards runs on 1 torch thread or on all, whichever
this process measured faster for the last chunks, and the rest of an image's work on the faster
one so far (:mod:`methods._internal.threads`: on a loaded machine 1 thread can be several times
faster); the scores do not depend on it.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from methods._internal.threads import ThreadTuner, tuner
from methods._internal.torch_utils import Precision
from methods.cams.core.explain import explain_many
from methods.metrics.faithfulness.image_scores import image_scores
from methods.metrics.faithfulness.perturbation import BaselineName
from methods.metrics.faithfulness.road import RoadOptions, road
from methods.metrics.localization import energy_pointing_game, pointing_game
from methods.pipeline.common import score_items, worker_setup
from methods.pipeline.engines import run_items
from methods.pipeline.evaluate_objects import OBJECT_TASKS, evaluate_objects, scored_maps
from methods.pipeline.evaluate_parts import EvalCheckpoint

__all__ = ["EvalSpec", "EvalWorker", "evaluate_sample", "on_picture"]


@dataclass(frozen=True)
class EvalSpec:
    """Everything an evaluate worker needs (picklable).

    Attributes:
        model: catalog name (each worker loads it) or a ``LoadedModel``.
        names, layers: method keys and resolved layer names.
        seed: the reference maps' seed offset (the random map of image i uses ``seed + i``).
        steps, baseline, insertion_baseline, batch_size, precision: the curve options.
        references: add the random and centre rows.
        device: where to run (None: the worker's default device).
        plugins: modules to import first (a user's own methods).
        min_score, max_objects: a detector's own boxes on pictures without ground truth (and a
            segmenter's classes: ``max_objects``) (:mod:`methods.pipeline.evaluate_objects`).
        curves: compute the deletion / insertion curves of a detector's or segmenter's objects.
        road: add ROAD's ``road_morf`` / ``road_lerf`` columns (:func:`road_columns`; a classifier's
            rows only; ~2 F sparse solves and forwards per map, F = 9 fractions).
    """

    model: Any
    names: tuple[str, ...]
    layers: tuple[str, ...]
    seed: int = 0
    steps: int = 50
    baseline: BaselineName = "blur"
    insertion_baseline: BaselineName = "blur"
    batch_size: int = 32
    precision: Precision = "auto"
    references: bool = True
    device: str | None = None
    plugins: tuple[str, ...] = ()
    min_score: float = 0.5
    max_objects: int = 20
    curves: bool = True
    road: bool = False

    def build(self) -> EvalWorker:
        return EvalWorker(self)


class EvalWorker:
    """Loads the model once; ``worker(items) -> results``."""

    def __init__(self, spec: EvalSpec) -> None:
        self.spec = spec
        self.loaded, self.device = worker_setup(spec.model, spec.device, spec.plugins)

    def __call__(self, items: list[dict]) -> list[dict]:
        return score_items(items, self._score)

    def _score(self, sample: Any, item: dict) -> list[dict]:
        threads = tuner("evaluate.curves") if self.device.type == "cpu" else None
        with threads.run(0) if threads is not None else contextlib.nullcontext():  # the faster count
            if self.loaded.task in OBJECT_TASKS:
                return evaluate_objects(self.loaded, sample, item["index"], self.spec)
            return evaluate_sample(self.loaded, sample, item["index"], self.spec, threads)


def on_picture(loaded: Any, image: np.ndarray):
    """``map -> map on the picture``, for scoring against the picture's masks: a map covers the
    model input, which is a centre crop of the picture for the ImageNet models
    (``LoadedModel.resize``); the unseen border gets the map's minimum (never the peak, no mass).
    A squash (the whole picture) keeps the map as it is: the masks' upsampling places it."""
    place = getattr(loaded, "placement", None)
    placement = place(image.shape[:2]) if callable(place) else None
    if placement is None or placement.mode == "squash":
        return lambda sal: sal

    def placed(sal: torch.Tensor) -> torch.Tensor:
        m = placement.onto(sal.detach().float().cpu().numpy())  # (H, W), NaN outside the crop
        floor = float(np.nanmin(m)) if np.isfinite(m).any() else 0.0
        return torch.from_numpy(np.nan_to_num(m, nan=min(floor, 0.0)))

    return placed


def evaluate_sample(
    loaded: Any, sample: Any, index: int, spec: EvalSpec, threads: ThreadTuner | None = None
) -> list[dict]:
    """The rows of one image: per explained class, each method x layer and the references.
    ``threads``: times each chunk of curve forwards on 1 torch thread or all (:mod:`methods._internal.threads`)."""
    names, class_names = list(spec.names), tuple(loaded.class_names)
    x = loaded.preprocess(sample.image)[None]  # (1, 3, H, W)
    targets = list(sample.labels) if sample.labels else [None]
    rows: list[dict] = []
    for k, target in enumerate(targets):
        exps = explain_many(loaded, x, names, layers=list(spec.layers), target=target)
        first = exps[names[0]]
        predicted = int(first.probs[0].argmax())
        t = int(first.targets[0])
        mask = sample.masks[k] if sample.masks is not None else None
        place = on_picture(loaded, sample.image)
        maps = scored_maps(exps, names, spec, index)
        t1 = time.perf_counter()
        scores = image_scores(
            loaded,
            x,
            [m for _, _, m, _ in maps],
            t,
            steps=spec.steps,
            baseline=spec.baseline,
            insertion_baseline=spec.insertion_baseline,
            batch_size=spec.batch_size,
            precision=spec.precision,
            threads=threads,
        )
        share = (time.perf_counter() - t1) / len(maps)  # the shared forwards split evenly over the maps
        for (name, layer, sal, seconds), sc in zip(maps, scores):
            rows.append(
                dict(
                    image=sample.name,
                    seed=sample.seed,
                    label=sample.labels[k] if sample.labels else None,
                    predicted=predicted,
                    method=name,
                    layer=layer,
                    target=t,
                    target_name=class_names[t] if t < len(class_names) else str(t),
                    prob=float(first.probs[0, t]),
                    deletion_auc=sc.deletion.auc,
                    insertion_auc=sc.insertion.auc,
                    avg_drop=sc.confidence.drop,
                    increase=sc.confidence.increase,
                    pointing_hit=pointing_game(place(sal), mask) if mask is not None else None,
                    energy_pg=energy_pointing_game(place(sal), mask) if mask is not None else None,
                    seconds=seconds,
                    eval_seconds=share,
                    precision=sc.deletion.precision,
                    device=str(x.device),
                    **(road_columns(loaded, x, sal, t, spec) if spec.road else {}),
                )
            )
    return rows


def road_columns(loaded: Any, x: torch.Tensor, sal: torch.Tensor, target: int, spec: EvalSpec) -> dict:
    """ROAD's two summaries of one map (:func:`methods.metrics.faithfulness.road.road`, default
    fractions and noise, noise seeded with ``spec.seed``; the curves' batch size and precision)."""
    res = road(
        loaded,
        x,
        sal,
        target,
        options=RoadOptions(seed=spec.seed, batch_size=min(spec.batch_size, 1024), precision=spec.precision),
    )
    return {"road_morf": res.road_morf, "road_lerf": res.road_lerf}


def run_evaluation(
    spec: EvalSpec,
    items: list[dict],
    *,
    engine: str,
    workers: int,
    ray_address: str | None = None,
    bar: bool = True,
    num_gpus: float = 0.0,
    checkpoint: EvalCheckpoint | None = None,
) -> tuple[list[dict], list[tuple[str, str]], list[tuple[str, str]]]:
    """Run ``spec`` over ``items`` on an engine, with a tqdm bar (one step per image, skipped
    files included). Returns ``(rows in image order, skipped (name, reason), failed (name, error))``.
    With a ``checkpoint`` (:mod:`methods.pipeline.evaluate_parts`), images an earlier run finished
    are read from it, not scored again, and every finished image is saved there as it arrives."""
    import sys

    from tqdm.auto import tqdm

    finished: list[dict] = list(checkpoint.open(items).values()) if checkpoint is not None else []
    have = {int(r["index"]) for r in finished}
    todo = [it for it in items if int(it["index"]) not in have]
    tq = tqdm(
        total=len(items), initial=len(finished), desc="evaluating", unit="image", disable=not bar, file=sys.stderr
    )

    def on_results(results: list[dict]) -> None:
        if checkpoint is not None:
            checkpoint.save(results)  # persisted before the bar moves: a kill from here on loses nothing of it
        finished.extend(results)
        tq.update(len(results))

    try:
        run_items(
            spec,
            todo,
            on_results=on_results,
            engine=engine,
            workers=max(1, min(workers, len(todo))),
            batch_size=1,
            ray_address=ray_address,
            num_gpus=num_gpus,
        )
    finally:
        tq.close()
    finished.sort(key=lambda r: r["index"])
    rows = [row for r in finished if r["status"] == "done" for row in r["rows"]]
    skipped = [(r["name"], r["reason"]) for r in finished if r["status"] == "skipped"]
    failed = [(r["name"], r["reason"]) for r in finished if r["status"] == "failed"]
    return rows, skipped, failed
