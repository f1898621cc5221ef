"""The stages of a batch run overlapped: decode ahead, the model, write behind.

:func:`overlapped` runs ``decode(part)`` (reading files) for the next parts in a **decode
thread**, ``compute`` (the model) in the **caller's thread**, and ``finish`` (drawing, encoding
and writing the files) for the previous parts in a **writer thread**, joined by bounded queues of
``depth`` parts. So while the model works on part k, part k+1 is being decoded and part k-1's
pictures encoded and written. PIL's PNG decoder, ``cv2.imencode``, zlib and file I/O release
the GIL, so those threads run on the cycles the model leaves idle (its Python-bound steps, the
gaps between its kernels) or on spare cores.

The model stays in the caller's thread on purpose: torch's intra-op thread pool is set up for
that thread (``torch.set_num_threads``), and in a new Python thread torch on this OpenMP build ran
on one core (measured: CPU time / wall time 0.97 with 2 threads set) — faster on a loaded
machine, up to twice as slow on an idle one. What the caller does with each finished part (the
batch command: append its manifest rows) runs between two parts' model work.

What stays as it was without threads:

* **order** — results come out part by part, in the order the parts went in;
* **nothing reported before it is on disk** — a part's results are yielded only after its
  ``finish`` returned (its files are written), so a caller that persists them (the manifest) never
  records a file that is not there; a killed run loses at most the parts in the pipeline
  (``3 * depth + 3``, the caller's own included), whose files the next run writes again;
* **errors** — an exception in any stage travels down the line after the parts before it and is
  raised in the caller's thread (with its original traceback), never swallowed; the stages are
  then stopped;
* **memory** — every queue is bounded (``depth`` parts): a slow disk or a slow caller holds the
  model back instead of filling memory.

Leaving the loop early (the caller stops iterating, raises, or closes the generator) stops the
threads after the step each is in and joins them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from methods._internal.checks import check_int

__all__ = ["overlapped"]

_END = object()


class _Failed:
    """A stage's exception, carried through a queue to the caller."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _put(q: queue.Queue, value: Any, stop: threading.Event) -> bool:
    """Put ``value`` into ``q``, waiting for room; False (not put) once ``stop`` is set."""
    while not stop.is_set():
        try:
            q.put(value, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, stop: threading.Event) -> Any:
    while not stop.is_set():
        try:
            return q.get(timeout=0.05)
        except queue.Empty:
            continue
    return _END


def overlapped(
    parts: Iterable[Any],
    decode: Callable[[Any], Any],
    compute: Callable[[Any], Any],
    finish: Callable[[Any], Any],
    *,
    depth: int = 1,
) -> Iterator[Any]:
    """Yield ``finish(compute(decode(part)))`` for every part, in order, the three stages overlapped.

    Args:
        parts: the work, one element per batch (consumed lazily by the decode thread).
        decode: runs in the decode thread (reading files).
        compute: runs in the calling thread.
        finish: runs in the writer thread (encoding, writing); what it returns is yielded.
        depth: slots of each of the three queues (>= 1).

    Raises:
        Whatever a stage raised (the first one), after the threads are stopped.
    """
    depth = check_int("depth", depth, 1)
    stop = threading.Event()  # set when the caller is gone: every stage ends after its current step
    decoded: queue.Queue = queue.Queue(maxsize=depth)
    computed: queue.Queue = queue.Queue(maxsize=depth)
    written: queue.Queue = queue.Queue(maxsize=depth)

    def decoder() -> None:
        try:
            for part in parts:
                if stop.is_set() or not _put(decoded, decode(part), stop):
                    return
        except BaseException as exc:  # handed down the line, in order, to the caller
            _put(decoded, _Failed(exc), stop)
            return
        _put(decoded, _END, stop)

    def writer() -> None:
        while True:
            got = _get(computed, stop)
            if got is not _END and not isinstance(got, _Failed):
                try:
                    got = finish(got)
                except BaseException as exc:  # handed to the caller, after the parts before it
                    got = _Failed(exc)
            if not _put(written, got, stop) or got is _END or isinstance(got, _Failed):
                return

    def handed_on() -> Iterator[Any]:  # what the writer finished, without waiting
        while True:
            try:
                got = written.get_nowait()
            except queue.Empty:
                return
            if isinstance(got, _Failed):
                raise got.exc
            yield got

    def send(value: Any) -> Iterator[Any]:  # to the writer; while its queue is full, hand on what it finished
        while True:
            try:
                computed.put(value, timeout=0.05)
                return
            except queue.Full:
                yield from handed_on()

    threads = [
        threading.Thread(target=decoder, name="gradlens-decode", daemon=True),
        threading.Thread(target=writer, name="gradlens-write", daemon=True),
    ]
    for t in threads:
        t.start()
    try:
        while True:
            got = _get(decoded, stop)
            if isinstance(got, _Failed):
                raise got.exc
            if got is _END:
                break
            yield from send(compute(got))  # the model, in the caller's thread
            yield from handed_on()
        yield from send(_END)
        while (got := written.get()) is not _END:
            if isinstance(got, _Failed):
                raise got.exc
            yield got
    finally:
        stop.set()
        for t in threads:
            t.join()
