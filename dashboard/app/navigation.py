"""Pages and the view state's round trip: session <-> URL, and redrawing a page from a state.

The session keeps one :class:`~dashboard.core.state.ViewState`; on a session's first run it comes
from the URL (bad values fall back with messages), and :func:`commit` writes it back to the
address bar after each run, so a link always reproduces the view.

History: Streamlit pushes a browser-history entry for every change of the query string, and
another one for a page switch. So that one Back press undoes one step, the query does not
repeat what the path says (``page``) or what the session would choose anyway (the model's
default sample), a page switch leaves it unchanged, and on a Back/Forward step the view is read
again from the URL of that entry (otherwise the session's view would write its own URL over it).
"""

from __future__ import annotations

from dataclasses import replace
from importlib import import_module
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from dashboard.app.errors import shown_errors
from dashboard.core import menus, pages, services
from dashboard.core.state import ViewState

__all__ = [
    "PAGE_ICON",
    "VIEW_KEY",
    "enter_page",
    "current_view",
    "link_query",
    "commit",
    "page_links",
    "view_module",
    "render_view",
]

#: The browser tab's icon: an emoji, drawn by the browser itself (a ``:material/…:`` icon is
#: fetched from a font host on the internet, which fails offline).
PAGE_ICON = "🔥"
VIEW_KEY = "_gradlens_view"
_COMMITTED_KEY = "_gradlens_committed_query"  # what commit() last wrote to the address bar
_HERE = Path(__file__).resolve().parents[1]  # dashboard/: the page scripts' folder


def enter_page(page: str) -> None:
    """Note which page this run draws: on the first run after a page switch every widget is
    seeded from the view again (``widgets.seed``)."""
    st.session_state["_page_changed"] = st.session_state.get("_last_page") != page
    st.session_state["_last_page"] = page


def _query() -> dict[str, str]:
    return {k: st.query_params.get(k) for k in st.query_params.keys()}


def _history_step() -> bool:
    """True when this run is a Back/Forward step to a URL this session did not just write, whose
    parameters are all view parameters (an entry left by the Review page's ``?snapshot=`` is not)."""
    ctx = get_script_run_ctx()
    if ctx is None or not getattr(ctx, "is_history_navigation", False):
        return False
    query = _query()
    return query != st.session_state.get(_COMMITTED_KEY) and all(k in ViewState.parameter_names() for k in query)


def current_view() -> ViewState:
    """The session's view; on a session's first run, and on a Back/Forward step, it comes from
    the URL (widgets are then seeded from it again)."""
    view = st.session_state.get(VIEW_KEY)
    if view is None or _history_step():
        params = {k: st.query_params.get_all(k) for k in st.query_params.keys()}
        fresh, messages = ViewState.from_query(params, services.choices())
        if view is not None:  # Back/Forward: the entry's view, the session's own switches
            fresh = replace(fresh, slow=view.slow)
            st.session_state["_page_changed"] = True  # every widget takes the entry's value
        st.session_state["_url_messages"] = messages
        st.session_state[VIEW_KEY] = view = fresh
    return view


def link_query(view: ViewState) -> dict[str, str]:
    """The query of a link to ``view``: ``to_query()`` without the model's default sample (what a
    link without ``?image=`` shows anyway)."""
    wanted = view.to_query()
    if wanted.get("image") == menus.default_image(view.model):
        del wanted["image"]
    return wanted


def commit(view: ViewState) -> None:
    """Remember the view for the session and write it to the URL (when it changed)."""
    st.session_state[VIEW_KEY] = view
    wanted = link_query(view)
    st.session_state[_COMMITTED_KEY] = wanted
    if _query() != wanted:
        st.query_params.from_dict(wanted)


def page_links(container, view: ViewState | None) -> None:
    """The page list (every row of the page table), each link carrying the view (one history
    entry per switch); a page that draws no view gets a link without one.

    Streamlit's own list is hidden (``client.showSidebarNavigation``) because it drops the query
    on a switch, and writing it back pushed a second history entry.

    Drawn only when the app was started from ``dashboard/Home.py`` (``streamlit run
    dashboard/Home.py``): Streamlit resolves a link's file against the entry script's folder and
    knows only the pages it found there. A page file started on its own (``streamlit run
    dashboard/pages/1_Methods.py``, or a test driving one page) has no page list to link to.
    """
    if not _started_from_home():
        return
    query = link_query(view) if view is not None else {}
    for row in pages.PAGES:
        container.page_link(row.script, label=row.label, query_params=query if row.draws_view else None)


def _started_from_home() -> bool:
    ctx = get_script_run_ctx()
    main = getattr(ctx, "main_script_path", None) if ctx is not None else None
    return main is not None and Path(main).resolve() == _HERE / pages.page("home").script


def view_module(key: str):
    """The view module of page ``key`` (its ``show``, and ``controls`` when it has one), imported
    by the name the page table gives: what the shell runs and the Review page redraws with."""
    return import_module(pages.page(key).view)


def render_view(state: ViewState) -> None:
    """Draw ``state.page``'s content from ``state`` (errors shown like on the page itself)."""
    with shown_errors(doing=f"drawing the saved {state.page} view"):
        view_module(state.page).show(state)
