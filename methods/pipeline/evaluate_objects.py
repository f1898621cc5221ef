"""The evaluate command for a detector or a segmenter: one row per object, not one per image.

Which objects (:func:`image_objects`):

* a detector (``LoadedModel.task == "detection"``) on the scenes: the GROUND-TRUTH objects; each
  box is its mask's bounding box (pixel edges), its label the scene class + 1 (torchvision counts
  the background as 0). It is matched to the model's detections of its class with IoU >= 0.5
  (:class:`methods.targets.BoxTarget`'s rule: the highest IoU); an object no detection matches gets
  ONE row with ``detected = False`` and no map or score (never a map of nothing);
* a detector on a folder of pictures: the model's own boxes with score >= ``min_score``, best
  first, at most ``max_objects`` (the rule of :func:`methods.pipeline.objects.detected_targets`);
* a segmenter on the scenes: one :class:`methods.targets.RegionTarget` per ground-truth class present,
  over that object's exact mask; on a folder: one per class the model predicts (per-pixel argmax,
  background left out), over its predicted mask, largest first, at most ``max_objects``.

Each object is explained by every method and layer, and, with the ``random`` and ``centre``
reference maps of each layer's grid, scored as :func:`methods.metrics.objects.object_scores`
scores its ``"map"``: pointing game and energy inside the box (detection: the paper's protocol) or
the mask (segmentation), and deletion / insertion AUCs on the TARGET's score (a detection's class
score, a region's summed logits). The per-map loop avoids ``object_scores``' own references, which
would score the references again for every map.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from methods.cams.core.explain import explain_many
from methods.errors import InputError
from methods.metrics.faithfulness.curves import deletion_curve, insertion_curve, reference_maps
from methods.metrics.localization import energy_pointing_game, pointing_game
from methods.metrics.objects import object_mask
from methods.targets import BoxTarget, RegionTarget, box_iou, detect, segmentation_logits

__all__ = ["ObjectItem", "image_objects", "mask_box", "evaluate_objects", "OBJECT_TASKS", "MATCH_IOU"]

OBJECT_TASKS = ("detection", "segmentation")
MATCH_IOU = 0.5
"""A ground-truth box is detected when a detection of its class overlaps it with IoU >= this."""


@dataclass(frozen=True)
class ObjectItem:
    """One object of an image: its target (None: a ground-truth object the detector missed), label
    in the model's numbering, box (x0, y0, x1, y1) in input pixels, (H, W) mask or None, and the
    score the model gives it (detection score; a region's summed logits; None when undetected)."""

    target: Any
    label: int
    box: tuple[float, float, float, float]
    mask: np.ndarray | None
    score: float | None


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """The (x0, y0, x1, y1) bounding box of a bool mask, pixel edges (x1 = last column + 1).

    Examples:
        >>> m = np.zeros((4, 5), bool); m[1:3, 2:4] = True
        >>> mask_box(m)
        (2.0, 1.0, 4.0, 3.0)
    """
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    return (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))


