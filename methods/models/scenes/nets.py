"""The two bundled models: small CNNs trained on :mod:`methods.data.scenes`, weights shipped in the package.

ImageNet weights cannot be downloaded everywhere GradLens runs (CI, offline machines), and a
Grad-CAM of a randomly initialised network is noise. These two networks are trained offline on
synthetic scenes whose object masks are known, so their maps can be checked against truth:

* ``scenes_vgg`` - VGG-style: 3x3 conv + BatchNorm + in-place ReLU stacks and max-pooling
  (128 -> 64 -> 32 -> 16), a ``features`` ``nn.Sequential`` like torchvision's VGG, then
  global average pooling and a linear ``classifier``.
* ``scenes_resnet`` - ResNet-style: a stride-2 stem (``conv1``/``bn1``/``relu``), four stages of
  basic residual blocks ``layer1`` .. ``layer4`` (64 -> 64 -> 32 -> 16 -> 16: ``layer4`` keeps
  the 16x16 grid, an output stride of 8) and ``avgpool`` + ``fc``.

Both end in a 16x16 map at their default layer (``DEFAULT_LAYERS``), fine enough for objects
of 26-60 pixels in a 128x128 image. Weights are stored as float32 safetensors in
``methods/models/assets/`` with a JSON model card next to them (accuracy, localization numbers, seeds,
training time); retrain with ``python -m methods.models.scenes.train --arch vgg|resnet``.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from methods.data.scenes import CLASS_NAMES
from methods.errors import BadWeightsError, MissingWeightsError, OptionError
from methods.models.scenes.vit import VIT_DEFAULT_LAYER, build_scenes_vit

__all__ = [
    "INPUT_SIZE",
    "MEAN",
    "STD",
    "BUNDLED",
    "BUNDLED_TRANSFORMERS",
    "DEFAULT_LAYERS",
    "ASSETS_DIR",
    "MissingWeightsError",
    "BadWeightsError",
    "build_scenes_vgg",
    "build_scenes_resnet",
    "build",
    "weights_path",
    "card_path",
    "load_pretrained",
    "load_weights",
    "model_card",
    "preprocess",
]

INPUT_SIZE = 128
#: Per-channel mean and std of the training scenes (RGB, in [0, 1]), measured on training seeds
#: 0..4095; the normalization the bundled weights were trained with (:func:`preprocess`).
MEAN: tuple[float, float, float] = (0.5205, 0.5102, 0.5017)
STD: tuple[float, float, float] = (0.2363, 0.2361, 0.2387)

#: The bundled CNNs. The bundled transformer ``scenes_vit`` (:mod:`methods.models.scenes.vit`) is in
#: ``BUNDLED_TRANSFORMERS``; every function here takes either.
BUNDLED: tuple[str, ...] = ("scenes_vgg", "scenes_resnet")
BUNDLED_TRANSFORMERS: tuple[str, ...] = ("scenes_vit",)
#: Layer whose Grad-CAM localizes best (measured, see the model cards): the end of each backbone;
#: for the ViT the last block's first norm (token maps).
DEFAULT_LAYERS: dict[str, str] = {
    "scenes_vgg": "features.20",
    "scenes_resnet": "layer4",
    "scenes_vit": VIT_DEFAULT_LAYER,
}

ASSETS_DIR = pathlib.Path(__file__).resolve().parents[1] / "assets"


# --------------------------------------------------------------------------------------------
# Architectures

_VGG_CFG: tuple = (16, "M", 32, "M", 64, 64, "M", 128, 128)


class ScenesVGG(nn.Module):
    """VGG-style classifier: ``features`` (conv-BN-ReLU stacks, max-pool), GAP, ``classifier``."""

    def __init__(self, num_classes: int = 8, cfg: tuple = _VGG_CFG):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [
                    nn.Conv2d(c_in, v, kernel_size=3, padding=1, bias=False),
                    nn.BatchNorm2d(v),
                    nn.ReLU(inplace=True),
                ]
                c_in = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=0.1), nn.Linear(c_in, num_classes))
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, C, 16, 16)
        x = torch.flatten(self.avgpool(x), 1)  # (N, C)
        return self.classifier(x)  # (N, num_classes)


class BasicBlock(nn.Module):
    """Two 3x3 convs with BatchNorm and a skip connection (1x1 conv when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu2 = nn.ReLU(inplace=True)  # own module: torchvision reuses `relu`, which the recorder refuses
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + identity)


_RESNET_WIDTHS = (16, 32, 64, 128)
_RESNET_STRIDES = (1, 2, 2, 1)


class ScenesResNet(nn.Module):
    """ResNet-style classifier: stride-2 stem, ``layer1``..``layer4`` of basic blocks, GAP, ``fc``."""

    layer1: nn.Sequential  # the stages, set by name in __init__
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self, num_classes: int = 8, widths=_RESNET_WIDTHS, strides=_RESNET_STRIDES, blocks=(1, 1, 1, 1)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        c_in = widths[0]
        for i, (w, s, n) in enumerate(zip(widths, strides, blocks), start=1):
            stage = [BasicBlock(c_in, w, s)] + [BasicBlock(w, w) for _ in range(n - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*stage))
            c_in = w
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))  # (N, 16, 64, 64)
        x = self.layer1(x)  # (N, 16, 64, 64)
        x = self.layer2(x)  # (N, 32, 32, 32)
        x = self.layer3(x)  # (N, 64, 16, 16)
        x = self.layer4(x)  # (N, 128, 16, 16)
        x = torch.flatten(self.avgpool(x), 1)  # (N, 128)
        return self.fc(x)  # (N, num_classes)


