"""Where a picture lands in a model's input, and where a map lands back on the picture.

A model takes a fixed ``(h, w)`` input; a photo has its own ``(H, W)``. :class:`Placement` is the
geometry of one of three ways to get from one to the other, and its inverse:

* ``"squash"``: the whole picture is resized to ``(h, w)`` (its aspect changes; every pixel is seen).
* ``"crop"``: the short side is resized to ``floor(short_input / crop_pct)`` keeping the aspect,
  then the centre ``(h, w)`` is cut out. This is the evaluation transform of timm's and
  torchvision's ImageNet weights (timm ``transforms_factory`` with ``crop_mode="center"``;
  torchvision "resize 256, centre-crop 224" is ``crop_pct = 224 / 256 = 0.875``). The border
  outside the crop is not seen by the model.
* ``"letterbox"``: the picture is scaled to fit inside ``(h, w)`` keeping its aspect, and the rest
  of the input is filled with the normalization mean (0 after normalization).

Every mode is an axis-aligned affine map ``u = s * X - o`` from picture coordinates ``X`` (pixel
edges, 0 .. H) to input coordinates ``u`` (0 .. h); :meth:`Placement.onto` samples a map (any
resolution covering the input) at each picture pixel centre and leaves NaN where the model saw
nothing of the picture (outside the crop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from methods.errors import InputError, OptionError

__all__ = ["Resize", "RESIZES", "Placement", "placement"]

Resize = Literal["squash", "crop", "letterbox"]
#: The ways a picture becomes a model input (:func:`placement`).
RESIZES: tuple[str, ...] = ("squash", "crop", "letterbox")


@dataclass(frozen=True)
class Placement:
    """The affine geometry ``u = scale * X - offset`` (per axis) from a picture to a model input.

    Attributes:
        image_size: ``(H, W)`` of the picture.
        input_size: ``(h, w)`` of the model input.
        resized: ``(H', W')``: the picture's size after its resize (before a crop or a pad).
        offset: ``(top, left)``: input coordinate of the resized picture's corner is ``-offset``
            (positive for a crop, negative for a letterbox pad, 0 for a squash).
        mode: ``"squash"``, ``"crop"`` or ``"letterbox"``.
    """

    image_size: tuple[int, int]
    input_size: tuple[int, int]
    resized: tuple[int, int]
    offset: tuple[int, int]
    mode: str

    @property
    def scale(self) -> tuple[float, float]:
        return self.resized[0] / self.image_size[0], self.resized[1] / self.image_size[1]

    @property
    def seen(self) -> tuple[float, float, float, float]:
        """``(top, left, bottom, right)`` of the picture (its own pixels, floats) that the model sees.

        Examples:
            >>> [round(v, 2) for v in placement((300, 451), (224, 224), "crop", 0.875).seen]  # chelsea, Lite0
            [18.75, 93.96, 281.25, 357.04]
        """
        (sy, sx), (oy, ox) = self.scale, self.offset
        h, w = self.input_size
        top, left = max(0.0, oy / sy), max(0.0, ox / sx)
        bottom, right = min(self.image_size[0], (oy + h) / sy), min(self.image_size[1], (ox + w) / sx)
        return top, left, bottom, right

    @property
    def seen_share(self) -> float:
        """Share of the picture's area the model sees (1.0 for squash and letterbox)."""
        top, left, bottom, right = self.seen
        return (bottom - top) * (right - left) / (self.image_size[0] * self.image_size[1])

    def to_input(self, x: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
        """(N, C, H, W) float picture -> (N, C, h, w) model input (bilinear, antialiased when
        shrinking; a letterbox pad is ``fill``)."""
        if tuple(x.shape[2:]) != self.image_size:
            raise InputError(f"x has size {tuple(x.shape[2:])}, this placement is for {self.image_size}")
        if tuple(x.shape[2:]) != self.resized:
            x = F.interpolate(x, size=self.resized, mode="bilinear", align_corners=False, antialias=True)
        (oy, ox), (h, w) = self.offset, self.input_size
        if self.mode == "letterbox":
            out = torch.full((*x.shape[:2], h, w), fill, dtype=x.dtype, device=x.device)  # (N, C, h, w)
            out[:, :, -oy : -oy + self.resized[0], -ox : -ox + self.resized[1]] = x
            return out
        return x[:, :, oy : oy + h, ox : ox + w]  # (N, C, h, w)

    def onto(self, m: np.ndarray) -> np.ndarray:
        """A map covering the model input, at any resolution ``(h', w')``, drawn on the picture:
        (H, W) float32, bilinear, NaN where the model did not see the picture (outside a crop).

        Each picture pixel centre ``X + 0.5`` goes to input coordinate ``u = s (X + 0.5) - o``,
        then to map coordinate ``u h' / h``, sampled bilinearly (edges clamped).
        """
        arr = np.asarray(m, dtype=np.float32)
        if arr.ndim != 2:
            raise InputError(f"a map must be 2-D (h, w); got shape {arr.shape}")
        (sy, sx), (oy, ox), (h, w) = self.scale, self.offset, self.input_size
        big_h, big_w = self.image_size
        uy = (np.arange(big_h, dtype=np.float64) + 0.5) * sy - oy  # (H,) input rows
        ux = (np.arange(big_w, dtype=np.float64) + 0.5) * sx - ox  # (W,) input columns
        gy = torch.from_numpy(2.0 * uy / h - 1.0).float()
        gx = torch.from_numpy(2.0 * ux / w - 1.0).float()
        grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)[None]  # (1, H, W, 2)
        src = torch.from_numpy(np.ascontiguousarray(arr))[None, None]  # (1, 1, h', w')
        sampled = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)[0, 0]
        out = sampled.numpy().astype(np.float32)  # (H, W)
        inside = ((uy >= 0) & (uy <= h))[:, None] & ((ux >= 0) & (ux <= w))[None, :]
        out[~inside] = np.nan
        return out


