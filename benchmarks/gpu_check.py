"""End-to-end check of GradLens on a CUDA GPU, for whenever one is at hand, and its speed sheet.

    PYTHONPATH=$PWD python benchmarks/gpu_check.py [--sheet docs/gpu_sheet.md]
    PYTHONPATH=$PWD python benchmarks/gpu_check.py --device cpu --tiny     # the smoke test (tests/test_gpu_check.py)

``benchmarks/gpu_run.sh`` runs it on a GPU machine (install, GPU-marked tests, this script).
On a machine without a GPU it says so and exits 0. With one (``torch.cuda.is_available()``):

1. maps: every registered method on the bundled scenes_vgg model, 4 scenes, GPU vs CPU — the
   largest difference relative to the map's own peak must be <= 1e-4 (score methods in fp32);
2. bf16 autocast on CUDA: ``bf16_is_native("cuda")``, what ``precision="auto"`` resolves to, that
   the forward runner autocasts on ``"cuda"`` (not the CPU), and that bf16 logits agree with fp32
   (Pearson >= 0.99);
3. curves and commands: a deletion curve on the GPU equals the CPU's (AUC to 1e-4); the batch
   command with ``device="cuda"`` writes the same maps as on the CPU (1e-4) and records the device;
   the evaluate command's AUCs on the GPU equal the CPU's (1e-4);
4. speed: Score-CAM on torchvision resnet18 (random weights) layer4, 224 x 224, batch 32 — GPU with
   the default precision, GPU fp32, CPU fp32, and pytorch-grad-cam on the GPU if it is importable.

5. the sheet (``benchmarks/gpu_sheet.py``): images/s of plain inference, Grad-CAM at the last
   layer, every gradient method x every block layer, Score-CAM against its C-forward floor and
   deletion + insertion, on resnet50, EfficientNet-Lite0 and a ViT, fp32 and bf16; printed, and
   written as markdown to ``--sheet PATH``.

Exit status: 0 when every check passed (or there is no GPU), 1 otherwise; the sheet's goals are
reported, not failed on. ``--device cpu`` runs the same checks with the CPU standing in for the
GPU: a self-test of this script, nothing more. ``--tiny`` makes it small (one scene, a few methods,
the sheet on scenes_vgg and a 2-block ViT, one repeat): the smoke test a CPU runs in seconds.
"""

from __future__ import annotations

import copy
import pathlib
import sys
import tempfile
import time

import gpu_sheet
import numpy as np
import torch

import methods
from methods._internal.torch_utils import ForwardRunner, bf16_is_native, resolve_precision

FAILURES: list[str] = []


def check(ok: bool, what: str) -> None:
    print(f"  [{'ok' if ok else 'FAIL'}] {what}")
    if not ok:
        FAILURES.append(what)


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm() + 1e-30))


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, repeats: int = 3) -> float:
    fn()
    sync()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="the device under test (default cuda; cpu = self-test)")
    ap.add_argument("--tiny", action="store_true", help="small models and inputs: a quick smoke test")
    ap.add_argument("--sheet", default=None, help="write the speed sheet as markdown to this path")
    ap.add_argument("--no-checks", action="store_true", help="the sheet only (skip checks 1-4)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "No CUDA GPU on this machine (torch.cuda.is_available() is False): nothing to check. "
            "Run this script where a GPU is present."
        )
        return 0
    gpu = torch.device(args.device)
    name = (
        torch.cuda.get_device_name(gpu) if gpu.type == "cuda" else "none (the CPU stands in: a self-test of the script)"
    )
    print(f"device under test: {gpu}, {name}; torch {torch.__version__}, CUDA {torch.version.cuda}")
    if not args.no_checks:
        checks(gpu, tiny=args.tiny)
    print("\n5. the sheet (images/s)")
    sheet = gpu_sheet.measure(gpu, tiny=args.tiny)
    print(sheet.text())
    FAILURES.extend(line for line in sheet.header if "FAILED" in line)  # a model the sheet could not measure
    if args.sheet:
        pathlib.Path(args.sheet).write_text(sheet.markdown())
        print(f"  written to {args.sheet}")
    print(f"\n{'all checks passed' if not FAILURES else f'{len(FAILURES)} check(s) FAILED'}")
    return 1 if FAILURES else 0


