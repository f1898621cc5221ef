"""How well a bundled scene model classifies and localizes, on scenes it never saw.

Single-object seeds start at ``EVAL_SINGLE_START`` (= :data:`methods.data.scenes.EVAL_SEED_START`,
10_000_000), two-object seeds at ``EVAL_TWO_START``: ranges that training
(:mod:`methods.models.scenes.train`, seeds in ``TRAIN_SEEDS``) never draws from. The numbers go
into the model cards and are re-measured by the test suite.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from methods.cams.core.explain import explain
from methods.data.scenes import CLASS_NAMES, EVAL_SEED_START, make_batch
from methods.errors import OptionError
from methods.models.scenes import nets as sm

__all__ = [
    "EVAL_SINGLE_START",
    "EVAL_TWO_START",
    "to_tensor",
    "gradcam_maps",
    "peak_in_mask",
    "evaluate",
    "quick_accuracy",
]

#: Evaluation seeds: single-object scenes from here, two-object scenes from EVAL_TWO_START.
EVAL_SINGLE_START = EVAL_SEED_START
EVAL_TWO_START = EVAL_SEED_START + 1_000_000

_MEAN = torch.tensor(sm.MEAN).view(1, 3, 1, 1)
_STD = torch.tensor(sm.STD).view(1, 3, 1, 1)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 normalized with the bundled MEAN/STD (no resize)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)  # (N, 3, H, W)
    return (x - _MEAN) / _STD


def gradcam_maps(model: nn.Module, x: torch.Tensor, layer: str, target: torch.Tensor) -> torch.Tensor:
    """Grad-CAM maps upsampled to the input size with the library: (N, H, W)."""
    exp = explain(model, x, "gradcam", layers=[layer], target=target)
    return exp.upsampled(layer, (x.shape[-2], x.shape[-1]))


def _mean_or_none(a: np.ndarray) -> float | None:
    return float(a.mean()) if a.size else None


def peak_in_mask(maps: torch.Tensor, masks: np.ndarray) -> np.ndarray:
    """(N,) bool: the arg-max pixel of each (H, W) map lies inside its (H, W) mask."""
    n, h, w = maps.shape
    idx = maps.reshape(n, -1).argmax(dim=1).numpy()  # (N,)
    return masks.reshape(n, -1)[np.arange(n), idx]


def evaluate(
    model: nn.Module,
    layer: str,
    *,
    n_single: int = 500,
    n_two: int = 250,
    batch_size: int = 100,
    cam: Callable[[nn.Module, torch.Tensor, str, torch.Tensor], torch.Tensor] | None = None,
) -> dict:
    """Accuracy, pointing game and two-object class-discrimination on held-out scenes.

    Single-object seeds are ``EVAL_SINGLE_START + i`` (i < n_single), two-object seeds
    ``EVAL_TWO_START + i`` (i < n_two). Grad-CAM targets the TRUE class of each object.

    Args:
        model: the classifier (put in eval mode here).
        layer: module name whose Grad-CAM is scored.
        cam: ``(model, x, layer, target) -> (N, H, W)`` upsampled maps; default: ``methods.explain``
            with ``method="gradcam"``.

    Returns:
        dict with ``accuracy``, ``pointing`` (single-object), ``two_object`` (share of
        (scene, class) pairs peaking on their own object), ``two_object_both`` (share of scenes
        where both classes do), ``per_class_accuracy``, ``per_class_pointing`` and the counts.
    """
    if n_single < 1 or n_two < 0 or batch_size < 1:
        raise OptionError(f"need n_single >= 1, n_two >= 0, batch_size >= 1; got {n_single}, {n_two}, {batch_size}")
    cam = cam or gradcam_maps
    model.eval()
    correct_parts: list[np.ndarray] = []
    hit_parts: list[np.ndarray] = []
    label_parts: list[np.ndarray] = []
    for start in range(0, n_single, batch_size):
        seeds = range(EVAL_SINGLE_START + start, EVAL_SINGLE_START + min(start + batch_size, n_single))
        images, labels, masks = make_batch(seeds)
        x = to_tensor(images)
        with torch.no_grad():
            pred = model(x).argmax(1).numpy()
        correct_parts.append(pred == labels)
        hit_parts.append(peak_in_mask(cam(model, x, layer, torch.from_numpy(labels)), masks))
        label_parts.append(labels)
    correct, hits, labels_all = np.concatenate(correct_parts), np.concatenate(hit_parts), np.concatenate(label_parts)

    own_parts: list[np.ndarray] = []
    for start in range(0, n_two, batch_size):
        seeds = range(EVAL_TWO_START + start, EVAL_TWO_START + min(start + batch_size, n_two))
        images, labels, masks = make_batch(seeds, n_objects=2)  # (N, 2), (N, 2, H, W)
        x = to_tensor(images)
        per_obj = [peak_in_mask(cam(model, x, layer, torch.from_numpy(labels[:, k])), masks[:, k]) for k in (0, 1)]
        own_parts.append(np.stack(per_obj, axis=1))  # (N, 2)
    own = np.concatenate(own_parts) if own_parts else np.zeros((0, 2), bool)

    k = len(CLASS_NAMES)
    return {
        "accuracy": float(correct.mean()),
        "pointing": float(hits.mean()),
        "two_object": float(own.mean()) if len(own) else None,
        "two_object_both": float(own.all(axis=1).mean()) if len(own) else None,
        "per_class_accuracy": {CLASS_NAMES[c]: _mean_or_none(correct[labels_all == c]) for c in range(k)},
        "per_class_pointing": {CLASS_NAMES[c]: _mean_or_none(hits[labels_all == c]) for c in range(k)},
        "n_single": int(n_single),
        "n_two": int(n_two),
        "single_seeds": [EVAL_SINGLE_START, EVAL_SINGLE_START + n_single],
        "two_object_seeds": [EVAL_TWO_START, EVAL_TWO_START + n_two],
        "layer": layer,
    }


def quick_accuracy(model: nn.Module, n: int = 200) -> float:
    """Top-1 accuracy on the first ``n`` single-object evaluation scenes (restores train mode)."""
    was_training = model.training
    model.eval()
    images, labels, _ = make_batch(range(EVAL_SINGLE_START, EVAL_SINGLE_START + n))
    with torch.no_grad():
        pred = model(to_tensor(images).contiguous(memory_format=torch.channels_last)).argmax(1).numpy()
    model.train(was_training)
    return float((pred == labels).mean())
