"""LeGrad (Bousselham, Boggust, Chaybouti, Strobelt & Kuehne 2024, https://arxiv.org/abs/2404.03214).

Every layer's tokens are read out by the model's own head as if that layer were the last, and
the sensitivity of that read-out to the same layer's attention is averaged::

    s_l = head(norm(z_l))_c                      the target score read from layer l's tokens z_l
    E_l = mean_(h, i) ReLU( ∂s_l / ∂A_l )[h, i, :]   (T,)   mean over heads h and query rows i
    map = mean_l E_l  on the patch tokens, reshaped to the patch grid

(one backward per layer, through the graph of one forward). For the last layer ``s_L`` is the
logit itself.

Average-pooled heads (no class token) get a note (``Explanation.notes``): the paper reads a
class token; on the bundled average-pooled ``scenes_vit`` the maps did not point at the object
(pointing 0.05 on 500 fresh scenes, below the 0.70 of rollout; ``benchmarks/vit_scenes.py``).

Deviation: the paper min-max normalises the summed map; GradLens returns the raw mean over
layers (scaling is the separate normalisation stage, the same map up to scale).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from methods.cams.core.registry import register_method
from methods.cams.transformer.attention import layer_readout, readout_rows, tokens_to_grid, why_not_readout
from methods.cams.transformer.base import AttentionMethod, attention_pass
from methods.errors import GradLensWarning

__all__ = ["LeGrad", "legrad_tokens"]


def legrad_tokens(gradients: list[torch.Tensor]) -> torch.Tensor:
    """(N, T) LeGrad token scores from each layer's ∂s_l/∂A_l (N, heads, T, T)."""
    per_layer = [g.float().clamp(min=0).mean(dim=(1, 2)) for g in gradients]  # each (N, T)
    return torch.stack(per_layer).mean(dim=0)


@register_method(
    name="legrad",
    label="LeGrad",
    family="attention",
    needs_gradients=True,
    cost="1 fwd + L bwd (L layers)",
    paper="https://arxiv.org/abs/2404.03214",
    summary="Positive gradient of each layer's read-out score w.r.t. that layer's attention, averaged.",
    requires=why_not_readout,
    targets=("class",),  # a task target of a ViT (a ViT detector, an embedder) is not tested yet
)
class LeGrad(AttentionMethod):
    """LeGrad on a vision transformer's patch grid (see the module docstring)."""

    def compute(self, model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p = attention_pass(model, x, targets, grad=True)
        readout = layer_readout(model)
        n_tokens = int(p.record.attentions[0].shape[-1])
        if p.n_prefix == 0 or float(readout_rows(model, n_tokens, p.n_prefix)[0]) == 0.0:
            warnings.warn(
                GradLensWarning(
                    "LeGrad: this model averages its tokens (no class-token read-out, which LeGrad was made "
                    "for); on the average-pooled scenes_vit its maps did not point at the object (pointing 0.05)",
                    label="LeGrad",
                ),
                stacklevel=2,
            )
        idx = targets.to(p.logits.device).long().view(-1, 1)
        atts, blocks = p.record.attentions, p.record.blocks
        grads = []
        for i, (a, z) in enumerate(zip(atts, blocks)):
            s = readout(z).gather(1, idx).sum()
            grads.append(torch.autograd.grad(s, a, retain_graph=i + 1 < len(atts))[0].detach())
        return tokens_to_grid(legrad_tokens(grads), p.grid)  # (N, h, w)
