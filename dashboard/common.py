"""The one module that imports both streamlit and methods.

* cached loaders: models (``st.cache_resource``, one lock per model), images, predictions,
  candidate layers and RAW maps (``st.cache_data``). Normalization, colormap and alpha are
  applied by the pages AFTER these caches, so changing them never runs the model;
  :data:`MODEL_CALLS` counts every call that does (tests and the benchmark read it);
* :func:`shown_errors`: the single place where library errors become ``st.error``;
* the shared sidebar (model, image, target class, display options) and the view state's round
  trip through session state and the URL (:func:`run_page`).

Pages import only this module, :mod:`dashboard.state` and :mod:`dashboard.figures`.
"""

from __future__ import annotations

import collections
import hashlib
import importlib
import io
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import streamlit as st
import torch

import methods
from methods.errors import GradLensError
from methods.normalize import MODES, SCOPES

from dashboard.state import DEFAULT_BASELINES, PAGES, UPLOAD_PREFIX, Choices, ViewState, is_upload

__all__ = [
    "MODEL_CALLS",
    "PAGE_TITLES",
    "MapBundle",
    "run_page",
    "shown_errors",
    "method_specs",
    "method_label",
    "model_handle",
    "image_for",
    "predictions",
    "layer_infos",
    "resolve_layer",
    "raw_maps",
    "normalized",
    "faithfulness_curves",
    "download_png",
    "download_csv",
]

#: How many times each cached computation actually ran the model (cache misses), by kind.
MODEL_CALLS: collections.Counter = collections.Counter()

PAGE_TITLES = {
    "home": "GradLens",
    "methods": "Methods side by side",
    "layers": "Layers",
    "normalization": "Normalization",
    "faithfulness": "Faithfulness",
}
PAGE_FILES = {
    "home": "Home.py",
    "methods": "pages/1_Methods.py",
    "layers": "pages/2_Layers.py",
    "normalization": "pages/3_Normalization.py",
    "faithfulness": "pages/4_Faithfulness.py",
}
_TOP_K = 5
_VIEW_KEY = "_gradlens_view"


# ==========================================================================================
# errors: the one place


def error_message(exc: BaseException) -> str:
    """The library's own message, prefixed by what kind of problem it is."""
    text = str(exc).strip() or type(exc).__name__
    return text[0].upper() + text[1:] if text else text


@contextmanager
def shown_errors(where: str | None = None) -> Iterator[None]:
    """Show GradLens errors and validation ``ValueError``s as ``st.error``; never a traceback.

    The rest of the ``with`` block is skipped; the page goes on after it. Other exceptions are
    bugs and keep Streamlit's traceback.
    """
    try:
        yield
    except (GradLensError, ValueError) as exc:
        prefix = f"{where}: " if where else ""
        st.error(prefix + error_message(exc), icon=":material/error:")


# ==========================================================================================
# library adapters: zoo, samples and faithfulness land separately; import them lazily


def _optional(name: str):
    """``methods.<name>`` or None when that module does not exist (yet)."""
    try:
        return importlib.import_module(f"methods.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"methods.{name}":
            return None
        raise


@dataclass(frozen=True)
class ModelChoice:
    id: str
    label: str
    available: bool
    notice: str = ""


@dataclass(frozen=True)
class SampleChoice:
    id: str
    label: str
    kind: str
    description: str = ""
    suggested_model: str | None = None


@dataclass
class ModelHandle:
    """A loaded model shared by every session, and the lock that serialises its use."""

    id: str
    loaded: Any  # methods.zoo.LoadedModel
    lock: threading.Lock

    @property
    def class_names(self) -> list[str]:
        return list(self.loaded.class_names)

    @property
    def input_size(self) -> tuple[int, int]:
        size = self.loaded.input_size
        return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))


def model_choices() -> list[ModelChoice]:
    """Every model the sidebar offers (zoo order), with a notice for missing weights."""
    zoo = _optional("zoo")
    if zoo is None:
        from methods import scene_models

        return [
            ModelChoice(n, n, scene_models.weights_path(n).is_file() or _allow_untrained(),
                        "" if scene_models.weights_path(n).is_file() else f"Weights not found. Expected file: {scene_models.weights_path(n)}")
            for n in scene_models.BUNDLED
        ]
    out = []
    for entry in zoo.list_models():
        notice = "" if entry.available else (
            f"Weights are not in the local cache. Expected file: `{entry.expected_file}`"
        )
        available = bool(entry.available) or (_allow_untrained() and entry.source == "bundled")
        out.append(ModelChoice(entry.name, entry.label, available, "" if available else notice))
    return out


