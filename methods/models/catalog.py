"""The model catalog: bundled scene models and torchvision ImageNet models, by name.

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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from methods.errors import UnknownModelError, WrongTypeError, suggest
from methods.models import scene_nets
from methods._checks import size2
from methods.models.loaded import LoadedModel, Source
from methods.models.torchvision_zoo import TORCHVISION, cache_path, load_torchvision, tv_input_size, tv_weights

__all__ = ["ModelEntry", "list_models", "model_names", "weights_file", "load_model"]


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


_BUNDLED: dict[str, tuple[str, str]] = {
    "scenes_vgg": ("Scenes VGG (bundled)", "Small VGG-style CNN trained on GradLens synthetic scenes; no download."),
    "scenes_resnet": ("Scenes ResNet (bundled)", "Small ResNet-style CNN trained on GradLens synthetic scenes; no download."),
}


def model_names() -> list[str]:
    """Every name :func:`load_model` accepts, bundled first."""
    return list(_BUNDLED) + list(TORCHVISION)


def _unknown_model(name: Any) -> UnknownModelError:
    names = model_names()
    return UnknownModelError(
        f"unknown model name {name!r}.{suggest(name, names)} Known models: {', '.join(names)}. "
        "For another torchvision architecture with your own weights use load_checkpoint(..., arch=...)."
    )


def weights_file(name: str) -> Path:
    """The local file :func:`load_model` reads for ``name`` (it may not exist yet).

    torchvision: ``<torch.hub.get_dir()>/checkpoints/<basename of the weights URL>``, e.g.
    ``~/.cache/torch/hub/checkpoints/vgg16-397923af.pth`` (moves with ``$TORCH_HOME``). Bundled:
    the safetensors file in ``methods/models/assets/``.

    Raises:
        UnknownModelError: unknown ``name``.
    """
    if name in TORCHVISION:
        return cache_path(tv_weights(name).url)
    if name in _BUNDLED:
        return Path(scene_nets.weights_path(name))
    raise _unknown_model(name)


def list_models() -> list[ModelEntry]:
    """The catalog: bundled models first (``scenes_vgg`` is the dashboard's default), then
    torchvision ImageNet models. ``available`` is checked on disk at each call."""
    entries: list[ModelEntry] = []
    size = size2(scene_nets.INPUT_SIZE)
    for name, (label, description) in _BUNDLED.items():
        path = Path(scene_nets.weights_path(name))
        entries.append(ModelEntry(name, label, "bundled", size, description, path.is_file(), str(path)))
    for name, tv in TORCHVISION.items():
        weights = tv_weights(name)
        path = cache_path(weights.url)
        entries.append(
            ModelEntry(name, tv.label, "torchvision", tv_input_size(weights), tv.description, path.is_file(), str(path))
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
        raise WrongTypeError(f"name must be a str, got {type(name).__name__}")
    if name in _BUNDLED:
        return _load_bundled(name)
    if name in TORCHVISION:
        return load_torchvision(name, allow_download=allow_download)
    raise _unknown_model(name)


def _load_bundled(name: str) -> LoadedModel:
    model = scene_nets.load_pretrained(name).eval()  # raises its own WeightsNotAvailableError subclass
    return LoadedModel(
        name=name,
        model=model,
        input_size=size2(scene_nets.INPUT_SIZE),
        mean=tuple(scene_nets.MEAN),
        std=tuple(scene_nets.STD),
        class_names=tuple(scene_nets.CLASS_NAMES),
        default_layer=scene_nets.DEFAULT_LAYERS[name],
        source="bundled",
        note=f"{_BUNDLED[name][1]} Weights: {scene_nets.weights_path(name)}.",
    )
