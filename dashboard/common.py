"""The one module that imports both streamlit and methods: caches, locks, errors, state sync.

* Models are cached with ``st.cache_resource`` (shared by every session) together with a lock;
  every use of a model happens under its lock.
* Images, predictions, candidate layers and RAW maps are cached with ``st.cache_data``, keyed by
  model id, image id (uploads: their digest), methods, layers, target and method options.
  Normalization, colormap and alpha are applied by the pages AFTER these caches, so changing
  them never runs the model. :data:`MODEL_CALLS` counts the cache misses that did.
* :func:`shown_errors` is the one place where library errors become ``st.error``.
* :func:`preloaded` lets a saved view's raw maps stand in for the computation.

Widgets, the view state's sync with the URL and the page runner are in :mod:`dashboard.ui`.
"""

from __future__ import annotations

import collections
import hashlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import streamlit as st

import methods
from methods.errors import GradLensError
from methods.viz.normalize import MODES, SCOPES
from methods.cams.registry import suggest
from methods.viz.render import resize_map

from dashboard import catalog
from dashboard.catalog import LayerRow, MapBundle, Progress, merge
from dashboard.state import Choices, ViewState, is_upload

__all__ = [
    "MODEL_CALLS",
    "COLORMAP_NAMES",
    "NORM_MODES",
    "NORM_SCOPES",
    "GradLensError",
    "MapBundle",
    "LayerRow",
    "ModelHandle",
    "preloaded",
    "shown_errors",
    "show_deferred_errors",
    "error_message",
    "did_you_mean",
    "choices",
    "method_specs",
    "method_label",
    "model_handle",
    "image_for",
    "predictions",
    "layer_infos",
    "resolve_layer",
    "raw_maps",
    "gated_maps",
    "normalized",
    "faithfulness_curves",
    "download_png",
    "download_csv",
]

#: Cache misses that ran the model, by kind ("predict", "layers", "explain", "faithfulness").
MODEL_CALLS: collections.Counter = collections.Counter()

COLORMAP_NAMES: tuple[str, ...] = tuple(methods.COLORMAPS)
NORM_MODES: tuple[str, ...] = tuple(MODES)
NORM_SCOPES: tuple[str, ...] = tuple(SCOPES)


# ==========================================================================================
# errors: the one place


def error_message(exc: BaseException) -> str:
    """The library's own message, first letter capitalised."""
    text = str(exc).strip().strip('"') or type(exc).__name__
    return text[0].upper() + text[1:]


class Outcome:
    """What :func:`shown_errors` saw: ``failed`` is True when it showed an error."""

    failed = False


@contextmanager
def shown_errors(where: str | None = None, container=None, *, instead: str | None = None,
                 defer_to: str | None = None) -> Iterator[Outcome]:
    """Show GradLens errors and validation ``ValueError``s as ``st.error``; never a traceback.

    The rest of the ``with`` block is skipped and the script goes on after it (``as outcome``:
    ``outcome.failed`` tells). Any other exception is a bug and keeps Streamlit's traceback.

    Args:
        where: a prefix naming what failed ("photo.png").
        container: where to draw (default: the main area).
        instead: a short text to show in place of the library's message (when the full message
            is shown elsewhere already).
        defer_to: inside a widget callback: keep the message under this name; the script shows
            it with :func:`show_deferred_errors` where the widget is.
    """
    outcome = Outcome()
    try:
        yield outcome
    except (GradLensError, ValueError) as exc:
        outcome.failed = True
        text = instead or (f"{where}: " if where else "") + error_message(exc)
        if defer_to is not None:
            st.session_state.setdefault("_deferred_errors", {})[defer_to] = text
        else:
            (container or st).error(text, icon=":material/error:")


def show_deferred_errors(name: str, container=None) -> None:
    """Show (once) the error a widget callback kept under ``name``."""
    text = st.session_state.get("_deferred_errors", {}).pop(name, None)
    if text:
        (container or st).error(text, icon=":material/error:")


# ==========================================================================================
# models and images


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
    return ModelHandle(name, catalog.load_model(name), threading.Lock())


@st.cache_resource(show_spinner="Loading the checkpoint…", max_entries=4)
def _checkpoint_model(model_id: str, arch: str, num_classes: int, class_names: tuple[str, ...] | None,
                      _data: bytes) -> ModelHandle:
    loaded = catalog.load_checkpoint(_data, arch=arch, num_classes=num_classes, class_names=class_names)
    return ModelHandle(model_id, loaded, threading.Lock())


