"""Smooth Grad-CAM++: Grad-CAM++ with its derivatives averaged over noisy copies of the input."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch

from methods.cams.core.base import CallContext
from methods.cams.core.cost import Passes
from methods.cams.core.options import MAX_SEED, option
from methods.cams.core.recorder import Recording, record
from methods.cams.core.registry import register_method
from methods.cams.core.signed import warn_if_signed
from methods.cams.core.smoothing import SmoothedMethod, SmoothOptions, first_component
from methods.cams.gradient import PP_SIGNED_NOTE, gradcampp_weights

__all__ = ["SmoothGradCamPlusPlus", "SmoothGradCamPlusPlusOptions", "input_noise"]


@dataclass(frozen=True)
class SmoothGradCamPlusPlusOptions(SmoothOptions):
    """Options of :class:`SmoothGradCamPlusPlus`."""

    num_samples: int = option(
        8, "noisy copies of the input (one forward + backward each), at most 256", minimum=1, maximum=256
    )
    std: float = option(
        0.3, "noise standard deviation, in the units of the preprocessed input, at most 100", minimum=0.0, maximum=100.0
    )
    seed: int = option(0, "seed of the noise draws, 0 to 2**63 - 1", minimum=0, maximum=MAX_SEED)


def input_noise(seed: int, num_samples: int, shape: tuple[int, ...], std: float) -> Iterator[torch.Tensor]:
    """The ``num_samples`` noise draws ``std * d_j`` of one call, each of ``shape`` (1, C, H, W),
    made one at a time as the caller asks for them (one input's worth of noise exists at once, not
    ``num_samples``: 3,000 draws made up front were 610 MB).

    One ``torch.Generator`` seeded with ``seed`` draws them in order, so draw j depends only on
    (seed, j, shape): every sample of a batch sees the same draws (its map does not depend on the
    batch it is in), and ``torch.manual_seed(seed)`` followed by ``Normal(0, std).sample(shape)``
    calls (what torch-cam does) gives the same numbers for a batch of one.
    """
    gen = torch.Generator().manual_seed(int(seed))
    for _ in range(num_samples):
        yield torch.randn(shape, generator=gen) * std


@register_method(
    name="smoothgradcampp",
    label="Smooth Grad-CAM++",
    family="gradient",
    cost="num_samples x (1 fwd + 1 bwd)",
    paper="https://arxiv.org/abs/1908.01224",
    summary="Grad-CAM++ with its first, second and third derivatives averaged over noisy copies of the input.",
)
class SmoothGradCamPlusPlus(SmoothedMethod):
    """Smooth Grad-CAM++ (Omeiza et al., 2019, arXiv:1908.01224): SmoothGrad's noise averaging
    (Smilkov et al. 2017) applied to Grad-CAM++'s derivatives.

    With ``x_j = x + std d_j`` (``d_j`` standard normal, j = 1..n, n = ``num_samples``) and
    ``g_j = dy_c/dA`` at ``x_j``, the means ``D1 = (1/n) sum_j g_j``, ``D2 = (1/n) sum_j g_j^2`` and
    ``D3 = (1/n) sum_j g_j^3`` (the exponential-score closed form of the higher derivatives) give
    ``alpha^k_ij = D2 / (2 D2 + sum_ab A^k_ab D3)`` (0 where that denominator is 0),
    ``w_k = sum_ij alpha^k_ij ReLU(D1)`` and ``M = sum_k w_k A^k``, where ``A`` is the layer's
    activation for the clean input ``x``. ``std=0`` (or a model whose gradients do not depend on
    the input) gives Grad-CAM++ exactly.

    Options: ``num_samples`` (8), ``std`` (0.3, absolute, in preprocessed-input units: torch-cam's
    default; for a mean/std-normalized image whose values span about 4.5 that is 7 % of the range,
    under SmoothGrad's suggested 10-20 %), ``seed`` (0), and ``aug_smooth`` / ``eigen_smooth``
    (:mod:`methods.cams.core.smoothing`; with ``aug_smooth`` each of the six views gets its own noisy
    copies: 6 x num_samples passes).

    Deviation: the paper's alpha has the mean FIRST derivative in its numerator; with it ``n = 1``
    would not be Grad-CAM++, so the mean second derivative is used (as torch-cam does). torch-cam
    multiplies alpha by ReLU of the LAST noisy gradient instead of ``ReLU(D1)`` and adds 1e-8 to the
    denominator; here it is the mean, and exact zeros are handled as in Grad-CAM++. torch-cam 0.5.0
    also sums its weights over the LAST noisy input's activations (its activation hook still
    records during the noisy forwards), not the clean input's: measured in docs/methods.md. The
    draws are shared by every sample of a batch (see :func:`input_noise`).
    """

    options_class = SmoothGradCamPlusPlusOptions
    config: SmoothGradCamPlusPlusOptions

    def passes(self, *, channels: int, input_size: tuple[int, int]) -> Passes:
        """The clean pass and one forward + backward per noisy copy (per view with ``aug_smooth``)."""
        p = super().passes(channels=channels, input_size=input_size)
        noisy = 0 if self.config.std == 0 else self.config.num_samples
        return replace(p, forwards=1 + noisy, backwards=1 + noisy)

    def check_layer(self, layer: str, activations: torch.Tensor) -> None:
        warn_if_signed(self.spec.label, layer, activations, PP_SIGNED_NOTE)

    def maps_at(self, call: CallContext, x: torch.Tensor, rec: Recording) -> dict[str, torch.Tensor]:
        o = self.config
        steps = 1 if o.std == 0 else o.num_samples
        draws = input_noise(o.seed, steps, (1, *x.shape[1:]), o.std)
        sums: dict[str, list[torch.Tensor]] = {}
        for d in draws:
            noisy = rec if o.std == 0 else record(call.model, x + d.to(x), call.modules, target=call.targets)
            assert noisy.gradients is not None  # a gradient method's recordings carry gradients
            for layer in call.layers:
                g = noisy.gradients[layer].double()  # (N, C, h, w)
                parts = [g, g * g, g * g * g]
                sums[layer] = parts if layer not in sums else [s + p for s, p in zip(sums[layer], parts)]
        out = {}
        for layer in call.layers:
            acts = rec.activations[layer].double()  # (N, C, h, w), the clean activations of this view
            d1, d2, d3 = (s / steps for s in sums[layer])
            weights = gradcampp_weights(acts, d1, d2, d3)  # (N, C)
            terms = weights[:, :, None, None] * acts  # (N, C, h, w)
            out[layer] = (first_component(terms) if o.eigen_smooth else terms.sum(dim=1)).float()
        return out
