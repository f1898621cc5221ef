"""``advise``: which map to trust on YOUR model and images — method x layer x normalization,
ranked with intervals, tested against the best and against the random map.

The run, in order:

1. the grid (:mod:`methods.advisor.grid`): methods, candidate layers, the normalizations the
   ranking metric can tell apart (:func:`methods.advisor.normalizations.equivalence_groups`: the
   others are reported as ties, never as different numbers);
2. the sanity screen on the first ``n_sanity`` images; failed methods are dropped from the grid
   and named in the recommendation;
3. scoring (:mod:`methods.advisor.work`) in two phases: the cheap methods (with the random
   reference on each layer) first, the slow ones (``include_slow``) after; each phase keeps every
   finished image in a checkpoint beside ``out`` (:class:`methods.pipeline.evaluate_parts.EvalCheckpoint`),
   so a cancelled or killed run resumes with the same arguments and scores only what is missing;
4. the ranking (:mod:`methods.advisor.rank`) and the report (:class:`methods.advisor.result.Advice`).
"""

from __future__ import annotations

import json
import pathlib
import re
import sys
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from methods._internal.progress import Progress
from methods.advisor.grid import SanityVerdict, choose_layers, choose_methods, method_grid, sanity_screen
from methods.advisor.metrics import get_metric
from methods.advisor.normalizations import equivalence_groups, group_label
from methods.advisor.options import AdviseOptions
from methods.advisor.rank import rank
from methods.advisor.result import Advice
from methods.advisor.work import INPUT, AdviseSpec, run_phase
from methods.cams.core.registry import get_method
from methods.data.annotated import AnnotatedOptions
from methods.data.scenes import CLASS_NAMES
from methods.errors import Cancelled, GradLensError, OptionError
from methods.pipeline.batch_files import check_writable, write_atomic
from methods.pipeline.common import load_model_arg, worker_model
from methods.pipeline.evaluate_parts import EvalCheckpoint
from methods.pipeline.sources import load_sample, parse_images, sample_items

__all__ = ["advise"]

_SANITY = ".advisor-sanity.json"


def _check_images(loaded: Any, images: str, metric: Any):
    source = parse_images(images)
    if source.kind in ("scenes", "scenes2") and tuple(loaded.class_names) != tuple(CLASS_NAMES):
        raise OptionError(
            f"images={images!r} needs a model trained on the scenes' classes (scenes_vgg, scenes_resnet); "
            f"{getattr(loaded, 'name', 'this model')!r} has {len(loaded.class_names)} other classes"
        )
    no_masks = source.kind == "folder" or (source.dataset is not None and source.dataset.format == "imagefolder")
    if no_masks and metric.needs_masks:
        what = "an ImageFolder data set (labels only)" if source.kind == "annotated" else "a folder of images"
        raise OptionError(
            f"metric={metric.key!r} needs object masks; {what} has none: rank by insertion, deletion, "
            "avg_drop or ROAD, or give masks (coco:, voc:, masks: data sets)"
        )
    return source


def _sanity(loaded, grid, items, options, out, settings, tick) -> list[SanityVerdict]:
    """The sanity screen, read back from ``out`` when an earlier run with these settings did it."""
    path = pathlib.Path(out) / _SANITY if out is not None else None
    key = json.dumps(settings, sort_keys=True, default=str)
    if path is not None and path.is_file():
        try:
            held = json.loads(path.read_text())
            if held.get("key") == key:
                return [
                    SanityVerdict(**{**v, "verdicts": tuple(v["verdicts"]), "texts": tuple(v["texts"])})
                    for v in held["verdicts"]
                ]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    samples: list[Any] = []
    for it in items:  # the first n_sanity READABLE images (an unreadable file is skipped by the scoring too)
        if len(samples) == options.n_sanity:
            break
        try:
            samples.append(load_sample(it))
        except (GradLensError, OSError, ValueError):
            continue
    verdicts = sanity_screen(loaded, grid, samples, seed=options.seed, tick=tick)
    if path is not None:
        data = {"key": key, "verdicts": [dict(vars(v)) for v in verdicts]}
        write_atomic(path, json.dumps(data, default=list).encode())
    return verdicts


