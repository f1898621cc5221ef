"""Detection targets: one reference box, matched in the detector's output by class and IoU.

``BoxTarget(box, label)`` scores an input by the detection the model makes there:

* candidates = the detections of class ``label`` whose IoU with ``box`` is >= ``iou_threshold``;
* the match is the candidate with the HIGHEST IoU (the detection of the same object; ties: the
  first in the model's order — torchvision sorts by score);
* ``similarity="class"`` (default): score = the match's class score ``s``;
  ``"class_x_iou"``: ``s * IoU`` (D-RISE's similarity with the class score in place of the
  probability-vector cosine); ``"class_plus_iou"``: ``s + IoU`` (pytorch-grad-cam's
  ``FasterRCNNBoxScoreTarget`` convention, for comparisons).
* no candidate: score 0 on a masked input (the object is gone as far as the detector is concerned);
  on the explained input itself (``strict``) a :class:`methods.errors.TargetError` says which box
  was not found and what the model did detect — never a map of nothing.

torchvision's detectors drop detections below their score threshold (``box_score_thresh`` 0.05
for Faster R-CNN, ``score_thresh`` for RetinaNet / FCOS / SSD) before this target sees them, so a
masked input whose detection falls below it scores 0, not its small score. Lower the threshold
(``model.roi_heads.score_thresh = 0.0``) for smoother score-family and RISE maps.

Inputs: torchvision detectors take (N, 3, H, W) images in [0, 1] (NOT mean/std-normalized: they
normalize and resize inside, in ``GeneralizedRCNNTransform``) and return boxes in the input's own
pixels; the reference box is in those pixels too.

The gradient of ``s`` reaches the image through the detection head, the RoI features and the
backbone; the RPN's proposals are detached by torchvision, so the box position contributes only
through ``IoU`` (with the ``*_iou`` similarities).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from methods._internal.torch_utils import eval_mode
from methods.errors import OptionError, TargetError
from methods.targets.base import Target, box_iou, check_box
from methods.targets.outputs import Detections, detection_list

__all__ = ["BoxTarget", "detect", "SIMILARITIES"]

SIMILARITIES = ("class", "class_x_iou", "class_plus_iou")


@dataclass(frozen=True)
class BoxTarget(Target):
    """One detected object: a reference box and its class.

    Args:
        box: ``(x0, y0, x1, y1)`` in input pixels (the coordinates the detector returns).
        label: the class index the detector reports (torchvision: COCO index, 0 = background).
        iou_threshold: a detection matches when its IoU with ``box`` is >= this, in (0, 1]; 0.5.
        similarity: ``"class"`` | ``"class_x_iou"`` | ``"class_plus_iou"`` (module docstring).

    Examples:
        >>> t = BoxTarget(box=(0, 0, 4, 4), label=1)
        >>> out = [{"boxes": torch.tensor([[0., 0., 4., 2.]]), "labels": torch.tensor([1]), "scores": torch.tensor([0.8])}]
        >>> t.scores(out), BoxTarget((0, 0, 4, 4), 1, similarity="class_x_iou").scores(out)
        (tensor([0.8000]), tensor([0.4000]))
    """

    box: Any  # (x0, y0, x1, y1): a tuple, list or tensor; held as a tuple of floats
    label: int
    iou_threshold: float = 0.5
    similarity: Literal["class", "class_x_iou", "class_plus_iou"] = "class"

    kind: ClassVar[str] = "box"

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", check_box(self.box))
        if isinstance(self.label, bool) or not isinstance(self.label, int) or self.label < 0:
            raise TargetError(f"label must be a class index >= 0 (the detector's label); got {self.label!r}")
        t = self.iou_threshold
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= 1:
            raise OptionError(f"iou_threshold must be in (0, 1]; got {t!r}")
        if self.similarity not in SIMILARITIES:
            raise OptionError(f"similarity={self.similarity!r} is not valid; expected one of {list(SIMILARITIES)}")

    def describe(self) -> str:
        x0, y0, x1, y1 = self.box
        return f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) class {self.label}"

    def _reference(self, like: torch.Tensor) -> torch.Tensor:
        return torch.tensor(
            self.box, dtype=like.dtype if like.is_floating_point() else torch.float32, device=like.device
        )

    def _match(self, det: Detections) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(score, IoU) of the matched detection, or None."""
        ref = self._reference(det.boxes)
        same = (det.labels == self.label).nonzero().flatten()
        if same.numel() == 0:
            return None
        iou = box_iou(ref, det.boxes[same])  # (M',)
        best = int(torch.argmax(iou.detach()))  # first maximum
        if float(iou[best].detach()) < self.iou_threshold:
            return None
        j = int(same[best])
        return det.scores[j], iou[best]

    def scores(self, output: Any, *, strict: bool = False) -> torch.Tensor:
        dets = detection_list(output)
        out = []
        for i, det in enumerate(dets):
            found = self._match(det)
            if found is None:
                if strict:
                    raise TargetError(self._not_found(det, i))
                out.append(_zero_like(det))
                continue
            s, iou = found
            if self.similarity == "class_x_iou":
                s = s * iou
            elif self.similarity == "class_plus_iou":
                s = s + iou
            out.append(s)
        return torch.stack(out) if out else torch.zeros(0)  # (N,)

    def similarities(self, output: Any) -> torch.Tensor:
        """D-RISE similarity of each image's detections to the reference (Petsiuk et al. 2021):
        ``max_d IoU(box, d) * cos(p_ref, p_d)`` where the detections carry ``probs`` (M, K), with
        ``p_ref`` the one-hot vector of ``label``; otherwise ``max_d IoU(box, d) * s_d`` over the
        detections of class ``label`` (the class score in place of the cosine). (N,), 0 with no detection."""
        out = []
        for det in detection_list(output):
            if det.boxes.shape[0] == 0:
                out.append(_zero_like(det))
                continue
            iou = box_iou(self._reference(det.boxes), det.boxes)  # (M,)
            if det.probs is not None:
                p = det.probs  # (M, K)
                cos = p[:, self.label] / p.norm(dim=1).clamp(min=1e-12)  # cosine with a one-hot vector
                sim = iou * cos
            else:
                sim = torch.where(det.labels == self.label, iou * det.scores, torch.zeros_like(iou))
            out.append(sim.max())
        return torch.stack(out) if out else torch.zeros(0)

    def _not_found(self, det: Detections, i: int) -> str:
        same = (det.labels == self.label).nonzero().flatten()
        if same.numel():
            best = float(box_iou(self._reference(det.boxes), det.boxes[same]).max())
            seen = f"its {same.numel()} detection(s) of class {self.label} overlap it with IoU {best:.2f} at most"
        else:
            labels = sorted(set(det.labels.tolist()))
            seen = f"it detected no object of class {self.label} (classes detected: {labels[:10]})"
        return (
            f"no detection matches the {self.describe()} in image {i} (IoU >= {self.iou_threshold:g}): {seen}; "
            "pick one of the model's own boxes (methods.targets.detect(model, x)), lower iou_threshold, or "
            "lower the detector's score threshold"
        )


def _zero_like(det: Detections) -> torch.Tensor:
    """A 0 score that stays on the output's graph (so a gradient pass sees a zero gradient)."""
    return det.scores.sum() * 0 if det.scores.numel() else det.boxes.new_zeros(())


def detect(model: Any, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """The detector's output on ``x`` in eval mode, detached: one dict per image with ``boxes``
    (M, 4), ``labels`` (M,), ``scores`` (M,) — the boxes a :class:`BoxTarget` can name.

    ``model`` is an ``nn.Module`` or a LoadedModel (its ``.model``). Train/eval flags restored.
    """
    net = getattr(model, "model", model)
    if not isinstance(net, nn.Module):
        raise TargetError(f"detect() needs an nn.Module or a LoadedModel; got {type(model).__name__}")
    with eval_mode(net), torch.no_grad():
        dets = detection_list(net(x))
    return [{"boxes": d.boxes.detach(), "labels": d.labels.detach(), "scores": d.scores.detach()} for d in dets]
