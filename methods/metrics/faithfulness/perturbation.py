"""The machinery under the faithfulness scores: argument checks, pixel ranking, baselines, the
perturbed images and the batched model runner.

:mod:`methods.metrics.faithfulness.curves` documents the protocol (RISE deletion / insertion, Grad-CAM++ Average
Drop); this module holds the pieces that protocol is made of, so each stays small and testable:

* ranking — :func:`perturbation_order`: the map is upsampled to the input's H x W (bilinear,
  ``align_corners=False``) and the pixels sorted by descending value; ties go to the lower pixel
  index (row-major; a stable sort); NaN ranks last;
* baselines — ``"zero"``, ``"mean"``, ``"blur"`` (:func:`blur`) or a tensor, all in the model's
  normalized input space;
* :func:`perturbed_image` — the image a curve scores at a given fraction;
* the runner — for the duration of a call (:func:`curve_model`) the model is in eval mode, its 4-D
  weights are held in channels_last layout (faster convolutions on CPU) and each Conv2d ->
  BatchNorm2d pair runs as one folded convolution, checked first against the model's own output
  on the image (:mod:`methods._internal.bn_folding`); the original tensors, layout, forwards and
  train/eval flags are put back afterwards, also when the call fails. Batches go through the
  model under ``torch.inference_mode()``, with bfloat16 autocast for ``precision="bf16"``
  (``"auto"``, the default, resolves per device: :func:`methods._internal.torch_utils.resolve_precision`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any, Literal, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from methods._internal.bn_folding import FoldedBatchNorm
from methods._internal.checks import check_choice
from methods._internal.progress import Progress
from methods._internal.torch_utils import (
    PRECISION_CHOICES,
    ForwardRunner,
    Precision,
    channels_last_weights,
    check_input,
    unwrap_model,
    upsample,
)
from methods.errors import InputError, OptionError, TargetError
from methods.targets.base import Target, explained_scores
from methods.targets.classes import ClassTarget

__all__ = [
    "BASELINES",
    "DEFAULT_BASELINES",
    "PRECISIONS",
    "KINDS",
    "BLUR_SIGMA_FRACTION",
    "check_one_image",
    "check_saliency",
    "check_class",
    "baseline_substrate",
    "perturbation_order",
    "pixel_ranks",
    "step_counts",
    "perturb",
    "blur",
    "perturbed_image",
    "class_probabilities",
    "runner_for",
    "curve_model",
    "scored_model",
]

BaselineName = Literal["zero", "mean", "blur"]
BaselineSpec = Union[BaselineName, torch.Tensor]
Kind = Literal["deletion", "insertion"]

BASELINES: tuple[BaselineName, ...] = ("zero", "mean", "blur")
DEFAULT_BASELINES: dict[str, BaselineName] = {"deletion": "blur", "insertion": "blur"}
"""The baseline each curve uses unless told: blur for both (see docs/faithfulness.md for why
deletion does not use RISE's zero)."""
PRECISIONS: tuple[Precision, ...] = PRECISION_CHOICES
"""The precisions a curve accepts: ``"auto"`` (bf16 where native, else fp32), ``"fp32"``, ``"bf16"``."""
KINDS: tuple[str, ...] = ("deletion", "insertion")
BLUR_SIGMA_FRACTION = 0.05
"""Default blur sigma as a fraction of the image's longer side."""


# --------------------------------------------------------------------------------------------
# Validation helpers: every error names the argument, the bad value and the valid choices.


def check_one_image(x: Any) -> torch.Tensor:
    """ONE preprocessed image as (1, C, H, W): floating point and finite ((C, H, W) is accepted)."""
    if not isinstance(x, torch.Tensor):
        raise InputError(
            f"x must be a preprocessed torch.Tensor of shape (1, C, H, W) or (C, H, W); got {type(x).__name__}"
        )
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        raise InputError(f"x must be ONE preprocessed image, shape (1, C, H, W) or (C, H, W); got {tuple(x.shape)}")
    return check_input(x, batch=1).detach()


def check_saliency(saliency: Any) -> torch.Tensor:
    """ONE (h, w) map as float64 (leading singleton dimensions are dropped; numpy arrays accepted)."""
    if isinstance(saliency, np.ndarray):
        saliency = torch.from_numpy(np.ascontiguousarray(saliency))
    if not isinstance(saliency, torch.Tensor):
        raise InputError(f"saliency must be a 2-D (h, w) tensor or array; got {type(saliency).__name__}")
    shape = tuple(saliency.shape)
    while saliency.ndim > 2 and saliency.shape[0] == 1:  # (1, h, w) or (1, 1, h, w): one map
        saliency = saliency[0]
    if saliency.ndim != 2:
        raise InputError(
            f"saliency must be ONE 2-D (h, w) map (leading singleton dimensions are allowed); got shape {shape} "
            "(for an Explanation pass exp.maps[layer][i])"
        )
    if saliency.numel() == 0:
        raise InputError(f"saliency must not be empty; got shape {tuple(saliency.shape)}")
    return saliency.detach().to(torch.float64)


def check_class(target: Any, num_classes: int) -> int:
    if isinstance(target, torch.Tensor) and target.numel() == 1:
        target = int(target.item())
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
        raise TargetError(f"target must be an int class index in [0, {num_classes - 1}]; got {target!r}")
    if not 0 <= int(target) < num_classes:
        raise TargetError(
            f"target={int(target)} is out of range for a model with {num_classes} classes (valid: 0 .. {num_classes - 1})"
        )
    return int(target)


# --------------------------------------------------------------------------------------------
# Maps and baselines


def perturbation_order(saliency: Any, size: tuple[int, int]) -> torch.Tensor:
    """The order in which pixels are perturbed: (H*W,) int64 flat pixel indices, most salient first.

    The map is upsampled to ``size`` (bilinear, ``align_corners=False``); pixels are sorted by
    descending value with ties broken by ascending pixel index (a stable sort); NaN ranks last.
    """
    m = upsample(check_saliency(saliency), size).flatten()  # (H*W,)
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
        raise OptionError(f"blur_sigma must be a number > 0 (pixels); got {sigma!r}")
    k = _gaussian_kernel(float(sigma), xb.dtype)
    r = (k.numel() - 1) // 2
    out = xb.detach()
    for dim, (pad, weight) in enumerate((((0, 0, r, r), k.view(1, 1, -1, 1)), ((r, r, 0, 0), k.view(1, 1, 1, -1)))):
        side = h if dim == 0 else w
        mode = "reflect" if r < side else "replicate"
        padded = F.pad(out, pad, mode=mode)  # (N, C, H+2r, W) then (N, C, H, W+2r)
        out = F.conv2d(padded, weight.expand(c, 1, *weight.shape[2:]), groups=c)  # (N, C, H, W)
    return out[0] if squeeze else out


def baseline_substrate(x: torch.Tensor, baseline: Any, blur_sigma: float | None) -> tuple[torch.Tensor, str]:
    """(1, C, H, W) substrate for ``baseline`` and its name."""
    if isinstance(baseline, torch.Tensor):
        b = baseline.detach()
        if b.ndim == 3:
            b = b[None]
        if tuple(b.shape) != tuple(x.shape):
            raise InputError(f"baseline tensor must have x's shape {tuple(x.shape)}; got {tuple(baseline.shape)}")
        return b.to(x.dtype), "tensor"
    check_choice("baseline", baseline, BASELINES)
    if baseline == "zero":
        return torch.zeros_like(x), "zero"
    if baseline == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone(), "mean"  # (1, C, H, W)
    return blur(x, blur_sigma), "blur"


# --------------------------------------------------------------------------------------------
# The model runner: eval mode, channels_last weights, optional bf16 autocast; all restored.


def class_probabilities(run: ForwardRunner, net: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Softmax probabilities (B, K) float64 of ``batch`` through ``net`` in the runner's precision
    (autocast on the runner's device type, channels_last inputs, inference mode)."""
    out = run(lambda b, fmt: net(b), batch)  # (B, K) float32
    return explained_scores(net, out).double()  # a task target's view: its (B, 1) scores as they are


def scored_model(model: Any, target: Any) -> tuple[nn.Module, Any]:
    """The module a curve runs and the target column it reads, from a module or a ``LoadedModel``
    and a target of any kind: a :class:`~methods.targets.ClassTarget` -> its class index; a task
    target (box, region, embedding) -> its (N, 1) score view and column 0; anything else -> the model
    and the target as given (checked against the output later, :func:`check_class`)."""
    net, _ = unwrap_model(model)
    if isinstance(target, ClassTarget):
        return net, target.index
    if isinstance(target, Target):
        return target.view(net), 0
    return net, target


@contextlib.contextmanager
def curve_model(net: nn.Module, x: torch.Tensor) -> Iterator[FoldedBatchNorm]:
    """The model as every curve's forwards run it, for the block: eval mode, 4-D weights held
    channels_last (:func:`methods._internal.torch_utils.channels_last_weights`), and each
    Conv2d -> BatchNorm2d pair run as ONE convolution with the batch norm folded into its weights,
    where that reproduces ``net``'s own output on ``x`` (1, C, H, W) to 1e-4 relative
    (:class:`methods._internal.bn_folding.FoldedBatchNorm`: found and checked on this call, undone
    after, parameters untouched). Every curve folds, whatever its length, so that a curve computed
    alone and the same curve inside ``image_scores`` run the same arithmetic. Yields the fold
    (``.pairs`` folded, ``.reason`` when none)."""
    with channels_last_weights(net), FoldedBatchNorm(net, x[:1]) as fold:
        yield fold


def runner_for(x: torch.Tensor, precision: str, total: int, progress: Progress | None = None) -> ForwardRunner:
    """The batched runner of a curve: autocast (bf16) on ``x``'s own device type, never a fixed "cpu"."""
    return ForwardRunner(precision=precision, device=x.device, total=total, progress=progress, error=OptionError)


def pixel_ranks(sal: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """rank[pixel] = position of the pixel in the perturbation order, as (1, 1, H, W) int64."""
    order = perturbation_order(sal, (h, w))  # (N,) on the map's device
    rank = torch.empty(h * w, dtype=torch.int64, device=order.device)
    rank[order] = torch.arange(h * w, device=order.device)
    return rank.view(1, 1, h, w)


def perturb(
    kind: str, x: torch.Tensor, substrate: torch.Tensor, chosen: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Deletion puts the substrate on the chosen pixels, insertion puts the image there. (B, C, H, W).

    ``out``: a tensor of the result's shape to write into (a slice of a batch being built), else a new one."""
    first, second = (substrate, x) if kind == "deletion" else (x, substrate)
    if out is None:
        return torch.where(chosen, first, second)
    return torch.where(chosen, first, second, out=out)


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
        baseline: as in the curves; None = the kind's default (:data:`DEFAULT_BASELINES`: ``"blur"``).
        blur_sigma: sigma of the ``"blur"`` baseline in pixels.

    Returns:
        (1, C, H, W) tensor in ``x``'s (normalized) space.
    """
    check_choice("kind", kind, KINDS)
    x = check_one_image(x)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction <= 1.0:
        raise OptionError(f"fraction must be a number in [0, 1]; got {fraction!r}")
    if baseline is None:
        baseline = DEFAULT_BASELINES[kind]
    substrate, _ = baseline_substrate(x, baseline, blur_sigma)  # (1, C, H, W)
    _, _, h, w = x.shape
    rank = pixel_ranks(check_saliency(saliency), h, w).to(x.device)  # (1, 1, H, W)
    k = math.floor(fraction * h * w + 0.5)
    return perturb(kind, x, substrate, rank < k).clone()


def step_counts(n_pixels: int, steps: int) -> torch.Tensor:
    """k_i = round(i * N / S), i = 0..S, round half up, in exact integer arithmetic. (S+1,) int64."""
    i = torch.arange(steps + 1, dtype=torch.int64)
    return (2 * i * n_pixels + steps) // (2 * steps)