def uploaded_models() -> dict[str, dict]:
    return st.session_state.setdefault("_uploaded_models", {})


def uploaded_images() -> dict[str, dict]:
    return st.session_state.setdefault("_uploaded_images", {})


def model_handle(model_id: str) -> ModelHandle:
    """The cached model of ``model_id``: a catalog name, or a checkpoint uploaded in this session."""
    if is_upload(model_id):
        info = uploaded_models().get(model_id)
        if info is None:
            raise GradLensError(
                f"the checkpoint {model_id!r} was uploaded in another session; uploaded files cannot "
                "travel in a URL. Upload it again (the coming snapshots keep uploads)."
            )
        return _checkpoint_model(model_id, info["arch"], info["num_classes"], info["class_names"], info["data"])
    return _zoo_model(model_id)


def load_uploaded_checkpoint(data: bytes, name: str, arch: str, num_classes: int,
                             class_names: tuple[str, ...] | None) -> str:
    """Load an uploaded checkpoint once (errors raise), remember it for the session, return its id."""
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for num_classes={num_classes}; give one name per class, or none")
    digest = hashlib.sha256(data + f"|{arch}|{num_classes}|{class_names}".encode()).hexdigest()[:16]
    model_id = f"upload:{digest}"
    _checkpoint_model(model_id, arch, num_classes, class_names, data)
    uploaded_models()[model_id] = {"data": data, "arch": arch, "num_classes": num_classes,
                                   "class_names": class_names, "name": name}
    return model_id


@st.cache_data(show_spinner=False, max_entries=32)
def _sample_image(name: str) -> np.ndarray:
    return catalog.load_sample(name)


@st.cache_data(show_spinner=False, max_entries=16)
def _decoded_upload(image_id: str, _data: bytes) -> np.ndarray:
    return catalog.decode_image(_data)


def register_uploaded_image(data: bytes, name: str) -> str:
    """Decode an uploaded image once (ImageError raises), remember it, return its id."""
    image_id = f"upload:{hashlib.sha256(data).hexdigest()[:16]}"
    _decoded_upload(image_id, data)
    uploaded_images()[image_id] = {"data": data, "name": name}
    return image_id


def image_key(image_id: str, image: np.ndarray) -> str:
    """Cache key of an image: its id and a digest of its pixels (an upload id already is one)."""
    if is_upload(image_id):
        return image_id
    return f"{image_id}:{hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()[:16]}"


def image_for(image_id: str) -> np.ndarray:
    """(H, W, 3) uint8 image of a sample, or of an upload of this session."""
    if is_upload(image_id):
        info = uploaded_images().get(image_id)
        if info is None:
            raise GradLensError(
                f"the image {image_id!r} was uploaded in another session; uploaded files cannot travel "
                "in a URL. Upload it again (the coming snapshots keep uploads)."
            )
        return _decoded_upload(image_id, info["data"])
    return _sample_image(image_id)


# ==========================================================================================
# model computations: cached; the model runs only on a cache miss, under its lock


@st.cache_data(show_spinner=False, max_entries=64)
def _model_view(model_id: str, image_key: str, _handle: ModelHandle, _image: np.ndarray) -> np.ndarray:
    return catalog.model_view(_handle.loaded, _image)


@st.cache_data(show_spinner=False, max_entries=256)
def _predict(model_id: str, image_key: str, _handle: ModelHandle, _image: np.ndarray) -> np.ndarray:
    with _handle.lock:
        MODEL_CALLS["predict"] += 1
        return catalog.predict(_handle.loaded, _image)


def predictions(handle: ModelHandle, image_id: str) -> np.ndarray:
    """Softmax probabilities (K,) for an image (cached)."""
    image = image_for(image_id)
    return _predict(handle.id, image_key(image_id, image), _handle=handle, _image=image)


@st.cache_data(show_spinner="Finding the layers…", max_entries=16)
def _layers(model_id: str, _handle: ModelHandle) -> tuple[list[LayerRow], str]:
    with _handle.lock:
        MODEL_CALLS["layers"] += 1
        return catalog.layer_rows(_handle.loaded)


