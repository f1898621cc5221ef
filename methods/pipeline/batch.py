"""``python -m methods.batch``: the four views, the raw maps and a manifest for every image of a folder.

Usage::

    python -m methods.batch --model scenes_vgg --methods gradcam,gradcampp --layers default \\
        --images photos/ --out results/ [--targets top1|labels.csv] [--engine local|ray] \\
        [--workers N] [--batch-size 16] [--norm minmax] [--relu/--no-relu] [--scope per_map] \\
        [--cmap jet] [--alpha 0.5] [--precision auto] [--device cuda]

For every readable image under ``--images`` (recursive, sorted; unreadable files are listed with
the reason and skipped) and every method x layer it writes::

    OUTDIR/<relative path>/original.png                          the image as the model sees it
    OUTDIR/<relative path>/<method>__<layer>__grayscale.png       the dashboard's three views
    OUTDIR/<relative path>/<method>__<layer>__heatmap.png
    OUTDIR/<relative path>/<method>__<layer>__overlay.png
    OUTDIR/<relative path>/maps.npz                               every raw map of the image (key <method>__<layer>)
    OUTDIR/manifest.parquet                                       one row per image x method x layer
    OUTDIR/skipped.csv                                            this run's skipped and failed images

A detector or segmenter gets one set of maps and one manifest row per object
(``object<k>__<method>__<layer>__<view>.png``; :mod:`methods.pipeline.batch_objects`).

The pictures are the dashboard's for the same settings (:mod:`methods.pipeline.batch_worker`). The
run is resumable: rows already in the manifest with the same settings are skipped, and a killed
run loses only the batch in flight (:mod:`methods.pipeline.manifest`). Engines: :mod:`methods.pipeline.engines`.
The long form, with measured speeds, is docs/batch.md.
"""

from __future__ import annotations

import pathlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from methods._internal.checks import check_bool, check_choice, check_int, check_number
from methods._internal.progress import Progress
from methods._internal.torch_utils import PRECISION_CHOICES
from methods.cams.core.explain import resolve_layers
from methods.data.annotated import AnnotatedOptions, is_dataset, parse_dataset
from methods.errors import OptionError
from methods.pipeline import engines
from methods.pipeline.batch_dataset import dataset_images, dataset_root
from methods.pipeline.batch_files import (
    PROBLEMS,
    file_stamp,
    find_images,
    prepare_out,
    read_labels,
    remove_partials,
    write_atomic,
)
from methods.pipeline.batch_worker import BatchSpec
from methods.pipeline.common import import_plugins, layers_arg, load_model_arg, method_names, worker_model
from methods.pipeline.evaluate_objects import OBJECT_TASKS
from methods.pipeline.manifest import MANIFEST, PARTS, ManifestStore, done_pairs, settings_id
from methods.review.csv_safe import csv_bytes
from methods.viz.normalize import MODES, SCOPES
from methods.viz.render import COLORMAPS

__all__ = ["BatchResult", "run_batch"]


@dataclass(frozen=True)
class BatchResult:
    """What a batch run did.

    Attributes:
        out: the output folder.
        manifest: the whole manifest after the run (every run's rows, not only this one's).
        done: images computed in this run.
        already: images skipped because the manifest held all their maps (same settings).
        skipped: ``(image, reason)`` of files that could not be read (or had no label).
        failed: ``(image, error)`` of images whose maps or pictures failed.
        seconds: wall time of the run.
    """

    out: pathlib.Path
    manifest: pd.DataFrame
    done: int
    already: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


RESERVED: tuple[str, ...] = (MANIFEST, PROBLEMS, PARTS)
"""Names the run keeps for its own files at the top of the output folder: an image whose output
folder would take one (``skipped.csv``, ``manifest.parquet/x.png`` ...) is skipped with a reason."""


def _reserved(rel: str) -> bool:
    return rel.split("/")[0].casefold() in {name.casefold() for name in RESERVED}


def _reserved_reason(rel: str) -> str:
    return (
        f"its output folder OUTDIR/{rel.split('/')[0]} is a name reserved for the batch's own "
        f"{', '.join(RESERVED)}; rename the file or its folder"
    )


def _check_pictures(norm, relu, scope, percentiles, cmap, alpha) -> tuple[float, float]:
    check_choice("norm", norm, MODES)
    check_bool("relu", relu)
    check_choice("scope", scope, SCOPES)
    check_choice("cmap", cmap, sorted(COLORMAPS))
    check_number("alpha", alpha, minimum=0.0, maximum=1.0)
    try:
        lo, hi = (float(v) for v in percentiles)
    except (TypeError, ValueError):
        lo, hi = -1.0, -1.0
    if not 0.0 <= lo < hi <= 100.0:
        raise OptionError(f"percentiles={percentiles!r} must be two numbers with 0 <= low < high <= 100")
    return lo, hi


