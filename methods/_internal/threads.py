"""torch's intra-op thread count for a repeated piece of work, chosen by timing it.

torch runs each operator on ``torch.get_num_threads()`` OpenMP threads that meet at a barrier
after every parallel region. On a machine whose cores are taken by other work, one of those
threads waits for a time slice at every barrier: measured on a shared 2-core machine (load 3-7),
Grad-CAM of one 128 x 128 image took 1.0 s with 2 threads and 25 ms with 1, a batched
forward+backward 2-7x longer with 2 threads than with 1. On an idle machine 2 threads can be up
to twice as fast as 1. Which one pays is a property of the machine at that moment, not of
the code, so :class:`ThreadTuner` measures it:

* the work comes in units (a batch of the batch command, an image's explanation, a chunk of
  curve forwards), each run inside ``with tuner.run(size):``;
* the first unit is a warm-up (not timed: it pays one-time costs), then each candidate (1 thread
  and the process's own count) runs two units in turn, then every unit runs on the candidate
  with the lower median time per item over its last few units;
* the other candidate is tried again now and then, so a machine whose load changes is followed:
  every ``probe_every`` units, or less often when it was much slower (looking again costs at
  most ``overhead``, 2 %, of the time), but at least every 64 units. (When the chosen candidate
  itself slows down, the tuner sees it in the units it times and switches without a look.)

The thread count is set for the unit and put back afterwards. ``torch.set_num_threads`` is
process-wide: units that run at the same time in threads of one process (two runs started from a
server's sessions) share whichever count was set last, and the process's own count is put back
when the last of them ends. Results do not depend on it:
the same kernels run, only their split across threads changes (float sums may round in another
order: differences ~1e-7, well inside every tolerance the tests use). With one usable thread
there is nothing to choose and ``run`` changes nothing.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import threading
import time
from collections.abc import Iterator

import torch

from methods._internal.checks import check_int, check_number

__all__ = ["ThreadTuner", "tuner", "own_threads"]

_KEEP = 3  # units remembered per candidate
_TRIES = 2  # units each candidate runs before the tuner chooses
_LONGEST = 64  # the most units between two looks at the slower candidate


class ThreadTuner:
    """Chooses between 1 thread and the process's thread count by timing units of work.

    Args:
        probe_every: at least this many units between two looks at the candidate not in use (>= 2).
        overhead: what looking again may cost, as a share of the time (a candidate r times slower
            is looked at every ``(r - 1) / overhead`` units when that is more than ``probe_every``).
        most: the larger candidate (default: the process's own thread count, :func:`own_threads`).

    Examples:
        >>> t = ThreadTuner()
        >>> with t.run(size=4) as n:
        ...     _ = torch.ones(8).sum()
        >>> n in t.candidates
        True
    """

    def __init__(self, probe_every: int = 8, overhead: float = 0.02, most: int | None = None) -> None:
        self.probe_every = check_int("probe_every", probe_every, 2)
        self.overhead = check_number("overhead", overhead, minimum=0.001, maximum=1.0)
        most = own_threads() if most is None else check_int("most", most, 1)
        self.candidates: tuple[int, ...] = (most, 1) if most > 1 else (most,)
        self.seconds: dict[int, list[float]] = {c: [] for c in self.candidates}  # per item, last units
        self.last: dict[int, int] = {c: -1 for c in self.candidates}  # the unit each candidate last ran
        self.units = 0
        self._warmed = False

    def choose(self) -> int:
        """The thread count for the next unit: an untried candidate, else the faster one, except
        that the slower one runs again once enough units have passed that looking again costs at
        most ``overhead`` of the time (``probe_every`` units, more when the slower one is much
        slower: a candidate 1.5x slower is looked at every 25 units for 2 %), and at least every 64 units."""
        untried = [c for c in self.candidates if len(self.seconds[c]) < _TRIES]
        if untried:  # each candidate twice, in turn: one slow first unit does not decide alone
            return min(untried, key=lambda c: len(self.seconds[c]))
        medians = {c: statistics.median(self.seconds[c]) for c in self.candidates}
        best = min(self.candidates, key=medians.__getitem__)
        for other in self.candidates:
            if other == best:
                continue
            slower = medians[other] / max(medians[best], 1e-12)
            every = min(_LONGEST, max(self.probe_every, math.ceil((slower - 1.0) / self.overhead)))
            if self.units - self.last[other] >= every:
                return other  # look again: the load may have changed
        return best

    def best(self) -> int:
        """The candidate with the lower median time so far (the process's own count before any)."""
        timed = [c for c in self.candidates if self.seconds[c]]
        if not timed:
            return self.candidates[0]
        return min(timed, key=lambda c: statistics.median(self.seconds[c]))

    @contextlib.contextmanager
    def run(self, size: int = 1) -> Iterator[int]:
        """Run the block (one unit of ``size`` items) on the chosen thread count; yields it.
        ``size=0``: work that is not like the units (set-up, or a block around units): it runs on
        :meth:`best`, is not timed, and units inside it set their own count and put this one back."""
        count = self.choose() if size > 0 else self.best()
        warm_up, self._warmed = not self._warmed, True
        _enter(count)
        start = time.perf_counter()
        try:
            yield count
        finally:
            spent = (time.perf_counter() - start) / max(1, size)
            _leave()
            if size > 0 and not warm_up:  # the very first unit pays one-time costs: not recorded
                self.last[count] = self.units
                kept = self.seconds[count]
                kept.append(spent)
                del kept[:-_KEEP]
                self.units += 1


_TUNERS: dict[tuple[str, int], ThreadTuner] = {}
_LOCK = threading.Lock()
_ACTIVE = [0, 0]  # [tuned units running now (any thread), the thread count before the first of them]
_LOCAL = threading.local()  # per thread: the counts of the units it is inside, innermost last


def _enter(count: int) -> None:
    """A tuned unit starts: remember the process's own count if it is the only one, set ``count``."""
    with _LOCK:
        if _ACTIVE[0] == 0:
            _ACTIVE[1] = torch.get_num_threads()
        _ACTIVE[0] += 1
        _LOCAL.__dict__.setdefault("stack", []).append(count)
        torch.set_num_threads(count)


def _leave() -> None:
    """A tuned unit ends: the unit around it in this thread gets its count back, and the last one
    running puts the process's own count back. (Units that overlap in time in different threads of
    one process share whichever count was set last; the count is always put back to what it was
    before the first of them.)"""
    with _LOCK:
        _ACTIVE[0] -= 1
        stack = _LOCAL.stack
        stack.pop()
        if _ACTIVE[0] == 0:
            torch.set_num_threads(_ACTIVE[1])
        elif stack:
            torch.set_num_threads(stack[-1])


def own_threads() -> int:
    """The process's thread count outside tuned units (while one runs, the count before it)."""
    with _LOCK:
        return _ACTIVE[1] if _ACTIVE[0] else torch.get_num_threads()


def tuner(name: str) -> ThreadTuner:
    """The process's tuner for one kind of work (``"batch.model"``, ``"evaluate.image"`` ...):
    kept across runs in this process, so a second run starts from what the first measured; a
    new one when the process's own thread count changed."""
    most = own_threads()
    key = (name, most)
    with _LOCK:
        if key not in _TUNERS:
            _TUNERS[key] = ThreadTuner(most=most)
        return _TUNERS[key]