def layer_infos(handle: ModelHandle) -> tuple[list[LayerRow], str]:
    """Candidate layers in forward order, and the model's default layer (cached)."""
    return _layers(handle.id, _handle=handle)


def resolve_layer(handle: ModelHandle, layer: str | None) -> str:
    """``layer`` checked against the model's candidate layers; None -> the default layer."""
    rows, default = layer_infos(handle)
    if layer is None:
        return default
    names = [r.name for r in rows]
    if layer not in names:
        raise methods.LayerError(
            f"layer {layer!r} is not a layer of {handle.id} with a spatial output.{suggest(layer, names)} "
            f"The default layer is {default!r}."
        )
    return layer


def resolve_target(state: ViewState, probs: np.ndarray) -> int:
    """The class to explain: the state's, or the top-1 prediction."""
    if state.target is None:
        return int(np.argmax(probs))
    if not 0 <= state.target < len(probs):
        raise methods.TargetError(
            f"target class {state.target} does not exist: {state.model} has {len(probs)} classes (0..{len(probs) - 1})"
        )
    return int(state.target)


@st.cache_data(show_spinner=False, max_entries=128, max_size="512MB")  # "all layers" of a big model: ~10 MB
def _raw_maps(model_id: str, image_key: str, method_names: tuple[str, ...], layers: tuple[str, ...], target: int,
              options_key: str, _handle: ModelHandle, _image: np.ndarray, _progress: Progress | None = None) -> dict:
    with _handle.lock:
        MODEL_CALLS["explain"] += 1
        return catalog.compute_maps(_handle.loaded, _image, method_names, layers, target,
                                    json.loads(options_key), _progress)


def raw_maps(state: ViewState, method_names: Sequence[str], layers: Sequence[str | None], *,
             progress_label: str | None = None, options: dict | None = None) -> MapBundle:
    """RAW maps of ``method_names`` at ``layers`` (None = default layer), ONE explain call.

    Cached by (model, image, methods, layers, target, options); normalization, colormap and alpha
    are not part of the key. With ``progress_label`` an ``st.progress`` bar follows the run.
    """
    hit = _from_preloaded(method_names, layers)
    if hit is not None:
        return _recorded_bundle(hit)
    handle = model_handle(state.model)
    image = image_for(state.image)
    probs = predictions(handle, state.image)
    key = (handle.id, image_key(state.image, image), tuple(method_names), tuple(resolve_layer(handle, l) for l in layers),
           resolve_target(state, probs), json.dumps(options or {}, sort_keys=True))
    if progress_label is None:
        result = _raw_maps(*key, _handle=handle, _image=image)
    else:
        result = run_with_progress(lambda p: _raw_maps(*key, _handle=handle, _image=image, _progress=p), progress_label)
    view = _model_view(handle.id, key[1], _handle=handle, _image=image)
    return _recorded_bundle(MapBundle(view, result["maps"], key[4], probs, handle.class_names, result["seconds"]))


_RECORD_KEY = "_gradlens_recorded"


def start_recording() -> None:
    """Forget what the previous run computed (``ui.run_page`` calls it before a page draws)."""
    st.session_state[_RECORD_KEY] = {"bundle": None, "curves": {}}


def recorded() -> dict:
    """What this run's page drew: ``{"bundle": MapBundle | None, "curves": {key: {kind: curve}}}``
    (every :func:`raw_maps` result merged; the faithfulness curves), for "Save to review"."""
    return st.session_state.setdefault(_RECORD_KEY, {"bundle": None, "curves": {}})


def _recorded_bundle(bundle: MapBundle) -> MapBundle:
    rec = recorded()
    old = rec["bundle"]
    if old is None or old.target != bundle.target:
        rec["bundle"] = bundle
    else:
        maps = {m: dict(layers) for m, layers in old.maps.items()}
        for m, layers in bundle.maps.items():
            maps.setdefault(m, {}).update(layers)
        rec["bundle"] = replace(old, maps=maps, seconds={**old.seconds, **bundle.seconds})
    return bundle


_PRELOADED_KEY = "_gradlens_preloaded"


@contextmanager
def preloaded(bundle: MapBundle, default_layer: str | None = None) -> Iterator[None]:
    """Within the block, :func:`raw_maps` serves maps from ``bundle`` (e.g. a saved snapshot's raw
    maps) instead of computing them, when it holds every requested (method, layer).

    ``default_layer`` is what a requested ``None`` layer means (default: the method's only layer).
    """
    st.session_state[_PRELOADED_KEY] = (bundle, default_layer)
    try:
        yield
    finally:
        st.session_state.pop(_PRELOADED_KEY, None)


