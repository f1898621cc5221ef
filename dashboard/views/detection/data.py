"""The Detection page's computations with the model (cached per model and image, under the model's lock).

* :func:`model_objects`: what the model reports on the image: its detections, or its segments
  (:mod:`dashboard.views.detection.objects`).
* :func:`target_of`: the library's target for one object: ``methods.targets.BoxTarget`` (the
  detection's box and label) or ``RegionTarget`` (the class over its predicted mask or box).
* :func:`object_maps`: RAW maps of methods x layers for that target, from ONE explain call.
* :func:`deletion`: the deletion curves of the target's score, pixels removed in the order of the
  map and of the random and centre reference maps (``methods.metrics.faithfulness.curves``).

The targets API comes from ``methods.targets`` (issue 21's library part); where the installed
library lacks it, :data:`HAVE_TARGETS` is False and the page says so instead of drawing a map.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import streamlit as st
import torch

import methods
from dashboard.app import cache
from dashboard.core import devices
from dashboard.core.services import ImageContext, ModelHandle
from dashboard.views.detection.objects import Obj, detected_objects, segmented_objects
from methods.metrics.faithfulness import curves

try:  # the library's task targets (methods/targets/)
    from methods.targets import BoxTarget, RegionTarget

    HAVE_TARGETS = True
except ImportError:  # pragma: no cover - a library without task targets
    BoxTarget = RegionTarget = None  # type: ignore[assignment,misc]
    HAVE_TARGETS = False

__all__ = ["HAVE_TARGETS", "model_objects", "objects_for", "target_of", "object_maps", "deletion"]


def _forward(loaded: Any, x: torch.Tensor) -> Any:
    net = loaded.model
    was = net.training
    net.eval()
    try:
        with torch.no_grad():
            return net(x.to(loaded.device))
    finally:
        net.train(was)


@st.cache_data(show_spinner="Running the model…", max_entries=64)
def _outputs(model_id: str, image_key: str, _handle: ModelHandle, _ctx: ImageContext) -> dict:
    """JSON-friendly output of one image: detections, or a segmenter's (K, h, w) logits."""
    with cache.locked(_handle):
        cache.MODEL_CALLS["predict"] += 1
        loaded = _handle.loaded
        out = _forward(loaded, _ctx.x)
    if loaded.task == "detection":
        det = out[0]
        return {k: det[k].detach().cpu().numpy() for k in ("boxes", "labels", "scores")}
    logits = out["out"] if isinstance(out, dict) else out
    return {"logits": logits[0].detach().float().cpu().numpy()}


def model_objects(handle: ModelHandle, ctx: ImageContext) -> list[Obj]:
    """The objects the model reports on ``ctx``'s image, in the page's order (detections: the
    model's order; segments: largest first)."""
    out = _outputs(handle.key, ctx.key, _handle=handle, _ctx=ctx)
    return objects_for(handle.loaded.task, out, handle.class_names)


def objects_for(task: str, out: dict, names) -> list[Obj]:
    if task == "detection":
        return detected_objects(out, names)
    return segmented_objects(out["logits"], names)


def target_of(task: str, obj: Obj, region: str) -> Any:
    """The library target of ``obj``: its detection (box + label), or its class over its
    predicted ``"mask"`` or that mask's ``"box"``."""
    if not HAVE_TARGETS:
        raise RuntimeError("this GradLens has no task targets (methods.targets); update it to explain objects")
    if task == "detection":
        return BoxTarget(box=obj.box, label=obj.label)
    if region == "box":
        return RegionTarget(obj.label, box=obj.box)
    return RegionTarget(obj.label, mask=obj.mask)


@st.cache_data(show_spinner="Computing the maps…", max_entries=64, max_size="256MB")
def _maps(
    model_id: str,
    image_key: str,
    object_key: str,
    method_names: tuple[str, ...],
    layers: tuple[str, ...],
    options_key: str,
    _handle: ModelHandle,
    _ctx: ImageContext,
    _target: Any,
) -> dict:
    with cache.locked(_handle):
        cache.MODEL_CALLS["explain"] += 1
        loaded = _handle.loaded
        options = json.loads(options_key)
        found = methods.explain_many(
            loaded.model,
            _ctx.x.to(loaded.device),
            list(method_names),
            layers=list(layers),
            target=_target,
            options={m: options.get(m, {}) for m in method_names},
        )
    keys = [(m, l) for m in found for l in layers]
    host = devices.host_arrays([found[m].maps[l][0] for m, l in keys])  # one device-to-host copy
    maps: dict[str, dict[str, np.ndarray]] = {m: {} for m in found}
    for (m, l), array in zip(keys, host):
        maps[m][l] = array
    notes = {m: tuple(e.notes) for m, e in found.items()}
    seconds = {m: float(e.seconds) for m, e in found.items()}
    score = float(next(iter(found.values())).logits[0, 0])
    return {"maps": maps, "notes": notes, "seconds": seconds, "score": score}


def object_key(task: str, obj: Obj, region: str) -> str:
    """Cache key of one object's target."""
    return json.dumps(
        [task, obj.rank, obj.label, [round(v, 3) for v in obj.box], region if task != "detection" else ""]
    )


def object_maps(
    handle: ModelHandle,
    ctx: ImageContext,
    obj: Obj,
    region: str,
    method_names: tuple[str, ...],
    layers: tuple[str, ...],
    options: dict,
) -> dict:
    """RAW maps ``{"maps": {method: {layer: (h, w)}}, "notes", "seconds", "score"}`` of one object."""
    task = handle.loaded.task
    return _maps(
        handle.key,
        ctx.key,
        object_key(task, obj, region),
        method_names,
        layers,
        json.dumps(options, sort_keys=True, default=str),
        _handle=handle,
        _ctx=ctx,
        _target=target_of(task, obj, region),
    )


@st.cache_data(show_spinner="Deleting pixels…", max_entries=64)
def _deletion(
    model_id: str, image_key: str, object_key: str, map_key: str, steps: int, _handle: ModelHandle, _ctx, _target, _map
) -> dict:
    maps = {"map": torch.as_tensor(_map), **curves.reference_maps(tuple(_map.shape))}
    out = {}
    with cache.locked(_handle):
        cache.MODEL_CALLS["faithfulness"] += 1
        loaded = _handle.loaded
        for key, m in maps.items():
            c = curves.deletion_curve(loaded.model, _ctx.x.to(loaded.device), m, _target, steps=steps)
            out[key] = {
                "fractions": np.asarray(c.fractions).tolist(),
                "scores": np.asarray(c.scores).tolist(),
                "auc": float(c.auc),
            }
    return out


def deletion(handle: ModelHandle, ctx: ImageContext, obj: Obj, region: str, saliency: np.ndarray, steps: int) -> dict:
    """Deletion curves of the object's score for the map and the two references:
    ``{"map" | "random" | "centre": {"fractions", "scores", "auc"}}``."""
    task = handle.loaded.task
    digest = str(hash(np.ascontiguousarray(saliency, dtype=np.float32).tobytes()))
    return _deletion(
        handle.key,
        ctx.key,
        object_key(task, obj, region),
        digest,
        int(steps),
        _handle=handle,
        _ctx=ctx,
        _target=target_of(task, obj, region),
        _map=saliency,
    )
