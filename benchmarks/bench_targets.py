"""Cost of explaining one detection, against its floors (one run, ratios printed).

* Grad-CAM for one box vs one plain detector forward + backward of that box's score (the floor
  of any gradient map; the difference is the recorder, the scoring view and the map);
* D-RISE vs its forward-count floor: ``num_masks / batch_size`` batched forwards of masked inputs
  through the plain detector.

Model: torchvision ``fasterrcnn_mobilenet_v3_large_fpn`` with random weights (no download),
``min_size = max_size = SIZE``, ``box_score_thresh = 0``. Run: ``python benchmarks/bench_targets.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import methods
from methods.targets import BoxTarget, detect

SIZE, MASKS, BATCH, REPEATS = 224, 64, 16, 3


def best(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn

    model = fasterrcnn_mobilenet_v3_large_fpn(
        weights=None, weights_backbone=None, num_classes=3, min_size=SIZE, max_size=SIZE, box_score_thresh=0.0
    ).eval()
    x = torch.rand(1, 3, SIZE, SIZE)
    found = detect(model, x)[0]
    target = BoxTarget(found["boxes"][0], int(found["labels"][0]))

    def plain() -> None:
        xi = x.clone().requires_grad_(True)
        model(xi)[0]["scores"][0].backward()

    def gradcam() -> None:
        methods.explain(model, x, "gradcam", target=target)

    masked = x.repeat(BATCH, 1, 1, 1) * torch.rand(BATCH, 1, SIZE, SIZE)

    def floor_drise() -> None:
        with torch.inference_mode():
            for _ in range(MASKS // BATCH):
                model(masked)

    def drise() -> None:
        methods.explain(model, x, "drise", target=target, num_masks=MASKS, batch_size=BATCH, precision="fp32")

    t_plain, t_cam = best(plain), best(gradcam)
    t_floor, t_drise = best(floor_drise, 1), best(drise, 1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, input {SIZE}x{SIZE}")
    print(f"plain forward+backward of one box score: {t_plain * 1e3:8.1f} ms")
    print(f"Grad-CAM for one box (explain):          {t_cam * 1e3:8.1f} ms   ratio {t_cam / t_plain:.2f}")
    print(f"D-RISE floor ({MASKS} masked forwards, batch {BATCH}): {t_floor:6.2f} s")
    print(f"D-RISE ({MASKS} masks):                   {t_drise:6.2f} s   ratio {t_drise / t_floor:.2f}")


if __name__ == "__main__":
    main()
