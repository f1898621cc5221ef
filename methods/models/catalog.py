"""The model catalog: bundled scene models, torchvision ImageNet models, and uploaded checkpoints.

Everything here returns a :class:`LoadedModel`: the ``nn.Module`` in eval mode on the CPU plus
what is needed to use it (input size, normalization, class names, default layer).

Safety and offline rules:

* Nothing is downloaded unless ``allow_download=True``. torchvision weights are read from the
  local torch hub cache, ``$TORCH_HOME/hub/checkpoints/<file name of the weights URL>`` (the
  directory of ``torch.hub.get_dir()``); a missing file is a :class:`WeightsNotAvailableError`
  raised at once, naming the file and how to get it.
* Every file is read with ``torch.load(..., map_location="cpu", weights_only=True)`` (or as
  safetensors), so an uploaded pickle can never run code. Files that need more than tensors and
  plain containers are refused with a :class:`CheckpointError`.

Deviation from torchvision's preprocessing: torchvision's ImageNet weights come with
"resize the short side to 256 (or 232/236), centre-crop 224". :meth:`LoadedModel.preprocess`
instead resizes the **whole** image to 224 x 224 (bilinear, antialiased), so that a map covers the
full picture the user sees. Non-square images are squeezed; accuracy can drop slightly compared with
the published numbers.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence
from urllib.parse import urlparse

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from methods.errors import CheckpointError, UnknownModelError, WeightsNotAvailableError
from methods.models.weight_files import _build, _densenet_keys, _state_dict_of, _torch_load

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Source",
    "LoadedModel",
    "ModelEntry",
    "list_models",
    "model_names",
    "weights_file",
    "load_model",
    "load_checkpoint",
    "checkpoint_architectures",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

Source = Literal["bundled", "torchvision", "checkpoint"]


# ----------------------------------------------------------------------------- LoadedModel


def _floats3(value: Any, what: str) -> tuple[float, float, float]:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3 or not all(np.isfinite(out)):
        raise ValueError(f"{what} must be three finite numbers (R, G, B), got {value!r}")
    return out  # type: ignore[return-value]


def _size2(value: Any, what: str = "input_size") -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    )
    if not ok:
        raise ValueError(f"{what} must be (height, width) with two positive ints, got {value!r}")
    return int(value[0]), int(value[1])


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model ready to explain: the module (eval mode, CPU) and how to feed it.

    Equality and hashing are by identity (two loads are two models), so it can be a cache value.

    Attributes:
        name: catalog name (``"vgg16"``) or, for checkpoints, ``"<arch>-<first 8 hex of sha256>"``.
        model: the ``nn.Module``, eval mode.
        input_size: ``(H, W)`` the image is resized to.
        mean, std: per-channel normalization of [0, 1] RGB.
        class_names: one name per output logit.
        default_layer: module name to explain when none is chosen.
        source: ``"bundled"``, ``"torchvision"`` or ``"checkpoint"``.
        digest: sha256 (hex) of an uploaded checkpoint's bytes; None otherwise.
        note: human text: which weights, from where.
    """

    name: str
    model: nn.Module
    input_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    class_names: tuple[str, ...]
    default_layer: str
    source: Source
    digest: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(self.model).__name__}")
        if self.source not in ("bundled", "torchvision", "checkpoint"):
            raise ValueError(f"source must be 'bundled', 'torchvision' or 'checkpoint', got {self.source!r}")
        std = _floats3(self.std, "std")
        if min(std) <= 0:
            raise ValueError(f"std must be positive, got {self.std!r}")
        object.__setattr__(self, "input_size", _size2(self.input_size))
        object.__setattr__(self, "mean", _floats3(self.mean, "mean"))
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def _stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        mean = torch.tensor(self.mean, dtype=torch.float32).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(3, 1, 1)
        return mean, std

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 RGB -> normalized (3, h, w) float32 model input, ``(h, w) = input_size``.

        The whole image is resized to ``input_size`` (bilinear, antialiased when shrinking, like
        PIL's bilinear), **without** torchvision's centre crop, so that the map covers exactly the
        picture shown (see the module docstring), then scaled to [0, 1] and normalized:
        ``x = (pixel / 255 - mean) / std`` per channel.

        Raises:
            ValueError: not a uint8 array of shape (H, W, 3) with H, W >= 1 (use
                :func:`methods.data.images.load_image` to get one from any file).
        """
        arr = np.asarray(image)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 1:
            raise ValueError(
                f"image must be a uint8 array of shape (H, W, 3), got dtype {arr.dtype} and shape "
                f"{arr.shape}; methods.data.images.load_image() returns that from any image file"
            )
        x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None].float()  # (1, 3, H, W)
        if tuple(x.shape[2:]) != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False, antialias=True)
        mean, std = self._stats()
        return (x[0] / 255.0 - mean) / std  # (3, h, w)

    def preprocess_batch(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """A list of (H_i, W_i, 3) uint8 images (sizes may differ) -> (N, 3, h, w) input batch."""
        if isinstance(images, np.ndarray) and images.ndim == 4:
            images = list(images)
        if len(images) == 0:
            raise ValueError("images is empty; give at least one (H, W, 3) uint8 image")
        return torch.stack([self.preprocess(im) for im in images])  # (N, 3, h, w)

    def denormalize(self, x: torch.Tensor) -> np.ndarray:
        """Undo :meth:`preprocess`'s normalization: (3, h, w) or (N, 3, h, w) -> (h, w, 3) or
        (N, h, w, 3) uint8 (rounded, clipped to 0..255). The resize is not undone."""
        if not isinstance(x, torch.Tensor) or x.dim() not in (3, 4) or x.shape[-3] != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a tensor of shape (3, h, w) or (N, 3, h, w), got {shape}")
        mean, std = self._stats()
        img = (x.detach().float().cpu() * std + mean) * 255.0  # (..., 3, h, w)
        img = img.round().clamp(0, 255).to(torch.uint8)
        return img.movedim(-3, -1).contiguous().numpy()  # (..., h, w, 3)


# ----------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class ModelEntry:
    """One catalog row (what the dashboard's model menu shows).

    ``available`` is True when the model can be loaded without a download (bundled weight file
    present, or torchvision weights in the local cache); ``expected_file`` is where that file
    is (or must be put).
    """

    name: str
    label: str
    source: Source
    input_size: tuple[int, int]
    description: str
    available: bool
    expected_file: str | None


@dataclass(frozen=True)
class _TV:
    label: str
    description: str
    default_layer: str  # checked against methods.cams.layers.default_layer in tests/test_zoo.py


_TORCHVISION: dict[str, _TV] = {
    "vgg16": _TV("VGG-16", "Plain 3x3 conv stacks (2014); 14x14 map at features.29.", "features.29"),
    "resnet18": _TV("ResNet-18", "Small residual network; 7x7 map at layer4.", "layer4"),
    "resnet50": _TV("ResNet-50", "Bottleneck residual network (V2 weights); 7x7 map at layer4.", "layer4"),
    "densenet121": _TV("DenseNet-121", "Densely connected blocks; 7x7 map at features.norm5.", "features.norm5"),
    "mobilenet_v3_large": _TV("MobileNetV3-Large", "Light mobile network; 7x7 map at features.16.", "features.16"),
    "efficientnet_b0": _TV("EfficientNet-B0", "Compound-scaled MBConv network; 7x7 map at features.8.", "features.8"),
    "convnext_tiny": _TV("ConvNeXt-Tiny", "Modernised ResNet (2022); 7x7 map at features.7.", "features.7"),
}

_BUNDLED: dict[str, tuple[str, str]] = {
    "scenes_vgg": ("Scenes VGG (bundled)", "Small VGG-style CNN trained on GradLens synthetic scenes; no download."),
    "scenes_resnet": ("Scenes ResNet (bundled)", "Small ResNet-style CNN trained on GradLens synthetic scenes; no download."),
}


def _scene_models():
    """``methods.models.scene_nets`` if it is part of this install, else None (imported lazily)."""
    try:
        from methods.models import scene_nets as scene_models
    except ModuleNotFoundError as exc:
        if exc.name in ("methods.models.scene_nets", "methods.data.scenes"):
            return None
        raise
    return scene_models


def model_names() -> list[str]:
    """Every name :func:`load_model` accepts, bundled first."""
    return list(_BUNDLED) + list(_TORCHVISION)


def _suggest(value: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(value).lower(), [c.lower() for c in choices], n=3, cutoff=0.5)
    lookup = {c.lower(): c for c in choices}
    return f" Did you mean {', '.join(repr(lookup[c]) for c in close)}?" if close else ""


def _unknown_model(name: Any) -> UnknownModelError:
    names = model_names()
    return UnknownModelError(
        f"unknown model name {name!r}.{_suggest(name, names)} Known models: {', '.join(names)}. "
        "For another torchvision architecture with your own weights use load_checkpoint(..., arch=...)."
    )


def _tv_weights(name: str):
    from torchvision.models import get_model_weights

    return get_model_weights(name).DEFAULT


def _cache_path(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


def weights_file(name: str) -> Path:
    """The local file :func:`load_model` reads for ``name`` (it may not exist yet).

    torchvision: ``<torch.hub.get_dir()>/checkpoints/<basename of the weights URL>``, e.g.
    ``~/.cache/torch/hub/checkpoints/vgg16-397923af.pth`` (moves with ``$TORCH_HOME``). Bundled:
    the safetensors file in ``methods/models/assets/``.

    Raises:
        UnknownModelError: unknown ``name``.
    """
    if name in _TORCHVISION:
        return _cache_path(_tv_weights(name).url)
    if name in _BUNDLED:
        sm = _scene_models()
        if sm is None:
            raise WeightsNotAvailableError(f"bundled model {name!r} needs methods/scene_models.py, which is not installed")
        return Path(sm.weights_path(name))
    raise _unknown_model(name)


def _tv_input_size(weights) -> tuple[int, int]:
    crop = list(weights.transforms().crop_size)
    return int(crop[0]), int(crop[-1])


def list_models() -> list[ModelEntry]:
    """The catalog: bundled models first (``scenes_vgg`` is the dashboard's default), then
    torchvision ImageNet models. ``available`` is checked on disk at each call."""
    entries: list[ModelEntry] = []
    sm = _scene_models()
    if sm is not None:
        size = _size2(sm.INPUT_SIZE)
        for name, (label, description) in _BUNDLED.items():
            path = Path(sm.weights_path(name))
            entries.append(ModelEntry(name, label, "bundled", size, description, path.is_file(), str(path)))
    for name, tv in _TORCHVISION.items():
        weights = _tv_weights(name)
        path = _cache_path(weights.url)
        entries.append(
            ModelEntry(name, tv.label, "torchvision", _tv_input_size(weights), tv.description, path.is_file(), str(path))
        )
    return entries


# ----------------------------------------------------------------------------- loading


def load_model(name: str, *, allow_download: bool = False) -> LoadedModel:
    """Load a catalog model (see :func:`list_models`) with its weights, in eval mode on the CPU.

    Args:
        name: ``"scenes_vgg"``, ``"scenes_resnet"`` or a torchvision name such as ``"vgg16"``.
        allow_download: keyword-only. If the torchvision weight file is not in the local cache,
            download it (from download.pytorch.org, hash-checked) instead of failing. Without
            it, no network call is ever made.

    Returns:
        :class:`LoadedModel`. torchvision models take 224 x 224 inputs with ImageNet mean/std and
        the 1000 ImageNet class names from ``weights.meta["categories"]``.

    Raises:
        UnknownModelError (a ValueError): unknown name; the message suggests close names.
        WeightsNotAvailableError: weights not on this machine (and ``allow_download`` is False, or
            the download failed), or the cached file is unreadable.
        CheckpointError: the cached file does not fit the architecture.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name in _BUNDLED:
        return _load_bundled(name)
    if name in _TORCHVISION:
        return _load_torchvision(name, allow_download=allow_download)
    raise _unknown_model(name)


def _load_bundled(name: str) -> LoadedModel:
    sm = _scene_models()
    if sm is None:
        raise WeightsNotAvailableError(f"bundled model {name!r} needs methods/scene_models.py, which is not installed")
    from methods.data.scenes import CLASS_NAMES

    model = sm.load_pretrained(name).eval()  # raises its own WeightsNotAvailableError subclass
    return LoadedModel(
        name=name,
        model=model,
        input_size=_size2(sm.INPUT_SIZE),
        mean=tuple(sm.MEAN),
        std=tuple(sm.STD),
        class_names=tuple(CLASS_NAMES),
        default_layer=sm.DEFAULT_LAYERS[name],
        source="bundled",
        note=f"{_BUNDLED[name][1]} Weights: {sm.weights_path(name)}.",
    )


def _missing_message(name: str, url: str, path: Path) -> str:
    return (
        f"The ImageNet weights of {name!r} are not on this machine: expected the file {path} "
        "(the torch hub cache; it follows $TORCH_HOME). GradLens does not download unless asked. "
        f"To get it: on a machine with internet, download {url} and copy it to {path}; or, when "
        f"online, call load_model({name!r}, allow_download=True). The bundled models "
        "'scenes_vgg' and 'scenes_resnet' need no download."
    )


def _download(name: str, url: str, path: Path) -> None:
    from torch.hub import HASH_REGEX, download_url_to_file

    match = HASH_REGEX.search(path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        download_url_to_file(url, str(path), hash_prefix=match.group(1) if match else None, progress=False)
    except Exception as exc:  # noqa: BLE001 - network, disk or hash errors all mean "not available"
        raise WeightsNotAvailableError(
            f"Downloading the weights of {name!r} from {url} failed ({exc}). "
            + _missing_message(name, url, path)
        ) from exc


def _load_torchvision(name: str, *, allow_download: bool) -> LoadedModel:
    weights = _tv_weights(name)
    path = _cache_path(weights.url)
    if not path.is_file():
        if not allow_download:
            raise WeightsNotAvailableError(_missing_message(name, weights.url, path))
        _download(name, weights.url, path)
    try:
        state = _torch_load(path)
    except (CheckpointError, OSError) as exc:
        raise WeightsNotAvailableError(
            f"The cached weight file {path} of {name!r} cannot be read: {exc} Delete it and fetch "
            f"{weights.url} again."
        ) from exc
    state = _state_dict_of(state)
    if name.startswith("densenet"):
        state = _densenet_keys(state)
    model = _build(name, state, {}, context=f"The cached weight file {path} does not fit {name!r}: ")
    tf = weights.transforms()
    acc = weights.meta.get("_metrics", {}).get("ImageNet-1K", {}).get("acc@1")
    return LoadedModel(
        name=name,
        model=model,
        input_size=_tv_input_size(weights),
        mean=tuple(tf.mean),
        std=tuple(tf.std),
        class_names=tuple(weights.meta["categories"]),
        default_layer=_TORCHVISION[name].default_layer,
        source="torchvision",
        note=f"torchvision {weights} (ImageNet-1k" + (f", top-1 {acc}%" if acc else "") + f") from {path}.",
    )


# Re-exported for callers of the catalog; defined in methods/checkpoints.py, which imports this
# module (so this import stays at the bottom, after everything it needs is defined).
from methods.models.checkpoints import checkpoint_architectures, load_checkpoint  # noqa: E402
