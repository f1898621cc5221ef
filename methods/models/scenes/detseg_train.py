"""Train the bundled ``scenes_det`` (Faster R-CNN) and ``scenes_seg`` (encoder-decoder) from scratch.

Every step draws fresh scenes from ``TRAIN_SEEDS`` (6 ms each on one core, cheaper than caching):
batch ``i`` depends only on ``(seed, i)``. Half of each batch has one object, half two. Boxes are
the tight boxes of the exact masks; the segmentation target is the label map (0 background,
``class + 1`` on the object's pixels). Random horizontal flips on top.

* Detector: torchvision's own Faster R-CNN losses (RPN objectness + box, RoI classification + box),
  AdamW with a OneCycle schedule, images in [0, 1] (the model normalises inside).
* Segmenter: ``features`` start from the bundled ``scenes_vgg`` classifier's; loss = pixel
  cross-entropy over the scene + the same over the objects' pixels only (objects are ~6 % of a
  scene: without their own term the network learnt object-vs-background and called every object a
  circle, mIoU 0.14); AdamW + OneCycle, images normalised with the scenes' mean/std.
  The first 80 % of the steps see 64 x 64 crops holding a whole object (4x fewer pixels: the
  network is fully convolutional), the rest whole 128 x 128 scenes.

Run ``python -m methods.models.scenes.detseg_train --which det|seg``; one core
(``torch.set_num_threads(1)``). The card (JSON next to the weights) records the recipe, the
wall time and the figures of :mod:`methods.models.scenes.detseg_eval` on fresh scenes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import platform
import sys
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from methods.data.scenes import CLASS_NAMES, TRAIN_SEEDS, make_scene
from methods.errors import OptionError
from methods.models.scenes import detseg_eval as ev
from methods.models.scenes import detseg_nets as dn
from methods.models.scenes import nets as sm

__all__ = ["RECIPES", "train_detseg", "main"]

RECIPES: dict[str, dict] = {
    "scenes_det": {"steps": 3000, "batch_size": 8, "lr": 2e-3},
    "scenes_seg": {"steps": 1200, "batch_size": 12, "lr": 2e-3, "crop": 64, "crop_share": 0.7},
}


def _scenes(rng: np.random.Generator, n: int, crop: int | None = None):
    seeds = rng.integers(TRAIN_SEEDS.start, TRAIN_SEEDS.stop, size=n)
    out = []
    for i, s in enumerate(seeds):
        sc = make_scene(int(s), n_objects=1 + i % 2)
        img, masks = sc.image, sc.masks
        if crop:  # a crop x crop window holding all of the first object (the second may be cut)
            y, x = _window(masks[0], crop, rng)
            img, masks = img[y : y + crop, x : x + crop], masks[:, y : y + crop, x : x + crop]
        if rng.random() < 0.5:
            img, masks = img[:, ::-1], masks[:, :, ::-1]
        out.append((np.ascontiguousarray(img), np.ascontiguousarray(masks), sc.labels))
    return out


def _window(mask: np.ndarray, crop: int, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left corner of a random crop x crop window that contains all of ``mask``."""
    size = mask.shape[0]
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    corner = []
    for lo_px, hi_px in ((rows[0], rows[-1]), (cols[0], cols[-1])):
        lo, hi = max(0, int(hi_px) - crop + 1), min(int(lo_px), size - crop)
        corner.append(
            int(rng.integers(lo, hi + 1)) if hi >= lo else int(np.clip((lo_px + hi_px - crop) // 2, 0, size - crop))
        )
    return corner[0], corner[1]


def _det_step(model, rng, bs, crop=None):
    batch = _scenes(rng, bs)
    x = ev.scene_tensor(np.stack([b[0] for b in batch]), normalise=False)
    targets = [
        {
            "boxes": torch.from_numpy(ev.boxes_of(m)),
            "labels": torch.tensor([lab + 1 for lab in labels], dtype=torch.int64),
        }
        for _, m, labels in batch
    ]
    losses = model(list(x), targets)
    return sum(losses.values()), {k: float(v.detach()) for k, v in losses.items()}


def _seg_step(model, rng, bs, crop=None):
    batch = _scenes(rng, bs, crop)
    x = ev.scene_tensor(np.stack([b[0] for b in batch]), normalise=True)
    y = np.zeros((bs, *batch[0][1].shape[1:]), np.int64)
    for i, (_, masks, labels) in enumerate(batch):
        for lab, m in zip(labels, masks):
            y[i][m] = lab + 1
    logits, target = model(x)["out"], torch.from_numpy(y)
    ce = F.cross_entropy(logits, target, reduction="none")  # (N, H, W)
    fg = target > 0
    ce_fg = ce[fg].mean() if bool(fg.any()) else ce.sum() * 0
    loss = ce.mean() + ce_fg  # objects are ~6 % of a scene's pixels: their own term keeps the classes learnt
    return loss, {"ce": float(ce.mean().detach()), "ce_objects": float(ce_fg.detach())}


def train_detseg(
    name: str,
    *,
    steps: int | None = None,
    seed: int = 0,
    out_dir: str | pathlib.Path | None = None,
    n_eval: int = 400,
    log_every: int = 100,
    init: str | pathlib.Path | None = None,
    lr: float | None = None,
    crop_share: float | None = None,
) -> dict:
    """Train ``name`` and write ``<out_dir>/<name>.safetensors`` + ``<name>.json``; returns the card.

    ``init``: start from these weights (a safetensors file of the same architecture) instead of
    random ones: a second, shorter stage (with a lower ``lr``) after a first run."""
    if name not in dn.DETSEG:
        raise OptionError(f"name must be one of {list(dn.DETSEG)}, got {name!r}")
    recipe = dict(RECIPES[name])
    if steps is not None:
        recipe["steps"] = int(steps)
    if lr is not None:
        recipe["lr"] = float(lr)
    if crop_share is not None:
        recipe["crop_share"] = float(crop_share)
    out = pathlib.Path(out_dir) if out_dir else dn.detseg_weights_path(name).parent
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = dn.build_detseg(name).train()
    if name == "scenes_seg" and init is None:  # start from the bundled classifier's features
        from safetensors.torch import load_file

        vgg = load_file(str(sm.weights_path("scenes_vgg")))
        features = model.get_submodule("features")
        features.load_state_dict({k[len("features.") :]: v for k, v in vgg.items() if k.startswith("features.")})
        recipe["features_from"] = "scenes_vgg"
    if init is not None:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(init)), strict=True)
        recipe["init"] = pathlib.Path(init).name
    n_steps, bs = recipe["steps"], recipe["batch_size"]
    opt = torch.optim.AdamW(model.parameters(), lr=recipe["lr"], weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe["lr"], total_steps=n_steps, pct_start=0.1)
    step_fn = _det_step if name == "scenes_det" else _seg_step
    crop_steps = int(round(recipe.get("crop_share", 0.0) * n_steps)) if recipe.get("crop") else 0
    t0 = time.time()
    run: dict[str, float] = {}
    for step in range(n_steps):
        rng = np.random.default_rng([seed, step])
        loss, parts = step_fn(model, rng, bs, recipe["crop"] if step < crop_steps else None)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        sched.step()
        for k, v in parts.items():
            run[k] = 0.95 * run.get(k, v) + 0.05 * v
        if log_every and ((step + 1) % log_every == 0 or step + 1 == n_steps):
            msg = " ".join(f"{k} {v:.3f}" for k, v in run.items())
            print(f"[{name}] step {step + 1}/{n_steps} {msg} {time.time() - t0:.0f}s", flush=True)
    seconds = time.time() - t0
    model.eval()
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().float() for k, v in model.state_dict().items()}
    weights = out / f"{name}.safetensors"
    save_file(state, str(weights), metadata={"model": name, "format": "pt"})
    n_bytes = weights.stat().st_size
    t1 = time.time()
    scenes = ev.eval_scenes(n_eval) if n_eval else []
    if name == "scenes_det":
        metrics = {"map50": ev.evaluate_det(model, scenes)} if scenes else {}
    else:
        metrics = {"miou": ev.evaluate_seg(model, scenes)} if scenes else {}
    card = {
        "name": name,
        "task": dn.DETSEG_TASKS[name],
        "architecture": type(model).__name__,
        "default_layer": dn.DETSEG_LAYERS[name],
        "input_size": dn.INPUT_SIZE,
        "labels": list(dn.LABELS),
        "classes": list(CLASS_NAMES),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "weights_file": weights.name,
        "weights_bytes": n_bytes,
        "metrics": metrics,
        "eval": {
            "scenes": n_eval,
            "seed_start": ev.EVAL_DETSEG_START,
            "two_object_share": 0.5,
            "seconds": round(time.time() - t1, 1),
        },
        "training": {
            **recipe,
            "seed": seed,
            "optimizer": "AdamW(weight_decay=1e-4), OneCycleLR(pct_start=0.1), grad-norm clip 10",
            "data": "fresh TRAIN_SEEDS scenes per step, half one-object half two, horizontal flips",
            "seconds": round(seconds, 1),
            "torch_threads": 1,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "date": datetime.date.today().isoformat(),
            "command": f"python -m methods.models.scenes.detseg_train --which {name.split('_')[1]} --steps {n_steps} --seed {seed}"
            + (f" --init {recipe['init']} --lr {recipe['lr']:g}" if init is not None else "")
            + (f" --crop-share {crop_share:g}" if crop_share is not None else ""),
        },
    }
    (out / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(f"[{name}] {json.dumps(metrics)[:300]} wrote {weights} ({n_bytes / 1e6:.2f} MB)", flush=True)
    return card


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m methods.models.scenes.detseg_train", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--which", required=True, choices=("det", "seg"))
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output directory (default: methods/models/assets)")
    p.add_argument("--n-eval", type=int, default=400)
    p.add_argument("--init", default=None, help="start from these weights (a second stage)")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--crop-share", type=float, default=None, help="share of the steps on 64 px crops (segmenter)")
    a = p.parse_args(argv)
    train_detseg(
        f"scenes_{a.which}",
        steps=a.steps,
        seed=a.seed,
        out_dir=a.out,
        n_eval=a.n_eval,
        init=a.init,
        lr=a.lr,
        crop_share=a.crop_share,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
