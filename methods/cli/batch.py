"""``python -m methods.batch`` / ``gradlens batch``: the command line of :func:`methods.pipeline.batch.run_batch`.

What a run writes, how it resumes and where it runs is documented in :mod:`methods.pipeline.batch`
and docs/batch.md; this module is argparse only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from methods.cli.dataset_options import add_dataset_options, dataset_options
from methods.cli.model_options import add_model_options, model_arg
from methods.cli.object_options import add_object_options
from methods.errors import GradLensError
from methods.pipeline.batch import run_batch
from methods.viz.normalize import MODES, SCOPES

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m methods.batch",
        description=(
            "Write the four views (original, grayscale, heatmap, overlay) and the raw maps of every image in a folder, "
            "with a manifest; resumable; on a local process pool or a Ray cluster."
        ),
    )
    add_model_options(p)
    p.add_argument("--methods", default="gradcam", help="comma-separated method keys (default: gradcam)")
    p.add_argument("--layers", default="default", help="'default', 'all' or comma-separated module names")
    p.add_argument(
        "--images",
        required=True,
        help="folder of images (searched recursively), or an annotated data set: coco:ANN.json[:IMAGES_DIR], "
        "voc:DIR, imagefolder:DIR (each image explained for its annotated class; docs/datasets.md)",
    )
    p.add_argument("--out", required=True, help="output folder (resumes what is already there)")
    p.add_argument("--targets", default="top1", help="'top1' or a CSV label file with columns image,label")
    p.add_argument("--engine", default="local", help="local (process pool) or ray (Ray Data); default local")
    p.add_argument("--workers", type=int, default=None, help="processes or Ray actors (default: the CPU cores)")
    p.add_argument("--ray-address", default=None, help="Ray cluster to join (default $RAY_ADDRESS; none: a local Ray)")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward+backward (default 16)")
    p.add_argument("--norm", default="minmax", help=f"{', '.join(MODES)} (default minmax)")
    p.add_argument(
        "--relu", default=True, action=argparse.BooleanOptionalAction, help="ReLU before scaling (default on)"
    )
    p.add_argument("--scope", default="per_map", help=f"{' or '.join(SCOPES)} (default per_map)")
    p.add_argument("--percentiles", default="1,99", help="low,high for --norm percentile (default 1,99)")
    p.add_argument("--cmap", default="jet", help="colormap (default jet)")
    p.add_argument("--alpha", type=float, default=0.5, help="overlay opacity in [0, 1] (default 0.5)")
    p.add_argument("--precision", default="auto", help="auto, fp32 or bf16 for forward methods (default auto)")
    p.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 ... (default $GRADLENS_DEVICE, else CUDA if present)"
    )
    add_object_options(p)
    p.add_argument("--plugins", default="", help="comma-separated modules that register your own methods")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_dataset_options(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; exit status 0 (all readable images done), 1 (some failed), 2 (bad input)."""
    args = _parser().parse_args(argv)
    try:
        pct = tuple(float(v) for v in args.percentiles.split(","))
    except ValueError:
        pct = (-1.0, -1.0)
    try:
        res = run_batch(
            model_arg(args),
            args.images,
            args.out,
            methods=args.methods,
            layers=args.layers,
            targets=args.targets,
            engine=args.engine,
            workers=args.workers,
            batch_size=args.batch_size,
            norm=args.norm,
            relu=args.relu,
            scope=args.scope,
            percentiles=pct,
            cmap=args.cmap,
            alpha=args.alpha,
            precision=args.precision,
            device=args.device,
            min_score=args.min_score,
            max_objects=args.max_objects,
            dataset_options=dataset_options(args),
            ray_address=args.ray_address,
            plugins=args.plugins,
            bar=not args.quiet,
        )
    except GradLensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the output folder failed during the run (disk full, removed, made read-only)
        print(f"error: could not write under out={args.out!r}: {exc}", file=sys.stderr)
        return 2
    print(
        f"{res.done} image(s) done, {res.already} already in the manifest, {len(res.skipped)} skipped, "
        f"{len(res.failed)} failed in {res.seconds:.1f} s -> {res.out / 'manifest.parquet'} ({len(res.manifest)} rows)"
    )
    return 1 if res.failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
