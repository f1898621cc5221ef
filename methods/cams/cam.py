"""CAM: the class activation map of a network whose head is global average pooling + one linear map.

The head is found, not assumed: among the model's ``nn.Linear`` modules with ``in_features = C``
and ``out_features = K`` (C = the layer's channels, K = the classes) and its 1x1 ``nn.Conv2d``
modules with ``C -> K`` channels, stride 1 and no padding (a 1x1 convolution before the pooling
is the same linear map), the first one whose weights reproduce the model's logits from the
layer's activations, ``GAP(A) W^T + b == logits`` (``max |difference| <= 1e-4 (1 + max |logits|)``), is
the head. That check is what makes CAM's formula exact; no module order or name is trusted. Any
other head (two linear layers, a max-pool, an activation after the layer, a layer that is not the
last one) is a :class:`methods.errors.HeadError` that says so and points to Grad-CAM.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.cams.core.base import CallContext
from methods.cams.core.recorder import Recording
from methods.cams.core.registry import register_method
from methods.cams.core.smoothing import SmoothedMethod, SmoothOptions, first_component
from methods.errors import HeadError

__all__ = ["Cam", "find_head"]


def _head_candidates(model: nn.Module, c: int, k: int) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    out = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear) and m.in_features == c and m.out_features == k:
            weight = m.weight.detach()  # (K, C)
        elif (
            isinstance(m, nn.Conv2d)
            and m.in_channels == c
            and m.out_channels == k
            and m.groups == 1
            and tuple(m.kernel_size) == (1, 1)
            and tuple(m.stride) == (1, 1)
            and m.padding in ((0, 0), 0, "valid")
        ):
            weight = m.weight.detach()[:, :, 0, 0]  # (K, C)
        else:
            continue
        bias = m.bias.detach() if m.bias is not None else torch.zeros(k, device=weight.device, dtype=weight.dtype)
        out.append((name, weight, bias))
    return out


def find_head(
    model: nn.Module, layer: str, activations: torch.Tensor, logits: torch.Tensor
) -> tuple[str, torch.Tensor]:
    """The head module's name and its weight matrix W (K, C) float32, checked against the logits.

    Args:
        model: the model.
        layer: the layer's name (for messages).
        activations: (N, C, h, w) the layer's recorded output.
        logits: (N, K) the model's logits for the same input.

    Raises:
        HeadError: no Linear / 1x1 Conv2d of matching shape turns ``GAP(activations)`` into ``logits``.
    """
    n, c = activations.shape[:2]
    k = logits.shape[1]
    pooled = activations.double().mean(dim=(2, 3))  # (N, C)
    tol = 1e-4 * (1.0 + float(logits.abs().max()))
    best = None
    candidates = _head_candidates(model, c, k)
    for name, weight, bias in candidates:
        pred = pooled @ weight.double().T.to(pooled.device) + bias.double().to(pooled.device)  # (N, K)
        err = float((pred - logits.double()).abs().max())
        if err <= tol:
            return name, weight.float().to(activations.device)
        best = err if best is None else min(best, err)
    found = (
        (
            f"none of its {len(candidates)} Linear / 1x1-Conv2d module(s) with {c} -> {k} features turns "
            f"the layer's global average into the logits (closest: max |error| {best:.3g})"
        )
        if candidates
        else (f"it has no Linear({c}, {k}) and no 1x1 Conv2d({c}, {k}) module")
    )
    raise HeadError(
        f"CAM needs the layer's output to reach the logits through global average pooling and ONE linear map; "
        f"at layer {layer!r} ({c} channels, {k} classes) {found}. Explain the last layer before the pooling "
        "of a GAP + linear network, or use 'gradcam' (it equals CAM / (h*w) on such heads and generalises "
        "it to any head)."
    )


@register_method(
    name="cam",
    label="CAM",
    family="activation",
    cost="1 fwd",
    paper="https://arxiv.org/abs/1512.04150",
    summary="Activations weighted by the linear head's row of the class (GAP + linear networks only).",
    needs_gradients=False,
    final_layer_only=True,
    targets=("class",),  # a GAP + linear head reaches class logits, never a box, region or embedding score
)
class Cam(SmoothedMethod):
    """CAM (Zhou et al., CVPR 2016, "Learning Deep Features for Discriminative Localization",
    arXiv:1512.04150).

    For a network ``y_c = sum_k W_ck (1/Z) sum_ij A^k_ij + b_c`` (global average pooling, then one
    linear layer), ``M_ij = sum_k W_ck A^k_ij``, with ``W_c`` the head's row of the explained class
    c (found and checked as the module docstring says) and Z = h*w. Then ``y_c = M.mean() + b_c``:
    the map splits the logit over positions. Grad-CAM's weights are ``W_ck / Z`` on such a network,
    so Grad-CAM = CAM / Z.

    Deviation: none in the formula; the paper's ReLU and scaling are the normalization stage's.
    Options: ``aug_smooth``, ``eigen_smooth`` (:mod:`methods.cams.core.smoothing`; the terms are
    ``W_ck A^k``). Needs no gradients: one forward.

    Raises:
        HeadError: the layer does not feed a GAP + linear head.
    """

    config: SmoothOptions

    def _weights(self, call: CallContext, layer: str) -> torch.Tensor:
        def make() -> torch.Tensor:
            rec = call.recording
            return find_head(call.model, layer, rec.activations[layer], rec.logits)[1]  # (K, C)

        return call.shared(("cam_head", layer), make)

    def maps_at(self, call: CallContext, x: torch.Tensor, rec: Recording) -> dict[str, torch.Tensor]:
        out = {}
        for layer in call.layers:
            weights = self._weights(call, layer)[call.targets]  # (N, C)
            acts = rec.activations[layer]  # (N, C, h, w)
            terms = weights[:, :, None, None] * acts  # (N, C, h, w)
            out[layer] = first_component(terms) if self.config.eigen_smooth else terms.sum(dim=1)  # (N, h, w)
        return out
