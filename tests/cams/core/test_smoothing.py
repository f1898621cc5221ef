"""aug_smooth and eigen_smooth: flip-equivariance, the symmetric-net closed form, the rank-1 closed
form of the principal component, and one set of augmented passes per call."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import methods
from methods.cams.core.smoothing import AUGMENTATIONS, first_component
from tiny_models import GapNet

SMOOTHED = [s.name for s in methods.list_methods() if "aug_smooth" in s.option_names and s.name != "cam"]
FAST = {"num_samples": 2}


def _opts(name, **extra):
    spec = methods.get_method(name)
    return {**{k: v for k, v in FAST.items() if k in spec.option_names}, **extra}


@pytest.mark.parametrize("name", SMOOTHED)
def test_aug_smooth_is_flip_equivariant(name):
    """The six views come in flip pairs, each un-flipped: M(flip x) = flip M(x) for ANY network."""
    net = GapNet(classes=4, seed=21)
    x = torch.randn(2, 3, 16, 16)
    a = methods.explain(net, x, name, layers=["features.3"], target=2, **_opts(name, aug_smooth=True)).maps[
        "features.3"
    ]
    b = methods.explain(net, x.flip(-1), name, layers=["features.3"], target=2, **_opts(name, aug_smooth=True))
    torch.testing.assert_close(b.maps["features.3"], a.flip(-1), rtol=1e-4, atol=1e-6)


class SymmetricNet(nn.Module):
    """Stride-1 convs with left-right symmetric kernels, ReLU, GAP, linear: flip-equivariant,
    so the map of a flipped input is the flipped map and aug_smooth reduces to the brightness mean."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(22)
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 5, 3, padding=1), nn.ReLU()
        )
        self.fc = nn.Linear(5, 3)
        with torch.no_grad():
            for conv in (self.features[0], self.features[2]):
                conv.weight.copy_((conv.weight + conv.weight.flip(-1)) / 2)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


@pytest.mark.parametrize("name", ["gradcam", "gradcampp", "hirescam", "gradcam_elementwise"])
def test_aug_smooth_on_a_symmetric_net_is_the_brightness_mean(name):
    net = SymmetricNet()
    x = torch.randn(1, 3, 10, 10)
    plain = [
        methods.explain(net, f * x, name, layers=["features.3"], target=1).maps["features.3"] for f in (0.9, 1.0, 1.1)
    ]
    smoothed = methods.explain(net, x, name, layers=["features.3"], target=1, aug_smooth=True).maps["features.3"]
    torch.testing.assert_close(smoothed, sum(plain) / 3, rtol=1e-4, atol=1e-6)
    assert sorted(f for _, f in AUGMENTATIONS) == [0.9, 0.9, 1.0, 1.0, 1.1, 1.1]


class RankOneNet(nn.Module):
    """1x1 conv 1 -> 4 channels (weights a_k, no bias), GAP, linear (row 0 = v): A^k = a_k X and
    dy_0/dA^k = v_k / Z, so the gradient methods' terms are rank one, T^k = u_k X."""

    A = torch.tensor([1.0, -2.0, 0.5, 3.0])
    V = torch.tensor([2.0, 1.0, -4.0, 0.5])

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 1, bias=False)
        self.fc = nn.Linear(4, 2)
        with torch.no_grad():
            self.conv.weight.copy_(self.A.view(4, 1, 1, 1))
            self.fc.weight.zero_()
            self.fc.weight[0] = self.V
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(self.conv(x).mean(dim=(2, 3)))


@pytest.mark.parametrize(
    "name, u_of",
    [
        ("gradcam", lambda a, v, z: v * a / z),  # w_k = mean(g) = v_k / Z
        ("hirescam", lambda a, v, z: v * a / z),
        ("xgradcam", lambda a, v, z: v * a / z),  # sum(A g) / sum(A) = v_k / Z
        ("layercam", lambda a, v, z: v.clamp(min=0) * a / z),
    ],
)
def test_eigen_smooth_rank_one_closed_form(name, u_of):
    """With T^k = u_k X (rank one), the centred first principal component is |u| (X - mean X), signed
    to agree with the sum map (sum_k u_k) X."""
    torch.manual_seed(23)
    x = torch.rand(1, 1, 5, 6) + 0.1  # positive: XGrad-CAM's sums stay away from 0
    u = u_of(RankOneNet.A, RankOneNet.V, 30)
    expected = torch.sign(u.sum()) * u.norm() * (x[0, 0] - x.mean())
    got = methods.explain(RankOneNet(), x, name, layers=["conv"], target=0, eigen_smooth=True).maps["conv"][0]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_first_component_against_numpy_eigenvectors():
    """A naive reference: the covariance's top eigenvector from numpy, on random full-rank terms."""
    import numpy as np

    gen = torch.Generator().manual_seed(24)
    terms = torch.randn(2, 5, 4, 3, generator=gen, dtype=torch.float64)
    got = first_component(terms)
    for n in range(2):
        x = terms[n].reshape(5, 12).T.numpy()
        xc = x - x.mean(0)
        vals, vecs = np.linalg.eigh(xc.T @ xc)
        proj = xc @ vecs[:, -1]
        ref = terms[n].sum(0).reshape(-1).numpy()
        proj *= np.sign(proj @ (ref - ref.mean()))
        np.testing.assert_allclose(got[n].reshape(-1).numpy(), proj, rtol=1e-4, atol=1e-5)


def test_eigengradcam_is_hirescam_with_eigen_smooth_and_agrees_in_sign():
    net, x = GapNet(classes=4, seed=25), torch.randn(2, 3, 16, 16)
    many = methods.explain_many(
        net,
        x,
        ["eigengradcam", "hirescam"],
        layers=["features.2", "features.5"],
        options={"hirescam": {"eigen_smooth": True}},
        target=[0, 1],
    )
    plain = methods.explain(net, x, "hirescam", layers=["features.2", "features.5"], target=[0, 1])
    for layer in ("features.2", "features.5"):
        torch.testing.assert_close(many["eigengradcam"].maps[layer], many["hirescam"].maps[layer])
        corr = many["eigengradcam"].maps[layer] * (plain.maps[layer] - plain.maps[layer].mean(dim=(1, 2), keepdim=True))
        assert (corr.sum(dim=(1, 2)) > 0).all()  # the sign follows HiResCAM's map


def test_all_aug_smooth_methods_of_a_call_share_five_extra_passes():
    net = GapNet(classes=4, seed=26)
    calls = []
    handle = net.register_forward_hook(lambda *a: calls.append(1))
    names = ["gradcam", "gradcampp", "hirescam", "layercam"]
    methods.explain_many(
        net,
        torch.randn(1, 3, 16, 16),
        names,
        layers=["features.3", "features.5"],
        options={n: {"aug_smooth": True} for n in names},
    )
    handle.remove()
    assert len(calls) == 6  # the shared pass + the five other views, for all four methods
