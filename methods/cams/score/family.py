"""The score-weighted family: channel weights from extra forward passes, no gradients.

Notation used in every docstring below, for one sample and one layer:

* ``X``       — the preprocessed input (C_in, H, W); ``A^k`` — channel k of the layer (h, w);
* ``U``       — bilinear upsampling to (H, W), ``align_corners=False``;
* ``H_k = (U(A^k) - min U(A^k)) / (max U(A^k) - min U(A^k))`` — the channel's mask in [0, 1]
  (an all-zero mask when ``A^k`` is constant);
* ``p(Z)``    — softmax probability of the explained class c for input Z;
* ``X_b = 0`` — the baseline input: all zeros in the model's input space (for a model fed
  mean/std-normalized images, the mean image);
* ``y(A)``    — pre-softmax logit of class c when the layer outputs A.

Every method returns the RAW, signed map ``M = sum_k w_k A^k`` at the layer's resolution (equal to
the papers' ``sum_k w_k U(A^k)`` upsampled, since U is linear).

Deviations shared by the family:

* Deviation: the papers apply a ReLU to the map; here it is applied by the normalization stage
  (``methods.viz.normalize``, on by default), like the gradient family, so raw maps are signed.
* Deviation (``channels=k``): only the k channels of largest energy ``sum_ij (A^k_ij)^2`` are
  scored, the others get ``w_k = 0`` — about C/k times faster; the papers score every channel.
  ``channels="all"`` (default) or ``k >= C`` is the papers' method.

Channels that are skipped without a forward pass (the result equals running them):

* an all-zero ``A^k`` (common after a ReLU) gets ``w_k = 0``: its term ``w_k A^k`` is 0 whatever
  ``w_k`` a forward pass would give, so the map is unchanged;
* a constant non-zero ``A^k`` has the all-zero mask, so its masked input is the same for every
  such channel: it is scored once per sample ("empty-mask score") and shared.

Options common to the family (keyword-only, validated at construction):

* ``batch_size`` (int >= 1, 32): masked inputs per forward pass; the peak extra memory is
  O(batch_size x input) — no more than ``batch_size`` rows ever reach the model at once;
* ``channels`` ("all" | int k): see above;
* ``precision`` ("fp32" | "bf16"): bf16 runs the extra forwards under autocast. It pays only on
  hardware with native bf16 (CPUs with AMX or AVX512-BF16, recent GPUs); elsewhere it is emulated:
  on the development CPU (AVX-512 without BF16) Score-CAM took 2.3x as long in bf16 as in fp32.
  :func:`bf16_is_native` tells which case a device is.
  All 4-D batches are fed ``channels_last`` when the model accepts it, and (Score-CAM family, from
  ``FOLD_MIN_ROWS`` forwards on) Conv->BatchNorm pairs run as one folded convolution, checked
  against the real logits first (:mod:`methods.cams.score.fold`).

Progress: ``ctx.progress(done, total)`` after every batch, counting forward rows; it ends at
``(total, total)``. Forwards run under ``torch.inference_mode()``, in eval mode, without hooks; the
model's train/eval flags are restored and its parameters are never touched.
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from typing import Any, ClassVar, Mapping

import torch

from methods.cams.base import ForwardMethod, LayerContext
from methods.cams.registry import register_method
from methods.cams.score.engine import (
    ForwardRunner,
    Jobs,
    ScoreWarning,
    bf16_is_native,
    check_options,
    eval_mode,
    noise,
    normalized_masks,
    select_channels,
)
from methods.cams.score.fold import FoldedBatchNorm
from methods.cams.score.tail import SubstitutedForward, TailPlan, check_tail, plan_tail

__all__ = ["ScoreCam", "SsCam", "IsCam", "AblationCam", "ScoreWarning", "ablation_path", "bf16_is_native"]

_COMMON: Mapping[str, Any] = {"batch_size": 32, "channels": "all", "precision": "fp32"}

FOLD_MIN_ROWS = 64
"""Masked forwards from which Conv->BatchNorm pairs are folded (:mod:`methods.cams.score.fold`): the
search and the check cost two single-input forwards, under 3% of 64 rows."""


def _constant(acts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C) masks of constant channels and of all-zero channels."""
    flat = acts.flatten(2)  # (N, C, h*w)
    return flat.amax(2) == flat.amin(2), flat.abs().amax(2) == 0