def _allow_untrained() -> bool:
    """Development switch (until the bundled weights land): random weights for bundled models."""
    return os.environ.get("GRADLENS_DASHBOARD_UNTRAINED") == "1"


@dataclass
class _FallbackLoaded:
    """Stand-in for methods.zoo.LoadedModel while the zoo has not landed (bundled models only)."""

    name: str
    model: torch.nn.Module
    input_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    class_names: tuple[str, ...]
    default_layer: str
    source: str = "bundled"
    digest: str = ""
    note: str = ""

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        from methods import scene_models

        return scene_models.preprocess(image)  # (3, H, W)


def _load_from_library(name: str):
    zoo = _optional("zoo")
    from methods import scene_models

    if _allow_untrained() and name in scene_models.BUNDLED and not scene_models.weights_path(name).is_file():
        # development only: the bundled weights have not landed; random weights keep the UI usable
        model = scene_models.build(name).eval()
        args = (name, model, (scene_models.INPUT_SIZE,) * 2, scene_models.MEAN, scene_models.STD,
                tuple(scene_models.CLASS_NAMES), scene_models.DEFAULT_LAYERS[name])
        if zoo is not None:
            return zoo.LoadedModel(*args, source="bundled", note="UNTRAINED development weights")
        return _FallbackLoaded(*args, note="UNTRAINED development weights")
    if zoo is not None:
        return zoo.load_model(name)
    if name not in scene_models.BUNDLED:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(scene_models.BUNDLED)}")
    model = scene_models.load_pretrained(name)
    return _FallbackLoaded(
        name, model, (scene_models.INPUT_SIZE, scene_models.INPUT_SIZE), scene_models.MEAN,
        scene_models.STD, tuple(scene_models.CLASS_NAMES), scene_models.DEFAULT_LAYERS[name],
    )


@st.cache_resource(show_spinner="Loading the model…", max_entries=6)
def _zoo_model(name: str) -> ModelHandle:
    loaded = _load_from_library(name)
    return ModelHandle(name, loaded, threading.Lock())


@st.cache_resource(show_spinner="Loading the checkpoint…", max_entries=4)
def _checkpoint_model(model_id: str, arch: str, num_classes: int, class_names: tuple[str, ...] | None, _data: bytes) -> ModelHandle:
    zoo = _optional("zoo")
    if zoo is None:
        raise GradLensError("uploading checkpoints needs methods.zoo, which is not installed in this checkout yet")
    loaded = zoo.load_checkpoint(io.BytesIO(_data), arch=arch, num_classes=num_classes,
                                 class_names=list(class_names) if class_names else None)
    return ModelHandle(model_id, loaded, threading.Lock())


def checkpoint_architectures() -> list[str]:
    """Architectures an uploaded checkpoint may have (from the zoo)."""
    zoo = _optional("zoo")
    if zoo is None:
        return []
    for attr in ("checkpoint_architectures", "ARCHITECTURES", "list_architectures"):
        value = getattr(zoo, attr, None)
        if value is not None:
            archs = list(value() if callable(value) else value)
            break
    else:  # the zoo accepts every torchvision classification architecture
        import torchvision.models as tvm

        archs = sorted(tvm.list_models(module=tvm))
    catalog = [m.id for m in model_choices() if m.id in archs]  # the familiar ones first
    return catalog + [a for a in archs if a not in catalog]


def model_handle(model_id: str) -> ModelHandle:
    """The cached model for ``model_id`` (zoo name or an upload of this session)."""
    if is_upload(model_id):
        info = st.session_state.get("_uploaded_models", {}).get(model_id)
        if info is None:
            raise GradLensError(
                f"the checkpoint {model_id!r} was uploaded in another session; uploaded files "
                "cannot travel in a URL. Upload it again (snapshots will keep uploads)."
            )
        return _checkpoint_model(model_id, info["arch"], info["num_classes"], info["class_names"], info["data"])
    return _zoo_model(model_id)


# ------------------------------------------------------------------------------------------
# images


