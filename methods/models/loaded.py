"""A model ready to explain: :class:`LoadedModel`, the one type every catalog entry returns.

:meth:`LoadedModel.preprocess` makes the model input the way the weights' own evaluation did
(:attr:`LoadedModel.resize`): the ImageNet models resize the short side and cut out the centre
(timm's and torchvision's evaluation transform, ``crop_pct``), the bundled scene models take
their square scenes whole. :meth:`LoadedModel.placement` says where the input lies on the
picture, so a map is drawn on the user's own picture at its own size
(:meth:`methods.data.placement.Placement.onto`).

Deviation from timm's transform: bilinear (antialiased) resizing instead of bicubic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from methods._internal.checks import floats3, size2
from methods._internal.torch_utils import model_device
from methods.data.placement import RESIZES, Placement, Resize, placement
from methods.errors import InputError, OptionError, WrongTypeError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Source",
    "SOURCES",
    "Domain",
    "DOMAINS",
    "Task",
    "TASKS",
    "ModelCard",
    "LoadedModel",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

Source = Literal["bundled", "torchvision", "pypi", "checkpoint", "huggingface", "user"]
SOURCES: tuple[str, ...] = ("bundled", "torchvision", "pypi", "checkpoint", "huggingface", "user")

Domain = Literal["imagenet", "scenes", "unknown"]
#: What a model was trained on, machine-readable: ``"imagenet"`` (ImageNet-1k photos),
#: ``"scenes"`` (GradLens's synthetic shapes), ``"unknown"`` (a user's checkpoint). An image from
#: another domain (a photo for a scenes model) gets a prediction that means little.
DOMAINS: tuple[str, ...] = ("imagenet", "scenes", "unknown")

Task = Literal["classification", "detection", "segmentation"]
#: What the model's output is: ``"classification"`` ((N, K) logits), ``"detection"`` (torchvision's
#: list of ``{"boxes", "labels", "scores"}`` dicts; the model takes images in [0, 1] and normalises
#: inside, so its LoadedModel has mean 0 and std 1) or ``"segmentation"`` (torchvision's
#: ``{"out": (N, K, H, W)}`` logits). The pages and commands read it to know which views fit.
TASKS: tuple[str, ...] = ("classification", "detection", "segmentation")


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
        source: ``"bundled"``, ``"torchvision"``, ``"pypi"``, ``"checkpoint"``, ``"huggingface"`` or ``"user"`` (a user's ``module:function`` factory).
        digest: sha256 (hex) of an uploaded checkpoint's bytes; None otherwise.
        note: human text: which weights, from where.
        domain: what the model was trained on, one of :data:`DOMAINS` (``"imagenet"``,
            ``"scenes"``, ``"unknown"``): an image from elsewhere gets a meaningless prediction.
        card: the :class:`ModelCard` (source, license, training data), when known.
        resize: how a picture becomes the input (:mod:`methods.data.placement`): ``"squash"``
            (the whole picture resized to ``input_size``; the default, right for square inputs),
            ``"crop"`` (short side to ``min(input_size) / crop_pct``, centre crop: the ImageNet
            evaluation transform) or ``"letterbox"`` (fit inside, pad with the mean).
        crop_pct: the share of the resized short side the centre crop keeps (``"crop"`` only;
            0.875 = torchvision's "resize 256, crop 224"; timm's cfg ``crop_pct`` per model).
        task: one of :data:`TASKS`. For ``"detection"`` and ``"segmentation"``, ``class_names``
            are the output label names by label id (index 0 is the background, as in
            torchvision's COCO/VOC categories).
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
    resize: Resize = "squash"
    crop_pct: float = 1.0
    task: Task = "classification"

    def __post_init__(self) -> None:
        if not isinstance(self.model, nn.Module):
            raise WrongTypeError(f"model must be a torch.nn.Module, got {type(self.model).__name__}")
        if self.source not in SOURCES:
            raise OptionError(f"source must be one of {list(SOURCES)}, got {self.source!r}")
        if self.domain not in DOMAINS:
            raise OptionError(f"domain must be one of {list(DOMAINS)}, got {self.domain!r}")
        if self.task not in TASKS:
            raise OptionError(f"task must be one of {list(TASKS)}, got {self.task!r}")
        if self.card is not None and not isinstance(self.card, ModelCard):
            raise WrongTypeError(f"card must be a ModelCard or None, got {type(self.card).__name__}")
        if self.resize not in RESIZES:
            raise OptionError(f"resize must be one of {list(RESIZES)}, got {self.resize!r}")
        if not isinstance(self.crop_pct, (int, float)) or not 0.0 < float(self.crop_pct) <= 1.0:
            raise OptionError(f"crop_pct must be in (0, 1], got {self.crop_pct!r}; 0.875 is the usual ImageNet value")
        object.__setattr__(self, "crop_pct", float(self.crop_pct))
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

        The image is placed as :attr:`resize` says (:meth:`placement`: a squash, the centre crop of
        the weights' evaluation, or a letterbox; bilinear, antialiased when shrinking), then scaled
        to [0, 1] and normalized: ``x = (pixel / 255 - mean) / std`` per channel (a letterbox
        pad is the mean, so 0).

        Raises:
            ValueError: not a uint8 array of shape (H, W, 3) with H, W >= 1 (use
                :func:`methods.data.images.load_image` to get one from any file).
        """
        return self._normalized(self._resized(image))[0]  # (3, h, w), on the model's device

    def placement(self, image_size: tuple[int, int]) -> Placement:
        """Where an ``(H, W)`` picture lands in this model's input (and a map back on the picture).

        Examples:
            >>> import torch.nn as nn
            >>> m = LoadedModel("m", nn.Identity(), (224, 224), (0.5,) * 3, (0.5,) * 3, ("a",), "x",
            ...                 "bundled", resize="crop", crop_pct=0.875)
            >>> m.placement((300, 451)).offset
            (16, 80)
        """
        return placement((int(image_size[0]), int(image_size[1])), self.input_size, self.resize, self.crop_pct)

    def _resized(self, image: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> (1, 3, h, w) float32 pixel values 0..255 at ``input_size``."""
        arr = np.asarray(image)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 1:
            raise InputError(
                f"image must be a uint8 array of shape (H, W, 3), got dtype {arr.dtype} and shape "
                f"{arr.shape}; methods.data.images.load_image() returns that from any image file"
            )
        x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None].float()  # (1, 3, H, W)
        fill = [255.0 * v for v in self.mean]  # a letterbox pad: 0 after normalization
        place = self.placement(arr.shape[:2])
        if place.mode != "letterbox":
            return place.to_input(x)  # (1, 3, h, w)
        return torch.cat([place.to_input(x[:, i : i + 1], fill[i]) for i in range(3)], dim=1)  # (1, 3, h, w)

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
        (N, h, w, 3) uint8 (rounded, clipped to 0..255). The resize (and a crop) is not undone."""
        if not isinstance(x, torch.Tensor) or x.dim() not in (3, 4) or x.shape[-3] != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise InputError(f"x must be a tensor of shape (3, h, w) or (N, 3, h, w), got {shape}")
        mean, std = self._stats()
        img = (x.detach().float().cpu() * std + mean) * 255.0  # (..., 3, h, w)
        img = img.round().clamp(0, 255).to(torch.uint8)
        return img.movedim(-3, -1).contiguous().numpy()  # (..., h, w, 3)
