"""Evaluate CAM methods on a data set from the command line: faithfulness and localization per map.

Usage::

    python -m methods.evaluate --model scenes_vgg --methods gradcam,gradcampp,scorecam \\
        --layers default --images scenes:200 --seed 0 --out results.parquet

``--images`` is one of

* ``scenes:N``  — N single-object scenes ``make_scene(EVAL_SINGLE_START + seed + i)``; the seeds
  start at 10_000_000, a range the bundled models never saw in training (see :mod:`methods.data.scenes`).
  The explained class is the object's true class; its mask gives the pointing game and energy.
* ``scenes2:N`` — N two-object scenes ``make_scene(EVAL_TWO_START + seed + i, n_objects=2)``
  (seeds from 11_000_000); EACH of the two classes is explained, one row per class, scored against
  its own object's mask.
* ``coco:ANN.json[:IMAGES_DIR]``, ``voc:DIR``, ``imagefolder:DIR``, ``masks:DIR`` — an annotated data
  set (:mod:`methods.data.annotated`, docs/datasets.md; classifiers only): EACH class an image's
  annotations name is explained, one row per class, scored against the union of that class's
  object masks (a box stands in where an object has no mask; an ImageFolder has no mask, so only
  ``label`` is filled). Annotation class names are matched to the model's class names.
* a folder — every file in it (not recursive, sorted by name) that :func:`methods.data.images.load_image`
  can read; other files are reported and skipped (``--out``, when it lies in the folder, is left out). The explained class is the model's top-1; there
  is no ground truth, so ``label``, ``pointing_hit`` and ``energy_pg`` are empty.

``--layers`` is ``default``, ``all`` or comma-separated module names. The output (``.parquet`` or
``.csv``) has one row per image x method x layer x explained class, plus rows for the two reference
maps ``random`` and ``centre`` (:func:`methods.metrics.faithfulness.curves.reference_maps`, on each layer's own
grid; the random map's seed is ``seed + image index``). Columns:

==========================================  =====================================================================================
image                                       file name, or ``scene:<seed>``
seed                                        the scene's seed (empty for files)
label                                       true class index (empty without ground truth)
predicted                                   the model's top-1 class index
method, layer                               what made the map
target                                      the explained class index; ``target_name`` its name; ``prob`` its probability
deletion_auc                                RISE deletion AUC (``--baseline``, default blur; RISE's own is zero): lower is better
insertion_auc                               RISE insertion AUC (from ``--insertion-baseline``, default blur): higher is better
avg_drop                                    Grad-CAM++ drop in %, masking in the normalized input space
increase                                    Grad-CAM++ increase in confidence (bool)
pointing_hit                                pointing game (bool, tolerance 0)
energy_pg                                   energy-based pointing game in [0, 1]
road_morf, road_lerf                        only with ``road=True`` (``--road``): ROAD's mean MoRF / LeRF probability (lower / higher is better)
seconds                                     wall time of the method's maps for this image and class (all requested layers)
eval_seconds                                this row's share of the wall time of its image's faithfulness forwards
model, steps, baseline, insertion_baseline  the run's options
precision, device                           the precision the curves RAN in (``--precision auto`` resolved) and the device
==========================================  =====================================================================================

A detector or segmenter (``LoadedModel.task``) writes one row per OBJECT instead (``OBJECT_COLUMNS``,
``--min-score``, ``--max-objects``; :mod:`methods.pipeline.evaluate_objects`).

Where it runs: ``--engine local`` (default; ``--workers`` processes, one per CPU core) or
``--engine ray`` (Ray Data actors, ``--ray-address`` / ``$RAY_ADDRESS`` joins a cluster), each
worker loading the model once (:mod:`methods.pipeline.engines`); the table is the same either way.
Each image's maps are scored by :func:`methods.metrics.faithfulness.image_scores.image_scores`, which runs the
forwards the maps share once. See docs/batch.md.

A summary (mean ± std per method x layer, references included) is printed at the end, with a
warning for every method x layer that does not beat the random map (:func:`chance_warnings`).
"""

from __future__ import annotations

