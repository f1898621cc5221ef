"""``gradlens advise`` / ``python -m methods.advise``: the command line of :func:`methods.advisor.advise`.

Usage::

    gradlens advise --model scenes_vgg --images scenes:40 --out advice/
    gradlens advise --checkpoint my.pt --arch resnet18 --model-config cfg.json --images val/ --out advice/

Exit status:

* 0 — the recommended choice beats the random map with non-overlapping intervals;
* 1 — it ran, but the best choice does NOT beat the random map (trust no map of this grid here);
* 2 — bad input (options, model, images) or ``--out`` cannot be written;
* 130 — interrupted (Ctrl-C): run the same command again to resume from the checkpoints in ``--out``.

What the report holds and how the ranking works: docs/advisor.md. Argparse only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from methods.advisor import METRICS, NORMALIZATIONS, AdviseOptions, advise
from methods.cli.dataset_options import add_dataset_options, dataset_options
from methods.cli.model_options import add_model_options, model_arg
from methods.errors import Cancelled, GradLensError

__all__ = ["main", "EXIT_OK", "EXIT_NOT_BEATING_RANDOM", "EXIT_BAD_INPUT", "EXIT_INTERRUPTED"]

EXIT_OK, EXIT_NOT_BEATING_RANDOM, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def _parser() -> argparse.ArgumentParser:
    d = AdviseOptions()
    p = argparse.ArgumentParser(
        prog="gradlens advise",
        description="Which saliency map to trust on your model and images: methods x layers x normalizations "
        "ranked by one metric with bootstrap intervals, paired tests against the best and the random map, "
        "and a sanity check. Exit 0: the recommendation beats the random map; 1: nothing does; 2: bad input.",
    )
    add_model_options(p)
    p.add_argument(
        "--images",
        required=True,
        help="scenes:N, scenes2:N, a folder of images, or an annotated set: coco:ANN.json, voc:DIR, imagefolder:DIR, masks:DIR",
    )
    p.add_argument(
        "--out", required=True, help="folder for advice.json, advice.md, scores.parquet (and the resume checkpoints)"
    )
    p.add_argument(
        "--methods",
        default="",
        help="comma-separated method keys (default: the cheap gradient methods and guided backprop)",
    )
    p.add_argument(
        "--layers", default="auto", help="auto (default layer + earlier stages), default, all, or comma-separated names"
    )
    p.add_argument(
        "--max-layers", type=int, default=d.max_layers, help=f"layers 'auto' picks, 1-8 (default {d.max_layers})"
    )
    p.add_argument(
        "--normalizations",
        default=",".join(d.normalizations),
        help=f"comma-separated, from {', '.join(NORMALIZATIONS)} (default: all)",
    )
    p.add_argument("--metric", default=d.metric, choices=list(METRICS), help=f"ranking metric (default {d.metric})")
    p.add_argument("--include-slow", action="store_true", help="allow slow methods (score family, RISE, occlusion)")
    p.add_argument(
        "--n-sanity", type=int, default=d.n_sanity, help=f"images of the sanity check, 0-10 (default {d.n_sanity})"
    )
    p.add_argument("--n-boot", type=int, default=d.n_boot, help=f"bootstrap resamples (default {d.n_boot})")
    p.add_argument("--test", default=d.test, choices=["auto", "wilcoxon", "sign"], help="paired test (default auto)")
    p.add_argument("--seed", type=int, default=0, help="scene seed offset, reference and bootstrap seed (default 0)")
    p.add_argument("--steps", type=int, default=d.steps, help=f"deletion/insertion steps (default {d.steps})")
    p.add_argument("--precision", default=d.precision, help="auto, fp32 or bf16 (default auto)")
    p.add_argument("--workers", type=int, default=1, help="processes scoring images (default 1)")
    add_dataset_options(p)
    p.add_argument("--device", default=None, help="cpu, cuda ... (default $GRADLENS_DEVICE, else CUDA if present)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (see the module docstring)."""
    args = _parser().parse_args(argv)

    def show(done: int, total: int) -> None:
        if not args.quiet:
            print(f"\radvise: {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    try:
        options = AdviseOptions(
            methods=tuple(m for m in args.methods.split(",") if m.strip()),
            layers=args.layers,
            max_layers=args.max_layers,
            normalizations=tuple(n.strip() for n in args.normalizations.split(",") if n.strip()),
            metric=args.metric,
            include_slow=args.include_slow,
            n_sanity=args.n_sanity,
            n_boot=args.n_boot,
            test=args.test,
            seed=args.seed,
            steps=args.steps,
            precision=args.precision,
        )
        advice = advise(
            model_arg(args),
            args.images,
            options,
            out=args.out,
            progress=show,
            workers=args.workers,
            device=args.device,
            dataset_options=dataset_options(args),
        )
    except (GradLensError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"error: could not write under out={args.out!r}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (KeyboardInterrupt, Cancelled):
        print(f"\ninterrupted: run the same command again to resume from {args.out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(advice.recommendation)
    for note in advice.notes:
        print(f"note: {note}")
    print(f"report: {args.out}/advice.md, advice.json, scores.parquet")
    return EXIT_OK if advice.beats_random else EXIT_NOT_BEATING_RANDOM


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
