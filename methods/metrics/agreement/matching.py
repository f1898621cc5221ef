"""Which layer of model A to set beside which layer of model B: matching by depth or resolution.

Two networks rarely have the same number of layers, so "the same layer" means the same place
in the network. Two rules:

* ``by="depth"`` (default): the RELATIVE DEPTH of layer ``i`` in a list of ``L`` layers (given in
  forward order) is ``d_i = i / (L - 1)`` (0 = the first listed layer, 1 = the last; a list of
  one layer has depth 1). The layer of a list nearest a depth ``t`` is
  ``i(t) = floor(t * (L - 1) + 1/2)`` (ties go to the deeper layer).

  - ``n=None``: every layer of the SHORTER list is paired with the layer of the longer list
    nearest its depth (``min(L_a, L_b)`` pairs; list A's order when both have the same length).
  - ``n=k``: ``k`` target depths ``t_j = (j + 1) / k``, j = 0..k-1 (k = 4: 25 %, 50 %, 75 %,
    the last layer), each answered by the nearest layer of each list.

* ``by="resolution"``: layers are grouped by their output grid (``LayerInfo.shape``); for every
  grid both lists have, the LAST layer of each list at that grid (the end of that stage) is a
  pair, in forward order. Models fed different input sizes (128 px scenes vs 224 px ImageNet)
  are grouped by output stride instead: give ``input_sizes``, and a layer's key becomes
  ``(2^round(log2(H / h)), 2^round(log2(W / w)))``.

The lists can be the full :func:`methods.candidate_layers` (hundreds of layers for an ImageNet
network, aliases included) or the much shorter :func:`methods.block_layers` (one per block),
which is what a side-by-side view wants.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from methods._internal.checks import check_choice, check_int, size2
from methods.cams.core.layers import LayerInfo
from methods.errors import OptionError, WrongTypeError

__all__ = ["LayerMatch", "matched_layers", "relative_depths", "nearest_index", "MATCH_BY"]

MATCH_BY: tuple[str, ...] = ("depth", "resolution")


@dataclass(frozen=True)
class LayerMatch:
    """Pairs of layers of two models, with where each one sits.

    Attributes:
        pairs: ``(layer of A, layer of B)`` in forward order.
        depths_a, depths_b: relative depth (0..1) of each pair's layer in its own list.
        targets: the target depths (``n`` given) or, without ``n``, the depth of the shorter
            list's layer of each pair (``by="depth"``) / None (``by="resolution"``).
        grids: ``by="resolution"``: the grid (or stride) key of each pair; else None.
        by: ``"depth"`` or ``"resolution"``.
    """

    pairs: tuple[tuple[str, str], ...]
    depths_a: tuple[float, ...]
    depths_b: tuple[float, ...]
    targets: tuple[float, ...] | None
    grids: tuple[tuple[int, int], ...] | None
    by: str

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.pairs)


def relative_depths(count: int) -> list[float]:
    """``[i / (count - 1) for i in range(count)]``; ``[1.0]`` for one layer.

    Examples:
        >>> relative_depths(5), relative_depths(1)
        ([0.0, 0.25, 0.5, 0.75, 1.0], [1.0])
    """
    count = check_int("count", count, 1)
    return [1.0] if count == 1 else [i / (count - 1) for i in range(count)]


def nearest_index(depth: float, count: int) -> int:
    """The index of the layer nearest ``depth`` in a list of ``count``: ``floor(depth (count-1) + 1/2)``.

    Examples:
        >>> nearest_index(0.5, 4), nearest_index(0.25, 4), nearest_index(1.0, 7)
        (2, 1, 6)
    """
    return min(count - 1, max(0, int(math.floor(depth * (count - 1) + 0.5))))


def _names(layers: Sequence[Any], what: str) -> list[str]:
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise WrongTypeError(
            f"{what} must be a list of layer names or LayerInfo entries in forward order; got {type(layers).__name__}"
        )
    names = [x.name if isinstance(x, LayerInfo) else x for x in layers]
    if not names:
        raise OptionError(f"{what} is empty; give at least one layer (methods.block_layers(model) lists the blocks)")
    bad = [x for x in names if not isinstance(x, str)]
    if bad:
        raise WrongTypeError(f"{what} must hold layer names (str) or LayerInfo entries; got {bad[0]!r}")
    if len(set(names)) != len(names):
        raise OptionError(f"{what} contains duplicate layers")
    return names


def matched_layers(
    layers_a: Sequence[str | LayerInfo],
    layers_b: Sequence[str | LayerInfo],
    *,
    n: int | None = None,
    by: Literal["depth", "resolution"] = "depth",
    input_sizes: tuple[Any, Any] | None = None,
) -> LayerMatch:
    """Pair the layers of two models by relative depth or by output resolution (module docstring).

    Args:
        layers_a, layers_b: each model's layers in forward order: names, or :class:`LayerInfo`
            entries (:func:`methods.candidate_layers`, :func:`methods.block_layers`);
            ``by="resolution"`` needs LayerInfo (it reads the shapes).
        n: ``by="depth"`` only: the number of target depths ``(j + 1) / n``; None pairs every
            layer of the shorter list.
        by: ``"depth"`` or ``"resolution"``.
        input_sizes: ``by="resolution"`` only: ``(size of A, size of B)`` when the two models
            were probed at different input sizes (match by output stride).

    Returns:
        A :class:`LayerMatch`.

    Raises:
        OptionError: an empty list, duplicates, a bad ``n`` / ``by``, ``n`` with resolution.
        WrongTypeError: entries that are neither names nor LayerInfo; names with resolution.

    Examples:
        >>> m = matched_layers(["a0", "a1", "a2"], ["b0", "b1", "b2", "b3", "b4"])
        >>> m.pairs, m.depths_b
        ((('a0', 'b0'), ('a1', 'b2'), ('a2', 'b4')), (0.0, 0.5, 1.0))
        >>> matched_layers(["a0", "a1", "a2", "a3"], ["b0", "b1"], n=2).pairs
        (('a2', 'b1'), ('a3', 'b1'))
    """
    check_choice("by", by, MATCH_BY)
    names_a, names_b = _names(layers_a, "layers_a"), _names(layers_b, "layers_b")
    if by == "resolution":
        if n is not None:
            raise OptionError(f"n={n!r} applies to by='depth'; by='resolution' pairs one layer per shared grid")
        return _by_resolution(layers_a, layers_b, input_sizes)
    if input_sizes is not None:
        raise OptionError("input_sizes applies to by='resolution' only")
    la, lb = len(names_a), len(names_b)
    da, db = relative_depths(la), relative_depths(lb)
    if n is None:
        if la <= lb:
            idx = [(i, nearest_index(d, lb)) for i, d in enumerate(da)]
            targets = tuple(da)
        else:
            idx = [(nearest_index(d, la), j) for j, d in enumerate(db)]
            targets = tuple(db)
    else:
        n = check_int("n", n, 1)
        targets = tuple((j + 1) / n for j in range(n))
        idx = [(nearest_index(t, la), nearest_index(t, lb)) for t in targets]
    return LayerMatch(
        pairs=tuple((names_a[i], names_b[j]) for i, j in idx),
        depths_a=tuple(da[i] for i, _ in idx),
        depths_b=tuple(db[j] for _, j in idx),
        targets=targets,
        grids=None,
        by="depth",
    )


def _by_resolution(layers_a: Sequence[Any], layers_b: Sequence[Any], input_sizes: tuple[Any, Any] | None) -> LayerMatch:
    for what, layers in (("layers_a", layers_a), ("layers_b", layers_b)):
        if not all(isinstance(x, LayerInfo) for x in layers):
            raise WrongTypeError(
                f"by='resolution' reads output shapes: {what} must hold LayerInfo entries "
                "(methods.candidate_layers(model) or methods.block_layers(model))"
            )
    if input_sizes is not None:
        if not isinstance(input_sizes, (tuple, list)) or len(input_sizes) != 2:
            raise OptionError(f"input_sizes must be (size of A, size of B); got {input_sizes!r}")
        sizes = (size2(input_sizes[0], "input_sizes[0]"), size2(input_sizes[1], "input_sizes[1]"))
    else:
        sizes = None

    def key(info: LayerInfo, side: int) -> tuple[int, int]:
        h, w = info.shape[1], info.shape[2]
        if sizes is None:
            return h, w
        big_h, big_w = sizes[side]
        return 2 ** round(math.log2(big_h / h)), 2 ** round(math.log2(big_w / w))

    def last_per_key(layers: Sequence[LayerInfo], side: int) -> dict[tuple[int, int], int]:
        out: dict[tuple[int, int], int] = {}
        for i, info in enumerate(layers):
            out[key(info, side)] = i  # the last one wins
        return out

    last_a, last_b = last_per_key(layers_a, 0), last_per_key(layers_b, 1)
    shared = sorted((i, k) for k, i in last_a.items() if k in last_b)
    da, db = relative_depths(len(layers_a)), relative_depths(len(layers_b))
    return LayerMatch(
        pairs=tuple((layers_a[i].name, layers_b[last_b[k]].name) for i, k in shared),
        depths_a=tuple(da[i] for i, _ in shared),
        depths_b=tuple(db[last_b[k]] for _, k in shared),
        targets=None,
        grids=tuple(k for _, k in shared),
        by="resolution",
    )
