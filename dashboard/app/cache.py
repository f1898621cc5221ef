"""Models, images and computations behind Streamlit's caches; the model runs only on a miss.

* Models are cached with ``st.cache_resource`` (shared by every session) together with a lock,
  keyed by model and device (the session's device: :func:`use_device`, set by the sidebar); every
  use of a model happens under its lock. Work on a GPU also takes one of the device's
  :data:`GPU_SLOTS` (:func:`_device_slot`): at most that many computations share one GPU at once,
  whatever their models and sessions.
* The image is loaded and preprocessed ONCE per script run (:func:`context`): the
  :class:`~dashboard.core.services.ImageContext` (picture, model input, model view) is handed to every
  cached computation below.
* Predictions, candidate layers, RAW maps and faithfulness curves are cached with
  ``st.cache_data``, keyed by model id, image key, methods, layers, target and method options.
  Normalization, colormap and alpha are applied by the pages AFTER these caches, so changing them
  never runs the model. :data:`MODEL_CALLS` counts the cache misses that did.
* Uploaded checkpoints and images live in the session that uploaded them
  (:mod:`dashboard.app.uploads`); :func:`model_handle` and :func:`image_for` find them there.
* Long work (slow methods, faithfulness curves) runs on a private copy of the model
  (:func:`_private_model`), at most :data:`SLOW_SLOTS` jobs at a time: the shared model's lock is
  held only while the copy is made, so other sessions keep working during a job of minutes.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import streamlit as st

import methods
from dashboard.app import uploads
from dashboard.core import devices, faithfulness, menus, scene_ids, services
from dashboard.core.params import is_upload
from dashboard.core.services import ImageContext, MapBundle, MapRequest, ModelHandle
from dashboard.core.state import ViewState
from methods import models as zoo
from methods.cams.core.layers import LayerInfo
from methods.data.scenes import make_scene
from methods.runtime import Progress

__all__ = [
    "MODEL_CALLS",
    "SLOW_SLOTS",
    "GPU_SLOTS",
    "device_slot",
    "use_device",
    "session_device",
    "private_model",
    "locked",
    "slow_slot",
    "model_handle",
    "image_key",
    "image_for",
    "begin_run",
    "context",
    "predictions",
    "layer_infos",
    "block_infos",
    "resolve_layer",
    "resolve_target",
    "maps",
    "curves",
    "reference_curves",
    "perturbed_images",
]

#: Cache misses that ran the model, by kind ("predict", "layers", "explain", "faithfulness").
MODEL_CALLS: collections.Counter = collections.Counter()

#: How a computation is run: ``run(work)`` calls ``work(progress)`` (``progress`` may be None).
#: The default runs it here; ``jobs.run_with_progress`` runs it in a thread behind a progress bar.
Run = Callable[[Callable[[Progress | None], Any]], Any]


def _here(work: Callable[[Progress | None], Any]) -> Any:
    return work(None)


# ------------------------------------------------------------------------------------------
# models


_DEVICE_KEY = "_gradlens_device"


def use_device(device: str) -> None:
    """Run this session's models on ``device`` (a view's ``device``: "" = the machine's default;
    checked against ``devices.present()``, raising the library's OptionError)."""
    devices.chosen(device)
    st.session_state[_DEVICE_KEY] = device


def session_device() -> str:
    """The device this session's models run on, as a menu entry (``"cpu"``, ``"cuda:0"`` ...)."""
    return str(devices.chosen(st.session_state.get(_DEVICE_KEY, devices.AUTO)))


@st.cache_resource(show_spinner="Loading the model…", max_entries=6)
def _zoo_model(name: str, device: str) -> ModelHandle:
    return ModelHandle(name, devices.place(zoo.load_model(name), device), threading.Lock(), device)


def model_handle(model_id: str) -> ModelHandle:
    """The cached model of ``model_id`` on this session's device (:func:`session_device`): a
    catalog name, or a checkpoint uploaded in this session (moved, under its lock, when the
    session picks another device). Keeps the C allocator's large blocks for the process's batches
    (:func:`methods.keep_large_blocks`, once)."""
    methods.keep_large_blocks()
    device = session_device()
    if is_upload(model_id):
        handle = uploads.session_upload(uploads.uploaded_models(), model_id, "checkpoint")["handle"]
        if handle.device != device:
            with handle.lock:
                devices.place(handle.loaded, device)
                handle.device = device
        return handle
    return _zoo_model(model_id, device)


