"""D-RISE: RISE for one detection, weighted by the similarity of the masked input's detections.

Petsiuk, Jain, Manjunatha, Lee, Agarwal, Ordonez, Saenko, "Black-box Explanation of Object
Detectors via Saliency Maps", CVPR 2021, https://arxiv.org/abs/2006.03204::

    S = (1 / (N p)) sum_i w_i M_i,   w_i = max_{d in f(x o M_i)} IoU(b, d_box) * cos(P, d_probs)

``M_i`` are RISE's masks (:func:`methods.cams.perturb.rise_masks`: the same generator, options and
seeds as ``rise``), ``b`` the target's box and ``P`` the one-hot vector of its class; the max runs
over the masked input's detections. A detector that exposes each detection's class-probability
vector (a ``probs`` (M, K) entry in its output dicts) gets the paper's cosine; torchvision's
detectors report only each detection's top class and score, so there
``w_i = max_{d of class c} IoU(b, d_box) * s_d``.

Deviation: with torchvision detectors the cosine is replaced by the class score of same-class
detections (the one-hot cosine of a detection whose probability vector is unknown); the paper's
objectness term (one-stage detectors) is not used; the normalisation ``1 / (N p)`` is RISE's (the
paper's weighted sum differs by that constant). Masked detections below the detector's own score
threshold are not seen (``w_i`` counts them as absent).

Only a detection target (:class:`methods.targets.BoxTarget`) can be explained; any other target
is refused with a message that says what to pass.
"""

from __future__ import annotations

import torch

from methods.cams.core.base import CallContext
from methods.cams.core.registry import register_method
from methods.cams.perturb import Rise
from methods.errors import TargetError
from methods.targets import BoxTarget, TargetView

__all__ = ["DRise"]


@register_method(
    name="drise",
    label="D-RISE",
    family="pixel",
    cost="num_masks/batch forwards",
    paper="https://arxiv.org/abs/2006.03204",
    summary="RISE for one detected box: each mask weighted by IoU x class similarity of the masked detections.",
    layer_independent=True,
    slow=True,
    targets=("box",),
)
class DRise(Rise):
    """D-RISE (Petsiuk et al., CVPR 2021, arXiv:2006.03204); the formula and the deviations are in
    the module docstring. Options: as :class:`methods.cams.perturb.Rise` (``num_masks`` 1000,
    ``cell`` 16, ``p`` 0.5, ``seed``, ``batch_size``, ``precision``). Deviation: the paper uses
    5000 masks on a 16 x 16 grid; the defaults are RISE's."""

    def compute_input(self, call: CallContext) -> torch.Tensor:
        view = call.model
        if not isinstance(view, TargetView) or not isinstance(view.target, BoxTarget):
            got = type(view.target).__name__ if isinstance(view, TargetView) else "a class index"
            raise TargetError(
                f"D-RISE explains one detection, and the target is {got}; pass "
                "target=methods.targets.BoxTarget(box=(x0, y0, x1, y1), label=c) with a detector "
                "(for a classifier, use 'rise')"
            )
        with view.similarity_scores():
            return super().compute_input(call)
