"""Segmentation targets: a class's per-pixel logits over a region (Seg-Grad-CAM).

Vinogradova, Dibrov & Myers, "Towards Interpretable Semantic Segmentation via Gradient-weighted
Class Activation Mapping", AAAI-SA 2020, https://arxiv.org/abs/2002.11434::

    y^c = sum_{(i, j) in R} y^c_{ij}              (reduce="sum", the paper's)
    y^c = (1 / |R|) sum_{(i, j) in R} y^c_{ij}    (reduce="mean")

``y^c_{ij}`` is the pre-softmax logit of class ``c`` at output pixel (i, j) and ``R`` the region:
a boolean mask, a box ``(x0, y0, x1, y1)`` in input pixels (pixel (i, j) is in the box when its
centre ``(j + 0.5, i + 0.5)`` is), or the whole image. Any map method then explains ``y^c``; the
sum and the mean give the same normalized maps (they differ by a constant factor), but
the raw scores of the score family and the curves differ by that factor (``|R|``).

Output resolution: torchvision's segmenters return logits at the input's size. When the output's
(h, w) differs from the mask's, the mask is resized to it with nearest-neighbour sampling (a box is
scaled to the output grid instead). Deviation: none from the paper's score; pytorch-grad-cam's
``SemanticSegmentationTarget`` computes the same sum with the mask it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from methods.errors import OptionError, TargetError
from methods.targets.base import Target, check_box
from methods.targets.outputs import segmentation_logits

__all__ = ["RegionTarget", "region_mask"]


def region_mask(
    size: tuple[int, int], *, mask: Any = None, box: Any = None, input_size: tuple[int, int] | None = None
) -> torch.Tensor:
    """The (h, w) bool region on an output grid of ``size``: ``mask`` resized (nearest), ``box``
    (in ``input_size`` pixels, default ``size``) scaled to the grid, or everything."""
    h, w = size
    if mask is not None:
        m = mask if isinstance(mask, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(mask))
        if tuple(m.shape) != (h, w):
            m = F.interpolate(m[None, None].float(), size=(h, w), mode="nearest")[0, 0]
        return m.bool()
    if box is None:
        return torch.ones(h, w, dtype=torch.bool)
    x0, y0, x1, y1 = box
    ih, iw = input_size if input_size is not None else size
    cy = (torch.arange(h, dtype=torch.float64) + 0.5) * ih / h  # (h,) centres in input pixels
    cx = (torch.arange(w, dtype=torch.float64) + 0.5) * iw / w  # (w,)
    return ((cy >= y0) & (cy < y1))[:, None] & ((cx >= x0) & (cx < x1))[None, :]  # (h, w)


@dataclass(frozen=True, eq=False)
class RegionTarget(Target):
    """A class over a region of a segmenter's output.

    Args:
        label: the class index (channel of the segmenter's logits).
        mask: (H, W) bool / 0-1 region, or None.
        box: ``(x0, y0, x1, y1)`` in input pixels, or None. At most one of ``mask`` and ``box``;
            neither = the whole image.
        reduce: ``"sum"`` (the paper's) or ``"mean"`` over the region.

    Examples:
        >>> logits = torch.arange(8.0).view(1, 2, 2, 2)   # class 1 = [[4, 5], [6, 7]]
        >>> RegionTarget(1, mask=torch.tensor([[True, False], [False, True]])).scores(logits)
        tensor([11.])
        >>> RegionTarget(1, box=(0, 0, 2, 1), reduce="mean").scores(logits)
        tensor([4.5000])
    """

    label: int
    mask: Any = None
    box: Any = None
    reduce: Literal["sum", "mean"] = "sum"
    input_size: tuple[int, int] | None = field(default=None, compare=False)

    kind: ClassVar[str] = "region"

    def __post_init__(self) -> None:
        if isinstance(self.label, bool) or not isinstance(self.label, int) or self.label < 0:
            raise TargetError(f"label must be a class index >= 0; got {self.label!r}")
        if self.mask is not None and self.box is not None:
            raise TargetError("give a mask OR a box for a RegionTarget, not both")
        if self.reduce not in ("sum", "mean"):
            raise OptionError(f"reduce={self.reduce!r} is not valid; expected one of ['sum', 'mean']")
        if self.box is not None:
            object.__setattr__(self, "box", check_box(self.box))
        if self.mask is not None:
            m = self.mask
            m = m if isinstance(m, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(m))
            if m.ndim != 2:
                raise TargetError(f"mask must be ONE (H, W) region; got shape {tuple(m.shape)}")
            if m.dtype != torch.bool:
                if not bool(((m == 0) | (m == 1)).all()):
                    raise TargetError(f"mask must be boolean or 0/1; got {m.dtype} with other values")
                m = m != 0
            if not bool(m.any()):
                raise TargetError("mask is empty: the region must hold at least one pixel")
            object.__setattr__(self, "mask", m.detach().cpu())

    def describe(self) -> str:
        where = "mask" if self.mask is not None else (f"box {self.box}" if self.box is not None else "whole image")
        return f"class {self.label} {self.reduce} over {where}"

    def region(self, size: tuple[int, int], input_size: tuple[int, int] | None = None) -> torch.Tensor:
        """(h, w) bool region on an output grid of ``size``."""
        return region_mask(size, mask=self.mask, box=self.box, input_size=input_size or self.input_size)

    def scores(self, output: Any, *, strict: bool = False) -> torch.Tensor:
        logits = segmentation_logits(output)  # (N, K, h, w)
        n, k, h, w = logits.shape
        if self.label >= k:
            raise TargetError(f"label {self.label} is out of range: the segmenter has {k} classes (0..{k - 1})")
        inside = self.region((h, w)).to(logits.device)  # (h, w)
        if not bool(inside.any()):
            raise TargetError(f"the {self.describe()} holds no pixel of the {h} x {w} output")
        y = logits[:, self.label] * inside.to(logits.dtype)  # (N, h, w)
        total = y.sum(dim=(1, 2))  # (N,)
        return total / inside.sum() if self.reduce == "mean" else total
