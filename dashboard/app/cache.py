"""Models, images and computations behind Streamlit's caches; the model runs only on a miss.

* Models are cached with ``st.cache_resource`` (shared by every session) together with a lock;
  every use of a model happens under its lock.
* The image is loaded and preprocessed ONCE per script run (:func:`context`): the
  :class:`~dashboard.core.services.ImageContext` (picture, model input, model view) is handed to every
  cached computation below.
* Predictions, candidate layers, RAW maps and faithfulness curves are cached with
  ``st.cache_data``, keyed by model id, image key, methods, layers, target and method options.
  Normalization, colormap and alpha are applied by the pages AFTER these caches, so changing them
  never runs the model. :data:`MODEL_CALLS` counts the cache misses that did.
* Uploaded checkpoints and images live in the session that uploaded them (they cannot travel in
  a URL): the loaded model and the decoded picture are held by the session's state only, so they
  are freed with the session. Each session holds at most :data:`UPLOAD_LIMITS` (count and bytes);
  a new upload beyond them drops the oldest, and says so.
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
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import streamlit as st

from methods import models as zoo
from methods.runtime import Progress
from methods import resolve_precision
from methods.cams.core.layers import LayerInfo
from methods.data.images import load_image
from methods.data.scenes import make_scene
from methods.errors import CheckpointError, GradLensError, ImageError, OptionError

from dashboard.core import menus, scene_ids, services
from dashboard.core.params import is_upload
from dashboard.core.services import ImageContext, MapBundle, MapRequest
from dashboard.core.state import ViewState

__all__ = [
    "MODEL_CALLS", "SLOW_SLOTS", "UPLOAD_LIMITS", "ModelHandle", "model_handle", "uploaded_models", "uploaded_images",
    "upload_notes", "load_uploaded_checkpoint",
    "register_uploaded_image", "image_key", "image_for", "begin_run", "context", "predictions", "layer_infos",
    "block_infos", "resolve_layer", "resolve_target", "maps", "curves", "reference_curves", "perturbed_images",
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


@dataclass(eq=False)
class ModelHandle:
    """A loaded model shared by every session, and the lock that serialises its use."""

    id: str
    loaded: Any  # methods.models.loaded.LoadedModel
    lock: threading.Lock

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.loaded.class_names)


@st.cache_resource(show_spinner="Loading the model…", max_entries=6)
def _zoo_model(name: str) -> ModelHandle:
    return ModelHandle(name, zoo.load_model(name), threading.Lock())


#: Per session: how many uploads of each kind, and how many bytes of them in memory (the weights
#: of the loaded checkpoints; the decoded pixels of the images). A larger single upload is refused.
UPLOAD_LIMITS: dict[str, tuple[int, int]] = {"models": (3, 1_200_000_000), "images": (8, 200_000_000)}
_UPLOAD_KEYS = {"models": "_uploaded_models", "images": "_uploaded_images"}
_NOTES_KEY = "_upload_notes"


def uploaded_models() -> dict[str, dict]:
    """This session's checkpoints, oldest first: id -> name, arch, num_classes, class_names,
    sha256, nbytes, handle (the loaded model)."""
    return st.session_state.setdefault(_UPLOAD_KEYS["models"], {})


def uploaded_images() -> dict[str, dict]:
    """This session's images, oldest first: id -> name, nbytes, image (decoded (H, W, 3) uint8)."""
    return st.session_state.setdefault(_UPLOAD_KEYS["images"], {})


def _session_upload(store: dict[str, dict], upload_id: str, what: str) -> dict:
    """The entry of ``upload_id`` in this session's ``store``, or an error saying why it is not there."""
    info = store.get(upload_id)
    if info is None:
        raise GradLensError(
            f"the {what} {upload_id!r} is not in this session (uploaded in another one, or dropped to stay "
            "within the upload limits); uploaded files cannot travel in a URL. Upload it again."
        )
    return info


def upload_notes() -> list[str]:
    """Messages about uploads dropped to stay within :data:`UPLOAD_LIMITS` (shown once, then cleared)."""
    return st.session_state.pop(_NOTES_KEY, [])


def _keep(kind: str, upload_id: str, entry: dict) -> None:
    """Add an upload to the session, then drop the oldest ones beyond the session's limits."""
    count, size = UPLOAD_LIMITS[kind]
    what = "checkpoint" if kind == "models" else "image"
    if entry["nbytes"] > size:
        error = CheckpointError if kind == "models" else ImageError
        raise error(f"it takes {entry['nbytes'] / 1e6:.0f} MB in memory, more than the {size / 1e6:.0f} MB a "
                    f"session may hold for uploaded {what}s")
    held = st.session_state.setdefault(_UPLOAD_KEYS[kind], {})
    held.pop(upload_id, None)
    held[upload_id] = entry  # the newest last
    while len(held) > count or sum(e["nbytes"] for e in held.values()) > size:
        old_id = next(iter(held))
        old = held.pop(old_id)
        st.session_state.setdefault(_NOTES_KEY, []).append(
            f"Dropped the oldest uploaded {what}, {old['name']}, to stay within {count} {what}s and "
            f"{size / 1e6:.0f} MB per session; upload it again to see it.")


