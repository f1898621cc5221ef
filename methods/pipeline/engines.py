"""Where the batch and evaluate commands run their work: a local process pool or a Ray cluster.

Both commands describe their work the same way, so one engine runs either:

* a **spec** — a small picklable object whose ``build()`` loads the model and returns a worker
  (``worker(items) -> results``). It is built ONCE per worker process / Ray actor, so the model
  is loaded once per worker, never per image;
* **items** — plain dicts (an image path, a scene seed ...), one per image; the worker returns
  one result dict per item and never raises for one bad image (it reports it in the result).

Engines (``engine=``):

* ``"local"`` — ``workers`` processes on this machine (default: the CPU cores this process may
  use), started with ``spawn`` (a clean interpreter: safe with torch's thread pools), each with
  ``cores // workers`` torch threads. Workers die with their parent
  (:func:`methods._internal.orphans.die_with_parent`): a SIGKILLed command leaves no worker behind. ``workers=1`` runs in this process, without a pool; a worker with a ``stream(parts)`` method
  (the batch command's) gets all parts at once, to overlap reading, the model and writing.
* ``"ray"`` — Ray Data: a dataset of the items, ``map_batches`` with an actor pool of ``workers``
  actors (``ActorPoolStrategy(size=workers)``), each actor building the spec once. It joins the
  cluster at ``ray_address`` (or ``$RAY_ADDRESS``); without one it starts a local Ray instance
  (``num_cpus=workers``, no dashboard) and stops it afterwards. Ray already running in this
  process (``ray.is_initialized()``) is used as it is. Ray is an optional extra:
  ``pip install 'gradlens[ray]'``.

Results are handed to ``on_results(list_of_results)`` as they arrive (one call per finished
batch, in completion order), so a caller can persist them and move a progress bar; an exception
raised by ``on_results`` (e.g. :class:`methods.errors.Cancelled`) stops the run.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from methods._internal.checks import check_choice, check_int
from methods._internal.orphans import die_with_parent
from methods.errors import EngineError

__all__ = [
    "ENGINES",
    "WorkerSpec",
    "Worker",
    "default_workers",
    "check_engine",
    "run_items",
    "chunks",
    "import_ray",
    "gpu_share",
]

ENGINES: tuple[str, ...] = ("local", "ray")

Worker = Callable[[list[dict]], list[dict]]
"""``worker(items) -> results``: one result dict per item, in any order."""


class WorkerSpec(Protocol):
    """What an engine runs: ``build()`` loads the model and returns a :data:`Worker`."""

    def build(self) -> Worker: ...


def default_workers() -> int:
    """The CPU cores this process may use (``os.sched_getaffinity``), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def check_engine(engine: Any, workers: Any) -> tuple[str, int]:
    """``(engine, workers)`` checked; ``workers=None`` -> :func:`default_workers`."""
    check_choice("engine", engine, ENGINES)
    workers = default_workers() if workers is None else check_int("workers", workers, 1)
    return engine, workers


def chunks(items: Sequence[dict], size: int) -> Iterator[list[dict]]:
    """``items`` in consecutive lists of at most ``size``.

    Examples:
        >>> [len(c) for c in chunks([{}] * 5, 2)]
        [2, 2, 1]
    """
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def run_items(
    spec: WorkerSpec,
    items: Sequence[dict],
    *,
    on_results: Callable[[list[dict]], None],
    engine: str = "local",
    workers: int | None = None,
    batch_size: int = 1,
    ray_address: str | None = None,
    num_gpus: float = 0.0,
) -> None:
    """Run ``spec``'s worker over ``items`` on ``engine``; results go to ``on_results``.

    Args:
        spec: builds the worker (once per process / actor).
        items: one plain dict per image.
        on_results: called with each finished batch's results.
        engine: ``"local"`` or ``"ray"``.
        workers: processes / actors (default :func:`default_workers`).
        batch_size: items per worker call (images per forward+backward for the batch command).
        ray_address: the Ray cluster to join (default ``$RAY_ADDRESS``; none: a local instance).
        num_gpus: GPUs each Ray actor asks for (e.g. 1 with ``--device cuda``).

    Raises:
        EngineError: a worker could not start (its message is passed on), a worker process died,
            or Ray is missing / failed.
    """
    engine, workers = check_engine(engine, workers)
    batch_size = check_int("batch_size", batch_size, 1)
    if not items:
        return
    on_results = _checked(on_results)
    if engine == "ray":
        _run_ray(spec, items, on_results, workers, batch_size, ray_address, num_gpus)
    elif workers == 1:
        worker = spec.build()
        # reading, the model and writing overlapped: a worker that has ``stream`` and asks for it
        stream = getattr(worker, "stream", None) if getattr(worker, "overlap", False) else None
        parts: Iterator[list[dict]] = (
            stream(chunks(items, batch_size)) if stream else _one_by_one(worker, items, batch_size)
        )
        try:
            for results in parts:
                on_results(results)
        finally:  # stops the overlap's threads when on_results raises (Cancelled ...)
            close = getattr(parts, "close", None)
            if close is not None:
                close()
    else:
        _run_pool(spec, items, on_results, workers, batch_size)


def _one_by_one(worker: Worker, items: Sequence[dict], batch_size: int) -> Iterator[list[dict]]:
    for part in chunks(items, batch_size):
        yield worker(part)


# --------------------------------------------------------------------------------------------
# local: a process pool

_STATE: dict[str, Any] = {}


