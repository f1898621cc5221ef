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
import hashlib
import io
import pickle
import re
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, BinaryIO, Literal, Mapping, Sequence, Union
from urllib.parse import urlparse

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from methods.errors import CheckpointError, UnknownModelError, WeightsNotAvailableError

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
CheckpointSource = Union[str, Path, bytes, bytearray, memoryview, BinaryIO]


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
                :func:`methods.images.load_image` to get one from any file).
        """
        arr = np.asarray(image)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 1:
            raise ValueError(
                f"image must be a uint8 array of shape (H, W, 3), got dtype {arr.dtype} and shape "
                f"{arr.shape}; methods.images.load_image() returns that from any image file"
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
    default_layer: str  # checked against methods.layers.default_layer in tests/test_zoo.py


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
    """``methods.scene_models`` if it is part of this install, else None (imported lazily)."""
    try:
        from methods import scene_models
    except ModuleNotFoundError as exc:
        if exc.name in ("methods.scene_models", "methods.scenes"):
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
    the safetensors file in ``methods/assets/``.

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
    from methods.scenes import CLASS_NAMES

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


_DENSENET_OLD_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def _densenet_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision's DenseNet files use old names (``norm.1.weight``); the modules are ``norm1``."""
    out = {}
    for key, value in state.items():
        m = _DENSENET_OLD_KEY.match(key)
        out[m.group(1) + m.group(2) if m else key] = value
    return out


# ----------------------------------------------------------------------------- checkpoints


def _read_bytes(source: CheckpointSource) -> tuple[bytes, str]:
    """The raw bytes of ``source`` and a short description for messages."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            return path.read_bytes(), f"'{path.name}'"
        except FileNotFoundError as exc:
            raise CheckpointError(f"No such checkpoint file: '{path}'.") from exc
        except OSError as exc:
            raise CheckpointError(f"Cannot read the checkpoint file '{path}': {exc}.") from exc
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "the uploaded checkpoint"
    name = getattr(source, "name", None)
    what = f"'{Path(name).name}'" if isinstance(name, str) and name else "the uploaded checkpoint"
    if hasattr(source, "getvalue"):
        data = source.getvalue()
    elif hasattr(source, "read"):
        data = source.read()
    else:
        raise TypeError(
            f"source must be a path, bytes or a binary file-like object, got {type(source).__name__}"
        )
    if isinstance(data, str):
        raise TypeError("the checkpoint stream is text; open the file in binary mode ('rb')")
    return bytes(data), what


_CODE_REFUSED = (
    "this file contains Python objects that could run code ({what}); GradLens only loads "
    "tensors. Save only the state_dict: torch.save(model.state_dict(), path)"
)


def _torch_load(data: bytes | Path) -> Any:
    """``torch.load`` with ``weights_only=True`` from bytes or a file; errors become CheckpointError.

    A file in the zip format is memory-mapped (``mmap=True``): a 500 MB VGG-16 file is not read
    into memory twice, and its pages are shared between processes.
    """
    try:
        if isinstance(data, Path):
            with open(data, "rb") as fh:
                zipped = fh.read(4) == b"PK\x03\x04"
            return torch.load(data, map_location="cpu", weights_only=True, mmap=zipped)
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if found:
            raise CheckpointError(_CODE_REFUSED.format(what=f"it refers to {found.group(1)}")) from exc
        raise CheckpointError(
            "this is not a readable PyTorch checkpoint (the weights-only loader refused it: "
            f"{str(exc).splitlines()[-1][:200]}). If it was saved with torch.save(model), "
            + _CODE_REFUSED.format(what="a whole pickled model").split("; ", 1)[1]
            + "."
        ) from exc
    except Exception as exc:  # noqa: BLE001 - any failure of the loader means "not readable"
        first = str(exc).split(". ")[0][:160]
        raise CheckpointError(
            f"this is not a readable PyTorch checkpoint ({type(exc).__name__}: {first}). "
            "The file may be truncated or corrupt; save it again with torch.save(model.state_dict(), path)."
        ) from exc


def _is_safetensors(data: bytes) -> bool:
    """safetensors layout: 8-byte little-endian header length, then a JSON object."""
    if len(data) < 10:
        return False
    n = int.from_bytes(data[:8], "little")
    return 2 <= n <= len(data) - 8 and data[8:9] == b"{"


def _safetensors_load(data: bytes) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    try:
        return st_load(data)
    except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
        raise CheckpointError(f"this safetensors file cannot be read ({exc}); save it again.") from exc


def _state_dict_of(obj: Any) -> dict[str, torch.Tensor]:
    """The state_dict in ``obj``: itself, or under "state_dict" / "model" / "model_state_dict".
    A ``module.`` prefix on every key (saved from DataParallel) is removed."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"expected a state_dict (a dict of tensors), found a {type(obj).__name__}. "
            "Save it with torch.save(model.state_dict(), path)."
        )

    def tensors_only(d: Mapping) -> bool:
        return len(d) > 0 and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in d.items())

    state = obj if tensors_only(obj) else None
    for key in ("state_dict", "model", "model_state_dict"):
        if state is None and isinstance(obj.get(key), Mapping) and tensors_only(obj[key]):
            state = obj[key]
    if state is None:
        keys = ", ".join(repr(k) for k in list(obj)[:8])
        raise CheckpointError(
            f"no state_dict found: the file holds a dict with keys {keys} that is neither a dict of "
            "tensors nor holds one under 'state_dict', 'model' or 'model_state_dict'. "
            "Save it with torch.save(model.state_dict(), path)."
        )
    state = dict(state)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _classifier_key(model: nn.Module) -> str | None:
    """``<name>.weight`` of the last Linear (else last Conv2d) module: the class-score layer."""
    last_linear = last_conv = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last_linear = name
        elif isinstance(module, nn.Conv2d):
            last_conv = name
    name = last_linear if last_linear is not None else last_conv
    return f"{name}.weight" if name is not None else None