def _from_preloaded(method_names: Sequence[str], layers: Sequence[str | None]) -> MapBundle | None:
    entry = st.session_state.get(_PRELOADED_KEY)
    if entry is None:
        return None
    bundle, default = entry
    maps: dict[str, dict[str, np.ndarray]] = {}
    for name in method_names:
        have = bundle.maps.get(name)
        if not have:
            return None
        chosen = {}
        for layer in layers:
            layer = layer if layer is not None else (default or (next(iter(have)) if len(have) == 1 else None))
            if layer not in have:
                return None
            chosen[layer] = have[layer]
        maps[name] = chosen
    return replace(bundle, maps=maps, seconds={m: bundle.seconds.get(m, 0.0) for m in method_names})


def run_with_progress(fn: Callable[[Progress], Any], label: str) -> Any:
    """Run ``fn(progress)`` in a worker thread while an ``st.progress`` bar follows it.

    The worker has no Streamlit script context, so ``st.cache_data`` records no element in it
    (nothing to replay on a cache hit); only this thread draws the bar.
    """
    progress = Progress()
    bar = st.progress(0.0, text=label)
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(fn, progress)
        while not future.done():
            bar.progress(progress.fraction, text=f"{label} — {progress.fraction:.0%}")
            time.sleep(0.1)
    bar.empty()
    return future.result()


def gated_maps(state: ViewState, method_names: Sequence[str], layers: Sequence[str | None], *,
               key: str) -> MapBundle | None:
    """Raw maps; slow methods (``spec.is_slow``) wait behind a button showing their cost.

    Fast methods share one cached call. A slow method runs on its button (or at once with the
    state's "run slow methods" switch), with a progress bar; once run it is read from the cache
    on later reruns. Returns None when nothing is computed yet.
    """
    specs = {name: methods.get_method(name) for name in method_names}
    fast = [m for m in method_names if not specs[m].is_slow]
    bundle = raw_maps(state, fast, layers) if fast else None
    ran: set = st.session_state.setdefault("_slow_ran", set())
    for name in (m for m in method_names if specs[m].is_slow):
        spec = specs[name]
        run_key = (state.model, state.image, state.target, name, tuple(layers))
        label = f"Running {spec.label} ({spec.cost}) on {len(layers)} layer(s)"
        if not (state.slow or run_key in ran or _from_preloaded([name], layers) is not None):
            handle = model_handle(state.model)
            shapes = {r.name: r.shape for r in layer_infos(handle)[0]}
            counts = [shapes[resolve_layer(handle, l)][0] for l in layers]
            channels = (", ".join(map(str, counts)) + " channels here" if len(counts) <= 3
                        else f"{sum(counts)} channels over {len(counts)} layers here")
            box = st.empty()
            with box.container(border=True):
                st.markdown(f":material/hourglass_top: **{spec.label} is slow**: {spec.cost} per layer "
                            f"({channels}). It runs when you ask.")
                if not st.button(f"Run {spec.label}", key=f"{key}_run_{name}", icon=":material/play_arrow:"):
                    continue
            box.empty()  # pressed: the progress bar takes its place
        bundle = merge(bundle, raw_maps(state, [name], layers, progress_label=label))
        ran.add(run_key)
    return bundle


def normalized(maps: Sequence[np.ndarray], state: ViewState, **overrides: Any) -> list[np.ndarray]:
    """The state's normalization applied to raw maps (never touches the model)."""
    opts = dict(mode=state.norm, relu=state.relu, scope=state.scope, percentiles=(state.p_lo, state.p_hi))
    opts.update(overrides)
    return [np.asarray(m) for m in methods.normalize_many(list(maps), **opts)]


def note_constant(named: dict[str, np.ndarray]) -> None:
    """Say so when maps are constant: normalization then gives all zeros (a flat picture)."""
    flat = [f"{name} (every value {float(m.flat[0]):.3g})" for name, m in named.items()
            if m.size and float(m.max()) == float(m.min())]
    if flat:
        st.info(f"Constant map: {', '.join(flat)}. There is nothing to rank, so every normalization draws it "
                "flat. A uniform image, or a layer the class score does not depend on, does this.",
                icon=":material/horizontal_rule:")


