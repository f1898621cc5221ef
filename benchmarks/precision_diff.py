"""What ``precision="bf16"`` changes against fp32, measured on the bundled and the offline ImageNet
models: faithfulness AUCs and score-family maps, in one run.

    PYTHONPATH=$PWD python benchmarks/precision_diff.py [--scenes 16] [--steps 50]

For each image: Grad-CAM (always fp32) at the model's default layer is scored by deletion and
insertion (blur baselines, the defaults) once with ``precision="fp32"`` and once with ``"bf16"``;
Score-CAM's map at the same layer is computed in both precisions. Printed: the mean and largest
absolute AUC difference, the smallest Pearson correlation and the largest relative L2 difference
(``||m16 - m32|| / ||m32||``) of the Score-CAM maps, and the bf16 / fp32 time ratio of the Score-CAM
call. Where bf16 is not native the numbers are the same in kind (autocast rounds the same way) but
bf16 is slower; the machine line says which this is.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_batch import machine

import methods
from methods.data.photos import PHOTOS, load_photo
from methods.data.scenes import make_scene


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a @ b) / (a.norm() * b.norm()).clamp_min(1e-30))


def measure(name: str, images: list[np.ndarray], steps: int, channels: int | None) -> None:
    loaded = methods.load_model(name)
    d_auc, i_auc, rho, rel, t16, t32 = [], [], [], [], 0.0, 0.0
    opts = {} if channels is None else {"channels": channels}
    for img in images:
        x = loaded.preprocess(img)[None]
        exp = methods.explain(loaded, x, "gradcam")
        sal, target = exp.maps[exp.layers[0]][0], int(exp.targets[0])
        for fn, store in (
            (methods.deletion_curve, d_auc),
            (methods.insertion_curve, i_auc),
        ):
            a32 = fn(loaded, x, sal, target, steps=steps, precision="fp32").auc
            a16 = fn(loaded, x, sal, target, steps=steps, precision="bf16").auc
            store.append(abs(a16 - a32))
        maps = {}
        for p in ("fp32", "bf16"):
            t0 = time.perf_counter()
            maps[p] = methods.explain(loaded, x, "scorecam", target=target, precision=p, **opts).maps[exp.layers[0]][0]
            dt = time.perf_counter() - t0
            t16, t32 = (t16 + dt, t32) if p == "bf16" else (t16, t32 + dt)
        rho.append(_pearson(maps["fp32"], maps["bf16"]))
        rel.append(float((maps["bf16"] - maps["fp32"]).norm() / maps["fp32"].norm().clamp_min(1e-30)))
    print(f"{name} ({len(images)} images, layer {exp.layers[0]}, Score-CAM channels {channels or 'all'}):")
    print(f"  deletion AUC |bf16 - fp32|: mean {np.mean(d_auc):.5f}, max {np.max(d_auc):.5f}")
    print(f"  insertion AUC |bf16 - fp32|: mean {np.mean(i_auc):.5f}, max {np.max(i_auc):.5f}")
    print(
        f"  Score-CAM map Pearson(bf16, fp32): min {np.min(rho):.5f}, mean {np.mean(rho):.5f}; "
        f"relative L2 difference max {np.max(rel):.4f}"
    )
    print(f"  Score-CAM time bf16 / fp32: {t16 / t32:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=16)
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args()
    torch.manual_seed(0)
    print("machine:", machine())
    print(
        f"precision auto -> {methods.resolve_precision('auto', 'cpu')} (bf16 native here: {methods.bf16_is_native('cpu')})"
    )
    scenes = [make_scene(900_000 + i).image for i in range(args.scenes)]
    measure("scenes_vgg", scenes, args.steps, None)
    photos = [load_photo(name) for name in PHOTOS]
    measure("efficientnet_lite0", photos, args.steps, 64)


if __name__ == "__main__":
    main()
