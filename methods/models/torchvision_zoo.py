"""torchvision's ImageNet models in the catalog: weights read from the local torch hub cache.

Nothing is downloaded unless ``allow_download=True``: the weights are read from
``$TORCH_HOME/hub/checkpoints/<file name of the weights URL>`` (the directory of
``torch.hub.get_dir()``); a missing file is a :class:`WeightsNotAvailableError` raised at once,
naming the file and how to get it. Every file is read with ``weights_only=True``
(:mod:`methods.models.weight_files`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from methods.errors import CheckpointError, WeightsNotAvailableError
from methods.models.loaded import LoadedModel
from methods.models.weight_files import build_torchvision, densenet_keys, state_dict_of, torch_load

__all__ = ["TORCHVISION", "TorchvisionEntry", "tv_weights", "cache_path", "tv_input_size", "load_torchvision"]


@dataclass(frozen=True)
class TorchvisionEntry:
    label: str
    description: str
    default_layer: str  # checked against methods.cams.layers.default_layer in the tests


TORCHVISION: dict[str, TorchvisionEntry] = {
    "vgg16": TorchvisionEntry("VGG-16", "Plain 3x3 conv stacks (2014); 14x14 map at features.29.", "features.29"),
    "resnet18": TorchvisionEntry("ResNet-18", "Small residual network; 7x7 map at layer4.", "layer4"),
    "resnet50": TorchvisionEntry("ResNet-50", "Bottleneck residual network (V2 weights); 7x7 map at layer4.", "layer4"),
    "densenet121": TorchvisionEntry("DenseNet-121", "Densely connected blocks; 7x7 map after the final ReLU (features.norm5:act).",
                                   "features.norm5:act"),
    "mobilenet_v3_large": TorchvisionEntry("MobileNetV3-Large", "Light mobile network; 7x7 map at features.16.", "features.16"),
    "efficientnet_b0": TorchvisionEntry("EfficientNet-B0", "Compound-scaled MBConv network; 7x7 map at features.8.", "features.8"),
    "convnext_tiny": TorchvisionEntry("ConvNeXt-Tiny", "Modernised ResNet (2022); 7x7 map at features.7.", "features.7"),
}

def tv_weights(name: str):
    from torchvision.models import get_model_weights

    return get_model_weights(name).DEFAULT


def cache_path(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


def tv_input_size(weights) -> tuple[int, int]:
    crop = list(weights.transforms().crop_size)
    return int(crop[0]), int(crop[-1])


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


def load_torchvision(name: str, *, allow_download: bool) -> LoadedModel:
    weights = tv_weights(name)
    path = cache_path(weights.url)
    if not path.is_file():
        if not allow_download:
            raise WeightsNotAvailableError(_missing_message(name, weights.url, path))
        _download(name, weights.url, path)
    try:
        state = torch_load(path)
    except (CheckpointError, OSError) as exc:
        raise WeightsNotAvailableError(
            f"The cached weight file {path} of {name!r} cannot be read: {exc} Delete it and fetch "
            f"{weights.url} again."
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
    )