def sample_choices() -> list[SampleChoice]:
    """The bundled sample images (scenes, then photos)."""
    samples = _optional("samples")
    if samples is not None:
        return [
            SampleChoice(s.name, f"{'Scene' if s.kind == 'scene' else 'Photo'}: {s.name}", s.kind,
                         getattr(s, "description", ""), getattr(s, "suggested_model", None))
            for s in samples.list_samples()
        ]
    scenes = [SampleChoice(f"scene_{i}", f"Scene: scene_{i}", "scene", "synthetic scene", "scenes_vgg") for i in range(4)]
    photos = [SampleChoice(p, f"Photo: {p}", "photo", "scikit-image photo", None) for p in ("astronaut", "coffee", "chelsea")]
    return scenes + photos


@st.cache_data(show_spinner=False, max_entries=32)
def _sample_image(name: str) -> np.ndarray:
    samples = _optional("samples")
    if samples is not None:
        return np.asarray(samples.load_sample(name))
    if name.startswith("scene_"):
        from methods.scenes import EVAL_SEED_START, make_scene

        return make_scene(EVAL_SEED_START + int(name.split("_")[1])).image
    from skimage import data as skdata

    return np.asarray(getattr(skdata, name)())[:, :, :3]


@st.cache_data(show_spinner=False, max_entries=16)
def _decode_upload(digest: str, _data: bytes) -> np.ndarray:
    from methods.images import load_image

    return load_image(_data)


def image_for(image_id: str) -> np.ndarray:
    """(H, W, 3) uint8 image of a sample or of an upload of this session."""
    if is_upload(image_id):
        data = st.session_state.get("_uploaded_images", {}).get(image_id)
        if data is None:
            raise GradLensError(
                f"the image {image_id!r} was uploaded in another session; uploaded files cannot "
                "travel in a URL. Upload it again (snapshots will keep uploads)."
            )
        return _decode_upload(image_id, data["data"])
    return _sample_image(image_id)


# ------------------------------------------------------------------------------------------
# model inputs, predictions, layers


def _input(handle: ModelHandle, image: np.ndarray) -> torch.Tensor:
    x = handle.loaded.preprocess(image)  # (3, H, W)
    x = torch.as_tensor(x)
    return x[None] if x.ndim == 3 else x  # (1, 3, H, W)


def model_view(handle: ModelHandle, image_id: str, image: np.ndarray) -> np.ndarray:
    """The image as the model sees it (resized / cropped by its preprocessing), uint8 (H, W, 3)."""
    return _model_view_cached(handle.id, image_key_for(image_id), _handle=handle, _image=image)


@st.cache_data(show_spinner=False, max_entries=64)
def _model_view_cached(model_id: str, image_key: str, _handle: ModelHandle, _image: np.ndarray) -> np.ndarray:
    x = _input(_handle, _image)[0].float().numpy()  # (3, H, W)
    mean = np.asarray(_handle.loaded.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(_handle.loaded.std, dtype=np.float32)[:, None, None]
    rgb = np.clip((x * std + mean) * 255.0, 0, 255).round().astype(np.uint8)
    return np.ascontiguousarray(rgb.transpose(1, 2, 0))


def image_key_for(image_id: str) -> str:
    """Cache key of an image: an upload id holds the file's digest; a sample is its name."""
    return image_id if is_upload(image_id) else f"sample:{image_id}"


@st.cache_data(show_spinner=False, max_entries=256)
def _predict(model_id: str, image_key: str, _handle: ModelHandle, _image: np.ndarray) -> np.ndarray:
    x = _input(_handle, _image)
    with _handle.lock, torch.no_grad():
        MODEL_CALLS["predict"] += 1
        logits = _handle.loaded.model(x)
    return logits.softmax(dim=1)[0].float().numpy()  # (K,)


def predictions(handle: ModelHandle, image_id: str, image: np.ndarray) -> np.ndarray:
    """Softmax probabilities (K,) of the model for the image (cached)."""
    return _predict(handle.id, image_key_for(image_id), _handle=handle, _image=image)


@dataclass(frozen=True)
class LayerRow:
    name: str
    type: str
    shape: tuple[int, int, int]
    index: int

    @property
    def resolution(self) -> str:
        c, h, w = self.shape
        return f"{c}×{h}×{w}"


@st.cache_data(show_spinner="Finding the layers…", max_entries=16)
def _layers_cached(model_id: str, _handle: ModelHandle) -> tuple[list[tuple], str]:
    from methods.layers import candidate_layers, default_layer

    with _handle.lock:
        MODEL_CALLS["layers"] += 1
        infos = candidate_layers(_handle.loaded.model, _handle.input_size)
        default = getattr(_handle.loaded, "default_layer", None) or default_layer(_handle.loaded.model, _handle.input_size)
    return [(i.name, i.type, tuple(i.shape), i.index) for i in infos], default


def layer_infos(handle: ModelHandle) -> tuple[list[LayerRow], str]:
    """Candidate layers in forward order, and the model's default layer."""
    rows, default = _layers_cached(handle.id, _handle=handle)
    return [LayerRow(*r) for r in rows], default


def resolve_layer(handle: ModelHandle, layer: str | None) -> str:
    """``layer`` checked against the model, None -> the default layer."""
    rows, default = layer_infos(handle)
    if layer is None:
        return default
    names = [r.name for r in rows]
    if layer not in names:
        from methods.registry import suggest

        raise methods.LayerError(
            f"layer {layer!r} is not a layer of {handle.id} that gives a spatial map.{suggest(layer, names)} "
            f"Choose one of the listed layers (the default is {default!r})."
        )
    return layer


# ------------------------------------------------------------------------------------------
# raw maps: cached as raw arrays; everything visual happens after this cache


class _Progress:
    """(done, total) shared between the computing thread and the page's progress bar."""

    def __init__(self) -> None:
        self.done, self.total = 0, 1
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int) -> None:
        with self._lock:
            self.done, self.total = int(done), max(int(total), 1)

    @property
    def fraction(self) -> float:
        with self._lock:
            return min(max(self.done / self.total, 0.0), 1.0)


