"""What the dashboard asks of the library, without streamlit: models, images, layers, maps, curves.

Plain functions over :mod:`methods`; :mod:`dashboard.app.cache` wraps them in Streamlit caches and
locks. An image enters once per script run as an :class:`ImageContext` (the picture, the model
input and the model's view of it, each made once) and every computation takes that context.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

import methods
from dashboard.core import devices, menus
from dashboard.core.faithfulness import baselines
from dashboard.core.params import InvalidParam
from dashboard.core.state import Choices, ViewState
from methods import models as zoo
from methods.cams.core.blocks import block_layers
from methods.cams.core.layers import LayerInfo, candidate_layers, default_layer
from methods.cams.core.options import OptionInfo, build_options
from methods.errors import GradLensError, LayerError, OptionError, TargetError, suggest
from methods.metrics.agreement import maps as agreement
from methods.metrics.sanity import check as sanity
from methods.viz.normalize import MODES, SCOPES

__all__ = [
    "COLORMAP_NAMES",
    "NORM_MODES",
    "NORM_SCOPES",
    "ModelHandle",
    "ImageContext",
    "MapBundle",
    "merge",
    "load_checkpoint",
    "checkpoint_architectures",
    "image_context",
    "predict",
    "layer_list",
    "block_list",
    "resolution",
    "check_layer",
    "check_target",
    "compute_maps",
    "method_label",
    "check_options",
    "parse_option",
    "MapRequest",
    "map_request",
    "choices",
    "normalized",
]

COLORMAP_NAMES: tuple[str, ...] = tuple(methods.COLORMAPS)
NORM_MODES: tuple[str, ...] = tuple(MODES)
NORM_SCOPES: tuple[str, ...] = tuple(SCOPES)

# ------------------------------------------------------------------------------------------
# data types


@dataclass(eq=False)
class ModelHandle:
    """A loaded model shared by every session, the lock that serialises its use, and the device its
    weights are on (``"cpu"``, ``"cuda:0"`` ...: :mod:`dashboard.core.devices`)."""

    id: str
    loaded: Any  # methods.models.loaded.LoadedModel
    lock: threading.Lock
    device: str = "cpu"

    @property
    def key(self) -> str:
        """The cache key of the model: its id on its device (``"scenes_vgg@cuda:0"``)."""
        return f"{self.id}@{self.device}"

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.loaded.class_names)


@dataclass(frozen=True, eq=False)
class ImageContext:
    """One image as one model sees it, made once per script run and handed down.

    Attributes:
        image_id: sample name or ``"upload:<digest>"``.
        key: the cache key of the image (its id and a digest of its pixels).
        image: (H, W, 3) uint8, the picture as loaded.
        x: (1, 3, h, w) float32 model input (``LoadedModel.preprocess``, run once).
        view: (h, w, 3) uint8, the input with the normalization undone (what the model sees).
    """

    image_id: str
    key: str
    image: np.ndarray
    x: torch.Tensor
    view: np.ndarray


@dataclass(frozen=True)
class MapBundle:
    """Raw maps of one image: what a page draws, and what a snapshot stores.

    Attributes:
        image: (h, w, 3) uint8, the image as the model sees it (after its resize).
        maps: ``maps[method][layer]`` = RAW (h', w') float32 map.
        target: the explained class index.
        probs: (K,) softmax probabilities of the model for the image.
        class_names: one per class.
        seconds: method -> wall time of its computation.
        extras: a page's own JSON-friendly data for redrawing a saved view (Compare): ``metrics["extras"]``.
        notes: method -> what the reader must know about its maps (``Explanation.notes``: a signed
            layer, an extension of a rule, a slower route), shown beside the maps and saved with them.
        precision: method -> the precision its maps were computed in (``Explanation.precision``).
        original: (H, W, 3) uint8, the user's picture at its own size and aspect (None: draw on
            ``image``; a stored snapshot keeps the model's view only).
        placement: where the model input lies on ``original`` (``LoadedModel.placement``): maps are
            drawn there, and what the model did not see (outside a centre crop) is dimmed.
    """

    image: np.ndarray
    maps: dict[str, dict[str, np.ndarray]]
    target: int
    probs: np.ndarray
    class_names: tuple[str, ...]
    seconds: dict[str, float]
    extras: dict = field(default_factory=dict)
    notes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    precision: dict[str, str] = field(default_factory=dict)
    original: np.ndarray | None = None
    placement: Any = None

    @property
    def picture(self) -> np.ndarray:
        """What maps are drawn on: the user's own picture when known, else the model's view."""
        return self.original if self.original is not None and self.placement is not None else self.image

    @property
    def place(self) -> Any:
        """The placement to draw with (``render_views(bundle.picture, m, placement=bundle.place)``)."""
        return self.placement if self.original is not None else None

    @property
    def target_name(self) -> str:
        return self.class_names[self.target] if 0 <= self.target < len(self.class_names) else f"class {self.target}"


def merge(first: MapBundle | None, second: MapBundle | None) -> MapBundle | None:
    """Union of two bundles of the same image, model and target."""
    if first is None or second is None:
        return first or second
    return replace(
        first,
        maps={**first.maps, **second.maps},
        seconds={**first.seconds, **second.seconds},
        notes={**first.notes, **second.notes},
        precision={**first.precision, **second.precision},
    )


# ------------------------------------------------------------------------------------------
# models


def load_checkpoint(data: bytes, *, arch: str, num_classes: int, class_names: Sequence[str] | None):
    """An uploaded checkpoint as a ``LoadedModel`` (read safely by the zoo)."""
    return zoo.load_checkpoint(
        io.BytesIO(data), arch=arch, num_classes=num_classes, class_names=list(class_names) if class_names else None
    )


def checkpoint_architectures() -> list[str]:
    """Architectures an uploaded checkpoint may have; the catalog's own ones first."""
    archs = list(zoo.checkpoint_architectures())
    familiar = [m.id for m in menus.model_choices() if m.id in archs]
    return familiar + [a for a in archs if a not in familiar]