def checks(gpu: torch.device, *, tiny: bool) -> None:
    """Checks 1-4 (``tiny``: one scene, Grad-CAM, LayerCAM and Score-CAM, 5 curve steps, no batch or
    evaluate command, no speed section)."""
    from methods.data.scenes import make_scene

    cpu_model = methods.load_model("scenes_vgg")
    gpu_model = methods.LoadedModel(**{**cpu_model.__dict__, "model": copy.deepcopy(cpu_model.model).to(gpu)})
    images = [make_scene(10_000_000 + i).image for i in range(1 if tiny else 4)]
    x_cpu = cpu_model.preprocess_batch(images)
    x_gpu = gpu_model.preprocess_batch(images)
    check(x_gpu.device.type == gpu.type, "LoadedModel.preprocess puts the input on the model's device")

    print("\n1. maps, GPU vs CPU")
    for spec in methods.list_methods():
        if gpu.type == "cpu" and spec.is_slow and spec.name != "scorecam":
            continue  # the self-test on a CPU keeps to one score method: the others take minutes here
        if tiny and spec.name not in ("gradcam", "layercam", "scorecam"):
            continue
        opts = {"precision": "fp32"} if "precision" in spec.option_names else {}
        a = methods.explain(cpu_model, x_cpu, spec.name, **opts).maps[cpu_model.default_layer]
        b = methods.explain(gpu_model, x_gpu, spec.name, **opts).maps[cpu_model.default_layer].cpu()
        rel = float((a - b).abs().max() / a.abs().max().clamp_min(1e-12))
        check(rel <= 1e-4, f"{spec.name:<12s} max |GPU - CPU| / peak = {rel:.2e}")

    print("\n2. bf16 autocast on CUDA")
    print(f"  bf16_is_native({str(gpu)!r}) = {bf16_is_native(gpu)}; precision auto -> {resolve_precision('auto', gpu)}")
    with ForwardRunner(precision="bf16", device=gpu, total=1) as run:
        logits16 = run(lambda b, fmt: gpu_model.model(b), x_gpu)
        check(run.autocast_device == gpu.type, f"the runner autocasts on {run.autocast_device!r}")
    with torch.inference_mode():
        logits32 = gpu_model.model(x_gpu).float()
    check(pearson(logits16, logits32) >= 0.99, f"bf16 vs fp32 logits Pearson {pearson(logits16, logits32):.5f}")

    print("\n3. curves and commands")
    from methods.metrics.faithfulness import curves as fa

    sal = methods.explain(cpu_model, x_cpu[:1], "gradcam").maps[cpu_model.default_layer][0]
    steps = 5 if tiny else 20
    d_cpu = fa.deletion_curve(cpu_model, x_cpu[:1], sal, 0, steps=steps, precision="fp32")
    d_gpu = fa.deletion_curve(gpu_model, x_gpu[:1], sal.to(gpu), 0, steps=steps, precision="fp32")
    check(abs(d_cpu.auc - d_gpu.auc) <= 1e-4, f"deletion AUC CPU {d_cpu.auc:.6f} vs GPU {d_gpu.auc:.6f}")
    if tiny:
        return
    from PIL import Image

    from methods.pipeline.batch import run_batch
    from methods.pipeline.evaluate import evaluate

    work = pathlib.Path(tempfile.mkdtemp(prefix="gradlens-gpu-check-"))
    (work / "in").mkdir()
    for i, im in enumerate(images):
        Image.fromarray(im).save(work / "in" / f"s{i}.png")
    on_cpu = run_batch("scenes_vgg", work / "in", work / "cpu", methods="gradcam,scorecam", device="cpu", workers=1)
    on_gpu = run_batch(
        "scenes_vgg",
        work / "in",
        work / "gpu",
        methods="gradcam,scorecam",
        device=str(gpu),
        workers=1,
        precision="fp32",
    )
    check(set(on_gpu.manifest["device"]) == {str(gpu)}, f"manifest device {sorted(set(on_gpu.manifest['device']))}")
    worst = 0.0
    for rel in on_cpu.manifest["image"].unique():
        a, b = np.load(work / "cpu" / rel / "maps.npz"), np.load(work / "gpu" / rel / "maps.npz")
        for key in a.files:
            worst = max(worst, float(np.abs(a[key] - b[key]).max() / max(np.abs(a[key]).max(), 1e-12)))
    check(worst <= 1e-4, f"batch command maps GPU vs CPU: max relative difference {worst:.2e}")
    e_cpu = evaluate("scenes_vgg", "scenes:2", steps=10, progress=False, device="cpu", workers=1, precision="fp32")
    e_gpu = evaluate("scenes_vgg", "scenes:2", steps=10, progress=False, device=str(gpu), workers=1, precision="fp32")
    diff = float(np.abs(e_cpu["deletion_auc"].to_numpy() - e_gpu["deletion_auc"].to_numpy()).max())
    check(diff <= 1e-4, f"evaluate deletion AUCs GPU vs CPU: max difference {diff:.2e}")

    print("\n4. Score-CAM speed (resnet18 random weights, layer4, 224 x 224, batch 32)")
    if gpu.type == "cpu":
        print("  skipped in the self-test")
        return
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18().eval()
    x = torch.randn(1, 3, 224, 224)
    net_gpu, xg = copy.deepcopy(net).to(gpu), x.to(gpu)
    runs = {
        "GPU default precision": lambda: methods.explain(net_gpu, xg, "scorecam", layers=["layer4"], batch_size=32),
        "GPU fp32": lambda: methods.explain(
            net_gpu, xg, "scorecam", layers=["layer4"], batch_size=32, precision="fp32"
        ),
    }
    try:
        from pytorch_grad_cam import ScoreCAM

        def peer():
            cam = ScoreCAM(model=net_gpu, target_layers=[net_gpu.layer4])
            cam.batch_size = 32
            return cam(input_tensor=xg)

        runs["pytorch-grad-cam ScoreCAM (GPU)"] = peer
    except ImportError:
        print("  (pytorch-grad-cam not importable: peer timing skipped)")
    times = {name: timed(fn) for name, fn in runs.items()}
    t0 = time.perf_counter()
    methods.explain(net, x, "scorecam", layers=["layer4"], batch_size=32, precision="fp32")
    times["CPU fp32 (once)"] = time.perf_counter() - t0
    for name, t in times.items():
        print(f"  {name:<34s} {t:8.3f} s")
    if "pytorch-grad-cam ScoreCAM (GPU)" in times:
        print(
            f"  GPU default / pytorch-grad-cam = {times['GPU default precision'] / times['pytorch-grad-cam ScoreCAM (GPU)']:.2f}"
        )


if __name__ == "__main__":
    sys.exit(main())
