"""Per-object scores of a map: localization and faithfulness of ONE detected or segmented object.

For an object given by a box ``(x0, y0, x1, y1)`` (input pixels; pixel (i, j) is inside when its
centre ``(j + 0.5, i + 0.5)`` is) or a mask, and a map explaining that object's target
(:mod:`methods.targets`), :func:`object_scores` reports

* ``pointing`` — the pointing game (Zhang et al., ECCV 2016, arXiv:1608.00507): the map's maximum
  lies on the object (:func:`methods.metrics.localization.pointing_game`, tolerance 0);
* ``energy`` — the energy-based pointing game (Wang et al., Score-CAM, CVPR-W 2020,
  arXiv:1910.01279): ``E = sum_{object} ReLU(L) / sum_{all} ReLU(L)``, L the map upsampled to the
  input (:func:`methods.metrics.localization.energy_pointing_game`); with a box this is the paper's
  own protocol;
* ``deletion`` / ``insertion`` — AUCs of RISE's curves (:mod:`methods.metrics.faithfulness.curves`)
  on the TARGET's score (a detection's class score, a region's summed logits, a cosine), not a
  class probability: a box no detection matches any more scores 0;

each for the map and for the two information-free references of
:func:`methods.metrics.faithfulness.curves.reference_maps` (``"random"``, ``"centre"``) on the
map's own grid, computed the same way. A map beats a reference on localization when its
``pointing`` / ``energy`` is higher, on deletion when its AUC is lower, on insertion when higher.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from methods.errors import InputError
from methods.metrics.faithfulness.curves import Curve, deletion_curve, insertion_curve, reference_maps
from methods.metrics.localization import energy_pointing_game, pointing_game
from methods.targets import BoxTarget, RegionTarget, region_mask
from methods.targets.base import check_box

__all__ = ["ObjectScores", "object_mask", "object_scores", "REFERENCES"]

REFERENCES = ("random", "centre")


def object_mask(size: tuple[int, int], *, box: Any = None, mask: Any = None, target: Any = None) -> torch.Tensor:
    """The object's (H, W) bool mask on an input of ``size``: ``mask``, else ``box``, else the
    target's own (a BoxTarget's box; a RegionTarget's mask or box).

    Raises:
        InputError: no object given, or an empty object.
    """
    if mask is None and box is None and target is not None:
        if isinstance(target, BoxTarget):
            box = target.box
        elif isinstance(target, RegionTarget):
            mask, box = target.mask, target.box
    if mask is None and box is None:
        raise InputError("give the object: box=(x0, y0, x1, y1), mask=(H, W) bool, or a BoxTarget / RegionTarget")
    m = region_mask(size, mask=mask, box=check_box(box) if box is not None else None, input_size=size)
    if not bool(m.any()):
        raise InputError(f"the object covers no pixel of the {size[0]} x {size[1]} input")
    return m


@dataclass(frozen=True)
class ObjectScores:
    """The scores of one object's map and of the references. Each dict has the keys ``"map"``,
    ``"random"``, ``"centre"``.

    Attributes:
        pointing: hit (True) or miss of the pointing game.
        energy: share of the positive energy on the object, in [0, 1].
        deletion: deletion AUC on the target's score (lower = more faithful); empty if not computed.
        insertion: insertion AUC (higher = more faithful); empty if not computed.
        curves: ``"deletion/map"``, ``"insertion/random"``, ... -> :class:`Curve`.
    """

    pointing: dict[str, bool]
    energy: dict[str, float]
    deletion: dict[str, float] = field(default_factory=dict)
    insertion: dict[str, float] = field(default_factory=dict)
    curves: dict[str, Curve] = field(default_factory=dict)

    def beats(self) -> dict[str, dict[str, bool]]:
        """metric -> reference -> whether the map does better than that reference."""
        out: dict[str, dict[str, bool]] = {}
        for metric, values in (("energy", self.energy), ("deletion", self.deletion), ("insertion", self.insertion)):
            if not values:
                continue
            lower = metric == "deletion"
            out[metric] = {r: (values["map"] < values[r]) if lower else (values["map"] > values[r]) for r in REFERENCES}
        return out


def object_scores(
    model: Any,
    x: torch.Tensor,
    saliency: Any,
    target: Any,
    *,
    box: Any = None,
    mask: Any = None,
    curves: bool = True,
    seed: int = 0,
    **curve_options: Any,
) -> ObjectScores:
    """Localization and faithfulness of ``saliency`` for one object (module docstring).

    Args:
        model: the model (``nn.Module`` or LoadedModel) the map explains.
        x: one preprocessed image (1, C, H, W).
        saliency: the (h, w) raw map of that image.
        target: the explained target (a :mod:`methods.targets` object, or a class index).
        box, mask: the object; default: the target's own box or region.
        curves: also compute the deletion and insertion curves (the slow part: 3 maps x 2 curves x
            (steps + 1) forwards).
        seed: seed of the random reference map.
        **curve_options: options of :func:`methods.deletion_curve` (``steps``, ``baseline``,
            ``batch_size``, ``precision``, ...).

    Returns:
        An :class:`ObjectScores`.

    Examples:
        >>> s = object_scores(None, torch.zeros(1, 3, 8, 8), torch.eye(8), 0, box=(0, 0, 4, 4), curves=False)
        >>> s.pointing["map"], round(s.energy["map"], 3)
        (True, 0.5)
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[0] != 1:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"x must be ONE image (1, C, H, W); got {got}")
    size = (int(x.shape[-2]), int(x.shape[-1]))
    obj = object_mask(size, box=box, mask=mask, target=target)
    sal = saliency if isinstance(saliency, torch.Tensor) else torch.as_tensor(saliency)
    if sal.ndim != 2:
        raise InputError(f"saliency must be ONE (h, w) map; got shape {tuple(sal.shape)}")
    maps = {"map": sal.detach().float().cpu(), **reference_maps((int(sal.shape[0]), int(sal.shape[1])), seed=seed)}
    pointing = {k: pointing_game(m, obj) for k, m in maps.items()}
    energy = {k: energy_pointing_game(m, obj) for k, m in maps.items()}
    if not curves:
        return ObjectScores(pointing=pointing, energy=energy)
    found: dict[str, Curve] = {}
    for kind, fn in (("deletion", deletion_curve), ("insertion", insertion_curve)):
        for k, m in maps.items():
            found[f"{kind}/{k}"] = fn(model, x, m, target, **curve_options)
    return ObjectScores(
        pointing=pointing,
        energy=energy,
        deletion={k: found[f"deletion/{k}"].auc for k in maps},
        insertion={k: found[f"insertion/{k}"].auc for k in maps},
        curves=found,
    )
