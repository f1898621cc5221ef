"""The machinery under the faithfulness scores: argument checks, pixel ranking, baselines, the
perturbed images and the batched model runner.

:mod:`methods.metrics.faithfulness` documents the protocol (RISE deletion / insertion, Grad-CAM++ Average
Drop); this module holds the pieces that protocol is made of, so each stays small and testable:

* ranking — :func:`perturbation_order`: the map is upsampled to the input's H x W (bilinear,
  ``align_corners=False``) and the pixels sorted by descending value; ties go to the lower pixel
  index (row-major; a stable sort); NaN ranks last;
* baselines — ``"zero"``, ``"mean"``, ``"blur"`` (:func:`blur`) or a tensor, all in the model's
  normalized input space;
* :func:`perturbed_image` — the image a curve scores at a given fraction;
* the runner — for the duration of a call the model is in eval mode and its 4-D weights are held
  in channels_last layout (faster convolutions on CPU); the original tensors, layout and
  train/eval flags are put back afterwards, also when the call fails. Batches go through the
  model under ``torch.inference_mode()``, with bfloat16 autocast for ``precision="bf16"``.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Literal, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BASELINES",
    "PRECISIONS",
    "KINDS",
    "BLUR_SIGMA_FRACTION",
    "upsample",
    "perturbation_order",
    "blur",
    "perturbed_image",
]

BaselineSpec = Union[Literal["zero", "mean", "blur"], torch.Tensor]
Precision = Literal["fp32", "bf16"]
Kind = Literal["deletion", "insertion"]
Progress = Callable[[int, int], None]

BASELINES: tuple[str, ...] = ("zero", "mean", "blur")
PRECISIONS: tuple[str, ...] = ("fp32", "bf16")
KINDS: tuple[str, ...] = ("deletion", "insertion")
BLUR_SIGMA_FRACTION = 0.05
"""Default blur sigma as a fraction of the image's longer side."""


# --------------------------------------------------------------------------------------------
# Validation helpers: every error names the argument, the bad value and the valid choices.


def _unwrap_model(model: Any) -> nn.Module:
    if isinstance(model, nn.Module):
        return model
    inner = getattr(model, "model", None)
    if isinstance(inner, nn.Module):
        return inner
    raise TypeError(f"model must be a torch.nn.Module or a LoadedModel (with .model); got {type(model).__name__}")


def _check_x(x: Any) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a preprocessed torch.Tensor of shape (1, C, H, W) or (C, H, W); got {type(x).__name__}")
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"x must be ONE preprocessed image, shape (1, C, H, W) or (C, H, W); got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor; got dtype {x.dtype}")
    return x.detach()


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {list(choices)}")
    return value


def _check_map(saliency: Any) -> torch.Tensor:
    if isinstance(saliency, np.ndarray):
        saliency = torch.from_numpy(np.ascontiguousarray(saliency))
    if not isinstance(saliency, torch.Tensor):
        raise ValueError(f"saliency must be a 2-D (h, w) tensor or array; got {type(saliency).__name__}")
    shape = tuple(saliency.shape)
    while saliency.ndim > 2 and saliency.shape[0] == 1:  # (1, h, w) or (1, 1, h, w): one map
        saliency = saliency[0]
    if saliency.ndim != 2:
        raise ValueError(
            f"saliency must be ONE 2-D (h, w) map (leading singleton dimensions are allowed); got shape {shape} "
            "(for an Explanation pass exp.maps[layer][i])"
        )
    if saliency.numel() == 0:
        raise ValueError(f"saliency must not be empty; got shape {tuple(saliency.shape)}")
    return saliency.detach().to(torch.float64)


def _check_target(target: Any, num_classes: int) -> int:
    if isinstance(target, torch.Tensor) and target.numel() == 1:
        target = int(target.item())
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
        raise ValueError(f"target must be an int class index in [0, {num_classes - 1}]; got {target!r}")
    if not 0 <= int(target) < num_classes:
        raise ValueError(f"target={int(target)} is out of range for a model with {num_classes} classes (valid: 0 .. {num_classes - 1})")
    return int(target)


# --------------------------------------------------------------------------------------------
# Maps and baselines


