"""Score-CAM, SS-CAM and IS-CAM: channel weights from the class probability of masked inputs.

The family's notation (``X``, ``A^k``, ``U``, ``H_k``, ``p``), options, skipped channels and
shared deviations are in :mod:`methods.cams.score`; each class below gives its own formula.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from methods._internal.bn_folding import FOLD_MIN_ROWS, FoldedBatchNorm
from methods.cams.core.base import LayerContext
from methods.cams.core.options import MAX_SEED, option
from methods.cams.core.registry import register_method
from methods.cams.score.engine import (
    ForwardRunner,
    Jobs,
    ScoreFamily,
    ScoreOptions,
    constant_channels,
    eval_mode,
    noise,
    normalized_masks,
    select_channels,
)
from methods.targets.base import explained_scores

__all__ = ["ScoreCam", "SsCam", "IsCam", "ScoreCamOptions", "SsCamOptions", "IsCamOptions", "FOLD_MIN_ROWS"]


@dataclass(frozen=True)
class ScoreCamOptions(ScoreOptions):
    """Options of :class:`ScoreCam`."""

    baseline_subtract: bool = option(
        False, "subtract p(baseline) from every weight (the paper's Increase of Confidence)"
    )


@dataclass(frozen=True)
class SsCamOptions(ScoreOptions):
    """Options of :class:`SsCam`."""

    num_samples: int = option(
        35, "noisy copies per channel, one forward each (the authors' code: 35), at most 256", minimum=1, maximum=256
    )
    std: float = option(
        0.2,
        "noise standard deviation, in mask units (or input units for input noise), at most 100",
        minimum=0.0,
        maximum=100.0,
    )
    noise_on: str = option("mask", "where the noise is added", choices=("mask", "input"))
    seed: int = option(0, "seed of the noise draws, 0 to 2**63 - 1", minimum=0, maximum=MAX_SEED)
    baseline_subtract: bool = option(False, "subtract p(baseline) from every weight")


@dataclass(frozen=True)
class IsCamOptions(ScoreOptions):
    """Options of :class:`IsCam`."""

    steps: int = option(
        10,
        "points on the path from the empty to the full mask, one forward per channel each, at most 256",
        minimum=1,
        maximum=256,
    )
    baseline_subtract: bool = option(False, "subtract p(baseline) from every weight")


class _MaskedScore(ScoreFamily):
    """Score-CAM and its variants: ``w_k`` = mean over ``_steps()`` masked inputs of ``p``."""

    config: ScoreOptions

    def _steps(self) -> int:
        return 1

    def _masked_inputs(self, x_rows: torch.Tensor, masks: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """Inputs (B, C_in, H, W) from input rows (B, C_in, H, W), masks (B, 1, H, W), step ids (B,)."""
        return x_rows * masks

    def weights(self, ctx: LayerContext) -> torch.Tensor:
        o = self.config
        acts, x, targets = ctx.activations, ctx.x, ctx.targets
        n, c = acts.shape[:2]
        size = (int(x.shape[-2]), int(x.shape[-1]))
        chosen = select_channels(acts, o.channels)  # (N, C)
        constant, zero = constant_channels(acts)
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
        subtract = bool(getattr(o, "baseline_subtract", False))
        sums = torch.zeros(n * (c + 1), dtype=torch.float64, device=x.device)
        p_base = None

        def forward(batch: torch.Tensor, fmt: torch.memory_format) -> torch.Tensor:
            return ctx.model(batch)

        runner = ForwardRunner(
            precision=o.precision, device=x.device, total=len(jobs) + int(subtract), progress=ctx.progress
        )
        fold = FoldedBatchNorm(ctx.model, x[:1]) if len(jobs) >= FOLD_MIN_ROWS else contextlib.nullcontext()
        with eval_mode(ctx.model), fold, runner as run:
            if subtract:
                p_base = explained_scores(ctx.model, run(forward, torch.zeros_like(x[:1])))[0]  # (K,)
            for rows in jobs.batches(o.batch_size):
                s = jobs.sample[rows].to(x.device)  # (B,)
                k = jobs.channel[rows].to(x.device)  # (B,)
                maps = acts[s, k.clamp(max=c - 1)]  # (B, h, w)
                maps = torch.where((k == c)[:, None, None], torch.zeros_like(maps), maps)
                masks = normalized_masks(maps, size)  # (B, 1, H, W)

                def inputs(s=s, masks=masks, steps_b=jobs.step[rows]) -> torch.Tensor:
                    return self._masked_inputs(x[s], masks.to(x.dtype), steps_b)  # (B, C_in, H, W)

                probs = explained_scores(ctx.model, run(forward, inputs))  # (B, K): softmax, or a target's scores
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
    some re-implementations do); for a task target (:mod:`methods.targets`) it is the target's
    score itself. Options: the family's, plus ``baseline_subtract`` (False).
    Deviation: a constant non-zero channel is scored on its (all-zero) mask, ``w_k = p(X o 0)``;
    the authors' code skips it (``w_k = 0``). All-zero channels contribute 0 either way.
    """

    options_class = ScoreCamOptions
    config: ScoreCamOptions


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

    options_class = SsCamOptions
    config: SsCamOptions

    def _steps(self) -> int:
        return 1 if float(self.config.std) == 0.0 else int(self.config.num_samples)

    def _masked_inputs(self, x_rows: torch.Tensor, masks: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        std = float(self.config.std)
        if std == 0.0:
            return x_rows * masks
        on_mask = self.config.noise_on == "mask"
        shape = (1, *x_rows.shape[-2:]) if on_mask else tuple(x_rows.shape[1:])
        draws = {int(j): noise(self.config.seed, int(j), shape, x_rows.device).to(x_rows.dtype) for j in steps.unique()}
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

    options_class = IsCamOptions
    config: IsCamOptions

    def _steps(self) -> int:
        return int(self.config.steps)

    def _masked_inputs(self, x_rows: torch.Tensor, masks: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        alpha = (steps.to(x_rows.device, x_rows.dtype) + 1) / self._steps()  # (B,)
        return x_rows * (masks * alpha[:, None, None, None])
