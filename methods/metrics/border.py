"""Is a map piled onto the image border? The share of its positive mass in the outer ring.

Mid-depth layers of padded CNNs respond to the zero padding at the border of their input, and a
class activation map there can pile its mass on the frame of the picture rather than on the
object (Islam et al., "How much position information do convolutional neural networks encode?",
ICLR 2020, https://arxiv.org/abs/2001.08248; Alsallakh et al., "Mind the Pad — CNNs can develop
blind spots", ICLR 2021, https://arxiv.org/abs/2010.02178). GradLens flags such a map so nobody
reads the frame as the model's evidence.

With ``L = ReLU(map)`` resized (bilinear, ``align_corners=False``) to the input it covers, ``H x W``,
and the ring ``R`` = the pixels within ``round(ring * H)`` rows or ``round(ring * W)`` columns of
the edge::

    border_share = sum_R L / sum L                    (0 for a map with no positive mass)

A uniform map gives the ring's share of the area, ``a = 1 - (1 - 2 ring)^2`` = 0.4375 for a square
at ``ring = 0.125``. :func:`is_border_concentrated` flags a map whose ring is at least
:data:`DENSITY` = 2 times as dense as its inside: ``(s / a) / ((1 - s) / (1 - a)) >= 2``, i.e.
``s >= 2a / (2a + 1 - a)`` = 0.609 for a square. Twice the density is well above what a photo's
object puts there (an object in the middle puts less than ``a`` in the ring) and below the
padding-artefact layers seen on EfficientNet-Lite0 (chelsea blocks.4.1–5.0, coffee blocks.5.0).
An object that really fills the border also trips it: the flag says "likely", not "certainly".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from methods.errors import OptionError
from methods.metrics.localization import upsample_to_mask

__all__ = ["RING", "DENSITY", "ring_area", "border_share", "border_threshold", "is_border_concentrated"]

#: Width of the outer ring, as a share of each side (12.5 %: 28 px of 224).
RING = 0.125
#: How many times denser than the inside the ring must be to flag a map.
DENSITY = 2.0


def _ring_pixels(size: tuple[int, int], ring: float) -> tuple[int, int]:
    if not 0.0 < ring < 0.5:
        raise OptionError(f"ring must be in (0, 0.5), got {ring!r}")
    return max(1, round(ring * size[0])), max(1, round(ring * size[1]))


def ring_area(size: tuple[int, int] = (224, 224), ring: float = RING) -> float:
    """Share of an ``(H, W)`` picture's area in its outer ring (a uniform map's border share).

    Examples:
        >>> ring_area((224, 224))
        0.4375
    """
    ry, rx = _ring_pixels(size, ring)
    h, w = size
    return 1.0 - max(0, h - 2 * ry) * max(0, w - 2 * rx) / (h * w)


def border_share(saliency: Any, size: tuple[int, int] | None = None, ring: float = RING) -> float:
    """Share of the map's positive mass in the outer ``ring`` of the ``size`` input it covers.

    Args:
        saliency: (h, w) raw map (numpy or torch); NaN/inf count as 0.
        size: ``(H, W)`` the map is resized to first (the model's input); None: its own size.
        ring: the ring's width as a share of each side.

    Returns:
        A float in [0, 1]; 0.0 for a map with no positive value.

    Examples:
        >>> border_share(np.ones((8, 8)))  # uniform: the ring's area, 1 - (6/8)^2
        0.4375
    """
    m = torch.as_tensor(np.asarray(saliency, dtype=np.float64)) if not isinstance(saliency, torch.Tensor) else saliency
    grid = (int(m.shape[-2]), int(m.shape[-1])) if size is None else (int(size[0]), int(size[1]))
    big = upsample_to_mask(m, grid).clamp_min(0.0)  # (H, W)
    total = float(big.sum())
    if not total > 0.0:
        return 0.0
    ry, rx = _ring_pixels(grid, ring)
    inner = float(big[ry : grid[0] - ry, rx : grid[1] - rx].sum())
    return max(0.0, min(1.0, (total - inner) / total))


def border_threshold(size: tuple[int, int] = (224, 224), ring: float = RING, density: float = DENSITY) -> float:
    """The border share above which the ring is ``density`` times as dense as the inside.

    Examples:
        >>> round(border_threshold(), 4)
        0.6087
    """
    a = ring_area(size, ring)
    return density * a / (density * a + 1.0 - a)


def is_border_concentrated(share: float, size: tuple[int, int] = (224, 224), ring: float = RING) -> bool:
    """True when a map's border share (:func:`border_share`) says it is likely a padding artefact."""
    return bool(share >= border_threshold(size, ring))