import io
import pathlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from methods._internal.checks import check_bool, check_choice, check_int, check_number
from methods.cams.core.explain import resolve_layers
from methods.data.annotated import AnnotatedOptions
from methods.data.scenes import CLASS_NAMES
from methods.errors import OptionError
from methods.metrics.faithfulness import curves as fa
from methods.pipeline.batch_files import check_writable, write_atomic
from methods.pipeline.common import layers_arg, load_model_arg, method_names, worker_model
from methods.pipeline.engines import check_engine
from methods.pipeline.evaluate_objects import OBJECT_TASKS
from methods.pipeline.evaluate_parts import EvalCheckpoint
from methods.pipeline.evaluate_work import EvalSpec, run_evaluation
from methods.pipeline.sources import Sample, parse_images, sample_items
from methods.pipeline.summary import REFERENCES, chance_warnings, format_summary, summarize
from methods.review.csv_safe import csv_bytes

__all__ = ["REFERENCES", "Sample", "parse_images", "evaluate", "summarize", "format_summary", "chance_warnings"]
"""Reference maps added to every evaluation (information-free controls)."""

COLUMNS: tuple[str, ...] = (
    "image",
    "seed",
    "label",
    "predicted",
    "method",
    "layer",
    "target",
    "target_name",
    "prob",
    "deletion_auc",
    "insertion_auc",
    "avg_drop",
    "increase",
    "pointing_hit",
    "energy_pg",
    "seconds",
    "eval_seconds",
    "model",
    "steps",
    "baseline",
    "insertion_baseline",
    "precision",
    "device",
)

ROAD_COLUMNS: tuple[str, ...] = ("road_morf", "road_lerf")
"""Added after ``COLUMNS`` when the evaluation ran with ``road=True``."""

_OBJECT_OPTIONS = ("min_score", "max_objects", "curves")

OBJECT_COLUMNS: tuple[str, ...] = (
    "image",
    "seed",
    "object",
    "label",
    "label_name",
    "box",
    "detected",
    "score",
    "method",
    "layer",
    "pointing_hit",
    "energy_pg",
    "deletion_auc",
    "insertion_auc",
    "seconds",
    "eval_seconds",
    "model",
    "task",
    "steps",
    "baseline",
    "insertion_baseline",
    "precision",
    "device",
)
"""The table of a detector or segmenter: one row per object x method x layer (a ground-truth
object the detector missed: one row, ``detected`` False, no method) (:mod:`methods.pipeline.evaluate_objects`)."""


# --------------------------------------------------------------------------------------------
# The evaluation


def _check_methods(names: Sequence[str]) -> list[str]:
    clash = [n.strip() for n in names if isinstance(n, str) and n.strip() in REFERENCES]
    if clash:
        raise OptionError(
            f"methods {clash} are the evaluation's reference maps, added to every run (random = i.i.d. noise on "
            "the layer's grid, centre = a centred Gaussian); leave them out of methods"
        )
    return method_names(list(names))


def _check_out(out: Any) -> pathlib.Path | None:
    if out is None:
        return None
    path = pathlib.Path(out)
    if path.suffix.lower() not in (".parquet", ".csv"):
        raise OptionError(f"out={str(out)!r} must end in .parquet or .csv")
    if path.is_dir():
        raise OptionError(f"out={str(out)!r} is a folder; give a .parquet or .csv file name")
    check_writable(path.parent, f"out={str(out)!r}: its folder")  # before the run, not after it
    return path