def _mismatch_message(model: nn.Module, expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], num_classes: int) -> str | None:
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [(k, tuple(state[k].shape), tuple(expected[k].shape)) for k in expected if k in state and state[k].shape != expected[k].shape]
    if not (missing or unexpected or shapes):
        return None

    def few(keys: list[str]) -> str:
        return ", ".join(repr(k) for k in keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")

    parts: list[str] = []
    cls = _classifier_key(model)
    cls_bad = [s for s in shapes if s[0] == cls]
    if cls_bad:
        _, got, want = cls_bad[0]
        parts.append(
            f"the classifier '{cls}' has {got[0]} outputs in the file (shape {got}) but num_classes="
            f"{num_classes} expects shape {want}; pass num_classes={got[0]}"
        )
    cls_bias = cls[: -len("weight")] + "bias" if cls else None
    other = [s for s in shapes if s[0] not in (cls, cls_bias if cls_bad else None)]
    if other:
        parts.append("shape mismatch: " + "; ".join(f"'{k}' is {g} in the file, the model needs {w}" for k, g, w in other[:5]))
    if missing:
        parts.append(f"{len(missing)} missing key(s): {few(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {few(unexpected)}")
    return "; ".join(parts) + "."


def _build(arch: str, state: dict[str, torch.Tensor], kwargs: dict, *, context: str, num_classes: int = 1000) -> nn.Module:
    """Build ``arch`` and load ``state`` strictly; mismatches become one explanatory CheckpointError.

    The architecture is first built on the ``meta`` device (no random init, which takes seconds
    for VGG-16) and the tensors are then assigned; floating tensors are cast to the module's dtype.
    """
    from torchvision.models import get_model

    with torch.device("meta"):
        template = get_model(arch, weights=None, **kwargs)
    expected = template.state_dict()
    # Files saved before PyTorch 0.4.1 (some torchvision weights) have no BatchNorm
    # `num_batches_tracked`; torch itself fills 0 for them, and so do we.
    state = dict(state)
    for key in expected:
        if key.endswith(".num_batches_tracked") and key not in state:
            state[key] = torch.tensor(0, dtype=torch.long)
    problem = _mismatch_message(template, expected, state, num_classes)
    if problem:
        raise CheckpointError(context + problem)
    state = {
        k: (v.to(expected[k].dtype) if v.is_floating_point() and expected[k].is_floating_point() else v)
        for k, v in state.items()
    }
    template.load_state_dict(state, strict=True, assign=True)
    if any(t.is_meta for t in chain(template.parameters(), template.buffers())):
        model = get_model(arch, weights=None, **kwargs)  # a tensor the state_dict does not carry
        model.load_state_dict(state, strict=True)
        return model.eval()
    return template.eval()


def _probe_default_layer(arch: str, kwargs: dict, size: tuple[int, int]) -> str:
    """methods.layers.default_layer on a ``meta``-device copy: shapes only, no arithmetic (a real
    CPU probe of e.g. GoogLeNet takes seconds)."""
    from torchvision.models import get_model

    from methods.layers import default_layer

    with torch.device("meta"):
        return default_layer(get_model(arch, weights=None, **kwargs), input_size=size)


def checkpoint_architectures() -> list[str]:
    """Architecture names :func:`load_checkpoint` accepts: every torchvision classification model,
    sorted. Only convolutional ones give maps (a ViT has no spatial 4-D layer)."""
    import torchvision.models as tvm

    return sorted(tvm.list_models(module=tvm))


def load_checkpoint(
    source: CheckpointSource,
    *,
    arch: str,
    num_classes: int,
    class_names: Sequence[str] | None = None,
    input_size: int | tuple[int, int] = (224, 224),
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    name: str | None = None,
) -> LoadedModel:
    """Load your own weights for a torchvision architecture, safely.

    The file must hold a state_dict: ``torch.save(model.state_dict(), path)`` (a dict holding one
    under ``"state_dict"``, ``"model"`` or ``"model_state_dict"`` also works; a ``module.`` prefix
    from DataParallel is removed), or a ``.safetensors`` file (recognised by content). It is read
    with ``torch.load(weights_only=True, map_location="cpu")``: nothing in it is executed.

    Args:
        source: path, bytes, or binary file-like (a Streamlit upload).
        arch: a torchvision classification architecture name (``"resnet18"``, ``"vgg16"`` ...).
        num_classes: outputs of the classifier; must match the file.
        class_names: one name per class; default ``("class 0", "class 1", ...)``.
        input_size, mean, std: preprocessing; default 224 x 224 with ImageNet mean/std (what
            torchvision-style training uses). Set them to your training values.
        name: the LoadedModel's name; default ``"<arch>-<first 8 hex of sha256>"``.

    Returns:
        :class:`LoadedModel` with ``source="checkpoint"`` and ``digest`` = sha256 of the bytes.

    Raises:
        CheckpointError: unreadable or empty file; Python objects that could run code; no
            state_dict; missing / unexpected keys or shape mismatches (a wrong ``num_classes`` is
            named as such).
        UnknownModelError (a ValueError): unknown ``arch``.
        ValueError: bad ``num_classes``, ``class_names`` length, ``input_size``, ``mean``, ``std``.
    """
    archs = checkpoint_architectures()
    if arch not in archs:
        raise UnknownModelError(
            f"unknown arch {arch!r}.{_suggest(arch, archs)} arch must be a torchvision "
            f"classification model name, e.g. {', '.join(_TORCHVISION)}."
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if class_names is None:
        names = tuple(f"class {i}" for i in range(num_classes))
    else:
        names = tuple(str(c) for c in class_names)
        if len(names) != num_classes:
            raise ValueError(f"class_names has {len(names)} names but num_classes={num_classes}; give one name per class")
    size = _size2(input_size)
    mean3, std3 = _floats3(mean, "mean"), _floats3(std, "std")

    data, what = _read_bytes(source)
    if not data:
        raise CheckpointError(f"{what[:1].upper() + what[1:]} is empty (0 bytes).")
    digest = hashlib.sha256(data).hexdigest()
    kind = "safetensors" if _is_safetensors(data) else "state_dict"
    try:
        state = _safetensors_load(data) if kind == "safetensors" else _state_dict_of(_torch_load(data))
        if not state:
            raise CheckpointError("the file holds no tensors.")
    except CheckpointError as exc:
        raise CheckpointError(f"Cannot load {what}: {exc}") from exc
    kwargs: dict[str, Any] = {"num_classes": num_classes}
    if arch in ("googlenet", "inception_v3") and not any(k.startswith(("aux1.", "aux2.", "AuxLogits.")) for k in state):
        kwargs.update(aux_logits=False, init_weights=False)
    if arch.startswith("densenet"):
        state = _densenet_keys(state)
    model = _build(arch, state, kwargs, context=f"{what[:1].upper() + what[1:]} does not fit arch={arch!r}: ", num_classes=num_classes)

    known = _TORCHVISION.get(arch)
    layer = known.default_layer if known else _probe_default_layer(arch, kwargs, size)
    return LoadedModel(
        name=name or f"{arch}-{digest[:8]}",
        model=model,
        input_size=size,
        mean=mean3,
        std=std3,
        class_names=names,
        default_layer=layer,
        source="checkpoint",
        digest=digest,
        note=(
            f"{arch} with weights from {what} ({kind}, sha256 {digest[:12]}), {num_classes} classes; "
            f"input {size[0]}x{size[1]}, mean {mean3}, std {std3}."
        ),
    )
