"""Layer names with a call site (``relu#1``) and ``:act`` (the output after a functional activation):
recorded values and gradients against explicit autograd, the default layer, errors, Ablation-CAM."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import methods
from methods.cams.core.layers import candidate_layers, default_layer
from methods.cams.core.recorder import RecorderError, record
from tiny_models import GapNet, ReusedReluNet, count_hooks


class DenseLike(nn.Module):
    """conv -> BatchNorm -> F.relu(inplace=True) in forward (as torchvision's DenseNet) -> GAP -> linear."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(31)
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6))
        self.classifier = nn.Linear(6, 4)
        with torch.no_grad():
            self.features[1].running_mean.uniform_(-0.5, 0.5)
            self.features[1].running_var.uniform_(0.5, 2.0)

    def forward(self, x):
        out = F.relu(self.features(x), inplace=True)
        return self.classifier(F.adaptive_avg_pool2d(out, 1).flatten(1))


def test_post_activation_layer_is_listed_and_is_the_default():
    net = DenseLike().eval()
    names = [li.name for li in candidate_layers(net, (8, 8))]
    assert names == ["features.0", "features.1", "features", "features.1:act"]  # after its alias `features`
    assert candidate_layers(net, (8, 8))[-1].type == "relu"
    assert default_layer(net, (8, 8)) == "features.1:act"
    assert methods.explain(net, torch.randn(1, 3, 8, 8)).layers == ("features.1:act",)


def test_post_activation_values_and_gradients_are_those_of_the_relu_output():
    net = DenseLike().eval()
    x = torch.randn(2, 3, 8, 8)
    rec = record(net, x, ["features.1", "features.1:act"], target=[1, 3])
    with torch.no_grad():
        pre = net.features(x)
    torch.testing.assert_close(rec.activations["features.1"], pre)  # the module output: before the in-place ReLU
    torch.testing.assert_close(rec.activations["features.1:act"], pre.clamp(min=0))
    post = pre.clamp(min=0).requires_grad_(True)
    y = net.classifier(post.mean(dim=(2, 3)))
    (g,) = torch.autograd.grad(y[0, 1] + y[1, 3], post)
    torch.testing.assert_close(rec.gradients["features.1:act"], g)
    # post-ReLU activations feed GAP + linear: CAM works there and equals Grad-CAM x Z
    many = methods.explain_many(net, x, ["cam", "gradcam"], layers=["features.1:act"], target=[1, 3])
    torch.testing.assert_close(
        many["cam"].maps["features.1:act"], many["gradcam"].maps["features.1:act"] * 64, rtol=1e-5, atol=1e-5
    )
    assert count_hooks(net) == 0


def test_call_sites_of_a_reused_module():
    net = ReusedReluNet().eval()
    x = torch.randn(1, 3, 8, 8)
    rec = record(net, x, ["relu#0", "relu#1"], target=2)
    with torch.no_grad():
        first = torch.relu(net.conv1(x))
        second = torch.relu(net.conv2(first))
    torch.testing.assert_close(rec.activations["relu#0"], first)
    torch.testing.assert_close(rec.activations["relu#1"], second)
    a = first.clone().requires_grad_(True)
    y = net.fc(torch.relu(net.conv2(a)).mean(dim=(2, 3)))[0, 2]
    (g,) = torch.autograd.grad(y, a)
    torch.testing.assert_close(rec.gradients["relu#0"], g)


def test_errors_name_the_call_sites_and_the_consumer():
    net = ReusedReluNet()
    x = torch.randn(1, 3, 8, 8)
    with pytest.raises(RecorderError, match=r"runs more than once .*2 calls.*'relu#0', 'relu#1'"):
        record(net, x, ["relu"])
    with pytest.raises(RecorderError, match=r"'relu#2'.* runs 2 time\(s\).*'relu#0', 'relu#1'"):
        record(net, x, ["relu#2"])
    with pytest.raises(RecorderError, match=r"'features.5' is not passed to an activation.*'adaptive_avg_pool2d'"):
        record(GapNet(), torch.randn(1, 3, 8, 8), ["features.5:act"])
    with pytest.raises(methods.LayerError, match="must be a number"):
        record(net, x, ["relu#one"])
    with pytest.raises(methods.LayerError, match="Did you mean 'relu'"):
        record(net, x, ["relo#1"])
    assert count_hooks(net) == 0


@pytest.mark.parametrize("layer", ["features.1:act"])
def test_ablation_cam_at_a_post_activation_layer_matches_the_full_network(layer, fp32):
    """The fast path (trunk stubbed, the activation's output handed over) equals full forwards."""
    net = DenseLike().eval()
    x = torch.randn(2, 3, 8, 8)
    fast = methods.explain(net, x, "ablationcam", layers=[layer], target=[0, 2])
    full = methods.explain(net, x, "ablationcam", layers=[layer], target=[0, 2], path="full")
    assert not any("slower" in n for n in fast.notes)
    torch.testing.assert_close(fast.maps[layer], full.maps[layer], rtol=1e-4, atol=1e-6)
    # and both equal the naive definition: w_k = (y - y(A with channel k = 0)) / |y|
    rec = record(net, x, [layer], target=[0, 2], gradients=False)
    acts = rec.activations[layer]
    y = rec.logits[torch.arange(2), rec.targets]
    weights = torch.zeros(2, 6)
    for k in range(6):
        ablated = acts.clone()
        ablated[:, k] = 0
        y_k = net.classifier(ablated.mean(dim=(2, 3)))[torch.arange(2), rec.targets]
        weights[:, k] = (y - y_k) / y.abs()
    torch.testing.assert_close(fast.maps[layer], torch.einsum("nc,nchw->nhw", weights, acts), rtol=1e-4, atol=1e-5)


def test_ablation_cam_at_a_call_site():
    net = ReusedReluNet().eval()
    x = torch.randn(1, 3, 8, 8)
    fast = methods.explain(net, x, "ablationcam", layers=["relu#1"], target=1)
    full = methods.explain(net, x, "ablationcam", layers=["relu#1"], target=1, path="full")
    torch.testing.assert_close(fast.maps["relu#1"], full.maps["relu#1"], rtol=1e-4, atol=1e-6)
    assert count_hooks(net) == 0 and "forward" not in net.relu.__dict__