def _init(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def vgg_features() -> nn.Module:
    """A fresh ``scenes_vgg`` ``features`` stack (the embedding of the hybrid ``scenes_vit``)."""
    return ScenesVGG().features


def build_scenes_vgg(num_classes: int = 8) -> nn.Module:
    """A freshly initialised ``scenes_vgg`` (see the module docstring for the layout)."""
    return ScenesVGG(num_classes)


def build_scenes_resnet(num_classes: int = 8) -> nn.Module:
    """A freshly initialised ``scenes_resnet`` (see the module docstring for the layout)."""
    return ScenesResNet(num_classes)


_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "scenes_vgg": build_scenes_vgg,
    "scenes_resnet": build_scenes_resnet,
    "scenes_vit": lambda num_classes: build_scenes_vit(num_classes, stem="vgg", vgg_features=vgg_features),
}


def _check_name(name: str) -> str:
    if name not in _BUILDERS:
        raise OptionError(f"unknown bundled model {name!r}; valid names are {list(BUNDLED + BUNDLED_TRANSFORMERS)}")
    return name


def build(name: str) -> nn.Module:
    """Fresh (untrained) architecture of bundled model ``name``.

    Raises:
        ValueError: ``name`` is not one of ``BUNDLED``.
    """
    return _BUILDERS[_check_name(name)](len(CLASS_NAMES))


def weights_path(name: str) -> pathlib.Path:
    """Path of the shipped safetensors file of ``name`` (it may not exist)."""
    return ASSETS_DIR / f"{_check_name(name)}.safetensors"


def card_path(name: str) -> pathlib.Path:
    """Path of the shipped JSON model card of ``name``."""
    return ASSETS_DIR / f"{_check_name(name)}.json"


def _retrain(name: str) -> str:
    if name in BUNDLED_TRANSFORMERS:
        return "python -m methods.models.scenes.train_vit"
    return f"python -m methods.models.scenes.train --arch {name.removeprefix('scenes_')}"


def load_weights(name: str, path: str | pathlib.Path) -> nn.Module:
    """Build ``name`` and load the safetensors file at ``path``; returns the model in eval mode.

    Stored tensors may be float16 or bfloat16; they are cast to float32.

    Raises:
        ValueError: unknown ``name``.
        MissingWeightsError (a FileNotFoundError): no file at ``path``.
        BadWeightsError (a ValueError): the file is not readable safetensors or its tensors do
            not match the architecture.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    model = build(name)
    path = pathlib.Path(path)
    retrain = _retrain(name)
    if not path.is_file():
        raise MissingWeightsError(f"weights of {name!r} not found at {path}; recreate them with `{retrain}`")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise BadWeightsError(
            f"weights file {path} of {name!r} is not readable safetensors ({e}); recreate it with `{retrain}`"
        ) from e
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise BadWeightsError(
            f"weights file {path} does not fit the {name!r} architecture: {e}; recreate it with `{retrain}`"
        ) from e
    return model.eval()


def load_pretrained(name: str) -> nn.Module:
    """The shipped, trained model ``name`` in eval mode (CPU, float32).

    Raises:
        ValueError: unknown ``name`` (names the valid ones).
        MissingWeightsError (a FileNotFoundError): the weight file is missing; the message names
            the file and the command that recreates it.
        BadWeightsError (a ValueError): the file is corrupt or does not fit.
    """
    return load_weights(name, weights_path(name))


def model_card(name: str) -> dict:
    """The JSON model card of ``name``: accuracy, localization numbers, seeds, data, training.

    Raises:
        ValueError: unknown ``name``.
        MissingWeightsError (a FileNotFoundError): the card is missing.
    """
    path = card_path(name)
    if not path.is_file():
        raise MissingWeightsError(f"model card of {name!r} not found at {path}; recreate it with `{_retrain(name)}`")
    return json.loads(path.read_text(encoding="utf-8"))


def preprocess(image: np.ndarray) -> torch.Tensor:
    """Turn an RGB uint8 image into the (3, 128, 128) float32 input of the bundled models.

    Resizes the whole image to 128x128 when needed (PIL bilinear, which antialiases when
    shrinking - the same rule as ``methods.models.catalog``), scales to [0, 1] and
    normalizes with ``MEAN``/``STD``. A grey (H, W) image is repeated to 3 channels; an RGBA
    image drops its alpha channel. Batch with ``torch.stack``.

    Raises:
        ValueError: not a uint8 array of shape (H, W), (H, W, 3) or (H, W, 4).
    """
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise OptionError(f"image must be uint8, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or min(arr.shape[:2]) < 1:
        raise OptionError(f"image must have shape (H, W), (H, W, 3) or (H, W, 4); got {arr.shape}")
    arr = arr[..., :3]
    if arr.shape[:2] != (INPUT_SIZE, INPUT_SIZE):
        from PIL import Image

        pil = Image.fromarray(np.ascontiguousarray(arr))
        arr = np.array(pil.resize((INPUT_SIZE, INPUT_SIZE), resample=Image.Resampling.BILINEAR))
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float().div_(255.0)  # (3, H, W)
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    return (x - mean) / std