@st.cache_data(show_spinner=False, max_entries=128)
def _raw_maps_cached(
    model_id: str,
    image_key: str,
    method_names: tuple[str, ...],
    layers: tuple[str, ...],
    target: int,
    options_key: str,
    _handle: ModelHandle,
    _image: np.ndarray,
    _progress: _Progress | None = None,
) -> dict:
    x = _input(_handle, _image)
    options = json.loads(options_key) if options_key else {}
    with _handle.lock:
        MODEL_CALLS["explain"] += 1
        results = methods.explain_many(
            _handle.loaded, x, list(method_names), layers=list(layers), target=target,
            options=options, progress=_progress,
        )
    return {
        "maps": {m: {l: e.maps[l][0].numpy().astype(np.float32) for l in e.layers} for m, e in results.items()},
        "seconds": {m: float(e.seconds) for m, e in results.items()},
    }


@dataclass(frozen=True)
class MapBundle:
    """Raw maps of one image: what a page needs to draw, and what a snapshot stores.

    ``maps[method][layer]`` is the RAW (h, w) float32 map.
    """

    image: np.ndarray  # (H, W, 3) uint8, as the model sees it
    maps: dict[str, dict[str, np.ndarray]]
    target: int
    probs: np.ndarray  # (K,)
    class_names: tuple[str, ...]
    seconds: dict[str, float]


def raw_maps(
    state: ViewState,
    method_names: Sequence[str],
    layers: Sequence[str | None],
    *,
    with_progress: str | None = None,
    options: dict | None = None,
) -> MapBundle:
    """RAW maps of ``method_names`` at ``layers`` for the state's model, image and target.

    All methods and layers share ONE ``explain_many`` call (one forward+backward for the
    gradient family). Cached by (model, image, methods, layers, target, options): normalization,
    colormap and alpha are not part of the key.

    Args:
        with_progress: a label; when given, an ``st.progress`` bar follows the computation (the
            slow methods report progress), which then runs in a worker thread.
    """
    handle = model_handle(state.model)
    image = image_for(state.image)
    probs = predictions(handle, state.image, image)
    target = resolve_target(state, handle, probs)
    names = tuple(resolve_layer(handle, l) for l in layers)
    options_key = json.dumps(options or {}, sort_keys=True)
    key = (handle.id, image_key_for(state.image), tuple(method_names), names, target, options_key)
    if with_progress is None:
        result = _raw_maps_cached(*key, _handle=handle, _image=image)
    else:
        result = run_with_progress(
            lambda progress: _raw_maps_cached(*key, _handle=handle, _image=image, _progress=progress), with_progress
        )
    return MapBundle(model_view(handle, state.image, image), result["maps"], target, probs, tuple(handle.class_names), result["seconds"])


def run_with_progress(fn: Callable[[_Progress], Any], label: str) -> Any:
    """Run ``fn(progress)`` in a worker thread while an ``st.progress`` bar follows it.

    The worker has no Streamlit context, so nothing it does is recorded by ``st.cache_data``'s
    element replay; only this thread touches the bar.
    """
    progress = _Progress()
    bar = st.progress(0.0, text=label)
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(fn, progress)
        while not future.done():
            bar.progress(progress.fraction, text=f"{label} — {progress.fraction:.0%}")
            time.sleep(0.15)
    bar.empty()
    return future.result()


