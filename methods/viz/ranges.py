"""The one rule for the value range a normalized map is drawn with (the colormap's two ends).

The dashboard, the batch command's pictures and the review reports all call this module, so a map
looks the same wherever it is drawn:

* ``minmax`` and ``percentile`` -> ``[0, 1]`` (the normalized values' own range);
* ``max`` -> ``[0, 1]`` after ReLU, ``[-1, 1]`` without (0 stays at the colormap's middle);
* ``raw`` -> the map's own finite min .. max after ReLU; without ReLU the symmetric ``[-a, a]``
  with ``a = max |m|``, so zero is the middle; with ``scope="shared"`` one range over every map.
  A constant map gets ``[v, v + 1]`` and a map without finite values ``[0, 1]``: a range is never
  empty and NaN never reaches it.

And the one rule for the colours (:func:`display_colormap`): a SIGNED display — no ReLU, with
``max`` or ``raw`` normalization, where zero sits at the middle of the range — is drawn with the
diverging blue - white - red colormap (:data:`methods.viz.render.DIVERGING`), whatever colormap
was chosen: with jet, zero would be cyan-green and read as "some evidence". ``minmax`` and
``percentile`` move zero off the middle, so they keep the chosen colormap (the dashboard says so).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["display_range", "display_ranges", "display_colormap", "is_signed_display"]

_DIVERGING = "diverging"  # methods.viz.render.DIVERGING (ranges sits below render: no import)


def is_signed_display(*, mode: str, relu: bool) -> bool:
    """Whether maps normalized with ``mode`` / ``relu`` are drawn zero-centred (module docstring).

    Examples:
        >>> is_signed_display(mode="max", relu=False), is_signed_display(mode="minmax", relu=False)
        (True, False)
    """
    return not relu and mode in ("max", "raw")


def display_colormap(colormap: str, *, mode: str, relu: bool) -> str:
    """The colormap a map is drawn with: ``"diverging"`` for a signed display, else ``colormap``.

    Examples:
        >>> display_colormap("jet", mode="max", relu=False), display_colormap("jet", mode="max", relu=True)
        ('diverging', 'jet')
    """
    return _DIVERGING if is_signed_display(mode=mode, relu=relu) else colormap


def _own(arrays: Sequence[np.ndarray], symmetric: bool = False) -> tuple[float, float]:
    finite = [a[np.isfinite(a)] for a in (np.asarray(x, dtype=np.float64) for x in arrays)]
    finite = [a for a in finite if a.size]
    if not finite:
        return (-1.0, 1.0) if symmetric else (0.0, 1.0)
    lo, hi = float(min(a.min() for a in finite)), float(max(a.max() for a in finite))
    if symmetric:
        a = max(abs(lo), abs(hi))
        return (-a, a) if a > 0 else (-1.0, 1.0)
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def display_range(m: np.ndarray, *, mode: str, relu: bool) -> tuple[float, float]:
    """The range one normalized map is drawn with (module docstring has the rule).

    Examples:
        >>> display_range(np.array([[-2.0, 3.0]]), mode="raw", relu=False)
        (-3.0, 3.0)
        >>> display_range(np.array([[0.0, 3.0]]), mode="raw", relu=True)
        (0.0, 3.0)
        >>> display_range(np.array([[0.5]]), mode="max", relu=False)
        (-1.0, 1.0)
    """
    return display_ranges([m], mode=mode, relu=relu, scope="per_map")[0]


def display_ranges(maps: Sequence[np.ndarray], *, mode: str, relu: bool, scope: str) -> list[tuple[float, float]]:
    """The range each of ``maps`` is drawn with; ``raw`` + ``scope="shared"`` gives one range for all.

    Examples:
        >>> a, b = np.array([[1.0, 3.0]]), np.array([[-2.0, np.nan]])
        >>> display_ranges([a, b], mode="raw", relu=True, scope="shared")
        [(-2.0, 3.0), (-2.0, 3.0)]
        >>> display_ranges([a, b], mode="raw", relu=False, scope="per_map")
        [(-3.0, 3.0), (-2.0, 2.0)]
    """
    if mode in ("minmax", "percentile"):
        return [(0.0, 1.0)] * len(maps)
    if mode == "max":
        return [(0.0, 1.0) if relu else (-1.0, 1.0)] * len(maps)
    symmetric = not relu
    if scope == "shared":
        return [_own(maps, symmetric)] * len(maps)
    return [_own([m], symmetric) for m in maps]
