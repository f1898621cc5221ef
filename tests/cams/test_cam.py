"""CAM: equals Grad-CAM times Z on GAP + linear networks; a clear HeadError on any other head."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import methods
from methods.cams.cam import find_head
from tiny_models import GapNet, HandNet


def test_cam_equals_gradcam_times_z_and_the_paper_formula():
    """Zhou et al. 2016: M = sum_k W_ck A^k. On GAP + linear, dy/dA^k = W_ck / Z, so Grad-CAM = CAM / Z
    (the closed form of test_gradcam_equals_cam_on_gap_linear_net); and mean(M) + b_c = y_c."""
    torch.manual_seed(3)
    net = GapNet(classes=5, seed=4)
    x = torch.randn(3, 3, 16, 16)
    targets = [4, 0, 2]
    many = methods.explain_many(net, x, ["cam", "gradcam"], layers=["features.5"], target=targets)
    cam, gradcam = many["cam"].maps["features.5"], many["gradcam"].maps["features.5"]
    z = cam.shape[-1] * cam.shape[-2]
    torch.testing.assert_close(cam, gradcam * z, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        acts = net.features(x)
        logits = net(x)
    torch.testing.assert_close(cam, torch.einsum("nc,nchw->nhw", net.fc.weight[targets], acts), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        cam.mean(dim=(1, 2)) + net.fc.bias[targets], logits[torch.arange(3), targets], rtol=1e-5, atol=1e-5
    )


class ConvHeadNet(nn.Module):
    """conv trunk -> 1x1 conv to the classes -> global average pooling (SqueezeNet-style head)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU())
        self.classifier = nn.Conv2d(6, 4, 1)

    def forward(self, x):
        return self.classifier(self.features(x)).mean(dim=(2, 3))


def test_a_1x1_conv_head_is_a_linear_head():
    net, x = ConvHeadNet(), torch.randn(2, 3, 8, 8)
    many = methods.explain_many(net, x, ["cam", "gradcam"], layers=["features.1"], target=[1, 3])
    torch.testing.assert_close(
        many["cam"].maps["features.1"], many["gradcam"].maps["features.1"] * 64, rtol=1e-5, atol=1e-5
    )
    rec = methods.record(net, x, ["features.1"], gradients=False)
    name, weight = find_head(net, "features.1", rec.activations["features.1"], rec.logits)
    assert name == "classifier" and weight.shape == (4, 6)
    torch.testing.assert_close(weight, net.classifier.weight[:, :, 0, 0])


class TwoLinearHead(GapNet):
    """GAP -> Linear -> ReLU -> Linear: not CAM's architecture (a hidden layer between)."""

    def __init__(self) -> None:
        super().__init__(classes=12, seed=6)  # fc: 12 -> 12 has the right shape but is not the head
        self.out = nn.Linear(12, 12)

    def forward(self, x):
        return self.out(torch.relu(self.fc(self.pool(self.features(x)).flatten(1))))


@pytest.mark.parametrize(
    "net, layer, words",
    [
        (TwoLinearHead(), "features.5", "closest: max |error|"),
        (GapNet(classes=4), "features.2", "no Linear(16, 4)"),  # not the last layer: 16 channels
        (GapNet(classes=4), "features.4", "closest"),  # the conv before the ReLU: shapes fit, maths does not
        (HandNet(), "conv", "no Linear(2, 2)"),  # flatten + linear, no pooling
    ],
)
def test_other_heads_are_a_head_error(net, layer, words):
    x = HandNet.X if isinstance(net, HandNet) else torch.randn(1, 3, 16, 16)
    with pytest.raises(methods.HeadError, match="global average pooling and ONE linear map") as info:
        methods.explain(net, x, "cam", layers=[layer])
    assert words in str(info.value) and "'gradcam'" in str(info.value) and repr(layer) in str(info.value)
    assert isinstance(info.value, methods.LayerError)


def test_cam_smoothing_options():
    """eigen_smooth on CAM projects W_ck A^k; aug_smooth averages six views (flip-equivariant)."""
    net, x = GapNet(classes=3, seed=8), torch.randn(1, 3, 16, 16)
    plain = methods.explain(net, x, "cam", layers=["features.5"], target=1).maps["features.5"]
    eig = methods.explain(net, x, "cam", layers=["features.5"], target=1, eigen_smooth=True).maps["features.5"]
    assert eig.shape == plain.shape and not torch.allclose(eig, plain)
    a = methods.explain(net, x, "cam", layers=["features.5"], target=1, aug_smooth=True).maps["features.5"]
    b = methods.explain(net, x.flip(-1), "cam", layers=["features.5"], target=1, aug_smooth=True).maps["features.5"]
    torch.testing.assert_close(b, a.flip(-1), rtol=1e-5, atol=1e-5)