def image_objects(loaded: Any, x: torch.Tensor, sample: Any, *, min_score: float, max_objects: int) -> list[ObjectItem]:
    """The objects of one image (module docstring). ``x`` is the (1, 3, H, W) model input; the
    sample's masks (scenes) are on the same grid (the bundled scene models take the scene as is)."""
    task = loaded.task
    truth = sample.masks is not None and len(sample.labels) > 0
    if truth and tuple(sample.masks.shape[1:]) != tuple(x.shape[-2:]):
        raise InputError(
            f"the scene's masks are {tuple(sample.masks.shape[1:])} but the model input is {tuple(x.shape[-2:])}: "
            "ground-truth objects need a model that takes the scene at its own size"
        )
    if task == "detection":
        if not truth:
            det = detect(loaded, x)[0]  # the rule of methods.pipeline.objects.detected_targets, with the scores
            keep = (det["scores"] >= float(min_score)).nonzero().flatten()[: int(max_objects)].tolist()
            found = []
            for i in keep:
                x0, y0, x1, y1 = (float(v) for v in det["boxes"][i].tolist())
                label = int(det["labels"][i])
                target = BoxTarget((x0, y0, x1, y1), label)
                found.append(ObjectItem(target, label, (x0, y0, x1, y1), None, float(det["scores"][i])))
            return found
        det = detect(loaded, x)[0]
        out = []
        for lab, m in zip(sample.labels, sample.masks):
            box, label = mask_box(m), int(lab) + 1
            same = (det["labels"] == label).nonzero().flatten()
            ious = box_iou(torch.tensor(box), det["boxes"][same].float()) if len(same) else torch.zeros(0)
            if len(ious) and float(ious.max()) >= MATCH_IOU:
                score = float(det["scores"][same[int(ious.argmax())]])
                out.append(ObjectItem(BoxTarget(box, label, iou_threshold=MATCH_IOU), label, box, m, score))
            else:
                out.append(ObjectItem(None, label, box, m, None))
        return out
    if truth:
        return [
            ObjectItem(RegionTarget(int(lab) + 1, mask=torch.from_numpy(m)), int(lab) + 1, mask_box(m), m, None)
            for lab, m in zip(sample.labels, sample.masks)
        ]
    with torch.no_grad():
        pred = segmentation_logits(loaded.model(x))[0].argmax(0).cpu().numpy()  # (H, W)
    classes = [c for c in np.unique(pred) if c != 0]
    classes.sort(key=lambda c: -int((pred == c).sum()))
    return [
        ObjectItem(RegionTarget(int(c), mask=torch.from_numpy(pred == c)), int(c), mask_box(pred == c), pred == c, None)
        for c in classes[:max_objects]
    ]


def evaluate_objects(loaded: Any, sample: Any, index: int, spec: Any) -> list[dict]:
    """The rows of one image: per object, each method x layer and the references (or one
    ``detected = False`` row for a missed ground-truth object)."""
    names, class_names = list(spec.names), tuple(loaded.class_names)
    x = loaded.preprocess(sample.image)[None]
    curve = dict(steps=spec.steps, batch_size=spec.batch_size, precision=spec.precision)
    rows: list[dict] = []
    objects = image_objects(loaded, x, sample, min_score=spec.min_score, max_objects=spec.max_objects)
    for k, obj in enumerate(objects):
        base = dict(
            image=sample.name,
            seed=sample.seed,
            object=k,
            label=obj.label,
            label_name=class_names[obj.label] if 0 <= obj.label < len(class_names) else str(obj.label),
            box=",".join(f"{v:g}" for v in obj.box),
            detected=obj.target is not None,
            device=str(x.device),
        )
        if obj.target is None:
            rows.append(dict(base, method=None, layer=None))
            continue
        exps = explain_many(loaded, x, names, layers=list(spec.layers), target=obj.target)
        first = exps[names[0]]
        score = obj.score if obj.score is not None else float(first.logits[0, 0])
        maps = scored_maps(exps, names, spec, index)
        region = object_mask(tuple(x.shape[-2:]), target=obj.target)  # the box (detection) or mask
        for name, layer, sal, seconds in maps:
            t1 = time.perf_counter()
            sal = sal.detach().float().cpu()
            row = dict(
                base,
                method=name,
                layer=layer,
                score=score,
                pointing_hit=pointing_game(sal, region),
                energy_pg=energy_pointing_game(sal, region),
                seconds=seconds,
            )
            if spec.curves:
                d = deletion_curve(loaded, x, sal, obj.target, baseline=spec.baseline, **curve)
                i = insertion_curve(loaded, x, sal, obj.target, baseline=spec.insertion_baseline, **curve)
                row.update(deletion_auc=d.auc, insertion_auc=i.auc, precision=d.precision)
            row["eval_seconds"] = time.perf_counter() - t1
            rows.append(row)
    return rows


def scored_maps(exps: dict, names: list[str], spec: Any, index: int) -> list[tuple[str, str, torch.Tensor, float]]:
    """``(method, layer, map (h, w), seconds)`` of every method x layer of one explained target, then
    (with ``spec.references``) the random and centre maps on each layer's grid, seeded per image."""
    first = exps[names[0]]
    maps: list[tuple[str, str, torch.Tensor, float]] = []
    for name in names:
        for layer in spec.layers:
            maps.append((name, layer, exps[name].maps[layer][0], exps[name].seconds))
    if spec.references:
        for layer in spec.layers:
            size = (first.maps[layer].shape[-2], first.maps[layer].shape[-1])
            for ref, m in reference_maps(size, seed=int(spec.seed) + index).items():
                maps.append((ref, layer, m, 0.0))
    return maps
