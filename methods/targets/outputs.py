"""Reading task outputs: torchvision detection lists and segmentation dicts.

* Detection (torchvision Faster R-CNN, RetinaNet, FCOS, SSD / SSDlite, Mask R-CNN in eval mode):
  a list with ONE dict per input image, ``boxes`` (M, 4) ``(x0, y0, x1, y1)`` in the input's
  pixels, ``labels`` (M,) int64, ``scores`` (M,) class scores (Mask R-CNN adds ``masks``, ignored).
  An optional ``probs`` (M, K) holds each detection's class-probability vector (a model that
  exposes it gets D-RISE's cosine similarity; torchvision's do not).
* Segmentation (FCN, DeepLabV3, LRASPP): an ``OrderedDict`` whose ``"out"`` is (N, K, H, W) per-pixel
  logits (``"aux"`` is ignored), or a plain (N, K, H, W) tensor.

:func:`output_hint` is what the recorder appends to its "must return (N, classes) logits" error:
the target that fits the output it got.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from methods.errors import TargetError

__all__ = ["Detections", "detection_list", "segmentation_logits", "output_hint", "padding_note"]


@dataclass(frozen=True)
class Detections:
    """One image's detections (tensors, graph kept). ``probs`` is None unless the model gives it."""

    boxes: torch.Tensor  # (M, 4)
    labels: torch.Tensor  # (M,)
    scores: torch.Tensor  # (M,)
    probs: torch.Tensor | None = None  # (M, K)


def _is_detection_dict(d: Any) -> bool:
    return isinstance(d, Mapping) and all(k in d for k in ("boxes", "labels", "scores"))


def detection_list(output: Any) -> list[Detections]:
    """The per-image detections of a detector's output (a list of dicts, one per image).

    Raises:
        TargetError: the output is not a list of ``{"boxes", "labels", "scores"}`` dicts.
    """
    if _is_detection_dict(output):
        output = [output]
    if not isinstance(output, Sequence) or isinstance(output, (str, bytes)) or not all(map(_is_detection_dict, output)):
        raise TargetError(
            f"a BoxTarget needs a detector that returns one dict per image with boxes, labels and scores "
            f"(torchvision's detectors in eval mode); this model returned {_describe(output)}"
        )
    out = []
    for d in output:
        boxes, labels, scores = d["boxes"], d["labels"], d["scores"]
        if boxes.ndim != 2 or boxes.shape[-1] != 4 or not (labels.shape[0] == boxes.shape[0] == scores.shape[0]):
            raise TargetError(
                f"a detection dict must hold boxes (M, 4), labels (M,) and scores (M,); got boxes "
                f"{tuple(boxes.shape)}, labels {tuple(labels.shape)}, scores {tuple(scores.shape)}"
            )
        probs = d.get("probs")
        out.append(Detections(boxes=boxes, labels=labels, scores=scores, probs=probs))
    return out


def segmentation_logits(output: Any) -> torch.Tensor:
    """(N, K, H, W) per-pixel logits of a segmenter's output (``output["out"]`` or the tensor).

    Raises:
        TargetError: anything else.
    """
    if isinstance(output, Mapping) and "out" in output:
        output = output["out"]
    if not isinstance(output, torch.Tensor) or output.ndim != 4:
        raise TargetError(
            "a RegionTarget needs a segmenter that returns (N, classes, H, W) logits or a dict with 'out' "
            f"(torchvision's FCN, DeepLabV3, LRASPP); this model returned {_describe(output)}"
        )
    return output


def _describe(output: Any) -> str:
    if isinstance(output, torch.Tensor):
        return f"a tensor of shape {tuple(output.shape)}"
    if isinstance(output, Mapping):
        return f"a {type(output).__name__} with keys {list(output)[:6]}"
    if isinstance(output, Sequence) and not isinstance(output, (str, bytes)):
        first = type(output[0]).__name__ if len(output) else "nothing"
        return f"a {type(output).__name__} of {len(output)} item(s) ({first})"
    return type(output).__name__


def output_hint(output: Any) -> str:
    """What to pass as ``target`` for a model whose output is ``output`` ("" when nothing fits)."""
    if _is_detection_dict(output) or (
        isinstance(output, Sequence) and len(output) > 0 and all(map(_is_detection_dict, output))
    ):
        return (
            "; it looks like a detector (one dict of boxes/labels/scores per image): explain one detection "
            "with target=methods.targets.BoxTarget(box=(x0, y0, x1, y1), label=c) "
            "(methods.targets.detect(model, x) lists the model's boxes)"
        )
    if isinstance(output, Mapping) and isinstance(output.get("out"), torch.Tensor) and output["out"].ndim == 4:
        return (
            "; it looks like a segmenter (per-pixel logits in 'out'): explain a region with "
            "target=methods.targets.RegionTarget(label=c, mask=...) or box=(x0, y0, x1, y1)"
        )
    if isinstance(output, torch.Tensor) and output.ndim == 4:
        return (
            "; per-pixel (N, K, H, W) outputs: explain a region with target=methods.targets.RegionTarget(label=c, ...)"
        )
    return ""


def padding_note(model: Any, input_size: tuple[int, int]) -> str:
    """A note when a torchvision detector pads the resized input (its maps then cover padding).

    ``GeneralizedRCNNTransform`` scales an (H, W) input by ``s = min(min_size / min(H, W),
    max_size / max(H, W))`` to ``floor(s H) x floor(s W)`` and pads the bottom / right to a multiple
    of ``size_divisible`` (32); the backbone's maps cover the padded image, so the upsampled map is
    stretched over the input by the padded share. "" when nothing is padded (or no such transform).
    """
    t: Any = getattr(model, "transform", None)
    if t is None or type(t).__name__ != "GeneralizedRCNNTransform" or getattr(t, "fixed_size", None):
        return ""
    h, w = input_size
    scale = min(float(t.min_size[-1]) / min(h, w), float(t.max_size) / max(h, w))
    rh, rw = int(math.floor(h * scale)), int(math.floor(w * scale))
    d = int(t.size_divisible)
    ph, pw = int(math.ceil(rh / d) * d), int(math.ceil(rw / d) * d)
    if (ph, pw) == (rh, rw):
        return ""
    return (
        f"the detector resizes this {h}x{w} input to {rh}x{rw} and pads it to {ph}x{pw}: layer maps cover the "
        f"padding too ({100 * (1 - rh * rw / (ph * pw)):.0f}% of the grid), so an upsampled map is stretched by up to "
        f"{ph / rh:.3f} x {pw / rw:.3f}; use an input whose resized sides are multiples of {d}"
    )
