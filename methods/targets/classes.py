"""The classification target: a class index, as GradLens has always explained.

``ClassTarget(c)`` is the same as passing ``target=c``: the explained score is the pre-softmax logit
of class ``c``. It exists so that code handling targets of every kind can name this one too;
:func:`methods.explain` turns it into the int (one recorded pass, nothing else changes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from methods._internal.checks import is_int
from methods.errors import TargetError
from methods.targets.base import Target

__all__ = ["ClassTarget"]


@dataclass(frozen=True)
class ClassTarget(Target):
    """The logit of class ``index``.

    Examples:
        >>> ClassTarget(1).scores(torch.tensor([[0.5, 2.0]]))
        tensor([2.])
    """

    index: int

    kind: ClassVar[str] = "class"

    def __post_init__(self) -> None:
        if isinstance(self.index, bool) or not is_int(self.index) or int(self.index) < 0:
            raise TargetError(f"ClassTarget index must be a class index >= 0; got {self.index!r}")
        object.__setattr__(self, "index", int(self.index))

    def describe(self) -> str:
        return f"class {self.index}"

    def scores(self, output: Any, *, strict: bool = False) -> torch.Tensor:
        if not isinstance(output, torch.Tensor) or output.ndim != 2:
            raise TargetError("a ClassTarget needs (N, classes) logits")
        if self.index >= output.shape[1]:
            raise TargetError(f"target class {self.index} is out of range: the model has {output.shape[1]} classes")
        return output[:, self.index]
