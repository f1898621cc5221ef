"""Machinery shared by the score-weighted family: channel choice, masks, noise, batched forwards.

The score family needs one forward pass per (sample, channel[, noise draw or step]); this module
makes those passes bounded in memory and cheap:

* jobs are index triples ``(sample n, channel k, step j)``; a batch of at most ``batch_size`` jobs
  is turned into masked inputs only when it is run, so the extra memory is
  O(batch_size x input), never all C masked inputs at once;
* :class:`ForwardRunner` runs every batch under ``torch.inference_mode()`` in the chosen precision
  (``"bf16"``: CPU/CUDA autocast), feeds 4-D inputs in ``channels_last`` memory format (oneDNN's
  native layout: a resnet18 forward at batch 32 took about 0.7x the time of the default layout on
  the development machine, fp32), falls back to the default format if the model cannot take it
  (a ``.view`` on a channels-last tensor fails), and reports progress after every batch;
* :class:`ScoreOptions` are the options every member has, :class:`ScoreFamily` its base class
  (the map from channel weights); :class:`ForwardRunner` and :func:`eval_mode` come from
  :mod:`methods._internal.torch_utils`.

Nothing here registers a hook; :mod:`methods.cams.score.tail` does, for Ablation-CAM, inside ``try`` /
``finally``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from methods._internal.torch_utils import PRECISION_CHOICES, PRECISIONS, ForwardRunner, bf16_is_native, eval_mode
from methods.cams.core.base import ForwardMethod, LayerContext
from methods.cams.core.cost import Passes
from methods.cams.core.options import Options, option
from methods.errors import ScoreError, ScoreWarning

__all__ = [
    "PRECISIONS",
    "ScoreWarning",
    "ScoreError",
    "ScoreOptions",
    "ScoreFamily",
    "constant_channels",
    "select_channels",
    "noise",
    "normalized_masks",
    "Jobs",
    "ForwardRunner",
    "eval_mode",
    "bf16_is_native",
]


# --------------------------------------------------------------------------------------------
# Options and the family's base class


@dataclass(frozen=True)
class ScoreOptions(Options):
    """The options every score-family method has (see :mod:`methods.cams.score`)."""

    batch_size: int = option(
        32,
        "masked inputs per forward pass, at most 1024; peak extra memory is O(batch_size x input)",
        minimum=1,
        maximum=1024,
    )
    channels: int | str = option(
        "all",
        "'all', or score only the k channels of largest activation energy (k >= C means all), at most 65536",
        minimum=1,
        maximum=65_536,
        choices=("all",),
    )
    precision: str = option(
        "auto",
        "'auto' = bf16 autocast where the device runs bf16 natively "
        "(methods.bf16_is_native()), else fp32; the explanation records the resolved one",
        choices=PRECISION_CHOICES,
    )


def constant_channels(acts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C) masks of constant channels and of all-zero channels of activations (N, C, h, w)."""
    flat = acts.flatten(2)  # (N, C, h*w)
    return flat.amax(2) == flat.amin(2), flat.abs().amax(2) == 0


class ScoreFamily(ForwardMethod):
    """Base of the score family: the map from channel weights, ``M = sum_k w_k A^k``."""

    options_class = ScoreOptions
    config: ScoreOptions

    def weights(self, ctx: LayerContext) -> torch.Tensor:
        """Channel weights ``w`` (N, C) float32 for ``ctx.layer``."""
        raise NotImplementedError

    def _steps(self) -> int:
        """Forwards per scored channel (SS-CAM: ``num_samples``, IS-CAM: ``steps``)."""
        return 1

    def passes(self, *, channels: int, input_size: tuple[int, int]) -> Passes:
        """The shared pass, then per layer one forward per scored channel and step, plus the
        baseline's (skipped constant channels are not subtracted: an upper estimate)."""
        chosen = self.config.channels
        k = channels if chosen == "all" else min(int(chosen), channels)
        return Passes(forwards=1, per_layer=k * self._steps() + 1)

    def compute_layer(self, ctx: LayerContext) -> torch.Tensor:
        w = self.weights(ctx)  # (N, C)
        return torch.einsum("nc,nchw->nhw", w, ctx.activations.float())  # (N, h, w)


