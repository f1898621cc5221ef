"""Train a bundled scenes model on CPU and write its weights and model card.

Usage::

    python -m methods.models.scenes.train --arch vgg|resnet [--steps N] [--out DIR] [--seed S]

    # the shipped weights:
    python -m methods.models.scenes.train --arch vgg --steps 1400 --seed 0 --threads 1 --workers 1

Data: every step draws fresh scenes from :func:`methods.data.scenes.make_scene` with seeds in
``TRAIN_SEEDS`` (0 .. 999_999); evaluation uses seeds >= ``EVAL_SEED_START`` (10_000_000), so no
evaluation scene is ever seen in training. Batch ``i`` (its scene seeds and crops) comes from
``numpy.random.default_rng([seed, i])``, generated in a data-loader worker beside the training
process; the stream is the same with any number of workers. Nothing is downloaded.

Schedule (the defaults are what the shipped weights used; the card records them):

1. ``crop`` phase (first ``crop_share`` of the steps): single-object scenes cut to a random
   ``crop`` x ``crop`` window that contains the whole object. Same pixel scale as the full
   image, ~4x fewer pixels per sample at 64x64 (the networks are fully convolutional + global
   pooling). The first 50 full-scene steps of phase 2 adapt them to whole scenes.
2. ``full`` phase: whole 128x128 scenes; a share ``two_share`` of each batch has two objects.
   Their target is the soft label 1/2 on each class (cross-entropy with probabilities), which
   teaches the networks to give each class evidence at its own object - what makes Grad-CAM
   class-discriminative on two-object scenes.

Optimiser: AdamW with a OneCycle learning-rate schedule, label smoothing 0.05, channels_last
memory layout (about 2x faster than contiguous on CPU). bfloat16 autocast was measured slower
on the development CPU (no AMX / avx512_bf16), so it is off by default (``--bf16`` turns it on).

Evaluation (written into the card): top-1 accuracy on single-object scenes, the Grad-CAM
pointing game on the same scenes (the arg-max of the map, bilinearly upsampled to 128x128, lies
inside the object mask), and on two-object scenes the share of (scene, class) pairs whose
Grad-CAM for that class peaks inside that class's own object.
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import platform
import sys
import time
from collections.abc import Callable, Sequence
from typing import TypedDict

import numpy as np
import torch
import torch.nn.functional as F

from methods.data.scenes import BACKGROUNDS, CLASS_NAMES, EVAL_SEED_START, TRAIN_SEEDS, make_scene
from methods.errors import OptionError
from methods.models.scenes import nets as sm
from methods.models.scenes.evaluation import EVAL_SINGLE_START, EVAL_TWO_START, evaluate, quick_accuracy, to_tensor

__all__ = [
    "ARCHS",
    "Batches",
    "EVAL_SINGLE_START",
    "EVAL_TWO_START",
    "train",
    "evaluate",
    "to_tensor",
    "main",
]

ARCHS = ("vgg", "resnet")


class _Recipe(TypedDict):
    steps: int
    batch_size: int
    lr: float
    crop: int | None
    crop_share: float
    two_share: float


_DEFAULTS: dict[str, _Recipe] = {
    "vgg": _Recipe(steps=1400, batch_size=48, lr=3e-3, crop=64, crop_share=0.5, two_share=0.25),
    "resnet": _Recipe(steps=1400, batch_size=48, lr=3e-3, crop=64, crop_share=0.5, two_share=0.25),
}

# --------------------------------------------------------------------------------------------
# Data


def _crop_around(image: np.ndarray, mask: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
    """A random crop x crop window of ``image`` that contains all of ``mask``."""
    size = image.shape[0]
    rows, cols = np.nonzero(mask.any(axis=1)), np.nonzero(mask.any(axis=0))
    r0, r1 = int(rows[0].min()), int(rows[0].max())
    c0, c1 = int(cols[0].min()), int(cols[0].max())
    lo_y, hi_y = max(0, r1 - crop + 1), min(r0, size - crop)
    lo_x, hi_x = max(0, c1 - crop + 1), min(c0, size - crop)
    y = int(rng.integers(lo_y, hi_y + 1)) if hi_y >= lo_y else int(np.clip((r0 + r1 - crop) // 2, 0, size - crop))
    x = int(rng.integers(lo_x, hi_x + 1)) if hi_x >= lo_x else int(np.clip((c0 + c1 - crop) // 2, 0, size - crop))
    return image[y : y + crop, x : x + crop]


def _batch(rng: np.random.Generator, n: int, *, crop: int | None, two_share: float):
    """One training batch: (N, 3, h, w) input and (N, K) target probabilities."""
    seeds = rng.integers(TRAIN_SEEDS.start, TRAIN_SEEDS.stop, size=n)
    k = len(CLASS_NAMES)
    target = np.zeros((n, k), np.float32)
    images = []
    n_two = 0 if crop else int(round(two_share * n))
    for i, s in enumerate(seeds):
        scene = make_scene(int(s), n_objects=2 if i < n_two else 1)
        target[i, list(scene.labels)] = 1.0 / len(scene.labels)
        images.append(_crop_around(scene.image, scene.masks[0], crop, rng) if crop else scene.image)
    x = to_tensor(np.stack(images))
    return x, torch.from_numpy(target)


class _Batches(torch.utils.data.IterableDataset):
    """The training batches of one run. Batch ``i`` depends only on (seed, i), so the stream is
    the same with any number of loader workers (worker ``w`` of ``W`` makes batches i = w mod W)."""

    def __init__(self, seed: int, steps: int, batch_size: int, crop: int | None, crop_steps: int, two_share: float):
        super().__init__()
        self.seed, self.steps, self.bs = seed, steps, batch_size
        self.crop, self.crop_steps, self.two_share = crop, crop_steps, two_share

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        if info:
            torch.set_num_threads(1)
        for i in range(wid, self.steps, nw):
            rng = np.random.default_rng([self.seed, i])
            yield _batch(rng, self.bs, crop=self.crop if i < self.crop_steps else None, two_share=self.two_share)


Batches = _Batches  # public name: methods.models.scenes.train_vit draws the same stream


def _children_cpu() -> float:
    """CPU seconds of finished child processes (the data-loader workers); 0 where unsupported."""
    try:
        import resource

        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime
    except (ImportError, OSError):  # pragma: no cover - Windows
        return 0.0


# --------------------------------------------------------------------------------------------
# Training


def train(
    arch: str,
    *,
    steps: int | None = None,
    seed: int = 0,
    out_dir: str | pathlib.Path = sm.ASSETS_DIR,
    batch_size: int | None = None,
    lr: float | None = None,
    crop: int | None = -1,
    crop_share: float | None = None,
    two_share: float | None = None,
    bf16: bool = False,
    threads: int | None = None,
    workers: int = 1,
    eval_single: int = 500,
    eval_two: int = 250,
    log: Callable[[str], None] | None = print,
    log_every: int = 100,
    eval_every: int = 0,
) -> dict:
    """Train ``scenes_<arch>`` from scratch and write ``<out_dir>/scenes_<arch>.safetensors`` + ``.json``.

    Args:
        arch: ``"vgg"`` or ``"resnet"``.
        steps: optimiser steps (default per arch, see ``_DEFAULTS``).
        seed: seeds torch and the numpy generator that draws the training scene seeds.
        out_dir: where the two files go (created if needed).
        batch_size, lr, crop, crop_share, two_share: training recipe (defaults per arch);
            ``crop=None`` disables the crop phase.
        bf16: bfloat16 autocast for forward/backward.
        threads: ``torch.set_num_threads`` (default: leave as is).
        workers: data-loader processes generating scenes alongside training (0: in-process).
            The batches do not depend on it.
        eval_single, eval_two: evaluation scene counts (0 skips that part of the evaluation).

    Returns:
        The model card (also written as JSON).

    Raises:
        ValueError: unknown ``arch`` or a bad option value.
    """
    if arch not in ARCHS:
        raise OptionError(f"arch must be one of {list(ARCHS)}, got {arch!r}")
    cfg = _DEFAULTS[arch].copy()
    if steps is not None:
        cfg["steps"] = steps
    if batch_size is not None:
        cfg["batch_size"] = batch_size
    if lr is not None:
        cfg["lr"] = lr
    if crop_share is not None:
        cfg["crop_share"] = crop_share
    if two_share is not None:
        cfg["two_share"] = two_share
    if crop != -1:
        cfg["crop"] = crop
    if int(cfg["steps"]) < 1 or int(cfg["batch_size"]) < 2:
        raise OptionError(f"steps must be >= 1 and batch_size >= 2, got {cfg['steps']} and {cfg['batch_size']}")
    if cfg["crop"] is not None and not (32 <= int(cfg["crop"]) <= sm.INPUT_SIZE):
        raise OptionError(f"crop must be None or in [32, {sm.INPUT_SIZE}], got {cfg['crop']}")
    if threads:
        torch.set_num_threads(int(threads))
    say = log or (lambda s: None)
    name = f"scenes_{arch}"
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(seed)
    model = sm.build(name).to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=0.05)
    n_steps, bs = int(cfg["steps"]), int(cfg["batch_size"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=n_steps, pct_start=0.15)
    crop_steps = int(round(cfg["crop_share"] * n_steps)) if cfg["crop"] else 0

    batches = _Batches(seed, n_steps, bs, cfg["crop"], crop_steps, cfg["two_share"])
    loader = torch.utils.data.DataLoader(
        batches,
        batch_size=None,
        num_workers=workers,
        prefetch_factor=4 if workers else None,
        persistent_workers=False,
    )
    t0, c0, k0 = time.time(), time.process_time(), _children_cpu()
    t_data = 0.0
    running_loss, running_acc = 0.0, 0.0
    it = iter(loader)
    for step in range(n_steps):
        td = time.time()
        x, y = next(it)
        x = x.contiguous(memory_format=torch.channels_last)
        t_data += time.time() - td
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running_loss = 0.98 * running_loss + 0.02 * loss.item() if step else loss.item()
        acc = float((logits.argmax(1) == y.argmax(1)).float().mean())
        running_acc = 0.98 * running_acc + 0.02 * acc if step else acc
        if log_every and ((step + 1) % log_every == 0 or step + 1 == n_steps):
            say(
                f"[{name}] step {step + 1}/{n_steps} loss {running_loss:.3f} acc~{running_acc:.3f} "
                f"lr {sched.get_last_lr()[0]:.2e} {time.time() - t0:.0f}s (cpu {time.process_time() - c0:.0f}s, data {t_data:.0f}s)"
            )
        if eval_every and (step + 1) % eval_every == 0 and step + 1 < n_steps:
            say(f"[{name}] step {step + 1}: held-out accuracy {quick_accuracy(model):.3f}")
    main_cpu = time.process_time() - c0
    del it, loader  # shuts the workers down, so their CPU time is counted below
    train_seconds = time.time() - t0
    loader_cpu = _children_cpu() - k0
    train_cpu = main_cpu + loader_cpu

    model = model.to(memory_format=torch.contiguous_format).eval()
    layer = sm.DEFAULT_LAYERS[name]
    t1 = time.time()
    metrics = evaluate(model, layer, n_single=eval_single, n_two=eval_two) if eval_single else {}
    eval_seconds = time.time() - t1
    if metrics:
        say(
            f"[{name}] accuracy {metrics['accuracy']:.4f} pointing {metrics['pointing']:.4f} "
            f"two-object {metrics['two_object']} ({eval_seconds:.0f}s)"
        )

    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().float() for k, v in model.state_dict().items()}
    weights = out_dir / f"{name}.safetensors"
    save_file(state, str(weights), metadata={"model": name, "format": "pt"})
    n_params = sum(p.numel() for p in model.parameters())
    n_bytes = weights.stat().st_size
    card = {
        "name": name,
        "architecture": type(model).__name__,
        "default_layer": layer,
        "input_size": sm.INPUT_SIZE,
        "mean": list(sm.MEAN),
        "std": list(sm.STD),
        "classes": list(CLASS_NAMES),
        "parameters": int(n_params),
        "weights_file": weights.name,
        "weights_dtype": "float32",
        "weights_bytes": n_bytes,
        "metrics": metrics,
        "data": {
            "generator": "methods.data.scenes.make_scene",
            "image_size": 128,
            "classes": list(CLASS_NAMES),
            "backgrounds": list(BACKGROUNDS),
            "train_seeds": [TRAIN_SEEDS.start, TRAIN_SEEDS.stop],
            "eval_seed_start": EVAL_SEED_START,
        },
        "training": {
            "seed": seed,
            "torch_seed": seed,
            "steps": n_steps,
            "batch_size": bs,
            "crop": cfg["crop"],
            "crop_steps": crop_steps,
            "two_object_share": cfg["two_share"],
            "two_object_target": "soft label 1/2 per class, cross-entropy",
            "optimizer": "AdamW(weight_decay=0.05), OneCycleLR(pct_start=0.15)",
            "max_lr": cfg["lr"],
            "label_smoothing": 0.05,
            "bf16_autocast": bool(bf16),
            "channels_last": True,
            "seconds": round(train_seconds, 1),
            "cpu_seconds": round(train_cpu, 1),
            "cpu_seconds_training_process": round(main_cpu, 1),
            "cpu_seconds_loader_workers": round(loader_cpu, 1),
            "data_wait_seconds": round(t_data, 1),
            "eval_seconds": round(eval_seconds, 1),
            "torch_threads": torch.get_num_threads(),
            "loader_workers": workers,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "date": datetime.date.today().isoformat(),
            "command": f"python -m methods.models.scenes.train --arch {arch} --steps {n_steps} --seed {seed}"
            + (f" --threads {threads}" if threads else "")
            + f" --workers {workers}",
        },
    }
    (out_dir / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    say(f"[{name}] wrote {weights} ({n_bytes / 1e6:.2f} MB) and {name}.json")
    return card


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m methods.models.scenes.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", required=True, choices=ARCHS)
    p.add_argument("--steps", type=int, default=None, help="optimiser steps (default per arch)")
    p.add_argument("--out", default=str(sm.ASSETS_DIR), help="output directory (default: methods/models/assets)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--no-crop", action="store_true", help="train on full 128x128 scenes throughout")
    p.add_argument("--two-share", type=float, default=None)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--workers", type=int, default=1, help="data-loader worker processes (default 1)")
    p.add_argument("--eval-single", type=int, default=500, help="single-object evaluation scenes")
    p.add_argument("--eval-two", type=int, default=250, help="two-object evaluation scenes")
    a = p.parse_args(argv)
    train(
        a.arch,
        steps=a.steps,
        seed=a.seed,
        out_dir=a.out,
        batch_size=a.batch_size,
        lr=a.lr,
        crop=None if a.no_crop else -1,
        two_share=a.two_share,
        bf16=a.bf16,
        threads=a.threads,
        workers=a.workers,
        eval_single=a.eval_single,
        eval_two=a.eval_two,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
