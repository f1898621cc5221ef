"""Progress callbacks: the :data:`Progress` type and a thread-safe, cancellable tracker.

Long computations (score-family maps, curves, the batch and evaluate commands) report
``progress(done, total)`` after every batch; a caller shows a bar or stops the work by raising
from the callback (:class:`ProgressTracker` raises :class:`methods.errors.Cancelled`).
:mod:`methods._internal.torch_utils` re-exports both names.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from methods.errors import Cancelled

__all__ = ["Progress", "ProgressTracker"]

Progress = Callable[[int, int], None]
"""A progress callback: ``progress(done, total)``."""


class ProgressTracker:
    """A thread-safe :data:`Progress` callback that remembers the latest ``(done, total)``: a
    computing thread calls it, another thread (a progress bar) reads :attr:`fraction`.

    Setting :attr:`cancelled` makes the next call raise :class:`methods.errors.Cancelled`, which
    stops a long computation between two batches.

    Examples:
        >>> p = ProgressTracker(); p(3, 4); p.fraction
        0.75
    """

    def __init__(self) -> None:
        self.done, self.total = 0, 1
        self.cancelled = False
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int) -> None:
        with self._lock:
            self.done, self.total = int(done), max(int(total), 1)
        if self.cancelled:
            raise Cancelled("the computation was cancelled")

    @property
    def fraction(self) -> float:
        with self._lock:
            return min(max(self.done / self.total, 0.0), 1.0)