# --------------------------------------------------------------------------------------------
# Channels, masks, noise


def select_channels(activations: torch.Tensor, channels: int | str) -> torch.Tensor:
    """Which channels each sample's map is built from: (N, C) bool.

    ``"all"`` (or k >= C) keeps every channel; an int k keeps, per sample, the k channels of
    largest energy ``sum_ij (A^k_ij)^2``. Ties are broken by ``torch.topk`` (deterministic).
    """
    n, c = activations.shape[:2]
    if channels == "all" or int(channels) >= c:
        return torch.ones(n, c, dtype=torch.bool, device=activations.device)
    energy = activations.double().pow(2).sum(dim=(2, 3))  # (N, C)
    top = energy.topk(int(channels), dim=1).indices  # (N, k)
    chosen = torch.zeros(n, c, dtype=torch.bool, device=activations.device)
    chosen.scatter_(1, top, True)
    return chosen


def normalized_masks(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Upsample channel maps to ``size`` and min-max them to [0, 1].

    Args:
        maps: (B, h, w) one channel map per job.
        size: (H, W) input size.

    Returns:
        (B, 1, H, W) masks ``H = (U(A) - min U(A)) / (max U(A) - min U(A))`` with U bilinear,
        ``align_corners=False``; a constant map gives an all-zero mask.
    """
    up = F.interpolate(maps[:, None].float(), size=size, mode="bilinear", align_corners=False)  # (B, 1, H, W)
    lo = up.amin(dim=(2, 3), keepdim=True)  # (B, 1, 1, 1)
    span = up.amax(dim=(2, 3), keepdim=True) - lo  # (B, 1, 1, 1)
    safe = torch.where(span > 0, span, torch.ones_like(span))
    return torch.where(span > 0, (up - lo) / safe, torch.zeros_like(up))  # (B, 1, H, W)


def noise(seed: int, step: int, shape: Sequence[int], device: torch.device | str | None = None) -> torch.Tensor:
    """Standard-normal noise of draw ``step`` for ``seed``, shape ``shape``, moved to ``device``.

    The draw depends only on ``(seed, step)``: every channel and every sample of a call sees the
    same ``num_samples`` draws (common random numbers), so the map of an image does not depend on
    the batch it is in, nor on ``batch_size``. It is drawn by a host (CPU) generator on purpose, so
    a GPU run sees the same noise as a CPU run; ``device=None`` leaves it there.
    """
    state = np.random.SeedSequence([int(seed), int(step)]).generate_state(2, dtype=np.uint32)
    gen = torch.Generator()  # the host generator: the same draws whatever device the model is on
    gen.manual_seed((int(state[0]) << 31) ^ int(state[1]))
    out = torch.randn(tuple(shape), generator=gen)
    return out if device is None else out.to(device)


@dataclass(frozen=True)
class Jobs:
    """The forward passes of one layer, in run order: row i is (sample[i], channel[i], step[i])."""

    sample: torch.Tensor  # (T,) long
    channel: torch.Tensor  # (T,) long
    step: torch.Tensor  # (T,) long

    def __len__(self) -> int:
        return int(self.sample.numel())

    @staticmethod
    def build(per_sample: Sequence[torch.Tensor], steps: int) -> Jobs:
        """Jobs for ``per_sample[n]`` = the channel indices of sample n, each run ``steps`` times.

        Order: sample, then step, then channel, so a batch mostly shares one step (one noise draw).
        """
        samples, channels, step_ids = [], [], []
        for n, ks in enumerate(per_sample):
            ks = ks.reshape(-1).long().cpu()
            for j in range(steps):
                samples.append(torch.full_like(ks, n))
                channels.append(ks)
                step_ids.append(torch.full_like(ks, j))
        if not samples:
            empty = torch.zeros(0, dtype=torch.long)
            return Jobs(empty, empty, empty)
        return Jobs(torch.cat(samples), torch.cat(channels), torch.cat(step_ids))

    def batches(self, batch_size: int) -> Iterator[slice]:
        for start in range(0, len(self), batch_size):
            yield slice(start, min(start + batch_size, len(self)))