def resolve_target(state: ViewState, handle: ModelHandle, probs: np.ndarray) -> int:
    """The class to explain: the state's, or the top-1 prediction."""
    if state.target is None:
        return int(np.argmax(probs))
    if not 0 <= state.target < len(probs):
        raise methods.TargetError(
            f"target class {state.target} does not exist: {handle.id} has {len(probs)} classes (0..{len(probs) - 1})"
        )
    return int(state.target)


def normalized(maps: Sequence[np.ndarray], state: ViewState, **overrides: Any) -> list[np.ndarray]:
    """The state's normalization applied to raw maps (cheap; never touches the model)."""
    opts = dict(mode=state.norm, relu=state.relu, scope=state.scope, percentiles=(state.p_lo, state.p_hi))
    opts.update(overrides)
    return [np.asarray(m) for m in methods.normalize_many(list(maps), **opts)]


# ------------------------------------------------------------------------------------------
# methods registry helpers


def method_specs() -> list:
    """Every registered method, in registry order (menus never hard-code a list)."""
    return list(methods.list_methods())


def method_label(name: str) -> str:
    try:
        return methods.get_method(name).label
    except GradLensError:
        return name


# ------------------------------------------------------------------------------------------
# faithfulness


def faithfulness_module():
    """``methods.faithfulness`` or None when it has not landed."""
    return _optional("faithfulness")


def baselines() -> tuple[str, ...]:
    mod = faithfulness_module()
    for attr in ("BASELINES", "BASELINE_CHOICES"):
        value = getattr(mod, attr, None) if mod is not None else None
        if value:
            return tuple(value)
    return DEFAULT_BASELINES


@st.cache_data(show_spinner=False, max_entries=64)
def _curves_cached(
    model_id: str, image_key: str, method: str, layer: str, target: int, baseline: str, steps: int,
    map_key: str, _handle: ModelHandle, _image: np.ndarray, _saliency: np.ndarray, _progress: _Progress | None = None,
) -> dict:
    mod = faithfulness_module()
    x = _input(_handle, _image)
    sal = torch.from_numpy(np.ascontiguousarray(_saliency))[None]  # (1, H, W)
    out = {}
    with _handle.lock:
        MODEL_CALLS["faithfulness"] += 1
        for i, kind in enumerate(("deletion", "insertion")):
            fn = getattr(mod, f"{kind}_curve")
            sub = None
            if _progress is not None:
                sub = (lambda i: lambda d, t: _progress(i * max(t, 1) + d, 2 * max(t, 1)))(i)
            curve = fn(_handle.loaded.model, x, sal, target, steps=steps, baseline=baseline, progress=sub)
            out[kind] = (np.asarray(curve.fractions, dtype=np.float64).ravel(),
                         np.asarray(curve.scores, dtype=np.float64).ravel(), float(np.asarray(curve.auc).ravel()[0]))
    return out


def faithfulness_curves(state: ViewState, method: str, layer: str | None, bundle: MapBundle, label: str) -> dict:
    """Deletion and insertion curves of one method's map (cached; progress bar while running)."""
    mod = faithfulness_module()
    if mod is None:
        raise GradLensError("the faithfulness curves need methods.faithfulness, which has not landed in this checkout yet")
    handle = model_handle(state.model)
    image = image_for(state.image)
    name = resolve_layer(handle, layer)
    from methods.render import resize_map

    raw = bundle.maps[method][name]
    saliency = resize_map(raw, bundle.image.shape[:2])  # (H, W) at the input size
    key = (handle.id, image_key_for(state.image), method, name, bundle.target, state.baseline, state.steps,
           hashlib.sha1(raw.tobytes()).hexdigest())
    return run_with_progress(
        lambda progress: _curves_cached(*key, _handle=handle, _image=image, _saliency=saliency, _progress=progress), label
    )


# ------------------------------------------------------------------------------------------
# downloads


def download_png(label: str, image: np.ndarray, file_name: str, key: str) -> None:
    from dashboard.figures import png_bytes

    st.download_button(label, png_bytes(image), file_name=file_name, mime="image/png", key=key,
                       icon=":material/download:")