# ------------------------------------------------------------------------------------------
# images: loaded, then preprocessed once per script run


@st.cache_data(show_spinner=False, max_entries=32)
def _sample_image(name: str) -> np.ndarray:
    return menus.load_sample(name)


@st.cache_data(show_spinner=False, max_entries=32)
def _scene_image(image_id: str) -> np.ndarray:
    """(128, 128, 3) uint8: an evaluated scene's pixels, exactly as the evaluation scored them."""
    seed, n_objects = scene_ids.parse_scene_id(image_id)
    return make_scene(seed, n_objects=n_objects).image


def image_key(image_id: str, image: np.ndarray) -> str:
    """Cache key of an image: its id and a digest of its pixels (an upload id already is one)."""
    if is_upload(image_id):
        return image_id
    return f"{image_id}:{hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()[:16]}"


def image_for(image_id: str) -> np.ndarray:
    """(H, W, 3) uint8 image of a sample, or of an upload of this session."""
    if is_upload(image_id):
        return uploads.session_upload(uploads.uploaded_images(), image_id, "image")["image"]
    if scene_ids.is_scene_id(image_id):  # an evaluated scene (a Benchmark page link)
        return _scene_image(image_id)
    return _sample_image(image_id)


_CONTEXT_KEY = "_gradlens_context"


def begin_run() -> None:
    """Forget the previous run's image context (the page shell calls it first)."""
    st.session_state.pop(_CONTEXT_KEY, None)


def context(handle: ModelHandle, image_id: str) -> ImageContext:
    """The image ``image_id`` as ``handle``'s model sees it: loaded and preprocessed once per run,
    then handed to every computation of the run."""
    memo = st.session_state.get(_CONTEXT_KEY)
    if memo is not None and memo[0] is handle.loaded and memo[1] == image_id:
        return memo[2]
    image = image_for(image_id)
    ctx = services.image_context(handle.loaded, image_id, image_key(image_id, image), image)
    st.session_state[_CONTEXT_KEY] = (handle.loaded, image_id, ctx)
    return ctx


# ------------------------------------------------------------------------------------------
# model computations: cached; the model runs only on a cache miss, under its lock or on a copy

#: Long jobs that may run at once in the process, each on its own copy of its model.
SLOW_SLOTS = 2
_SLOW_SLOTS = threading.BoundedSemaphore(SLOW_SLOTS)

#: Computations that may run at once on one GPU, over every model and session: the long jobs'
#: slots and one more, so a short map is never queued behind two long jobs for good. Each holds
#: its activations (and a long job its model copy) in the GPU's memory; the bound keeps a busy
#: server from running the GPU out of memory. The CPU has no such bound.
GPU_SLOTS = SLOW_SLOTS + 1
_GPU_GATES: dict[str, threading.BoundedSemaphore] = {}
_GATES_LOCK = threading.Lock()


def _gate(device: str) -> threading.BoundedSemaphore | None:
    """The semaphore of ``device``'s :data:`GPU_SLOTS` (None for the CPU)."""
    if not devices.is_accelerator(device):
        return None
    with _GATES_LOCK:
        return _GPU_GATES.setdefault(device, threading.BoundedSemaphore(GPU_SLOTS))


def _acquire(lock, progress: Progress | None) -> None:
    """``lock.acquire()``; with a progress callback the wait itself can be cancelled: the
    callback is called while waiting, and a cancelled ``ProgressTracker`` raises there."""
    if progress is None:
        lock.acquire()
        return
    while not lock.acquire(timeout=0.2):
        progress(0, 1)


@contextmanager
def _device_slot(device: str, progress: Progress | None = None) -> Iterator[None]:
    """One of ``device``'s :data:`GPU_SLOTS` while the block runs (nothing on the CPU). Taken
    after a model's lock, never before: no one waits for a lock while holding a slot."""
    gate = _gate(device)
    if gate is None:
        yield
        return
    _acquire(gate, progress)
    try:
        yield
    finally:
        gate.release()


@contextmanager
def _locked(handle: ModelHandle, progress: Progress | None = None) -> Iterator[Any]:
    """The shared model, under its lock (and a slot of its GPU), for a short job."""
    _acquire(handle.lock, progress)
    try:
        with _device_slot(handle.device, progress):
            yield handle.loaded
    finally:
        handle.lock.release()


