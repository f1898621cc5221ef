"""Compare two models on one image: the agreement of every layer's map of A with every layer's of B.

:func:`layer_similarity` explains each model ONCE: one :func:`methods.explain_many` call per model
over all its chosen layers (for the gradient family and the baselines that is one forward and
one backward per model, whatever the number of layers), then compares every map of A with every
map of B on one common grid with :func:`methods.metrics.agreement.maps.agreement_matrix`. The result
holds everything a Compare view needs: the layer names and grids (the heatmap's axes), one
matrix per agreement metric, the raw maps (the overlays), each model's explained class and its
probability, and matched-depth rows (:meth:`LayerSimilarity.by_depth`).

Which class each map explains (``targets``):

* None: each model its own top-1 class (two models of different tasks can be compared);
* an int: the same class for both (models that share a class list);
* a pair ``(target_a, target_b)``: each its own, None meaning its top-1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

import numpy as np
import torch

from methods._internal.checks import is_int
from methods._internal.progress import Progress
from methods._internal.torch_utils import check_input, unwrap_model
from methods.cams.core.blocks import block_layers
from methods.cams.core.explain import explain_many
from methods.cams.core.layers import LayerInfo, candidate_layers
from methods.cams.core.registry import create_method
from methods.errors import OptionError, TargetError
from methods.metrics.agreement.maps import METRICS, Agreement, AgreementMatrix, agreement_matrix
from methods.metrics.agreement.matching import LayerMatch, matched_layers, relative_depths

__all__ = ["LayerSimilarity", "layer_similarity", "resolve_layer_list"]

LayerList = Union[Literal["all", "blocks"], Sequence[str | LayerInfo]]


@dataclass(frozen=True, eq=False)
class LayerSimilarity:
    """The layer x layer agreement of two models on one image.

    Attributes:
        method: registry key of the method both models were explained with.
        names_a, names_b: the layers in forward order (rows / columns of every matrix).
        grids_a, grids_b: the (h, w) of each layer's map.
        depths_a, depths_b: relative depth of each layer in its list (``i / (L - 1)``).
        matrix: the :class:`AgreementMatrix`; ``matrix["spearman"]`` is (L_a, L_b).
        maps_a, maps_b: layer -> (h, w) float32 raw map (signed, layer resolution).
        targets: (class explained by A, class explained by B).
        probs: softmax probability of each explained class in its own model.
        grid: the common grid the maps were compared on.
        top: the top fraction of ``iou_top`` / ``mass_*``.
    """

    method: str
    names_a: tuple[str, ...]
    names_b: tuple[str, ...]
    grids_a: tuple[tuple[int, int], ...]
    grids_b: tuple[tuple[int, int], ...]
    depths_a: tuple[float, ...]
    depths_b: tuple[float, ...]
    matrix: AgreementMatrix
    maps_a: dict[str, torch.Tensor]
    maps_b: dict[str, torch.Tensor]
    targets: tuple[int, int]
    probs: tuple[float, float]
    grid: tuple[int, int]
    top: float

    def values(self, metric: str = "spearman") -> np.ndarray:
        """The (L_a, L_b) matrix of one metric of :data:`methods.metrics.agreement.maps.METRICS`."""
        if metric not in METRICS:
            raise OptionError(f"metric={metric!r} is not one of {list(METRICS)}")
        return self.matrix[metric]

    def agreement(self, layer_a: str, layer_b: str) -> Agreement:
        """The :class:`Agreement` of one cell, by layer names."""
        for name, names, side in ((layer_a, self.names_a, "layer_a"), (layer_b, self.names_b, "layer_b")):
            if name not in names:
                raise OptionError(f"{side}={name!r} is not one of the compared layers {list(names)}")
        return self.matrix.at(self.names_a.index(layer_a), self.names_b.index(layer_b))

    def by_depth(
        self, n: int | None = 4, *, by: Literal["depth", "resolution"] = "depth"
    ) -> list[tuple[LayerMatch, int, Agreement]]:
        """Matched rows: ``[(match, row, Agreement)]``, one per pair of :func:`matched_layers`
        over this comparison's layer lists; ``match.pairs[row]`` names the two layers.

        ``n=4`` gives the 25 %, 50 %, 75 % and last layers; ``by="resolution"`` (``n`` ignored)
        pairs the last layer of each shared grid.
        """
        if by == "resolution":
            info_a = [LayerInfo(nm, "", (0, *g), i) for i, (nm, g) in enumerate(zip(self.names_a, self.grids_a))]
            info_b = [LayerInfo(nm, "", (0, *g), i) for i, (nm, g) in enumerate(zip(self.names_b, self.grids_b))]
            match = matched_layers(info_a, info_b, by="resolution")
        else:
            match = matched_layers(self.names_a, self.names_b, n=n)
        return [(match, row, self.agreement(a, b)) for row, (a, b) in enumerate(match.pairs)]


def resolve_layer_list(model: Any, layers: LayerList, input_size: tuple[int, int]) -> list[str]:
    """``"all"`` -> every candidate layer, ``"blocks"`` -> :func:`methods.block_layers`, or the
    given names / LayerInfo entries (kept in the given order, which should be forward order)."""
    net, _ = unwrap_model(model)
    if isinstance(layers, str):
        if layers == "all":
            return [i.name for i in candidate_layers(net, input_size)]
        if layers == "blocks":
            return [i.name for i in block_layers(net, input_size)]
        return [layers]
    return [x.name if isinstance(x, LayerInfo) else x for x in layers]


def _targets(targets: Any) -> tuple[int | None, int | None]:
    if targets is None or is_int(targets):
        return targets, targets
    if isinstance(targets, (tuple, list)) and len(targets) == 2 and all(t is None or is_int(t) for t in targets):
        return targets[0], targets[1]
    raise TargetError(
        f"targets must be None (each model's top-1), one class index for both, or a pair "
        f"(target_a, target_b) of class indices or None; got {targets!r}"
    )


def layer_similarity(
    model_a: Any,
    model_b: Any,
    x_a: torch.Tensor,
    x_b: torch.Tensor,
    *,
    method: str = "gradcam",
    layers_a: LayerList = "all",
    layers_b: LayerList = "all",
    targets: int | tuple[int | None, int | None] | None = None,
    options: Mapping[str, Any] | None = None,
    top: float = 0.1,
    size: int | Sequence[int] | None = None,
    progress: Progress | None = None,
) -> LayerSimilarity:
    """The agreement of every layer's map of model A with every layer's map of model B.

    Each model is explained by ONE :func:`methods.explain_many` call over all its layers (one
    forward + one backward for the gradient family), then all L_a x L_b pairs are compared on one
    grid at once (:func:`methods.metrics.agreement.maps.agreement_matrix`; formulas there).

    Args:
        model_a, model_b: ``nn.Module`` or :class:`methods.LoadedModel` (returning logits).
        x_a, x_b: each model's preprocessed input, (1, C, H, W): the same image, each model's own
            preprocessing (sizes may differ).
        method: a registry key (``methods.list_methods()``).
        layers_a, layers_b: ``"all"`` (every candidate layer), ``"blocks"``
            (:func:`methods.block_layers`, one per block) or a list of names / LayerInfo in
            forward order.
        targets: None (each its top-1), one int for both, or ``(target_a, target_b)``.
        options: the method's keyword options (``{"batch_size": 16}`` for Score-CAM).
        top: the top fraction for ``iou_top`` / ``mass_*``.
        size: the common grid; default the finest layer grid of both models, each side at most
            :data:`methods.metrics.agreement.maps.MAX_GRID` (64). Every cell equals
            ``map_agreement(map_a, map_b, size=sim.grid)``.
        progress: ``(done, total)`` callback, handed to the score family's forwards.

    Returns:
        A :class:`LayerSimilarity`.

    Raises:
        InputError, LayerError, TargetError, UnknownMethodError, OptionError (GradLensError).

    Examples:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
        ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
        >>> x = torch.rand(1, 3, 8, 8)
        >>> sim = layer_similarity(net, net, x, x, method="gradcam", targets=0)
        >>> sim.names_a, sim.values("spearman").shape, float(sim.values("pearson")[1, 1])
        (('0', '1'), (2, 2), 1.0)
    """
    if options is not None and not isinstance(options, Mapping):
        raise OptionError(f"options must be a dict of the method's keyword options; got {options!r}")
    configured = create_method(method, **dict(options or {}))
    ta, tb = _targets(targets)
    sides = []
    for model, x, layers, target, what in ((model_a, x_a, layers_a, ta, "x_a"), (model_b, x_b, layers_b, tb, "x_b")):
        check_input(x, what=what, batch=1)
        input_size = (int(x.shape[-2]), int(x.shape[-1]))
        names = resolve_layer_list(model, layers, input_size)
        exp = explain_many(model, x, [configured], layers=names, target=target, progress=progress)[configured.spec.name]
        t = int(exp.targets[0])
        sides.append((names, {n: exp.maps[n][0] for n in names}, t, float(exp.probs[0, t])))
    (names_a, maps_a, t_a, p_a), (names_b, maps_b, t_b, p_b) = sides
    matrix = agreement_matrix([maps_a[n] for n in names_a], [maps_b[n] for n in names_b], top=top, size=size)
    return LayerSimilarity(
        method=configured.spec.name,
        names_a=tuple(names_a),
        names_b=tuple(names_b),
        grids_a=tuple((maps_a[n].shape[0], maps_a[n].shape[1]) for n in names_a),  # each map is (h, w)
        grids_b=tuple((maps_b[n].shape[0], maps_b[n].shape[1]) for n in names_b),
        depths_a=tuple(relative_depths(len(names_a))),
        depths_b=tuple(relative_depths(len(names_b))),
        matrix=matrix,
        maps_a=maps_a,
        maps_b=maps_b,
        targets=(t_a, t_b),
        probs=(p_a, p_b),
        grid=matrix.grid,
        top=matrix.top,
    )
