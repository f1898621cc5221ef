"""Train ``scenes_vit`` on CPU and write its weights and model card.

Usage::

    # the shipped weights:
    python -m methods.models.scenes.train_vit --steps 600 --seed 0 --threads 1 --workers 1 --stem vgg --no-crop

Data: the same stream and curriculum as the CNNs (:mod:`methods.models.scenes.train`): batch
``i`` comes from ``numpy.random.default_rng([seed, i])`` over ``TRAIN_SEEDS``; the first
``crop_share`` of the steps are 64x64 windows around a single object (same pixel scale, a 4x4
token grid: the model trains with timm's ``dynamic_img_size``, position embeddings resampled),
then whole 128x128 scenes, a share ``two_share`` of each batch with two objects and the soft
label 1/2 per class. The shipped model is the fixed-size ``VisionTransformer`` with the same
state dict. Evaluation seeds (>= ``EVAL_SEED_START``) are never
drawn in training.

``--stem vgg`` (the shipped hybrid, see :mod:`methods.models.scenes.vit`) loads the bundled
scenes_vgg's ``features`` into the embedding and freezes them (BatchNorm statistics too); only
the 2x2 projection, the position embeddings, the blocks and the head train.

Optimiser: AdamW (weight decay 0.05) with a OneCycle schedule (15 % warm-up, cosine decay),
label smoothing 0.05, gradient clipping at norm 1 - the usual recipe that lets a small ViT
train from scratch without the CNNs' inductive bias; every step sees fresh scenes, so no other
augmentation is needed.

The card records the top-1 accuracy on ``eval_single`` fresh single-object scenes; pointing
of the transformer-native methods is measured by ``benchmarks/vit_scenes.py``.
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
from typing import Any

import torch
import torch.nn.functional as F

from methods.data.scenes import CLASS_NAMES, EVAL_SEED_START, TRAIN_SEEDS, make_batch
from methods.errors import OptionError
from methods.models.scenes import nets as sm
from methods.models.scenes.evaluation import EVAL_SINGLE_START, to_tensor
from methods.models.scenes.train import Batches
from methods.models.scenes.vit import VIT_CONFIG, VIT_DEFAULT_LAYER, build_scenes_vit

__all__ = ["train_vit", "accuracy", "main"]

NAME = "scenes_vit"


def accuracy(model: torch.nn.Module, n: int = 1000, batch_size: int = 200) -> float:
    """Top-1 accuracy on single-object scenes with seeds ``EVAL_SINGLE_START + i`` (i < n)."""
    was_training = model.training
    model.eval()
    correct = 0
    try:
        for start in range(0, n, batch_size):
            seeds = range(EVAL_SINGLE_START + start, EVAL_SINGLE_START + min(start + batch_size, n))
            images, labels, _ = make_batch(seeds)
            with torch.no_grad():
                pred = model(to_tensor(images)).argmax(1).numpy()
            correct += int((pred == labels).sum())
    finally:
        model.train(was_training)
    return correct / n


def train_vit(
    *,
    steps: int = 2000,
    seed: int = 0,
    out_dir: str | pathlib.Path = sm.ASSETS_DIR,
    batch_size: int = 64,
    lr: float = 5e-4,
    two_share: float = 0.25,
    threads: int | None = 1,
    workers: int = 1,
    eval_single: int = 1000,
    eval_every: int = 500,
    stem: str = "conv",
    crop: int | None = 64,
    crop_share: float = 0.5,
    init: str | pathlib.Path | None = None,
    log: Callable[[str], None] | None = print,
    log_every: int = 100,
) -> dict:
    """Train ``scenes_vit`` from scratch; write ``<out_dir>/scenes_vit.safetensors`` + ``.json``.

    Returns:
        The model card (also written as JSON).

    Raises:
        OptionError: a bad option value.
    """
    if steps < 1 or batch_size < 2 or not (0.0 < lr <= 1.0) or not (0.0 <= two_share <= 1.0):
        raise OptionError(
            f"need steps >= 1, batch_size >= 2, 0 < lr <= 1, 0 <= two_share <= 1; "
            f"got {steps}, {batch_size}, {lr}, {two_share}"
        )
    if threads:
        torch.set_num_threads(int(threads))
    say = log or (lambda s: None)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = build_scenes_vit(len(CLASS_NAMES), stem=stem, dynamic=True, vgg_features=sm.vgg_features).train()
    if init is not None:  # a second stage: go on from an earlier run's weights
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(init)), strict=True)
    frozen: Any = None
    if stem == "vgg":  # the hybrid: scenes_vgg's trained features, frozen (BatchNorm statistics too)
        embed: Any = model.patch_embed
        frozen = embed.proj[0]
        frozen.load_state_dict(
            {
                k.removeprefix("features."): v
                for k, v in sm.load_pretrained("scenes_vgg").state_dict().items()
                if k.startswith("features.")
            }
        )
        frozen.requires_grad_(False)
    crop_steps = int(round(crop_share * steps)) if crop else 0
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    loader = torch.utils.data.DataLoader(
        Batches(seed, steps, batch_size, crop, crop_steps, two_share),
        batch_size=None,
        num_workers=workers,
        prefetch_factor=4 if workers else None,
    )
    t0, c0 = time.time(), time.process_time()
    running = 0.0
    it = iter(loader)
    for step in range(steps):
        if frozen is not None:
            frozen.eval()
        x, y = next(it)
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        sched.step()
        running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
        if log_every and ((step + 1) % log_every == 0 or step + 1 == steps):
            say(
                f"[{NAME}] step {step + 1}/{steps} loss {running:.3f} lr {sched.get_last_lr()[0]:.2e} {time.time() - t0:.0f}s"
            )
        if eval_every and (step + 1) % eval_every == 0 and step + 1 < steps:
            say(f"[{NAME}] step {step + 1}: accuracy on 200 fresh scenes {accuracy(model, 200):.3f}")
    del it, loader
    seconds, cpu = time.time() - t0, time.process_time() - c0
    trained = model
    model = build_scenes_vit(len(CLASS_NAMES), stem=stem, vgg_features=sm.vgg_features)
    model.load_state_dict(trained.state_dict(), strict=True)  # the fixed-size model that ships
    model.eval()
    acc = accuracy(model, eval_single) if eval_single else None
    say(f"[{NAME}] accuracy on {eval_single} fresh scenes: {acc}")

    from safetensors.torch import save_file

    weights = out / f"{NAME}.safetensors"
    state = {k: v.detach().contiguous().float() for k, v in model.state_dict().items()}
    save_file(state, str(weights), metadata={"model": NAME, "format": "pt"})
    n_bytes = weights.stat().st_size
    card = {
        "name": NAME,
        "architecture": "timm.models.vision_transformer.VisionTransformer",
        "config": VIT_CONFIG,
        "stem": stem,
        "default_layer": VIT_DEFAULT_LAYER,
        "input_size": sm.INPUT_SIZE,
        "mean": list(sm.MEAN),
        "std": list(sm.STD),
        "classes": list(CLASS_NAMES),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "weights_file": weights.name,
        "weights_dtype": "float32",
        "weights_bytes": n_bytes,
        "metrics": {
            "accuracy": acc,
            "n_single": int(eval_single),
            "single_seeds": [EVAL_SINGLE_START, EVAL_SINGLE_START + eval_single],
        },
        "data": {
            "generator": "methods.data.scenes.make_scene",
            "train_seeds": [TRAIN_SEEDS.start, TRAIN_SEEDS.stop],
            "eval_seed_start": EVAL_SEED_START,
        },
        "training": {
            "seed": seed,
            "steps": steps,
            "batch_size": batch_size,
            "two_object_share": two_share,
            "init": str(init) if init is not None else None,
            "crop": crop,
            "crop_steps": crop_steps,
            "optimizer": "AdamW(weight_decay=0.05), OneCycleLR(pct_start=0.15), clip_grad_norm 1.0",
            "max_lr": lr,
            "label_smoothing": 0.05,
            "seconds": round(seconds, 1),
            "cpu_seconds_training_process": round(cpu, 1),
            "torch_threads": torch.get_num_threads(),
            "loader_workers": workers,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "date": datetime.date.today().isoformat(),
            "command": f"python -m methods.models.scenes.train_vit --steps {steps} --seed {seed} "
            f"--threads {threads} --workers {workers} --stem {stem}" + ("" if crop else " --no-crop"),
        },
    }
    (out / f"{NAME}.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    say(f"[{NAME}] wrote {weights} ({n_bytes / 1e6:.2f} MB) and {NAME}.json")
    return card


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m methods.models.scenes.train_vit", description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(sm.ASSETS_DIR))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--two-share", type=float, default=0.25)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--eval-single", type=int, default=1000)
    p.add_argument("--stem", choices=("patch", "conv", "vgg"), default="conv")
    p.add_argument("--no-crop", action="store_true", help="whole scenes from the first step")
    p.add_argument("--init", default=None, help="start from these weights (a second stage)")
    a = p.parse_args(argv)
    train_vit(
        steps=a.steps,
        seed=a.seed,
        out_dir=a.out,
        batch_size=a.batch_size,
        lr=a.lr,
        two_share=a.two_share,
        threads=a.threads,
        workers=a.workers,
        eval_single=a.eval_single,
        stem=a.stem,
        crop=None if a.no_crop else 64,
        init=a.init,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