def evaluate(
    model: Any,
    images: str,
    *,
    methods: Sequence[str] = ("gradcam",),
    layers: Any = "default",
    seed: int = 0,
    steps: int = 50,
    baseline: str = fa.DEFAULT_BASELINES["deletion"],
    insertion_baseline: str = fa.DEFAULT_BASELINES["insertion"],
    precision: str = "auto",
    batch_size: int = 32,
    references: bool = True,
    out: str | pathlib.Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    engine: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    device: Any = None,
    min_score: float = 0.5,
    max_objects: int = 20,
    dataset_options: AnnotatedOptions | None = None,
    road: bool = False,
) -> pd.DataFrame:
    """Score every map of every image; one row per image x method x layer x explained class.

    Args:
        model: catalog name (``methods.models.catalog.load_model``) or a ``LoadedModel``.
        images: ``"scenes:N"``, ``"scenes2:N"``, a folder, or an annotated data set
            (``"coco:ANN.json[:IMAGES_DIR]"``, ``"voc:DIR"``, ``"imagefolder:DIR"``, ``"masks:DIR"``;
            docs/datasets.md) (see the module docstring).
        methods: registry keys; ``random`` and ``centre`` are the references and are added by
            ``references=True``.
        layers: ``"default"``, ``"all"``, comma-separated names or a list of names.
        seed: scene seed offset (scenes start at the evaluation range) and reference-map seed.
        steps, baseline, precision, batch_size: curve options (:func:`methods.metrics.faithfulness.curves.deletion_curve`);
            ``insertion_baseline`` is the insertion curve's start.
        references: add the ``random`` and ``centre`` reference rows.
        out: write the table to this ``.parquet`` or ``.csv`` file: checked before the run (not
            a folder; its folder is created and must be writable), written atomically after it
            (a hidden partial file in the same folder renamed over ``out``). Every finished image
            is checkpointed beside it (:mod:`methods.pipeline.evaluate_parts`): a run killed even
            with SIGKILL resumes where it stopped when run again with the same arguments.
        progress: show a tqdm bar (stderr).
        log: where notes go (skipped files); default: stderr.
        engine, workers, ray_address: where the images are scored (:mod:`methods.pipeline.engines`:
            ``"local"`` process pool, default one worker per CPU core, or ``"ray"``).
        device: where the model runs (default ``$GRADLENS_DEVICE``, else CUDA when present).
        min_score: a detector's boxes kept on pictures without ground truth: score >= this, in [0, 1].
        max_objects: at most this many objects per picture (1 to 100): a detector's best boxes, a
            segmenter's largest predicted classes.
        dataset_options: limits and the class map of an annotated data set
            (:class:`methods.data.annotated.AnnotatedOptions`; default its defaults).
        road: add the ``road_morf`` and ``road_lerf`` columns (:mod:`methods.metrics.faithfulness.road`;
            classifiers only; slow: 18 sparse solves per map).

    A detection or segmentation model (``LoadedModel.task``) writes one row per OBJECT
    (``OBJECT_COLUMNS``; :mod:`methods.pipeline.evaluate_objects`): on the scenes the ground-truth
    objects, on a folder the model's own boxes or predicted classes.

    Returns:
        The table (``COLUMNS``, or ``OBJECT_COLUMNS`` for a detector or segmenter), also written to ``out`` if given.

    Raises:
        ValueError: bad options, scenes with a model not trained on the scenes' classes, no
            readable image, or an ``out`` that cannot be written (OptionError, before the run). UnknownMethodError / LayerError / UnknownModelError from the library.
    """
    say = log or (lambda s: print(s, file=sys.stderr))
    out_path = _check_out(out)
    names = _check_methods(list(methods))
    source = parse_images(images)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise OptionError(f"seed must be an int >= 0; got {seed!r}")
    check_int("steps", steps, 1)
    check_int("batch_size", batch_size, 1)
    deletion_start = check_choice("baseline", baseline, fa.BASELINES)
    insertion_start = check_choice("insertion_baseline", insertion_baseline, fa.BASELINES)
    curve_precision = check_choice("precision", precision, fa.PRECISIONS)
    check_number("min_score", min_score, minimum=0.0, maximum=1.0)
    check_int("max_objects", max_objects, 1, 100)
    loaded = load_model_arg(model, objects=True)
    class_names = tuple(loaded.class_names)
    objects = loaded.task in OBJECT_TASKS
    if source.kind == "annotated" and objects:
        raise OptionError(
            f"images={images!r}: annotated data sets are scored with classifiers for now; "
            f"{getattr(loaded, 'name', 'this model')!r} is a {loaded.task} model (its label numbering counts the "
            "background, which the annotated loaders do not map yet). Use a folder of the pictures instead."
        )
    if source.kind in ("scenes", "scenes2"):
        if class_names != (("background",) if objects else ()) + tuple(CLASS_NAMES):
            raise OptionError(
                f"images={images!r} needs a model trained on the scenes' classes {list(CLASS_NAMES)} "
                f"(scenes_vgg, scenes_resnet); {getattr(loaded, 'name', 'this model')!r} has {len(class_names)} other classes"
            )
    layer_names = resolve_layers(loaded.model, layers_arg(layers), tuple(loaded.input_size), loaded.default_layer)
    curve_opts = dict(steps=int(steps), batch_size=int(batch_size), precision=precision)

    engine, workers = check_engine(engine, workers)
    # its own table is never an input; an annotated set is listed and checked against the classes here
    items = sample_items(source, int(seed), exclude=out_path, class_names=class_names, options=dataset_options)
    n_workers = max(1, min(workers, len(items)))
    sent, spec_device, run_device = worker_model(model, loaded, device, engine == "local" and n_workers == 1)
    spec = EvalSpec(
        model=sent,
        names=tuple(names),
        layers=tuple(layer_names),
        seed=int(seed),
        precision=curve_precision,
        steps=int(steps),
        baseline=deletion_start,
        insertion_baseline=insertion_start,
        batch_size=int(batch_size),
        references=bool(references),
        device=spec_device,
        min_score=float(min_score),
        max_objects=int(max_objects),
        road=check_bool("road", road),
    )
    checkpoint = None
    if out_path is not None:  # every finished image is kept beside out: a killed run resumes
        settings = dict(
            model=str(getattr(loaded, "name", type(loaded.model).__name__)),
            images=str(images),
            # a classifier's settings stay as before the object options came: its checkpoints still resume
            **{
                k: v
                for k, v in vars(spec).items()
                if k not in ("model", "device") + (() if objects else _OBJECT_OPTIONS)
                and not (k == "road" and not v)  # checkpoints of runs without ROAD still resume
            },
            curve_precision=precision,
            # only for a data set: the settings (and checkpoints) of the other sources stay as they were
            **({"dataset": (dataset_options or AnnotatedOptions()).as_dict()} if source.kind == "annotated" else {}),
        )
        checkpoint = EvalCheckpoint(out_path, settings, say)
    rows, skipped, failed = run_evaluation(
        spec,
        items,
        engine=engine,
        workers=n_workers,
        ray_address=ray_address,
        bar=progress,
        num_gpus=1.0 if run_device.type == "cuda" else 0.0,
        checkpoint=checkpoint,
    )
    for name, why in failed:
        say(f"failed {name}: {why}")
    for name, why in skipped:
        say(f"skipped {name}: {why}")
    if not rows:
        raise OptionError(f"no image could be evaluated from images={images!r} ({len(skipped)} file(s) skipped)")
    table = _object_table if objects else _table
    df = table(rows, loaded, curve_opts, baseline, insertion_baseline)
    df.attrs["skipped"] = [f"{n}: {w}" for n, w in skipped]
    df.attrs["failed"] = [f"{n}: {w}" for n, w in failed]
    if out_path is not None:
        _write(df, out_path)
        assert checkpoint is not None
        checkpoint.close()
    return df


