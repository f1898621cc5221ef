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
* :func:`eval_mode` puts the model in eval mode and restores every module's own flag afterwards.

Nothing here registers a hook; :mod:`methods.cams.score.tail` does, for Ablation-CAM, inside ``try`` /
``finally``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from methods.cams.base import Progress
from methods.errors import GradLensError

__all__ = [
    "PRECISIONS",
    "Precision",
    "ScoreWarning",
    "ScoreError",
    "check_options",
    "select_channels",
    "noise",
    "normalized_masks",
    "Jobs",
    "ForwardRunner",
    "eval_mode",
    "bf16_is_native",
]

Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16")


class ScoreWarning(UserWarning):
    """A score-family method took a slower route than it could (the message says why).

    The dashboard records these with ``warnings.catch_warnings(record=True)`` and shows them.
    """


class ScoreError(GradLensError, RuntimeError):
    """The model did not behave as a score-family method needs (e.g. a layer whose output changed shape)."""


# --------------------------------------------------------------------------------------------
# Options


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_options(label: str, options: Mapping[str, Any]) -> None:
    """Validate the options shared by the family (only those present in ``options``).

    Raises:
        ValueError: naming the option, the bad value and the valid values.
    """

    def bad(name: str, expected: str) -> ValueError:
        return ValueError(f"{label}: {name}={options[name]!r} is not valid; expected {expected}")

    if "batch_size" in options and not (_is_int(options["batch_size"]) and options["batch_size"] >= 1):
        raise bad("batch_size", "an int >= 1 (masked inputs per forward pass, e.g. 32)")
    if "channels" in options:
        ch = options["channels"]
        if not (ch == "all" if isinstance(ch, str) else (_is_int(ch) and ch >= 1)):
            raise bad("channels", "'all' or an int k >= 1 (the k channels of largest activation energy)")
    if "precision" in options and options["precision"] not in PRECISIONS:
        raise bad("precision", f"one of {list(PRECISIONS)}")
    for flag in ("baseline_subtract",):
        if flag in options and not isinstance(options[flag], bool):
            raise bad(flag, "True or False")
    if "num_samples" in options and not (_is_int(options["num_samples"]) and options["num_samples"] >= 1):
        raise bad("num_samples", "an int >= 1 (noisy copies per channel, e.g. 35)")
    if "steps" in options and not (_is_int(options["steps"]) and options["steps"] >= 1):
        raise bad("steps", "an int >= 1 (points on the path from the empty to the full mask, e.g. 10)")
    if "std" in options:
        std = options["std"]
        if isinstance(std, bool) or not isinstance(std, (int, float, np.floating, np.integer)) or not (
            np.isfinite(std) and std >= 0
        ):
            raise bad("std", "a finite number >= 0 (noise standard deviation)")
    if "seed" in options and not (_is_int(options["seed"]) and options["seed"] >= 0):
        raise bad("seed", "an int >= 0")


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


def noise(seed: int, step: int, shape: Sequence[int], device: torch.device | str = "cpu") -> torch.Tensor:
    """Standard-normal noise of draw ``step`` for ``seed``, shape ``shape``.

    The draw depends only on ``(seed, step)``: every channel and every sample of a call sees the
    same ``num_samples`` draws (common random numbers), so the map of an image does not depend on
    the batch it is in, nor on ``batch_size``.
    """
    state = np.random.SeedSequence([int(seed), int(step)]).generate_state(2, dtype=np.uint32)
    gen = torch.Generator(device="cpu")
    gen.manual_seed((int(state[0]) << 31) ^ int(state[1]))
    return torch.randn(tuple(shape), generator=gen).to(device)


@dataclass(frozen=True)
class Jobs:
    """The forward passes of one layer, in run order: row i is (sample[i], channel[i], step[i])."""

    sample: torch.Tensor  # (T,) long
    channel: torch.Tensor  # (T,) long
    step: torch.Tensor  # (T,) long

    def __len__(self) -> int:
        return int(self.sample.numel())

    @staticmethod
    def build(per_sample: Sequence[torch.Tensor], steps: int) -> "Jobs":
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


# --------------------------------------------------------------------------------------------
# Running forwards


