"""torch's intra-op thread count for a repeated piece of work, chosen by timing it.

torch runs each operator on ``torch.get_num_threads()`` OpenMP threads that meet at a barrier
after every parallel region. On a machine whose cores are taken by other work, one of those
threads waits for a time slice at every barrier: measured on a shared 2-core machine (load 3-7),
Grad-CAM of one 128 x 128 image took 1.0 s with 2 threads and 25 ms with 1, a batched
forward+backward 3-7x longer with 2 threads than with 1. On an idle machine the same 2 threads
are up to twice as fast as 1. Which one pays is a property of the machine at that moment, not of
the code, so :class:`ThreadTuner` measures it:

* the work comes in units (a batch of the batch command, an image's explanation, a chunk of
  curve forwards), each run inside ``with tuner.run(size):``;
* the first units try each candidate (1 thread and the process's own count), then every unit
  runs on the candidate with the lower median time per item over its last few units;
* every ``probe_every`` units the other candidate is tried again, so a machine whose load
  changes is followed.

The thread count is set for the unit and put back afterwards (``torch.set_num_threads`` is
process-wide: do not run two tuned units at once in one process). Results do not depend on it:
the same kernels run, only their split across threads changes (float sums may round in another
order: differences ~1e-7, well inside every tolerance the tests use). With one usable thread
there is nothing to choose and ``run`` changes nothing.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections.abc import Iterator

import torch

from methods._internal.checks import check_int

__all__ = ["ThreadTuner", "tuner"]

_KEEP = 3  # units remembered per candidate


class ThreadTuner:
    """Chooses between 1 thread and the process's thread count by timing units of work.

    Args:
        probe_every: every this many units, the candidate not in use is timed again (>= 2).

    Examples:
        >>> t = ThreadTuner()
        >>> with t.run(size=4) as n:
        ...     _ = torch.ones(8).sum()
        >>> n in t.candidates
        True
    """

    def __init__(self, probe_every: int = 8) -> None:
        self.probe_every = check_int("probe_every", probe_every, 2)
        most = torch.get_num_threads()
        self.candidates: tuple[int, ...] = (most, 1) if most > 1 else (most,)
        self.seconds: dict[int, list[float]] = {c: [] for c in self.candidates}  # per item, last units
        self.units = 0

    def choose(self) -> int:
        """The thread count for the next unit."""
        untried = [c for c in self.candidates if not self.seconds[c]]
        if untried:
            return untried[0]
        best = min(self.candidates, key=lambda c: statistics.median(self.seconds[c]))
        if len(self.candidates) > 1 and self.units % self.probe_every == self.probe_every - 1:
            return next(c for c in self.candidates if c != best)  # look again: the load may have changed
        return best

    @contextlib.contextmanager
    def run(self, size: int = 1) -> Iterator[int]:
        """Run the block (one unit of ``size`` items) on the chosen thread count; yields it.
        ``size=0``: a unit that is not like the others (a first call that sets things up): it
        runs on the current choice and its time is not recorded."""
        count = self.choose()
        before = torch.get_num_threads()
        torch.set_num_threads(count)
        start = time.perf_counter()
        try:
            yield count
        finally:
            spent = (time.perf_counter() - start) / max(1, size)
            torch.set_num_threads(before)
            if size > 0:
                kept = self.seconds[count]
                kept.append(spent)
                del kept[:-_KEEP]
                self.units += 1


_TUNERS: dict[tuple[str, int], ThreadTuner] = {}
_LOCK = threading.Lock()


def tuner(name: str) -> ThreadTuner:
    """The process's tuner for one kind of work (``"batch.model"``, ``"evaluate.curves"`` ...):
    kept across runs in this process, so a second run starts from what the first measured; a
    new one when the process's thread count changed."""
    key = (name, torch.get_num_threads())
    with _LOCK:
        if key not in _TUNERS:
            _TUNERS[key] = ThreadTuner()
        return _TUNERS[key]
