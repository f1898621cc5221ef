"""RISE and occlusion: input-resolution maps from the class probability of perturbed inputs.

Both are black-box: they run the model on many perturbed copies of the input and read only the
softmax probability ``p_c`` of the explained class (for a task target of :mod:`methods.targets`,
the target's own score: :func:`methods.targets.explained_scores`) — no gradients, no layer. They are slow
(``spec.slow``: one forward per mask or window position), layer-independent (one map per call, the
same for every requested layer) and batched like the score family: at most ``batch_size`` inputs
reach the model at once (peak extra memory O(batch_size x input)), forwards run through
:class:`methods._internal.torch_utils.ForwardRunner` (``torch.inference_mode``, channels_last, bf16 autocast with
``precision="bf16"``: it pays only where bf16 is native, see :func:`methods.bf16_is_native`), and
progress is reported after every batch. The masks and windows are the same for every sample of a
batch, so an image's map does not depend on the batch it is in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from methods._internal.torch_utils import PRECISIONS, ForwardRunner, eval_mode
from methods.cams.core.base import CallContext, PixelMethod, RecordingNeeds
from methods.cams.core.cost import Passes
from methods.cams.core.options import MAX_SEED, Options, option
from methods.cams.core.registry import register_method
from methods.errors import ScoreError
from methods.targets.base import explained_scores

__all__ = ["Rise", "Occlusion", "RiseOptions", "OcclusionOptions", "rise_masks", "window_starts"]


@dataclass(frozen=True)
class PerturbOptions(Options):
    """The options RISE and occlusion share."""

    batch_size: int = option(
        32,
        "perturbed inputs per forward pass, at most 1024; peak extra memory is O(batch_size x input)",
        minimum=1,
        maximum=1024,
    )
    precision: str = option(
        "fp32", "bf16 autocast pays only where bf16 is native (methods.bf16_is_native())", choices=PRECISIONS
    )


@dataclass(frozen=True)
class RiseOptions(PerturbOptions):
    """Options of :class:`Rise`."""

    num_masks: int = option(
        1000, "random masks, one forward each (the paper: 4000-8000), at most 20000", minimum=1, maximum=20_000
    )
    cell: int = option(
        16,
        "side of a mask cell in input pixels (the paper's 224 / 7 = 32), at most 512 (each mask is "
        "upsampled to about (input + cell) pixels a side)",
        minimum=1,
        maximum=512,
    )
    p: float = option(0.5, "probability that a cell is kept", minimum=0.0, maximum=1.0, exclusive_minimum=True)
    seed: int = option(0, "seed of the masks, 0 to 2**63 - 1", minimum=0, maximum=MAX_SEED)


@dataclass(frozen=True)
class OcclusionOptions(PerturbOptions):
    """Options of :class:`Occlusion`."""

    window: int = option(
        16,
        "side of the occluding square, in input pixels, at most 4096 (clipped to the input)",
        minimum=1,
        maximum=4096,
    )
    stride: int = option(8, "step between window positions, in input pixels, at most 4096", minimum=1, maximum=4096)
    baseline: float = option(
        0.0,
        "value of the occluded pixels in the model's input space (0 = the mean image for mean/std-normalized "
        "inputs), between -1000 and 1000",
        minimum=-1000.0,
        maximum=1000.0,
    )


def _forward(call: CallContext):
    def run(batch: torch.Tensor, fmt: torch.memory_format) -> torch.Tensor:
        return call.model(batch)

    return run


MASK_CHUNK = 64
"""RISE masks are drawn in chunks of this many: chunk j's cells and shifts come from a generator
seeded with ``(seed, j)``, so a call holds at most two chunks' cells at once (not all ``num_masks``:
20,000 masks of 1-pixel cells on a 224 px input were 4 GB) and mask i depends only on
``(seed, i, grid, cell, p)``, never on the batch it is made in."""

_UPSAMPLE_FLOATS = 1 << 24
"""At most this many floats (64 MB) of upsampled masks exist at once while a batch's masks are
made (a large ``cell`` upsamples each mask to ``(grid + 1) x cell`` pixels a side)."""


class _MaskSet:
    """The RISE masks of one call, drawn chunk by chunk (:data:`MASK_CHUNK`) as batches need them."""

    def __init__(self, n: int, size: tuple[int, int], cell: int, p: float, seed: int) -> None:
        self.n, self.size, self.cell, self.p, self.seed = n, size, cell, p, int(seed)
        self.grid = (math.ceil(size[0] / cell), math.ceil(size[1] / cell))
        self._chunks: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def _chunk(self, j: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Cells (k, gh, gw) and shifts (k, 2) of chunk ``j`` (the last one may be shorter)."""
        if j not in self._chunks:
            state = np.random.SeedSequence([self.seed, j]).generate_state(2, dtype=np.uint32)
            gen = torch.Generator().manual_seed((int(state[0]) << 31) ^ int(state[1]))
            k = min(MASK_CHUNK, self.n - j * MASK_CHUNK)  # a full chunk is drawn, so the last one's masks
            cells = (torch.rand(MASK_CHUNK, *self.grid, generator=gen)[:k] < self.p).float()  # (k, gh, gw)
            shifts = torch.randint(0, self.cell, (MASK_CHUNK, 2), generator=gen)[:k]  # (k, 2) do not depend on n
            while len(self._chunks) >= 2:  # batches walk the masks in order: keep the newest two
                self._chunks.pop(min(self._chunks))
            self._chunks[j] = (cells, shifts)
        return self._chunks[j]

    def masks(self, index: torch.Tensor) -> torch.Tensor:
        """Masks (B, H, W) in [0, 1] for mask indices ``index`` (B,)."""
        (gh, gw), c, (h, w) = self.grid, self.cell, self.size
        idx = index.tolist()
        cells = torch.stack([self._chunk(i // MASK_CHUNK)[0][i % MASK_CHUNK] for i in idx])  # (B, gh, gw)
        shifts = [self._chunk(i // MASK_CHUNK)[1][i % MASK_CHUNK].tolist() for i in idx]
        step = max(1, _UPSAMPLE_FLOATS // ((gh + 1) * c * (gw + 1) * c))
        crops = []
        for s in range(0, len(idx), step):
            up = F.interpolate(
                cells[s : s + step, None], size=((gh + 1) * c, (gw + 1) * c), mode="bilinear", align_corners=False
            )[:, 0]  # (b, (gh+1) c, (gw+1) c)
            crops += [up[b, dy : dy + h, dx : dx + w] for b, (dy, dx) in enumerate(shifts[s : s + step])]
        return torch.stack(crops).clamp_(0.0, 1.0)  # (B, H, W); the clamp only removes float rounding


def rise_masks(num_masks: int, size: tuple[int, int], *, cell: int = 16, p: float = 0.5, seed: int = 0) -> torch.Tensor:
    """All ``num_masks`` RISE masks (num_masks, H, W) of :class:`Rise` for an input of ``size``
    (what one call uses; for inspection and tests — the method itself makes them per batch)."""
    ms = _MaskSet(num_masks, size, cell, p, seed)
    return torch.cat(
        [ms.masks(torch.arange(s, min(s + MASK_CHUNK, num_masks))) for s in range(0, num_masks, MASK_CHUNK)]
    )


@register_method(
    name="rise",
    label="RISE",
    family="pixel",
    cost="num_masks/batch forwards",
    paper="https://arxiv.org/abs/1806.07421",
    summary="Random smooth masks, each weighted by the class probability of the masked input.",
    layer_independent=True,
    slow=True,
)
class Rise(PixelMethod):
    """RISE (Petsiuk, Das & Saenko, BMVC 2018, "RISE: Randomized Input Sampling for Explanation of
    Black-box Models", arXiv:1806.07421).

    ``M = (1 / (N p)) sum_i p_c(x o M_i) M_i``: N = ``num_masks`` masks ``M_i`` (H, W), each a grid of
    ``ceil(H / cell) x ceil(W / cell)`` cells kept with probability ``p``, upsampled bilinearly to
    ``(grid + 1) x cell`` pixels and cropped to H x W at a random shift in [0, cell) (so the cells'
    edges fall anywhere); ``x o M_i`` multiplies every colour channel of the preprocessed input
    (0 = the mean image for mean/std-normalized inputs); ``p_c`` is the softmax probability of the
    explained class. (N, H, W) at the input's resolution, the same for every layer.

    Options: ``num_masks`` (1000), ``cell`` (16 px), ``p`` (0.5), ``seed`` (0), ``batch_size`` (32),
    ``precision`` ("fp32" | "bf16"). Deviation: the paper uses 4000-8000 masks and a 7 x 7 grid on
    224 px inputs (cell = 32); the defaults trade some variance for an interactive cost (1000
    forwards), and ``cell=16`` suits the bundled 128 px scenes (an 8 x 8 grid).
    """

    options_class = RiseOptions
    config: RiseOptions

    def passes(self, *, channels: int, input_size: tuple[int, int]) -> Passes:
        return Passes(forwards=1 + self.config.num_masks)

    def recording_needs(self, model) -> RecordingNeeds:
        return RecordingNeeds()

    def compute_input(self, call: CallContext) -> torch.Tensor:
        o, x = self.config, call.x
        n = x.shape[0]
        size = call.input_size
        masks = _MaskSet(o.num_masks, size, o.cell, o.p, o.seed)
        total_rows = o.num_masks * n
        sal = torch.zeros(n, *size, dtype=torch.float64, device=x.device)
        targets = call.targets
        runner = ForwardRunner(
            precision=o.precision, device=x.device, total=total_rows, progress=call.progress, error=ScoreError
        )
        with eval_mode(call.model), runner as run:
            for start in range(0, total_rows, o.batch_size):
                rows = torch.arange(start, min(start + o.batch_size, total_rows))
                mi, si = rows // n, rows % n  # mask-major: one mask for all samples, then the next
                m = masks.masks(mi).to(x.device, x.dtype)  # (B, H, W)
                s = si.to(x.device)

                def inputs(s=s, m=m) -> torch.Tensor:
                    return x[s] * m[:, None]  # (B, C, H, W)

                p = explained_scores(call.model, run(_forward(call), inputs)).gather(1, targets[s][:, None])[
                    :, 0
                ]  # (B,)
                sal.index_add_(0, s, p.double()[:, None, None] * m.double())
            run.finish()
        return (sal / (o.num_masks * o.p)).float()  # (N, H, W)


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start positions of the windows along one axis: every ``stride`` pixels, plus one ending at the
    edge when the stride does not land there (so every pixel is covered).

    Examples:
        >>> window_starts(10, 4, 3), window_starts(8, 4, 4), window_starts(3, 5, 1)
        ([0, 3, 6], [0, 4], [0])
    """
    window = min(window, length)
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


@register_method(
    name="occlusion",
    label="Occlusion",
    family="pixel",
    cost="1 fwd per window position (H/stride x W/stride)/batch",
    paper="https://arxiv.org/abs/1311.2901",
    summary="Drop of the class probability when a sliding square is replaced by the baseline, averaged per pixel.",
    layer_independent=True,
    slow=True,
)
class Occlusion(PixelMethod):
    """Occlusion sensitivity (Zeiler & Fergus, ECCV 2014, "Visualizing and Understanding
    Convolutional Networks", arXiv:1311.2901).

    For each window position w (a ``window x window`` square, every ``stride`` pixels, see
    :func:`window_starts`), ``d_w = p_c(x) - p_c(x with the square set to baseline)``; each pixel's
    value is the mean of ``d_w`` over the windows that cover it:
    ``M_ij = sum_w d_w [ij in w] / sum_w [ij in w]``. ``p_c`` is the softmax probability of the
    explained class, ``p_c(x)`` recomputed by the same route and precision as the occluded copies
    (so bf16 rounding mostly cancels). (N, H, W), signed: positive where hiding the pixel lowers the
    class probability.

    Options: ``window`` (16), ``stride`` (8), ``baseline`` (0.0), ``batch_size`` (32), ``precision``.
    Deviation: the paper shows the probability map for a grey square at each position; this is the
    per-pixel average of the drops, as Captum's ``Occlusion`` computes (with the probability as the
    output). Unlike Captum, a last window is added at the right / bottom edge when the stride does
    not reach it, so every pixel is covered.
    """

    options_class = OcclusionOptions
    config: OcclusionOptions

    def passes(self, *, channels: int, input_size: tuple[int, int]) -> Passes:
        o, (h, w) = self.config, input_size
        windows = len(window_starts(h, o.window, o.stride)) * len(window_starts(w, o.window, o.stride))
        return Passes(forwards=2 + windows)  # the shared pass, the unoccluded input, every window

    def recording_needs(self, model) -> RecordingNeeds:
        return RecordingNeeds()

    def compute_input(self, call: CallContext) -> torch.Tensor:
        o, x = self.config, call.x
        n, (h, w) = x.shape[0], call.input_size
        boxes = [(y0, x0) for y0 in window_starts(h, o.window, o.stride) for x0 in window_starts(w, o.window, o.stride)]
        wy, wx = min(o.window, h), min(o.window, w)
        jobs = len(boxes) + 1  # job 0 = the unoccluded input
        total_rows = jobs * n
        drops = torch.zeros(n, jobs, dtype=torch.float64, device=x.device)
        targets = call.targets
        runner = ForwardRunner(
            precision=o.precision, device=x.device, total=total_rows, progress=call.progress, error=ScoreError
        )
        with eval_mode(call.model), runner as run:
            for start in range(0, total_rows, o.batch_size):
                rows = torch.arange(start, min(start + o.batch_size, total_rows))
                ji, si = (rows // n).tolist(), (rows % n).to(x.device)

                def inputs(ji=ji, si=si) -> torch.Tensor:
                    batch = x[si].clone()  # (B, C, H, W)
                    for b, j in enumerate(ji):
                        if j > 0:
                            y0, x0 = boxes[j - 1]
                            batch[b, :, y0 : y0 + wy, x0 : x0 + wx] = o.baseline
                    return batch

                p = explained_scores(call.model, run(_forward(call), inputs)).gather(1, targets[si][:, None])[
                    :, 0
                ]  # (B,)
                drops[si, torch.tensor(ji, device=x.device)] = p.double()
            run.finish()
        d = drops[:, :1] - drops[:, 1:]  # (N, W): the drop of each window
        sal = torch.zeros(n, h, w, dtype=torch.float64, device=x.device)
        count = torch.zeros(h, w, dtype=torch.float64, device=x.device)
        for j, (y0, x0) in enumerate(boxes):
            sal[:, y0 : y0 + wy, x0 : x0 + wx] += d[:, j, None, None]
            count[y0 : y0 + wy, x0 : x0 + wx] += 1
        return (sal / count).float()  # (N, H, W)
