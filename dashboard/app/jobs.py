"""The long work a page asks for (the page shell itself is :mod:`dashboard.app.shell`).

* :func:`raw_maps` / :func:`gated_maps`: the maps a page draws, from a preloaded snapshot or the
  cache; a request whose estimated cost (:func:`request_cost`: model passes x input pixels x
  layers, from :mod:`methods.cams.core.cost`) is over :data:`~methods.cams.core.cost.SMALL_BUDGET`
  waits behind a button showing that cost, pressed in THIS session (a link never starts work above
  the budget), and runs in one of the shared slow-job slots (:data:`dashboard.app.cache.SLOW_SLOTS`).
* :func:`run_with_progress`: long work in a worker thread behind a progress bar with a Cancel
  button. The work stops at its next progress callback (between two batches) when Cancel is
  pressed, when the script run is interrupted by any other click, and when the browser session
  that started it has gone (tab closed): the worker itself checks the session, so a job never
  outlives its session by more than one batch. Long work runs on a private copy of the model
  (``cache``), so the shared model stays free for every other session meanwhile.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

import methods
from dashboard.app import cache, capture
from dashboard.app.errors import log, notice
from dashboard.core import services
from dashboard.core.services import MapBundle, merge
from dashboard.core.state import ViewState
from methods.cams.core.cost import Cost, estimate
from methods.errors import Cancelled
from methods.runtime import ProgressTracker

__all__ = [
    "run_with_progress",
    "run_clicked",
    "raw_maps",
    "gated_maps",
    "applicable",
    "request_cost",
    "wait_for_click",
    "mark_ran",
    "faithfulness_curves",
    "reference_curves",
]

_CANCELLED = "_cancelled_jobs"  # jobs stopped with Cancel: they wait for their Run button again
_POLL_S = 0.1


def _request_cancel(job: Hashable) -> None:
    st.session_state.setdefault(_CANCELLED, set()).add(job)


def _session_alive(session_id: str | None) -> bool:
    """False once the browser session that started a job is gone (tab closed, connection lost)."""
    if session_id is None or not Runtime.exists():
        return True
    return bool(Runtime.instance().is_active_session(session_id))


class _SessionTracker(ProgressTracker):
    """The progress callback of one job: the worker calls it between batches; it raises
    :class:`~methods.errors.Cancelled` once the job is cancelled or its session has gone."""

    def __init__(self, session_id: str | None, label: str) -> None:
        super().__init__()
        self.session_id, self.label = session_id, label

    def __call__(self, done: int, total: int) -> None:
        if not self.cancelled and not _session_alive(self.session_id):
            self.cancelled = True
            log.info("stopped %r: the browser session that started it has ended", self.label)
        super().__call__(done, total)


def _logged(work: Callable[[ProgressTracker], Any], label: str) -> Callable[[ProgressTracker], Any]:
    """``work`` that says in the server log when it stopped on a cancel (what a test waits for)."""

    def run(tracker: ProgressTracker) -> Any:
        try:
            return work(tracker)
        except Cancelled:
            log.info("job %r ended: cancelled, stopped at its next batch", label)
            raise

    return run


def run_with_progress(work: Callable[[ProgressTracker], Any], label: str, *, job: Hashable | None = None) -> Any:
    """Run ``work(progress)`` in a worker thread while an ``st.progress`` bar follows it.

    The worker has no Streamlit script context, so ``st.cache_data`` records no element in it
    (nothing to replay on a cache hit); only this thread draws. The work stops (raising
    :class:`~methods.errors.Cancelled` at its next progress callback; nothing is cached) when the
    Cancel button is pressed, when any other click interrupts the script run, and when the
    session ends. A job stopped with Cancel (``job``, default ``label``) is not started again by
    the next run: :func:`gated_maps` shows its Run button instead.
    """
    job = label if job is None else job
    if job in st.session_state.get(_CANCELLED, ()):
        raise Cancelled(f"{label}: cancelled. Press its Run button to start it again.")
    ctx = get_script_run_ctx()
    tracker = _SessionTracker(ctx.session_id if ctx is not None else None, label)
    bar = st.progress(0.0, text=label)
    stop = st.empty()
    stop.button(
        "Cancel",
        key=f"cancel_{hashlib.sha1(repr((job, label)).encode()).hexdigest()[:12]}",
        icon=":material/stop:",
        on_click=_request_cancel,
        args=(job,),
    )
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gradlens-job")
    future = pool.submit(_logged(work, label), tracker)
    try:
        while not future.done():
            if not _session_alive(tracker.session_id):  # the worker stops at its next batch
                tracker.cancelled = True
                break
            bar.progress(tracker.fraction, text=f"{label} — {tracker.fraction:.0%}")
            time.sleep(_POLL_S)
    except BaseException:  # the script run was stopped (Cancel, another click): stop the work, let Streamlit go on
        tracker.cancelled = True
        log.info("stopped %r: the script run that showed it was interrupted", label)
        raise
    finally:
        pool.shutdown(wait=False)
    bar.empty()
    stop.empty()
    return future.result()


def run_clicked(work: Callable[[ProgressTracker], Any], label: str) -> Any:
    """:func:`run_with_progress` for work a button press just started: a Cancel pressed on an
    earlier run of it does not hold this one back."""
    st.session_state.get(_CANCELLED, set()).discard(label)
    return run_with_progress(work, label)


def raw_maps(
    state: ViewState,
    method_names: Sequence[str],
    layers: Sequence[str | None],
    *,
    progress_label: str | None = None,
    job: Hashable | None = None,
) -> MapBundle:
    """RAW maps of ``method_names`` at ``layers`` (None = default layer), ONE explain call, with
    the view's method options; from a preloaded snapshot when one is open. Recorded for "Save to
    review". With ``progress_label`` it is long work: a progress bar, Cancel, a private model copy."""
    hit = capture.from_preloaded(method_names, layers)
    if hit is not None:
        return capture.record_bundle(hit)
    request = services.map_request(state, method_names, layers)
    if progress_label is None:
        bundle = cache.maps(request)
    else:
        bundle = cache.maps(request, private=True, run=partial(run_with_progress, label=progress_label, job=job))
    return capture.record_bundle(bundle)