def advise(
    model: Any,
    images: str,
    options: AdviseOptions | None = None,
    *,
    out: str | pathlib.Path | None = None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    log: Callable[[str], None] | None = None,
    workers: int = 1,
    device: Any = None,
    dataset_options: AnnotatedOptions | None = None,
    **settings: Any,
) -> Advice:
    """Rank methods x layers x normalizations on ``images`` and recommend one (module docstring).

    Args:
        model: catalog name, :class:`~methods.models.user_models.ModelRef` or ``LoadedModel`` (a classifier).
        images: ``"scenes:N"``, ``"scenes2:N"``, a folder or an annotated data set (``coco:``, ``voc:``,
            ``imagefolder:``, ``masks:``; :func:`methods.pipeline.sources.parse_images`, docs/datasets.md).
        options: an :class:`AdviseOptions`; or give its fields as keyword ``settings``
            (``methods=("gradcam",), metric="deletion"``), not both.
        out: a folder: the report (``advice.json``, ``advice.md``, ``scores.parquet``) is written
            there, and the checkpoints that let a cancelled run resume are kept there meanwhile.
        progress: ``progress(done, total)`` after every sanity check and every image (it may raise
            :class:`~methods.errors.Cancelled`).
        cancel: ``cancel() -> True`` stops the run at the next image (Cancelled is raised; what
            finished is kept in ``out``'s checkpoints).
        log: where notes go (resumed images, skipped files); default stderr.
        workers: processes scoring images (1: in this process).
        device: where the model runs (default: ``$GRADLENS_DEVICE``, else CUDA when present).
        dataset_options: limits and the class map of an annotated data set
            (:class:`methods.data.annotated.AnnotatedOptions`; default its defaults).

    Returns:
        An :class:`~methods.advisor.result.Advice`.

    Raises:
        OptionError (bad options, a metric that needs masks on a folder, nothing could be scored),
        UnknownMethodError, LayerError, UnknownModelError; Cancelled.

    Examples:
        >>> a = advise("scenes_vgg", "scenes:3", methods=("gradcam",), layers="features.20",
        ...            normalizations=("minmax", "raw"), n_sanity=0, n_boot=200, steps=5, precision="fp32")
        >>> a.best["method"], a.best["normalization"]
        ('gradcam', 'min-max ≡ raw')
    """
    t0 = time.perf_counter()
    if options is None:
        options = AdviseOptions(**settings)
    elif settings:
        raise OptionError(f"give options or keyword settings, not both (got {sorted(settings)})")
    say = log or (lambda s: print(s, file=sys.stderr))
    metric = get_metric(options.metric)
    if out is not None:
        if pathlib.Path(out).is_file():
            raise OptionError(f"out={str(out)!r} is a file; give a folder for the report")
        pathlib.Path(out).mkdir(parents=True, exist_ok=True)
        check_writable(pathlib.Path(out), f"out={str(out)!r}")
    loaded = load_model_arg(model)
    source = _check_images(loaded, images, metric)
    names, notes = choose_methods(loaded, options)
    layers = choose_layers(loaded, options)
    grid, grid_notes = method_grid(loaded, names, layers)
    notes += grid_notes
    groups = equivalence_groups(options.normalizations, metric.invariance)
    norms = tuple(g[0] for g in groups)
    for g in groups:
        if len(g) > 1:
            notes.append(
                f"{group_label(g)} give identical {metric.label} scores (a {'positive affine' if metric.invariance == 'affine' else 'positive scale'} "
                "transform of the map leaves it unchanged): scored once, one row"
            )
    items = sample_items(source, int(options.seed), class_names=loaded.class_names, options=dataset_options)
    if not items:
        raise OptionError(f"images={images!r} holds no file to score")
    n_sanity = min(options.n_sanity, len(items))
    phases = [
        ("cheap", [g for g in grid if not get_method(g[0]).slow]),
        ("slow", [g for g in grid if get_method(g[0]).slow]),
    ]
    total = n_sanity * len(grid) + len(items) * sum(1 for _, p in phases if p)
    done = [0]

    def tick(n: int = 1) -> None:
        done[0] += n
        if cancel is not None and cancel():
            raise Cancelled("the Advisor was cancelled; run it again with the same out= to resume")
        if progress is not None:
            progress(done[0], total)

    base = dict(
        model=str(getattr(loaded, "name", type(loaded.model).__name__)), images=str(images), **options.curve_options()
    )
    sanity = (
        _sanity(loaded, grid, items, options, out, dict(base, grid=grid, n=n_sanity, seed=options.seed), tick)
        if n_sanity
        else []
    )
    failed = {v.method for v in sanity if v.passes is False}
    if failed and all(m in failed for m, _ in grid):
        raise OptionError(
            "every method failed the sanity check, so there is nothing to rank: "
            + " ".join(t for v in sanity for t in v.texts[:1])
        )
    sent, spec_device, _ = worker_model(model, loaded, device, workers == 1)
    rows: list[dict] = []
    skipped: list[tuple[str, str]] = []
    evaluations = resumed = 0
    checkpoints = []
    for phase, phase_grid in phases:
        phase_grid = [g for g in phase_grid if g[0] not in failed]
        if not phase_grid:
            continue
        ref_layers = tuple(dict.fromkeys(layer for _, ls in phase_grid for layer in ls))
        spec = AdviseSpec(
            model=sent,
            grid=tuple(phase_grid),
            norms=norms,
            metric=metric.key,
            options=tuple(options.curve_options().items()),
            seed=int(options.seed),
            reference_layers=ref_layers,
            device=spec_device,
        )
        checkpoint = None
        if out is not None:
            key = dict(
                base,
                phase=phase,
                grid=[[m, list(ls)] for m, ls in phase_grid],
                norms=list(norms),
                metric=metric.key,
                seed=options.seed,
            )
            checkpoint = EvalCheckpoint(pathlib.Path(out) / f"scores-{phase}.parquet", key, say)
            checkpoints.append(checkpoint)
        got, sk, fl, back = run_phase(spec, items, checkpoint=checkpoint, on_image=tick, workers=workers)
        evaluations += len(items) - back
        resumed += back
        rows += got
        skipped += sk + [(n, f"failed: {w}") for n, w in fl]
    if progress is not None:
        progress(total, total)
    if not rows:
        raise OptionError(f"no image could be scored from images={images!r} ({len(skipped)} skipped)")
    scores = pd.DataFrame(rows).drop_duplicates(["image", "target", "method", "layer", "norm"], keep="first")
    labels = {m: get_method(m).label for m in scores["method"].unique() if m != "random"}
    ranking = rank(
        scores,
        metric,
        groups={g[0]: group_label(g) for g in groups},
        labels=labels,
        failed_sanity=[v.label for v in sanity if v.passes is False],
        n_boot=options.n_boot,
        level=options.level,
        seed=options.seed,
        test=options.test,
        alpha=options.alpha,
    )
    notes += list(ranking.notes)
    warned: dict[str, str] = {}  # what a method warned about its maps (Explanation.notes), once per kind
    for cell in scores["notes"].dropna() if "notes" in scores.columns else []:
        for n in filter(None, str(cell).split(" | ")):
            who, _, text = n.partition(": ")
            warned.setdefault(re.sub(r"\d+(\.\d+)?%", "N%", n), f"{labels.get(who, who)} warned: {text}")
    notes += list(warned.values())
    notes += [f"skipped {n}: {w}" for n, w in skipped]
    if (scores["layer"] == INPUT).any():
        notes.append(
            "layer 'input': a layer-independent method (its map is at the input's size), with its own random map"
        )
    advice = Advice(
        recommendation=ranking.recommendation,
        table=ranking.table,
        best=ranking.best,
        beats_random=ranking.beats_random,
        clear_winner=ranking.clear_winner,
        notes=tuple(notes),
        sanity=tuple(sanity),
        metric=metric.key,
        metric_label=metric.label,
        better=metric.better,
        test=ranking.test,
        settings=dict(
            base,
            options={k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(options).items()},
            layers=layers,
            level=options.level,
        ),
        scores=scores.reset_index(drop=True),
        evaluations=evaluations,
        resumed=resumed,
        seconds=time.perf_counter() - t0,
    )
    if out is not None:
        advice.save(out)
        for c in checkpoints:
            c.close()
    return advice
