"""Speed of the batch command against a plain batched forward+backward of the same images, in one run.

    PYTHONPATH=$PWD python benchmarks/bench_batch.py [--images 64] [--batch-size 16] [--repeats 5] [--model NAME]

Setup: the bundled scenes_vgg model (128 x 128 inputs; ``--model`` names another catalog classifier,
e.g. ``efficientnet_lite0`` at 224 x 224, whose preprocessing resizes the scenes), ``--images``
synthetic scenes written as PNG files, Grad-CAM at the model's default layer, the four views per image.

Timed, interleaved round-robin (median of ``--repeats``):

* **batch command** — :func:`methods.pipeline.batch.run_batch` in this process (``workers=1``): read and
  decode every PNG, preprocess, Grad-CAM over batches of ``--batch-size`` images, normalize,
  render, and write ``original.png`` + 3 PNGs + ``maps.npz`` per image and the manifest, into a
  fresh output folder each time (all files written through temp files and renames; the folders
  are deleted after the timing, not inside it), each batch read, computed, written in turn;
* **batch command, overlapped** — the same with ``BatchWorker.overlap = True``: reading, the
  model and writing of consecutive batches overlapped (:mod:`methods.pipeline.overlap`);
* **plain forward+backward** — the same images, already preprocessed in memory, through the model
  in the same batches with a forward hook on the layer and ``torch.autograd.grad`` of the top-1
  logits to that layer's output: the minimum any Grad-CAM computes, with no library around it;
* **plain forward+backward, parameters frozen** — the same with every parameter's
  ``requires_grad`` off and the graph started at the layer's output: no graph is recorded
  before the layer, which is what the library's recorder does, so this is the least any Grad-CAM
  computes. On more than one torch thread both plain passes are also timed on 1 thread (the
  batch worker runs its model step on 1 thread or all, whichever its thread tuner measured
  faster: :mod:`methods._internal.threads`). The goal's ratio is to the first plain pass (the
  figure kept from before); the ratio to the fastest of the four is printed too, the stricter one;
* the parts: decoding + preprocessing alone, ``methods.explain`` on the in-memory batches alone.

Also: Grad-CAM ms per image at batch 1 vs batch ``--batch-size`` (maps batched across images).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import shutil
import sys
import tempfile

import torch
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import allocator_state, time_interleaved

import methods
from methods.data.scenes import make_scene
from methods.pipeline.batch import run_batch
from methods.pipeline.batch_worker import BatchWorker


def machine() -> str:
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    name = next(
        (line.split(":", 1)[1].strip() for line in flags.splitlines() if line.startswith("model name")),
        platform.processor(),
    )
    return (
        f"{name}; {len(os.sched_getaffinity(0))} usable cores; torch threads {torch.get_num_threads()}; "
        f"AMX {'yes' if 'amx_bf16' in flags else 'no'}, AVX512-BF16 {'yes' if 'avx512_bf16' in flags else 'no'}; "
        f"load average {os.getloadavg()[0]:.1f}; torch {torch.__version__}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", default="scenes_vgg", help="a catalog classifier (default scenes_vgg)")
    ap.add_argument(
        "--tmp",
        default=None,
        help="the folder the images and outputs go under (default the system's temp folder; /dev/shm takes the "
        "disk out of the figure: on the development VM's ext4 disk creating a file cost 0.03-0.6 ms, "
        "depending on how much it had written just before)",
    )
    args = ap.parse_args()
    print("machine:", machine())
    print("C allocator:", allocator_state())
    work = pathlib.Path(tempfile.mkdtemp(prefix="gradlens-bench-batch-", dir=args.tmp))
    print("images and outputs under:", work.parent)
    folder = work / "in"
    folder.mkdir()
    for i in range(args.images):
        Image.fromarray(make_scene(10_000_000 + i).image).save(folder / f"scene{i:04d}.png")
    loaded = methods.load_model(args.model)
    net, layer, bs = loaded.model, loaded.default_layer, args.batch_size
    paths = sorted(folder.iterdir())
    xs = torch.stack([loaded.preprocess(methods.load_image(p)) for p in paths])  # (N, 3, H, W) at the model's size
    chunks = list(xs.split(bs))
    module = dict(net.named_modules())[layer]

    runs = iter(range(10**6))

    def batch_command():
        run_batch(loaded, folder, work / f"out{next(runs)}", methods=["gradcam"], workers=1, batch_size=bs)

    def batch_overlapped():
        BatchWorker.overlap = True  # reading, the model and writing overlapped (off by default)
        try:
            batch_command()
        finally:
            BatchWorker.overlap = False

    def plain():
        for x in chunks:
            seen = {}
            handle = module.register_forward_hook(lambda m, a, o, seen=seen: seen.__setitem__("a", o))
            try:
                logits = net(x)
            finally:
                handle.remove()
            score = logits.gather(1, logits.argmax(1, keepdim=True)).sum()
            torch.autograd.grad(score, seen["a"])

    def plain_frozen():  # the least a Grad-CAM computes: no graph before the layer (parameters frozen)
        flags = [q.requires_grad for q in net.parameters()]
        for q in net.parameters():
            q.requires_grad_(False)
        try:
            for x in chunks:
                seen = {}

                def hook(m, a, o, seen=seen):
                    seen["a"] = o.detach().requires_grad_(True)
                    return seen["a"]

                handle = module.register_forward_hook(hook)
                try:
                    logits = net(x)
                finally:
                    handle.remove()
                score = logits.gather(1, logits.argmax(1, keepdim=True)).sum()
                torch.autograd.grad(score, seen["a"])
        finally:
            for q, flag in zip(net.parameters(), flags):
                q.requires_grad_(flag)

    def one_thread(fn):
        def run():
            before = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                fn()
            finally:
                torch.set_num_threads(before)

        return run

    def decode():
        torch.stack([loaded.preprocess(methods.load_image(p)) for p in paths])

    def explain_only():
        for x in chunks:
            methods.explain(loaded, x, "gradcam")

    def explain_one_by_one():
        for x in xs[:bs]:
            methods.explain(loaded, x[None], "gradcam")

    def explain_batched_same_images():
        methods.explain(loaded, xs[:bs], "gradcam")

    fns = {
        "batch command (decode .. PNGs, manifest)": batch_command,
        "batch command, overlapped": batch_overlapped,
        "plain forward+backward": plain,
        "plain forward+backward, parameters frozen": plain_frozen,
        "decode + preprocess": decode,
        "methods.explain on the batches": explain_only,
        f"Grad-CAM {bs} images at batch 1": explain_one_by_one,
        f"Grad-CAM {bs} images at batch {bs}": explain_batched_same_images,
    }
    if torch.get_num_threads() > 1:  # the floors on 1 thread too: the batch worker's thread tuner may pick it
        fns["plain forward+backward, 1 thread"] = one_thread(plain)
        fns["plain forward+backward, parameters frozen, 1 thread"] = one_thread(plain_frozen)
    times = time_interleaved(fns, repeats=args.repeats, warmup=1)
    n = args.images
    size = "x".join(str(v) for v in xs.shape[-2:])
    print(
        f"\n{args.model}, {n} scenes of 128x128 read at {size}, Grad-CAM at {layer}, batch size {bs}, median of {args.repeats}"
    )
    for name, t in times.items():
        count = bs if name.startswith("Grad-CAM") else n
        print(f"  {name:<44s} {t:8.3f} s   {count / t:8.1f} images/s   {t / count * 1000:7.2f} ms/image")
    ratio = times["batch command (decode .. PNGs, manifest)"] / times["plain forward+backward"]
    print(
        f"\n  batch command / plain forward+backward = {ratio:.2f}  (goal <= 1.50: {'met' if ratio <= 1.5 else 'NOT met'})"
    )
    over = times["batch command, overlapped"] / times["plain forward+backward"]
    print(f"  batch command overlapped / plain forward+backward = {over:.2f}")
    print(f"  batch command ms/image = {times['batch command (decode .. PNGs, manifest)'] / n * 1000:.2f}")
    print(f"  batch command overlapped ms/image = {times['batch command, overlapped'] / n * 1000:.2f}")
    fastest = min(t for name, t in times.items() if name.startswith("plain"))
    print(
        f"  batch command / the fastest plain pass = {times['batch command (decode .. PNGs, manifest)'] / fastest:.2f}"
        f"  (overlapped: {times['batch command, overlapped'] / fastest:.2f}; the fastest of the plain passes above: "
        "parameters frozen or not, 1 thread or all: the stricter floor)"
    )
    print(
        f"  methods.explain / plain forward+backward = {times['methods.explain on the batches'] / times['plain forward+backward']:.2f}"
    )
    rest = (
        times["batch command (decode .. PNGs, manifest)"]
        - times["methods.explain on the batches"]
        - times["decode + preprocess"]
    )
    print(f"  the rest (normalize, render, PNG + npz + manifest writing): {rest / n * 1000:.2f} ms/image")
    rest = times["batch command, overlapped"] - times["methods.explain on the batches"] - times["decode + preprocess"]
    print(f"  the same, overlapped: {rest / n * 1000:.2f} ms/image")
    one, many = times[f"Grad-CAM {bs} images at batch 1"], times[f"Grad-CAM {bs} images at batch {bs}"]
    print(
        f"  Grad-CAM batch 1 / batch {bs} = {one / many:.2f}  ({one / bs * 1000:.2f} vs {many / bs * 1000:.2f} ms/image)"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
