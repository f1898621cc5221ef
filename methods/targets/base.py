"""The target protocol: what scalar a map explains, and the scoring view that makes it explainable.

Every method of GradLens explains one column of an (N, K) score tensor. A classifier's target is a
class index (an int, as always: see :class:`methods.targets.ClassTarget`). A *task target* — a
detected box, a segmented region, an embedding's similarity — is a :class:`Target`: an object whose
:meth:`Target.view` turns the model into a :class:`TargetView`, a
:class:`methods._internal.score_view.ScoreView` whose forward returns ONE score per input, (N, 1).
The view shares the model's modules (layer names unchanged, its train/eval flag IS the model's), so
every method explains the target with no change: the gradient family differentiates the score,
the score family, RISE, occlusion and Ablation-CAM re-score their masked inputs through it, and the
deletion / insertion curves read it.

Scores are used as they are. Where a method reads a classifier's softmax probability ``p_c``
(Score-CAM, RISE, occlusion, the curves), it reads the target's score instead
(:func:`explained_scores`): a softmax over one column would be 1 everywhere.

A task target carries ONE reference (one box, one region, one embedding) and scores every sample of
the batch against it; give a list of N targets to :func:`methods.explain` for one reference per sample.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
from torch import nn

from methods._internal.score_view import ScoreView
from methods.errors import TargetError

__all__ = ["Target", "TargetView", "explained_scores", "box_iou", "check_box"]


class Target(abc.ABC):
    """What a map explains, when it is not a classifier's class index.

    Subclasses are frozen dataclasses that implement :meth:`scores`; ``kind`` names the task
    (``"box"``, ``"region"``, ``"embedding"``).
    """

    kind: ClassVar[str] = "task"

    def view(self, model: nn.Module) -> TargetView:
        """The scoring view of ``model`` for this target: forward(x) -> (N, 1) scores."""
        return TargetView(model, self)

    @abc.abstractmethod
    def scores(self, output: Any, *, strict: bool = False) -> torch.Tensor:
        """(N,) scores of this target in the model's raw ``output`` for a batch of N inputs.

        ``strict=True`` (the explained input itself) raises :class:`methods.errors.TargetError`
        where the reference is not found in the output (a box no detection matches); otherwise
        (a masked input) that sample scores 0.
        """

    def similarities(self, output: Any) -> torch.Tensor:
        """(N,) D-RISE similarities of the output to the reference; detection targets only."""
        raise TargetError(
            f"{type(self).__name__} has no detection similarity; D-RISE explains a detected box: "
            "pass target=BoxTarget(box=(x0, y0, x1, y1), label=c)"
        )

    def describe(self) -> str:
        """A short human-readable name of the target (for notes, reports, CSV rows)."""
        return type(self).__name__


class TargetView(ScoreView):
    """``model`` seen through ``target``: forward(x) returns (N, 1) scores.

    Attributes:
        target: the :class:`Target`.
        strict: while True (inside :meth:`strict_scores`), a reference that is not found raises.
        mode: ``"score"`` (the target's score) or ``"similarity"`` (its D-RISE similarity, inside
            :meth:`similarity_scores`).
    """

    def __init__(self, model: nn.Module, target: Target) -> None:
        super().__init__(model)
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_strict", False)
        object.__setattr__(self, "_mode", "score")

    @property
    def target(self) -> Target:
        target: Target = self.__dict__["_target"]
        return target

    @property
    def strict(self) -> bool:
        return bool(self.__dict__["_strict"])

    @property
    def mode(self) -> str:
        return str(self.__dict__["_mode"])

    @contextmanager
    def strict_scores(self) -> Iterator[TargetView]:
        """A block whose forwards raise where the reference is not found (the explained input)."""
        old = self.strict
        object.__setattr__(self, "_strict", True)
        try:
            yield self
        finally:
            object.__setattr__(self, "_strict", old)

    @contextmanager
    def similarity_scores(self) -> Iterator[TargetView]:
        """A block whose forwards return :meth:`Target.similarities` (D-RISE's weights)."""
        old = self.mode
        object.__setattr__(self, "_mode", "similarity")
        try:
            yield self
        finally:
            object.__setattr__(self, "_mode", old)

    def read(self, output: Any) -> torch.Tensor:
        if self.mode == "similarity":
            s = self.target.similarities(output)
        else:
            s = self.target.scores(output, strict=self.strict)
        return s.float()[:, None]  # (N, 1)


def explained_scores(model: nn.Module, out: torch.Tensor) -> torch.Tensor:
    """What a perturbation method reads from a forward's (B, K) output: the softmax probabilities
    for a classifier, the scores themselves (B, 1) for a :class:`TargetView`."""
    if isinstance(model, TargetView):
        return out
    return out.softmax(dim=1)


def check_box(box: Any, what: str = "box") -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` as four finite floats with x0 < x1 and y0 < y1, or a TargetError."""
    if isinstance(box, torch.Tensor):
        box = box.detach().flatten().tolist()
    try:
        values = tuple(float(v) for v in box)
    except (TypeError, ValueError):
        raise TargetError(f"{what} must be four numbers (x0, y0, x1, y1) in input pixels; got {box!r}") from None
    if len(values) != 4 or not all(v == v and abs(v) != float("inf") for v in values):
        raise TargetError(f"{what} must be four finite numbers (x0, y0, x1, y1) in input pixels; got {box!r}")
    x0, y0, x1, y1 = values
    if not (x0 < x1 and y0 < y1):
        raise TargetError(f"{what}={values} is empty: give (x0, y0, x1, y1) with x0 < x1 and y0 < y1")
    return x0, y0, x1, y1


def box_iou(box: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """IoU of one box (4,) with boxes (M, 4), all ``(x0, y0, x1, y1)``; differentiable. Returns (M,).

    ``IoU = |A n B| / (|A| + |B| - |A n B|)`` (0 where the union is empty).

    Examples:
        >>> box_iou(torch.tensor([0., 0., 2., 2.]), torch.tensor([[1., 1., 3., 3.], [0., 0., 2., 2.]]))
        tensor([0.1429, 1.0000])
    """
    lt = torch.maximum(box[:2], boxes[:, :2])  # (M, 2)
    rb = torch.minimum(box[2:], boxes[:, 2:])  # (M, 2)
    inter = (rb - lt).clamp(min=0).prod(dim=1)  # (M,)
    area_a = (box[2:] - box[:2]).clamp(min=0).prod()
    area_b = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0).prod(dim=1)  # (M,)
    union = area_a + area_b - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(union))
