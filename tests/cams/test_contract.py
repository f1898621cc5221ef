"""Contract tests every registered method must pass; a new method is tested the moment it registers.

Slow (score-family) methods run with small, fast options when they declare them.
"""

from __future__ import annotations

import pytest
import torch

import methods
from tiny_models import GapNet, count_hooks

FAST_OPTIONS = {"batch_size": 16, "num_samples": 2, "steps": 2}


def _options(spec):
    return {k: v for k, v in FAST_OPTIONS.items() if k in spec.option_names}


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    return GapNet(classes=4, seed=11), torch.randn(2, 3, 16, 16)


@pytest.mark.parametrize("spec", methods.list_methods(), ids=lambda s: s.name)
def test_method_contract(spec, setup):
    net, x = setup
    net.train()
    x_before = x.clone()
    exp = methods.explain(net, x, spec.name, layers=["features.2", "features.4"], target=[0, 3], **_options(spec))
    assert exp.method == spec.name and exp.targets.tolist() == [0, 3]
    for layer in ("features.2", "features.4"):
        m = exp.maps[layer]
        assert m.shape == (2, 8, 8) and m.dtype == torch.float32
        assert torch.isfinite(m).all()
    assert count_hooks(net) == 0 and net.training and all(p.requires_grad for p in net.parameters())
    assert torch.equal(x, x_before)
    again = methods.explain(net, x, spec.name, layers=["features.2", "features.4"], target=[0, 3], **_options(spec))
    for layer in exp.layers:
        torch.testing.assert_close(again.maps[layer], exp.maps[layer], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("spec", methods.list_methods(), ids=lambda s: s.name)
def test_method_survives_constant_image(spec):
    """A constant image gives finite maps (often all zero), never NaN."""
    net = GapNet(classes=4, seed=12)
    x = torch.full((1, 3, 16, 16), 0.5)
    exp = methods.explain(net, x, spec.name, layers=["features.4"], **_options(spec))
    m = exp.maps["features.4"]
    assert torch.isfinite(m).all()
    norm = methods.normalize(m[0])
    assert bool(torch.isfinite(norm).all()) and float(norm.min()) >= 0 and float(norm.max()) <= 1


@pytest.mark.parametrize("spec", methods.list_methods(), ids=lambda s: s.name)
def test_method_hooks_removed_after_bad_target(spec):
    net = GapNet(classes=4)
    with pytest.raises(methods.TargetError):
        methods.explain(net, torch.randn(1, 3, 16, 16), spec.name, layers=["features.4"], target=7, **_options(spec))
    assert count_hooks(net) == 0
