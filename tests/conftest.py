"""Shared test setup: the tiny hand-set networks (tests/tiny_models.py) as fixtures, seeded RNGs.

``tests/`` mirrors the source tree (``tests/cams`` for ``methods/cams`` ...); ``tiny_models`` is
importable from every folder (``pythonpath = ["tests"]`` in pyproject.toml).
"""

from __future__ import annotations

import pytest
import torch

from tiny_models import GapNet, HandNet


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Every test starts from the same global RNG state."""
    torch.manual_seed(0)


@pytest.fixture
def hand_net() -> HandNet:
    """conv(1x1) -> linear with hand-set weights; activations and gradients written in its docstring."""
    return HandNet().eval()


@pytest.fixture
def gap_net() -> GapNet:
    """A small conv net ending in global average pooling + linear (Grad-CAM == CAM up to scale)."""
    return GapNet().eval()
