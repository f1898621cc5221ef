"""Evaluate CAM methods on a data set from the command line: faithfulness and localization per map.

Usage::

    python -m methods.cli.evaluate --model scenes_vgg --methods gradcam,gradcampp,scorecam \\
        --layers default --images scenes:200 --seed 0 --out results.parquet

``--images`` is one of

* ``scenes:N``  — N single-object scenes ``make_scene(EVAL_SINGLE_START + seed + i)``; the seeds
  start at 10_000_000, a range the bundled models never saw in training (see :mod:`methods.data.scenes`).
  The explained class is the object's true class; its mask gives the pointing game and energy.
* ``scenes2:N`` — N two-object scenes ``make_scene(EVAL_TWO_START + seed + i, n_objects=2)``
  (seeds from 11_000_000); EACH of the two classes is explained, one row per class, scored against
  its own object's mask.
* a folder — every file in it (not recursive, sorted by name) that :func:`methods.data.images.load_image`
  can read; other files are reported and skipped. The explained class is the model's top-1; there
  is no ground truth, so ``label``, ``pointing_hit`` and ``energy_pg`` are empty.

``--layers`` is ``default``, ``all`` or comma-separated module names. The output (``.parquet`` or
``.csv``) has one row per image x method x layer x explained class, plus rows for the two reference
maps ``random`` and ``centre`` (:func:`methods.metrics.faithfulness.reference_maps`, on each layer's own
grid; the random map's seed is ``seed + image index``). Columns:

==============  ==============================================================================
image           file name, or ``scene:<seed>``
seed            the scene's seed (empty for files)
label           true class index (empty without ground truth)
predicted       the model's top-1 class index
method, layer   what made the map
target          the explained class index; ``target_name`` its name; ``prob`` its probability
deletion_auc    RISE deletion AUC (``--baseline``, default blur; RISE's own is zero): lower is better
insertion_auc   RISE insertion AUC (from ``--insertion-baseline``, default blur): higher is better
avg_drop        Grad-CAM++ drop in %, masking in the normalized input space
increase        Grad-CAM++ increase in confidence (bool)
pointing_hit    pointing game (bool, tolerance 0)
energy_pg       energy-based pointing game in [0, 1]
seconds         wall time of the method's maps for this image and class (all requested layers)
eval_seconds    wall time of this row's faithfulness scores
model, steps, baseline, insertion_baseline, precision   the run's options
==============  ==============================================================================

A summary (mean ± std per method x layer, references included) is printed at the end, with a
warning for every method x layer that does not beat the random map (:func:`chance_warnings`).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from methods._checks import check_choice, check_int
from methods.metrics import faithfulness as fa
from methods.errors import GradLensError, OptionError, WrongTypeError
from methods.cli.sources import Sample, parse_images, samples
from methods.cli.summary import REFERENCES, chance_warnings, format_summary, summarize
from methods.review.csv_safe import csv_bytes
from methods.metrics.localization import energy_pointing_game, pointing_game

__all__ = ["REFERENCES", "Sample", "parse_images", "evaluate", "summarize", "format_summary", "chance_warnings", "main"]
"""Reference maps added to every evaluation (information-free controls)."""

COLUMNS: tuple[str, ...] = (
    "image", "seed", "label", "predicted", "method", "layer", "target", "target_name", "prob",
    "deletion_auc", "insertion_auc", "avg_drop", "increase", "pointing_hit", "energy_pg",
    "seconds", "eval_seconds", "model", "steps", "baseline", "insertion_baseline", "precision",
)


# --------------------------------------------------------------------------------------------
# The evaluation


def _load(model: Any):
    if isinstance(model, str):
        from methods.models.catalog import load_model

        return load_model(model)
    if not hasattr(model, "model") or not hasattr(model, "preprocess"):
        raise WrongTypeError(f"model must be a catalog name or a LoadedModel; got {type(model).__name__}")
    return model


def _check_methods(names: Sequence[str]) -> list[str]:
    from methods.cams.registry import get_method

    names = [n.strip() for n in names if n and n.strip()]
    if not names:
        raise OptionError("methods is empty; name at least one method, e.g. gradcam")
    clash = [n for n in names if n in REFERENCES]
    if clash:
        raise OptionError(
            f"methods {clash} are the evaluation's reference maps, added to every run (random = i.i.d. noise on "
            "the layer's grid, centre = a centred Gaussian); leave them out of methods"
        )
    if len(set(names)) != len(names):
        raise OptionError(f"methods {names} contain duplicates")
    for n in names:
        get_method(n)  # UnknownMethodError names the closest registered methods
    return names


def _layers_arg(layers: Any) -> Any:
    if layers is None or layers == "default":
        return None
    if layers == "all":
        return "all"
    if isinstance(layers, str):
        names = [s.strip() for s in layers.split(",") if s.strip()]
        if not names:
            raise OptionError(f"layers={layers!r}: give 'default', 'all' or comma-separated module names")
        return names
    return list(layers)


def _check_out(out: Any) -> pathlib.Path | None:
    if out is None:
        return None
    path = pathlib.Path(out)
    if path.suffix.lower() not in (".parquet", ".csv"):
        raise OptionError(f"out={str(out)!r} must end in .parquet or .csv")
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
    precision: str = "fp32",
    batch_size: int = 32,
    references: bool = True,
    out: str | pathlib.Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Score every map of every image; one row per image x method x layer x explained class.

    Args:
        model: catalog name (``methods.models.catalog.load_model``) or a ``LoadedModel``.
        images: ``"scenes:N"``, ``"scenes2:N"`` or a folder (see the module docstring).
        methods: registry keys; ``random`` and ``centre`` are the references and are added by
            ``references=True``.
        layers: ``"default"``, ``"all"``, comma-separated names or a list of names.
        seed: scene seed offset (scenes start at the evaluation range) and reference-map seed.
        steps, baseline, precision, batch_size: curve options (:func:`methods.metrics.faithfulness.deletion_curve`);
            ``insertion_baseline`` is the insertion curve's start.
        references: add the ``random`` and ``centre`` reference rows.
        out: write the table to this ``.parquet`` or ``.csv`` file.
        progress: show a tqdm bar (stderr).
        log: where notes go (skipped files); default: stderr.

    Returns:
        The table (``COLUMNS``), also written to ``out`` if given.

    Raises:
        ValueError: bad options, scenes with a model not trained on the scenes' classes, or no
            readable image. UnknownMethodError / LayerError / UnknownModelError from the library.
    """
    from methods.cams.explain import explain_many, resolve_layers

    say = log or (lambda s: print(s, file=sys.stderr))
    out_path = _check_out(out)
    names = _check_methods(list(methods))
    source = parse_images(images)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise OptionError(f"seed must be an int >= 0; got {seed!r}")
    check_int("steps", steps, 1)
    check_int("batch_size", batch_size, 1)
    check_choice("baseline", baseline, fa.BASELINES)
    check_choice("insertion_baseline", insertion_baseline, fa.BASELINES)
    check_choice("precision", precision, fa.PRECISIONS)
    loaded = _load(model)
    class_names = tuple(loaded.class_names)
    if source.kind != "folder":
        from methods.data.scenes import CLASS_NAMES

        if class_names != tuple(CLASS_NAMES):
            raise OptionError(
                f"images={images!r} needs a model trained on the scenes' classes {list(CLASS_NAMES)} "
                f"(scenes_vgg, scenes_resnet); {getattr(loaded, 'name', 'this model')!r} has {len(class_names)} other classes"
            )
    layer_names = resolve_layers(loaded.model, _layers_arg(layers), tuple(loaded.input_size), loaded.default_layer)
    curve_opts = dict(steps=int(steps), batch_size=int(batch_size), precision=precision)

    skipped: list[tuple[str, str]] = []
    rows: list[dict] = []
    from tqdm.auto import tqdm

    bar = tqdm(total=source.count, desc="evaluating", unit="image", disable=not progress, file=sys.stderr)
    counted = 0  # skipped files already shown on the bar
    try:
        for index, sample in enumerate(samples(source, int(seed), skipped)):
            x = loaded.preprocess(sample.image)[None]  # (1, 3, H, W)
            targets = list(sample.labels) if sample.labels else [None]
            for k, target in enumerate(targets):
                exps = explain_many(loaded, x, names, layers=layer_names, target=target)
                first = exps[names[0]]
                predicted = int(first.probs[0].argmax())
                t = int(first.targets[0])
                mask = sample.masks[k] if sample.masks is not None else None
                maps: list[tuple[str, str, torch.Tensor, float]] = []
                for name in names:
                    for layer in layer_names:
                        maps.append((name, layer, exps[name].maps[layer][0], exps[name].seconds))
                if references:
                    for layer in layer_names:
                        size = tuple(exps[names[0]].maps[layer].shape[-2:])
                        for ref, m in fa.reference_maps(size, seed=int(seed) + index).items():
                            maps.append((ref, layer, m, 0.0))
                for name, layer, sal, seconds in maps:
                    t1 = time.perf_counter()
                    dele = fa.deletion_curve(loaded, x, sal, t, baseline=baseline, **curve_opts)
                    ins = fa.insertion_curve(loaded, x, sal, t, baseline=insertion_baseline, **curve_opts)
                    conf = fa.confidence_change(loaded, x, sal, t, precision=precision)
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
                            deletion_auc=dele.auc,
                            insertion_auc=ins.auc,
                            avg_drop=conf.drop,
                            increase=conf.increase,
                            pointing_hit=pointing_game(sal, mask) if mask is not None else None,
                            energy_pg=energy_pointing_game(sal, mask) if mask is not None else None,
                            seconds=seconds,
                            eval_seconds=time.perf_counter() - t1,
                        )
                    )
            bar.update(1 + len(skipped) - counted)  # skipped files count as done too
            counted = len(skipped)
        bar.update(len(skipped) - counted)
    finally:
        bar.close()
    for name, why in skipped:
        say(f"skipped {name}: {why}")
    if not rows:
        raise OptionError(f"no image could be evaluated from images={images!r} ({len(skipped)} file(s) skipped)")
    df = _table(rows, loaded, curve_opts, baseline, insertion_baseline)
    df.attrs["skipped"] = [f"{n}: {w}" for n, w in skipped]
    if out_path is not None:
        _write(df, out_path)
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
    df["precision"] = curve_opts["precision"]
    return df[list(COLUMNS)]


