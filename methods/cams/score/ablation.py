"""Ablation-CAM: channel weights from the drop of the class logit when a channel is zeroed.

See :mod:`methods.cams.score` for the family's notation, options and shared deviations.
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass

import torch

from methods.cams.core.base import LayerContext
from methods.cams.core.options import option
from methods.cams.core.recorder import record
from methods.cams.core.registry import register_method
from methods.cams.core.signed import warn_if_signed
from methods.cams.score.engine import (
    ForwardRunner,
    Jobs,
    ScoreFamily,
    ScoreOptions,
    ScoreWarning,
    constant_channels,
    eval_mode,
    select_channels,
)
from methods.cams.score.tail import SubstitutedForward, TailPlan, check_tail, plan_tail
from methods.errors import LayerError

__all__ = ["AblationCam", "AblationOptions", "ablation_path"]


@dataclass(frozen=True)
class AblationOptions(ScoreOptions):
    """Options of :class:`AblationCam`."""

    path: str = option(
        "auto",
        "'auto': run only the network after the layer when that is exact; 'full': always "
        "the whole network (for checking)",
        choices=("auto", "full"),
    )


_PLANS: weakref.WeakKeyDictionary[torch.nn.Module, dict[tuple, TailPlan]] = weakref.WeakKeyDictionary()


def _plan(model: torch.nn.Module, x: torch.Tensor, layer: str, fresh: bool = False) -> tuple[TailPlan, bool]:
    """The tail plan of (model, layer, input shape), cached per model object; and whether cached.

    A cached plan is safe even if the model changed since: every call checks it against the real
    logits (:func:`methods.cams.score.tail.check_tail`) and re-plans once when a cached plan fails.
    """
    key = (layer, tuple(x.shape[1:]), x.dtype, str(x.device))
    per_model = _PLANS.setdefault(model, {})
    cached = key in per_model and not fresh
    if not cached:
        per_model[key] = plan_tail(model, x[:1], layer)
    return per_model[key], cached


def ablation_path(model: torch.nn.Module, x: torch.Tensor, layer: str) -> tuple[bool, str]:
    """Whether Ablation-CAM runs only the network after ``layer`` for this model and input size.

    Runs what a real call runs before its ablations (one recorded pass, the module-order pass,
    the check of the tail on ``x[:1]``). Returns ``(True, "")``, or ``(False, reason)`` when every
    ablated copy needs a full forward pass (the reason a dashboard can show).
    """
    rec = record(model, x[:1], [layer], gradients=False)
    if layer in rec.layouts and rec.layouts[layer].kind != "nchw":
        return False, _layout_refusal(layer, rec.layouts[layer].kind)
    with eval_mode(model):
        try:
            plan, _ = _plan(model, x[:1], layer)
        except Exception as exc:  # noqa: BLE001
            return False, f"recording the module order failed ({type(exc).__name__}: {exc})"
        if not plan.stubs:
            return False, plan.reason
        acts = rec.activations[layer].to(x.dtype)
        why = check_tail(model, x[:1], layer, plan, acts, rec.logits, batch_size=1)
    return (not why), why


def _layout_refusal(layer: str, kind: str) -> str:
    """Why Ablation-CAM refuses a token or channels-last layer."""
    what = "transformer tokens (N, T, C)" if kind == "tokens" else "channels last (N, h, w, C)"
    return (
        f"Ablation-CAM runs the network on ablated copies of layer {layer!r}'s output, and that output is "
        f"{what}, not (N, C, h, w): it is not supported there. Use Score-CAM or a gradient method at this "
        "layer, or Ablation-CAM at a convolutional layer"
    )


@register_method(
    name="ablationcam",
    label="Ablation-CAM",
    family="score",
    cost="C/batch tail forwards",
    paper="https://openaccess.thecvf.com/content_WACV_2020/html/Desai_Ablation-CAM_Visual_Explanations_for_Deep_Convolutional_Network_via_Gradient-free_Localization_WACV_2020_paper.html",
    summary="Channel weight = relative drop of the class logit when that channel is set to zero.",
)
class AblationCam(ScoreFamily):
    """Ablation-CAM (Desai & Ramaswamy, WACV 2020).

    ``w_k = (y(A) - y(A with channel k set to 0)) / |y(A)|``  and  ``M = sum_k w_k A^k``.

    Only the network after the layer is run for the C ablated copies when the layer's output is
    the only route from input to logits (see :mod:`methods.cams.score.tail`: trunk modules replaced by
    placeholders, checked per call against the real logits); otherwise the full network runs for
    every copy and a :class:`ScoreWarning` says why. ``y(A)`` is recomputed by the same route and
    precision as the ablated scores, so most bf16 rounding cancels in the difference.

    Options: the family's, plus ``path`` ("auto": the tail when possible; "full": always the full
    network, for checking).
    Deviation: the paper divides by ``y``; dividing by ``|y|`` keeps a negative class logit from
    flipping the map's sign (identical for ``y > 0``, the paper's setting); ``y = 0`` divides by 1.
    An all-zero channel is not run: ablating it changes nothing, ``w_k = 0``.
    """

    options_class = AblationOptions
    config: AblationOptions

    def weights(self, ctx: LayerContext) -> torch.Tensor:
        o = self.config
        acts, x, targets = ctx.activations, ctx.x, ctx.targets
        if ctx.layout != "nchw":
            raise LayerError(_layout_refusal(ctx.layer, ctx.layout))
        n, c = acts.shape[:2]
        warn_if_signed(
            self.spec.label,
            ctx.layer,
            acts,
            "Its weights come from zeroing a channel, which RAISES a channel of negative activations instead of removing its evidence",
        )
        chosen = select_channels(acts, o.channels)  # (N, C)
        _, zero = constant_channels(acts)
        scored = chosen & ~zero
        # per sample: first the unablated reference (channel index c = none), then each channel
        per_sample = [torch.cat([torch.tensor([c]), scored[i].nonzero().flatten().cpu()]) for i in range(n)]
        jobs = Jobs.build(per_sample, 1)
        acts_in = acts.to(x.dtype)
        with eval_mode(ctx.model):
            placeholders, note = self._route(ctx, acts_in)
            runner = ForwardRunner(precision=o.precision, device=x.device, total=len(jobs), progress=ctx.progress)
            scores = torch.zeros(n * (c + 1), dtype=torch.float64, device=x.device)
            with SubstitutedForward(ctx.model, ctx.layer, placeholders) as substituted, runner as run:
                for rows in jobs.batches(o.batch_size):
                    s = jobs.sample[rows].to(x.device)  # (B,)
                    k = jobs.channel[rows].to(x.device)  # (B,)
                    ablated = acts_in[s]  # (B, C, h, w), a copy
                    hit = (k < c).nonzero().flatten()
                    ablated[hit, k[hit]] = 0
                    x_rows = x[s]  # (B, C_in, H, W)

                    def forward(batch: torch.Tensor, fmt: torch.memory_format, x_rows=x_rows) -> torch.Tensor:
                        return substituted(x_rows.contiguous(memory_format=fmt), batch)

                    y = run(forward, ablated).gather(1, targets[s][:, None])[:, 0]  # (B,)
                    scores[s * (c + 1) + k] = y.double()
                run.finish()
        if note:
            warnings.warn(f"Ablation-CAM at layer {ctx.layer!r}: {note}", ScoreWarning, stacklevel=3)
        scores = scores.view(n, c + 1)
        ref = scores[:, c:]  # (N, 1)
        denom = torch.where(ref != 0, ref.abs(), torch.ones_like(ref))
        w = (ref - scores[:, :c]) / denom  # (N, C)
        return torch.where(scored, w, torch.zeros_like(w)).float()

    def _route(self, ctx: LayerContext, acts_in: torch.Tensor) -> tuple[dict[str, torch.Tensor], str]:
        """Placeholders for the fast path (checked), or ``({}, why not)`` for full forwards."""
        if self.config.path == "full":
            return {}, ""
        fresh = False
        while True:
            try:
                plan, cached = _plan(ctx.model, ctx.x, ctx.layer, fresh=fresh)
            except Exception as exc:  # noqa: BLE001 - the full network may still work
                return (
                    {},
                    f"recording the module order failed ({type(exc).__name__}: {exc}); running the full network for every ablated channel (slower)",
                )
            if not plan.stubs:
                return {}, ""  # nothing before the layer: full forwards ARE the tail
            why = check_tail(ctx.model, ctx.x, ctx.layer, plan, acts_in, ctx.logits, self.config.batch_size)
            if not why or not cached:
                break
            fresh = True  # a stale cached plan (the model changed): plan once more
        if why:
            return {}, f"{why}; running the full network for every ablated channel (slower)"
        return plan.placeholders, ""
