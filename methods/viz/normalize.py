"""Every normalization choice for CAM maps: pure functions, the only home of eps and min-max.

A raw map ``M`` (signed, any scale) becomes a displayable map in two independent steps:

1. rectification: ``ReLU(M) = max(M, 0)`` if ``relu`` (the papers' choice), else keep the sign;
2. scaling, ``mode``:

   * ``"raw"``        — unchanged;
   * ``"minmax"``     — ``(M - min) / (max - min)``, in [0, 1];
   * ``"max"``        — ``M / max|M|``, in [-1, 1]: keeps the sign and keeps 0 at 0, so "how strong
     relative to the peak" survives (min-max would stretch a weak map to full contrast);
   * ``"percentile"`` — clip to the [p_lo, p_hi] percentiles, then min-max: one outlier pixel can
     no longer squash the rest of the map.

``scope="per_map"`` scales each map on its own; ``scope="shared"`` uses ONE scale (one min, max,
or percentile pair) for the whole set, so maps of different layers or methods can be compared on
the same scale and their relative magnitudes survive.

Degenerate input never gives NaN: a constant or all-zero map (or set, with ``scope="shared"``)
scales to zeros in every mode but ``"raw"`` — it says nothing about *where* — and non-finite
values are replaced by 0 first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeGuard, TypeVar, Union

import numpy as np
import torch

from methods.errors import OptionError

__all__ = ["EPS", "MODES", "SCOPES", "Mode", "Scope", "as_mode", "as_scope", "normalize", "normalize_many"]

EPS = 1e-8
"""Spans and peaks at or below ``EPS * max(1, |scale|)`` count as zero (constant maps -> zeros)."""

Mode = Literal["raw", "minmax", "max", "percentile"]
Scope = Literal["per_map", "shared"]
MODES: tuple[str, ...] = ("raw", "minmax", "max", "percentile")
SCOPES: tuple[str, ...] = ("per_map", "shared")

ArrayLike = Union[np.ndarray, torch.Tensor]
_A = TypeVar("_A", np.ndarray, torch.Tensor)


def _to_numpy(m: ArrayLike) -> np.ndarray:
    arr = m.detach().cpu().numpy() if isinstance(m, torch.Tensor) else np.asarray(m)
    arr = arr.astype(np.float32, copy=True)
    return np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)


def _like(out: np.ndarray, original: _A) -> _A:
    return torch.from_numpy(out) if isinstance(original, torch.Tensor) else out


def _is_mode(value: str) -> TypeGuard[Mode]:
    return value in MODES


def _is_scope(value: str) -> TypeGuard[Scope]:
    return value in SCOPES


def as_mode(mode: str) -> Mode:
    """``mode`` checked to be one of :data:`MODES` (a setting read from a file or a form).

    Raises:
        OptionError: it is not.
    """
    if _is_mode(mode):
        return mode
    raise OptionError(f"mode={mode!r} is not one of {list(MODES)}")


def as_scope(scope: str) -> Scope:
    """``scope`` checked to be one of :data:`SCOPES`.

    Raises:
        OptionError: it is not.
    """
    if _is_scope(scope):
        return scope
    raise OptionError(f"scope={scope!r} is not one of {list(SCOPES)}")


def _validate(mode: str, scope: str, percentiles: tuple[float, float]) -> None:
    as_mode(mode)
    as_scope(scope)
    lo, hi = percentiles
    if not (0.0 <= lo < hi <= 100.0):
        raise OptionError(f"percentiles={percentiles!r} must satisfy 0 <= low < high <= 100")


def _scale(values: list[np.ndarray], mode: str, percentiles: tuple[float, float]) -> list[np.ndarray]:
    """Scale a group of maps with ONE shared scale computed over all of them."""
    if mode == "raw" or not values:
        return values
    flat = np.concatenate([v.ravel() for v in values]) if len(values) > 1 else values[0].ravel()
    if flat.size == 0:
        return values
    if mode == "max":
        peak = float(np.abs(flat).max())
        if peak <= EPS or float(flat.max() - flat.min()) <= EPS * peak:  # zero or constant
            return [np.zeros_like(v) for v in values]
        return [v / peak for v in values]
    if mode == "percentile":
        lo, hi = (float(p) for p in np.percentile(flat, percentiles))
        values = [np.clip(v, lo, hi) for v in values]
    else:
        lo, hi = float(flat.min()), float(flat.max())
    span = hi - lo
    if span <= EPS * max(1.0, abs(hi), abs(lo)):
        return [np.zeros_like(v) for v in values]
    return [(v - lo) / span for v in values]


def normalize_many(
    maps: Sequence[_A],
    *,
    mode: Mode = "minmax",
    relu: bool = True,
    scope: Scope = "per_map",
    percentiles: tuple[float, float] = (1.0, 99.0),
) -> list[_A]:
    """Normalize a set of maps (shapes may differ, e.g. layers at different resolutions).

    Args:
        maps: arrays or tensors of any shape, each one map (or a stack scaled as one map).
        mode: ``"raw" | "minmax" | "max" | "percentile"`` (see the module docstring).
        relu: rectify first (``max(M, 0)``).
        scope: ``"per_map"`` (each its own scale) or ``"shared"`` (one scale for the set).
        percentiles: (low, high) in percent, for ``mode="percentile"``.

    Returns:
        float32 maps of the input types and shapes, finite.

    Examples:
        >>> import numpy as np
        >>> a, b = np.array([[0.0, 1.0]]), np.array([[0.0, 4.0]])
        >>> [m.max() for m in normalize_many([a, b], mode="max", scope="shared")]
        [np.float32(0.25), np.float32(1.0)]
    """
    _validate(mode, scope, percentiles)
    arrays = [_to_numpy(m) for m in maps]
    if relu:
        arrays = [np.maximum(a, 0.0) for a in arrays]
    if scope == "shared":
        scaled = _scale(arrays, mode, percentiles)
    else:
        scaled = [_scale([a], mode, percentiles)[0] for a in arrays]
    return [_like(s.astype(np.float32, copy=False), m) for s, m in zip(scaled, maps)]


def normalize(
    m: _A,
    *,
    mode: Mode = "minmax",
    relu: bool = True,
    scope: Scope = "per_map",
    percentiles: tuple[float, float] = (1.0, 99.0),
) -> _A:
    """Normalize one map (h, w), or a stack (N, h, w).

    For a stack, ``scope="per_map"`` scales each ``m[i]`` on its own and ``scope="shared"`` uses one
    scale for the whole stack. Arguments as in :func:`normalize_many`.

    Examples:
        >>> import numpy as np
        >>> normalize(np.array([[-1.0, 0.0], [1.0, 3.0]]), mode="minmax")
        array([[0.        , 0.        ],
               [0.33333334, 1.        ]], dtype=float32)
        >>> normalize(np.array([[-1.0, 2.0]]), mode="max", relu=False)
        array([[-0.5,  1. ]], dtype=float32)
        >>> normalize(np.full((2, 2), 7.0)).max()  # a constant map says nothing about where: zeros
        np.float32(0.0)
    """
    arr = _to_numpy(m)
    if arr.ndim == 3:
        out = (
            np.stack(normalize_many(list(arr), mode=mode, relu=relu, scope=scope, percentiles=percentiles))
            if len(arr)
            else arr
        )
    else:
        out = normalize_many([arr], mode=mode, relu=relu, scope=scope, percentiles=percentiles)[0]
    return _like(np.asarray(out, dtype=np.float32), m)
