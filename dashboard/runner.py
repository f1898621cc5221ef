"""Running a page, and the long work a page asks for.

* :func:`run_page`: view -> sidebar -> page controls -> session + URL -> ``show(state)``, then the
  "Save to review" panel under the title.
* :func:`raw_maps` / :func:`gated_maps`: the maps a page draws, from a preloaded snapshot or the
  cache; slow methods wait behind a button showing their cost.
* :func:`run_with_progress`: long work in a worker thread behind a progress bar with a Cancel
  button; a run interrupted by any click cancels the work at its next progress callback
  (``methods._torch.ProgressTracker``), so the model is not kept busy for nothing.
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Callable, Sequence

import streamlit as st

import methods
from methods._torch import ProgressTracker
from methods.errors import Cancelled

from dashboard import cache, capture, model_fit, review, services
from dashboard.errors import shown_errors
from dashboard.navigation import PAGE_FILES, PAGE_TITLES, VIEW_KEY, commit, current_view
from dashboard.services import MapBundle, merge
from dashboard.sidebar import sidebar
from dashboard.state import PAGES, ViewState

__all__ = ["run_page", "run_with_progress", "raw_maps", "gated_maps", "faithfulness_curves", "reference_curves"]

_CANCEL_REQUEST = "_cancel_request"  # set by the Cancel button's callback (before the next run)
_CANCELLED_NOW = "_cancelled_now"  # what the Cancel button of the previous run stopped


def _request_cancel(label: str) -> None:
    st.session_state[_CANCEL_REQUEST] = label


def run_with_progress(work: Callable[[ProgressTracker], Any], label: str) -> Any:
    """Run ``work(progress)`` in a worker thread while an ``st.progress`` bar follows it.

    The worker has no Streamlit script context, so ``st.cache_data`` records no element in it
    (nothing to replay on a cache hit); only this thread draws. When the script run is stopped
    (the Cancel button, or any other widget) the tracker is cancelled: the work raises
    :class:`~methods.errors.Cancelled` at its next progress callback and nothing is cached. The
    run after a Cancel press says so instead of starting the same work again.
    """
    if st.session_state.get(_CANCELLED_NOW) == label:
        raise Cancelled(f"{label}: cancelled. It runs again when you ask for it or change a setting.")
    tracker = ProgressTracker()
    bar = st.progress(0.0, text=label)
    stop = st.empty()
    stop.button("Cancel", key=f"cancel_{hashlib.sha1(label.encode()).hexdigest()[:10]}", icon=":material/stop:",
                on_click=_request_cancel, args=(label,))
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(work, tracker)
    try:
        while not future.done():
            bar.progress(tracker.fraction, text=f"{label} — {tracker.fraction:.0%}")
            time.sleep(0.1)
    except BaseException:  # the script run was stopped (a click): stop the work too, then let Streamlit go on
        tracker.cancelled = True
        raise
    finally:
        pool.shutdown(wait=False)
    bar.empty()
    stop.empty()
    return future.result()


def raw_maps(state: ViewState, method_names: Sequence[str], layers: Sequence[str | None], *,
             progress_label: str | None = None) -> MapBundle:
    """RAW maps of ``method_names`` at ``layers`` (None = default layer), ONE explain call, with
    the view's method options; from a preloaded snapshot when one is open. Recorded for "Save to
    review". With ``progress_label`` a progress bar follows the run."""
    hit = capture.from_preloaded(method_names, layers)
    if hit is not None:
        return capture.record_bundle(hit)
    if progress_label is None:
        bundle = cache.maps(state, method_names, layers)
    else:
        bundle = cache.maps(state, method_names, layers, run=partial(run_with_progress, label=progress_label))
    return capture.record_bundle(bundle)