def run_batch(
    model: Any,
    images: str | pathlib.Path,
    out: str | pathlib.Path,
    *,
    methods: Sequence[str] | str = ("gradcam",),
    layers: Any = "default",
    targets: str | pathlib.Path = "top1",
    engine: str = "local",
    workers: int | None = None,
    batch_size: int = 16,
    norm: str = "minmax",
    relu: bool = True,
    scope: str = "per_map",
    percentiles: Sequence[float] = (1.0, 99.0),  # two numbers, checked here
    cmap: str = "jet",
    alpha: float = 0.5,
    precision: str = "auto",
    device: Any = None,
    ray_address: str | None = None,
    plugins: Sequence[str] | str = (),
    progress: Progress | None = None,
    bar: bool = False,
    log: Callable[[str], None] | None = None,
    min_score: float = 0.5,
    max_objects: int = 20,
    dataset_options: AnnotatedOptions | None = None,
) -> BatchResult:
    """Write the views, raw maps and manifest rows of every image under ``images`` (see the module docstring).

    Args:
        model: catalog name, or a ``LoadedModel`` (sent to each worker process).
        images: the input folder (searched recursively), or an annotated data set
            (``coco:ANN.json[:IMAGES_DIR]``, ``voc:DIR``, ``imagefolder:DIR``; docs/datasets.md): each
            image is explained for the class its annotations name (an image naming several classes is
            skipped; :mod:`methods.pipeline.batch_dataset`).
        out: the output folder (created; may already hold an earlier run to resume). Images whose
            output folder would take a name the run keeps (:data:`RESERVED`) are skipped.
        methods: registry keys (list or comma-separated).
        layers: ``"default"``, ``"all"``, comma-separated module names or a list.
        targets: ``"top1"`` (each image's predicted class) or a CSV label file (columns
            ``image,label``; images not in it are skipped).
        engine, workers, ray_address: where the work runs (:mod:`methods.pipeline.engines`); workers
            default to the CPU cores, and never exceed the number of batches.
        batch_size: images per forward+backward (and per worker call).
        norm, relu, scope, percentiles, cmap, alpha: the pictures, with the dashboard's
            defaults (min-max after ReLU, each map on its own scale, jet, 0.5); ``scope="shared"``
            puts all maps of one image on one scale.
        precision: for forward methods (score family): ``"auto"`` (bf16 where native, else fp32),
            ``"fp32"`` or ``"bf16"``; gradient maps always run in fp32.
        device: where models run (default ``$GRADLENS_DEVICE``, else CUDA when present, else CPU).
        plugins: modules that register your own methods, imported here and in every worker.
        progress: ``(images finished, images to do)`` callback after every batch (raising
            :class:`methods.errors.Cancelled` from it stops the run; what finished is kept).
        bar: show a tqdm progress bar (images/s, time left) on stderr.
        log: where notes go (default: stderr).
        min_score: a detector's boxes explained: score >= this, in [0, 1].
        max_objects: at most this many objects per picture (1 to 100).
        dataset_options: limits and class map of an annotated data set (``AnnotatedOptions``).

    A detection or segmentation model (``LoadedModel.task``) gets one set of maps and one row per
    OBJECT: its own boxes or predicted classes (:mod:`methods.pipeline.batch_objects`).

    Returns:
        A :class:`BatchResult`.

    Raises:
        OptionError, UnknownMethodError, LayerError, UnknownModelError: bad arguments, before any work;
            among them an ``out`` that is ``images`` or holds it, is a file, or cannot be written.
        EngineError: the engine could not run (what finished is kept).
    """
    t0 = time.perf_counter()
    say = log or (lambda s: print(s, file=sys.stderr))
    plugin_names = import_plugins(plugins)
    names = method_names(methods)
    lo, hi = _check_pictures(norm, relu, scope, percentiles, cmap, alpha)
    check_choice("precision", precision, PRECISION_CHOICES)
    batch_size = check_int("batch_size", batch_size, 1)
    engine, workers = engines.check_engine(engine, workers)
    dataset = parse_dataset(images) if isinstance(images, str) and is_dataset(images) else None
    root, out = pathlib.Path(images) if dataset is None else dataset_root(dataset), pathlib.Path(out)
    if dataset is None:
        rels = find_images(root, exclude=out if out.resolve().is_relative_to(root.resolve()) else None)
    check_number("min_score", min_score, minimum=0.0, maximum=1.0)
    max_objects = check_int("max_objects", max_objects, 1, 100)
    loaded = load_model_arg(model, objects=True)
    objects = loaded.task in OBJECT_TASKS
    given: list[tuple[str, str]] = []  # a data set's images that cannot be explained for one class
    if dataset is not None:
        if objects or str(targets) != "top1":
            raise OptionError(
                f"images={str(images)!r} is an annotated data set: its annotations give each image's class, for a "
                "classifier; leave targets at 'top1' (a label file would give them twice) and use a classifier"
            )
        root, rels, annotated, given = dataset_images(dataset, loaded.class_names, dataset_options)
    if objects and str(targets) != "top1":
        raise OptionError(
            f"targets={str(targets)!r}: a label file names one class per image; {loaded.name} is a {loaded.task} "
            "model, whose objects are its own boxes or predicted classes: leave targets at 'top1'"
        )
    layer_names = list(resolve_layers(loaded.model, layers_arg(layers), tuple(loaded.input_size), loaded.default_layer))
    labels = None if str(targets) == "top1" else read_labels(pathlib.Path(targets), loaded.class_names)
    labels = annotated if dataset is not None else labels
    pairs = [(m, layer) for m in names for layer in layer_names]
    settings = dict(
        model=loaded.name,
        norm=norm,
        relu=bool(relu),
        scope=scope,
        percentiles=[lo, hi],
        cmap=cmap,
        alpha=float(alpha),
        precision=precision,
        targets="top1" if labels is None else "labels",
    )
    if objects:  # only here: a classifier's settings id stays as it was (its runs still resume)
        settings.update(min_score=float(min_score), max_objects=int(max_objects))
    if scope == "shared":  # one scale over the image's maps: the set of maps changes every picture
        settings["pairs"] = pairs
    sid = settings_id(settings)

    prepare_out(root, out, keep=(MANIFEST, PROBLEMS))  # every argument checked; no work done yet
    if n := remove_partials(out):
        say(f"removed {n} partial file(s) an interrupted run left behind")
    store = ManifestStore(out, log=say)
    skipped: list[tuple[str, str]] = given + [(rel, _reserved_reason(rel)) for rel in rels if _reserved(rel)]
    rels = [rel for rel in rels if not _reserved(rel)]
    stamps = {rel: file_stamp(root / rel) for rel in rels}
    wanted = {rel: (labels.get(rel) if labels is not None else None) for rel in rels}
    done = done_pairs(store.fold(), sid, stamps, wanted)
    failed: list[tuple[str, str]] = []
    items, already = [], 0
    for rel in rels:
        if labels is not None and rel not in labels:
            skipped.append((rel, f"no label in {targets}"))
            continue
        have = done.get(rel, set())
        missing = [p for p in pairs if p not in have]
        if not missing:
            already += 1
            continue
        items.append(
            {
                "image": rel,
                "pairs": pairs if scope == "shared" else missing,
                "label": wanted[rel],
                "file_size": stamps[rel][0],
                "file_mtime_ns": stamps[rel][1],
                "merge": bool(have),
            }
        )

    n_workers = max(1, min(workers, -(-len(items) // batch_size)))  # never more workers than batches
    sent, spec_device, run_device = worker_model(model, loaded, device, engine == "local" and n_workers == 1)
    spec = BatchSpec(
        model=sent,
        model_name=loaded.name,
        root=str(root),
        out=str(out),
        norm=norm,
        relu=bool(relu),
        scope=scope,
        percentiles=(lo, hi),
        cmap=cmap,
        alpha=float(alpha),
        precision=precision,
        device=spec_device,
        plugins=plugin_names,
        sid=sid,
        min_score=float(min_score),
        max_objects=int(max_objects),
    )
    from tqdm.auto import tqdm

    tq = tqdm(total=len(items), desc="batch", unit=" images", disable=not bar, file=sys.stderr, dynamic_ncols=True)
    finished, n_done = [0], [0]

    def on_results(results: list[dict]) -> None:
        rows = []
        for r in results:
            if r["status"] == "done":
                rows += r["rows"]
                n_done[0] += 1
            else:
                (skipped if r["status"] == "skipped" else failed).append((r["image"], r["reason"]))
        store.append(rows)  # persisted before the bar moves: a kill from here on loses nothing of it
        store.fold_if_due()
        finished[0] += len(results)
        tq.update(len(results))
        if progress is not None:
            progress(finished[0], len(items))

    try:
        engines.run_items(
            spec,
            items,
            on_results=on_results,
            engine=engine,
            workers=n_workers,
            batch_size=batch_size,
            ray_address=ray_address,
            num_gpus=1.0 if run_device.type == "cuda" else 0.0,
        )
    finally:
        tq.close()
        manifest = store.fold()
        _write_problems(out, skipped, failed)
    for what, entries in (("skipped", skipped), ("failed", failed)):
        for image, why in entries:
            say(f"{what} {image}: {why}")
    return BatchResult(out, manifest, n_done[0], already, skipped, failed, time.perf_counter() - t0)


def _write_problems(out: pathlib.Path, skipped, failed) -> None:
    df = pd.DataFrame(
        [(i, "skipped", w) for i, w in skipped] + [(i, "failed", w) for i, w in failed],
        columns=["image", "status", "reason"],
    )
    write_atomic(out / PROBLEMS, csv_bytes(df))  # file names that would start a formula are neutralised
