"""Reference maps that a real method must beat: Eigen-CAM, random channel weights, a centre blob.

They use no gradients. Eigen-CAM is a real, class-agnostic method; ``random`` and ``centre`` are
controls: a method whose deletion curve is no better than theirs explains nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.cams.core.base import RecordedMethod
from methods.cams.core.options import MAX_SEED, Options, option
from methods.cams.core.registry import register_method
from methods.cams.core.smoothing import first_component

__all__ = ["EigenCam", "RandomCam", "CentreCam", "RandomOptions", "CentreOptions", "centre_gaussian"]


@dataclass(frozen=True)
class RandomOptions(Options):
    """Options of :class:`RandomCam`."""

    seed: int = option(0, "seed of the standard-normal channel weights, 0 to 2**63 - 1", minimum=0, maximum=MAX_SEED)


@dataclass(frozen=True)
class CentreOptions(Options):
    """Options of :class:`CentreCam`."""

    sigma: float = option(
        0.25,
        "standard deviation as a fraction of the map's longer side, at most 100",
        minimum=0.0,
        maximum=100.0,
        exclusive_minimum=True,
    )


@register_method(
    name="eigencam",
    label="Eigen-CAM",
    family="baseline",
    cost="1 fwd + SVD",
    paper="https://arxiv.org/abs/2008.00299",
    summary="First principal component of the activations (class-agnostic).",
    class_agnostic=True,
)
class EigenCam(RecordedMethod):
    """Eigen-CAM (Muhammad & Yeasin, IJCNN 2020, arXiv:2008.00299).

    Treat the layer as Z = h*w observations of C features, ``X`` (Z, C), centred per channel:
    ``X_c = X - mean_z X``. With ``X_c = U S V^T``, the map is the projection on the first
    principal direction, ``M = X_c v_1`` reshaped to (h, w).

    The sign of a singular vector is arbitrary; it is chosen so that ``M`` correlates positively
    with the channel-mean activation ``(1/C) sum_k A^k``.
    Deviation: the paper projects the uncentred activations; centring makes it a true principal
    component and removes the constant offset. NaN/inf activations (a model that overflows) count
    as 0, like NaN in every other map; when the SVD does not converge, ``v_1`` is the top
    eigenvector of ``X_c^T X_c`` instead (the same direction), so no LinAlgError escapes.
    """

    svds_per_layer = 1

    def compute(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        return first_component(activations, reference=activations.mean(dim=1))  # (N, h, w)


@register_method(
    name="random",
    label="Random",
    family="baseline",
    cost="1 fwd",
    summary="Control: activations weighted by seeded standard-normal channel weights.",
    class_agnostic=True,
)
class RandomCam(RecordedMethod):
    """Random channel weights: ``w_k ~ N(0, 1)`` (seeded), ``M = sum_k w_k A^k``.

    A control with the layer's own spatial structure but no knowledge of the class.

    Options (:class:`RandomOptions`): ``seed`` (0). The same seed gives the same weights.
    """

    options_class = RandomOptions
    config: RandomOptions

    def compute(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        n, c = activations.shape[:2]
        gen = torch.Generator().manual_seed(self.config.seed)
        weights = torch.randn(n, c, generator=gen).to(activations)  # (N, C)
        return torch.einsum("nc,nchw->nhw", weights, activations)


@register_method(
    name="centre",
    label="Centre",
    family="baseline",
    cost="none",
    summary="Control: a Gaussian blob in the image centre, whatever the image.",
    class_agnostic=True,
)
class CentreCam(RecordedMethod):
    """A centred isotropic Gaussian on the layer's grid, the same for every image.

    ``M_ij = exp(-((i - c_i)^2 + (j - c_j)^2) / (2 (sigma * max(h, w))^2))`` with the centre
    ``(c_i, c_j) = ((h-1)/2, (w-1)/2)``.

    Options (:class:`CentreOptions`): ``sigma`` (0.25), the standard deviation as a fraction
    of the map's longer side.
    """

    options_class = CentreOptions
    config: CentreOptions

    def compute(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        n, _, h, w = activations.shape
        return centre_gaussian(h, w, sigma=self.config.sigma).expand(n, h, w).clone()


def centre_gaussian(h: int, w: int, *, sigma: float = 0.25) -> torch.Tensor:
    """The (h, w) centred Gaussian described in :class:`CentreCam` (peak value 1)."""
    ii = torch.arange(h, dtype=torch.float32)[:, None] - (h - 1) / 2
    jj = torch.arange(w, dtype=torch.float32)[None, :] - (w - 1) / 2
    s = sigma * max(h, w)
    return torch.exp(-(ii**2 + jj**2) / (2 * s * s))  # (h, w)
