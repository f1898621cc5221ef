"""Evaluate the bundled detector and segmenter on fresh scenes (seeds never used in training).

* Detection: mean average precision at IoU 0.5 over the 8 classes (PASCAL VOC 2010+ style: the
  area under the monotone precision envelope, all points; Everingham et al. 2010). A detection
  matches the unmatched ground-truth box of its class with the highest IoU >= 0.5, detections
  taken in descending score order over the whole set.
* Segmentation: mean intersection-over-union over the 9 labels (background included), from one
  confusion matrix accumulated over all scenes (the usual semantic-segmentation mIoU).

With the detector it also prints Grad-CAM's energy in the true box (the energy-based pointing game,
Wang et al. 2020, arXiv 1910.01279) against the random reference map's, for every object it finds.

Scenes: half one-object, half two-object, seeds from ``EVAL_DETSEG_START`` on (>= the scenes'
``EVAL_SEED_START``, disjoint from ``TRAIN_SEEDS``). Run ``python -m methods.models.scenes.detseg_eval``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np
import torch

from methods.data.scenes import CLASS_NAMES, EVAL_SEED_START, Scene, make_scene
from methods.models.scenes import detseg_nets as dn
from methods.models.scenes.nets import MEAN, STD

__all__ = [
    "EVAL_DETSEG_START",
    "eval_scenes",
    "boxes_of",
    "scene_tensor",
    "label_map",
    "box_iou",
    "average_precision",
    "detection_map",
    "segmentation_miou",
    "gradcam_energy",
    "main",
]

EVAL_DETSEG_START = EVAL_SEED_START + 2_000_000


def eval_scenes(n: int, start: int = EVAL_DETSEG_START) -> list[Scene]:
    """``n`` fresh scenes: even indices one object, odd indices two."""
    return [make_scene(start + i, n_objects=1 + i % 2) for i in range(n)]


def boxes_of(masks: np.ndarray) -> np.ndarray:
    """(K, 4) float32 xyxy boxes (pixel edges: x1 = last column + 1) of (K, H, W) bool masks."""
    out = np.zeros((len(masks), 4), np.float32)
    for k, m in enumerate(masks):
        rows, cols = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
        out[k] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return out


def scene_tensor(images: np.ndarray, *, normalise: bool) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [0, 1], or normalised with the scenes' mean/std."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    if normalise:
        x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return x


def label_map(scene: Scene) -> np.ndarray:
    """(H, W) int64: 0 background, ``label + 1`` on each object's pixels."""
    out = np.zeros(scene.masks.shape[1:], np.int64)
    for lab, m in zip(scene.labels, scene.masks):
        out[m] = lab + 1
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, B) IoU of xyxy boxes."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).prod(-1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def average_precision(tp: np.ndarray, scores: np.ndarray, n_gt: int) -> float:
    """All-point interpolated AP of detections (``tp`` 0/1, ``scores``) against ``n_gt`` truths."""
    if n_gt == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores), kind="stable")
    tp = np.asarray(tp, np.float64)[order]
    ctp, cfp = np.cumsum(tp), np.cumsum(1.0 - tp)
    recall = ctp / n_gt
    precision = ctp / np.maximum(ctp + cfp, 1e-12)
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]  # monotone envelope
    idx = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[idx + 1] - r[idx]) * p[idx + 1]))


def detection_map(preds: Sequence[dict], truths: Sequence[tuple[np.ndarray, Sequence[int]]], iou: float = 0.5) -> dict:
    """mAP@``iou`` over the scenes' classes.

    Args:
        preds: per scene ``{"boxes": (D, 4), "labels": (D,) 1-based, "scores": (D,)}`` (numpy).
        truths: per scene ``(boxes (K, 4), class indices 0-based)``.

    Returns:
        ``{"map": float, "per_class": {name: AP}}``.
    """
    per_class: dict[str, float] = {}
    for c, name in enumerate(CLASS_NAMES):
        tps, scs, n_gt = [], [], 0
        for p, (gt_boxes, gt_labels) in zip(preds, truths):
            gt = np.asarray(gt_boxes)[np.asarray(gt_labels) == c]
            n_gt += len(gt)
            keep = np.asarray(p["labels"]) == c + 1
            boxes, scores = np.asarray(p["boxes"])[keep], np.asarray(p["scores"])[keep]
            used = np.zeros(len(gt), bool)
            for j in np.argsort(-scores, kind="stable"):
                ok = 0.0
                if len(gt):
                    ious = box_iou(boxes[j], gt)[0]
                    ious[used] = -1.0
                    k = int(ious.argmax())
                    if ious[k] >= iou:
                        used[k], ok = True, 1.0
                tps.append(ok)
                scs.append(float(scores[j]))
        per_class[name] = average_precision(np.array(tps), np.array(scs), n_gt)
    vals = [v for v in per_class.values() if v == v]
    return {"map": float(np.mean(vals)) if vals else float("nan"), "per_class": per_class}


