"""Speed and precision of the deletion/insertion curves, measured in one run.

    python benchmarks/bench_faithfulness.py [--repeats 3] [--scenes 40]

1. Speed. One deletion + insertion pair, 50 steps, resnet50 (random weights: the cost does not
   depend on them), 224x224, batch size 32, a Grad-CAM map of ``layer4`` computed in the timed
   call - the same work torch-cam's ``DeletionInsertionMetric.update`` does (its CAM + 99
   perturbed forwards). Timed round-robin (``common.time_interleaved``):

   * GradLens fp32 and GradLens bf16 (``precision="bf16"``: bfloat16 autocast + channels_last);
   * torch-cam 0.5 ``DeletionInsertionMetric(GradCAM(model, "layer4"), softmax, steps=50,
     batch_size=32)`` on its own copy of the model (same weights), if torchcam is importable —
     benchmark environment only, never a GradLens dependency
     (``python -m venv --system-site-packages /tmp/faithenv && /tmp/faithenv/bin/pip install
     --no-deps torchcam==0.5.0``, then run this script with ``/tmp/faithenv/bin/python``);
   * 101 plain inference forwards in batches of 32 (the floor for 101 scored images).

   Goal: GradLens bf16 <= 0.5 x torch-cam.

   Deviation in work: GradLens's insertion starts from the blurred image (RISE), torch-cam's from
   zeros; the number of forwards is the same (GradLens 2 x 51 + 1 CAM pass, torch-cam 1 + 99 +
   its CAM pass), and a blur costs one small convolution.

2. Precision. bf16 vs fp32 AUC on a TRAINED model (random-weight ImageNet probabilities are
   ~1/1000 everywhere, so their AUC difference says nothing): Grad-CAM maps of ``scenes_vgg`` on
   fresh evaluation scenes, |AUC_bf16 - AUC_fp32| mean and max, for deletion and insertion.
   Goal: within 0.01.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
import torchvision
from common import report, time_interleaved

import methods
from methods.metrics.faithfulness import curves as fa

STEPS = 50
BATCH = 32


def bench_speed(repeats: int) -> None:
    torch.manual_seed(0)
    model = torchvision.models.resnet50().eval()
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    target = 0

    def gradlens(precision: str):
        def run():
            sal = methods.explain(model, x, "gradcam", layers=["layer4"], target=target).maps["layer4"][0]
            d = fa.deletion_curve(model, x, sal, target, steps=STEPS, batch_size=BATCH, precision=precision)
            i = fa.insertion_curve(model, x, sal, target, steps=STEPS, batch_size=BATCH, precision=precision)
            return d.auc, i.auc

        return run

    batch = x.expand(STEPS * 2 + 1, -1, -1, -1).contiguous()  # (101, 3, 224, 224)

    def plain():
        with torch.inference_mode():
            for s in range(0, batch.shape[0], BATCH):
                model(batch[s : s + BATCH])

    fns = {
        "plain: 101 inference forwards (batches of 32)": plain,
        "GradLens pair fp32": gradlens("fp32"),
        "GradLens pair bf16": gradlens("bf16"),
    }
    ratios = [
        ("GradLens fp32 / plain forwards", "GradLens pair fp32", "plain: 101 inference forwards (batches of 32)", None),
        ("GradLens bf16 / GradLens fp32", "GradLens pair bf16", "GradLens pair fp32", None),
    ]
    try:
        from torchcam.methods import GradCAM  # type: ignore
        from torchcam.metrics import DeletionInsertionMetric  # type: ignore

        peer_model = copy.deepcopy(model)
        extractor = GradCAM(peer_model, "layer4")
        metric = DeletionInsertionMetric(extractor, lambda z: torch.softmax(z, dim=-1), steps=STEPS, batch_size=BATCH)

        def torchcam_pair():
            metric.reset()
            metric.update(x, class_idx=target)
            return metric.summary()

        fns["torch-cam 0.5 DeletionInsertionMetric"] = torchcam_pair
        ratios += [
            ("GradLens fp32 / torch-cam", "GradLens pair fp32", "torch-cam 0.5 DeletionInsertionMetric", None),
            ("GradLens bf16 / torch-cam", "GradLens pair bf16", "torch-cam 0.5 DeletionInsertionMetric", 0.5),
        ]
    except ImportError:
        print("  (torchcam not installed: peer comparison skipped; see the module docstring)")
    print(f"threads: {torch.get_num_threads()}, repeats: {repeats}")
    report(
        f"resnet50, 224x224, deletion + insertion, {STEPS} steps, batch {BATCH}",
        time_interleaved(fns, repeats=repeats, warmup=1),
        ratios,
    )


def bench_precision(n_scenes: int) -> None:
    from methods.data.scenes import make_scene
    from methods.models.scenes.train import EVAL_SINGLE_START

    try:
        from methods.models.catalog import load_model

        loaded = load_model("scenes_vgg")
    except Exception as exc:  # weights not there yet
        print(f"\n== bf16 vs fp32 AUC: skipped ({exc})")
        return
    errs = {"deletion": [], "insertion": []}
    t = {"fp32": 0.0, "bf16": 0.0}
    if n_scenes < 1:
        return
    for i in range(n_scenes):
        sc = make_scene(EVAL_SINGLE_START + 50_000 + i)
        x = loaded.preprocess(sc.image)[None]
        sal = methods.explain(loaded, x, "gradcam", target=sc.label).maps[loaded.default_layer][0]
        for kind, fn in (("deletion", fa.deletion_curve), ("insertion", fa.insertion_curve)):
            aucs = {}
            for precision in ("fp32", "bf16"):
                t0 = time.perf_counter()
                aucs[precision] = fn(loaded, x, sal, sc.label, steps=STEPS, precision=precision).auc
                t[precision] += time.perf_counter() - t0
            errs[kind].append(abs(aucs["bf16"] - aucs["fp32"]))
    print(f"\n== bf16 vs fp32 AUC, scenes_vgg Grad-CAM, {n_scenes} evaluation scenes, {STEPS} steps")
    for kind, e in errs.items():
        e = np.asarray(e)
        verdict = "met" if e.max() <= 0.01 else "NOT met"
        print(f"  {kind:<9s} |AUC bf16 - fp32|: mean {e.mean():.4f}, max {e.max():.4f}  (goal <= 0.01: {verdict})")
    print(f"  time bf16 / fp32 on scenes_vgg (sequential, same run) = {t['bf16'] / t['fp32']:.2f}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--scenes", type=int, default=40)
    p.add_argument("--skip-speed", action="store_true")
    args = p.parse_args()
    if not args.skip_speed:
        bench_speed(args.repeats)
    bench_precision(args.scenes)


if __name__ == "__main__":
    main()
