"""Faithfulness of a saliency map: deletion / insertion curves, their AUC, Average Drop and
Increase in Confidence.

Every function here is a pure function of (model, image, map, target, options): it does not care
which method made the map, so a CAM, a reference map or a map drawn by hand are scored the same way.

Deletion and insertion (RISE, Petsiuk et al., BMVC 2018, https://arxiv.org/abs/1806.07421)
------------------------------------------------------------------------------------------------
The map ``M`` (h, w) is upsampled bilinearly (``align_corners=False``) to the input's H x W and
the N = H*W pixels are ranked by descending value. Ties are broken by pixel index (row-major,
lower index first): the order is ``torch.argsort(-M, stable=True)``. A NaN in the map ranks last.

With ``steps`` = S, step ``i`` (i = 0..S) perturbs the first ``k_i = round(i * N / S)`` pixels of
that order (all channels of a pixel together; round half up):

* deletion:  ``x_i = where(rank < k_i, b, x)``   — the most salient pixels are replaced by the
  baseline ``b`` first;
* insertion: ``x_i = where(rank < k_i, x, b)``   — starting from ``b`` (by default a blurred copy
  of ``x``), the most salient pixels are put back first.

The curve is ``p_i = softmax(f(x_i))[c]``, the probability of the explained class ``c`` (for a task
target of :mod:`methods.targets`, the target's own score, e.g. a detection's class score), against
the fraction ``f_i = k_i / N``; its AUC is the trapezoid rule ``sum_i (f_{i+1} - f_i)(p_i + p_{i+1})/2``,
in [0, 1]. A faithful map gives a LOW deletion AUC (the class collapses once its evidence is gone)
and a HIGH insertion AUC.

Baselines ``b`` (all in the model's normalized input space, the space of ``x``):

* ``"zero"``  — zeros, i.e. the dataset-mean colour of a mean/std-normalized model (RISE's deletion);
* ``"mean"``  — the per-channel mean of this image (its mean colour);
* ``"blur"``  — a Gaussian blur of this image (RISE's insertion start): separable kernel,
  sigma = ``blur_sigma`` pixels (default ``0.05 * max(H, W)``: 11.2 px at 224^2, 6.4 px at 128^2),
  truncated at 3 sigma (kernel size ``2 * ceil(3 sigma) + 1``), reflect padding. Blurring commutes
  with per-channel normalization (the kernel sums to 1), so blurring ``x`` equals normalizing the
  blurred RGB image.
  Deviation: RISE uses an 11 x 11 kernel with sigma 5 and zero padding at 224^2, a kernel cut at
  one sigma; ours is a proper Gaussian whose width scales with the image.
* a tensor of ``x``'s shape — any substrate you like.

Both curves default to ``"blur"`` (:data:`DEFAULT_BASELINES`).
Deviation: RISE deletes to ``"zero"``. On the bundled scene models a zero (grey) deletion leaves
the object's silhouette and hardly separates a method from the random map (Grad-CAM 0.143 vs
random 0.156 on 200 scenes, against 0.148 vs 0.322 with blur; docs/faithfulness.md), so the
default is blur for deletion too; pass ``baseline="zero"`` for RISE's protocol.

Average Drop and Increase in Confidence live in :mod:`methods.metrics.faithfulness.confidence`.

Speed
-----
Perturbed images go through the model in chunks of ``batch_size`` under ``torch.inference_mode()``,
never all at once. For the duration of a call the model is in eval mode and its 4-D weights are
held in channels_last layout (measured faster for convolutions on CPU); the original weight
tensors, memory layout and train/eval flags are put back afterwards. ``precision="bf16"`` adds
bfloat16 autocast (fast only on CPUs with AMX / avx512_bf16; see docs/faithfulness.md); the
default ``"auto"`` picks it exactly there (:func:`methods._internal.torch_utils.resolve_precision`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from methods._internal.checks import check_choice, check_int
from methods._internal.inputs import check_model_input
from methods._internal.progress import Progress
from methods._internal.torch_utils import Precision, resolve_precision
from methods.cams.baselines import centre_gaussian
from methods.errors import OptionError
from methods.metrics.faithfulness.confidence import ConfidenceChange, confidence_change
from methods.metrics.faithfulness.perturbation import (
    BASELINES,
    DEFAULT_BASELINES,
    KINDS,
    PRECISIONS,
    BaselineSpec,
    Kind,
    baseline_substrate,
    blur,
    check_class,
    check_one_image,
    check_saliency,
    class_probabilities,
    curve_model,
    perturb,
    perturbation_order,
    perturbed_image,
    pixel_ranks,
    runner_for,
    scored_model,
    step_counts,
)

__all__ = [
    "BASELINES",
    "DEFAULT_BASELINES",
    "PRECISIONS",
    "Curve",
    "ConfidenceChange",
    "deletion_curve",
    "insertion_curve",
    "reference_maps",
    "reference_curves",
    "confidence_change",
    "auc",
    "blur",
    "perturbation_order",
    "perturbed_image",
]


@dataclass(frozen=True, eq=False)
class Curve:
    """One deletion or insertion curve.

    Attributes:
        kind: ``"deletion"`` or ``"insertion"``.
        fractions: (steps+1,) float64, share of pixels perturbed at each point, 0 .. 1.
        scores: (steps+1,) float64, softmax probability of ``target`` at each point.
        counts: (steps+1,) int64, number of pixels perturbed at each point.
        auc: trapezoid area under ``scores`` over ``fractions``, in [0, 1].
        target: the explained class.
        baseline: ``"zero" | "mean" | "blur" | "tensor"``.
        steps: number of steps.
        precision: ``"fp32"`` or ``"bf16"``: the precision that RAN (``"auto"`` resolved).
    """

    kind: str
    fractions: np.ndarray
    scores: np.ndarray
    counts: np.ndarray
    auc: float
    target: int
    baseline: str
    steps: int
    precision: str

    @classmethod
    def from_scores(
        cls,
        kind: str,
        counts: torch.Tensor,
        n_pixels: int,
        scores: torch.Tensor,
        *,
        target: int,
        baseline: str,
        precision: str,
    ) -> Curve:
        """A curve from its (S+1,) pixel counts and scores (read-only arrays; AUC by the trapezoid rule)."""

        def frozen(a: np.ndarray) -> np.ndarray:
            a = np.array(a, copy=True)
            a.setflags(write=False)
            return a

        f_np = frozen((counts.double() / n_pixels).numpy())
        s_np = frozen(scores.double().cpu().numpy())
        return cls(
            kind=kind,
            fractions=f_np,
            scores=s_np,
            counts=frozen(counts.numpy()),
            auc=auc(f_np, s_np),
            target=int(target),
            baseline=baseline,
            steps=int(counts.numel()) - 1,
            precision=precision,
        )


def reference_maps(size: tuple[int, int], *, seed: int = 0) -> dict[str, torch.Tensor]:
    """The two information-free reference maps that a real method must beat.

    * ``"random"`` — i.i.d. uniform noise on an (h, w) grid from ``torch.Generator().manual_seed(seed)``
      (once upsampled, a random order of blobs of the grid's cell size: chance level);
    * ``"centre"`` — :func:`methods.cams.baselines.centre_gaussian` (the ``centre`` method's map).

    Args:
        size: (h, w) of the grid; pass the explained map's own shape so the references are as
            coarse as the method's map.
        seed: generator seed of the random map.

    Returns:
        name -> (h, w) float32 map.
    """
    h, w = (check_int("size[0]", size[0], 1), check_int("size[1]", size[1], 1))
    gen = torch.Generator().manual_seed(int(seed))
    return {"random": torch.rand(h, w, generator=gen), "centre": centre_gaussian(h, w)}


def auc(fractions: Any, scores: Any) -> float:
    """Trapezoid area under ``scores`` over ``fractions`` (1-D, same length >= 2)."""
    f = np.asarray(fractions, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if f.ndim != 1 or f.shape != s.shape or f.size < 2:
        raise OptionError(f"fractions and scores must be 1-D of equal length >= 2; got {f.shape} and {s.shape}")
    return float(np.sum(np.diff(f) * (s[1:] + s[:-1]) / 2.0))


def _curve(
    kind: str,
    model: Any,
    x: Any,
    saliency: Any,
    target: Any,
    *,
    steps: int,
    baseline: Any,
    batch_size: int,
    precision: str,
    blur_sigma: float | None,
    progress: Progress | None,
) -> Curve:
    net, target = scored_model(model, target)  # a box, region or embedding: the curve of its score
    x = check_model_input(net, check_one_image(x))
    steps = check_int("steps", steps, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    precision = resolve_precision(precision, x.device)
    sal = check_saliency(saliency)
    substrate, baseline_name = baseline_substrate(x, baseline, blur_sigma)  # (1, C, H, W)
    _, _, h, w = x.shape
    n = h * w
    rank = pixel_ranks(sal, h, w).to(x.device)  # (1, 1, H, W)
    counts = step_counts(n, steps)  # (S+1,)

    scores = torch.empty(steps + 1, dtype=torch.float64)
    with curve_model(net, x), runner_for(x, precision, steps + 1) as run:
        # the target is checked against the model's output of the first chunk
        for start in range(0, steps + 1, batch_size):
            stop = min(start + batch_size, steps + 1)
            k = counts[start:stop].to(x.device).view(-1, 1, 1, 1)  # (B, 1, 1, 1)
            batch = perturb(kind, x, substrate, rank < k)  # (B, C, H, W)
            p = class_probabilities(run, net, batch)  # (B, K)
            if start == 0:
                target = check_class(target, p.shape[1])
            scores[start:stop] = p[:, target].cpu()
            if progress is not None:
                progress(stop, steps + 1)
    return Curve.from_scores(kind, counts, n, scores, target=target, baseline=baseline_name, precision=precision)


def deletion_curve(
    model: Any,
    x: torch.Tensor,
    saliency: Any,
    target: int,
    *,
    steps: int = 50,
    baseline: BaselineSpec = "blur",
    batch_size: int = 32,
    precision: Precision = "auto",
    blur_sigma: float | None = None,
    progress: Progress | None = None,
) -> Curve:
    """RISE deletion curve: remove the most salient pixels first; a faithful map drops fast (low AUC).

    Args:
        model: an ``nn.Module`` returning (N, K) logits, or a ``LoadedModel`` (uses ``.model``).
        x: one preprocessed image, (1, C, H, W) or (C, H, W); never modified.
        saliency: (h, w) raw map (tensor or array, any scale and sign); upsampled bilinearly to (H, W).
        target: the explained class (int in [0, K)), or a task target (:mod:`methods.targets`:
            ``BoxTarget``, ``RegionTarget``, ``EmbeddingTarget``): the curve is then that target's
            score (not a probability; a box no detection matches any more scores 0) and
            ``Curve.target`` is 0.
        steps: number of equal steps S >= 1; the curve has S+1 points.
        baseline: ``"blur"`` (default), ``"zero"`` (RISE's deletion), ``"mean"`` or a tensor of
            x's shape: what a removed pixel becomes (see the module docstring).
        batch_size: perturbed images per forward (>= 1).
        precision: ``"auto"`` (default: bf16 autocast where the device runs bf16 natively, else
            fp32; :func:`methods._internal.torch_utils.resolve_precision`), ``"fp32"`` or ``"bf16"``. The curve
            records the precision that ran.
        blur_sigma: sigma in pixels of the ``"blur"`` baseline (default 0.05 * max(H, W)).
        progress: ``(done, total)`` callback after every chunk.

    Returns:
        A :class:`Curve` (``kind="deletion"``).

    Raises:
        ValueError: bad ``steps``, ``baseline``, ``batch_size``, ``precision``, ``target``, map rank
            or ``x`` shape (the message names the argument, the value and the valid choices).
    """
    return _curve(
        "deletion",
        model,
        x,
        saliency,
        target,
        steps=steps,
        baseline=baseline,
        batch_size=batch_size,
        precision=precision,
        blur_sigma=blur_sigma,
        progress=progress,
    )


def insertion_curve(
    model: Any,
    x: torch.Tensor,
    saliency: Any,
    target: int,
    *,
    steps: int = 50,
    baseline: BaselineSpec = "blur",
    batch_size: int = 32,
    precision: Precision = "auto",
    blur_sigma: float | None = None,
    progress: Progress | None = None,
) -> Curve:
    """RISE insertion curve: from the baseline (default a blurred copy), put back the most salient
    pixels first; a faithful map rises fast (high AUC).

    Arguments, return value and errors as :func:`deletion_curve`; ``baseline`` is the starting
    image, default ``"blur"``.
    """
    return _curve(
        "insertion",
        model,
        x,
        saliency,
        target,
        steps=steps,
        baseline=baseline,
        batch_size=batch_size,
        precision=precision,
        blur_sigma=blur_sigma,
        progress=progress,
    )


def reference_curves(
    model: Any,
    x: torch.Tensor,
    target: int,
    *,
    kind: Kind = "deletion",
    size: tuple[int, int] = (16, 16),
    seed: int = 0,
    **options: Any,
) -> dict[str, Curve]:
    """Curves of the :func:`reference_maps` (``"random"``, ``"centre"``), computed exactly like a method's.

    Args:
        model, x, target: as :func:`deletion_curve`.
        kind: ``"deletion"`` or ``"insertion"``.
        size: (h, w) of the reference grids; pass the explained map's shape.
        seed: seed of the random map.
        **options: the curve options (``steps``, ``baseline``, ``batch_size``, ``precision``, ...).

    Returns:
        ``{"random": Curve, "centre": Curve}``.
    """
    check_choice("kind", kind, KINDS)
    fn = deletion_curve if kind == "deletion" else insertion_curve
    return {name: fn(model, x, m, target, **options) for name, m in reference_maps(size, seed=seed).items()}