def download_csv(label: str, frame, file_name: str, key: str) -> None:
    st.download_button(label, frame.to_csv(index=False).encode("utf-8"), file_name=file_name, mime="text/csv",
                       key=key, icon=":material/download:")


# ==========================================================================================
# view state <-> session state <-> URL


def choices() -> Choices:
    return Choices(
        models=tuple(m.id for m in model_choices()),
        images=tuple(s.id for s in sample_choices()),
        methods=tuple(s.name for s in method_specs()),
        norms=tuple(MODES),
        scopes=tuple(SCOPES),
        colormaps=tuple(methods.COLORMAPS),
        baselines=baselines(),
    )


def _initial_view(page: str) -> ViewState:
    """The view at a session's first run: from the URL, bad values reported once."""
    params = {k: st.query_params.get_all(k) for k in st.query_params.keys()}
    view, messages = ViewState.from_query(params, choices())
    st.session_state["_url_messages"] = messages
    return view


def current_view(page: str) -> ViewState:
    view = st.session_state.get(_VIEW_KEY)
    if view is None:
        view = _initial_view(page)
        st.session_state[_VIEW_KEY] = view
    return view


def commit(view: ViewState) -> None:
    """Remember the view for the session and write it to the URL (only what changed)."""
    st.session_state[_VIEW_KEY] = view
    wanted = view.to_query()
    current = {k: st.query_params.get(k) for k in st.query_params.keys()}
    if current != wanted:
        st.query_params.from_dict(wanted)


def seed(key: str, value: Any) -> None:
    """Give a widget its value from the view unless the widget already holds the user's value."""
    if key not in st.session_state:
        st.session_state[key] = value


def force(key: str, value: Any) -> None:
    """Set a widget's value programmatically (only before the widget is drawn in this run)."""
    st.session_state[key] = value


# ------------------------------------------------------------------------------------------
# the shared sidebar


def _register_upload_image() -> None:
    """on_change of the image uploader: decode once, remember, select it."""
    file = st.session_state.get("w_image_upload")
    if file is None:
        return
    data = file.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:16]
    image_id = f"{UPLOAD_PREFIX}{digest}"
    try:
        _decode_upload(image_id, data)
    except (GradLensError, ValueError) as exc:
        st.session_state["_flash"] = ("image", f"{file.name}: {error_message(exc)}")
        return
    uploads = st.session_state.setdefault("_uploaded_images", {})
    uploads[image_id] = {"data": data, "name": file.name}
    force("w_image", image_id)


def _register_upload_checkpoint() -> None:
    """on_click of "Load checkpoint": load it once (errors shown), remember, select it."""
    file = st.session_state.get("w_ckpt_file")
    if file is None:
        st.session_state["_flash"] = ("model", "Choose a checkpoint file first.")
        return
    arch = st.session_state.get("w_ckpt_arch")
    num_classes = int(st.session_state.get("w_ckpt_classes") or 0)
    text = st.session_state.get("w_ckpt_names") or ""
    names = tuple(n.strip() for n in text.replace(",", "\n").splitlines() if n.strip()) or None
    data = file.getvalue()
    digest = hashlib.sha256(data + f"|{arch}|{num_classes}|{names}".encode()).hexdigest()[:16]
    model_id = f"{UPLOAD_PREFIX}{digest}"
    try:
        if names is not None and len(names) != num_classes:
            raise ValueError(f"{len(names)} class names given for num_classes={num_classes}; give one name per class or none")
        _checkpoint_model(model_id, arch, num_classes, names, data)
    except (GradLensError, ValueError) as exc:
        st.session_state["_flash"] = ("model", f"{file.name}: {error_message(exc)}")
        return
    st.session_state.setdefault("_uploaded_models", {})[model_id] = {
        "data": data, "arch": arch, "num_classes": num_classes, "class_names": names, "name": file.name,
    }
    force("w_model", model_id)


