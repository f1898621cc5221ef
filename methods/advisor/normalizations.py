"""The Advisor's normalizations, and which of them a metric can tell apart.

A normalization turns a raw map ``M`` into the map that is scored (:func:`methods.viz.normalize.normalize`,
``scope="per_map"``):

================  =============================================  ==============================
name              map                                            kind of transform
================  =============================================  ==============================
``raw``           ``M``                                          identity
``max``           ``M / max|M|``                                 positive scale
``minmax``        ``(M - min M) / (max M - min M)``              positive affine
``relu_minmax``   ``min-max(ReLU(M))`` (the dashboard default)   not affine: ties at 0
``percentile``    ``min-max(clip(M, P1, P99))``                  not affine: ties at both ends
================  =============================================  ==============================

Why most of them cannot change a score: deletion and insertion (RISE) and the pointing game depend
on the map only through the ORDER of the pixels of its bilinear upsampling. Bilinear upsampling is
a convex combination of the grid's values, so it commutes with every positive affine map
``a M + b`` (``a > 0``): ``up(a M + b) = a up(M) + b``, and the order of the pixels is the same.
``raw``, ``max`` and ``minmax`` therefore give IDENTICAL deletion, insertion and pointing scores
(up to float rounding); the Advisor scores one of them and reports the three as one row. The
energy-based pointing game ``sum_mask ReLU(L) / sum ReLU(L)`` and Average Drop (which min-max
scales the rectified map itself) are unchanged by a positive scale only: there ``raw`` and ``max``
are one row and ``minmax`` (a shift) is another. ``relu_minmax`` and ``percentile`` create ties
(every negative value, or every value past a percentile, becomes one value), so they can change
every metric.

Deviation: a constant map (all values equal) becomes zeros under every normalization but ``raw``;
its pixel order is then the index order, as it is for the constant raw map, so the equivalence
holds there too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from methods.errors import OptionError
from methods.viz.normalize import normalize

__all__ = ["Normalization", "NORMALIZATIONS", "Invariance", "apply", "equivalence_groups", "group_label"]

Transform = Literal["identity", "scale", "affine", "other"]
Invariance = Literal["affine", "scale", "none"]
"""What a metric is unchanged by: every positive affine map, a positive scale only, or nothing."""


@dataclass(frozen=True)
class Normalization:
    """One normalization: its key, label, the :func:`~methods.viz.normalize.normalize` settings and its kind."""

    name: str
    label: str
    mode: str
    relu: bool
    transform: Transform


NORMALIZATIONS: dict[str, Normalization] = {
    n.name: n
    for n in (
        Normalization("raw", "raw", "raw", False, "identity"),
        Normalization("max", "max", "max", False, "scale"),
        Normalization("minmax", "min-max", "minmax", False, "affine"),
        Normalization("relu_minmax", "ReLU + min-max", "minmax", True, "other"),
        Normalization("percentile", "clip P1-P99 + min-max", "percentile", False, "other"),
    )
}

_SAME: dict[str, tuple[str, ...]] = {
    "affine": ("identity", "scale", "affine"),
    "scale": ("identity", "scale"),
    "none": (),
}


def check_normalizations(names: Sequence[str]) -> tuple[str, ...]:
    """Known, distinct normalization keys (at least one).

    Raises:
        OptionError: an unknown or repeated name, or none.
    """
    names = tuple(names)
    unknown = [n for n in names if n not in NORMALIZATIONS]
    if unknown or not names or len(set(names)) != len(names):
        raise OptionError(
            f"normalizations={list(names)!r}: give distinct names from {list(NORMALIZATIONS)} (at least one)"
        )
    return names


def apply(name: str, m: torch.Tensor) -> torch.Tensor:
    """The map ``m`` (h, w) under normalization ``name`` (float32; a normalized map comes back on the CPU).

    Examples:
        >>> apply("minmax", torch.tensor([[-1.0, 3.0]])).tolist()
        [[0.0, 1.0]]
    """
    spec = NORMALIZATIONS[name]
    if spec.mode == "raw":
        return m.detach().float()
    return normalize(m.detach().float().cpu(), mode=spec.mode, relu=spec.relu)  # type: ignore[arg-type]


def equivalence_groups(names: Sequence[str], invariance: Invariance) -> list[tuple[str, ...]]:
    """The requested normalizations grouped by the scores a metric of ``invariance`` gives them:
    one group per distinct score, in request order; the first of a group is the one scored.

    Examples:
        >>> equivalence_groups(["minmax", "raw", "relu_minmax", "max"], "affine")
        [('minmax', 'raw', 'max'), ('relu_minmax',)]
        >>> equivalence_groups(["minmax", "raw", "max"], "scale")
        [('minmax',), ('raw', 'max')]
    """
    same = _SAME[invariance]
    groups: list[list[str]] = []
    shared: list[str] | None = None
    for n in names:
        if NORMALIZATIONS[n].transform in same:
            if shared is None:
                shared = [n]
                groups.append(shared)
            else:
                shared.append(n)
        else:
            groups.append([n])
    return [tuple(g) for g in groups]


def group_label(group: Sequence[str]) -> str:
    """``"min-max ≡ raw ≡ max"``: a group's labels joined by ≡ (identical scores)."""
    return " ≡ ".join(NORMALIZATIONS[n].label for n in group)
