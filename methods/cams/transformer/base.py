"""What the attention methods share: one recorded forward (+ backward) with the attention weights.

An attention method's map is a property of the whole network, not of one layer: it comes out on
the patch grid (N, h, w), computed once per call, and every requested layer key of the
:class:`methods.Explanation` holds that same tensor (the layer argument only decides which
layers the shared recorded pass of :func:`methods.explain_many` visits).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from methods.cams.core.base import CallContext, CamMethod, RecordingNeeds
from methods.cams.transformer.attention import AttentionRecord, record_attention, token_layout
from methods.errors import LayerError

__all__ = ["AttentionMethod", "AttentionPass", "attention_pass"]


@dataclass
class AttentionPass:
    """One forward through the model with attention recorded.

    Attributes:
        record: per layer attention (N, heads, T, T) and block tokens (N, T, C), in the graph when
            ``grad`` was asked for.
        logits: (N, K).
        score: the sum over samples of each sample's target logit (a 0-d tensor).
        n_prefix: prefix tokens before the patch grid.
        grid: (h, w) of the patch grid.
    """

    record: AttentionRecord
    logits: torch.Tensor
    score: torch.Tensor
    n_prefix: int
    grid: tuple[int, int]


def attention_pass(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, *, grad: bool) -> AttentionPass:
    """Run ``model`` on ``x`` with attention recorded (the model's modes and parameters untouched).

    With ``grad`` the input is a leaf that requires grad, so the attention weights are in the
    graph even when the model's parameters are frozen; nothing is written to ``.grad`` of any
    parameter (callers use ``torch.autograd.grad``).

    Raises:
        LayerError: no recordable attention, or a token count that does not fit the patch grid.
    """
    inp = x.detach().requires_grad_(True) if grad else x.detach()
    with torch.set_grad_enabled(grad), record_attention(model) as rec:
        logits = model(inp)
    if not rec.attentions:
        raise LayerError(f"{type(model).__name__}: the forward ran no recordable attention module")
    idx = targets.to(logits.device).long()
    score = logits.gather(1, idx.view(-1, 1)).sum()
    n_tokens = int(rec.attentions[0].shape[-1])
    n_prefix, grid = token_layout(model, (int(x.shape[-2]), int(x.shape[-1])), n_tokens)
    return AttentionPass(rec, logits, score, n_prefix, grid)


class AttentionMethod(CamMethod):
    """Base of the attention family: :meth:`compute` runs once per call; every layer key gets its map."""

    def recording_needs(self, model: nn.Module) -> RecordingNeeds:
        return RecordingNeeds(gradients=False)  # the method runs its own pass

    def explain_layers(self, call: CallContext) -> dict[str, torch.Tensor]:
        reason = self.spec.why_not(call.model)
        if reason is not None:
            raise LayerError(f"{self.spec.label} does not apply: {reason}")
        one = self.compute(call.model, call.x, call.targets)  # (N, h, w)
        return {layer: one for layer in call.layers}

    def compute(self, model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N, h, w) raw map on the patch grid for the classes ``targets`` (N,)."""
        raise NotImplementedError