def wait_for_click(job: Hashable, text: str, button: str, *, key: str, auto: bool = False) -> bool:
    """Gate long work behind a button pressed in this session: True when it may run now.

    It runs at once when it ran before in this session (``job`` seen: the result is cached) or
    with ``auto`` (the session's own "run without asking" switch), unless it was cancelled; else
    a box shows ``text`` (markdown: the cost, from the registry) and the button.
    """
    ran: set = st.session_state.setdefault("_jobs_ran", set())
    cancelled: set = st.session_state.setdefault(_CANCELLED, set())
    if job in ran or (auto and job not in cancelled):
        return True
    box = st.empty()
    with box.container(border=True):
        st.markdown(text + (" *Cancelled: it starts again when you press the button.*" if job in cancelled else ""))
        if not st.button(button, key=key, icon=":material/play_arrow:"):
            return False
    box.empty()  # pressed: the progress bar takes its place
    cancelled.discard(job)
    return True


def mark_ran(job: Hashable) -> None:
    """Remember that ``job`` ran in this session (its result is cached: no button next time)."""
    st.session_state.setdefault("_jobs_ran", set()).add(job)


def request_cost(state: ViewState, method: str, layers: Sequence[str | None], *, images: int = 1) -> Cost:
    """The estimated cost of ``method`` with the view's options at ``layers`` of the view's model
    and image (no model call beyond the cached layer list)."""
    handle = cache.model_handle(state.model)
    shapes = {i.name: i.shape for i in cache.layer_infos(handle)[0]}
    channels = [int(shapes[cache.resolve_layer(handle, l)][0]) for l in layers]
    size = tuple(int(v) for v in cache.context(handle, state.image).x.shape[-2:])
    return estimate(method, state.options_of(method), input_size=(size[0], size[1]), channels=channels, images=images)


