"""A model ready to explain: :class:`LoadedModel`, the one type every catalog entry returns.

Deviation from torchvision's preprocessing: torchvision's ImageNet weights come with
"resize the short side to 256 (or 232/236), centre-crop 224". :meth:`LoadedModel.preprocess`
instead resizes the **whole** image to the model's input size (bilinear, antialiased), so that a
map covers the full picture the user sees. Non-square images are squeezed; accuracy can drop
slightly compared with the published numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from methods._internal.checks import floats3, size2
from methods._internal.torch_utils import model_device
from methods.errors import InputError, OptionError, WrongTypeError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Source", "SOURCES", "Domain", "DOMAINS", "ModelCard", "LoadedModel"]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

Source = Literal["bundled", "torchvision", "pypi", "checkpoint", "huggingface"]
SOURCES: tuple[str, ...] = ("bundled", "torchvision", "pypi", "checkpoint", "huggingface")

Domain = Literal["imagenet", "scenes", "unknown"]
#: What a model was trained on, machine-readable: ``"imagenet"`` (ImageNet-1k photos),
#: ``"scenes"`` (GradLens's synthetic shapes), ``"unknown"`` (a user's checkpoint). An image from
#: another domain (a photo for a scenes model) gets a prediction that means little.
DOMAINS: tuple[str, ...] = ("imagenet", "scenes", "unknown")


@dataclass(frozen=True)
class ModelCard:
    """Where a model's weights come from and what they were trained on (for people).

    Attributes:
        weights: where the weights are read from (a PyPI package, a torch hub file ...).
        license: the weights' license (``"Apache-2.0"``).
        trained_on: the training data (``"ImageNet-1k (1000 classes)"``).
        origin: how the weights were made (``"converted from the TensorFlow EfficientNet-Lite
            release"``).
        url: the home page of the weights or the paper.
    """

    weights: str
    license: str
    trained_on: str
    origin: str = ""
    url: str = ""


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model ready to explain: the module (eval mode; the catalog loads it on the CPU) and how to feed it.

    Equality and hashing are by identity (two loads are two models), so it can be a cache value.

    Attributes:
        name: catalog name (``"vgg16"``) or, for checkpoints, ``"<arch>-<first 8 hex of sha256>"``.
        model: the ``nn.Module``, eval mode.
        input_size: ``(H, W)`` the image is resized to.
        mean, std: per-channel normalization of [0, 1] RGB.
        class_names: one name per output logit.
        default_layer: module name to explain when none is chosen.
        source: ``"bundled"``, ``"torchvision"``, ``"pypi"``, ``"checkpoint"`` or ``"huggingface"``.
        digest: sha256 (hex) of an uploaded checkpoint's bytes; None otherwise.
        note: human text: which weights, from where.
        domain: what the model was trained on, one of :data:`DOMAINS` (``"imagenet"``,
            ``"scenes"``, ``"unknown"``): an image from elsewhere gets a meaningless prediction.
        card: the :class:`ModelCard` (source, license, training data), when known.
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
    domain: Domain = "unknown"
    card: ModelCard | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, nn.Module):
            raise WrongTypeError(f"model must be a torch.nn.Module, got {type(self.model).__name__}")
        if self.source not in SOURCES:
            raise OptionError(f"source must be one of {list(SOURCES)}, got {self.source!r}")
        if self.domain not in DOMAINS:
            raise OptionError(f"domain must be one of {list(DOMAINS)}, got {self.domain!r}")
        if self.card is not None and not isinstance(self.card, ModelCard):
            raise WrongTypeError(f"card must be a ModelCard or None, got {type(self.card).__name__}")
        std = floats3(self.std, "std")
        if min(std) <= 0:
            raise OptionError(f"std must be positive, got {self.std!r}")
        object.__setattr__(self, "input_size", size2(self.input_size))
        object.__setattr__(self, "mean", floats3(self.mean, "mean"))
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def device(self) -> torch.device:
        """The device the model's weights are on (where :meth:`preprocess` puts its output).
        Move the model with ``loaded.model.to(device)``; the catalog loads on the CPU."""
        return model_device(self.model)

    def _stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        mean = torch.tensor(self.mean, dtype=torch.float32).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(3, 1, 1)
        return mean, std

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 RGB -> normalized (3, h, w) float32 model input, ``(h, w) = input_size``,
        on the model's device (:attr:`device`).

        The whole image is resized to ``input_size`` (bilinear, antialiased when shrinking, like
        PIL's bilinear), **without** torchvision's centre crop, so that the map covers exactly the
        picture shown (see the module docstring), then scaled to [0, 1] and normalized:
        ``x = (pixel / 255 - mean) / std`` per channel.

        Raises:
            ValueError: not a uint8 array of shape (H, W, 3) with H, W >= 1 (use
                :func:`methods.data.images.load_image` to get one from any file).
        """
        return self._normalized(self._resized(image))[0]  # (3, h, w), on the model's device

    def _resized(self, image: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> (1, 3, h, w) float32 pixel values 0..255 at ``input_size``."""
        arr = np.asarray(image)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 1:
            raise InputError(
                f"image must be a uint8 array of shape (H, W, 3), got dtype {arr.dtype} and shape "
                f"{arr.shape}; methods.data.images.load_image() returns that from any image file"
            )
        x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None].float()  # (1, 3, H, W)
        if tuple(x.shape[2:]) != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False, antialias=True)
        return x

    def _normalized(self, x: torch.Tensor) -> torch.Tensor:
        """``(x / 255 - mean) / std`` per channel of (N, 3, h, w) pixel values, on the model's device."""
        mean, std = self._stats()
        return ((x / 255.0 - mean) / std).to(self.device)  # (N, 3, h, w)

    def preprocess_batch(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """A list of (H_i, W_i, 3) uint8 images (sizes may differ) -> (N, 3, h, w) input batch.

        Each image is resized on its own, then the batch is normalized in one step: every value
        equals :meth:`preprocess` of that image.
        """
        if isinstance(images, np.ndarray) and images.ndim == 4:
            images = list(images)
        if len(images) == 0:
            raise InputError("images is empty; give at least one (H, W, 3) uint8 image")
        return self._normalized(torch.cat([self._resized(im) for im in images]))  # (N, 3, h, w)

    def denormalize(self, x: torch.Tensor) -> np.ndarray:
        """Undo :meth:`preprocess`'s normalization: (3, h, w) or (N, 3, h, w) -> (h, w, 3) or
        (N, h, w, 3) uint8 (rounded, clipped to 0..255). The resize is not undone."""
        if not isinstance(x, torch.Tensor) or x.dim() not in (3, 4) or x.shape[-3] != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise InputError(f"x must be a tensor of shape (3, h, w) or (N, 3, h, w), got {shape}")
        mean, std = self._stats()
        img = (x.detach().float().cpu() * std + mean) * 255.0  # (..., 3, h, w)
        img = img.round().clamp(0, 255).to(torch.uint8)
        return img.movedim(-3, -1).contiguous().numpy()  # (..., h, w, 3)