def _sidebar(view: ViewState, page: str) -> ViewState:
    sb = st.sidebar
    url_messages = st.session_state.pop("_url_messages", [])

    # ---- model
    sb.subheader("Model")
    models = model_choices()
    uploaded = st.session_state.get("_uploaded_models", {})
    options = [m.id for m in models] + list(uploaded)
    labels = {m.id: m.label + ("" if m.available else " — weights not cached") for m in models}
    labels.update({k: f"Uploaded: {v['name']} ({v['arch']})" for k, v in uploaded.items()})
    if view.model not in options:
        if is_upload(view.model):
            url_messages.append(
                f"This link names an uploaded checkpoint ({view.model}); uploaded files cannot travel in a URL. "
                f"Showing {options[0]} instead — upload the checkpoint again to see it."
            )
        else:
            url_messages.append(f"Model {view.model!r} is not available here; showing {options[0]}.")
        view = replace(view, model=options[0])
        force("w_model", view.model)
    seed("w_model", view.model)
    if st.session_state["w_model"] not in options:
        force("w_model", view.model)
    model_id = sb.selectbox("Model", options, key="w_model", format_func=lambda k: labels.get(k, k))
    if model_id != view.model:  # a new model: its layers and classes differ
        view = replace(view, model=model_id, layer=None, layers=(), target=None)
        for key in ("w_layer", "w_layers", "w_target"):
            st.session_state.pop(key, None)
    choice = next((m for m in models if m.id == model_id), None)
    if choice is not None and choice.notice:
        sb.warning(choice.notice, icon=":material/cloud_off:")
    _flash_area(sb, "model")
    with sb.expander("Upload a checkpoint"):
        st.file_uploader("Checkpoint file", type=["pt", "pth", "ckpt", "bin", "safetensors"], key="w_ckpt_file")
        archs = checkpoint_architectures()
        if archs:
            st.selectbox("Architecture", archs, key="w_ckpt_arch")
        else:
            st.caption("Checkpoint upload needs methods.zoo (not in this checkout yet).")
        st.number_input("Number of classes", min_value=1, max_value=100_000, value=10, step=1, key="w_ckpt_classes")
        st.text_area("Class names (optional, one per line)", key="w_ckpt_names", height=80)
        st.button("Load checkpoint", on_click=_register_upload_checkpoint, disabled=not archs, key="w_ckpt_load")
        st.caption("Uploaded files stay in this browser session: they cannot travel in a URL.")

    # ---- image
    sb.subheader("Image")
    samples = sample_choices()
    up_images = st.session_state.get("_uploaded_images", {})
    img_options = [s.id for s in samples] + list(up_images)
    img_labels = {s.id: s.label for s in samples}
    img_labels.update({k: f"Uploaded: {v['name']}" for k, v in up_images.items()})
    if view.image not in img_options:
        fallback = _default_image(samples, model_id)
        if is_upload(view.image):
            url_messages.append(
                f"This link names an uploaded image ({view.image}); uploaded files cannot travel in a URL. "
                f"Showing {fallback} instead — upload the image again to see it."
            )
        elif view.image:
            url_messages.append(f"Image {view.image!r} is not a sample here; showing {fallback}.")
        view = replace(view, image=fallback)
        force("w_image", fallback)
    seed("w_image", view.image)
    if st.session_state["w_image"] not in img_options:
        force("w_image", view.image)
    image_id = sb.selectbox("Image", img_options, key="w_image", format_func=lambda k: img_labels.get(k, k))
    if image_id != view.image:
        view = replace(view, image=image_id)
    _flash_area(sb, "image")
    with sb.expander("Upload an image"):
        st.file_uploader("Image file", type=["png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp"],
                         key="w_image_upload", on_change=_register_upload_image)
        st.caption("Uploaded files stay in this browser session: they cannot travel in a URL.")

    # ---- target
    sb.subheader("Target class")
    handle = None
    with _sidebar_errors(sb):
        handle = model_handle(view.model)
        image = image_for(view.image)
        probs = predictions(handle, view.image, image)
        names = handle.class_names
        order = list(np.argsort(-probs))
        top = order[:_TOP_K]
        rest = sorted(order[_TOP_K:], key=lambda i: names[i].lower() if i < len(names) else "")
        t_options: list[int | None] = [None] + [int(i) for i in top] + [int(i) for i in rest]

        def fmt(i: int | None) -> str:
            if i is None:
                return f"Top-1 prediction ({_cls(names, order[0])}, {probs[order[0]]:.1%})"
            rank = f"#{order.index(i) + 1} " if i in top else ""
            return f"{rank}{_cls(names, i)} ({probs[i]:.1%})"

        if view.target is not None and view.target not in t_options:
            url_messages.append(
                f"Target class {view.target} does not exist for {view.model} ({len(probs)} classes); using the top-1 class."
            )
            view = replace(view, target=None)
            force("w_target", None)
        seed("w_target", view.target)
        if st.session_state["w_target"] not in t_options:
            force("w_target", None)
        target = sb.selectbox("Explain the class", t_options, key="w_target", format_func=fmt,
                              help="Top-5 predictions first (with probabilities), then every class by name.")
        view = replace(view, target=target)

    # ---- display
    sb.subheader("Display")
    seed("w_cmap", view.cmap)
    seed("w_alpha", float(view.alpha))
    seed("w_norm", view.norm)
    seed("w_relu", view.relu)
    seed("w_scope", view.scope)
    seed("w_pct", (float(view.p_lo), float(view.p_hi)))
    cmap = sb.selectbox("Colormap", list(methods.COLORMAPS), key="w_cmap")
    alpha = sb.slider("Overlay opacity (alpha)", 0.0, 1.0, step=0.05, key="w_alpha")
    if page != "normalization":
        norm = sb.selectbox("Normalization", list(MODES), key="w_norm", format_func=_NORM_LABELS.get,
                            help="raw: unchanged · min-max: (M-min)/(max-min) · max: M/max|M| keeps 0 at 0 · "
                                 "percentile: clip to the percentiles, then min-max")
        relu = sb.checkbox("ReLU before scaling", key="w_relu")
        scope = sb.radio("Scale", list(SCOPES), key="w_scope", horizontal=True,
                         format_func=lambda s: "per map" if s == "per_map" else "shared",
                         help="per map: each map its own scale · shared: one scale for all maps on the page")
        p_lo, p_hi = view.p_lo, view.p_hi
        if norm == "percentile" or page == "normalization":
            p_lo, p_hi = sb.slider("Percentiles", 0.0, 100.0, step=0.5, key="w_pct")
            if p_lo >= p_hi:
                sb.warning("The low percentile must be below the high one; using 1 and 99.")
                p_lo, p_hi = 1.0, 99.0
        view = replace(view, norm=norm, relu=relu, scope=scope, p_lo=float(p_lo), p_hi=float(p_hi))
    else:
        p_lo, p_hi = sb.slider("Percentiles (percentile mode)", 0.0, 100.0, step=0.5, key="w_pct")
        if p_lo >= p_hi:
            sb.warning("The low percentile must be below the high one; using 1 and 99.")
            p_lo, p_hi = 1.0, 99.0
        view = replace(view, p_lo=float(p_lo), p_hi=float(p_hi))
    view = replace(view, cmap=cmap, alpha=float(alpha))

    sb.divider()
    sb.caption("The address bar holds this whole view: copy it to share it. "
               "Uploaded images and checkpoints cannot travel in a URL.")
    for message in url_messages:
        st.warning(message, icon=":material/link_off:")
    return view


