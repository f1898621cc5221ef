"""Shared test setup: the tiny hand-set networks (tests/tiny_models.py) as fixtures, seeded RNGs.

``tests/`` mirrors the source tree (``tests/cams`` for ``methods/cams`` ...); ``tiny_models`` is
importable from every folder (``pythonpath = ["tests"]`` in pyproject.toml).
"""

from __future__ import annotations

import pytest
import torch

from methods import PRECISION_ENV
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


@pytest.fixture
def fp32(monkeypatch: pytest.MonkeyPatch) -> str:
    """The test checks an fp32 closed form: ``precision="auto"`` resolves to fp32 on every machine
    (``$GRADLENS_PRECISION=fp32`` for this test; see tests/precision_kit.py)."""
    monkeypatch.setenv(PRECISION_ENV, "fp32")
    return "fp32"


@pytest.fixture(params=["fp32", "bf16"])
def precision(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once per precision on every machine: ``"auto"`` resolves to the parameter
    (bf16 is emulated, and slow, where it is not native). Pair it with ``precision_kit.tolerance``."""
    monkeypatch.setenv(PRECISION_ENV, request.param)
    return request.param


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` need a real CUDA GPU: skipped where there is none (benchmarks/gpu_run.sh
    runs them on a GPU machine with ``-m gpu``)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)