# ------------------------------------------------------------------------------------------
# images


def image_context(loaded, image_id: str, key: str, image: np.ndarray) -> ImageContext:
    """Preprocess ``image`` for ``loaded`` ONCE: the input ``x`` and the model's view of it."""
    x = torch.as_tensor(loaded.preprocess(image))  # (3, h, w)
    x = x[None] if x.ndim == 3 else x  # (1, 3, h, w)
    return ImageContext(image_id, key, image, x, loaded.denormalize(x[0]))


# ------------------------------------------------------------------------------------------
# model computations (callers hold the model's lock)


def predict(loaded, x: torch.Tensor) -> np.ndarray:
    """Softmax probabilities (K,) of the (1, 3, h, w) input."""
    with torch.no_grad():
        logits = loaded.model(x)  # (1, K)
    return logits.softmax(dim=1)[0].float().cpu().numpy()


def layer_list(loaded) -> tuple[list[LayerInfo], str]:
    """Candidate layers in forward order (``methods.cams.core.layers.LayerInfo``) and the default layer."""
    size = tuple(loaded.input_size)
    infos = candidate_layers(loaded.model, size)
    default = getattr(loaded, "default_layer", None) or default_layer(loaded.model, size)
    return list(infos), default


def block_list(loaded) -> list[LayerInfo]:
    """The candidate layers that end a block (``methods.cams.core.blocks.block_layers``): one map per
    block, in forward order (20 for EfficientNet-Lite0, of 261 candidate layers)."""
    return list(block_layers(loaded.model, tuple(loaded.input_size)))


def resolution(info: LayerInfo) -> str:
    """A layer's output as ``"C×h×w"`` text."""
    c, h, w = info.shape
    return f"{c}×{h}×{w}"


def check_layer(layer: str | None, infos: Sequence[LayerInfo], default: str, model_id: str) -> str:
    """``layer`` checked against the candidate layers; None -> the default layer."""
    if layer is None:
        return default
    names = [i.name for i in infos]
    if layer not in names:
        raise LayerError(
            f"layer {layer!r} is not a layer of {model_id} with a spatial output.{suggest(layer, names)} "
            f"The default layer is {default!r}."
        )
    return layer


def check_target(target: int | None, probs: np.ndarray, model_id: str) -> int:
    """The class to explain: ``target``, or the top-1 prediction when None."""
    if target is None:
        return int(np.argmax(probs))
    if not 0 <= target < len(probs):
        raise TargetError(
            f"target class {target} does not exist: {model_id} has {len(probs)} classes (0..{len(probs) - 1})"
        )
    return int(target)