def _write(df: pd.DataFrame, path: pathlib.Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = df.copy()
    frame.attrs = {}
    if path.suffix.lower() == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        path.write_bytes(csv_bytes(frame))  # text cells that would start a formula are neutralised


# --------------------------------------------------------------------------------------------
# Command line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m methods.evaluate",
        description="Faithfulness (deletion/insertion AUC, Average Drop, Increase in Confidence) and localization "
        "(pointing game, energy) of CAM methods on a data set, with random and centre reference maps.",
    )
    p.add_argument("--model", required=True, help="catalog model name, e.g. scenes_vgg or resnet50")
    p.add_argument("--methods", default="gradcam", help="comma-separated method keys (default: gradcam)")
    p.add_argument("--layers", default="default", help="'default', 'all' or comma-separated module names")
    p.add_argument("--images", required=True, help="scenes:N, scenes2:N or a folder of images")
    p.add_argument("--seed", type=int, default=0, help="scene seed offset and reference-map seed (default 0)")
    p.add_argument("--out", required=True, help="output table, .parquet or .csv")
    p.add_argument("--steps", type=int, default=50, help="deletion/insertion steps (default 50)")
    p.add_argument("--baseline", default=fa.DEFAULT_BASELINES["deletion"],
                   help=f"what deleted pixels become: {', '.join(fa.BASELINES)} (default blur; zero is RISE's)")
    p.add_argument("--insertion-baseline", default="blur", help="the insertion curve's starting image (default blur)")
    p.add_argument("--precision", default="fp32", help=f"{' or '.join(fa.PRECISIONS)} (default fp32)")
    p.add_argument("--batch-size", type=int, default=32, help="perturbed images per forward (default 32)")
    p.add_argument("--no-references", action="store_true", help="leave out the random and centre reference rows")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 ok, 2 bad input)."""
    args = _parser().parse_args(argv)
    try:
        df = evaluate(
            args.model,
            args.images,
            methods=args.methods.split(","),
            layers=args.layers,
            seed=args.seed,
            steps=args.steps,
            baseline=args.baseline,
            insertion_baseline=args.insertion_baseline,
            precision=args.precision,
            batch_size=args.batch_size,
            references=not args.no_references,
            out=args.out,
            progress=not args.quiet,
        )
    except (GradLensError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n_images = df["image"].nunique()
    skipped = len(df.attrs.get("skipped", []))
    print(f"{n_images} image(s), {len(df)} rows -> {args.out}" + (f" ({skipped} file(s) skipped)" if skipped else ""))
    summary = summarize(df)
    print(format_summary(summary))
    for line in chance_warnings(summary):
        print(line)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
