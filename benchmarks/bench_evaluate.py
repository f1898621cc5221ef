"""Seconds per image of the evaluate command against the floor its forward count sets, in one run.

    PYTHONPATH=$PWD python benchmarks/bench_evaluate.py [--images 4] [--steps 50] [--repeats 3] [--precision auto]

Setup: the bundled scenes_vgg model, ``scenes:N``, Grad-CAM at the default layer plus the two
reference maps (random, centre): 3 maps per image, deletion and insertion curves (both blur, the defaults) of
``--steps`` steps and the confidence change, the default precision (``"auto"``: resolved on this
machine and printed), curve batches of 32, in this process (``workers=1``).

The floor: :func:`methods.metrics.faithfulness.image_scores.forward_count` images per image (299 at 50 steps:
the shared x and the one blurred baseline once, 2 (S - 1) + 1 per map) times the time of ONE image in a batch of
32 through the same runner the curves use (channels_last weights and inputs, inference mode, the
same precision), measured in the same run. Before sharing the count was 3 x (2 (S + 1) + 2) = 312.

Ratio = evaluate seconds per image / floor (goal <= 1.1). The map computation (Grad-CAM) and the
per-image work (scene generation, preprocessing, pointing game) are inside the numerator.

The evaluate worker runs each unit of work (an image's maps, a chunk of curve forwards) on 1 thread
or on all of them, whichever it measured faster (:mod:`methods._internal.threads`); on a loaded
machine 1 thread can be several times faster. So the script also times a stricter floor:
the image's ``forward_count`` forwards run back to back in ONE runner (chunks of 32 of images made
beforehand; the floor above pays the runner's set-up once per 32 images), on 1 thread and on all,
and prints the ratio to the faster of them (the ratio to the default-threads floor alone would
credit the thread choice to evaluate's overhead).

Since round 3 every curve runs its forwards with each Conv2d -> BatchNorm2d pair folded into one
convolution (:func:`methods.metrics.faithfulness.perturbation.curve_model`; scenes_vgg has 13 such
pairs). The two floors above are the model as it is (unfolded), the goal's definition; where this
tree has ``curve_model`` the script also times the image's forwards back to back through the folded
model and prints evaluate's ratio to that: its overhead over the arithmetic it really runs.
``--precision fp32`` measures what a CPU without native bf16 runs by default.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_batch import machine
from common import allocator_state, time_interleaved

import methods
from methods._internal.torch_utils import bf16_is_native, channels_last_weights, resolve_precision
from methods.metrics.faithfulness import curves as fa
from methods.metrics.faithfulness.image_scores import forward_count
from methods.metrics.faithfulness.perturbation import class_probabilities, runner_for
from methods.pipeline.evaluate import evaluate

try:  # this round's folded curve forwards; an older tree (before_after.py --base) has none
    from methods.metrics.faithfulness.perturbation import curve_model
except ImportError:
    curve_model = None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    args = ap.parse_args()
    print("machine:", machine())
    print("C allocator:", allocator_state())
    precision = resolve_precision(args.precision, "cpu")
    print(f"precision {args.precision} -> {precision} (bf16 native here: {bf16_is_native('cpu')})")
    loaded = methods.load_model("scenes_vgg")
    x = torch.randn(32, 3, 128, 128)

    def evaluation():
        evaluate(
            loaded,
            f"scenes:{args.images}",
            methods=["gradcam"],
            steps=args.steps,
            workers=1,
            progress=False,
            precision=precision,
        )

    def forward32():
        with channels_last_weights(loaded.model), runner_for(x[:1], precision, 32) as run:
            class_probabilities(run, loaded.model, x)

    def one_thread(fn):
        def run():
            before = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                fn()
            finally:
                torch.set_num_threads(before)

        return run

    same = fa.DEFAULT_BASELINES["deletion"] == fa.DEFAULT_BASELINES["insertion"]  # blur and blur: one end image
    shared, before = forward_count(3, args.steps, same_baselines=same), 3 * (2 * (args.steps + 1) + 2)
    rows = torch.randn(shared, 3, 128, 128)

    def forwards():  # exactly the forwards of one image's evaluation, images made beforehand, one runner
        with channels_last_weights(loaded.model), runner_for(rows[:1], precision, shared) as run:
            for start in range(0, shared, 32):
                class_probabilities(run, loaded.model, rows[start : start + 32])

    def forwards_folded():  # the same through the model as the curves run it now (batch norms folded)
        assert curve_model is not None
        with curve_model(loaded.model, rows[:1]), runner_for(rows[:1], precision, shared) as run:
            for start in range(0, shared, 32):
                class_probabilities(run, loaded.model, rows[start : start + 32])

    fns = {"evaluate": evaluation, "forward batch 32": forward32, "the image's forwards": forwards}
    if curve_model is not None:
        fns["folded: the image's forwards"] = forwards_folded
    if torch.get_num_threads() > 1:  # the floors on 1 thread too: the thread count the tuner may choose
        fns["forward batch 32, 1 thread"] = one_thread(forward32)
        fns["the image's forwards, 1 thread"] = one_thread(forwards)
        if curve_model is not None:
            fns["folded: the image's forwards, 1 thread"] = one_thread(forwards_folded)
    times = time_interleaved(fns, repeats=args.repeats, warmup=1)
    per_image = times["evaluate"] / args.images
    per_forward = times["forward batch 32"] / 32
    strict_floor = min(t for name, t in times.items() if name.startswith("the image's forwards"))
    floor = shared * per_forward
    print(
        f"\nscenes_vgg, {args.images} scenes, Grad-CAM + random + centre, {args.steps} steps, {precision}, "
        f"median of {args.repeats}"
    )
    print(f"  evaluate                     {per_image:8.3f} s per image")
    print(f"  one forward (batch 32)       {per_forward * 1000:8.2f} ms per image  ({torch.get_num_threads()} threads)")
    if "forward batch 32, 1 thread" in times:
        print(f"  one forward (batch 32), 1 thread {times['forward batch 32, 1 thread'] / 32 * 1000:8.2f} ms per image")
    print(
        f"  floor: {shared} forwards        {floor:8.3f} s per image   (before sharing: {before} forwards, "
        f"{before * per_forward:.3f} s)"
    )
    ratio = per_image / floor
    print(f"\n  evaluate / floor = {ratio:.2f}  (goal <= 1.10: {'met' if ratio <= 1.1 else 'NOT met'})")
    print(f"  the image's {shared} forwards back to back  {strict_floor:8.3f} s (the faster thread count)")
    strict = per_image / strict_floor
    print(
        f"  evaluate / the image's forwards back to back = {strict:.2f}  (the stricter floor: the same {shared} "
        f"forwards in one runner, images made beforehand, on 1 thread or {torch.get_num_threads()}, whichever was "
        "faster in this run, as evaluate's thread tuner chooses)"
    )
    folded = [t for name, t in times.items() if name.startswith("folded:")]
    if folded:
        print(
            f"  the image's {shared} forwards back to back, batch norms folded (as the curves run them)  {min(folded):8.3f} s"
        )
        print(f"  the image's forwards unfolded / folded = {strict_floor / min(folded):.2f}")
        print(f"  evaluate / the image's folded forwards back to back = {per_image / min(folded):.2f}")
    print(f"  evaluate s/image = {per_image:.3f}")
    print(f"  evaluate / the one-map-at-a-time floor ({before} forwards) = {per_image / (before * per_forward):.2f}")
    if not bf16_is_native("cpu"):
        print(
            "  default (auto) vs fp32 on a bf16-native machine: not measurable here (bf16 is emulated on this CPU, "
            "auto = fp32)"
        )
    print(f"  load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