@st.cache_data(show_spinner=False, max_entries=64)
def _curves(model_id: str, image_key: str, what: str, target: int, baseline: str, steps: int, map_digest: str,
            _handle: ModelHandle, _image: np.ndarray, _saliency: np.ndarray, _progress: Progress | None = None) -> dict:
    with _handle.lock:  # the curves also switch the weights' memory layout for their duration
        MODEL_CALLS["faithfulness"] += 1
        if what == "references":
            return catalog.compute_reference_curves(_handle.loaded, _image, _saliency.shape, target, steps=steps,
                                                    baseline=baseline, progress=_progress)
        return catalog.compute_curves(_handle.loaded, _image, _saliency, target, steps=steps, baseline=baseline,
                                      progress=_progress)


def _digest(m: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(m).tobytes() + str(m.shape).encode()).hexdigest()


def faithfulness_curves(state: ViewState, bundle: MapBundle, method: str, layer: str) -> dict[str, dict]:
    """Deletion and insertion curves of one raw map, ``kind -> {fractions, scores, counts, auc}``
    (cached by model, image, map, target, baseline and steps; a progress bar while they run)."""
    handle = model_handle(state.model)
    raw = bundle.maps[method][layer]
    image = image_for(state.image)
    key = (handle.id, image_key(state.image, image), method, bundle.target, state.baseline, state.steps, _digest(raw))
    label = f"{method_label(method)}: deletion and insertion curves, {state.steps} steps each"
    curves = run_with_progress(
        lambda p: _curves(*key, _handle=handle, _image=image, _saliency=raw, _progress=p), label)
    recorded()["curves"][method] = curves
    return curves


def reference_curves(state: ViewState, bundle: MapBundle, shape: tuple[int, int]) -> dict[str, dict[str, dict]]:
    """Curves of the library's random and centre maps on the explained map's grid (cached)."""
    handle = model_handle(state.model)
    grid = np.zeros(shape, dtype=np.float32)  # only its shape matters
    image = image_for(state.image)
    key = (handle.id, image_key(state.image, image), "references", bundle.target, state.baseline, state.steps,
           f"{shape[0]}x{shape[1]}")
    curves = run_with_progress(
        lambda p: _curves(*key, _handle=handle, _image=image, _saliency=grid, _progress=p),
        "Random and centre reference curves")
    recorded()["curves"].update(curves)
    return curves


def perturbed_images(state: ViewState, saliency: np.ndarray, fraction: float) -> dict[str, np.ndarray]:
    """The deletion and insertion pictures with ``fraction`` of the pixels perturbed (no model run)."""
    handle = model_handle(state.model)
    return catalog.perturbed_images(handle.loaded, image_for(state.image), saliency, fraction, baseline=state.baseline)


# ==========================================================================================
# registry, downloads, choices


def did_you_mean(value: str, names: Sequence[str]) -> str:
    """The library's " Did you mean ...?" phrase (may be empty)."""
    return suggest(value, list(names))


def method_specs() -> list:
    """Every registered method in registry order (menus never hard-code a list)."""
    return list(methods.list_methods())


def method_label(name: str) -> str:
    try:
        return methods.get_method(name).label
    except GradLensError:
        return name


def download_png(label: str, picture: Callable[[], np.ndarray], file_name: str, key: str) -> None:
    """A PNG download; ``picture()`` composes the image only when the button is pressed."""
    from dashboard.figures import png_bytes

    st.download_button(label, lambda: png_bytes(picture(), compress_level=6), file_name=file_name, mime="image/png",
                       key=key, icon=":material/download:")


def download_csv(label: str, frame, file_name: str, key: str) -> None:
    """A CSV download of a DataFrame (encoded only when the button is pressed)."""
    st.download_button(label, lambda: frame.to_csv(index=False).encode("utf-8"), file_name=file_name,
                       mime="text/csv", key=key, icon=":material/download:")


def choices() -> Choices:
    return Choices(
        models=tuple(m.id for m in catalog.model_choices()),
        images=tuple(s.id for s in catalog.sample_choices()),
        methods=tuple(s.name for s in method_specs()),
        norms=NORM_MODES,
        scopes=NORM_SCOPES,
        colormaps=COLORMAP_NAMES,
        baselines=catalog.baselines(),
    )