class _ScoreFamily(ForwardMethod):
    """Shared plumbing: options, the map from the weights."""

    OPTIONS: ClassVar[Mapping[str, Any]] = dict(_COMMON)

    def validate(self) -> None:
        check_options(self.spec.label, self.options)

    def weights(self, ctx: LayerContext) -> torch.Tensor:
        """Channel weights ``w`` (N, C) float32 for ``ctx.layer``."""
        raise NotImplementedError

    def compute_layer(self, ctx: LayerContext) -> torch.Tensor:
        w = self.weights(ctx)  # (N, C)
        return torch.einsum("nc,nchw->nhw", w, ctx.activations.float())  # (N, h, w)


class _MaskedScore(_ScoreFamily):
    """Score-CAM and its variants: ``w_k`` = mean over ``_steps()`` masked inputs of ``p``."""

    def _steps(self) -> int:
        return 1

    def _masked_inputs(self, x_rows: torch.Tensor, masks: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """Inputs (B, C_in, H, W) from input rows (B, C_in, H, W), masks (B, 1, H, W), step ids (B,)."""
        return x_rows * masks

    def weights(self, ctx: LayerContext) -> torch.Tensor:
        o = self.options
        acts, x, targets = ctx.activations, ctx.x, ctx.targets
        n, c = acts.shape[:2]
        size = (int(x.shape[-2]), int(x.shape[-1]))
        chosen = select_channels(acts, o["channels"])  # (N, C)
        constant, zero = _constant(acts)
        scored = chosen & ~constant  # channels that get their own forwards
        shared = chosen & constant & ~zero  # constant non-zero: the empty-mask score, once per sample
        per_sample = []
        for i in range(n):
            ks = scored[i].nonzero().flatten().cpu()
            if shared[i].any():
                ks = torch.cat([ks, torch.tensor([c])])  # channel index c = the empty mask
            per_sample.append(ks)
        steps = self._steps()
        jobs = Jobs.build(per_sample, steps)
        subtract = bool(o.get("baseline_subtract", False))
        sums = torch.zeros(n * (c + 1), dtype=torch.float64, device=x.device)
        p_base = None

        def forward(batch: torch.Tensor, fmt: torch.memory_format) -> torch.Tensor:
            return ctx.model(batch)

        runner = ForwardRunner(precision=o["precision"], device=x.device, total=len(jobs) + int(subtract), progress=ctx.progress)
        fold = FoldedBatchNorm(ctx.model, x[:1]) if len(jobs) >= FOLD_MIN_ROWS else contextlib.nullcontext()
        with eval_mode(ctx.model), fold, runner as run:
            if subtract:
                p_base = run(forward, torch.zeros_like(x[:1])).softmax(dim=1)[0]  # (K,)
            for rows in jobs.batches(o["batch_size"]):
                s = jobs.sample[rows].to(x.device)  # (B,)
                k = jobs.channel[rows].to(x.device)  # (B,)
                maps = acts[s, k.clamp(max=c - 1)]  # (B, h, w)
                maps = torch.where((k == c)[:, None, None], torch.zeros_like(maps), maps)
                masks = normalized_masks(maps, size)  # (B, 1, H, W)
                def inputs(s=s, masks=masks, steps_b=jobs.step[rows]) -> torch.Tensor:
                    return self._masked_inputs(x[s], masks.to(x.dtype), steps_b)  # (B, C_in, H, W)

                probs = run(forward, inputs).softmax(dim=1)  # (B, K)
                p = probs.gather(1, targets[s][:, None])[:, 0]  # (B,)
                sums.index_add_(0, s * (c + 1) + k, p.double())
            run.finish()
        mean = (sums / steps).view(n, c + 1)  # (N, C + 1)
        w = torch.where(scored, mean[:, :c], torch.zeros_like(mean[:, :c]))
        w = torch.where(shared, mean[:, c:].expand(n, c), w)  # (N, C)
        if p_base is not None:
            base = p_base[targets].double()[:, None]  # (N, 1)
            w = torch.where(chosen & ~zero, w - base, w)
        return w.float()


@register_method(
    name="scorecam",
    label="Score-CAM",
    family="score",
    cost="C/batch forwards",
    paper="https://arxiv.org/abs/1910.01279",
    summary="Channel weight = class probability of the input masked by that channel's upsampled map.",
)
class ScoreCam(_MaskedScore):
    """Score-CAM (Wang et al., CVPR-W 2020, arXiv:1910.01279).

    ``w_k = p(X o H_k)``  (``o`` = element-wise product, ``H_k`` broadcast over colour channels), or
    with ``baseline_subtract=True`` the paper's Increase of Confidence ``w_k = p(X o H_k) - p(X_b)``;
    ``M = sum_k w_k A^k``.

    ``w_k`` is the softmax probability, as in the authors' code (not a softmax over channels, as
    some re-implementations do). Options: the family's, plus ``baseline_subtract`` (False).
    Deviation: a constant non-zero channel is scored on its (all-zero) mask, ``w_k = p(X o 0)``;
    the authors' code skips it (``w_k = 0``). All-zero channels contribute 0 either way.
    """

    OPTIONS: ClassVar[Mapping[str, Any]] = {**_COMMON, "baseline_subtract": False}


@register_method(
    name="sscam",
    label="SS-CAM",
    family="score",
    cost="C x num_samples/batch forwards",
    paper="https://arxiv.org/abs/2006.14255",
    summary="Score-CAM with each channel's score averaged over noisy copies of its mask (or masked input).",
)
class SsCam(_MaskedScore):
    """SS-CAM (Wang, Naidu et al., 2020, arXiv:2006.14255): smoothed Score-CAM.

    ``noise_on="mask"``:  ``w_k = (1/S) sum_j p(X o (H_k + std d_j))``;
    ``noise_on="input"``: ``w_k = (1/S) sum_j p(X o H_k + std d_j)``;
    minus ``p(X_b)`` with ``baseline_subtract=True``; ``M = sum_k w_k A^k``. ``d_j`` is standard
    normal noise, i.i.d. per pixel (and per colour channel for input noise), S = ``num_samples``.

    Options: the family's, plus ``num_samples`` (35, as the authors' code), ``std`` (0.2),
    ``noise_on`` ("mask"), ``seed`` (0), ``baseline_subtract`` (False). ``std=0`` is Score-CAM
    exactly and runs one pass per channel.

    Deviation: ``std`` is absolute, in mask units (or input units for input noise); the authors'
    code derives sigma from each activation map's range. The default 0.2 is our choice (a noise
    visible against a [0, 1] mask that does not drown it). The S draws ``d_j`` depend only on
    ``(seed, j)`` and are shared by every channel and sample (common random numbers): channel
    weights differ by the channel, not by the luck of the draw; the authors draw afresh per channel.
    """

    OPTIONS: ClassVar[Mapping[str, Any]] = {
        **_COMMON,
        "num_samples": 35,
        "std": 0.2,
        "noise_on": "mask",
        "seed": 0,
        "baseline_subtract": False,
    }

    def validate(self) -> None:
        super().validate()
        if self.options["noise_on"] not in ("mask", "input"):
            raise ValueError(f"SS-CAM: noise_on={self.options['noise_on']!r} is not valid; expected one of ['mask', 'input']")

    def _steps(self) -> int:
        return 1 if float(self.options["std"]) == 0.0 else int(self.options["num_samples"])

    def _masked_inputs(self, x_rows: torch.Tensor, masks: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        std = float(self.options["std"])
        if std == 0.0:
            return x_rows * masks
        on_mask = self.options["noise_on"] == "mask"
        shape = (1, *x_rows.shape[-2:]) if on_mask else tuple(x_rows.shape[1:])
        draws = {int(j): noise(self.options["seed"], int(j), shape, x_rows.device).to(x_rows.dtype) for j in steps.unique()}
        d = torch.stack([draws[int(j)] for j in steps])  # (B, 1 or C_in, H, W)
        if on_mask:
            return x_rows * (masks + std * d)
        return x_rows * masks + std * d


@register_method(
    name="iscam",
    label="IS-CAM",
    family="score",
    cost="C x steps/batch forwards",
    paper="https://arxiv.org/abs/2010.03023",
    summary="Score-CAM with each channel's score integrated along the path from the empty to the full mask.",
)
class IsCam(_MaskedScore):
    """IS-CAM (Naidu et al., 2020, arXiv:2010.03023): integrated Score-CAM.

    ``w_k = (1/m) sum_{i=1..m} p(X o (i/m) H_k)`` (minus ``p(X_b)`` with ``baseline_subtract``),
    a right Riemann sum of ``integral_0^1 p(X o a H_k) da``; ``M = sum_k w_k A^k``; m = ``steps``.
    ``steps=1`` is Score-CAM.

    Options: the family's, plus ``steps`` (10) and ``baseline_subtract`` (False).
    Deviation: implementations of the paper (e.g. torch-cam) scale the masked input by a running
    sum of the coefficients j/m, which passes 1 after a few steps (the input is amplified, not
    interpolated); here the path is the straight line ``a H_k``, a in (0, 1].
    """

    OPTIONS: ClassVar[Mapping[str, Any]] = {**_COMMON, "steps": 10, "baseline_subtract": False}

    def _steps(self) -> int:
        return int(self.options["steps"])

    def _masked_inputs(self, x_rows: torch.Tensor, masks: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        alpha = (steps.to(x_rows.device, x_rows.dtype) + 1) / self._steps()  # (B,)
        return x_rows * (masks * alpha[:, None, None, None])


_PLANS: "weakref.WeakKeyDictionary[torch.nn.Module, dict[tuple, TailPlan]]" = weakref.WeakKeyDictionary()


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
    from methods.cams.recorder import record

    rec = record(model, x[:1], [layer], gradients=False)
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


@register_method(
    name="ablationcam",
    label="Ablation-CAM",
    family="score",
    cost="C/batch tail forwards",
    paper="https://openaccess.thecvf.com/content_WACV_2020/html/Desai_Ablation-CAM_Visual_Explanations_for_Deep_Convolutional_Network_via_Gradient-free_Localization_WACV_2020_paper.html",
    summary="Channel weight = relative drop of the class logit when that channel is set to zero.",
)
class AblationCam(_ScoreFamily):
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

    OPTIONS: ClassVar[Mapping[str, Any]] = {**_COMMON, "path": "auto"}

    def validate(self) -> None:
        super().validate()
        if self.options["path"] not in ("auto", "full"):
            raise ValueError(f"Ablation-CAM: path={self.options['path']!r} is not valid; expected one of ['auto', 'full']")

    def weights(self, ctx: LayerContext) -> torch.Tensor:
        o = self.options
        acts, x, targets = ctx.activations, ctx.x, ctx.targets
        n, c = acts.shape[:2]
        chosen = select_channels(acts, o["channels"])  # (N, C)
        _, zero = _constant(acts)
        scored = chosen & ~zero
        # per sample: first the unablated reference (channel index c = none), then each channel
        per_sample = [torch.cat([torch.tensor([c]), scored[i].nonzero().flatten().cpu()]) for i in range(n)]
        jobs = Jobs.build(per_sample, 1)
        acts_in = acts.to(x.dtype)
        with eval_mode(ctx.model):
            placeholders, note = self._route(ctx, acts_in)
            runner = ForwardRunner(precision=o["precision"], device=x.device, total=len(jobs), progress=ctx.progress)
            scores = torch.zeros(n * (c + 1), dtype=torch.float64, device=x.device)
            with SubstitutedForward(ctx.model, ctx.layer, placeholders) as substituted, runner as run:
                for rows in jobs.batches(o["batch_size"]):
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
        if self.options["path"] == "full":
            return {}, ""
        fresh = False
        while True:
            try:
                plan, cached = _plan(ctx.model, ctx.x, ctx.layer, fresh=fresh)
            except Exception as exc:  # noqa: BLE001 - the full network may still work
                return {}, f"recording the module order failed ({type(exc).__name__}: {exc}); running the full network for every ablated channel (slower)"
            if not plan.stubs:
                return {}, ""  # nothing before the layer: full forwards ARE the tail
            why = check_tail(ctx.model, ctx.x, ctx.layer, plan, acts_in, ctx.logits, self.options["batch_size"])
            if not why or not cached:
                break
            fresh = True  # a stale cached plan (the model changed): plan once more
        if why:
            return {}, f"{why}; running the full network for every ablated channel (slower)"
        return plan.placeholders, ""
