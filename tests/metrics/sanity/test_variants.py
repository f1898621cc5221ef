"""Smooth MPRT and efficient MPRT (Hedström et al. 2024, arXiv:2401.06465).

Closed forms: the histogram entropy of hand-made maps (ln 2, ln 4), eMPRT's ratio and the model's
entropy ratio on hand-set linear models (ln K for all-zero logits); sMPRT = 1 for a map that ignores
the weights, and sMPRT equal to a naive re-implementation written here (same numpy draws, the clean
input last, sigma = noise x value range) for chunked and unchunked runs.

Peer: Quantus 0.5.3 (test-only, installed with ``pip install --no-deps quantus==0.5.3``: its
requirements pull opencv-python, which clashes with the headless build), on a small conv net with
input x gradient as the explanation and Quantus's own randomization of every layer (seed + 1 before
each ``reset_parameters``), passed to ours as ``randomized``.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from methods.errors import OptionError
from methods.metrics.sanity.variants import (
    EfficientMPRTOptions,
    SmoothMPRTOptions,
    discrete_entropy,
    efficient_mprt,
    randomized_model,
    smooth_mprt,
)


def test_discrete_entropy_closed_forms():
    assert discrete_entropy([0.0, 0.0, 1.0, 1.0], bins=4) == pytest.approx(math.log(2))
    assert discrete_entropy(np.arange(8.0), bins=4) == pytest.approx(math.log(4))
    assert discrete_entropy([0.0, 0.0, 0.0, 1.0], bins=2) == pytest.approx(
        -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    )
    assert discrete_entropy(np.full(9, 3.0)) == 0.0


def _linear(weight: list[list[float]]) -> nn.Module:
    net = nn.Sequential(nn.Flatten(), nn.Linear(len(weight[0]), len(weight), bias=False))
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor(weight))
    return net.eval()


def test_efficient_mprt_closed_form():
    """Trained map [[0, 0], [1, 1]] (2 of 4 bins used: ln 2), randomized map [[0, 1], [2, 3]] (ln 4):
    eMPRT = 2. Trained logits (2, 0, 0) -> H = ln(e^2 + 2) - 2 e^2 / (e^2 + 2); zero logits -> ln 3."""
    net = _linear([[1.0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    rand = _linear([[0.0] * 4] * 3)
    x = torch.tensor([[[[2.0, 0.0], [0.0, 0.0]]]])

    def maps(model, xb, target):
        base = [[0.0, 0.0], [1.0, 1.0]] if model is net else [[0.0, 1.0], [2.0, 3.0]]
        return torch.tensor(base).expand(xb.shape[0], 2, 2)

    res = efficient_mprt(net, x, method=maps, randomized=rand, options=EfficientMPRTOptions(bins=4))
    assert res.target == 0
    assert res.entropy == pytest.approx((math.log(2), math.log(4)))
    assert res.ratio == pytest.approx(2.0) and res.relative_rise == pytest.approx(1.0)
    z = math.exp(2) + 2
    h_trained = math.log(z) - 2 * math.exp(2) / z
    assert res.model_entropy == pytest.approx((h_trained, math.log(3)))
    assert res.model_ratio == pytest.approx(math.log(3) / h_trained)
    flat = efficient_mprt(net, x, method=lambda m, xb, t: torch.ones(xb.shape[0], 2, 2), randomized=rand)
    assert math.isnan(flat.ratio) and flat.notes


def test_smooth_mprt_is_one_for_a_map_that_ignores_the_weights():
    net = _linear([[1.0] * 12, [-1.0] * 12])
    x = torch.rand(1, 3, 2, 2)
    res = smooth_mprt(
        net, x, method=lambda m, xb, t: xb.sum(dim=1), options=SmoothMPRTOptions(samples=1, noise=0.0), target=0
    )
    assert res.similarity == pytest.approx(1.0)


def _input_x_gradient(model, xb, target):
    xb = xb.detach().clone().requires_grad_(True)
    out = model(xb)[:, int(target)].sum()
    (g,) = torch.autograd.grad(out, xb)
    return (xb * g).sum(dim=1).detach()  # (B, H, W)


def _conv_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    ).eval()  # fmt: skip


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_smooth_mprt_equals_a_naive_reference(batch_size):
    net = _conv_net()
    rand = randomized_model(net, seed=1, input_size=(6, 6))
    x = torch.rand(1, 3, 6, 6)
    n, noise, seed = 5, 0.2, 3
    res = smooth_mprt(
        net,
        x,
        method=_input_x_gradient,
        target=1,
        randomized=rand,
        options=SmoothMPRTOptions(samples=n, noise=noise, seed=seed, batch_size=batch_size),
    )
    rs = np.random.RandomState(seed)
    xd = x.double().numpy()
    sigma = noise * (xd.max() - xd.min())
    avg = []
    for m in (net, rand):
        inputs = [xd + rs.randn(*xd.shape) * sigma for _ in range(n - 1)] + [xd]
        maps = [_input_x_gradient(m, torch.from_numpy(i).float(), 1)[0].double().numpy() for i in inputs]
        avg.append(np.abs(np.mean(maps, axis=0)))
    np.testing.assert_allclose(res.trained, avg[0], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(res.randomized, avg[1], rtol=1e-6, atol=1e-9)
    assert res.similarity == pytest.approx(spearmanr(avg[0].ravel(), avg[1].ravel())[0], abs=1e-9)


def test_the_callers_model_is_untouched_and_a_method_key_works():
    net = _conv_net()
    net.train()
    flags = [p.requires_grad for p in net.parameters()]
    state = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(1, 3, 8, 8)
    res = smooth_mprt(net, x, method="gradcam", layer="2", options=SmoothMPRTOptions(samples=3))
    eff = efficient_mprt(net, x, method="gradcam", layer="2")
    assert res.trained.shape == (8, 8) and np.isfinite(res.similarity) and np.isfinite(eff.entropy[0])
    assert net.training and flags == [p.requires_grad for p in net.parameters()]
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    # the default randomization re-initialises every block: no weight tensor of the copy equals the trained one
    rand = randomized_model(net, seed=0, input_size=(8, 8))
    assert not any(torch.equal(a, b) for a, b in zip(rand.parameters(), net.parameters()))


def test_refusals():
    for bad in (dict(samples=0), dict(noise=-0.1), dict(noise=2.0), dict(batch_size=0), dict(absolute="yes")):
        with pytest.raises(OptionError):
            SmoothMPRTOptions(**bad)
    with pytest.raises(OptionError):
        EfficientMPRTOptions(bins=1)
    net = _linear([[1.0] * 4, [0.0] * 4])
    with pytest.raises(OptionError, match="target"):
        efficient_mprt(net, torch.rand(1, 1, 2, 2), method=lambda m, xb, t: xb[:, 0], target=5)


def _quantus_randomized(net: nn.Module, seed: int) -> nn.Module:
    """Quantus 0.5.3's fully randomized model: every module with reset_parameters, in named_modules
    order, reset after torch.manual_seed(seed + 1) (PyTorchModel.get_random_layer_generator)."""
    work = copy.deepcopy(net)
    for _, module in work.named_modules():
        if hasattr(module, "reset_parameters"):
            torch.manual_seed(seed + 1)
            module.reset_parameters()
    return work


def _quantus_explain(model, inputs, targets, **kwargs):
    xb = torch.from_numpy(np.asarray(inputs)).float()
    return _input_x_gradient(model, xb, int(np.asarray(targets).reshape(-1)[0])).numpy()


def test_smooth_mprt_agrees_with_quantus(monkeypatch):
    """Quantus's SmoothMPRT calls quantus.explain (not explain_func) on the noisy inputs: it is pointed
    at the same input x gradient. Given OUR averaged trained map as a_batch, Quantus draws the trained
    model's noise first (its "original" score must then be exactly 1: the same averaged map) and the
    randomized model's next, as ours does; its last-layer score is our sMPRT."""
    import quantus  # test-only peer: requirements-test-peers.txt

    monkeypatch.setattr(quantus, "explain", _quantus_explain)
    net = _conv_net()
    x = torch.rand(1, 3, 8, 8)
    rand = _quantus_randomized(net, 42)
    ours = smooth_mprt(
        net, x, method=_input_x_gradient, target=2, randomized=rand, options=SmoothMPRTOptions(samples=6, seed=5)
    )
    metric = quantus.SmoothMPRT(nr_samples=6, noise_magnitude=0.1, skip_layers=True, seed=42, disable_warnings=True)
    np.random.seed(5)
    scores = metric(
        model=net,
        x_batch=x.numpy(),
        y_batch=np.array([2]),
        a_batch=np.array(ours.trained, dtype=np.float32)[None, None],
        explain_func=_quantus_explain,
        device="cpu",
    )
    assert scores["original"][0] == pytest.approx(1.0, abs=1e-9)
    last = list(scores)[-1]
    assert float(scores[last][0]) == pytest.approx(ours.similarity, abs=1e-6)


def test_efficient_mprt_agrees_with_quantus():
    import quantus  # test-only peer: requirements-test-peers.txt

    net = _conv_net()
    x = torch.rand(1, 3, 8, 8)
    ours = efficient_mprt(net, x, method=_input_x_gradient, target=0, randomized=_quantus_randomized(net, 42))
    metric = quantus.EfficientMPRT(seed=42, compute_extra_scores=True, disable_warnings=True)
    scores = metric(model=net, x_batch=x.numpy(), y_batch=np.array([0]), explain_func=_quantus_explain, device="cpu")
    assert float(scores[0]) == pytest.approx(ours.relative_rise, abs=1e-6)
    assert float(metric.scores_extra["scores_fraction_model"][0]) == pytest.approx(ours.model_ratio, abs=1e-6)