@contextmanager
def slow_slot(progress: Progress | None = None) -> Iterator[None]:
    """One of the :data:`SLOW_SLOTS` for a long job, held while the block runs (waiting for it
    can be cancelled through ``progress``). Every long job takes one: slow maps, curves, the
    Sanity checks, the Benchmark page's evaluation."""
    _acquire(_SLOW_SLOTS, progress)
    try:
        yield
    finally:
        _SLOW_SLOTS.release()


@contextmanager
def _private_model(handle: ModelHandle, progress: Progress | None) -> Iterator[Any]:
    """A copy of the model for one long job: the shared lock is held only while it is copied
    (a copy taken under the lock carries no other job's hooks), so fast work of every session goes
    on during the job. At most :data:`SLOW_SLOTS` jobs hold a copy at once; the others wait here."""
    with slow_slot(progress):
        with _locked(handle, progress) as loaded:
            own = dataclasses.replace(loaded, model=copy.deepcopy(loaded.model))
        with _device_slot(handle.device, progress):
            yield own


def device_slot(device: str, progress: Progress | None = None):
    """A context manager: one of ``device``'s :data:`GPU_SLOTS` (nothing on the CPU), for a long job
    that runs a model of its own on the session's device (the Advisor, the Benchmark page's
    evaluation). Take it inside :func:`slow_slot`; waiting can be cancelled through ``progress``."""
    return _device_slot(device, progress)


def locked(handle: ModelHandle, progress: Progress | None = None):
    """A context manager: ``handle``'s shared model under its lock and a slot of its GPU (any short
    use of a shared model: a page's own forward, a probe)."""
    return _locked(handle, progress)


def private_model(handle: ModelHandle, progress: Progress | None = None):
    """A context manager: a private copy of ``handle``'s model in one of the :data:`SLOW_SLOTS`
    (for a page's own long job, e.g. the Sanity checks); waiting for a slot can be cancelled."""
    return _private_model(handle, progress)


@st.cache_data(show_spinner=False, max_entries=256)
def _predict(model_key: str, image_key: str, _handle: ModelHandle, _ctx: ImageContext) -> np.ndarray:
    with _locked(_handle):
        MODEL_CALLS["predict"] += 1
        return services.predict(_handle.loaded, _ctx.x)


def predictions(handle: ModelHandle, image_id: str) -> np.ndarray:
    """Softmax probabilities (K,) for an image (cached)."""
    ctx = context(handle, image_id)
    return _predict(handle.key, ctx.key, _handle=handle, _ctx=ctx)


@st.cache_data(show_spinner="Finding the layers…", max_entries=16)
def _layers(model_key: str, _handle: ModelHandle) -> tuple[list[LayerInfo], str]:
    with _locked(_handle):
        MODEL_CALLS["layers"] += 1
        return services.layer_list(_handle.loaded)


def layer_infos(handle: ModelHandle) -> tuple[list[LayerInfo], str]:
    """Candidate layers in forward order, and the model's default layer (cached)."""
    return _layers(handle.key, _handle=handle)


@st.cache_data(show_spinner="Finding the blocks…", max_entries=16)
def _blocks(model_key: str, _handle: ModelHandle) -> list[LayerInfo]:
    with _locked(_handle):
        MODEL_CALLS["layers"] += 1
        return services.block_list(_handle.loaded)


def block_infos(handle: ModelHandle) -> list[LayerInfo]:
    """The block layers (one per block, forward order; ``LayerInfo.index`` = position among the
    candidate layers) of the model (cached)."""
    return _blocks(handle.key, _handle=handle)


def resolve_layer(handle: ModelHandle, layer: str | None) -> str:
    """``layer`` checked against the model's candidate layers; None -> the default layer (the
    model's own ``default_layer`` when it names one: no probe of the layers for it)."""
    own = getattr(handle.loaded, "default_layer", None)
    if layer is None and own:
        return own
    infos, default = layer_infos(handle)
    return services.check_layer(layer, infos, default, handle.id)


def resolve_target(state: ViewState, probs: np.ndarray) -> int:
    """The class to explain: the state's, or the top-1 prediction."""
    return services.check_target(state.target, probs, state.model)


