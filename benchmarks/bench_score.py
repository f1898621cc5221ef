"""Speed and memory of the score-weighted family against pytorch-grad-cam, measured in one run.

    python benchmarks/bench_score.py                 # GradLens only
    /tmp/benchenv/bin/python benchmarks/bench_score.py   # + pytorch-grad-cam, if importable there

Setup: torchvision resnet18 with RANDOM weights (the cost does not depend on them), layer4
(512 channels, 7x7), one 224x224 image, 32 masked inputs per forward pass, the model's top-1 class.

1. Time (one process, calls interleaved round-robin, median of ``--repeats``):
   GradLens Score-CAM with the default precision ("auto": bf16 where native, else fp32) / fp32 /
   bf16 / top-64 channels, pytorch-grad-cam ``ScoreCAM`` (its
   ``batch_size`` set to 32); Ablation-CAM (GradLens fast path) and pytorch-grad-cam
   ``AblationCAM`` (batch 32). Ratios are GradLens / pytorch-grad-cam of the same run.
2. Peak extra memory: every configuration runs once in a FRESH subprocess. After building the
   model and input and one plain forward pass (which loads oneDNN kernels any user pays for),
   the kernel's peak-RSS counter is reset (``echo 5 > /proc/self/clear_refs``) and the current RSS
   noted; after the call, ``VmHWM - that RSS`` is the extra peak. Counts everything the process
   touches (PyTorch's CPU allocator returns big blocks to the OS), the same way for both libraries.
3. Agreement: Pearson correlation of GradLens' bf16 map with its fp32 map (and of the channel
   weights, which is stricter: with random weights all w_k are close, so the map is nearly
   sum_k A^k whatever the weights).

pytorch-grad-cam is never a dependency; it is used only when importable (a separate venv).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TQDM_DISABLE", "1")  # pytorch-grad-cam's progress bars

import torch
import torchvision

import methods
import methods.cams.score
from methods.cams.core.base import LayerContext
from methods.runtime import resolve_precision

LAYER = "layer4"
BATCH = 32


def setup():
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        target = int(model(x).argmax(1))
    return model, x, target


def peer_available() -> bool:
    try:
        import pytorch_grad_cam  # noqa: F401  (availability check)
    except ImportError:
        return False
    return True


def configs(model, x, target) -> dict:
    """name -> zero-argument callable returning the (224x224 or layer-size) map."""

    def ours(method, **opts):
        return lambda: methods.explain(model, x, method, layers=[LAYER], target=target, batch_size=BATCH, **opts).maps[
            LAYER
        ][0]

    out = {
        "GradLens Score-CAM default": ours("scorecam"),  # precision="auto": bf16 where native, else fp32
        "GradLens Score-CAM fp32": ours("scorecam", precision="fp32"),
        "GradLens Score-CAM bf16": ours("scorecam", precision="bf16"),
        "GradLens Score-CAM top-64 fp32": ours("scorecam", precision="fp32", channels=64),
        "GradLens Ablation-CAM fp32": ours("ablationcam", precision="fp32"),
    }
    if peer_available():
        from pytorch_grad_cam import AblationCAM, ScoreCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        def peer(cls, **kw):
            def run():
                cam = cls(model=model, target_layers=[getattr(model, LAYER)], **kw)
                cam.batch_size = BATCH
                return torch.from_numpy(cam(input_tensor=x, targets=[ClassifierOutputTarget(target)])[0])

            return run

        out["pytorch-grad-cam ScoreCAM"] = peer(ScoreCAM)
        out["pytorch-grad-cam AblationCAM"] = peer(AblationCAM, batch_size=BATCH)
    return out


# --------------------------------------------------------------------------------------------
# memory, one configuration per fresh process


def _status(field: str) -> int:
    text = pathlib.Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1)) * 1024


def measure_memory_here(name: str) -> dict:
    model, x, target = setup()
    fn = configs(model, x, target)[name]
    with torch.inference_mode():
        model(x)  # oneDNN kernels and thread pools, which any user pays for
    pathlib.Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (VmHWM)
    base = _status("VmRSS")
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    return {"name": name, "extra_mb": (_status("VmHWM") - base) / 2**20, "seconds": seconds}


def measure_memory(names: list[str]) -> dict[str, float]:
    out = {}
    for name in names:
        proc = subprocess.run(
            [sys.executable, __file__, "--memory-one", name], capture_output=True, text=True, check=True
        )
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        out[name] = result["extra_mb"]
        print(
            f"  {name:<40s} peak extra {result['extra_mb']:8.1f} MB   (run alone: {result['seconds']:.1f} s)",
            flush=True,
        )
    return out


# --------------------------------------------------------------------------------------------


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def weights(model, x, target, **opts) -> torch.Tensor:
    rec = methods.record(model, x, [LAYER], target=target, gradients=False)
    ctx = LayerContext(model, x, LAYER, rec.activations[LAYER], rec.targets, rec.logits, None)
    return methods.create_method("scorecam", batch_size=BATCH, **opts).weights(ctx)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-one", help=argparse.SUPPRESS)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    if args.memory_one:
        print(json.dumps(measure_memory_here(args.memory_one)))
        return

    model, x, target = setup()
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpu capability {torch.backends.cpu.get_cpu_capability()}, "
        f"bf16 native {methods.bf16_is_native('cpu')}, precision auto -> {resolve_precision('auto', 'cpu')}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"resnet18 (random weights) {LAYER}, 224x224, 1 image, batch_size {BATCH}, target class {target}")
    fns = configs(model, x, target)
    if "pytorch-grad-cam ScoreCAM" not in fns:
        print("  (pytorch-grad-cam not importable: peer comparison skipped; run with the benchmark venv's python)")

    # warm-up: one plain batch (kernel creation), then interleaved repeats; maps from the first
    with torch.inference_mode():
        model(x.expand(BATCH, -1, -1, -1).contiguous())
        model(x.expand(BATCH, -1, -1, -1).contiguous(memory_format=torch.channels_last))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    results: dict[str, torch.Tensor] = {}
    for r in range(args.repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            out = fn()
            samples[name].append(time.perf_counter() - t0)
            results.setdefault(name, out)
        print(f"  repeat {r + 1}/{args.repeats} done", flush=True)
    times = {name: statistics.median(v) for name, v in samples.items()}

    print("\n== time (median of interleaved repeats)")
    for name, t in times.items():
        spread = f"[{min(samples[name]):.1f} .. {max(samples[name]):.1f}]"
        print(f"  {name:<40s} {t:8.2f} s  {spread}")
    peer_sc, peer_ab = "pytorch-grad-cam ScoreCAM", "pytorch-grad-cam AblationCAM"
    if peer_sc in times:
        native = methods.bf16_is_native("cpu")
        goal = 0.5 if native else 0.7
        ratio = times["GradLens Score-CAM default"] / times[peer_sc]
        print(
            f"  GradLens Score-CAM default (auto -> {resolve_precision('auto', 'cpu')}) / {peer_sc} = {ratio:.2f}"
            f"  (goal <= {goal:.2f} where bf16 is {'native' if native else 'not native'}: {'met' if ratio <= goal else 'NOT met'})"
        )
        for ours in ("GradLens Score-CAM fp32", "GradLens Score-CAM bf16", "GradLens Score-CAM top-64 fp32"):
            ratio = times[ours] / times[peer_sc]
            verdict = "  (goal <= 0.50: %s)" % ("met" if ratio <= 0.5 else "NOT met") if "top-64" not in ours else ""
            print(f"  {ours} / {peer_sc} = {ratio:.2f}{verdict}")
        print(f"  GradLens Ablation-CAM fp32 / {peer_ab} = {times['GradLens Ablation-CAM fp32'] / times[peer_ab]:.3f}")

    print("\n== agreement")
    p_map = pearson(results["GradLens Score-CAM fp32"], results["GradLens Score-CAM bf16"])
    w32, w16 = weights(model, x, target, precision="fp32"), weights(model, x, target, precision="bf16")
    p_w = pearson(w32, w16)
    print(f"  Pearson(bf16 map, fp32 map) = {p_map:.6f}   (goal >= 0.99: {'met' if p_map >= 0.99 else 'NOT met'})")
    print(
        f"  Pearson(bf16 weights, fp32 weights) = {p_w:.6f};  max |w_bf16 - w_fp32| = {float((w32 - w16).abs().max()):.2e}"
        f" (weights range {float(w32.min()):.4f} .. {float(w32.max()):.4f})"
    )
    acts = methods.record(model, x, [LAYER], gradients=False).activations[LAYER][0]
    zero = int((acts.flatten(1).abs().amax(1) == 0).sum())
    print(f"  all-zero channels at {LAYER} (skipped, weight 0): {zero} of {acts.shape[0]}")

    if not args.skip_memory:
        print("\n== peak extra memory (fresh process each)")
        mem = measure_memory(list(fns))
        if peer_sc in mem:
            for ours in ("GradLens Score-CAM fp32", "GradLens Score-CAM bf16"):
                ratio = mem[ours] / mem[peer_sc]
                print(f"  {ours} / {peer_sc} = {ratio:.2f}  (goal <= 0.50: {'met' if ratio <= 0.5 else 'NOT met'})")


if __name__ == "__main__":
    main()
