"""THE page shell: every page of the page table runs through :func:`run_page`.

A page that draws a view (its row names view-state fields): view -> sidebar -> the weights panel
-> the page's ``controls(state)`` -> session + URL -> ``show(state)``, then the "Save to review"
panel under the title. A page that draws no view (Review, Benchmark): ``show()`` under the title.
Both get the same tab title and icon, and the page list drawn last (each link carries the final
view). Every step goes through ``errors.shown_errors``, so no run ends in a traceback.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from dashboard.app import cache, capture, model_fit, save_panel
from dashboard.app.errors import shown_errors
from dashboard.app.jobs import run_clicked
from dashboard.app.navigation import (
    PAGE_ICON,
    VIEW_KEY,
    commit,
    current_view,
    enter_page,
    page_links,
    view_module,
)
from dashboard.app.sidebar import sidebar
from dashboard.core import pages
from dashboard.core.state import ViewState

__all__ = ["run_page"]


def run_page(key: str) -> ViewState | None:
    """Run the page ``key`` of the page table (what each script in ``dashboard/pages/`` does).

    Returns the view the page drew (None for a page that draws no view).
    """
    row = pages.page(key)
    st.set_page_config(page_title=f"{row.title} · GradLens", page_icon=PAGE_ICON, layout="wide")
    links = st.sidebar.container()  # the page list, drawn last: each link carries the final view
    view = ViewState(page=key) if row.draws_view else None
    with shown_errors(doing=f"drawing the {row.title} page"):
        view = _run_view(row) if row.draws_view else _run_plain(row)
    with shown_errors(container=st.sidebar, doing="drawing the page list"):
        page_links(links, st.session_state.get(VIEW_KEY))
    return view


def _run_plain(row: pages.Page) -> None:
    """A page that draws no view: its title, then ``show()``."""
    enter_page(row.key)
    st.title(row.title)
    view_module(row.key).show()


def _run_view(row: pages.Page) -> ViewState:
    module = view_module(row.key)
    controls = getattr(module, "controls", None)
    cache.begin_run()
    first_run = VIEW_KEY not in st.session_state
    enter_page(row.key)
    view = st.session_state.get(VIEW_KEY) or ViewState()
    with shown_errors(doing="reading the view from the link"):
        view = current_view()
    if first_run and view.page != row.key and "page" in st.query_params:
        commit(view)  # a link to another page, opened on this one: go there with the same view
        st.switch_page(pages.page(view.page).script)
    view = replace(view, page=row.key)
    with shown_errors(container=st.sidebar, doing="drawing the sidebar"):
        view = sidebar(view, row.key)
    st.title(row.title)
    if not model_fit.weights_panel(view, run=run_clicked):  # the weights first: a download or a pip command
        commit(view)
        return view
    with shown_errors(doing="checking the model's task") as task_check:
        fits = model_fit.task_panel(view, row)  # a detector on a classification page: the page that fits
    if task_check.failed or not fits:
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
    with shown_errors(doing=f"drawing the {row.title} page"):
        module.show(view)
    with review_slot, shown_errors(doing="preparing the Save to review panel"):
        save_panel.save_panel(view)
    return view
