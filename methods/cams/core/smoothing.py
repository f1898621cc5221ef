"""Test-time smoothing (``aug_smooth``) and eigen smoothing (``eigen_smooth``) of layer maps.

Every gradient-family method (and CAM) writes its map as a sum over channels of per-channel
terms ``T^k_ij`` (``w_k A^k_ij`` for the channel-weight methods, ``g^k_ij A^k_ij`` for HiResCAM,
``ReLU(g^k_ij A^k_ij)`` for Grad-CAM element-wise ...): ``M_ij = sum_k T^k_ij``. Two options change
how that map is made; both are typed options of the method (:class:`SmoothOptions`), off by default.

``eigen_smooth=True`` — the first principal component of the terms instead of their sum. With the
layer's Z = h*w positions as observations of C features, ``X`` (Z, C) with ``X_zk = T^k_z``, centred
per channel, ``X_c = U S V^T``: ``M = X_c v_1`` reshaped to (h, w). The sign of a singular vector is
arbitrary; it is chosen so that ``M`` correlates positively with the sum map (pytorch-grad-cam
leaves it to the SVD, so its maps can come out negated). Cost: one SVD of a (Z, C) matrix per
sample and layer, in float64 (:func:`first_component`); nothing more is run through the model.

``aug_smooth=True`` — the map averaged over six test-time augmentations: horizontal flip (no/yes)
x brightness (the preprocessed input multiplied by 0.9, 1.0, 1.1, as pytorch-grad-cam does with
ttach's ``Multiply``; for a mean/std-normalized input that scales the contrast around the mean).
The map of a flipped input is flipped back at the layer's grid before averaging (bilinear
upsampling with ``align_corners=False`` commutes with the flip, so this is the same as flipping
the upsampled map). The explained class is the one of the original input for all six. Cost: five
more recorded passes (forward + backward) than the plain map — the unflipped x1.0 view IS the
call's shared pass — and :func:`methods.explain_many` runs those five once for all its methods that
ask for ``aug_smooth``. Averaging over {x, flip x} makes the map exactly flip-equivariant:
``M(flip x) = flip M(x)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import torch

from methods.cams.core.base import CallContext, RecordedMethod
from methods.cams.core.cost import Passes
from methods.cams.core.options import Options, option
from methods.cams.core.recorder import Recording, record
from methods.errors import RecorderError

__all__ = ["AUGMENTATIONS", "SmoothOptions", "AugOptions", "SmoothedMethod", "first_component", "augmented_views"]

AUGMENTATIONS: tuple[tuple[bool, float], ...] = (
    (False, 1.0),
    (False, 0.9),
    (False, 1.1),
    (True, 1.0),
    (True, 0.9),
    (True, 1.1),
)
"""(horizontal flip, brightness factor) of the six views of ``aug_smooth``; the first is the input itself."""


@dataclass(frozen=True)
class AugOptions(Options):
    """``aug_smooth`` alone (for a method whose map already is a principal component)."""

    aug_smooth: bool = option(False, "average over horizontal flip x brightness 0.9/1.0/1.1 (6 passes instead of 1)")


@dataclass(frozen=True)
class SmoothOptions(AugOptions):
    """The smoothing options every gradient-family method has."""

    eigen_smooth: bool = option(
        False, "first principal component of the per-channel terms instead of their sum (one SVD per layer)"
    )


def first_direction(x: torch.Tensor) -> torch.Tensor:
    """The first right singular vector of each (Z, C) matrix in ``x`` (N, Z, C) -> (N, C).

    SVD first; if LAPACK does not converge, the top eigenvector of the (C, C) matrix X^T X (its
    eigenvectors are X's right singular vectors); if that fails too, a RecorderError.
    """
    try:
        return torch.linalg.svd(x, full_matrices=False)[2][:, 0, :]  # vh: (N, min(Z,C), C)
    except torch.linalg.LinAlgError:
        pass
    try:
        return torch.linalg.eigh(x.transpose(1, 2) @ x)[1][:, :, -1]  # eigenvalues ascending: (N, C)
    except torch.linalg.LinAlgError as exc:
        raise RecorderError(
            f"the principal component: neither the SVD nor the eigen-decomposition of the activations converged ({exc}); "
            "the layer's maps are degenerate, choose another layer"
        ) from exc


def first_component(terms: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
    """Projection of per-channel terms on their first principal direction (see the module docstring).

    Args:
        terms: (N, C, h, w) per-channel terms.
        reference: (N, h, w) map the result must correlate positively with; default: the sum of
            the terms over channels.

    Returns:
        (N, h, w) float32; all zeros for a sample whose terms are constant over positions.
        Non-finite terms (and reference values) count as 0.

    Examples:
        >>> s = torch.tensor([[0.0, 1.0], [2.0, 3.0]])          # one spatial pattern ...
        >>> u = torch.tensor([3.0, 4.0])                         # ... in two channels (rank 1)
        >>> first_component(u[None, :, None, None] * s)         # |u| (s - mean s) = 5 (s - 1.5)
        tensor([[[-7.5000, -2.5000],
                 [ 2.5000,  7.5000]]])
    """
    n, c, h, w = terms.shape
    terms = torch.nan_to_num(terms.double(), nan=0.0, posinf=0.0, neginf=0.0)  # the SVD needs finite values
    x = terms.reshape(n, c, h * w).transpose(1, 2)  # (N, Z, C)
    x = x - x.mean(dim=1, keepdim=True)
    if h * w < 2 or c == 0:
        return torch.zeros(n, h, w, dtype=torch.float32, device=terms.device)
    proj = torch.einsum("nzc,nc->nz", x, first_direction(x))  # (N, Z)
    ref = (
        terms.sum(dim=1) if reference is None else torch.nan_to_num(reference.double(), nan=0.0, posinf=0.0, neginf=0.0)
    )
    ref = ref.reshape(n, h * w)  # (N, Z)
    ref = ref - ref.mean(dim=1, keepdim=True)
    sign = torch.sign((proj * ref).sum(dim=1))  # (N,)
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    return (proj * sign[:, None]).reshape(n, h, w).float()


def augmented_views(call: CallContext) -> list[tuple[bool, torch.Tensor, Recording]]:
    """The six ``(flipped, input, recording)`` views of :data:`AUGMENTATIONS`, recorded once per call.

    The first is the call's own input and shared recording; the others are recorded over the
    same layers with the call's targets, with gradients when the shared pass has them.
    """

    def make() -> list[tuple[bool, torch.Tensor, Recording]]:
        views = []
        gradients = call.recording.gradients is not None
        for flip, factor in AUGMENTATIONS:
            if not flip and factor == 1.0:
                views.append((False, call.x, call.recording))
                continue
            xa = call.x.flip(-1) if flip else call.x  # (N, C, H, W), a new tensor
            xa = xa * factor
            views.append((flip, xa, record(call.model, xa, call.modules, target=call.targets, gradients=gradients)))
        return views

    return call.shared("aug_smooth", make)


class SmoothedMethod(RecordedMethod):
    """A recorded method whose map is ``sum_k T^k`` of per-channel terms (:meth:`terms`), with the
    ``aug_smooth`` / ``eigen_smooth`` options of the module docstring when its options have them."""

    options_class: ClassVar[type[AugOptions]] = SmoothOptions
    config: AugOptions

    def passes(self, *, channels: int, input_size: tuple[int, int]) -> Passes:
        """The plain passes, in six views with ``aug_smooth``, plus one SVD per layer with ``eigen_smooth``."""
        p = super().passes(channels=channels, input_size=input_size)
        svds = p.svds + int(bool(getattr(self.config, "eigen_smooth", False)))
        return replace(p, svds=svds, views=len(AUGMENTATIONS) if getattr(self.config, "aug_smooth", False) else 1)

    def terms(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        """Per-channel terms (N, C, h, w) whose channel sum is the map."""
        raise NotImplementedError

    def compute(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        t = self.terms(activations, gradients)  # (N, C, h, w)
        if getattr(self.config, "eigen_smooth", False):
            return first_component(t)  # (N, h, w)
        return t.sum(dim=1)  # (N, h, w)

    def maps_at(self, call: CallContext, x: torch.Tensor, rec: Recording) -> dict[str, torch.Tensor]:
        """The maps of every layer for one view: input ``x`` and its recording ``rec``."""
        out = {}
        for layer in call.layers:
            grads = rec.gradients[layer] if (self.spec.needs_gradients and rec.gradients) else None
            out[layer] = self.compute(rec.activations[layer], grads)
        return out

    def explain_layers(self, call: CallContext) -> dict[str, torch.Tensor]:
        for layer in call.layers:
            self.check_layer(layer, call.recording.activations[layer])
        if not getattr(self.config, "aug_smooth", False):
            return self.maps_at(call, call.x, call.recording)
        views = augmented_views(call)
        total: dict[str, torch.Tensor] = {}
        for flipped, x, rec in views:
            for layer, m in self.maps_at(call, x, rec).items():
                m = m.flip(-1) if flipped else m  # back to the original orientation
                total[layer] = m if layer not in total else total[layer] + m
        return {layer: m / len(views) for layer, m in total.items()}
