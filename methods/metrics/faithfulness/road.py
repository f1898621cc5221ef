"""ROAD: MoRF and LeRF curves with noisy linear imputation (Remove And Debias).

"A Consistent and Efficient Evaluation Strategy for Attribution Methods" (Rong, Leemann, Borisov,
Kasneci, Kasneci, ICML 2022, https://arxiv.org/abs/2202.00449).

The map ``M`` is upsampled to the input's H x W and its N = H*W pixels ranked exactly as the
deletion curve ranks them (:func:`methods.metrics.faithfulness.perturbation.perturbation_order`:
descending value, ties to the lower pixel index, NaN last). For each removal fraction ``f`` of
``fractions`` (default 0.1, 0.2, ..., 0.9, the paper's), ``k_f = round(f * N)`` pixels
(round half up) are removed and imputed (:mod:`methods.metrics.faithfulness.imputation`):

* MoRF (most relevant first): the ``k_f`` pixels ranked FIRST are removed;
* LeRF (least relevant first): the ``k_f`` pixels ranked LAST are removed.

Each curve point is ``p_f = softmax(f(x~_f))_c``, the probability of the explained class on the
imputed image (a task target of :mod:`methods.targets`: its own score). The summaries are the
means over the fractions, ``road_morf = mean_f p^MoRF_f`` (lower is better: the class collapses
once its evidence is gone) and ``road_lerf = mean_f p^LeRF_f`` (higher is better), and
``combined = (road_lerf - road_morf) / 2`` (pytorch-grad-cam's ``ROADCombined`` when both are
taken relative to ``p(x)``). Every imputed image draws its noise from its own generator, seeded
:func:`road_seed` ``(seed, curve, step)``, so a result is repeatable and one curve's noise does
not depend on the other's.

Imputed images go through the model in chunks of ``batch_size`` (built chunk by chunk: memory
stays bounded by one chunk), with the curves' runner (eval mode, channels_last weights, bf16
autocast for ``precision="bf16"``; everything restored afterwards).

Deviation: the paper plots accuracy over a test set at each fraction; here each image gets its own
curve of the class probability (a data set's accuracy curve is the mean of its 0/1 version), and a
curve's summary is the mean over the fractions rather than an area. pytorch-grad-cam 1.5.7
(``pytorch_grad_cam.metrics.road``) names a curve point by a PERCENTILE ``q`` of the map, and
``ROADMostRelevantFirst(q)`` removes the pixels at or above the q-th percentile, i.e. the top
``(100 - q)`` %, while ``ROADLeastRelevantFirst(q)`` removes the bottom ``(100 - q)`` %: its
percentile ``q`` is our fraction ``f = 1 - q / 100``. It reports ``score(x~) - score(x)`` (the
target's own output: a logit with ``ClassifierOutputTarget``, a probability with
``ClassifierOutputSoftmaxTarget``) and imputes with noise 0.01 from the global torch RNG. The
numbers agree to 1e-5 (measured: 1.8e-7) when N * q / 100 is a whole number (its percentile threshold then removes
exactly ``k_f`` pixels of a map without ties) and the noise is off or seeded alike
(tests/metrics/faithfulness/test_road.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from methods._internal.checks import check_choice, check_int, check_number
from methods._internal.inputs import check_model_input
from methods._internal.progress import Progress
from methods._internal.torch_utils import Precision, resolve_precision
from methods.errors import OptionError
from methods.metrics.faithfulness.imputation import linear_imputation
from methods.metrics.faithfulness.perturbation import (
    PRECISIONS,
    check_class,
    check_one_image,
    check_saliency,
    class_probabilities,
    curve_model,
    pixel_ranks,
    runner_for,
    scored_model,
)

__all__ = ["PAPER", "CURVES", "RoadOptions", "RoadResult", "road", "road_seed", "road_image"]

PAPER = "https://arxiv.org/abs/2202.00449"
CURVES: tuple[str, ...] = ("morf", "lerf")
DEFAULT_FRACTIONS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class RoadOptions:
    """How ROAD removes and imputes (validated on construction).

    Attributes:
        fractions: removal fractions, each in [0, 1), distinct, ascending (default 0.1 .. 0.9).
        noise: sigma of the imputation noise, in x's units, in [0, 1] (the authors' 0.01; 0 = none).
        seed: seed of the noise (>= 0), see :func:`road_seed`.
        batch_size: imputed images per forward, 1 .. 1024.
        precision: ``"auto"`` (bf16 where native, else fp32), ``"fp32"`` or ``"bf16"``.
    """

    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    noise: float = 0.01
    seed: int = 0
    batch_size: int = 16
    precision: Precision = "auto"

    def __post_init__(self) -> None:
        fr = self.fractions
        if isinstance(fr, (str, bytes)) or not hasattr(fr, "__len__") or len(fr) == 0:
            raise OptionError(f"fractions must be a non-empty sequence of numbers in [0, 1); got {fr!r}")
        values = tuple(check_number("fractions[i]", f, minimum=0.0, maximum=1.0) for f in fr)
        if any(v >= 1.0 for v in values):
            raise OptionError(
                f"fractions must be below 1 (removing every pixel leaves nothing to impute from); got {list(fr)}"
            )
        if any(b <= a for a, b in zip(values, values[1:])):
            raise OptionError(f"fractions must be distinct and ascending; got {list(fr)}")
        object.__setattr__(self, "fractions", values)
        object.__setattr__(self, "noise", check_number("noise", self.noise, minimum=0.0, maximum=1.0))
        object.__setattr__(self, "seed", check_int("seed", self.seed, 0))
        object.__setattr__(self, "batch_size", check_int("batch_size", self.batch_size, 1, 1024))
        check_choice("precision", self.precision, PRECISIONS)


@dataclass(frozen=True, eq=False)
class RoadResult:
    """The MoRF and LeRF curves of one map.

    Attributes:
        fractions: (F,) float64 removal fractions; ``counts``: (F,) int64 pixels removed.
        morf, lerf: (F,) float64 target probability (score) after removing the most / least
            relevant pixels.
        score: the target's probability on the unperturbed image.
        road_morf: mean of ``morf`` (lower is better); ``road_lerf``: mean of ``lerf`` (higher
            is better); ``combined``: ``(road_lerf - road_morf) / 2``.
        target: the explained class (0 for a task target).
        noise, seed: the imputation options; ``precision``: the precision that RAN.
    """

    fractions: np.ndarray
    counts: np.ndarray
    morf: np.ndarray
    lerf: np.ndarray
    score: float
    road_morf: float
    road_lerf: float
    combined: float
    target: int
    noise: float
    seed: int
    precision: str


def road_seed(seed: int, curve: str, step: int) -> int:
    """The torch seed of the noise of one imputed image: ``SeedSequence([seed, c, step])`` with
    ``c`` = 0 for MoRF, 1 for LeRF, and ``step`` the index of the fraction.

    Examples:
        >>> road_seed(0, "morf", 0) == road_seed(0, "morf", 0), road_seed(0, "morf", 0) == road_seed(0, "lerf", 0)
        (True, False)
    """
    c = CURVES.index(check_choice("curve", curve, CURVES))
    return int(np.random.SeedSequence([int(seed), c, int(step)]).generate_state(1)[0])


def _removed(rank: torch.Tensor, curve: str, k: int) -> torch.Tensor:
    """(H, W) bool: the ``k`` first-ranked pixels (MoRF) or the ``k`` last-ranked (LeRF)."""
    n = rank.numel()
    return (rank < k if curve == "morf" else rank >= n - k)[0, 0]


def road_image(
    x: torch.Tensor,
    saliency: Any,
    fraction: float,
    *,
    curve: str = "morf",
    noise: float = 0.0,
    seed: int = 0,
    step: int = 0,
) -> torch.Tensor:
    """The imputed image a ROAD curve scores at ``fraction`` (1, C, H, W), in x's space.

    Args:
        x: one preprocessed image, (1, C, H, W) or (C, H, W); never modified.
        saliency: (h, w) raw map, ranked as the curves rank it.
        fraction: share of pixels removed, in [0, 1); ``round(fraction * H * W)`` of them.
        curve: ``"morf"`` or ``"lerf"``.
        noise, seed, step: the imputation noise and the generator seed ``road_seed(seed, curve, step)``.
    """
    x = check_one_image(x)
    f = check_number("fraction", fraction, minimum=0.0, maximum=1.0)
    if f >= 1.0:
        raise OptionError(f"fraction must be below 1 (nothing would be left to impute from); got {fraction!r}")
    _, _, h, w = x.shape
    rank = pixel_ranks(check_saliency(saliency), h, w)  # (1, 1, H, W)
    gen = torch.Generator().manual_seed(road_seed(seed, curve, step))
    return linear_imputation(x, _removed(rank, curve, math.floor(f * h * w + 0.5)), noise=noise, generator=gen)


def road(
    model: Any,
    x: torch.Tensor,
    saliency: Any,
    target: Any,
    *,
    options: RoadOptions | None = None,
    progress: Progress | None = None,
) -> RoadResult:
    """ROAD's MoRF and LeRF curves of one map with noisy linear imputation (module docstring).

    Args:
        model: an ``nn.Module`` returning (N, K) logits, or a ``LoadedModel``.
        x: one preprocessed image, (1, C, H, W) or (C, H, W); never modified.
        saliency: (h, w) raw map (tensor or array, any scale and sign); upsampled bilinearly to (H, W).
        target: the explained class (int in [0, K)) or a task target (:mod:`methods.targets`).
        options: :class:`RoadOptions` (default ones when None).
        progress: ``(done, total)`` after every chunk of images (total = 1 + 2 F).

    Returns:
        A :class:`RoadResult`.

    Raises:
        InputError, OptionError, TargetError: a bad image, map, option or target.

    Examples:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        >>> res = road(net, torch.rand(1, 3, 8, 8), torch.rand(4, 4), 0, options=RoadOptions(fractions=(0.25, 0.5)))
        >>> res.counts.tolist(), res.morf.shape
        ([16, 32], (2,))
    """
    opts = options if options is not None else RoadOptions()
    if not isinstance(opts, RoadOptions):
        raise OptionError(f"options must be a RoadOptions; got {type(opts).__name__}")
    net, target = scored_model(model, target)  # a box, region or embedding: the curves of its score
    x = check_model_input(net, check_one_image(x))
    ran_in = resolve_precision(opts.precision, x.device)
    sal = check_saliency(saliency)
    _, _, h, w = x.shape
    rank = pixel_ranks(sal, h, w)  # (1, 1, H, W) on the CPU: the imputation's sparse solve runs there
    counts = [math.floor(f * h * w + 0.5) for f in opts.fractions]
    rows = [("x", 0)] + [(curve, i) for curve in CURVES for i in range(len(counts))]

    def image(row: tuple[str, int]) -> torch.Tensor:
        curve, i = row
        if curve == "x":
            return x
        gen = torch.Generator().manual_seed(road_seed(opts.seed, curve, i))
        return linear_imputation(x, _removed(rank, curve, counts[i]), noise=opts.noise, generator=gen)  # (1, C, H, W)

    scores = torch.empty(len(rows), dtype=torch.float64)
    with curve_model(net, x), runner_for(x, ran_in, len(rows), progress) as run:
        for start in range(0, len(rows), opts.batch_size):
            part = rows[start : start + opts.batch_size]
            p = class_probabilities(run, net, torch.cat([image(r) for r in part]))  # (B, K)
            if start == 0:
                target = check_class(target, p.shape[1])
            scores[start : start + len(part)] = p[:, target].cpu()
        run.finish()
    f = len(counts)
    morf, lerf = scores[1 : 1 + f].numpy().copy(), scores[1 + f :].numpy().copy()
    for a in (morf, lerf):
        a.setflags(write=False)
    fr = np.array(opts.fractions, dtype=np.float64)
    ct = np.array(counts, dtype=np.int64)
    fr.setflags(write=False)
    ct.setflags(write=False)
    m, l = float(morf.mean()), float(lerf.mean())
    return RoadResult(
        fractions=fr,
        counts=ct,
        morf=morf,
        lerf=lerf,
        score=float(scores[0]),
        road_morf=m,
        road_lerf=l,
        combined=(l - m) / 2.0,
        target=int(target),
        noise=opts.noise,
        seed=opts.seed,
        precision=ran_in,
    )
