"""Localization scores of a saliency map against a ground-truth object mask.

Both scores first upsample the raw (h, w) map to the mask's (H, W) size, bilinearly with
``align_corners=False`` (the same resize as everywhere in GradLens). Non-finite map values count as 0.

* Pointing game (Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016,
  https://arxiv.org/abs/1608.00507): a hit if the map's maximum lies on the object.
  The maximum is ``argmax`` of the upsampled map; ties go to the FIRST maximum in row-major order,
  so a constant map points at the top-left pixel. With ``tolerance = t`` pixels, a hit is a mask
  pixel within Euclidean distance ``t`` of that point.
  Deviation: the paper uses a 15-pixel tolerance; ours defaults to 0 (the maximum must be on an
  object pixel), because the synthetic scenes' masks are exact.
* Energy-based pointing game (Wang et al., "Score-CAM", CVPR-W 2020,
  https://arxiv.org/abs/1910.01279): with ``L = ReLU(upsampled map)``,
  ``E = sum_{mask} L / sum_{all} L`` in [0, 1]; 0 for a map with no positive mass (never NaN).
  Deviation: the paper uses bounding boxes; we use the exact object masks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from methods.errors import InputError, OptionError

__all__ = ["pointing_game", "energy_pointing_game", "upsample_to_mask"]


def _as_map(saliency: Any) -> torch.Tensor:
    if isinstance(saliency, np.ndarray):
        saliency = torch.from_numpy(np.ascontiguousarray(saliency))
    if not isinstance(saliency, torch.Tensor) or saliency.ndim != 2 or saliency.numel() == 0:
        shape = tuple(saliency.shape) if hasattr(saliency, "shape") else type(saliency).__name__
        raise InputError(f"saliency must be ONE non-empty 2-D (h, w) map; got {shape}")
    return torch.nan_to_num(saliency.detach().to(torch.float64), nan=0.0, posinf=0.0, neginf=0.0)


def _as_mask(mask: Any) -> torch.Tensor:
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(np.ascontiguousarray(mask))
    if not isinstance(mask, torch.Tensor) or mask.ndim != 2 or mask.numel() == 0:
        shape = tuple(mask.shape) if hasattr(mask, "shape") else type(mask).__name__
        raise InputError(f"mask must be ONE non-empty 2-D (H, W) boolean mask; got {shape}")
    if mask.dtype != torch.bool:
        values = torch.unique(mask)
        if not bool(((values == 0) | (values == 1)).all()):
            raise InputError(f"mask must be boolean (or 0/1); got dtype {mask.dtype} with values other than 0 and 1")
        mask = mask != 0
    return mask


def upsample_to_mask(saliency: Any, size: tuple[int, int]) -> torch.Tensor:
    """(h, w) map -> (H, W) float64, bilinear, ``align_corners=False``; NaN/inf -> 0."""
    m = _as_map(saliency)
    if tuple(m.shape) == tuple(size):
        return m
    return F.interpolate(m[None, None], size=tuple(size), mode="bilinear", align_corners=False)[0, 0]  # (H, W)


def pointing_game(saliency: Any, mask: Any, *, tolerance: float = 0) -> bool:
    """Whether the map's maximum lands on the object.

    Args:
        saliency: (h, w) raw map (tensor or array).
        mask: (H, W) bool object mask (or 0/1).
        tolerance: pixels (>= 0); a hit if a mask pixel lies within this Euclidean distance of the
            maximum. 0 (default): the maximum itself must be a mask pixel.

    Returns:
        True on a hit. An empty mask never gets a hit.

    Raises:
        ValueError: a map or mask that is not 2-D, a non-boolean mask, a negative tolerance.
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance >= 0:
        raise OptionError(f"tolerance must be a number of pixels >= 0; got {tolerance!r}")
    mk = _as_mask(mask)
    m = upsample_to_mask(saliency, (mk.shape[0], mk.shape[1]))  # (H, W)
    idx = int(torch.argmax(m.flatten()))  # first maximum in row-major order
    row, col = divmod(idx, mk.shape[1])
    if tolerance == 0:
        return bool(mk[row, col])
    rr, cc = torch.nonzero(mk, as_tuple=True)
    if rr.numel() == 0:
        return False
    d2 = (rr - row).double() ** 2 + (cc - col).double() ** 2
    return bool(d2.min() <= float(tolerance) ** 2)


def energy_pointing_game(saliency: Any, mask: Any) -> float:
    """Share of the map's positive mass inside the mask: ``sum_mask ReLU(L) / sum ReLU(L)``.

    Args:
        saliency: (h, w) raw map; upsampled to the mask's size, then rectified.
        mask: (H, W) bool object mask (or 0/1).

    Returns:
        A float in [0, 1]; 0.0 when the map has no positive value.

    Raises:
        ValueError: a map or mask that is not 2-D, or a non-boolean mask.
    """
    mk = _as_mask(mask)
    m = upsample_to_mask(saliency, (mk.shape[0], mk.shape[1])).clamp_min(0.0)  # (H, W)
    total = float(m.sum())
    if not total > 0.0:
        return 0.0
    return float(m[mk.to(m.device)].sum()) / total  # the map's own device (a GPU map stays there)
