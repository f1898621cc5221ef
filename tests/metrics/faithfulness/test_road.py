"""Tests of ROAD (methods.metrics.faithfulness.road) and its noisy linear imputation.

* the imputation against closed forms: one removed pixel = the weighted mean of its 8 (or, at a
  corner, 3) neighbours; a linear ramp reproduced exactly under noise 0; a 2-pixel system solved by hand;
* the curves on the "sum classifier" (p_0 = sigmoid(a * sum(x) + b)), whose probability of any
  imputed image is computable from the imputation;
* agreement with pytorch-grad-cam 1.5.7 (``pytorch_grad_cam.metrics.road``) on a 10 x 10 input
  (N = 100, so its percentile thresholds remove exactly round(f N) pixels of a tie-free map), noise
  off AND noise on with the same seeds: |ours - p(x) - theirs| <= 1e-5.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

from methods.errors import InputError, OptionError
from methods.metrics.faithfulness.imputation import linear_imputation
from methods.metrics.faithfulness.road import RoadOptions, road, road_image, road_seed

W_DIRECT, W_DIAG = 1 / 6, 1 / 12


def test_one_removed_pixel_is_the_weighted_mean_of_its_neighbours():
    gen = torch.Generator().manual_seed(3)
    img = torch.rand(2, 5, 5, generator=gen)
    mask = torch.zeros(5, 5, dtype=torch.bool)
    mask[2, 3] = True
    out = linear_imputation(img, mask)
    for c in range(2):
        want = 0.0
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                if dr or dc:
                    want += (W_DIAG if dr and dc else W_DIRECT) * float(img[c, 2 + dr, 3 + dc])
        assert float(out[c, 2, 3]) == pytest.approx(want, abs=1e-6)  # interior weights sum to 1
    keep = ~mask
    assert torch.equal(out[:, keep], img[:, keep])


def test_a_corner_pixel_renormalises_over_its_three_neighbours():
    img = torch.tensor([[[1.0, 2.0, 0.0], [4.0, 8.0, 0.0], [0.0, 0.0, 0.0]]])
    mask = torch.zeros(3, 3, dtype=torch.bool)
    mask[0, 0] = True
    want = (W_DIRECT * 2.0 + W_DIRECT * 4.0 + W_DIAG * 8.0) / (2 * W_DIRECT + W_DIAG)  # (5/3) / (5/12) = 4
    assert float(linear_imputation(img, mask)[0, 0, 0]) == pytest.approx(want, abs=1e-6)
    assert want == pytest.approx(4.0)


def test_two_adjacent_removed_pixels_solve_their_coupled_equations():
    """Pixels (1,1) and (1,2) of a 3 x 4 image: v1 = w.x1 + (1/6) v2, v2 = w.x2 + (1/6) v1 (both interior),
    with w.x_i the weighted sum of each one's 7 kept neighbours; solved by hand: v1 = (s1 + s2/6) / (1 - 1/36)."""
    img = torch.arange(12.0).view(1, 3, 4) ** 2  # not linear: the coupling matters
    mask = torch.zeros(3, 4, dtype=torch.bool)
    mask[1, 1] = mask[1, 2] = True

    def kept_sum(r, c):
        s = 0.0
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                if (dr or dc) and not mask[r + dr, c + dc]:
                    s += (W_DIAG if dr and dc else W_DIRECT) * float(img[0, r + dr, c + dc])
        return s

    s1, s2 = kept_sum(1, 1), kept_sum(1, 2)
    v1 = (s1 + s2 / 6) / (1 - 1 / 36)
    v2 = s2 + v1 / 6
    out = linear_imputation(img, mask)
    assert float(out[0, 1, 1]) == pytest.approx(v1, rel=1e-6)
    assert float(out[0, 1, 2]) == pytest.approx(v2, rel=1e-6)


