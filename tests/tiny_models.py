"""Tiny networks with hand-set weights, shared by the core tests.

Each one is small enough that its activations and gradients can be written down by hand.
"""

from __future__ import annotations

import torch
from torch import nn


class HandNet(nn.Module):
    """conv (1x1, 1 -> 2 channels) -> flatten -> linear (8 -> 2 classes), all weights hand-set.

    For the input ``X = [[1, 2], [3, 4]]`` the layer ``conv`` outputs
    ``A^1 = X`` (weight 1, bias 0) and ``A^2 = 5 - X = [[4, 3], [2, 1]]`` (weight -1, bias 5).
    The logit of class 0 is linear in A, so its gradient is the linear weight itself:
    ``G^1 = [[1, 0], [0, -1]]`` and ``G^2 = [[0.5, 0.5], [0.5, 0.5]]``.
    Class 1 has ``G^1 = [[0, 0], [0, 0]]``, ``G^2 = [[1, 0], [0, 0]]``.
    """

    X = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # (1, 1, 2, 2)
    A1 = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    A2 = torch.tensor([[4.0, 3.0], [2.0, 1.0]])
    G1 = torch.tensor([[1.0, 0.0], [0.0, -1.0]])
    G2 = torch.tensor([[0.5, 0.5], [0.5, 0.5]])

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, kernel_size=1)
        self.head = nn.Linear(8, 2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
            self.conv.bias.copy_(torch.tensor([0.0, 5.0]))
            self.head.weight.zero_()
            self.head.weight[0] = torch.cat([self.G1.flatten(), self.G2.flatten()])
            self.head.weight[1, 4] = 1.0
            self.head.bias.copy_(torch.tensor([0.0, 0.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).flatten(1))


class GapNet(nn.Module):
    """A small conv trunk -> global average pooling -> one linear layer (the CAM architecture)."""

    def __init__(self, classes: int = 5, inplace: bool = True, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(inplace=inplace),
            nn.Conv2d(8, 16, 3, padding=1, stride=2),
            nn.ReLU(inplace=inplace),
            nn.Conv2d(16, 12, 3, padding=1),
            nn.ReLU(inplace=inplace),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(12, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


class ReusedReluNet(nn.Module):
    """One ReLU object used twice in a forward (as torchvision's ResNet blocks do)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        return self.fc(x.mean(dim=(2, 3)))


class RaisingLayer(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("this layer always fails")


class RaisingNet(nn.Module):
    """A net whose layer ``bad`` raises in the forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bad = RaisingLayer()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bad(self.conv(x)).mean(dim=(2, 3)))


def count_hooks(model: nn.Module) -> int:
    """Forward, forward-pre and backward hooks attached anywhere in ``model``."""
    total = 0
    for m in model.modules():
        total += len(m._forward_hooks) + len(m._forward_pre_hooks)
        total += len(m._backward_hooks) + len(getattr(m, "_backward_pre_hooks", {}))
    return total
