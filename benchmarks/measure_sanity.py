"""Measure the model-parameter randomization test (Adebayo et al. 2018) for several methods.

    python benchmarks/measure_sanity.py                                   # scenes_vgg, scene samples
    python benchmarks/measure_sanity.py --model scenes_resnet
    python benchmarks/measure_sanity.py --model efficientnet_lite0 --samples chelsea,astronaut,coffee,rocket \\
        --methods gradcam,guided_backprop,random                          # the hooks (see below)

For each method and sample it runs ``methods.sanity_check`` (cascading, seed 0, the model's
default layer and blocks) and prints the Spearman curve of the raw map and of ``|map|`` and the
SSIM curve against the number of randomized blocks (mean over the samples, and each sample's
Spearman row), the mean probability of the target, and each sample's verdict
(``SanityResult.verdict()``: Spearman < 0.5 once the top half of the blocks is random). With
``--class-check`` it also runs ``methods.class_sensitivity`` on the two-object scene samples.

Hooks for measurements that need other branches: the ImageNet EfficientNet-Lite models
(``--model efficientnet_lite0``) and Guided Backprop (``--methods guided_backprop``; the paper's
finding is that it stays similar to the trained map where Grad-CAM does not). A model that
cannot load or a method that is not registered on this checkout is reported as such and skipped:
nothing is measured, nothing is printed in its place.
"""

from __future__ import annotations

import sys

import numpy as np

import methods
from methods.data.samples import list_samples, load_sample
from methods.data.scenes import CLASS_NAMES


def _curve(values: np.ndarray) -> str:
    return " ".join(f"{v:5.2f}" for v in values)


def run(loaded, samples, method_names: list[str], *, layer: str | None, mode: str) -> None:
    registered = {s.name for s in methods.list_methods()}
    for name in method_names:
        if name not in registered:
            print(f"\n-- {name}: not registered on this checkout (skipped, nothing measured)")
            continue
        results = []
        for s in samples:
            x = loaded.preprocess(load_sample(s.name))[None]
            results.append((s.name, methods.sanity_check(loaded, x, method=name, layer=layer, mode=mode)))
        first = results[0][1]
        print(f"\n-- {first.label} at {first.layer}, {mode}, {len(samples)} images; steps: {', '.join(first.steps)}")
        for key in ("spearman", "spearman_abs", "ssim", "hog"):
            print(f"   mean {key:13s} {_curve(np.mean([r.similarity[key] for _, r in results], axis=0))}")
        print(f"   mean p(target)     {_curve(np.mean([r.probs for _, r in results], axis=0))}")
        for sample, r in results:
            v = r.verdict() if mode == "cascading" else None
            verdict = "" if v is None else ("pass" if v.passes else "FAIL" if v.passes is False else "n/a")
            print(f"   {sample:30s} spearman {_curve(r.similarity['spearman'])}  {verdict}")


def class_check(loaded, method_names: list[str]) -> None:
    registered = {s.name for s in methods.list_methods()}
    two = [s for s in list_samples() if s.kind == "scene" and len(s.classes) == 2]
    print("\n-- class sensitivity (the two classes of each two-object scene)")
    for name in method_names:
        if name not in registered:
            continue
        for s in two:
            x = loaded.preprocess(load_sample(s.name))[None]
            res = methods.class_sensitivity(loaded, x, method=name, classes=[CLASS_NAMES.index(c) for c in s.classes])
            a = res.agreements[0]
            print(
                f"   {res.label:12s} {s.name:32s} spearman {a.spearman:5.2f}  iou10% {a.iou_top:4.2f}  "
                f"{'pass' if res.verdict().passes else 'FAIL'}"
            )


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="scenes_vgg")
    parser.add_argument("--samples", default="scenes", help="scenes, photos, or comma-separated sample names")
    parser.add_argument("--methods", default="gradcam,gradcampp,layercam,eigencam,random,centre")
    parser.add_argument("--layer", default=None)
    parser.add_argument("--mode", default="cascading", choices=("cascading", "independent"))
    parser.add_argument("--class-check", action="store_true")
    args = parser.parse_args()
    try:
        loaded = methods.load_model(args.model)
    except methods.GradLensError as exc:
        print(f"cannot load {args.model!r} on this checkout: {exc}")
        return 2
    if args.samples in ("scenes", "photos"):
        samples = [s for s in list_samples() if s.kind == args.samples[:-1]]
    else:
        samples = [s for s in list_samples() if s.name in args.samples.split(",")]
    names = args.methods.split(",")
    run(loaded, samples, names, layer=args.layer, mode=args.mode)
    if args.class_check:
        class_check(loaded, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
