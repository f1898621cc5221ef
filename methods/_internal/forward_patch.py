"""Instance-level ``forward`` overrides of modules, for a block, undone in reverse order.

Used where a computation runs a model's modules another, equivalent way while it runs (the score
family's substituted tail, the folded Conv -> BatchNorm pairs of :mod:`methods._internal.bn_folding`):
parameters and buffers are never touched, and the class ``forward`` is in use again afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

__all__ = ["ForwardPatcher"]


class ForwardPatcher:
    """Instance-level ``forward`` overrides of modules, undone in reverse order.

    Subclasses set ``self._saved = []``, patch in ``__enter__`` (calling :meth:`_restore` when
    entering fails) and are undone on exit; a module whose class ``forward`` was in use gets its
    instance attribute removed again.
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

    def __exit__(self, *exc: Any) -> None:
        self._restore()