def _weight_bytes(loaded) -> int:
    """Bytes the model's parameters and buffers take in memory (what an uploaded checkpoint costs)."""
    return int(sum(t.numel() * t.element_size() for t in loaded.model.state_dict().values()))


def model_handle(model_id: str) -> ModelHandle:
    """The cached model of ``model_id``: a catalog name, or a checkpoint uploaded in this session."""
    if is_upload(model_id):
        return _session_upload(uploaded_models(), model_id, "checkpoint")["handle"]
    return _zoo_model(model_id)


def load_uploaded_checkpoint(data: bytes, name: str, arch: str, num_classes: int,
                             class_names: tuple[str, ...] | None) -> str:
    """Load an uploaded checkpoint (errors raise), keep it in the session, return its id."""
    if class_names is not None and len(class_names) != num_classes:
        raise OptionError(f"{len(class_names)} class names for num_classes={num_classes}; give one name per class, "
                          "or none")
    sha = hashlib.sha256(data).hexdigest()
    model_id = f"upload:{hashlib.sha256(f'{sha}|{arch}|{num_classes}|{class_names}'.encode()).hexdigest()[:16]}"
    known = uploaded_models().get(model_id)
    if known is None:
        loaded = services.load_checkpoint(data, arch=arch, num_classes=num_classes, class_names=class_names)
        known = {"name": name, "arch": arch, "num_classes": num_classes, "class_names": class_names, "sha256": sha,
                 "nbytes": _weight_bytes(loaded), "handle": ModelHandle(model_id, loaded, threading.Lock())}
    _keep("models", model_id, known)
    return model_id


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


def register_uploaded_image(data: bytes, name: str) -> str:
    """Decode an uploaded image once (ImageError raises), keep it in the session, return its id."""
    image_id = f"upload:{hashlib.sha256(data).hexdigest()[:16]}"
    entry = uploaded_images().get(image_id)
    if entry is None:
        image = load_image(data)
        entry = {"name": name, "image": image, "nbytes": int(image.nbytes)}
    _keep("images", image_id, entry)
    return image_id


def image_key(image_id: str, image: np.ndarray) -> str:
    """Cache key of an image: its id and a digest of its pixels (an upload id already is one)."""
    if is_upload(image_id):
        return image_id
    return f"{image_id}:{hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()[:16]}"


def image_for(image_id: str) -> np.ndarray:
    """(H, W, 3) uint8 image of a sample, or of an upload of this session."""
    if is_upload(image_id):
        return _session_upload(uploaded_images(), image_id, "image")["image"]
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


def _acquire(lock, progress: Progress | None) -> None:
    """``lock.acquire()``; with a progress callback the wait itself can be cancelled: the
    callback is called while waiting, and a cancelled ``ProgressTracker`` raises there."""
    if progress is None:
        lock.acquire()
        return
    while not lock.acquire(timeout=0.2):
        progress(0, 1)


@contextmanager
def _locked(handle: ModelHandle, progress: Progress | None = None) -> Iterator[Any]:
    """The shared model, under its lock, for a short job."""
    _acquire(handle.lock, progress)
    try:
        yield handle.loaded
    finally:
        handle.lock.release()


@contextmanager
def _private_model(handle: ModelHandle, progress: Progress | None) -> Iterator[Any]:
    """A copy of the model for one long job: the shared lock is held only while it is copied
    (a copy taken under the lock carries no other job's hooks), so fast work of every session goes
    on during the job. At most :data:`SLOW_SLOTS` jobs hold a copy at once; the others wait here."""
    _acquire(_SLOW_SLOTS, progress)
    try:
        with _locked(handle, progress) as loaded:
            own = dataclasses.replace(loaded, model=copy.deepcopy(loaded.model))
        yield own
    finally:
        _SLOW_SLOTS.release()


@st.cache_data(show_spinner=False, max_entries=256)
def _predict(model_id: str, image_key: str, _handle: ModelHandle, _ctx: ImageContext) -> np.ndarray:
    with _handle.lock:
        MODEL_CALLS["predict"] += 1
        return services.predict(_handle.loaded, _ctx.x)


def predictions(handle: ModelHandle, image_id: str) -> np.ndarray:
    """Softmax probabilities (K,) for an image (cached)."""
    ctx = context(handle, image_id)
    return _predict(handle.id, ctx.key, _handle=handle, _ctx=ctx)


