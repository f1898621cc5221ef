"""How much each method's map depends on the explained class: two-object scenes, one map per object's class.

For every two-object evaluation scene (``methods.data.scenes.make_batch`` with the held-out seeds of
the bundled models' cards) and every method, the maps for the two objects' classes are compared:

* ``r(A, B)``: Pearson correlation of the two maps (upsampled to 128 x 128). 1 = the same map
  whatever the class (class-agnostic); Grad-CAM-like methods are far below;
* ``index``: (share_A + share_B - 1), where share_k = positive mass on object k / positive mass on
  both objects, for the map of object k's class. 0 = no preference, 1 = each map on its own object;
* ``own peak``: share of (scene, class) pairs whose arg-max lies on the own object.

Run: ``PYTHONPATH=$PWD python benchmarks/class_sensitivity.py [--scenes 20] [--model scenes_vgg]``.
What it printed on the development machine (2 shared cores, AMD EPYC AVX2) is in docs/methods.md.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

import methods
from methods.data.scenes import make_batch
from methods.models.scenes.evaluation import EVAL_TWO_START, to_tensor

FAST = {"num_samples": 4, "steps": 4, "num_masks": 1000, "batch_size": 64}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", type=int, default=20)
    ap.add_argument("--model", default="scenes_vgg")
    ap.add_argument("--methods", default="")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    lm = methods.load_model(args.model)
    images, labels, masks = make_batch(range(EVAL_TWO_START, EVAL_TWO_START + args.scenes), n_objects=2)
    x = to_tensor(images)
    names = (
        args.methods.split(",")
        if args.methods
        else [s.name for s in methods.list_methods() if s.family != "baseline" or s.name == "eigencam"]
    )
    print(f"{args.model}, layer {lm.default_layer}, {args.scenes} two-object scenes (seeds {EVAL_TWO_START}+)")
    print(f"{'method':22s} {'r(A,B)':>8s} {'index':>7s} {'own peak':>9s} {'agnostic':>9s} {'s':>6s}")
    for name in names:
        spec = methods.get_method(name)
        opts = {k: v for k, v in FAST.items() if k in spec.option_names}
        t0 = time.perf_counter()
        maps = []
        for k in (0, 1):
            exp = methods.explain(lm, x, name, target=torch.from_numpy(labels[:, k]), **opts)
            maps.append(exp.upsampled(size=(128, 128)).numpy())  # (S, 128, 128)
        r, index, peaks = [], [], []
        for s in range(args.scenes):
            a, b = maps[0][s].ravel(), maps[1][s].ravel()
            r.append(np.corrcoef(a, b)[0, 1] if a.std() > 0 and b.std() > 0 else 1.0)
            shares = []
            for k in (0, 1):
                pos = np.clip(maps[k][s], 0, None)
                own, other = pos[masks[s, k]].sum(), pos[masks[s, 1 - k]].sum()
                shares.append(own / (own + other) if own + other > 0 else 0.5)
                peaks.append(bool(masks[s, k].ravel()[maps[k][s].argmax()]))
            index.append(shares[0] + shares[1] - 1)
        print(
            f"{name:22s} {np.mean(r):8.2f} {np.mean(index):7.2f} {np.mean(peaks):9.2f} "
            f"{'yes' if spec.class_agnostic else '':>9s} {time.perf_counter() - t0:6.1f}"
        )


if __name__ == "__main__":
    main()
