"""SS-CAM's noise level: what the authors' code uses, in GradLens's units, and what it does to the map.

The authors' SS-CAM code (SSCAM1, noise on the activation map) adds ``N(0, s^2)`` noise with
``s = sigma_m^2 / R^2`` -- ``sigma = param_sigma_multiplier / R`` (multiplier 2) is passed as
``normal_(mean, sigma ** 2)``, i.e. as the STANDARD DEVIATION squared -- to the raw upsampled
activation map ``x`` of range ``R = max x - min x``, and multiplies the input by ``x + noise``.
GradLens's ``noise_on="mask"`` adds noise to the min-max normalized mask ``H = (x - min x) / R``;
noise ``s`` on ``x`` is noise ``s / R`` on ``H``. So the authors' level, in GradLens's units, is
``std_eff = (2 / R)^2 / R = 4 / R^3`` per channel: it depends on the layer's activation range.

This script prints, for the bundled scene models at their default layers:

* the distribution of ``4 / R^3`` over the channels of a few scenes (the authors' level here);
* Pearson r between SS-CAM and Score-CAM maps for several ``std`` (35 draws, the authors' count),
  on the gallery's one-object scenes (``--objects 1``: the model is confident whatever the mask,
  so any noise level gives Score-CAM's map) or two-object scenes with each object's class as the
  target (``--objects 2``, the default: where the class evidence must survive the noise).

Run: ``PYTHONPATH=$PWD python benchmarks/sscam_noise.py``. The figures in docs/methods.md come from
this script on the development machine (2 shared cores, AMD EPYC AVX2), at reduced settings
(``--scenes 1 --stds 0.02,0.2``; the defaults take about 30 min there). The default ``std=0.2`` did
NOT come from it: it is about 20x the authors' level at the median channel (see docs/methods.md).
"""

from __future__ import annotations

import time

import numpy as np
import torch

import methods
from methods._internal.torch_utils import upsample
from methods.data.samples import list_samples, load_sample

STDS = (0.02, 0.05, 0.1, 0.2)


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", type=int, default=2, help="gallery scenes to measure on (the first ones)")
    ap.add_argument("--objects", type=int, default=2, choices=(1, 2))
    ap.add_argument("--models", default="scenes_vgg,scenes_resnet")
    ap.add_argument("--stds", default=",".join(map(str, STDS)))
    args = ap.parse_args()
    from methods.data.samples import get_sample
    from methods.data.scenes import CLASS_NAMES

    scenes = [s.name for s in list_samples() if s.kind == "scene" and len(s.classes) == args.objects][: args.scenes]
    # one row per (scene, object): the image repeated, the object's class as the target
    rows = [(name, CLASS_NAMES.index(c)) for name in scenes for c in get_sample(name).classes]
    for name in args.models.split(","):
        lm = methods.load_model(name)
        layer = lm.default_layer
        x = torch.cat([lm.preprocess(load_sample(s))[None] for s, _ in rows])  # (S, 3, 128, 128)
        targets = [t for _, t in rows]
        rec = methods.record(lm.model, x, [layer], gradients=False)
        acts = rec.activations[layer]  # (S, C, h, w)
        up = upsample(acts.flatten(0, 1), x.shape[-2:])  # (S*C, H, W)
        span = (up.flatten(1).amax(1) - up.flatten(1).amin(1)).double()
        span = span[span > 0]
        eff = 4 / span**3
        q = np.quantile(eff.numpy(), [0.1, 0.25, 0.5, 0.75, 0.9])
        print(f"\n== {name}, layer {layer}, {args.objects}-object scenes {scenes}, targets {targets}")
        print(
            f"  activation range R per channel: median {float(span.median()):.3g} (10%-90%: "
            f"{float(span.quantile(0.1)):.3g} - {float(span.quantile(0.9)):.3g}); {int((span > 0).sum())} channel maps "
            f"(rows x channels)"
        )
        print(
            f"  authors' noise 4/R^3 in mask units: 10% {q[0]:.3g}, 25% {q[1]:.3g}, median {q[2]:.3g}, "
            f"75% {q[3]:.3g}, 90% {q[4]:.3g}"
        )
        t0 = time.perf_counter()
        score = methods.explain(lm, x, "scorecam", batch_size=64, target=targets).maps[layer]
        print(f"  Score-CAM: {time.perf_counter() - t0:.1f} s")
        for std in map(float, args.stds.split(",")):
            t0 = time.perf_counter()
            ss = methods.explain(lm, x, "sscam", std=std, num_samples=35, batch_size=64, target=targets).maps[layer]
            rs = [np.corrcoef(ss[i].flatten().numpy(), score[i].flatten().numpy())[0, 1] for i in range(len(x))]
            print(
                f"  SS-CAM std={std:<5g} Pearson with Score-CAM: mean {np.mean(rs):.3f} (min {np.min(rs):.3f})  "
                f"{time.perf_counter() - t0:.1f} s"
            )


if __name__ == "__main__":
    main()
