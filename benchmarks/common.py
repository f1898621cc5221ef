"""Shared timing helpers for the benchmark scripts: ratios measured in ONE run, interleaved."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def time_interleaved(fns: dict[str, Callable[[], object]], *, repeats: int = 7, warmup: int = 2) -> dict[str, float]:
    """Median wall time (s) of each function, calling them round-robin so drift hits all equally."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    return {name: statistics.median(vals) for name, vals in samples.items()}


def report(title: str, times: dict[str, float], ratios: list[tuple[str, str, str, float | None]]) -> None:
    """Print medians and the named ratios ``numerator / denominator`` (with a goal if given)."""
    print(f"\n== {title}")
    for name, t in times.items():
        print(f"  {name:<48s} {t * 1000:9.1f} ms")
    for label, num, den, goal in ratios:
        ratio = times[num] / times[den]
        verdict = "" if goal is None else (f"  (goal <= {goal:.2f}: {'met' if ratio <= goal else 'NOT met'})")
        print(f"  {label} = {ratio:.2f}{verdict}")


def allocator_state() -> str:
    """Keep glibc's large blocks for the whole run when this tree can (``methods.keep_large_blocks``:
    the commands' workers do it on their first call, so the floors are timed the same way); what holds."""
    try:
        from methods import keep_large_blocks
    except ImportError:  # an older tree (before_after.py --base): the C allocator's defaults
        return "system (this tree has no keep_large_blocks)"
    return keep_large_blocks()
