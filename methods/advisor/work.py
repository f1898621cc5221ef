"""The Advisor's worker: one image in, one score per method x layer x normalization (and per
random reference) out, on the evaluate pipeline's engines and checkpoints.

It is the evaluate command's worker (:mod:`methods.pipeline.evaluate_work`) with two changes:
every map is scored under each normalization that the ranking metric can tell apart
(:func:`methods.advisor.normalizations.equivalence_groups`), and only the ranking metric's scorer
runs (:mod:`methods.advisor.metrics`), so an energy ranking costs no curve forwards. Images come
from :mod:`methods.pipeline.sources` (``scenes:N``, ``scenes2:N``, a folder); maps from ONE
:func:`methods.explain_many` call per layer set; the random reference map is
:func:`methods.metrics.faithfulness.curves.reference_maps` on each layer's grid, seeded
``seed + image index`` as in the evaluate command (a layer-independent method's maps and their
reference are on the input's grid, layer ``"input"``).

:func:`run_phase` runs a spec over items with :func:`methods.pipeline.engines.run_items` and keeps
every finished image in an :class:`methods.pipeline.evaluate_parts.EvalCheckpoint`, so a cancelled
or killed run resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from methods.advisor.metrics import METRICS, SCORERS, ImageJob
from methods.advisor.normalizations import apply
from methods.cams.core.explain import explain_many
from methods.metrics.faithfulness.curves import reference_maps
from methods.pipeline.common import score_items, worker_setup
from methods.pipeline.engines import run_items
from methods.pipeline.evaluate_parts import EvalCheckpoint
from methods.pipeline.evaluate_work import on_picture

__all__ = ["INPUT", "AdviseSpec", "AdviseWorker", "score_image", "run_phase"]

INPUT = "input"
"""The layer key of a layer-independent method (guided backprop, FullGrad ...): its maps are at the input's size."""


@dataclass(frozen=True)
class AdviseSpec:
    """Everything a worker needs (picklable).

    Attributes:
        model: catalog name, ``ModelRef`` or ``LoadedModel``.
        grid: ``(method, layers)`` pairs; a layer-independent method has ``(INPUT,)``.
        norms: the normalizations scored (one per equivalence group of the metric).
        metric: the ranking metric's key (its scorer runs).
        options: the curve options, as ``(name, value)`` pairs.
        seed: the random reference's seed offset.
        reference_layers: layers (or ``INPUT``) that get a random reference map.
        device, plugins: as the evaluate command's.
    """

    model: Any
    grid: tuple[tuple[str, tuple[str, ...]], ...]
    norms: tuple[str, ...]
    metric: str
    options: tuple[tuple[str, Any], ...]
    seed: int = 0
    reference_layers: tuple[str, ...] = ()
    device: str | None = None
    plugins: tuple[str, ...] = ()

    def build(self) -> AdviseWorker:
        return AdviseWorker(self)


class AdviseWorker:
    """Loads the model once; ``worker(items) -> results`` (the evaluate worker's result dicts)."""

    def __init__(self, spec: AdviseSpec) -> None:
        self.spec = spec
        self.loaded, self.device = worker_setup(spec.model, spec.device, spec.plugins)

    def __call__(self, items: list[dict]) -> list[dict]:
        return score_items(items, lambda sample, item: score_image(self.loaded, sample, int(item["index"]), self.spec))


