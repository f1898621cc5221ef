"""scenes_vit on fresh scenes: accuracy, and where each method's map points.

    python benchmarks/vit_scenes.py [--n 500] [--weights PATH]

Scenes with seeds ``EVAL_SINGLE_START + i`` (never drawn in training). For every method the
map of the TRUE class is scored with :mod:`methods.metrics.localization`: the pointing game
(the arg-max of the map, bilinearly upsampled to 128x128, lies on the object) and the energy
share inside the object mask. Attention methods (rollout, Chefer, LeGrad) run on the patch grid;
Grad-CAM runs at the ViT's default token layer where the recorder reads token outputs (else the
line says why it is missing). scenes_vgg's Grad-CAM is printed on the same scenes for reference.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

import methods
from methods.data.scenes import make_batch
from methods.errors import GradLensError, GradLensWarning
from methods.metrics.localization import energy_pointing_game, pointing_game
from methods.models.scenes import nets as sm
from methods.models.scenes.evaluation import EVAL_SINGLE_START, to_tensor

VIT_METHODS = ("rollout", "chefer", "legrad", "gradcam", "gradcam@blocks.3.norm1")


def score(model, x, labels, masks, method: str, layer: str | None, batch: int = 50) -> tuple[float, float]:
    """(pointing, mean energy) of ``method``'s maps of the true class over the scenes."""
    hits, energy = [], []
    for i in range(0, len(x), batch):
        exp = methods.explain(
            model, x[i : i + batch], method, layers=[layer] if layer else None, target=labels[i : i + batch]
        )
        maps = exp.maps[exp.layers[0]]
        for k in range(len(maps)):
            hits.append(pointing_game(maps[k], masks[i + k]))
            energy.append(energy_pointing_game(maps[k], masks[i + k]))
    return float(np.mean(hits)), float(np.mean(energy))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=500, help="fresh single-object scenes")
    p.add_argument("--weights", default=None, help="a scenes_vit safetensors file (default: the bundled one)")
    a = p.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("once", GradLensWarning)  # LeGrad's note on average-pooled heads: once
    vit = sm.load_weights("scenes_vit", a.weights) if a.weights else sm.load_pretrained("scenes_vit")
    images, labels_np, masks = make_batch(range(EVAL_SINGLE_START, EVAL_SINGLE_START + a.n))
    x, labels = to_tensor(images), torch.from_numpy(labels_np)
    with torch.no_grad():
        pred = torch.cat([vit(x[i : i + 100]) for i in range(0, len(x), 100)]).argmax(1)
    print(
        f"scenes_vit accuracy on {a.n} fresh scenes (seeds {EVAL_SINGLE_START}..): {(pred == labels).float().mean():.4f}"
    )
    print(f"{'model':<13s} {'method':<10s} {'layer':<16s} {'pointing':>8s} {'energy':>7s} {'s/img':>7s}")
    for method in VIT_METHODS:
        method, _, at = method.partition("@")
        layer = at or (sm.DEFAULT_LAYERS["scenes_vit"] if method == "gradcam" else None)
        t0 = time.perf_counter()
        try:
            pt, en = score(vit, x, labels, masks, method, layer)
        except GradLensError as e:
            print(f"{'scenes_vit':<13s} {method:<10s} {str(layer or 'patch grid'):<16s} not available: {str(e)[:120]}")
            continue
        dt = (time.perf_counter() - t0) / a.n
        print(f"{'scenes_vit':<13s} {method:<10s} {str(layer or 'patch grid'):<16s} {pt:8.3f} {en:7.3f} {dt:7.4f}")
    vgg = sm.load_pretrained("scenes_vgg")
    pt, en = score(vgg, x, labels, masks, "gradcam", sm.DEFAULT_LAYERS["scenes_vgg"])
    print(f"{'scenes_vgg':<13s} {'gradcam':<10s} {sm.DEFAULT_LAYERS['scenes_vgg']:<16s} {pt:8.3f} {en:7.3f}")


if __name__ == "__main__":
    main()