@st.cache_data(show_spinner="Finding the layers…", max_entries=16)
def _layers(model_id: str, _handle: ModelHandle) -> tuple[list[LayerInfo], str]:
    with _handle.lock:
        MODEL_CALLS["layers"] += 1
        return services.layer_list(_handle.loaded)


def layer_infos(handle: ModelHandle) -> tuple[list[LayerInfo], str]:
    """Candidate layers in forward order, and the model's default layer (cached)."""
    return _layers(handle.id, _handle=handle)


@st.cache_data(show_spinner="Finding the blocks…", max_entries=16)
def _blocks(model_id: str, _handle: ModelHandle) -> list[LayerInfo]:
    with _handle.lock:
        MODEL_CALLS["layers"] += 1
        return services.block_list(_handle.loaded)


def block_infos(handle: ModelHandle) -> list[LayerInfo]:
    """The block layers (one per block, forward order; ``LayerInfo.index`` = position among the
    candidate layers) of the model (cached)."""
    return _blocks(handle.id, _handle=handle)


def resolve_layer(handle: ModelHandle, layer: str | None) -> str:
    """``layer`` checked against the model's candidate layers; None -> the default layer."""
    infos, default = layer_infos(handle)
    return services.check_layer(layer, infos, default, handle.id)


def resolve_target(state: ViewState, probs: np.ndarray) -> int:
    """The class to explain: the state's, or the top-1 prediction."""
    return services.check_target(state.target, probs, state.model)


@st.cache_data(show_spinner=False, max_entries=128, max_size="512MB")  # "all layers" of a big model: ~10 MB
def _raw_maps(model_id: str, image_key: str, method_names: tuple[str, ...], layers: tuple[str, ...], target: int,
              options_key: str, auto_precision: str, _handle: ModelHandle, _ctx: ImageContext, _progress: Progress | None = None,
              _private: bool = False) -> dict:
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
    key = (handle.id, ctx.key, request.methods, tuple(resolve_layer(handle, l) for l in request.layers), target,
           request.options, resolve_precision("auto", "cpu"))  # what "auto" means is part of the key
    result = run(lambda progress: _raw_maps(*key, _handle=handle, _ctx=ctx, _progress=progress, _private=private))
    return MapBundle(ctx.view, result["maps"], target, probs, handle.class_names, result["seconds"],
                     notes=result["notes"], precision=result["precision"])


@st.cache_data(show_spinner=False, max_entries=64)
def _curves(model_id: str, image_key: str, what: str, target: int, baseline: str, steps: int, map_digest: str,
            _handle: ModelHandle, _ctx: ImageContext, _saliency: np.ndarray, _progress: Progress | None = None) -> dict:
    with _private_model(_handle, _progress) as loaded:  # long work (it also switches the weights' memory layout)
        MODEL_CALLS["faithfulness"] += 1
        if what == "references":
            return services.compute_reference_curves(loaded, _ctx.x, _saliency.shape, target, steps=steps,
                                                     baseline=baseline, progress=_progress)
        return services.compute_curves(loaded, _ctx.x, _saliency, target, steps=steps, baseline=baseline,
                                       progress=_progress)


def _digest(m: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(m).tobytes() + str(m.shape).encode()).hexdigest()


def curves(state: ViewState, bundle: MapBundle, method: str, layer: str, *, run: Run = _here) -> dict[str, dict]:
    """Deletion and insertion curves of one raw map, ``kind -> {fractions, scores, counts, auc}``
    (cached by model, image, map, target, baseline and steps)."""
    handle = model_handle(state.model)
    ctx = context(handle, state.image)
    raw = bundle.maps[method][layer]
    key = (handle.id, ctx.key, method, bundle.target, state.baseline, state.steps, _digest(raw))
    return run(lambda progress: _curves(*key, _handle=handle, _ctx=ctx, _saliency=raw, _progress=progress))


def reference_curves(state: ViewState, bundle: MapBundle, shape: tuple[int, int], *,
                     run: Run = _here) -> dict[str, dict[str, dict]]:
    """Curves of the library's random and centre maps on the explained map's grid (cached)."""
    handle = model_handle(state.model)
    ctx = context(handle, state.image)
    grid = np.zeros(shape, dtype=np.float32)  # only its shape matters
    key = (handle.id, ctx.key, "references", bundle.target, state.baseline, state.steps, f"{shape[0]}x{shape[1]}")
    return run(lambda progress: _curves(*key, _handle=handle, _ctx=ctx, _saliency=grid, _progress=progress))


def perturbed_images(state: ViewState, saliency: np.ndarray, fraction: float) -> dict[str, np.ndarray]:
    """The deletion and insertion pictures with ``fraction`` of the pixels perturbed (no model run)."""
    handle = model_handle(state.model)
    ctx = context(handle, state.image)
    return services.perturbed_images(handle.loaded, ctx.x, saliency, fraction, baseline=state.baseline)