@st.cache_data(show_spinner=False, max_entries=128, max_size="512MB")  # "all layers" of a big model: ~10 MB
def _raw_maps(
    model_key: str,
    image_key: str,
    method_names: tuple[str, ...],
    layers: tuple[str, ...],
    target: int,
    options_key: str,
    auto_precision: str,
    _handle: ModelHandle,
    _ctx: ImageContext,
    _progress: Progress | None = None,
    _private: bool = False,
) -> dict:
    with (_private_model if _private else _locked)(_handle, _progress) as loaded:
        MODEL_CALLS["explain"] += 1
        return services.compute_maps(loaded, _ctx.x, method_names, layers, target, json.loads(options_key), _progress)


def maps(request: MapRequest, *, run: Run = _here, private: bool = False) -> MapBundle:
    """RAW maps of a request (:func:`dashboard.core.services.map_request`): ONE explain call,
    cached by (model, image, methods, layers, target, options) once the model has resolved the
    default layer and the top-1 class. ``private``: a long job, on its own copy of the model
    (:func:`_private_model`)."""
    handle = model_handle(request.model)
    ctx = context(handle, request.image)
    probs = predictions(handle, request.image)
    target = services.check_target(request.target, probs, request.model)
    key = (
        handle.key,
        ctx.key,
        request.methods,
        tuple(resolve_layer(handle, l) for l in request.layers),
        target,
        request.options,
        devices.auto_precision(handle.device),
    )  # what "auto" means on the model's device is part of the key
    result = run(lambda progress: _raw_maps(*key, _handle=handle, _ctx=ctx, _progress=progress, _private=private))
    return MapBundle(
        ctx.view,
        result["maps"],
        target,
        probs,
        handle.class_names,
        result["seconds"],
        notes=result["notes"],
        precision=result["precision"],
        original=ctx.image,
        placement=placement_of(handle.loaded, ctx.image),
    )


def placement_of(loaded, image: np.ndarray):
    """Where the model input lies on ``image`` (None for a model without the geometry)."""
    place = getattr(loaded, "placement", None)
    return place(image.shape[:2]) if callable(place) else None


@st.cache_data(show_spinner=False, max_entries=64)
def _curves(
    model_key: str,
    image_key: str,
    what: str,
    target: int,
    baseline: str,
    steps: int,
    map_digest: str,
    _handle: ModelHandle,
    _ctx: ImageContext,
    _saliency: np.ndarray,
    _progress: Progress | None = None,
) -> dict:
    with _private_model(_handle, _progress) as loaded:  # long work (it also switches the weights' memory layout)
        MODEL_CALLS["faithfulness"] += 1
        if what == "references":
            return faithfulness.compute_reference_curves(
                loaded, _ctx.x, _saliency.shape, target, steps=steps, baseline=baseline, progress=_progress
            )
        return faithfulness.compute_curves(
            loaded, _ctx.x, _saliency, target, steps=steps, baseline=baseline, progress=_progress
        )


def _digest(m: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(m).tobytes() + str(m.shape).encode()).hexdigest()


def curves(state: ViewState, bundle: MapBundle, method: str, layer: str, *, run: Run = _here) -> dict[str, dict]:
    """Deletion and insertion curves of one raw map, ``kind -> {fractions, scores, counts, auc}``
    (cached by model, image, map, target, baseline and steps)."""
    handle = model_handle(state.model)
    ctx = context(handle, state.image)
    raw = bundle.maps[method][layer]
    key = (handle.key, ctx.key, method, bundle.target, state.baseline, state.steps, _digest(raw))
    return run(lambda progress: _curves(*key, _handle=handle, _ctx=ctx, _saliency=raw, _progress=progress))


def reference_curves(
    state: ViewState, bundle: MapBundle, shape: tuple[int, int], *, run: Run = _here
) -> dict[str, dict[str, dict]]:
    """Curves of the library's random and centre maps on the explained map's grid (cached)."""
    handle = model_handle(state.model)
    ctx = context(handle, state.image)
    grid = np.zeros(shape, dtype=np.float32)  # only its shape matters
    key = (handle.key, ctx.key, "references", bundle.target, state.baseline, state.steps, f"{shape[0]}x{shape[1]}")
    return run(lambda progress: _curves(*key, _handle=handle, _ctx=ctx, _saliency=grid, _progress=progress))


def perturbed_images(state: ViewState, saliency: np.ndarray, fraction: float) -> dict[str, np.ndarray]:
    """The deletion and insertion pictures with ``fraction`` of the pixels perturbed (no model run)."""
    handle = model_handle(state.model)
    ctx = context(handle, state.image)
    return faithfulness.perturbed_images(handle.loaded, ctx.x, saliency, fraction, baseline=state.baseline)
