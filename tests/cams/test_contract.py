"""Contract tests every registered method must pass; a new method is tested the moment it registers.

Slow methods run with small, fast options when they declare them. Which layers a method is asked
for, and what shape its maps have, comes from its spec alone (``final_layer_only``, ``resolution``).
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import methods
from tiny_models import GapNet, count_hooks

FAST_OPTIONS = {"batch_size": 16, "num_samples": 2, "steps": 2, "num_masks": 8, "window": 8}
LAYERS = ["features.2", "features.4"]
CNN_METHODS = [s for s in methods.list_methods() if s.requires is None]  # attention methods: tests/cams/transformer


def _options(spec):
    return {k: v for k, v in FAST_OPTIONS.items() if k in spec.option_names}


def _layers(spec):
    """CAM needs the layer in front of the GAP + linear head; every other method takes any layer."""
    return ["features.5"] if spec.final_layer_only else LAYERS


def _shape(spec, n=2):
    return (n, 16, 16) if spec.resolution == "input" else (n, 8, 8)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    return GapNet(classes=4, seed=11), torch.randn(2, 3, 16, 16)


@pytest.mark.parametrize("spec", CNN_METHODS, ids=lambda s: s.name)
def test_method_contract(spec, setup):
    net, x = setup
    net.train()
    x_before = x.clone()
    relus_before = [m for m in net.modules() if isinstance(m, nn.ReLU)]
    layers = _layers(spec)
    exp = methods.explain(net, x, spec.name, layers=layers, target=[0, 3], **_options(spec))
    assert exp.method == spec.name and exp.targets.tolist() == [0, 3] and exp.resolution == spec.resolution
    for layer in layers:
        m = exp.maps[layer]
        assert m.shape == _shape(spec) and m.dtype == torch.float32
        assert torch.isfinite(m).all()
    if spec.layer_independent:  # one map per call, held by every layer key
        assert all(exp.maps[layer] is exp.maps[layers[0]] for layer in layers)
    assert count_hooks(net) == 0 and net.training and all(p.requires_grad for p in net.parameters())
    assert [m for m in net.modules() if isinstance(m, nn.ReLU)] == relus_before  # the same objects
    assert all(type(m) is nn.ReLU for m in relus_before)
    assert torch.equal(x, x_before)
    again = methods.explain(net, x, spec.name, layers=layers, target=[0, 3], **_options(spec))
    for layer in exp.layers:
        torch.testing.assert_close(again.maps[layer], exp.maps[layer], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("spec", CNN_METHODS, ids=lambda s: s.name)
def test_method_survives_constant_image(spec):
    """A constant image gives finite maps (often all zero), never NaN."""
    net = GapNet(classes=4, seed=12)
    x = torch.full((1, 3, 16, 16), 0.5)
    layer = _layers(spec)[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", methods.GradLensWarning)
        exp = methods.explain(net, x, spec.name, layers=[layer], **_options(spec))
    m = exp.maps[layer]
    assert torch.isfinite(m).all()
    norm = methods.normalize(m[0])
    assert bool(torch.isfinite(norm).all()) and float(norm.min()) >= 0 and float(norm.max()) <= 1


@pytest.mark.parametrize("spec", methods.list_methods(), ids=lambda s: s.name)
def test_method_hooks_removed_after_bad_target(spec):
    net = GapNet(classes=4)
    with pytest.raises(methods.TargetError):
        methods.explain(
            net, torch.randn(1, 3, 16, 16), spec.name, layers=_layers(spec)[-1:], target=7, **_options(spec)
        )
    assert count_hooks(net) == 0


class _RaisingAfterRelu(nn.Module):
    """conv -> ReLU module -> a functional ReLU -> a layer that raises on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(4, 3)
        self.boom = False

    def forward(self, x):
        a = torch.relu(self.relu(self.conv(x)))
        if self.boom:
            raise RuntimeError("the model failed half-way")
        return self.fc(a.mean(dim=(2, 3)))


@pytest.mark.parametrize("spec", methods.list_methods(), ids=lambda s: s.name)
def test_model_state_restored_when_the_model_raises(spec):
    """Modes, requires_grad flags, hooks and the very ReLU objects come back after a failing forward
    (the recorded pass raises for every method; guided backprop's own pass raises when the model
    fails only after the shared pass, checked below)."""
    net = _RaisingAfterRelu().train()
    net.boom = True
    relu = net.relu
    with pytest.raises(RuntimeError, match="half-way"):
        methods.explain(net, torch.randn(1, 3, 8, 8), spec.name, layers=["conv"], **_options(spec))
    assert net.relu is relu and type(net.relu) is nn.ReLU and net.relu.inplace
    assert net.training and all(m.training for m in net.modules())
    assert all(p.requires_grad for p in net.parameters()) and count_hooks(net) == 0


def test_guided_pass_restores_relus_when_only_it_raises():
    """The shared recorded pass succeeds, the guided pass raises: the model is untouched and the
    guiding torch-function mode is gone all the same (it is left in ``finally``)."""

    class FailsWhenGuided(_RaisingAfterRelu):
        def forward(self, x):
            if torch._C._len_torch_function_stack() > 0:  # the guided pass (a function mode) is running
                raise RuntimeError("the model failed half-way")
            return super().forward(x)

    net = FailsWhenGuided()
    relu = net.relu
    for name in ("guidedbackprop", "guidedgradcam"):
        with pytest.raises(RuntimeError, match="half-way"):
            methods.explain(net, torch.randn(1, 3, 8, 8), name, layers=["conv"])
        assert net.relu is relu and type(net.relu) is nn.ReLU and torch._C._len_torch_function_stack() == 0
        # the guide is gone: a plain forward uses the ordinary ReLU backward
        x = torch.randn(1, 3, 8, 8, requires_grad=True)
        y = net(x)[0, 0]
        (g,) = torch.autograd.grad(y, x)
        assert (g < 0).any() or (g > 0).any()
    assert count_hooks(net) == 0


@pytest.mark.parametrize("spec", [s for s in methods.list_methods() if s.layer_independent], ids=lambda s: s.name)
def test_layer_independent_maps_do_not_depend_on_layers(spec, setup):
    """None, 'all' and a list of names give the same one map (computed once per call)."""
    net, x = setup
    opts = _options(spec)
    one = methods.explain(net, x, spec.name, layers=["features.0"], target=[1, 2], **opts)
    every = methods.explain(net, x, spec.name, layers="all", target=[1, 2], **opts)
    default = methods.explain(net, x, spec.name, layers=None, target=[1, 2], **opts)
    assert len(every.layers) > 2
    for exp in (every, default):
        for layer in exp.layers:
            torch.testing.assert_close(exp.maps[layer], one.maps["features.0"], rtol=1e-5, atol=1e-6)