def segmentation_miou(pred_labels: list[np.ndarray], true_labels: list[np.ndarray], n: int = len(dn.LABELS)) -> dict:
    """mIoU from one confusion matrix over all pixels of all scenes; ``{"miou", "per_class"}``."""
    conf = np.zeros((n, n), np.int64)
    for p, t in zip(pred_labels, true_labels):
        conf += np.bincount(n * t.reshape(-1) + p.reshape(-1), minlength=n * n).reshape(n, n)
    inter = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    return {"miou": float(np.nanmean(iou)), "per_class": dict(zip(dn.LABELS, (float(v) for v in iou)))}


@torch.no_grad()
def evaluate_det(model: torch.nn.Module, scenes: list[Scene], batch: int = 16) -> dict:
    """mAP@0.5 of a torchvision-style detector on ``scenes``."""
    was = model.training
    model.eval()
    preds = []
    try:
        for i in range(0, len(scenes), batch):
            chunk = scenes[i : i + batch]
            x = scene_tensor(np.stack([s.image for s in chunk]), normalise=False)
            for out in model(list(x)):
                preds.append({k: v.numpy() for k, v in out.items()})
    finally:
        model.train(was)
    truths = [(boxes_of(s.masks), s.labels) for s in scenes]
    return detection_map(preds, truths)


@torch.no_grad()
def evaluate_seg(model: torch.nn.Module, scenes: list[Scene], batch: int = 16) -> dict:
    """mIoU of a ``{"out": logits}`` segmenter on ``scenes``."""
    was = model.training
    model.eval()
    preds = []
    try:
        for i in range(0, len(scenes), batch):
            chunk = scenes[i : i + batch]
            x = scene_tensor(np.stack([s.image for s in chunk]), normalise=True)
            preds += list(model(x)["out"].argmax(1).numpy())
    finally:
        model.train(was)
    return segmentation_miou(preds, [label_map(s) for s in scenes])


def gradcam_energy(
    model: torch.nn.Module, scenes: Sequence[Scene], layer: str = dn.DETSEG_LAYERS["scenes_det"]
) -> dict:
    """Energy of Grad-CAM inside the ground-truth box, for each object the detector finds (its
    detection of the object's class with the highest IoU >= 0.5), against the random reference
    map's energy in the same box (``methods.metrics.objects.object_scores``).

    Returns:
        ``{"gradcam": mean energy, "random": mean energy, "objects": count, "missed": objects without a detection}``.
    """
    from methods import explain
    from methods.metrics.objects import object_scores
    from methods.targets import BoxTarget, detect

    found: dict[str, list[float]] = {"gradcam": [], "random": []}
    missed = 0
    for scene in scenes:
        x = scene_tensor(scene.image[None], normalise=False)
        det = detect(model, x)[0]
        for label, box in zip(scene.labels, boxes_of(scene.masks)):
            same = (det["labels"] == label + 1).nonzero().flatten()
            ious = box_iou(box, det["boxes"][same].numpy())[0] if len(same) else np.zeros(0)
            if not len(ious) or ious.max() < 0.5:
                missed += 1
                continue
            j = int(same[int(ious.argmax())])
            target = BoxTarget(tuple(det["boxes"][j].tolist()), int(det["labels"][j]))
            m = explain(model, x, "gradcam", layers=layer, target=target).maps[layer][0]
            s = object_scores(model, x, m, target, box=tuple(float(v) for v in box), curves=False)
            found["gradcam"].append(s.energy["map"])
            found["random"].append(s.energy["random"])
    n = len(found["gradcam"])
    return {k: float(np.mean(v)) if v else float("nan") for k, v in found.items()} | {"objects": n, "missed": missed}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m methods.models.scenes.detseg_eval", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--n", type=int, default=400, help="fresh scenes (half one-object, half two-object)")
    p.add_argument("--which", choices=("det", "seg", "both"), default="both")
    p.add_argument("--energy", type=int, default=100, help="scenes for Grad-CAM's energy in the box (0: skip)")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    scenes = eval_scenes(a.n)
    if a.which in ("det", "both"):
        t = time.time()
        r = evaluate_det(dn.load_detseg("scenes_det"), scenes)
        print(f"scenes_det: mAP@0.5 {r['map']:.4f} on {a.n} fresh scenes ({time.time() - t:.0f}s)")
        print("  " + ", ".join(f"{k} {v:.3f}" for k, v in r["per_class"].items()))
        if a.energy:
            t = time.time()
            e = gradcam_energy(dn.load_detseg("scenes_det"), scenes[: a.energy])
            print(
                f"scenes_det: Grad-CAM energy in the true box {e['gradcam']:.3f} vs random map {e['random']:.3f} "
                f"({e['objects']} objects of {a.energy} scenes, {e['missed']} not detected; {time.time() - t:.0f}s)"
            )
    if a.which in ("seg", "both"):
        t = time.time()
        r = evaluate_seg(dn.load_detseg("scenes_seg"), scenes)
        print(f"scenes_seg: mIoU {r['miou']:.4f} on {a.n} fresh scenes ({time.time() - t:.0f}s)")
        print("  " + ", ".join(f"{k} {v:.3f}" for k, v in r["per_class"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