def gated_maps(state: ViewState, method_names: Sequence[str], layers: Sequence[str | None], *,
               key: str) -> MapBundle | None:
    """Raw maps; slow methods (``spec.is_slow``) wait behind a button showing their cost.

    Fast methods share one cached call. A slow method runs on its button (or at once with the
    state's "run slow methods" switch), with a progress bar; once run it is read from the cache
    on later reruns. Returns None when nothing is computed yet.
    """
    specs = {name: methods.get_method(name) for name in method_names}
    fast = [m for m in method_names if not specs[m].is_slow]
    bundle = raw_maps(state, fast, layers) if fast else None
    ran: set = st.session_state.setdefault("_slow_ran", set())
    for name in (m for m in method_names if specs[m].is_slow):
        spec = specs[name]
        run_key = (state.model, state.image, state.target, name, tuple(layers), tuple(state.options_of(name).items()))
        label = f"Running {spec.label} ({spec.cost}) on {len(layers)} layer(s)"
        if not (state.slow or run_key in ran or capture.from_preloaded([name], layers) is not None):
            handle = cache.model_handle(state.model)
            shapes = {i.name: i.shape for i in cache.layer_infos(handle)[0]}
            counts = [shapes[cache.resolve_layer(handle, l)][0] for l in layers]
            channels = (", ".join(map(str, counts)) + " channels here" if len(counts) <= 3
                        else f"{sum(counts)} channels over {len(counts)} layers here")
            box = st.empty()
            with box.container(border=True):
                st.markdown(f":material/hourglass_top: **{spec.label} is slow**: {spec.cost} per layer "
                            f"({channels}). It runs when you ask.")
                if not st.button(f"Run {spec.label}", key=f"{key}_run_{name}", icon=":material/play_arrow:"):
                    continue
            box.empty()  # pressed: the progress bar takes its place
        bundle = merge(bundle, raw_maps(state, [name], layers, progress_label=label))
        ran.add(run_key)
    return bundle


def faithfulness_curves(state: ViewState, bundle: MapBundle, method: str, layer: str) -> dict[str, dict]:
    """Deletion and insertion curves of one raw map (cached; a progress bar while they run)."""
    label = f"{services.method_label(method)}: deletion and insertion curves, {state.steps} steps each"
    curves = cache.curves(state, bundle, method, layer, run=partial(run_with_progress, label=label))
    capture.record_curves({method: curves})
    return curves


def reference_curves(state: ViewState, bundle: MapBundle, shape: tuple[int, int]) -> dict[str, dict[str, dict]]:
    """Curves of the library's random and centre maps on the explained map's grid (cached)."""
    curves = cache.reference_curves(state, bundle, shape,
                                    run=partial(run_with_progress, label="Random and centre reference curves"))
    capture.record_curves(curves)
    return curves


def run_page(page: str, show: Callable[[ViewState], None],
             controls: Callable[[ViewState], ViewState] | None = None) -> ViewState:
    """Run one page: view -> sidebar -> page controls -> session + URL -> ``show(state)``.

    ``show`` is the page's single function that draws everything from a :class:`ViewState`
    (a saved snapshot restores a view through it).
    """
    if page not in PAGES:
        raise ValueError(f"page={page!r} is not one of {PAGES}")
    st.set_page_config(page_title=f"{PAGE_TITLES[page]} · GradLens", page_icon=":material/blur_on:", layout="wide")
    cache.begin_run()
    st.session_state[_CANCELLED_NOW] = st.session_state.pop(_CANCEL_REQUEST, None)
    first_run = VIEW_KEY not in st.session_state
    st.session_state["_page_changed"] = st.session_state.get("_last_page") != page
    st.session_state["_last_page"] = page
    view = current_view()
    if first_run and view.page != page and "page" in st.query_params:
        commit(view)  # a link to another page, opened on this one: go there with the same view
        st.switch_page(PAGE_FILES[view.page])
    view = sidebar(view.with_changes(page=page), page)
    st.title(PAGE_TITLES[page])
    if not model_fit.weights_panel(view, run=run_with_progress):  # the weights first: a download or a pip command
        commit(view)
        return view
    capture.start_recording()
    review_slot = st.container()  # "Save to review", filled once the page has drawn its maps
    if controls is not None:
        with shown_errors(doing="drawing the page's controls") as outcome:
            view = controls(view)
        if outcome.failed:  # e.g. the model cannot be loaded: said once, nothing more to draw
            commit(view)
            return view
    commit(view)
    with shown_errors(doing=f"drawing the {PAGE_TITLES[page]} page"):
        show(view)
    with review_slot, shown_errors(doing="preparing the Save to review panel"):
        review.save_panel(view)
    return view
