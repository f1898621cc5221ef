"""``python -m methods.evaluate`` / ``gradlens evaluate``: the command line of :func:`methods.pipeline.evaluate.evaluate`.

What the table holds and how ``--images`` is read is documented in :mod:`methods.pipeline.evaluate`;
this module is argparse only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from methods.cli.dataset_options import add_dataset_options, dataset_options
from methods.cli.model_options import add_model_options, model_arg
from methods.cli.object_options import add_object_options
from methods.errors import GradLensError
from methods.metrics.faithfulness import curves as fa
from methods.pipeline.evaluate import evaluate
from methods.pipeline.summary import chance_warnings, format_summary, summarize

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m methods.evaluate",
        description="Faithfulness (deletion/insertion AUC, Average Drop, Increase in Confidence) and localization "
        "(pointing game, energy) of CAM methods on a data set, with random and centre reference maps.",
    )
    add_model_options(p)
    p.add_argument("--methods", default="gradcam", help="comma-separated method keys (default: gradcam)")
    p.add_argument("--layers", default="default", help="'default', 'all' or comma-separated module names")
    p.add_argument(
        "--images",
        required=True,
        help="scenes:N, scenes2:N, a folder of images, or an annotated data set: coco:ANN.json[:IMAGES_DIR], "
        "voc:DIR, imagefolder:DIR, masks:DIR (docs/datasets.md)",
    )
    p.add_argument("--seed", type=int, default=0, help="scene seed offset and reference-map seed (default 0)")
    p.add_argument("--out", required=True, help="output table, .parquet or .csv")
    p.add_argument("--steps", type=int, default=50, help="deletion/insertion steps (default 50)")
    p.add_argument(
        "--baseline",
        default=fa.DEFAULT_BASELINES["deletion"],
        help=f"what deleted pixels become: {', '.join(fa.BASELINES)} (default blur; zero is RISE's)",
    )
    p.add_argument("--insertion-baseline", default="blur", help="the insertion curve's starting image (default blur)")
    p.add_argument("--precision", default="auto", help=f"{', '.join(fa.PRECISIONS)} (default auto: bf16 where native)")
    p.add_argument("--batch-size", type=int, default=32, help="perturbed images per forward (default 32)")
    p.add_argument("--no-references", action="store_true", help="leave out the random and centre reference rows")
    p.add_argument("--road", action="store_true", help="add ROAD's road_morf / road_lerf columns (slow)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--engine", default="local", help="local (process pool) or ray (Ray Data); default local")
    p.add_argument("--workers", type=int, default=None, help="processes or Ray actors (default: the CPU cores)")
    p.add_argument("--ray-address", default=None, help="Ray cluster to join (default $RAY_ADDRESS; none: a local Ray)")
    add_object_options(p)
    add_dataset_options(p)
    p.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 ... (default $GRADLENS_DEVICE, else CUDA if present)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 ok, 2 bad input)."""
    args = _parser().parse_args(argv)
    try:
        df = evaluate(
            model_arg(args),
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
            engine=args.engine,
            workers=args.workers,
            ray_address=args.ray_address,
            device=args.device,
            min_score=args.min_score,
            max_objects=args.max_objects,
            dataset_options=dataset_options(args),
            road=args.road,
        )
    except (GradLensError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file the run writes failed (disk full, folder removed or made read-only)
        print(f"error: could not write under out={args.out!r}: {exc}", file=sys.stderr)
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