def bf16_is_native(device: torch.device | str = "cpu") -> bool:
    """Whether ``precision="bf16"`` can be faster than fp32 on ``device``.

    CPU: AVX512-BF16 or AMX (else oneDNN emulates bf16: Score-CAM took 2.3x as long as fp32 on
    the development CPU). CUDA: ``torch.cuda.is_bf16_supported()``. Unknown -> False.
    """
    device = torch.device(device)
    try:
        if device.type == "cpu":
            return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
        if device.type == "cuda":
            return bool(torch.cuda.is_bf16_supported())
    except (AttributeError, RuntimeError):
        pass
    return False


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for the duration; every module's own train/eval flag is restored afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield
    finally:
        for m, flag in flags:
            m.training = flag


class ForwardRunner:
    """Runs batches through a function in the chosen precision, counting rows for progress.

    Use as a context manager (it enters ``torch.inference_mode`` and, for bf16, autocast once for
    all batches, so autocast's weight-cast cache is reused)::

        with ForwardRunner(precision="bf16", device=x.device, total=T, progress=cb) as run:
            logits = run(lambda batch, fmt: model(batch), masked)   # (B, K) float32

    ``fn(batch, memory_format)`` receives the batch already in ``memory_format``
    (``torch.channels_last`` when possible) and should put any other 4-D tensor it makes in the
    same format.

    Attributes:
        channels_last: None until the first 4-D batch; then whether channels_last is used.
        done: rows run so far.
        notes: what fell back and why (for the caller's warning).
    """

    def __init__(
        self,
        *,
        precision: str,
        device: torch.device,
        total: int,
        progress: Progress | None = None,
    ) -> None:
        self.precision = precision
        self.device = torch.device(device)
        self.total = int(total)
        self.progress = progress
        self.done = 0
        self.channels_last: bool | None = None
        self.notes: list[str] = []
        self._stack: contextlib.ExitStack | None = None

    def __enter__(self) -> "ForwardRunner":
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.precision == "bf16":
            stack.enter_context(torch.autocast(device_type=self.device.type, dtype=torch.bfloat16))
        self._stack = stack
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._stack is not None
        self._stack.close()
        self._stack = None

    def __call__(
        self,
        fn: Callable[[torch.Tensor, torch.memory_format], torch.Tensor],
        batch: torch.Tensor | Callable[[], torch.Tensor],
    ) -> torch.Tensor:
        """``fn`` on ``batch`` (B, ...) -> (B, K) float32 outputs; progress is reported after it.

        ``batch`` may be a zero-argument function making it: then the runner holds the only
        reference and the default-layout copy is freed as soon as the channels_last one exists.
        """
        if not isinstance(batch, torch.Tensor):
            batch = batch()
        if batch.ndim == 4 and self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
            out = fn(batch, torch.channels_last)
        elif batch.ndim == 4 and self.channels_last is None:
            # first batch: try channels_last on a copy, so a model that fails half-way (after
            # changing its input in place) is retried on the untouched batch
            try:
                out = fn(batch.clone(memory_format=torch.channels_last), torch.channels_last)
            except RuntimeError as exc:
                self.channels_last = False
                self.notes.append(f"channels_last input failed ({str(exc).splitlines()[0][:120]}); used the default layout")
                out = fn(batch, torch.contiguous_format)
            else:
                self.channels_last = True
        else:
            out = fn(batch, torch.contiguous_format)
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != batch.shape[0]:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ScoreError(f"the model must return (batch, classes) logits; it returned {got}")
        self.done += int(batch.shape[0])
        if self.progress is not None:
            self.progress(self.done, self.total)
        return out.float()

    def finish(self) -> None:
        """Report completion (also when there was nothing to run: ``progress(0, 0)``)."""
        if self.progress is not None and (self.done != self.total or self.total == 0):
            self.progress(self.total, self.total)


class ForwardPatcher:
    """Instance-level ``forward`` overrides of modules, undone in reverse order.

    Subclasses set ``self._saved = []`` and call :meth:`_restore` in ``finally``; a module whose
    class ``forward`` was in use gets its instance attribute removed again.
    """

    _saved: list[tuple[nn.Module, bool, Any]]

    def _patch(self, module: nn.Module, fn: Callable) -> None:
        had = "forward" in module.__dict__
        self._saved.append((module, had, module.__dict__.get("forward")))
        object.__setattr__(module, "forward", fn)

    def _restore(self) -> None:
        while self._saved:
            module, had, old = self._saved.pop()
            if had:
                object.__setattr__(module, "forward", old)
            else:
                module.__dict__.pop("forward", None)