def placement(
    image_size: tuple[int, int], input_size: tuple[int, int], mode: str = "squash", crop_pct: float = 1.0
) -> Placement:
    """The :class:`Placement` of an ``image_size`` picture into an ``input_size`` input.

    ``"crop"`` follows timm's evaluation transform: the short side becomes
    ``floor(min(h, w) / crop_pct)``, the long side ``int(short * long / short_of_picture)``
    (torchvision's ``Resize(int)``), and the crop's corner is ``round((resized - input) / 2)``
    (torchvision's ``center_crop``).

    Examples:
        >>> p = placement((300, 451), (224, 224), "crop", 0.875)
        >>> p.resized, p.offset
        ((256, 384), (16, 80))
        >>> placement((300, 451), (224, 224), "letterbox").offset
        (-37, 0)
    """
    if mode not in RESIZES:
        raise OptionError(f"resize must be one of {list(RESIZES)}, got {mode!r}")
    if not 0.0 < crop_pct <= 1.0:
        raise OptionError(f"crop_pct must be in (0, 1], got {crop_pct!r}; 0.875 is the usual ImageNet value")
    big_h, big_w = int(image_size[0]), int(image_size[1])
    h, w = int(input_size[0]), int(input_size[1])
    if min(big_h, big_w, h, w) < 1:
        raise InputError(f"sizes must be positive, got image {image_size} and input {input_size}")
    if mode == "squash":
        return Placement((big_h, big_w), (h, w), (h, w), (0, 0), mode)
    if mode == "crop":
        short = math.floor(min(h, w) / crop_pct + 1e-6)  # 224 / (224 / 232) is 232, not 231.99…
        if big_h <= big_w:
            resized = (short, max(w, int(short * big_w / big_h)))
        else:
            resized = (max(h, int(short * big_h / big_w)), short)
        resized = (max(resized[0], h), max(resized[1], w))
        offset = (int(round((resized[0] - h) / 2.0)), int(round((resized[1] - w) / 2.0)))
        return Placement((big_h, big_w), (h, w), resized, offset, mode)
    s = min(h / big_h, w / big_w)
    resized = (max(1, min(h, round(big_h * s))), max(1, min(w, round(big_w * s))))
    offset = (-((h - resized[0]) // 2), -((w - resized[1]) // 2))
    return Placement((big_h, big_w), (h, w), resized, offset, mode)