def _table(rows, loaded, curve_opts, baseline, insertion_baseline) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df["seed"] = df["seed"].astype("Int64")
    df["label"] = df["label"].astype("Int64")
    df["pointing_hit"] = df["pointing_hit"].astype("boolean")
    df["energy_pg"] = df["energy_pg"].astype("Float64")
    df["increase"] = df["increase"].astype(bool)
    df["model"] = str(getattr(loaded, "name", type(loaded.model).__name__))
    df["steps"] = curve_opts["steps"]
    df["baseline"] = baseline
    df["insertion_baseline"] = insertion_baseline
    return df[list(COLUMNS) + [c for c in ROAD_COLUMNS if c in df.columns]]


def _object_table(rows, loaded, curve_opts, baseline, insertion_baseline) -> pd.DataFrame:
    df = pd.DataFrame(rows).reindex(columns=list(OBJECT_COLUMNS))
    df["seed"] = df["seed"].astype("Int64")
    for col in ("pointing_hit", "detected"):
        df[col] = df[col].astype("boolean")
    for col in ("score", "energy_pg", "deletion_auc", "insertion_auc", "seconds", "eval_seconds"):
        df[col] = df[col].astype("Float64")
    df["model"] = str(getattr(loaded, "name", type(loaded.model).__name__))
    df["task"] = loaded.task
    df["steps"] = curve_opts["steps"]
    df["baseline"] = baseline
    df["insertion_baseline"] = insertion_baseline
    return df


def _write(df: pd.DataFrame, path: pathlib.Path) -> None:
    """The table to ``path`` atomically: a hidden partial file in the same folder renamed over it,
    so ``path`` is the old complete table or the new one, never half of either."""
    frame = df.copy()
    frame.attrs = {}
    if path.suffix.lower() == ".parquet":
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        data = buf.getvalue()
    else:
        data = csv_bytes(frame)  # text cells that would start a formula are neutralised
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise OptionError(f"out={str(path)!r} could not be written: {exc.strerror or exc}") from None