def _maps(loaded: Any, x: torch.Tensor, spec: AdviseSpec, target: int | None) -> tuple[list, int, float, list[str]]:
    """``([(method, layer, map (h, w))], explained class, its probability, the methods' notes)``:
    one explain call per layer set (``Explanation.notes``: what a method warned about its maps)."""
    by_layers: dict[tuple[str, ...], list[str]] = {}
    for method, layers in spec.grid:
        by_layers.setdefault(layers, []).append(method)
    maps: list[tuple[str, str, torch.Tensor]] = []
    said: list[str] = []
    t, prob = target, float("nan")
    for layers, names in by_layers.items():
        real = [loaded.default_layer] if layers == (INPUT,) else list(layers)  # any layer: the map ignores it
        exps = explain_many(loaded, x, names, layers=real, target=t)
        for name in names:
            exp = exps[name]
            t, prob = int(exp.targets[0]), float(exp.probs[0, int(exp.targets[0])])
            for key, layer in zip(layers, real):
                maps.append((name, key, exp.maps[layer][0]))
            said.extend(f"{name}: {n}" for n in exp.notes if f"{name}: {n}" not in said)
    assert t is not None
    return maps, int(t), prob, said


def score_image(loaded: Any, sample: Any, index: int, spec: AdviseSpec) -> list[dict]:
    """The rows of one image: per explained class (each object of a scene, else the top-1), every
    method x layer x normalization and the random reference maps, scored by the metric's scorer."""
    metric = METRICS[spec.metric]
    x = loaded.preprocess(sample.image)[None]  # (1, 3, H, W)
    targets: list[int | None] = list(sample.labels) if sample.labels else [None]
    rows: list[dict] = []
    for k, target in enumerate(targets):
        maps, t, prob, said = _maps(loaded, x, spec, target)
        sizes = {layer: tuple(m.shape[-2:]) for _, layer, m in maps}
        sizes[INPUT] = tuple(x.shape[-2:])
        for layer in spec.reference_layers:
            maps.append(("random", layer, reference_maps(sizes[layer], seed=int(spec.seed) + index)["random"]))
        scored = [(m, layer, n, apply(n, sal)) for m, layer, sal in maps for n in spec.norms]
        job = ImageJob(
            loaded=loaded,
            x=x,
            target=t,
            mask=sample.masks[k] if sample.masks is not None else None,
            on_picture=on_picture(loaded, sample.image),
            options=dict(spec.options),
        )
        values = SCORERS[metric.scorer](job, [s for *_, s in scored])
        for (method, layer, norm, _), v in zip(scored, values):
            rows.append(
                dict(
                    image=sample.name,
                    label=sample.labels[k] if sample.labels else None,
                    target=t,
                    prob=prob,
                    method=method,
                    layer=layer,
                    norm=norm,
                    notes=" | ".join(n for n in said if n.startswith(f"{method}: ")) if method != "random" else "",
                    **{c: float(val) for c, val in v.items()},
                )
            )
    return rows


def run_phase(
    spec: AdviseSpec,
    items: Sequence[dict],
    *,
    checkpoint: EvalCheckpoint | None,
    on_image: Callable[[int], None],
    workers: int = 1,
) -> tuple[list[dict], list[tuple[str, str]], list[tuple[str, str]], int]:
    """Score ``items`` (resuming from ``checkpoint``); ``on_image(n_new)`` after each finished
    batch (it may raise :class:`methods.errors.Cancelled`: what finished is already saved).

    Returns:
        ``(rows, skipped (name, reason), failed (name, error), images resumed from the checkpoint)``.
    """
    finished: list[dict] = list(checkpoint.open(list(items)).values()) if checkpoint is not None else []
    resumed = len(finished)
    have = {int(r["index"]) for r in finished}
    todo = [it for it in items if int(it["index"]) not in have]

    def on_results(results: list[dict]) -> None:
        if checkpoint is not None:
            checkpoint.save(results)  # persisted before it counts as done
        finished.extend(results)
        on_image(len(results))

    run_items(spec, todo, on_results=on_results, engine="local", workers=max(1, min(workers, len(todo) or 1)))
    finished.sort(key=lambda r: r["index"])
    rows = [row for r in finished if r["status"] == "done" for row in r["rows"]]
    skipped = [(r["name"], r["reason"]) for r in finished if r["status"] == "skipped"]
    failed = [(r["name"], r["reason"]) for r in finished if r["status"] == "failed"]
    return rows, skipped, failed, resumed
