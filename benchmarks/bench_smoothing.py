"""What ``aug_smooth`` and ``eigen_smooth`` cost, as ratios to the plain map measured in one run.

Grad-CAM at the default layer of the bundled ``scenes_vgg`` (128 px) and at ``layer4`` of a
torchvision ResNet-18 with random weights (224 px), batch 1: plain, ``eigen_smooth=True``,
``aug_smooth=True``, both; and four methods with ``aug_smooth`` in ONE ``explain_many`` call (they
share the five extra passes) against four separate calls.

Run: ``PYTHONPATH=$PWD python benchmarks/bench_smoothing.py``.
"""

from __future__ import annotations

import torch
from common import report, time_interleaved

import methods
from methods.data.samples import load_sample


def main() -> None:
    torch.manual_seed(0)
    from torchvision.models import resnet18

    lm = methods.load_model("scenes_vgg")
    cases = [
        (
            "scenes_vgg features.20",
            lm.model,
            lm.preprocess(load_sample("scene_cross_diamond_moon"))[None],
            lm.default_layer,
        ),
        ("resnet18 layer4 (random weights)", resnet18(weights=None).eval(), torch.randn(1, 3, 224, 224), "layer4"),
    ]
    four = ["gradcam", "gradcampp", "hirescam", "layercam"]
    for title, model, x, layer in cases:

        def run(model=model, x=x, layer=layer, **opts):
            return lambda: methods.explain(model, x, "gradcam", layers=[layer], target=0, **opts)

        fns = {
            "plain": run(),
            "eigen_smooth": run(eigen_smooth=True),
            "aug_smooth": run(aug_smooth=True),
            "both": run(aug_smooth=True, eigen_smooth=True),
            "4 methods, aug, one call": lambda model=model, x=x, layer=layer: methods.explain_many(
                model, x, four, layers=[layer], target=0, options={n: {"aug_smooth": True} for n in four}
            ),
            "4 methods, aug, 4 calls": lambda model=model, x=x, layer=layer: [
                methods.explain(model, x, n, layers=[layer], target=0, aug_smooth=True) for n in four
            ],
        }
        times = time_interleaved(fns, repeats=5, warmup=1)
        report(
            f"{title} (2 shared cores, AMD EPYC AVX2)",
            times,
            [
                ("eigen_smooth / plain", "eigen_smooth", "plain", None),
                ("aug_smooth / plain", "aug_smooth", "plain", None),
                ("both / plain", "both", "plain", None),
                (
                    "one call / four calls (4 methods with aug_smooth)",
                    "4 methods, aug, one call",
                    "4 methods, aug, 4 calls",
                    None,
                ),
            ],
        )


if __name__ == "__main__":
    main()
