"""Speed of the gradient family against plain passes of the same model, measured in one run.

    python benchmarks/bench_gradient.py

1. One Grad-CAM map at resnet50 ``layer4``, 224x224, batch 1 / a plain inference forward
   (``torch.inference_mode``). Goal <= 1.25.
2. Maps for all 13 conv layers of vgg16 x the five gradient methods of the goal (Grad-CAM,
   Grad-CAM++, XGrad-CAM, HiResCAM, LayerCAM; ONE ``explain_many``) / a plain forward+backward with
   parameter gradients. Goal <= 0.75. Also every single-pass gradient method (cost "1 fwd + 1 bwd").
3. If pytorch-grad-cam is importable (benchmark environment only, never a dependency), its
   GradCAM on the same resnet50 layer / the same plain forward, for reference.

Weights are random (the cost does not depend on them). ``--threads 1`` gives steadier ratios on a
shared machine.

The C allocator keeps large blocks for the run (``methods.keep_large_blocks``, as the commands and
the dashboard do; ``GRADLENS_MALLOC=system`` for glibc's defaults): with glibc's defaults the
plain pass's 528 MB of vgg16 parameter gradients are mapped afresh and faulted in on every pass,
which made that floor 1.7x slower (539 vs 313 ms, 2 threads) and the ratio look better than it is.
"""

from __future__ import annotations

import torch
import torchvision
from common import allocator_state, report, time_interleaved

import methods

GRADIENT_METHODS = [s.name for s in methods.list_methods(family="gradient") if s.cost == "1 fwd + 1 bwd"]
GOAL_METHODS = ["gradcam", "gradcampp", "xgradcam", "hirescam", "layercam"]
"""The five methods the goal was set for (round 1); GRADIENT_METHODS has grown since."""


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

    def goal_layers():
        methods.explain_many(model, x, GOAL_METHODS, layers=convs)

    fns = {
        "plain forward+backward (param grads)": plain_fwd_bwd,
        f"explain_many 13 convs x {len(GOAL_METHODS)} methods (the goal's)": goal_layers,
        f"explain_many 13 convs x {len(GRADIENT_METHODS)} methods (all single-pass)": all_layers,
    }
    names = list(fns)
    report(
        "vgg16, all 13 conv layers x gradient methods, 224x224, batch 1",
        time_interleaved(fns, repeats=7),
        [
            (f"13 layers x {len(GOAL_METHODS)} methods / plain forward+backward", names[1], names[0], 0.75),
            (f"13 layers x {len(GRADIENT_METHODS)} methods / plain forward+backward", names[2], names[0], None),
        ],
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
    print("C allocator:", allocator_state())
    bench_resnet50()
    bench_vgg16_all_layers()
