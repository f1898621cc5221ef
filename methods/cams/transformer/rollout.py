"""Attention rollout (Abnar & Zuidema, ACL 2020, https://arxiv.org/abs/2005.00928).

Each layer's attention, averaged over heads, is mixed with the identity for the residual
connection and rows are renormalised; the layers' matrices are multiplied from the input up::

    Ã_l = (mean_h A_l + I) / rowsum(mean_h A_l + I)        (T, T), = (mean_h A_l + I) / 2
    R   = Ã_L · Ã_(L-1) · ... · Ã_1
    map = r^T R  on the patch tokens, reshaped to the patch grid

where ``r`` selects the query row the classifier reads: the class token (one-hot), or the mean
of the patch tokens for an average-pooled head (:func:`~methods.cams.transformer.attention.readout_rows`).
No gradients: the map does not depend on the explained class (``class_agnostic``).

Deviation: none from the paper's rollout (mean over heads, A + I, row-normalised, product over
layers); the average-pooling row is GradLens's reading for heads without a class token.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.cams.core.registry import register_method
from methods.cams.transformer.attention import readout_rows, tokens_to_grid, why_not
from methods.cams.transformer.base import AttentionMethod, attention_pass

__all__ = ["AttentionRollout", "rollout_matrix"]


def rollout_matrix(attentions: list[torch.Tensor]) -> torch.Tensor:
    """(N, T, T) rollout of per-layer attentions (N, heads, T, T), first layer first."""
    n, _, t, _ = attentions[0].shape
    eye = torch.eye(t, dtype=torch.float32, device=attentions[0].device)
    out = eye.expand(n, t, t)
    for a in attentions:
        mixed = a.float().mean(dim=1) + eye  # (N, T, T)
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        out = mixed @ out
    return out


@register_method(
    name="rollout",
    label="Attention rollout",
    family="attention",
    needs_gradients=False,
    class_agnostic=True,
    cost="1 fwd",
    paper="https://arxiv.org/abs/2005.00928",
    summary="Head-averaged attention plus identity, row-normalised, multiplied over layers; the read-out token's row.",
    requires=why_not,
    targets=("class",),  # a task target of a ViT (a ViT detector, an embedder) is not tested yet
)
class AttentionRollout(AttentionMethod):
    """Attention rollout on a vision transformer's patch grid (see the module docstring)."""

    def compute(self, model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p = attention_pass(model, x, targets, grad=False)
        r = rollout_matrix([a.detach() for a in p.record.attentions])  # (N, T, T)
        rows = readout_rows(model, r.shape[-1], p.n_prefix).to(r)  # (T,)
        return tokens_to_grid(torch.einsum("t,nts->ns", rows, r), p.grid)  # (N, h, w)