def slow_text(label: str, note: str, cost: Cost, what: str = "per layer") -> str:
    """The box above a Run button: what the request would cost (markdown; ``label`` and ``note``
    come from the registry)."""
    return f":material/hourglass_top: **{label} is slow** here: {cost.describe()}; {note} {what}. It runs when you ask."


def applicable(state: ViewState, method_names: Sequence[str], container=None) -> list[str]:
    """The methods that apply to the page's model; each one that does not
    (:meth:`~methods.cams.core.registry.MethodSpec.why_not`, e.g. attention rollout on a CNN) gets a
    short note "does not apply to this model: <reason>" (escaped) and is never run."""
    model = cache.model_handle(state.model).loaded.model
    keep = []
    for name in method_names:
        spec = methods.get_method(name)
        reason = spec.why_not(model)
        if reason is None:
            keep.append(name)
        else:
            notice(f"{spec.label} does not apply to this model: {reason}", "info", container, icon=":material/block:")
    return keep


def gated_maps(
    state: ViewState, method_names: Sequence[str], layers: Sequence[str | None], *, key: str
) -> MapBundle | None:
    """Raw maps; a method whose request is over the budget (:func:`request_cost`) waits behind a
    button showing its cost.

    Requests within the budget share one cached call. One over it runs on its button (or at once
    with the session's "run slow methods" switch), with a progress bar, in a slow-job slot; once
    run it is read from the cache on later reruns. While a saved snapshot is open, its maps are
    shown and every method it did not save waits for its button (even a cheap one, and whatever
    the switch says). A method that does not apply to the model gets a note instead
    (:func:`applicable`). Returns None when nothing is computed yet.
    """
    saved = [m for m in method_names if capture.from_preloaded([m], layers) is not None]
    rest = [m for m in method_names if m not in saved]  # a snapshot's own maps need no model
    keep = set(saved) | set(applicable(state, rest) if rest else ())
    method_names = [m for m in method_names if m in keep]
    specs = {name: methods.get_method(name) for name in method_names}
    snapshot = capture.preloaded_bundle() is not None
    costs = {name: request_cost(state, name, layers) for name in method_names if name not in saved}
    gated = [m for m in method_names if m in costs and (snapshot or costs[m].over())]
    fast = [m for m in method_names if m in costs and m not in gated]
    bundle = raw_maps(state, saved, layers) if saved else None
    bundle = merge(bundle, raw_maps(state, fast, layers)) if fast else bundle
    for name in gated:
        spec, cost = specs[name], costs[name]
        job = (state.model, state.image, state.target, name, tuple(layers), tuple(state.options_of(name).items()))
        text = slow_text(spec.label, spec.cost, cost)
        if snapshot:
            text = (
                f":material/history: **{spec.label} was not saved in this snapshot**: {cost.describe()}. "
                "It runs when you ask."
            )
        if not wait_for_click(
            job, text, f"Run {spec.label}", key=f"{key}_run_{name}", auto=state.slow and not snapshot
        ):
            continue
        label = f"Running {spec.label} ({spec.cost}) on {len(layers)} layer(s)"
        bundle = merge(bundle, raw_maps(state, [name], layers, progress_label=label, job=job))
        mark_ran(job)
    return bundle


def faithfulness_curves(
    state: ViewState, bundle: MapBundle, method: str, layer: str, *, job: Hashable | None = None
) -> dict[str, dict]:
    """Deletion and insertion curves of one raw map (cached; a progress bar while they run;
    ``job``: what Cancel stops, see :func:`wait_for_click`)."""
    label = f"{services.method_label(method)}: deletion and insertion curves, {state.steps} steps each"
    curves = cache.curves(state, bundle, method, layer, run=partial(run_with_progress, label=label, job=job))
    capture.record_curves({method: curves})
    return curves


def reference_curves(
    state: ViewState, bundle: MapBundle, shape: tuple[int, int], *, job: Hashable | None = None
) -> dict[str, dict[str, dict]]:
    """Curves of the library's random and centre maps on the explained map's grid (cached)."""
    curves = cache.reference_curves(
        state, bundle, shape, run=partial(run_with_progress, label="Random and centre reference curves", job=job)
    )
    capture.record_curves(curves)
    return curves