def upsample(saliency: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(h, w) map -> (H, W) float64, bilinear, ``align_corners=False`` (identity if the size matches)."""
    if tuple(saliency.shape) == tuple(size):
        return saliency.to(torch.float64)
    m = saliency.to(torch.float64)[None, None]  # (1, 1, h, w)
    return F.interpolate(m, size=size, mode="bilinear", align_corners=False)[0, 0]  # (H, W)


def perturbation_order(saliency: Any, size: tuple[int, int]) -> torch.Tensor:
    """The order in which pixels are perturbed: (H*W,) int64 flat pixel indices, most salient first.

    The map is upsampled to ``size`` (bilinear, ``align_corners=False``); pixels are sorted by
    descending value with ties broken by ascending pixel index (a stable sort); NaN ranks last.
    """
    m = upsample(_check_map(saliency), size).flatten()  # (H*W,)
    m = torch.where(torch.isnan(m), torch.full_like(m, -math.inf), m)
    return torch.argsort(m, descending=True, stable=True)  # (H*W,)


def _gaussian_kernel(sigma: float, dtype: torch.dtype) -> torch.Tensor:
    radius = max(1, math.ceil(3.0 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(t**2) / (2.0 * sigma * sigma))
    return (k / k.sum()).to(dtype)  # (2r+1,)


def blur(x: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
    """Gaussian blur of a (N, C, H, W) or (C, H, W) tensor, per channel (the ``"blur"`` baseline).

    Args:
        x: the image(s).
        sigma: in pixels (> 0); default ``0.05 * max(H, W)``.

    Returns:
        A new tensor of ``x``'s shape. Separable kernel truncated at 3 sigma; reflect padding
        (replicate where the image is too small to reflect).
    """
    squeeze = x.ndim == 3
    xb = x[None] if squeeze else x
    _, c, h, w = xb.shape
    if sigma is None:
        sigma = BLUR_SIGMA_FRACTION * max(h, w)
    if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or not sigma > 0:
        raise ValueError(f"blur_sigma must be a number > 0 (pixels); got {sigma!r}")
    k = _gaussian_kernel(float(sigma), xb.dtype)
    r = (k.numel() - 1) // 2
    out = xb.detach()
    for dim, (pad, weight) in enumerate((((0, 0, r, r), k.view(1, 1, -1, 1)), ((r, r, 0, 0), k.view(1, 1, 1, -1)))):
        side = h if dim == 0 else w
        mode = "reflect" if r < side else "replicate"
        padded = F.pad(out, pad, mode=mode)  # (N, C, H+2r, W) then (N, C, H, W+2r)
        out = F.conv2d(padded, weight.expand(c, 1, *weight.shape[2:]), groups=c)  # (N, C, H, W)
    return out[0] if squeeze else out


def _baseline_tensor(x: torch.Tensor, baseline: Any, blur_sigma: float | None) -> tuple[torch.Tensor, str]:
    """(1, C, H, W) substrate for ``baseline`` and its name."""
    if isinstance(baseline, torch.Tensor):
        b = baseline.detach()
        if b.ndim == 3:
            b = b[None]
        if tuple(b.shape) != tuple(x.shape):
            raise ValueError(f"baseline tensor must have x's shape {tuple(x.shape)}; got {tuple(baseline.shape)}")
        return b.to(x.dtype), "tensor"
    _check_choice("baseline", baseline, BASELINES)
    if baseline == "zero":
        return torch.zeros_like(x), "zero"
    if baseline == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone(), "mean"  # (1, C, H, W)
    return blur(x, blur_sigma), "blur"

# --------------------------------------------------------------------------------------------
# The model runner: eval mode, channels_last weights, optional bf16 autocast; all restored.


@contextmanager
def _prepared(net: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and channels_last 4-D weights for the duration; flags and tensors restored after."""
    modes = [(m, m.training) for m in net.modules()]
    swapped: list[tuple[torch.Tensor, torch.Tensor]] = []
    try:
        net.eval()
        for t in list(net.parameters()) + list(net.buffers()):
            if t.ndim == 4 and t.is_floating_point() and not t.is_contiguous(memory_format=torch.channels_last):
                original = t.data
                t.data = original.contiguous(memory_format=torch.channels_last)
                swapped.append((t, original))
        yield net
    finally:
        for t, original in swapped:
            t.data = original
        for m, flag in modes:
            m.training = flag


def _probs(net: nn.Module, batch: torch.Tensor, target: int | None, precision: str) -> torch.Tensor:
    """Softmax probabilities (B, K) float64, or of ``target`` only (B,)."""
    batch = batch.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        out = net(batch)
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"model must return (N, K) logits; got {shape}")
    p = out.float().softmax(dim=1).double()  # (B, K)
    return p if target is None else p[:, target]


def _ranks(sal: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """rank[pixel] = position of the pixel in the perturbation order, as (1, 1, H, W) int64."""
    order = perturbation_order(sal, (h, w))  # (N,)
    rank = torch.empty(h * w, dtype=torch.int64)
    rank[order] = torch.arange(h * w)
    return rank.view(1, 1, h, w)


def _perturb(kind: str, x: torch.Tensor, substrate: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Deletion puts the substrate on the chosen pixels, insertion puts the image there. (B, C, H, W)."""
    if kind == "deletion":
        return torch.where(chosen, substrate, x)
    return torch.where(chosen, x, substrate)


def perturbed_image(
    x: torch.Tensor,
    saliency: Any,
    fraction: float,
    *,
    kind: Kind = "deletion",
    baseline: BaselineSpec | None = None,
    blur_sigma: float | None = None,
) -> torch.Tensor:
    """The image a deletion or insertion curve scores after perturbing ``fraction`` of the pixels.

    Args:
        x: one preprocessed image, (1, C, H, W) or (C, H, W); never modified.
        saliency: (h, w) raw map, ranked as in the curves.
        fraction: share of pixels in [0, 1]; ``round(fraction * H * W)`` pixels are perturbed.
        kind: ``"deletion"`` (the most salient pixels become the baseline) or ``"insertion"``
            (only the most salient pixels show the image, the rest the baseline).
        baseline: as in the curves; None = the kind's default (``"zero"`` / ``"blur"``).
        blur_sigma: sigma of the ``"blur"`` baseline in pixels.

    Returns:
        (1, C, H, W) tensor in ``x``'s (normalized) space.
    """
    _check_choice("kind", kind, KINDS)
    x = _check_x(x)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be a number in [0, 1]; got {fraction!r}")
    if baseline is None:
        baseline = "zero" if kind == "deletion" else "blur"
    substrate, _ = _baseline_tensor(x, baseline, blur_sigma)  # (1, C, H, W)
    _, _, h, w = x.shape
    rank = _ranks(_check_map(saliency), h, w).to(x.device)  # (1, 1, H, W)
    k = math.floor(fraction * h * w + 0.5)
    return _perturb(kind, x, substrate, rank < k).clone()


def _step_counts(n_pixels: int, steps: int) -> torch.Tensor:
    """k_i = round(i * N / S), i = 0..S, round half up, in exact integer arithmetic. (S+1,) int64."""
    i = torch.arange(steps + 1, dtype=torch.int64)
    return (2 * i * n_pixels + steps) // (2 * steps)