_NORM_LABELS = {"raw": "raw", "minmax": "min-max", "max": "max", "percentile": "percentile"}


def _cls(names: Sequence[str], i: int) -> str:
    return names[i] if 0 <= i < len(names) else f"class {i}"


def _default_image(samples: list[SampleChoice], model_id: str) -> str:
    for s in samples:
        if s.suggested_model == model_id:
            return s.id
    return samples[0].id if samples else ""


def _flash_area(container, area: str) -> None:
    flash = st.session_state.get("_flash")
    if flash and flash[0] == area:
        container.error(flash[1], icon=":material/error:")
        del st.session_state["_flash"]


@contextmanager
def _sidebar_errors(container) -> Iterator[None]:
    try:
        yield
    except (GradLensError, ValueError) as exc:
        container.error(error_message(exc), icon=":material/error:")


# ------------------------------------------------------------------------------------------
# page runner


def run_page(
    page: str,
    show: Callable[[ViewState], None],
    controls: Callable[[ViewState], ViewState] | None = None,
) -> ViewState:
    """Run one page: sidebar -> page controls -> commit (session + URL) -> ``show(state)``.

    ``show`` is the page's single function that draws everything from a :class:`ViewState`
    (what a saved snapshot restores).
    """
    if page not in PAGES:
        raise ValueError(f"page={page!r} is not one of {PAGES}")
    st.set_page_config(page_title=f"{PAGE_TITLES[page]} · GradLens", page_icon=":material/blur_on:", layout="wide")
    first_run = _VIEW_KEY not in st.session_state
    view = current_view(page)
    if first_run and view.page != page and "page" in st.query_params:
        target_page = view.page
        commit(replace(view, page=target_page))
        st.switch_page(PAGE_FILES[target_page])
    view = replace(view, page=page)
    view = _sidebar(view, page)
    if controls is not None:
        with shown_errors():
            view = controls(view)
    commit(view)
    with shown_errors():
        show(view)
    return view
