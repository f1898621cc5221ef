"""Hand-set tiny task models whose scores are known functions of the pixels.

* :class:`BoxDetector` — a one-conv "detector" in torchvision's output format: ``A = conv(x)`` is
  the channel mean of ``x`` (1x1 conv, weights 1/3); image n gets two detections: box ``BOX1``
  of label 1 with score ``s1 = mean of A over BOX1`` and box ``BOX2`` (the whole 8 x 8 image) of
  label 2 with score ``s2 = mean of A``; a detection whose score is below ``thresh`` is dropped
  (like torchvision's score threshold). ``probs=True`` adds each detection's probability vector.
* :class:`PixelSegmenter` — ``logits = conv(x)`` (1x1, 3 -> 2, hand-set weights), returned as
  ``OrderedDict(out=...)`` like torchvision's segmenters.
* :class:`Embedder` — ``f(x) = mean_{h,w} conv(x)`` (1x1, 3 -> 4, hand-set weights), (N, 4).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

BOX1 = (2.0, 2.0, 6.0, 6.0)  # (x0, y0, x1, y1): rows 2..5, columns 2..5
BOX2 = (0.0, 0.0, 8.0, 8.0)


class BoxDetector(nn.Module):
    def __init__(self, thresh: float = 0.0, probs: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.fill_(1.0 / 3.0)
        self.thresh = thresh
        self.probs = probs

    def forward(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        a = self.conv(x)  # (N, 1, 8, 8)
        s1 = a[:, 0, 2:6, 2:6].mean(dim=(1, 2))  # (N,)
        s2 = a[:, 0].mean(dim=(1, 2))  # (N,)
        out = []
        for n in range(x.shape[0]):
            keep = [i for i, s in enumerate((s1[n], s2[n])) if float(s.detach()) >= self.thresh]
            boxes = torch.tensor([BOX1, BOX2])[keep]
            d = {
                "boxes": boxes,
                "labels": torch.tensor([1, 2])[keep],
                "scores": torch.stack([s1[n], s2[n]])[keep] if keep else torch.zeros(0),
            }
            if self.probs:
                p = torch.stack(
                    [torch.stack([1 - s1[n], s1[n], 0 * s1[n]]), torch.stack([1 - s2[n], 0 * s2[n], s2[n]])]
                )
                d["probs"] = p[keep]
            out.append(d)
        return out


class PixelSegmenter(nn.Module):
    W = torch.tensor([[1.0, -1.0, 0.5], [0.5, 2.0, -1.0]])  # (classes, channels)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(self.W[:, :, None, None])

    def forward(self, x: torch.Tensor) -> OrderedDict:
        return OrderedDict(out=self.conv(x))


class Embedder(nn.Module):
    W = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, -0.5], [0.3, 0.3, 0.3], [-1.0, 0.2, 0.0]])  # (D, channels)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(self.W[:, :, None, None])
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(x)).flatten(1)  # (N, 4)