def test_a_linear_ramp_is_reproduced_exactly_inside_the_image():
    r, c = torch.meshgrid(
        torch.arange(12.0, dtype=torch.float64), torch.arange(9.0, dtype=torch.float64), indexing="ij"
    )
    img = torch.stack([0.3 * r - 0.7 * c + 2.0, -r + 0.5 * c])  # (2, 12, 9), linear per channel
    mask = torch.zeros(12, 9, dtype=torch.bool)
    mask[2:10, 1:8] = True  # a block whose pixels all have 8 neighbours in the image
    mask[5, 4] = False  # a kept island inside it
    out = linear_imputation(img[None], mask)[0]
    torch.testing.assert_close(out, img, atol=1e-10, rtol=0)


def test_noise_is_seeded_and_only_on_removed_pixels():
    img = torch.rand(3, 6, 6)
    mask = torch.rand(6, 6) < 0.5
    a = linear_imputation(img, mask, noise=0.05, generator=torch.Generator().manual_seed(1))
    b = linear_imputation(img, mask, noise=0.05, generator=torch.Generator().manual_seed(1))
    clean = linear_imputation(img, mask)
    assert torch.equal(a, b)
    assert torch.equal(a[:, ~mask], img[:, ~mask])
    diff = (a - clean)[:, mask]
    assert 0.02 < float(diff.std()) < 0.08  # sigma 0.05


