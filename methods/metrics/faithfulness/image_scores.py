"""Every faithfulness score of SEVERAL maps of ONE image, with the forwards they share run once.

The evaluation scores each map of an image (every method x layer, and the reference maps) with a
deletion curve, an insertion curve and Grad-CAM++'s confidence change
(:mod:`methods.metrics.faithfulness.curves`, :mod:`methods.metrics.faithfulness.confidence`). Done one map at a time
that is ``M x (2 (S + 1) + 2)`` forwards for ``M`` maps and ``S`` steps. Several of those images
do not depend on the map at all:

* the unperturbed image ``x`` — deletion step 0, insertion step S, and the confidence's ``Y``;
* the fully perturbed image — deletion step S is the deletion baseline ``b_del`` itself, insertion
  step 0 is the insertion baseline ``b_ins`` (one image when both baselines are the same).

:func:`image_scores` runs those 2-3 images once and only the map-dependent ones per map:
``M x (2 (S - 1) + 1) + 3`` forwards in all (300 instead of 312 for 3 maps at 50 steps), in
chunks of ``batch_size`` that run ACROSS maps, so the batches stay full. Every score equals the
one-map functions' (the same images through the same model; only the batch composition differs,
which moves fp32 probabilities by ~1e-7).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from methods._internal.checks import check_int
from methods._internal.inputs import check_model_input
from methods._internal.progress import Progress
from methods._internal.threads import ThreadTuner
from methods._internal.torch_utils import Precision, resolve_precision, unwrap_model
from methods.errors import InputError
from methods.metrics.faithfulness.confidence import ConfidenceChange, Space, confidence_from, explanation_image
from methods.metrics.faithfulness.curves import Curve
from methods.metrics.faithfulness.perturbation import (
    BaselineSpec,
    baseline_substrate,
    check_class,
    check_one_image,
    check_saliency,
    class_probabilities,
    curve_model,
    perturb,
    pixel_ranks,
    runner_for,
    step_counts,
)

__all__ = ["MapScores", "image_scores", "forward_count"]


@dataclass(frozen=True)
class MapScores:
    """The faithfulness scores of one map.

    Attributes:
        deletion: the RISE deletion :class:`~methods.metrics.faithfulness.curves.Curve`.
        insertion: the RISE insertion curve.
        confidence: Grad-CAM++'s :class:`~methods.metrics.faithfulness.confidence.ConfidenceChange`.
    """

    deletion: Curve
    insertion: Curve
    confidence: ConfidenceChange


def forward_count(n_maps: int, steps: int, *, same_baselines: bool = False) -> int:
    """Forwards :func:`image_scores` runs: ``M (2 (S - 1) + 1)`` per-map images plus the shared
    ``x``, ``b_del`` and ``b_ins`` (``b_ins`` dropped when both baselines are the same).

    Examples:
        >>> forward_count(3, 50), 3 * (2 * 51 + 2)   # shared vs one map at a time
        (300, 312)
    """
    return n_maps * (2 * (steps - 1) + 1) + (2 if same_baselines else 3)


def image_scores(
    model: Any,
    x: torch.Tensor,
    saliencies: Sequence[Any],
    target: int,
    *,
    steps: int = 50,
    baseline: BaselineSpec = "blur",
    insertion_baseline: BaselineSpec = "blur",
    batch_size: int = 32,
    precision: Precision = "auto",
    blur_sigma: float | None = None,
    space: Space = "input",
    mean: Any = None,
    std: Any = None,
    progress: Progress | None = None,
    threads: ThreadTuner | None = None,
) -> list[MapScores]:
    """Deletion and insertion curves and the confidence change of every map of one image.

    Args:
        model: an ``nn.Module`` returning (N, K) logits, or a ``LoadedModel``.
        x: one preprocessed image, (1, C, H, W) or (C, H, W); never modified.
        saliencies: M raw maps, each (h_m, w_m) (tensor or array; sizes may differ).
        target: the explained class (int in [0, K)).
        steps: S >= 1 steps per curve.
        baseline: the deletion baseline (``"blur"`` default, ``"zero"`` (RISE's), ``"mean"`` or a tensor).
        insertion_baseline: the insertion curve's start (``"blur"`` default).
        batch_size: perturbed images per forward (>= 1), across maps.
        precision: ``"auto"`` (bf16 where native, else fp32), ``"fp32"`` or ``"bf16"``; the
            curves record the precision that ran.
        blur_sigma: sigma of the ``"blur"`` baseline in pixels (default 0.05 * max(H, W)).
        space, mean, std: the confidence change's masking space (see :func:`methods.metrics.faithfulness.confidence.confidence_change`).
        progress: ``(done, total)`` callback after every chunk (total = :func:`forward_count`).
        threads: runs each chunk on the thread count it picks (:mod:`methods._internal.threads`;
            the evaluate command's worker passes one); None: torch's setting as it is.

    Returns:
        One :class:`MapScores` per map, in order; each equals ``deletion_curve``,
        ``insertion_curve`` and ``confidence_change`` of that map.

    Raises:
        InputError, OptionError, TargetError: as the one-map functions (an empty ``saliencies``
        is an InputError).

    Examples:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        >>> out = image_scores(net, torch.rand(1, 3, 8, 8), [torch.rand(4, 4), torch.rand(2, 2)], 0, steps=4)
        >>> len(out), out[0].deletion.steps, out[1].insertion.precision in ("fp32", "bf16")
        (2, 4, True)
    """
    net, _ = unwrap_model(model)
    x = check_model_input(net, check_one_image(x))
    steps = check_int("steps", steps, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    ran_in = resolve_precision(precision, x.device)  # 'auto' resolved: what the curves record
    sals = [check_saliency(s) for s in saliencies]
    if not sals:
        raise InputError("saliencies is empty; give at least one (h, w) map")
    d_sub, d_name = baseline_substrate(x, baseline, blur_sigma)  # (1, C, H, W)
    i_sub, i_name = baseline_substrate(x, insertion_baseline, blur_sigma)  # (1, C, H, W)
    same = isinstance(baseline, str) and baseline == insertion_baseline
    _, _, h, w = x.shape
    n = h * w
    counts = step_counts(n, steps)  # (S+1,)
    ranks = [pixel_ranks(s, h, w).to(x.device) for s in sals]  # M x (1, 1, H, W)
    masked = [explanation_image(model, x, s, space=space, mean=mean, std=std) for s in sals]  # M x (1, C, H, W)

    # rows to run, in order: the shared images, then per map deletion 1..S-1, insertion 1..S-1, E
    rows: list[tuple[str, int, int]] = [("x", -1, 0), ("del_base", -1, 0)] + ([] if same else [("ins_base", -1, 0)])
    for m in range(len(sals)):
        rows += [("deletion", m, i) for i in range(1, steps)] + [("insertion", m, i) for i in range(1, steps)]
        rows.append(("masked", m, 0))

    sources: dict[torch.memory_format, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def images(part: list[tuple[str, int, int]], layout: torch.memory_format) -> torch.Tensor:
        # written straight into one batch in the layout the runner feeds the model (no concatenation,
        # no second copy into channels_last); the same values as perturb() makes image by image. The
        # image and the substrates are read in that layout too (a selection: the same values; 15 %
        # less time for a chunk of 32 at 128 x 128 than reading them across the layouts)
        if layout not in sources:
            xl, dl, il = (t.contiguous(memory_format=layout) for t in (x, d_sub, i_sub))
            sources[layout] = (xl, dl, il)
        xl, dl, il = sources[layout]
        out = torch.empty((len(part), *x.shape[1:]), dtype=x.dtype, device=x.device, memory_format=layout)
        j = 0
        while j < len(part):  # one tensor op per run of rows of the same (kind, map)
            kind, m, _ = part[j]
            end = j
            while end < len(part) and part[end][:2] == (kind, m):
                end += 1
            if kind in ("deletion", "insertion"):
                k = counts[[i for _, _, i in part[j:end]]].to(x.device).view(-1, 1, 1, 1)  # (B, 1, 1, 1)
                perturb(kind, xl, dl if kind == "deletion" else il, ranks[m] < k, out=out[j:end])
            else:
                one = {"x": xl, "del_base": dl, "ins_base": il}.get(kind)
                out[j:end] = one if one is not None else masked[m]
            j = end
        return out  # (B, C, H, W)

    score = torch.empty(len(rows), dtype=torch.float64)
    with curve_model(net, x), runner_for(x, ran_in, len(rows), progress) as run:
        for start in range(0, len(rows), batch_size):
            part = rows[start : start + batch_size]
            layout = torch.contiguous_format if run.channels_last is False else torch.channels_last
            with threads.run(len(part) if start else 0) if threads is not None else contextlib.nullcontext():
                p = class_probabilities(run, net, images(part, layout))  # (B, K)
            if start == 0:
                target = check_class(target, p.shape[1])
            score[start : start + len(part)] = p[:, target].cpu()
        run.finish()
    return _assemble(rows, score, counts, n, int(target), steps, d_name, i_name, ran_in, space, len(sals))


def _assemble(rows, score, counts, n, target, steps, d_name, i_name, precision, space, n_maps) -> list[MapScores]:
    at = {row: score[j] for j, row in enumerate(rows)}
    p_x, p_del = at[("x", -1, 0)], at[("del_base", -1, 0)]
    p_ins = at.get(("ins_base", -1, 0), p_del)
    out = []
    for m in range(n_maps):
        middle_d = [at[("deletion", m, i)] for i in range(1, steps)]
        middle_i = [at[("insertion", m, i)] for i in range(1, steps)]
        dele = torch.stack([p_x, *middle_d, p_del])  # (S+1,)
        ins = torch.stack([p_ins, *middle_i, p_x])  # (S+1,)
        out.append(
            MapScores(
                deletion=Curve.from_scores(
                    "deletion", counts, n, dele, target=target, baseline=d_name, precision=precision
                ),
                insertion=Curve.from_scores(
                    "insertion", counts, n, ins, target=target, baseline=i_name, precision=precision
                ),
                confidence=confidence_from(float(p_x), float(at[("masked", m, 0)]), space=space),
            )
        )
    return out