def compute_maps(
    loaded,
    x: torch.Tensor,
    method_names: Sequence[str],
    layers: Sequence[str],
    target: int,
    options: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """RAW maps of several methods at several layers from ONE ``explain_many`` call.

    Returns ``{"maps": {method: {layer: (h, w) float32}}, "seconds": {method: s}, "notes": {method:
    (note, ...)}, "precision": {method: "fp32" | "bf16"}}``. The maps stay on the model's device
    until every one is made, then leave it in ONE transfer (:func:`devices.host_arrays`).
    """
    results = methods.explain_many(
        loaded, x, list(method_names), layers=list(layers), target=target, options=options or {}, progress=progress
    )
    keys = [(m, l) for m, e in results.items() for l in e.layers]
    host = devices.host_arrays([results[m].maps[l][0] for m, l in keys])  # (h, w) each, one copy
    maps: dict[str, dict[str, np.ndarray]] = {m: {} for m in results}
    for (m, l), array in zip(keys, host):
        maps[m][l] = array
    return {
        "maps": maps,
        "seconds": {m: float(e.seconds) for m, e in results.items()},
        "notes": {m: tuple(e.notes) for m, e in results.items()},
        "precision": {m: e.precision for m, e in results.items()},
    }


# ------------------------------------------------------------------------------------------
# the registry: methods and their typed options


def method_label(name: str) -> str:
    try:
        return methods.get_method(name).label
    except GradLensError:
        return name


def check_options(name: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` validated by the method's own options dataclass (raises the library's
    OptionError, whose message names the method, the option and the valid values)."""
    spec = methods.get_method(name)
    built = build_options(spec.cls.options_class, spec.label, dict(values))
    return {k: built.as_dict()[k] for k in values}


def _typed(info: OptionInfo, text: str) -> Any:
    if info.kind == "bool":
        if text.lower() not in ("true", "false", "1", "0"):
            raise InvalidParam(f"{info.name} must be true or false")
        return text.lower() in ("true", "1")
    if info.kind == "choice" or (info.kind == "int_or_choice" and text in info.choices):
        return text
    kind = float if info.kind == "float" else int
    try:
        return kind(text)
    except ValueError:  # kind() of this one string, nothing else
        raise InvalidParam(f"{info.name}={text!r} is not {'a number' if kind is float else 'a whole number'}") from None


def parse_option(method: str, name: str, text: str) -> Any:
    """One option from a URL (``Choices.parse_option``): typed by its declaration, checked by the
    library; raises :class:`~dashboard.core.state.InvalidParam` with the library's reason."""
    infos = {o.name: o for o in methods.get_method(method).options}
    if name not in infos:
        raise InvalidParam(
            f"{method_label(method)} has no option {name!r}.{suggest(name, list(infos))} "
            f"Its options: {', '.join(infos) or 'none'}"
        )
    value = _typed(infos[name], text)
    try:
        return check_options(method, {name: value})[name]
    except OptionError as exc:
        raise InvalidParam(str(exc)) from None


@dataclass(frozen=True)
class MapRequest:
    """What one map computation asks for, read from a view without the model or streamlit: the
    cache key's parts before the model resolves the default layer and the top-1 class.

    Attributes:
        model: model id; image: image id ("" = the model's default sample).
        methods: method keys, computed by ONE ``explain_many`` call.
        layers: layer names; None = the model's default layer.
        target: class index; None = the model's top-1 prediction.
        options: the methods' non-default options as sorted JSON (``explain_many``'s ``options``).
    """

    model: str
    image: str
    methods: tuple[str, ...]
    layers: tuple[str | None, ...]
    target: int | None
    options: str


def map_request(state: ViewState, method_names: Sequence[str], layers: Sequence[str | None]) -> MapRequest:
    """The request for RAW maps of ``method_names`` at ``layers`` in ``state``'s view (pure: the
    one step between a page and :func:`dashboard.app.cache.maps`).

    Examples:
        >>> map_request(ViewState(model="scenes_vgg", options=(("scorecam", "batch_size", 8),)),
        ...             ["gradcam", "scorecam"], [None]).options
        '{"scorecam": {"batch_size": 8}}'
    """
    options = {m: state.options_of(m) for m in method_names if state.options_of(m)}
    return MapRequest(
        state.model, state.image, tuple(method_names), tuple(layers), state.target, json.dumps(options, sort_keys=True)
    )


def choices() -> Choices:
    """The valid names a URL or a stored view is checked against."""
    return Choices(
        models=tuple(m.id for m in menus.model_choices()),
        images=tuple(s.id for s in menus.sample_choices()),
        methods=tuple(s.name for s in methods.list_methods()),
        norms=NORM_MODES,
        scopes=NORM_SCOPES,
        colormaps=COLORMAP_NAMES,
        baselines=baselines(),
        parse_option=parse_option,
        metrics=agreement.METRICS,
        modes=sanity.MODES,
        devices=devices.present(),
    )


def normalized(maps: Sequence[np.ndarray], state: ViewState, **overrides: Any) -> list[np.ndarray]:
    """The state's normalization applied to raw maps (never touches the model)."""
    opts = dict(mode=state.norm, relu=state.relu, scope=state.scope, percentiles=(state.p_lo, state.p_hi))
    opts.update(overrides)
    return [np.asarray(m) for m in methods.normalize_many(list(maps), **opts)]
