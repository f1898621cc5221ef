"""Speed of the gradient family against plain passes of the same model, measured in one run.

    python benchmarks/bench_gradient.py

1. One Grad-CAM map at resnet50 ``layer4``, 224x224, batch 1 / a plain inference forward
   (``torch.inference_mode``). Goal <= 1.25.
2. Maps for all 13 conv layers of vgg16 x the single-pass gradient methods (cost "1 fwd + 1 bwd";
   ONE ``explain_many``) / a plain
   forward+backward with parameter gradients. Goal <= 0.75.
3. If pytorch-grad-cam is importable (benchmark environment only, never a dependency), its
   GradCAM on the same resnet50 layer / the same plain forward, for reference.

Weights are random (the cost does not depend on them). ``--threads 1`` gives steadier ratios on a
shared machine.
"""

from __future__ import annotations

import torch
import torchvision
from common import report, time_interleaved

import methods

GRADIENT_METHODS = [s.name for s in methods.list_methods(family="gradient") if s.cost == "1 fwd + 1 bwd"]


def bench_resnet50() -> None:
    model = torchvision.models.resnet50().eval()
    x = torch.randn(1, 3, 224, 224)

    def plain_forward():
        with torch.inference_mode():
            model(x)

    def gradcam():
        methods.explain(model, x, "gradcam", layers=["layer4"])

    fns = {"plain inference forward": plain_forward, "GradLens Grad-CAM layer4": gradcam}
    ratios = [("Grad-CAM / plain forward", "GradLens Grad-CAM layer4", "plain inference forward", 1.25)]
    try:
        from pytorch_grad_cam import GradCAM  # type: ignore
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # type: ignore

        peer = GradCAM(model=model, target_layers=[model.layer4])

        def peer_gradcam():
            peer(input_tensor=x, targets=[ClassifierOutputTarget(0)])

        fns["pytorch-grad-cam GradCAM layer4"] = peer_gradcam
        ratios.append(
            (
                "pytorch-grad-cam Grad-CAM / plain forward",
                "pytorch-grad-cam GradCAM layer4",
                "plain inference forward",
                None,
            )
        )
    except ImportError:
        print("  (pytorch-grad-cam not installed: peer comparison skipped)")
    report("resnet50 layer4, 224x224, batch 1", time_interleaved(fns, repeats=15), ratios)


def bench_vgg16_all_layers() -> None:
    model = torchvision.models.vgg16().eval()
    x = torch.randn(1, 3, 224, 224)
    convs = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 13

    def plain_fwd_bwd():
        model.zero_grad(set_to_none=True)
        model(x)[0].max().backward()

    def all_layers():
        methods.explain_many(model, x, GRADIENT_METHODS, layers=convs)

    fns = {
        "plain forward+backward (param grads)": plain_fwd_bwd,
        f"explain_many 13 convs x {len(GRADIENT_METHODS)} methods": all_layers,
    }
    report(
        "vgg16, all 13 conv layers x gradient methods, 224x224, batch 1",
        time_interleaved(fns, repeats=7),
        [("13 layers x 5 methods / plain forward+backward", list(fns)[1], list(fns)[0], 0.75)],
    )
    model.zero_grad(set_to_none=True)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    bench_resnet50()
    bench_vgg16_all_layers()
