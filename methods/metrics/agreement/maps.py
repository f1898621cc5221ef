"""How much two saliency maps agree: rank and linear correlation, top-region overlap, mass overlap.

Both maps are first resized to ONE common grid ``(H, W)``, bilinearly with
``align_corners=False`` (the library's one resize rule, :func:`methods._internal.torch_utils.upsample`); a map
finer than the grid is shrunk with torch's antialiased bilinear filter instead, so no pixel is
skipped. By default :func:`map_agreement` uses the finer of the two grids,
``H = max(h_a, h_b)``, ``W = max(w_a, w_b)`` (the coarser map is upsampled, the finer one left as
it is); :func:`agreement_matrix` the finest grid of all its maps, at most :data:`MAX_GRID` per
side. NaN / inf values count as 0. On the grid each map is a vector of ``P = H * W`` pixels
``a_p`` and ``b_p``, and:

* ``pearson``  ``r = sum_p (a_p - mean a)(b_p - mean b) / sqrt(sum_p (a_p - mean a)^2 * sum_p (b_p - mean b)^2)``;
* ``spearman`` the Pearson ``r`` of the pixels' ranks, tied values sharing their average rank
  (as ``scipy.stats.rankdata(method="average")``);
* ``iou_top``  with ``k = max(1, round(top * P))`` (round half up) and ``T_a`` the ``k`` pixels
  of highest ``a`` (ties broken by the lower pixel index, row-major: a stable sort, the rule of
  :mod:`methods.metrics.faithfulness.curves`), ``|T_a ∩ T_b| / |T_a ∪ T_b| = i / (2k - i)``;
* ``mass_share``   ``sum_{p in T_b} a+_p / sum_p a+_p`` with ``a+ = max(a, 0)``: the share of a's
  positive mass that falls where b is in its top fraction (an energy pointing game with b's top
  region as the mask);
* ``mass_overlap`` ``sum_{p in T_b} a+_p / sum_{p in T_a} a+_p``: the same mass relative to the
  most that ANY ``k`` pixels can hold (a's own top ``k``), so identical maps give 1 and the value
  lies in [0, 1]. ``mass_share = mass_overlap * (sum_{T_a} a+ / sum a+)``.

Identical maps give 1.0 for every number. ``mass_*`` are asymmetric (a's mass); the rest are
symmetric. Degenerate input never crashes and never gives NaN; it is named in ``flags``:

* a CONSTANT map (all pixels equal on the grid, all-zero included) has no ranking and no top
  region: every number that needs them is 0.0 (``pearson``, ``spearman``, ``iou_top``,
  ``mass_overlap``, and ``mass_share`` when ``b`` is the constant one) - also when both maps are
  the same constant: nothing can be said to agree;
* a map ``a`` with no positive value has no mass: ``mass_share`` and ``mass_overlap`` are 0.0.

Exactly equal non-constant maps (bit for bit on the grid) are set to 1.0 directly rather than
through the floating-point formula, which can round to 0.9999999999999998.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from methods._internal.checks import check_number, size2
from methods._internal.torch_utils import upsample
from methods.errors import InputError

__all__ = [
    "Agreement",
    "AgreementMatrix",
    "METRICS",
    "MAX_GRID",
    "map_agreement",
    "agreement_matrix",
    "common_grid",
    "resize_map",
]

#: The largest default grid side of :func:`agreement_matrix` (finer maps are shrunk to it): the
#: matrix of two ImageNet models costs a fraction of their forward passes this way.
MAX_GRID = 64

#: The agreement numbers, in the order tables show them.
METRICS: tuple[str, ...] = ("spearman", "pearson", "iou_top", "mass_overlap", "mass_share")


@dataclass(frozen=True)
class Agreement:
    """The agreement of two maps (see the module docstring for every formula).

    Attributes:
        spearman: rank correlation in [-1, 1].
        pearson: linear correlation in [-1, 1].
        iou_top: IoU of the two top-``top`` regions, in [0, 1].
        mass_overlap: a's positive mass inside b's top region / inside a's own, in [0, 1].
        mass_share: a's positive mass inside b's top region / all of it, in [0, 1].
        top: the top fraction used.
        grid: the common ``(H, W)`` grid both maps were compared on.
        flags: what was degenerate, in words (empty for ordinary maps).
    """

    spearman: float
    pearson: float
    iou_top: float
    mass_overlap: float
    mass_share: float
    top: float
    grid: tuple[int, int]
    flags: tuple[str, ...] = ()

    @property
    def degenerate(self) -> bool:
        """True when a map was constant or had no positive mass (see ``flags``)."""
        return bool(self.flags)

    def as_dict(self) -> dict[str, float]:
        """The numbers of :data:`METRICS` as a plain dict (for a table row)."""
        return {m: getattr(self, m) for m in METRICS}


@dataclass(frozen=True, eq=False)
class AgreementMatrix:
    """The agreement of every map of a stack A with every map of a stack B.

    Attributes:
        values: metric (:data:`METRICS`) -> (L_a, L_b) float64 matrix; ``values[m][i, j]`` is
            ``getattr(map_agreement(a_i, b_j, top=top, size=grid), m)``.
        top: the top fraction used.
        grid: the common ``(H, W)`` grid.
        constant_a, constant_b: (L_a,), (L_b,) bool, the map is constant on the grid.
        no_mass_a: (L_a,) bool, the map has no positive value.
    """

    values: dict[str, np.ndarray]
    top: float
    grid: tuple[int, int]
    constant_a: np.ndarray
    constant_b: np.ndarray
    no_mass_a: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    def __getitem__(self, metric: str) -> np.ndarray:
        return self.values[metric]

    def at(self, i: int, j: int) -> Agreement:
        """The :class:`Agreement` of ``a_i`` and ``b_j``."""
        flags = []
        if self.constant_a[i]:
            flags.append("a is constant: it has no ranking (correlations and top-region numbers set to 0)")
        if self.constant_b[j]:
            flags.append("b is constant: it has no ranking (correlations and top-region numbers set to 0)")
        if self.no_mass_a[i]:
            flags.append("a has no positive value: mass overlap set to 0")
        return Agreement(
            **{m: float(self.values[m][i, j]) for m in METRICS}, top=self.top, grid=self.grid, flags=tuple(flags)
        )


def _as_map(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, torch.Tensor) or value.ndim != 2 or value.numel() == 0:
        shape = tuple(value.shape) if hasattr(value, "shape") else type(value).__name__
        raise InputError(f"{what} must be ONE non-empty 2-D (h, w) map; got {shape}. Take one sample: maps[layer][0]")
    m = value.detach().cpu().to(torch.float64)
    return torch.nan_to_num(m, nan=0.0, posinf=0.0, neginf=0.0)


def common_grid(shapes: Sequence[Sequence[int]]) -> tuple[int, int]:
    """The finest grid of a set of map shapes: ``(max h, max w)``.

    Examples:
        >>> common_grid([(7, 7), (14, 14), (28, 14)])
        (28, 14)
    """
    return max(int(s[-2]) for s in shapes), max(int(s[-1]) for s in shapes)


def resize_map(m: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
    """(h, w) -> ``grid``: :func:`methods._internal.torch_utils.upsample` (bilinear, ``align_corners=False``)
    when no side shrinks, else torch's antialiased bilinear (``antialias=True``).

    Examples:
        >>> resize_map(torch.tensor([[0.0, 1.0], [2.0, 3.0]]), (1, 1))
        tensor([[1.5000]])
    """
    grid = (int(grid[0]), int(grid[1]))
    if m.shape[-2] <= grid[0] and m.shape[-1] <= grid[1]:
        return upsample(m, grid)
    return F.interpolate(m[None, None], size=grid, mode="bilinear", align_corners=False, antialias=True)[0, 0]


def _stack(maps: Sequence[Any], grid: tuple[int, int], what: str) -> np.ndarray:
    rows = [resize_map(_as_map(m, f"{what}[{i}]"), grid).reshape(-1) for i, m in enumerate(maps)]  # (P,) each
    return torch.stack(rows).numpy()  # (L, P) float64


def _sort_stats(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based, ties share their mean rank) and the top-``k`` indicator (ties at
    the boundary go to the lower pixel index) of each row of ``x`` (L, P), from ONE sort per row."""
    n_rows, p = x.shape
    order = np.argsort(x, axis=1)  # (L, P) ascending; ties in any order (they are averaged)
    xs = np.take_along_axis(x, order, axis=1)  # (L, P)
    idx = np.broadcast_to(np.arange(p), (n_rows, p))
    new = np.ones((n_rows, p), dtype=bool)
    new[:, 1:] = xs[:, 1:] != xs[:, :-1]  # first element of a run of equal values
    last = np.ones((n_rows, p), dtype=bool)
    last[:, :-1] = new[:, 1:]  # last element of a run
    start = np.maximum.accumulate(np.where(new, idx, 0), axis=1)
    end = np.minimum.accumulate(np.where(last, idx, p - 1)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty_like(x)
    np.put_along_axis(ranks, order, (start + end) / 2.0 + 1.0, axis=1)  # (L, P)

    kth = xs[:, p - k][:, None]  # (L, 1) the k-th largest value
    above = x > kth  # (L, P)
    ties = x == kth
    room = k - above.sum(axis=1, keepdims=True)  # how many tied pixels still fit
    top = above | (ties & (np.cumsum(ties, axis=1) <= room))  # lower indices first
    return ranks, top.astype(np.float64)


def _mm(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x @ y.T`` through torch: it keeps to ``torch.set_num_threads``, where numpy's threaded
    OpenBLAS spin-waits on a busy machine (measured 400 ms vs 0.5 ms for a 22 x 4096 x 44 product)."""
    return (torch.from_numpy(x) @ torch.from_numpy(y).T).numpy()


def _centred(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows minus their mean (L, P) and their sums of squares (L,)."""
    c = x - x.mean(axis=1, keepdims=True)
    return c, (c * c).sum(axis=1)


def _correlation(cx: np.ndarray, ssx: np.ndarray, cy: np.ndarray, ssy: np.ndarray) -> np.ndarray:
    """Pearson matrix (Lx, Ly) of centred rows; 0 where a row is constant."""
    den = np.sqrt(np.outer(ssx, ssy))  # (Lx, Ly)
    r = _mm(cx, cy) / np.where(den > 0, den, 1.0)
    return np.clip(np.where(den > 0, r, 0.0), -1.0, 1.0)


def agreement_matrix(
    maps_a: Sequence[Any], maps_b: Sequence[Any], *, top: float = 0.1, size: int | Sequence[int] | None = None
) -> AgreementMatrix:
    """Agreement of every map of ``maps_a`` with every map of ``maps_b``, vectorised.

    Every map is resized ONCE to the common grid, ranked once, and the matrices come from matrix
    products (the Spearman matrix is the Pearson matrix of the rank vectors), so an L x L matrix
    costs about as much as 2L map resizes and sorts.

    Args:
        maps_a, maps_b: sequences of (h, w) maps (tensors or arrays; resolutions may differ).
        top: the top fraction for ``iou_top`` and ``mass_*``, in (0, 1].
        size: the common grid ``(H, W)`` (or one int); default the finest grid of ALL the maps,
            each side at most :data:`MAX_GRID`.

    Returns:
        An :class:`AgreementMatrix` of (L_a, L_b) matrices.

    Raises:
        InputError: a map that is not one non-empty 2-D array, or an empty sequence.
        OptionError: a bad ``top`` or ``size``.

    Examples:
        >>> import torch
        >>> m = agreement_matrix([torch.eye(3), -torch.eye(3)], [torch.eye(3)], top=1/3)
        >>> m["spearman"].round(3).tolist(), m["iou_top"].tolist()
        ([[1.0], [-1.0]], [[1.0], [0.0]])
    """
    top = check_number("top", top, minimum=0.0, maximum=1.0, exclusive_minimum=True)
    if len(maps_a) == 0 or len(maps_b) == 0:
        raise InputError("maps_a and maps_b must each hold at least one (h, w) map")
    shapes = [tuple(np.shape(m)) for m in list(maps_a) + list(maps_b)]
    if size is not None:
        grid = size2(size, "size")
    else:
        finest = common_grid([s if len(s) >= 2 else (1, 1) for s in shapes])
        grid = (min(finest[0], MAX_GRID), min(finest[1], MAX_GRID))
    a, b = _stack(maps_a, grid, "maps_a"), _stack(maps_b, grid, "maps_b")  # (La, P), (Lb, P)
    p = a.shape[1]
    k = max(1, int(np.floor(top * p + 0.5)))

    (ca, ssa), (cb, ssb) = _centred(a), _centred(b)
    const_a, const_b = ~(ssa > 0), ~(ssb > 0)
    pearson = _correlation(ca, ssa, cb, ssb)
    (rank_a, top_a), (rank_b, top_b) = _sort_stats(a, k), _sort_stats(b, k)  # (L, P) each
    spearman = _correlation(*_centred(rank_a), *_centred(rank_b))
    inter = _mm(top_a, top_b)  # (La, Lb)
    iou = inter / (2 * k - inter)
    pos = np.maximum(a, 0.0)  # (La, P)
    inside_b = _mm(pos, top_b)  # (La, Lb)
    own_top = (pos * top_a).sum(axis=1)[:, None]  # (La, 1)
    total = pos.sum(axis=1)[:, None]  # (La, 1)
    no_mass = total[:, 0] <= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        overlap = np.where(own_top > 0, np.minimum(inside_b / np.where(own_top > 0, own_top, 1.0), 1.0), 0.0)
        share = np.where(total > 0, inside_b / np.where(total > 0, total, 1.0), 0.0)

    # a constant map has no ranking and no top region
    either = const_a[:, None] | const_b[None, :]  # (La, Lb)
    for m in (pearson, spearman, iou, overlap):
        m[either] = 0.0
    share[np.broadcast_to(const_b[None, :], share.shape)] = 0.0
    # exactly equal rows: 1.0 by definition (the formulas can round just below it)
    same = _equal_rows(a, b) & ~either  # (La, Lb) bool
    if same.any():
        pearson[same] = 1.0
        spearman[same] = 1.0
        iou[same] = 1.0
        overlap[same & ~no_mass[:, None]] = 1.0
    values = {"spearman": spearman, "pearson": pearson, "iou_top": iou, "mass_overlap": overlap, "mass_share": share}
    return AgreementMatrix(values=values, top=top, grid=grid, constant_a=const_a, constant_b=const_b, no_mass_a=no_mass)


def _equal_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(La, Lb) bool: row i of ``a`` equals row j of ``b`` bit for bit (hash first, then compare)."""
    ha = [hash(r.tobytes()) for r in a]
    hb = [hash(r.tobytes()) for r in b]
    out = np.zeros((len(ha), len(hb)), dtype=bool)
    for i, x in enumerate(ha):
        for j, y in enumerate(hb):
            if x == y and np.array_equal(a[i], b[j]):
                out[i, j] = True
    return out


def map_agreement(a: Any, b: Any, *, top: float = 0.1, size: int | Sequence[int] | None = None) -> Agreement:
    """How much two maps agree, on one common grid (formulas in the module docstring).

    Args:
        a, b: (h, w) maps, tensors or arrays, raw or normalized; resolutions may differ.
        top: the top fraction of pixels for ``iou_top`` and ``mass_*``, in (0, 1] (default 0.1).
        size: the common grid ``(H, W)``; default the finer of the two: ``(max h, max w)``.

    Returns:
        An :class:`Agreement`. Constant maps and maps without positive values give 0.0 for the
        numbers they cannot define, and say so in ``flags``; never NaN.

    Raises:
        InputError: a map that is not one non-empty 2-D array.
        OptionError: ``top`` outside (0, 1], a bad ``size``.

    Examples:
        >>> import torch
        >>> m = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
        >>> map_agreement(m, m).as_dict()
        {'spearman': 1.0, 'pearson': 1.0, 'iou_top': 1.0, 'mass_overlap': 1.0, 'mass_share': 0.5}
        >>> agr = map_agreement(m, torch.zeros(4, 4), top=0.25)
        >>> agr.spearman, agr.iou_top, agr.degenerate
        (0.0, 0.0, True)
    """
    if size is None:
        shapes = [tuple(np.shape(m)) for m in (a, b)]
        size = common_grid([s if len(s) >= 2 else (1, 1) for s in shapes])
    return agreement_matrix([a], [b], top=top, size=size).at(0, 0)
