"""What a map explains: a class (an int or :class:`ClassTarget`), a detected box
(:class:`BoxTarget`), a segmented region (:class:`RegionTarget`) or the similarity to a reference
embedding (:class:`EmbeddingTarget`). See :mod:`methods.targets.base` for the protocol and
docs/targets.md for examples."""

from methods.targets.base import Target, TargetView, box_iou, explained_scores
from methods.targets.box import SIMILARITIES, BoxTarget, detect
from methods.targets.classes import ClassTarget
from methods.targets.embedding import EmbeddingTarget
from methods.targets.outputs import Detections, detection_list, output_hint, segmentation_logits
from methods.targets.region import RegionTarget, region_mask

__all__ = [
    "Target",
    "TargetView",
    "ClassTarget",
    "BoxTarget",
    "RegionTarget",
    "EmbeddingTarget",
    "SIMILARITIES",
    "Detections",
    "detect",
    "detection_list",
    "segmentation_logits",
    "region_mask",
    "output_hint",
    "explained_scores",
    "box_iou",
]
