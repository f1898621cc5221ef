"""Baselines: Eigen-CAM on hand values, the random control's seeding, the centre blob."""

from __future__ import annotations

import math

import torch

import methods
from methods.cams.baselines import centre_gaussian
from tiny_models import GapNet


def test_eigencam_hand_computed():
    """A^1 = [[1,0],[0,3]], A^2 = 2 A^1. Positions as rows: (1,2),(0,0),(0,0),(3,6); centred:
    (0,0),(-1,-2),(-1,-2),(2,4); first principal direction (1,2)/sqrt5, projections 0, -sqrt5,
    -sqrt5, 2 sqrt5. The channel mean 1.5 A^1 correlates positively with that sign."""
    a1 = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    acts = torch.stack([a1, 2 * a1])[None]  # (1, 2, 2, 2)
    out = methods.create_method("eigencam").compute(acts, None)
    r5 = math.sqrt(5)
    torch.testing.assert_close(out[0], torch.tensor([[0.0, -r5], [-r5, 2 * r5]]), rtol=1e-5, atol=1e-5)


def test_eigencam_sign_follows_mean_activation():
    a1 = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    flipped = methods.create_method("eigencam").compute(torch.stack([-a1, -2 * a1])[None], None)
    # the mean activation now peaks where a1 is smallest: the sign flips with it
    assert flipped[0, 1, 1] < 0 and flipped[0, 0, 1] > 0


def test_random_is_seeded_and_seed_changes_it():
    net = GapNet()
    x = torch.randn(2, 3, 16, 16)
    a = methods.explain(net, x, "random", layers=["features.2"], seed=3).maps["features.2"]
    b = methods.explain(net, x, "random", layers=["features.2"], seed=3).maps["features.2"]
    c = methods.explain(net, x, "random", layers=["features.2"], seed=4).maps["features.2"]
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_random_weights_are_standard_normal_draws():
    acts = torch.zeros(1, 3, 1, 1)
    acts[0, :, 0, 0] = torch.tensor([1.0, 0.0, 0.0])  # picks out w_1
    out = methods.create_method("random", seed=7).compute(acts, None)
    expected = torch.randn(1, 3, generator=torch.Generator().manual_seed(7))[0, 0]
    assert out.item() == expected.item()


def test_centre_gaussian_values():
    g = centre_gaussian(3, 3, sigma=0.5)  # s = 1.5
    assert g[1, 1] == 1.0
    assert math.isclose(g[0, 1].item(), math.exp(-1 / (2 * 1.5**2)), rel_tol=1e-6)
    assert math.isclose(g[0, 0].item(), math.exp(-2 / (2 * 1.5**2)), rel_tol=1e-6)


def test_eigencam_with_non_finite_activations_gives_a_finite_map():
    """A model whose layer overflows (inf, then NaN) from a finite input: the SVD raised a raw
    LinAlgError ("the input matrix contained non-finite values"); now the non-finite values count
    as 0 and the map is the one of the cleaned activations."""
    a1 = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    acts = torch.stack([a1, 2 * a1])[None].clone()  # (1, 2, 2, 2)
    dirty = acts.clone()
    dirty[0, 0, 0, 1] = float("nan")
    dirty[0, 1, 0, 1] = float("inf")  # both were 0 at (0, 1): cleaning gives back the hand example
    out = methods.create_method("eigencam").compute(dirty, None)
    torch.testing.assert_close(out, methods.create_method("eigencam").compute(acts, None))
    assert torch.isfinite(out).all()


def test_eigencam_falls_back_to_the_covariance_when_svd_fails(monkeypatch):
    """When LAPACK's SVD does not converge, the top eigenvector of X^T X gives the same map (the
    hand example of test_eigencam_hand_computed)."""

    def no_convergence(*args, **kwargs):
        raise torch.linalg.LinAlgError("linalg.svd: The algorithm failed to converge")

    monkeypatch.setattr(torch.linalg, "svd", no_convergence)
    a1 = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    out = methods.create_method("eigencam").compute(torch.stack([a1, 2 * a1])[None], None)
    r5 = math.sqrt(5)
    torch.testing.assert_close(out[0], torch.tensor([[0.0, -r5], [-r5, 2 * r5]]), rtol=1e-5, atol=1e-5)
