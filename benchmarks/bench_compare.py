"""Cost of a layer x layer similarity matrix of two models against their two plain passes, one run.

    python benchmarks/bench_compare.py [--threads 1] [--pairs bundled,torchvision]

``methods.layer_similarity(model_a, model_b, x_a, x_b, method="gradcam")`` explains each model
ONCE over all its layers (one forward + one backward each) and then compares every map pair. For
each pair of models this prints, interleaved in one run (medians):

* the two plain passes: ``model(x)[0].max().backward()`` with parameter gradients, A then B;
* ``explain_many`` of A and of B over the layer lists (the model part of the matrix);
* ``agreement_matrix`` of the recorded maps (the comparison part);
* ``layer_similarity`` itself, with the layer lists given (a page caches them) and with
  ``layers="all"`` (which adds one no-grad probe forward per model to list the candidates);
* ``layer_similarity`` over the block layers (``methods.block_layers``, given), what a
  side-by-side view uses.

Ratios against the two plain passes; the goal is <= 1.5 for the matrix with given layer lists.
Run with ``--threads 1`` on a shared machine: numpy's and torch's thread pools spin on busy cores.
Pairs: the two bundled scene models (128 px, trained weights) and two torchvision ImageNet
architectures (resnet18 vs vgg11, 224 px, random weights: the cost does not depend on them).
"""

from __future__ import annotations

import torch
import torchvision
from common import report, time_interleaved

import methods
from methods.cams.core.blocks import block_layers
from methods.cams.core.layers import candidate_layers
from methods.metrics.agreement.maps import agreement_matrix


def _pair(
    title: str, a: torch.nn.Module, b: torch.nn.Module, x_a: torch.Tensor, x_b: torch.Tensor, repeats: int
) -> None:
    size_a, size_b = tuple(x_a.shape[-2:]), tuple(x_b.shape[-2:])
    la = [i.name for i in candidate_layers(a, size_a)]
    lb = [i.name for i in candidate_layers(b, size_b)]
    ba = [i.name for i in block_layers(a, size_a)]
    bb = [i.name for i in block_layers(b, size_b)]
    ea = methods.explain_many(a, x_a, ["gradcam"], layers=la)["gradcam"]
    eb = methods.explain_many(b, x_b, ["gradcam"], layers=lb)["gradcam"]
    maps_a, maps_b = [ea.maps[n][0] for n in la], [eb.maps[n][0] for n in lb]

    def plain():
        for net, x in ((a, x_a), (b, x_b)):
            net.zero_grad(set_to_none=True)
            net(x)[0].max().backward()

    fns = {
        "two plain forward+backward passes (A, B)": plain,
        "explain_many A + B, all candidate layers": lambda: (
            methods.explain_many(a, x_a, ["gradcam"], layers=la),
            methods.explain_many(b, x_b, ["gradcam"], layers=lb),
        ),
        f"agreement_matrix {len(la)} x {len(lb)} maps": lambda: agreement_matrix(maps_a, maps_b),
        "layer_similarity, layer lists given": lambda: methods.layer_similarity(
            a, b, x_a, x_b, layers_a=la, layers_b=lb
        ),
        "layer_similarity, layers='all' (+ probes)": lambda: methods.layer_similarity(a, b, x_a, x_b),
        f"layer_similarity, {len(ba)} x {len(bb)} block layers given": lambda: methods.layer_similarity(
            a, b, x_a, x_b, layers_a=ba, layers_b=bb
        ),
    }
    names = list(fns)
    report(
        title,
        time_interleaved(fns, repeats=repeats),
        [
            ("matrix (layers given) / two plain passes", names[3], names[0], 1.5),
            ("  of which the two explain passes / two plain passes", names[1], names[0], None),
            ("  of which the comparisons / two plain passes", names[2], names[0], None),
            ("matrix (layers='all') / two plain passes", names[4], names[0], None),
            ("matrix (block layers given) / two plain passes", names[5], names[0], 1.5),
        ],
    )
    for net in (a, b):
        net.zero_grad(set_to_none=True)


def bench_bundled(repeats: int) -> None:
    from methods.data.samples import load_sample

    va, vb = methods.load_model("scenes_vgg"), methods.load_model("scenes_resnet")
    img = load_sample("scene_star_brick")
    _pair(
        "scenes_vgg vs scenes_resnet, 128x128, batch 1",
        va.model,
        vb.model,
        va.preprocess(img)[None],
        vb.preprocess(img)[None],
        repeats,
    )


def bench_torchvision(repeats: int) -> None:
    a = torchvision.models.resnet18().eval()
    b = torchvision.models.vgg11().eval()
    x = torch.randn(1, 3, 224, 224)
    _pair("resnet18 vs vgg11 (random weights), 224x224, batch 1", a, b, x, x, repeats)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--pairs", default="bundled,torchvision", help="comma-separated: bundled, torchvision")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    for pair in args.pairs.split(","):
        {"bundled": bench_bundled, "torchvision": bench_torchvision}[pair.strip()](args.repeats)
