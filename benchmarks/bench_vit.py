"""Cost of explaining a Vision Transformer against a plain forward of it, measured in one run.

    python benchmarks/bench_vit.py [--threads 1]

timm ``vit_tiny_patch16_224`` (random weights: the cost does not depend on them), 224x224,
batch 1. Printed: Grad-CAM at the default token layer (where the recorder reads (N, T, C)
outputs; else the line says it is not available), attention rollout, Chefer relevance and
LeGrad, each / a plain inference forward (``torch.inference_mode``, timm's fused attention on).
The attention methods switch timm's fused kernel off for their call, so their forward is the
eager one.
"""

from __future__ import annotations

import argparse

import timm
import torch
from common import report, time_interleaved

import methods
from methods.errors import GradLensError


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=7)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
    x = torch.randn(1, 3, 224, 224)

    def plain() -> None:
        with torch.inference_mode():
            model(x)

    fns = {"plain inference forward": plain}
    layer = f"blocks.{len(model.blocks) - 1}.norm1"
    try:
        methods.explain(model, x, "gradcam", layers=[layer])
        fns[f"Grad-CAM {layer}"] = lambda: methods.explain(model, x, "gradcam", layers=[layer])
    except GradLensError as e:
        print(f"Grad-CAM at {layer}: not available on this branch ({str(e)[:100]})")
    for name in ("rollout", "chefer", "legrad"):
        fns[name] = (lambda n: lambda: methods.explain(model, x, n, layers=["patch_embed.proj"]))(name)
    times = time_interleaved(fns, repeats=a.repeats)
    ratios = [
        (f"{k} / plain forward", k, "plain inference forward", None) for k in fns if k != "plain inference forward"
    ]
    report(f"vit_tiny_patch16_224, 224x224, batch 1, {a.threads} thread(s)", times, ratios)


if __name__ == "__main__":
    main()
