"""The Advisor's figures for docs/advisor.md: what it recommends on scenes_vgg, scenes_resnet and
EfficientNet-Lite0 (scikit-image's sample photos), with intervals and wall time.

Usage::

    PYTHONPATH=. python benchmarks/advisor_figures.py [--n 20] [--steps 10] [--out /tmp/advisor_figures]

Prints, per model, the recommendation sentence, the notes, the top of the ranked table and the
seconds; each report is written to ``OUT/<model>/`` (advice.md, advice.json, scores.parquet).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import time

import torch
from PIL import Image

from methods.advisor import AdviseOptions, advise
from methods.data.photos import PHOTOS, load_photo


def photo_folder(root: pathlib.Path) -> pathlib.Path:
    folder = root / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        Image.fromarray(load_photo(name)).save(folder / f"{name}.png")
    return folder


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--out", default="/tmp/advisor_figures")
    p.add_argument("--models", default="scenes_vgg,scenes_resnet,efficientnet_lite0")
    args = p.parse_args()
    torch.set_num_threads(1)
    root = pathlib.Path(args.out)
    opts = AdviseOptions(steps=args.steps, n_sanity=2, precision="fp32")
    print(f"cpu count {os.cpu_count()}, load {os.getloadavg()}, torch threads {torch.get_num_threads()}")
    for model in args.models.split(","):
        images = f"scenes:{args.n}" if model.startswith("scenes_") else str(photo_folder(root))
        t0 = time.perf_counter()
        a = advise(model, images, opts, out=root / model, log=lambda _s: None)
        print(f"\n== {model} on {images} ({time.perf_counter() - t0:.0f} s, load {os.getloadavg()[0]:.1f})")
        print(a.recommendation)
        print("beats random:", a.beats_random, "| clear winner:", a.clear_winner)
        for n in a.notes:
            print(" note:", n)
        cols = ["rank", "label", "layer", "normalization", "n", "mean", "low", "high", "p_best", "random_mean"]
        print(a.table[a.table["rank"] > 0][cols].head(8).to_string(index=False))
        for s in a.sanity:
            print(f" sanity {s.label} at {s.layer}: {s.passes} {s.verdicts}")


if __name__ == "__main__":
    main()
