"""Measure how much two (or more) models' maps agree at matched depths, on the sample gallery.

    python benchmarks/measure_agreement.py                                   # scenes_vgg vs scenes_resnet, scene samples
    python benchmarks/measure_agreement.py --models efficientnet_lite0,efficientnet_lite1,efficientnet_lite2 \\
        --samples photos --target shared                                     # the ImageNet hook (see below)

For every pair of models and every sample image it builds ``methods.layer_similarity`` over the
models' block layers (``methods.block_layers``) and reads the cells at matched relative depths
(25 %, 50 %, 75 %, the last block) and at shared output resolutions. It prints, per depth, the
mean (and min .. max) over the images of Spearman, Pearson and the top-10 % IoU, next to a
CHANCE level: the same models and layers with the images shuffled (model A on image i against
model B on image i+1), i.e. how much two unrelated maps of these layers agree anyway.

``--target own``: each model explains its own top-1 class; ``shared``: both explain model A's
top-1 (models of one task); ``label``: scene samples only, both explain the scene's (first)
object class.

The ImageNet EfficientNet-Lite command above was measured on 2026-12-01 (docs/compare.md): on
the 6 gallery photos the last layers agree at Spearman 0.82-0.88 (chance 0.59-0.71), the 25-75 %
rows at 0.15-0.52. Nothing is measured or printed for a model that cannot load.
"""

from __future__ import annotations

import itertools
import sys

import numpy as np

import methods
from methods.data.samples import list_samples, load_sample
from methods.data.scenes import CLASS_NAMES


def _samples(kind: str) -> list:
    if kind in ("scenes", "photos"):
        want = "scene" if kind == "scenes" else "photo"
        return [s for s in list_samples() if s.kind == want]
    names = kind.split(",")
    return [s for s in list_samples() if s.name in names]


def _row(label: str, values: list[float]) -> str:
    v = np.asarray(values)
    return f"{label} {v.mean():6.2f} ({v.min():5.2f} .. {v.max():5.2f})"


def measure_pair(a, b, samples, *, method: str, target: str) -> None:
    xs_a = [a.preprocess(load_sample(s.name))[None] for s in samples]
    xs_b = [b.preprocess(load_sample(s.name))[None] for s in samples]
    sims = []
    for i, s in enumerate(samples):
        targets = None
        if target == "shared":
            targets = int(methods.explain(a, xs_a[i], method).targets[0])
        elif target == "label":
            targets = CLASS_NAMES.index(s.classes[0])
        sims.append(
            methods.layer_similarity(
                a, b, xs_a[i], xs_b[i], method=method, layers_a="blocks", layers_b="blocks", targets=targets
            )
        )
    # chance: image i of A against image i+1 of B, the same layers
    chance = []
    for i in range(len(samples)):
        j = (i + 1) % len(samples)
        ta = sims[i].targets[0] if target != "own" else None
        tb = sims[j].targets[1] if target != "own" else None
        chance.append(
            methods.layer_similarity(
                a, b, xs_a[i], xs_b[j], method=method, layers_a="blocks", layers_b="blocks", targets=(ta, tb)
            )
        )
    first = sims[0]
    print(
        f"\n== {a.name} ({len(first.names_a)} block layers) vs {b.name} ({len(first.names_b)}), {method}, "
        f"targets={target}, {len(samples)} images, grid {first.grid}"
    )
    for by in ("depth", "resolution"):
        rows = first.by_depth(4, by=by)
        for match, r, _ in rows:
            la, lb = match.pairs[r]
            i, j = first.names_a.index(la), first.names_b.index(lb)
            where = f"{match.targets[r]:4.0%}" if by == "depth" else f"{match.grids[r][0]:>3}x{match.grids[r][1]:<3}"
            cells = {m: [s.values(m)[i, j] for s in sims] for m in ("spearman", "pearson", "iou_top")}
            base = [s.values("spearman")[i, j] for s in chance]
            print(
                f"  {by:10s} {where}  {la:>14s} {str(first.grids_a[i]):>9s} | {lb:<14s} {str(first.grids_b[j]):>9s}  "
                + _row("spearman", cells["spearman"])
                + _row("  pearson", cells["pearson"])
                + _row("  iou10%", cells["iou_top"])
                + _row("  | chance spearman", base)
            )


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="scenes_vgg,scenes_resnet")
    parser.add_argument("--samples", default="scenes", help="scenes, photos, or comma-separated sample names")
    parser.add_argument("--method", default="gradcam")
    parser.add_argument("--target", default="label", choices=("own", "shared", "label"))
    args = parser.parse_args()
    try:
        models = [methods.load_model(name) for name in args.models.split(",")]
    except methods.GradLensError as exc:
        print(f"cannot load the models on this checkout: {exc}")
        return 2
    samples = _samples(args.samples)
    if args.target == "label" and any(s.kind != "scene" for s in samples):
        print("--target label needs scene samples; use --target own or shared for photos")
        return 2
    for a, b in itertools.combinations(models, 2):
        measure_pair(a, b, samples, method=args.method, target=args.target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
