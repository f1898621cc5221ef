"""``gradlens drift A B --images ...``: the command line of :func:`methods.pipeline.drift.drift`.

Exit status: 0 within every threshold, :data:`EXIT_DRIFT` (3) when the drift is past at least one
threshold (the report's ``failed`` names them), 2 for bad input (a missing file, an unknown
architecture, two different architectures, an unreadable image folder, a threshold out of its
bounds). Argparse only; the work is done by :mod:`methods.pipeline.drift`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from methods.errors import GradLensError
from methods.metrics.faithfulness.curves import BASELINES, PRECISIONS
from methods.models.model_config import read_model_config
from methods.pipeline.drift import MAX_IMAGES, DriftOptions, DriftThresholds, drift
from methods.pipeline.drift_report import write_report

__all__ = ["main", "EXIT_OK", "EXIT_BAD_INPUT", "EXIT_DRIFT"]

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_DRIFT = 3


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gradlens drift",
        description="Explanation drift between two checkpoints of one model (for the CI of model releases): map "
        "agreement, top-1 change and faithfulness change per image, with bootstrap intervals. Exit status 0 within "
        "the thresholds, 3 past one, 2 for bad input.",
    )
    p.add_argument("a", help="the reference checkpoint (a weight file, or a catalog name such as scenes_vgg)")
    p.add_argument("b", help="the candidate checkpoint (a weight file, or a catalog name)")
    p.add_argument(
        "--arch",
        default=None,
        help="the weight files' architecture: torchvision name, timm:<name>, "
        "or a catalog model (scenes_vgg) whose architecture the files hold",
    )
    p.add_argument("--model-config", default=None, help="JSON: class_names, input_size, mean, std (docs/batch.md)")
    p.add_argument("--images", required=True, help="scenes:N, scenes2:N or a folder of images")
    p.add_argument("--limit", type=int, default=100, help=f"the most images taken (default 100, at most {MAX_IMAGES})")
    p.add_argument("--method", default="gradcam", help="a method with layer maps (default gradcam)")
    p.add_argument("--layer", default=None, help="the layer of both models (default: the model's default layer)")
    p.add_argument("--max-map-change", type=float, default=None, help="fail when mean (1 - Spearman) is above (0..2)")
    p.add_argument(
        "--max-top1-change",
        type=float,
        default=None,
        help="fail when the share of images whose top-1 class changed is above (0..1)",
    )
    p.add_argument(
        "--max-faithfulness-drop",
        type=float,
        default=None,
        help="fail when the mean drop of insertion - deletion AUC (A's minus B's) is above (-2..2)",
    )
    p.add_argument("--steps", type=int, default=20, help="deletion/insertion steps (default 20)")
    p.add_argument("--baseline", default="blur", help=f"{', '.join(BASELINES)} (default blur)")
    p.add_argument("--precision", default="fp32", help=f"{', '.join(PRECISIONS)} (default fp32)")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--top", type=int, default=10, help="how many most-moved images to print and list (default 10)")
    p.add_argument("--out", default=None, help="write the report JSON here (the Compare page opens it)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def _progress(done: int, total: int) -> None:
    print(f"\r{done}/{total} images", end="" if done < total else "\n", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 within the thresholds, 3 past one, 2 bad input)."""
    args = _parser().parse_args(argv)
    try:
        thresholds = DriftThresholds(
            max_map_change=args.max_map_change,
            max_top1_change=args.max_top1_change,
            max_faithfulness_drop=args.max_faithfulness_drop,
        )
        options = DriftOptions(
            method=args.method,
            layer=args.layer,
            limit=args.limit,
            steps=args.steps,
            baseline=args.baseline,
            precision=args.precision,
            n_boot=args.n_boot,
            seed=args.seed,
            most_moved=args.top,
        )
        report = drift(
            args.a,
            args.b,
            args.images,
            arch=args.arch,
            config=read_model_config(args.model_config) if args.model_config else None,
            thresholds=thresholds,
            options=options,
            progress=None if args.quiet else _progress,
        )
        if args.out:
            write_report(report, args.out)
    except (GradLensError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    _print(report)
    if args.out:
        print(f"report -> {args.out}")
    return EXIT_OK if report["passed"] else EXIT_DRIFT


def _print(report: dict) -> None:
    s = report["summary"]
    print(
        f"{report['model_a']['name']} -> {report['model_b']['name']}: {report['n_images']} image(s), "
        f"{report['options']['method']} at {report['layer']}"
        + (f" (first {report['options']['limit']})" if report["limited"] else "")
    )
    for stat in ("map_change", "spearman", "iou_top", "top1_changed", "faithfulness_drop"):
        v = s[stat]
        print(f"  {stat:<18} {v['mean']:.4f}  [{v['low']:.4f}, {v['high']:.4f}]")
    moved = report["images"][: report["options"]["most_moved"]]
    print("most moved: " + ", ".join(f"{r['image']} (1-rho {r['map_change']:.3f})" for r in moved))
    for f in report["failed"]:
        print(f"DRIFT: {f['statistic']} = {f['value']:.4f} is past {f['threshold']} = {f['limit']:g}")
    if report["passed"]:
        print("within the thresholds")
