"""Default and block layers of torchvision's detectors and segmenters.

The generic rule of :func:`methods.cams.core.layers.default_layer` would pick a detector's
``roi_heads.box_roi_pool`` (the last 4-D output: one 7 x 7 map per RoI, not per image). For these
architectures the default is the backbone's last stage, and the block layers are the backbone's
stages plus the FPN levels:

* Faster / Mask R-CNN, RetinaNet, FCOS (FPN backbones): default ``backbone.body.<last>`` (ResNet:
  ``layer4``; MobileNetV3: ``16``); blocks ``backbone.body.*`` and ``backbone.fpn.layer_blocks.*``;
* SSD (VGG) / SSDlite (MobileNetV3): default ``backbone.features.<last>``; blocks
  ``backbone.features.*`` and ``backbone.extra.*``;
* FCN, DeepLabV3, LRASPP: default ``backbone.<last>``; blocks ``backbone.*``.

(``<last>`` = the last direct child that gives a candidate map.) The model may be seen through a
:class:`methods._internal.score_view.ScoreView` (a target's view): names are the model's own.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from methods._internal.score_view import inner_model

__all__ = ["task_family", "task_default", "task_blocks"]


def task_family(model: nn.Module) -> str | None:
    """``"detection"``, ``"segmentation"`` (a torchvision model of that kind) or None."""
    module = type(inner_model(model)).__module__
    if module.startswith("torchvision.models.detection"):
        return "detection"
    if module.startswith("torchvision.models.segmentation"):
        return "segmentation"
    return None


def _children(names: Sequence[str], prefix: str) -> list[str]:
    return [n for n in names if n.startswith(prefix) and n[len(prefix) :] and "." not in n[len(prefix) :]]


def _stage_prefixes(model: nn.Module) -> tuple[str, ...]:
    family = task_family(model)
    if family == "detection":
        return ("backbone.body.", "backbone.features.", "backbone.")
    if family == "segmentation":
        return ("backbone.",)
    return ()


def task_default(model: nn.Module, candidates: Sequence[str]) -> str | None:
    """The default layer of a torchvision detector / segmenter (table above), else None."""
    for prefix in _stage_prefixes(model):
        stages = _children(candidates, prefix)
        if stages:
            return stages[-1]
    return None


def task_blocks(model: nn.Module, candidates: Sequence[str]) -> list[str] | None:
    """The block layers of a torchvision detector / segmenter (table above, forward order), else None."""
    for prefix in _stage_prefixes(model):
        stages = _children(candidates, prefix)
        if stages:
            extra = prefix.replace("body.", "fpn.layer_blocks.") if prefix == "backbone.body." else ""
            if prefix == "backbone.features.":
                extra = "backbone.extra."
            more = _children(candidates, extra) if extra else []
            return [n for n in candidates if n in set(stages) | set(more)]
    return None
