"""Grad-CAM++'s Average Drop and Increase in Confidence for one image and one map.

Average Drop and Increase in Confidence (Grad-CAM++, Chattopadhyay et al., WACV 2018,
https://arxiv.org/abs/1710.11063)
------------------------------------------------------------------------------------------------
``E = L ⊙ x`` with ``L`` the map upsampled to H x W, rectified and min-max scaled to [0, 1]
(:func:`methods.viz.normalize.normalize`). With ``Y = p_c(x)`` and ``O = p_c(E)`` (softmax
probabilities), per image ``drop = max(0, Y - O) / Y * 100`` and ``increase = [O > Y]``; the
Average Drop and Increase in Confidence of a data set are their means (the latter x100 as a %).

Masking space (``space``):

* ``"input"`` (default) — ``E = L * x`` in the model's normalized input space: a masked-out pixel
  becomes 0, the dataset-mean colour (the same convention as the ``"zero"`` baseline and torch-cam).
* ``"pixel"`` — ``E = normalize(L * rgb)`` with ``rgb = x * std + mean`` in [0, 1]: a masked-out
  pixel becomes black, the paper's literal ``L ∘ I``. Needs the model's ``mean`` / ``std``
  (taken from a ``LoadedModel`` or passed in).

Deviation: the default masks in the normalized space (fading to the mean colour, not to black),
which works for any model; ``space="pixel"`` is the paper's version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from methods._internal.checks import check_choice
from methods._internal.inputs import check_model_input
from methods._internal.torch_utils import Precision, resolve_precision, unwrap_model, upsample
from methods.errors import OptionError
from methods.metrics.faithfulness.perturbation import (
    check_class,
    check_one_image,
    check_saliency,
    class_probabilities,
    curve_model,
    runner_for,
)
from methods.viz.normalize import normalize

__all__ = ["Space", "SPACES", "ConfidenceChange", "confidence_change", "explanation_image", "confidence_from"]

Space = Literal["input", "pixel"]
SPACES: tuple[str, ...] = ("input", "pixel")


@dataclass(frozen=True)
class ConfidenceChange:
    """Grad-CAM++'s per-image confidence numbers for one map.

    Attributes:
        score: ``Y``, softmax probability of the target on the image.
        masked_score: ``O``, the same on the explanation map ``E = L ⊙ x``.
        drop: ``max(0, Y - O) / Y * 100`` (percent; 0 when ``Y`` is 0).
        increase: ``O > Y``.
        space: ``"input"`` or ``"pixel"`` (where the masking happened).
    """

    score: float
    masked_score: float
    drop: float
    increase: bool
    space: str


def _mean_std(model: Any, mean: Any, std: Any, c: int) -> tuple[torch.Tensor, torch.Tensor]:
    mean = getattr(model, "mean", None) if mean is None else mean
    std = getattr(model, "std", None) if std is None else std
    if mean is None or std is None:
        raise OptionError(
            "space='pixel' needs the model's normalization: pass a LoadedModel (with .mean/.std) or mean=..., std=..."
        )
    m = torch.as_tensor(mean, dtype=torch.float32).flatten()
    s = torch.as_tensor(std, dtype=torch.float32).flatten()
    if m.numel() != c or s.numel() != c:
        raise OptionError(f"mean and std must have {c} values (one per channel); got {m.numel()} and {s.numel()}")
    return m.view(1, c, 1, 1), s.view(1, c, 1, 1)


def confidence_change(
    model: Any,
    x: torch.Tensor,
    saliency: Any,
    target: int,
    *,
    space: Space = "input",
    mean: Any = None,
    std: Any = None,
    precision: Precision = "auto",
) -> ConfidenceChange:
    """Grad-CAM++'s Average Drop term and Increase-in-Confidence indicator for one image.

    ``E = L ⊙ x`` with ``L`` = the map upsampled to (H, W) (bilinear), ReLU, min-max to [0, 1];
    ``drop = max(0, Y - O) / Y * 100`` and ``increase = O > Y`` with ``Y``, ``O`` the softmax
    probabilities of ``target`` on ``x`` and on ``E`` (see the module docstring for ``space``).

    Args:
        model, x, saliency, target, precision: as :func:`deletion_curve`.
        space: ``"input"`` (mask the normalized input) or ``"pixel"`` (mask the RGB image in [0, 1]
            and re-normalize; needs ``mean``/``std`` or a LoadedModel).
        mean, std: per-channel normalization for ``space="pixel"``.

    Returns:
        A :class:`ConfidenceChange`.

    Raises:
        ValueError: bad arguments, as :func:`deletion_curve`.
    """
    net, _ = unwrap_model(model)
    x = check_model_input(net, check_one_image(x))
    ran_in = resolve_precision(precision, x.device)
    masked = explanation_image(model, x, saliency, space=space, mean=mean, std=std)  # (1, C, H, W)
    with curve_model(net, x), runner_for(x, ran_in, 2) as run:
        p = class_probabilities(run, net, torch.cat([x, masked]))  # (2, K)
    target = check_class(target, p.shape[1])
    return confidence_from(float(p[0, target]), float(p[1, target]), space=space)


def explanation_image(
    model: Any, x: torch.Tensor, saliency: Any, *, space: Space = "input", mean: Any = None, std: Any = None
) -> torch.Tensor:
    """Grad-CAM++'s explanation map ``E = L ⊙ x`` (1, C, H, W) in ``x``'s normalized space and device
    (arguments as :func:`confidence_change`; ``model`` only supplies mean/std for ``space="pixel"``)."""
    x = check_one_image(x)
    check_choice("space", space, SPACES)
    sal = check_saliency(saliency)
    _, c, h, w = x.shape
    weights = normalize(upsample(sal, (h, w)).float(), mode="minmax", relu=True)  # (H, W) in [0, 1], on the CPU
    weights = weights.to(device=x.device, dtype=x.dtype)
    if space == "input":
        return x * weights  # (1, C, H, W)
    m, s = _mean_std(model, mean, std, c)
    m, s = m.to(x.device), s.to(x.device)
    rgb = x * s + m  # (1, C, H, W)
    return (rgb * weights - m) / s  # (1, C, H, W)


def confidence_from(y: float, o: float, *, space: str = "input") -> ConfidenceChange:
    """The :class:`ConfidenceChange` of scores ``Y`` (image) and ``O`` (explanation map).

    Examples:
        >>> confidence_from(0.8, 0.6).drop, confidence_from(0.5, 0.7).increase
        (25.000000000000007, True)
    """
    drop = max(0.0, y - o) / y * 100.0 if y > 0 else 0.0
    return ConfidenceChange(score=y, masked_score=o, drop=drop, increase=o > y, space=space)
