"""The recorder: one pass, in-place safety, hooks removed, model state restored, input untouched."""

from __future__ import annotations

import gc

import pytest
import torch
from torch import nn

import methods
from methods.cams.core.recorder import LayerError, RecorderError, TargetError, record, resolve_targets
from tiny_models import GapNet, HandNet, RaisingNet, ReusedReluNet, count_hooks


def test_inplace_relu_gives_the_out_of_place_map():
    """A conv followed by ReLU(inplace=True) records the conv's own (pre-ReLU) output and its
    gradient: maps equal those of the same weights with out-of-place ReLUs."""
    inplace, outplace = GapNet(inplace=True, seed=2), GapNet(inplace=False, seed=2)
    outplace.load_state_dict(inplace.state_dict())
    x = torch.randn(2, 3, 16, 16)
    layers = ["features.0", "features.2", "features.4"]
    names = [s.name for s in methods.list_methods(family="gradient")]
    a = methods.explain_many(inplace, x, names, layers=layers, target=1)
    b = methods.explain_many(outplace, x, names, layers=layers, target=1)
    for name in names:
        for layer in layers:
            torch.testing.assert_close(a[name].maps[layer], b[name].maps[layer], rtol=0, atol=0)
    rec = record(inplace, x, ["features.0"])
    assert (rec.activations["features.0"] < 0).any(), "the conv output must be recorded before the ReLU"
    with torch.no_grad():
        torch.testing.assert_close(rec.activations["features.0"], inplace.features[0](x))


def test_gradients_are_those_of_the_layer_output():
    net = GapNet(inplace=True, seed=3)
    x = torch.randn(1, 3, 16, 16)
    rec = record(net, x, ["features.2"], target=2)
    # reference: autograd through an explicit out-of-place computation
    a = net.features[:3](x).detach().requires_grad_(True)
    y = net.fc(net.pool(net.features[4:](torch.relu(a))).flatten(1))[0, 2]
    (g,) = torch.autograd.grad(y, a)
    torch.testing.assert_close(rec.gradients["features.2"], g)


def _state(model):
    return model.training, [p.requires_grad for p in model.parameters()]


def test_hooks_removed_and_state_restored_after_normal_call():
    net = GapNet()
    net.train()
    net.features[0].weight.requires_grad_(False)
    before = _state(net)
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    x_copy = x.detach().clone()
    methods.explain_many(net, x, ["gradcam", "eigencam"], layers=["features.0", "features.4"])
    assert count_hooks(net) == 0
    assert _state(net) == before
    assert torch.equal(x.detach(), x_copy) and x.grad is None and x.requires_grad
    assert all(p.grad is None for p in net.parameters()), "no parameter gradients are computed"


def test_hooks_removed_after_bad_target():
    net = GapNet(classes=5)
    net.train()
    with pytest.raises(TargetError, match="out of range"):
        methods.explain(net, torch.randn(1, 3, 16, 16), "gradcam", layers=["features.2"], target=9)
    assert count_hooks(net) == 0 and net.training
    assert all(p.requires_grad for p in net.parameters())


def test_hooks_removed_after_layer_that_raises():
    net = RaisingNet()
    with pytest.raises(RuntimeError, match="always fails"):
        methods.explain(net, torch.randn(1, 3, 8, 8), "gradcam", layers=["conv"])
    assert count_hooks(net) == 0
    assert all(p.requires_grad for p in net.parameters())


def test_module_firing_twice_is_an_error():
    net = ReusedReluNet()
    with pytest.raises(RecorderError, match="more than once"):
        methods.explain(net, torch.randn(1, 3, 8, 8), "gradcam", layers=["relu"])
    assert count_hooks(net) == 0


def test_unknown_layer_suggests_close_names():
    with pytest.raises(LayerError, match="Did you mean 'features.2'"):
        methods.explain(GapNet(), torch.randn(1, 3, 8, 8), "gradcam", layers=["feature.2"])


def test_non_spatial_layer_is_refused():
    with pytest.raises(LayerError, match="not a \\(N, C, h, w\\) map"):
        methods.explain(GapNet(), torch.randn(1, 3, 8, 8), "gradcam", layers=["fc"])


def test_unused_layer_is_an_error():
    class Unused(GapNet):
        def __init__(self):
            super().__init__()
            self.spare = nn.Conv2d(3, 3, 1)

    with pytest.raises(RecorderError, match="did not run"):
        methods.explain(Unused(), torch.randn(1, 3, 8, 8), "gradcam", layers=["spare"])


@pytest.mark.parametrize(
    "target, expected",
    [(None, [1, 0]), (2, [2, 2]), ([0, 2], [0, 2]), (torch.tensor([1, 1]), [1, 1])],
)
def test_resolve_targets(target, expected):
    logits = torch.tensor([[0.0, 3.0, 1.0], [5.0, 1.0, 2.0]])
    assert resolve_targets(target, logits).tolist() == expected


@pytest.mark.parametrize(
    "target, message",
    [
        ([1], "1 entries but the batch has 2"),
        ([0, 1, 2], "3 entries"),
        (3, "out of range"),
        (-1, "out of range"),
        (True, "bool"),
        ("cat", "sequence"),
    ],
)
def test_bad_targets(target, message):
    with pytest.raises(TargetError, match=message):
        resolve_targets(target, torch.zeros(2, 3))


def test_memory_flat_over_repeated_calls():
    """200 calls must not grow the process: nothing (hooks, graphs, tensors) is kept between calls."""
    net = GapNet()
    x = torch.randn(4, 3, 32, 32)

    def rss_mb():
        gc.collect()
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    for _ in range(20):
        methods.explain_many(net, x, ["gradcam", "gradcampp"], layers=["features.0", "features.4"])
    start = rss_mb()
    for _ in range(200):
        methods.explain_many(net, x, ["gradcam", "gradcampp"], layers=["features.0", "features.4"])
    assert rss_mb() - start < 15, "memory grew over repeated calls"
    assert count_hooks(net) == 0


def test_hand_net_logits_and_probs():
    exp = methods.explain(HandNet(), HandNet.X, "gradcam", layers=["conv"], target=0)
    # logit 0 = sum(G1*A1) + sum(G2*A2) = (1 - 4) + 0.5 * 10 = 2; logit 1 = A2[0,0] = 4
    torch.testing.assert_close(exp.logits, torch.tensor([[2.0, 4.0]]))
    torch.testing.assert_close(exp.probs, torch.tensor([[2.0, 4.0]]).softmax(1))


def test_mixed_module_modes_are_restored_module_by_module():
    """A training model with one BatchNorm frozen in eval mode comes back exactly as it was."""
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    )
    net.train()
    net[1].eval()
    before = [m.training for m in net.modules()]
    stats = net[1].running_mean.clone()
    for name in ("gradcam", "scorecam", "eigencam"):
        methods.explain(net, torch.randn(2, 3, 8, 8), name, layers=["0"])
        assert [m.training for m in net.modules()] == before
    assert torch.equal(net[1].running_mean, stats), "explaining must not update BatchNorm statistics"