def test_refusals():
    img = torch.rand(3, 4, 4)
    with pytest.raises(InputError, match="every pixel"):
        linear_imputation(img, torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(InputError, match=r"\(4, 4\)"):
        linear_imputation(img, torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(OptionError, match="noise"):
        linear_imputation(img, torch.zeros(4, 4, dtype=torch.bool), noise=-1.0)
    for bad in (dict(fractions=(0.5, 1.0)), dict(fractions=(0.5, 0.2)), dict(fractions=()), dict(noise=2.0)):
        with pytest.raises(OptionError):
            RoadOptions(**bad)
    with pytest.raises(OptionError, match="batch_size"):
        RoadOptions(batch_size=0)


class SumClassifier(nn.Module):
    """logits (a * sum(x) + b, 0): p_0 = sigmoid(a * sum(x) + b)."""

    def __init__(self, a: float = 0.05, b: float = -1.0):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        s = x.sum(dim=(1, 2, 3))
        return torch.stack([self.a * s + self.b, torch.zeros_like(s)], dim=1)


def test_curves_equal_the_model_on_the_imputed_images(fp32):
    """Every curve point is the sum classifier's probability of the image road_image builds;
    MoRF removes the top-ranked pixels, LeRF the bottom-ranked ones."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 8, 8, generator=gen)
    sal = torch.rand(8, 8, generator=gen)
    net = SumClassifier()
    opts = RoadOptions(fractions=(0.25, 0.5, 0.75), noise=0.02, seed=4, batch_size=2, precision="fp32")
    res = road(net, x, sal, 0, options=opts)
    assert res.counts.tolist() == [16, 32, 48]
    assert res.score == pytest.approx(1 / (1 + math.exp(-(0.05 * float(x.sum()) - 1.0))), abs=1e-6)
    for curve, values in (("morf", res.morf), ("lerf", res.lerf)):
        for i, f in enumerate(opts.fractions):
            img = road_image(x, sal, f, curve=curve, noise=0.02, seed=4, step=i)
            p = 1 / (1 + math.exp(-(0.05 * float(img.double().sum()) - 1.0)))
            assert values[i] == pytest.approx(p, abs=1e-6)
    assert res.road_morf == pytest.approx(res.morf.mean())
    assert res.combined == pytest.approx((res.road_lerf - res.road_morf) / 2)
    order = torch.argsort(sal.flatten(), descending=True, stable=True)
    top = road_image(x, sal, 0.25, curve="morf")[0].reshape(3, -1)
    bottom = road_image(x, sal, 0.25, curve="lerf")[0].reshape(3, -1)
    xf = x[0].reshape(3, -1)
    assert torch.equal(top[:, order[16:]], xf[:, order[16:]]) and not torch.equal(top[:, order[:16]], xf[:, order[:16]])
    assert torch.equal(bottom[:, order[:48]], xf[:, order[:48]])
    # same options, same numbers (in one chunk or in chunks of 2); another seed, other noise
    one_chunk = road(net, x, sal, 0, options=dataclasses.replace(opts, batch_size=16))
    np.testing.assert_allclose(one_chunk.morf, res.morf, rtol=0, atol=1e-12)
    np.testing.assert_allclose(one_chunk.lerf, res.lerf, rtol=0, atol=1e-12)
    assert np.array_equal(road(net, x, sal, 0, options=opts).morf, res.morf)
    other = road(net, x, sal, 0, options=RoadOptions(fractions=(0.25, 0.5, 0.75), noise=0.02, seed=5, precision="fp32"))
    assert not np.array_equal(other.morf, res.morf)


def test_model_state_is_restored_and_x_untouched(fp32):
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    )
    net.train()
    x = torch.rand(1, 3, 6, 6)
    before = x.clone()
    weights = {k: v.clone() for k, v in net.state_dict().items()}
    road(net, x, torch.rand(3, 3), 1, options=RoadOptions(fractions=(0.5,), precision="fp32"))
    assert net.training and torch.equal(x, before)
    assert all(torch.equal(v, weights[k]) for k, v in net.state_dict().items())


def _peer_net() -> nn.Module:
    """A small random conv net whose logits are scaled up (x40) so removal moves the probability
    by up to ~0.07 (a random net's unscaled output barely moves: ~6e-4)."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 4, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    ).eval()  # fmt: skip
    with torch.no_grad():
        net[-1].weight.mul_(40.0)
    return net


@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_agrees_with_pytorch_grad_cam(noise, fp32):
    """pytorch-grad-cam's ROADMostRelevantFirst(q) / ROADLeastRelevantFirst(q) return
    softmax(f(x~))_c - softmax(f(x))_c with ClassifierOutputSoftmaxTarget; their percentile q is our
    fraction 1 - q/100. With noise on, their imputer draws from the global torch RNG, seeded here with
    our road_seed of the same curve and step: the same noise, so the same numbers. Measured
    difference: at most 1.8e-7 (float32 forwards in other batch compositions); tolerance 1e-5."""
    road_mod = pytest.importorskip("pytorch_grad_cam.metrics.road")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    net = _peer_net()
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 10, 10, generator=gen)
    cam = torch.randperm(100, generator=gen).float().view(10, 10) / 100  # tie-free, in [0, 1)
    percentiles = [10, 20, 30, 40, 50, 60, 70, 80, 90]
    fractions = tuple(1 - q / 100 for q in reversed(percentiles))  # 0.1 .. 0.9
    ours = road(net, x, cam, 2, options=RoadOptions(fractions=fractions, noise=noise, seed=7, precision="fp32"))
    targets = [ClassifierOutputSoftmaxTarget(2)]
    for curve, cls, values in (
        ("morf", road_mod.ROADMostRelevantFirst, ours.morf),
        ("lerf", road_mod.ROADLeastRelevantFirst, ours.lerf),
    ):
        for q in percentiles:
            step = fractions.index(1 - q / 100)
            metric = cls(percentile=q)
            metric.perturbation.imputer.noise = noise
            torch.manual_seed(road_seed(7, curve, step))
            theirs = float(metric(x, cam.numpy()[None], targets, net)[0])
            assert values[step] - ours.score == pytest.approx(theirs, abs=1e-5), (curve, q)
    assert np.ptp(ours.morf) > 0.03  # the curve moves: agreement to 1e-5 is not agreement on a flat line
    if noise:  # the noise moves the points by more than the tolerance: the seeded draws really match
        clean = road(net, x, cam, 2, options=RoadOptions(fractions=fractions, noise=0.0, precision="fp32"))
        assert np.abs(clean.morf - ours.morf).max() > 1e-3
