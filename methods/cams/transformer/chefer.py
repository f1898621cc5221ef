"""Gradient-weighted attention relevance (Chefer, Gur & Wolf; CVPR 2021, https://arxiv.org/abs/2012.09838).

GradLens implements the relevance update of the authors' follow-up for self-attention encoders
(Chefer, Gur & Wolf, ICCV 2021, https://arxiv.org/abs/2103.15679, eq. 5-6)::

    Ā_l = mean_h ( (∂y_c/∂A_l) ⊙ A_l )^+          (T, T), ⁺ = max(·, 0)
    R_0 = I,   R_l = R_(l-1) + Ā_l · R_(l-1)       for l = 1 .. L
    map = r^T (R_L - I)  on the patch tokens, reshaped to the patch grid

``y_c`` is the target logit, ``A_l`` layer l's softmax attention (N, heads, T, T), ``r`` the
query row the classifier reads (the class token; the patch mean for average pooling). For a
class-token read-out, subtracting ``I`` changes nothing on the patch tokens (the paper's
``R[0, 1:]``); for an average-pooled head it removes each patch's own residual path, a uniform
floor of ``1/n`` on every patch that would otherwise swamp the map's energy.

Deviation: the CVPR 2021 paper weights the attention's LRP relevance (not ``A_l``) by the
gradient and multiplies ``I + Ā_l`` over layers; its full LRP through every layer is not
implemented. The ICCV 2021 rule above is the same authors' gradient x attention update, which
needs no LRP and which they report as equal or better on ViT.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.cams.core.registry import register_method
from methods.cams.transformer.attention import readout_rows, tokens_to_grid, why_not
from methods.cams.transformer.base import AttentionMethod, attention_pass

__all__ = ["CheferRelevance", "relevance_matrix"]


def relevance_matrix(attentions: list[torch.Tensor], gradients: list[torch.Tensor]) -> torch.Tensor:
    """(N, T, T) relevance R_L from per-layer attentions and their gradients (N, heads, T, T)."""
    n, _, t, _ = attentions[0].shape
    rel = torch.eye(t, dtype=torch.float32, device=attentions[0].device).expand(n, t, t)
    for a, g in zip(attentions, gradients):
        weighted = (g.float() * a.float()).clamp(min=0).mean(dim=1)  # (N, T, T)
        rel = rel + weighted @ rel
    return rel


@register_method(
    name="chefer",
    label="Chefer relevance",
    family="attention",
    needs_gradients=True,
    cost="1 fwd + 1 bwd",
    paper="https://arxiv.org/abs/2012.09838",
    summary="Attention weighted by its gradient (positive part, head mean), accumulated R += Ā R over layers.",
    requires=why_not,
    targets=("class",),  # a task target of a ViT (a ViT detector, an embedder) is not tested yet
)
class CheferRelevance(AttentionMethod):
    """Gradient x attention relevance on a vision transformer's patch grid (see the module docstring)."""

    def compute(self, model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p = attention_pass(model, x, targets, grad=True)
        atts = p.record.attentions
        grads = torch.autograd.grad(p.score, atts)
        rel = relevance_matrix([a.detach() for a in atts], [g.detach() for g in grads])  # (N, T, T)
        rel = rel - torch.eye(rel.shape[-1], dtype=rel.dtype, device=rel.device)
        rows = readout_rows(model, rel.shape[-1], p.n_prefix).to(rel)
        return tokens_to_grid(torch.einsum("t,nts->ns", rows, rel), p.grid)  # (N, h, w)