def _init_local(spec: WorkerSpec, threads: int, parent_pid: int | None = None) -> None:
    import torch

    if parent_pid is not None:  # a SIGKILLed batch/evaluate left its workers running, idle, holding the model
        die_with_parent(parent_pid)

    torch.set_num_threads(threads)
    try:
        _STATE["worker"] = spec.build()
    except Exception as exc:  # reported by every task of this process, then the run stops
        _STATE["error"] = f"{type(exc).__name__}: {exc}"


def _run_local(part: list[dict]) -> list[dict]:
    if "error" in _STATE:
        return [{_START_ERROR: _STATE["error"]}]
    return _STATE["worker"](part)


_START_ERROR = "__worker_could_not_start__"


def _checked(on_results: Callable[[list[dict]], None]) -> Callable[[list[dict]], None]:
    """``on_results`` that first turns a worker's start-up failure into an EngineError."""

    def deliver(results: list[dict]) -> None:
        for r in results:
            if _START_ERROR in r:
                raise EngineError(f"a worker could not start: {r[_START_ERROR]}")
        on_results(results)

    return deliver


def _run_pool(spec: WorkerSpec, items: Sequence[dict], on_results, workers: int, batch_size: int) -> None:
    threads = max(1, default_workers() // workers)
    try:
        pickle.dumps(spec)
    except Exception as exc:
        raise EngineError(
            f"the work cannot be sent to worker processes ({type(exc).__name__}: {exc}); "
            "pass a catalog model name, or workers=1 to run in this process"
        ) from None
    pending = iter(list(chunks(items, batch_size)))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_local, initargs=(spec, threads, os.getpid())
    ) as pool:
        running = set()
        try:
            for part in pending:  # at most two chunks queued per worker: results stream back
                running.add(pool.submit(_run_local, part))
                if len(running) >= 2 * workers:
                    running = _drain(running, on_results, FIRST_COMPLETED)
            while running:
                running = _drain(running, on_results, FIRST_COMPLETED)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _drain(running: set, on_results, how) -> set:
    done, rest = wait(running, return_when=how)
    for future in done:
        try:
            results = future.result()
        except BrokenProcessPool as exc:
            raise EngineError(
                f"a worker process died ({exc}); what was finished is kept, run again to resume"
            ) from None
        on_results(results)
    return rest


# --------------------------------------------------------------------------------------------
# ray: Ray Data with an actor pool


def import_ray():
    """The ``ray`` module with Ray Data, or an EngineError saying how to install it."""
    try:
        import ray
        import ray.data  # the Data library is a separate extra
    except ImportError as exc:
        raise EngineError(
            f"engine='ray' needs Ray Data ({exc}); install it with pip install 'gradlens[ray]' "
            "(ray[data]==2.60.0), or use engine='local'"
        ) from None
    return ray


class RayWorker:
    """A Ray Data actor: builds the spec once, then maps batches of pickled items to pickled results."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.worker: Worker | None
        self.error: str | None
        try:
            self.worker, self.error = spec.build(), None
        except Exception as exc:  # reported in the first result: Ray would otherwise retry the actor
            self.worker, self.error = None, f"{type(exc).__name__}: {exc}"

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        items = [pickle.loads(b) for b in batch["item"]]
        results = [{_START_ERROR: self.error}] if self.worker is None else self.worker(items)
        return {"result": np.array([pickle.dumps(r, protocol=5) for r in results], dtype=object)}


def gpu_share(num_gpus: float, workers: int, cluster_gpus: float) -> float:
    """The GPUs each of ``workers`` Ray actors asks for: ``num_gpus``, or an equal share of the
    cluster's GPUs when there are fewer than ``workers x num_gpus`` (2 actors on 1 GPU: 0.5 each;
    Ray would otherwise wait for GPUs that never come).

    Raises:
        EngineError: GPUs asked for on a cluster without any.

    Examples:
        >>> gpu_share(1.0, 2, 1.0), gpu_share(1.0, 2, 4.0), gpu_share(0.0, 3, 0.0)
        (0.5, 1.0, 0.0)
    """
    if num_gpus <= 0:
        return 0.0
    if cluster_gpus <= 0:
        raise EngineError(
            f"the device is a GPU (each Ray actor asks for {num_gpus:g}) but the Ray cluster has no GPU; "
            "use --device cpu, or a cluster whose nodes have GPUs"
        )
    return min(float(num_gpus), float(cluster_gpus) / workers)


def _run_ray(spec, items, on_results, workers: int, batch_size: int, address: str | None, num_gpus: float) -> None:
    ray = import_ray()
    started = False
    address = address or os.environ.get("RAY_ADDRESS") or None
    try:
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
            started = True
        num_gpus = gpu_share(num_gpus, workers, float(ray.cluster_resources().get("GPU", 0.0)))
        ctx = ray.data.DataContext.get_current()  # our own tqdm bar shows the progress
        ctx.enable_progress_bars = ctx.enable_operator_progress_bars = False
        ctx.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        ds = ray.data.from_items([{"item": pickle.dumps(it, protocol=5)} for it in items])
        out = ds.map_batches(
            RayWorker,
            fn_constructor_kwargs={"spec": spec},
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1,
            num_gpus=num_gpus or None,
        )
        for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
            on_results([pickle.loads(b) for b in batch["result"]])
    except EngineError:
        raise
    except Exception as exc:
        if type(exc).__module__.startswith("ray"):
            raise EngineError(f"the Ray job failed: {type(exc).__name__}: {str(exc).strip()[:2000]}") from exc
        raise
    finally:
        if started:
            ray.shutdown()
