"""How similar a map stays to a reference map: the four measures of Adebayo et al. 2018.

"Sanity Checks for Saliency Maps" (Adebayo, Gilmer, Muelly, Goodfellow, Hardt, Kim, NeurIPS 2018,
https://arxiv.org/abs/1810.03292) compares the map of a randomized model with the trained
model's map by rank correlation (with and without absolute values), SSIM and the correlation of
HOG features. Here, with every map first resized to one grid ``(H, W)`` (by default the input
size, the map as a user sees it; :func:`methods.metrics.agreement.maps.resize_map`):

* ``spearman``      Spearman rank correlation of the raw (signed) maps;
* ``spearman_abs``  Spearman rank correlation of their absolute values ``|M|``;
* ``ssim``          the structural similarity index (Wang et al. 2004) of the two maps scaled to
  [0, 1] by their own min and max (``(M - min M) / (max M - min M)``; a constant map becomes 0),
  ``skimage.metrics.structural_similarity(data_range=1)`` with its default 7 x 7 uniform window
  (smaller odd window when the grid is smaller);
* ``hog``           the Pearson correlation of the HOG descriptors (``skimage.feature.hog``: 9
  orientations, cells of ``c = max(2, floor(min(H, W) / 16))`` pixels, 2 x 2-cell blocks,
  L2-Hys) of the same [0, 1]-scaled maps; 0 when a descriptor is constant.

Every measure is 1.0 for identical maps (exactly equal maps are set to 1.0 rather than computed),
and never NaN. Deviation: the paper does not fix the HOG cell size for maps of every size; ours
scales with the grid (14 px at 224^2, 8 px at 128^2), so a map has about 16 x 16 cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from methods._internal.checks import size2
from methods.metrics.agreement.maps import agreement_matrix, resize_map

__all__ = ["SIMILARITIES", "SIMILARITY_LABELS", "similarity_to", "ssim", "hog_similarity", "scale01"]

SIMILARITIES: tuple[str, ...] = ("spearman", "spearman_abs", "ssim", "hog")
SIMILARITY_LABELS: dict[str, str] = {
    "spearman": "Spearman rank correlation",
    "spearman_abs": "Spearman rank correlation of |map|",
    "ssim": "SSIM",
    "hog": "HOG similarity",
}


def scale01(m: np.ndarray) -> np.ndarray:
    """``(m - min) / (max - min)``; zeros for a constant map.

    Examples:
        >>> scale01(np.array([[1.0, 3.0]])).tolist(), scale01(np.ones((1, 2))).tolist()
        ([[0.0, 1.0]], [[0.0, 0.0]])
    """
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two equal-shape maps after :func:`scale01` (see the module docstring)."""
    from skimage.metrics import structural_similarity

    if np.array_equal(a, b):
        return 1.0
    win = min(7, min(a.shape))
    win = win if win % 2 == 1 else win - 1
    if win < 3:
        return 0.0  # too small for a structural comparison
    return float(structural_similarity(scale01(a), scale01(b), data_range=1.0, win_size=win))


def hog_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the HOG descriptors of two equal-shape maps (module docstring)."""
    from skimage.feature import hog

    if np.array_equal(a, b):
        return 1.0
    cell = max(2, min(a.shape) // 16)
    if min(a.shape) < 2 * cell:
        return 0.0  # not even one 2 x 2-cell block
    kw = dict(
        orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2), block_norm="L2-Hys", feature_vector=True
    )
    fa, fb = hog(scale01(a), **kw), hog(scale01(b), **kw)
    ca, cb = fa - fa.mean(), fb - fb.mean()
    den = float(np.sqrt(np.dot(ca, ca) * np.dot(cb, cb)))
    return float(np.clip(np.dot(ca, cb) / den, -1.0, 1.0)) if den > 0 else 0.0


def similarity_to(reference: Any, maps: Sequence[Any], *, size: int | Sequence[int]) -> dict[str, np.ndarray]:
    """The four similarities of every map in ``maps`` to ``reference``, on the grid ``size``.

    Args:
        reference: the (h, w) reference map (the trained model's).
        maps: (h, w) maps (any resolutions).
        size: the common grid ``(H, W)``.

    Returns:
        ``{measure: (len(maps),) float64}`` for every name of :data:`SIMILARITIES`.

    Examples:
        >>> ref = torch.arange(64.0).reshape(8, 8)
        >>> sims = similarity_to(ref, [ref, -ref], size=(8, 8))
        >>> {k: v.round(3).tolist() for k, v in sims.items()}
        {'spearman': [1.0, -1.0], 'spearman_abs': [1.0, 1.0], 'ssim': [1.0, -0.955], 'hog': [1.0, 1.0]}
    """
    grid = size2(size, "size")

    def up(m: Any) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(m) if not isinstance(m, torch.Tensor) else m).detach().cpu().double()
        return resize_map(torch.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0), grid)  # (H, W)

    ref = up(reference)
    ups = [up(m) for m in maps]
    spear = agreement_matrix([ref], ups, size=grid)["spearman"][0]
    spear_abs = agreement_matrix([ref.abs()], [u.abs() for u in ups], size=grid)["spearman"][0]
    same = np.array([torch.equal(ref, u) for u in ups], dtype=bool)  # identical maps (a constant one too): 1.0
    spear, spear_abs = np.where(same, 1.0, spear), np.where(same, 1.0, spear_abs)
    r = ref.numpy()
    return {
        "spearman": spear,
        "spearman_abs": spear_abs,
        "ssim": np.array([ssim(r, u.numpy()) for u in ups]),
        "hog": np.array([hog_similarity(r, u.numpy()) for u in ups]),
    }
