"""Three stages of a batch run overlapped: decode ahead, compute here, write behind.

:func:`overlapped` runs ``decode(part)`` for the next part in a **decode thread**, ``compute``
in the calling thread (the model: it keeps torch's own thread pool), and ``finish`` (encoding and
writing the files) in a **writer thread**, joined by two queues of ``depth`` slots each. So while
the model works on part k, part k+1 is being read and decoded and part k-1's pictures encoded and
written; PIL's and OpenCV's decoders and encoders, zlib and file I/O release the GIL, so the
threads use the cores the model leaves idle (its Python-bound steps, the gaps between its kernels).

What stays as it was without threads:

* **order** — results come out part by part, in the order the parts went in;
* **nothing reported before it is on disk** — a part's results are yielded only after its
  ``finish`` returned (its files are written), so a caller that persists them (the manifest) never
  records a file that is not there; a killed run loses at most the parts in the pipeline
  (``2 * depth + 3``: decoded, computing, waiting, writing), which the next run recomputes;
* **errors** — an exception in any stage is raised to the caller (in the caller's thread, with its
  traceback chained), never swallowed; the other stages are stopped;
* **memory** — at most ``depth`` decoded parts wait for the model and ``depth`` computed parts wait
  for the writer (bounded queues: a slow disk holds the model back instead of filling memory).

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
        compute: runs in the calling thread (the model).
        finish: runs in the writer thread (encoding, writing); what it returns is yielded.
        depth: slots of each of the two queues (>= 1).

    Raises:
        Whatever a stage raised (the first one), after the threads are stopped.
    """
    depth = check_int("depth", depth, 1)
    stop = threading.Event()
    decoded: queue.Queue = queue.Queue(maxsize=depth)
    computed: queue.Queue = queue.Queue(maxsize=depth)
    written: queue.Queue = queue.Queue()  # unbounded, but never holds more than the parts in flight

    def decoder() -> None:
        try:
            for part in parts:
                if stop.is_set() or not _put(decoded, decode(part), stop):
                    return
        except BaseException as exc:  # carried to the caller
            _put(decoded, _Failed(exc), stop)
            return
        _put(decoded, _END, stop)

    def writer() -> None:
        while True:
            got = _get(computed, stop)
            if got is _END or isinstance(got, _Failed):
                written.put(got)
                return
            try:
                done = finish(got)
            except BaseException as exc:
                written.put(_Failed(exc))
                stop.set()  # the caller stops computing and raises it after what was written before
                return
            written.put(done)

    threads = [
        threading.Thread(target=decoder, name="gradlens-decode", daemon=True),
        threading.Thread(target=writer, name="gradlens-write", daemon=True),
    ]
    for t in threads:
        t.start()
    in_flight = 0  # parts handed to the writer and not yet yielded
    try:
        while True:
            got = _get(decoded, stop)
            if isinstance(got, _Failed):
                raise got.exc
            if got is _END:
                break
            value = compute(got)
            _put(computed, value, stop)
            in_flight += 1
            while in_flight and not written.empty():  # hand on what the writer finished meanwhile
                in_flight -= 1
                yield _unwrap(written.get())
        _put(computed, _END, stop)
        while True:
            got = written.get()
            if got is _END:
                break
            yield _unwrap(got)
    finally:
        stop.set()
        for t in threads:
            t.join()


def _unwrap(got: Any) -> Any:
    if isinstance(got, _Failed):
        raise got.exc
    return got
