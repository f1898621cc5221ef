"""Pages and the view state's round trip: session <-> URL, and redrawing a page from a state.

The session keeps one :class:`~dashboard.state.ViewState`; on a session's first run it comes
from the URL (bad values fall back with messages), and :func:`commit` writes it back to the
address bar after each run, so a link always reproduces the view.

History: Streamlit pushes a browser-history entry for every change of the query string, and
another one for a page switch. So that one Back press undoes one step, the query does not
repeat what the path says (``page``) or what the session would choose anyway (the model's
default sample), a page switch leaves it unchanged, and on a Back/Forward step the view is read
again from the URL of that entry (otherwise the session's view would write its own URL over it).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Callable

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from dashboard import services
from dashboard.errors import shown_errors
from dashboard.state import ViewState

__all__ = ["PAGE_TITLES", "PAGE_FILES", "PAGE_ICON", "NAV_FILES", "VIEW_KEY", "enter_page", "current_view", "link_query", "commit",
           "page_links", "page_show", "render_view"]

PAGE_TITLES = {
    "home": "GradLens",
    "methods": "Methods side by side",
    "layers": "Layers",
    "normalization": "Normalization",
    "faithfulness": "Faithfulness",
    "compare": "Compare models",
    "sanity": "Sanity checks",
}
PAGE_FILES = {
    "home": "Home.py",
    "methods": "pages/1_Methods.py",
    "layers": "pages/2_Layers.py",
    "normalization": "pages/3_Normalization.py",
    "faithfulness": "pages/4_Faithfulness.py",
    "compare": "pages/6_Compare.py",
    "sanity": "pages/7_Sanity.py",
}
#: The browser tab's icon: an emoji, drawn by the browser itself (a ``:material/…:`` icon is
#: fetched from a font host on the internet, which fails offline).
PAGE_ICON = "🔥"
#: The sidebar's page list: every page of PAGE_FILES, then Review and Benchmark. Drawn by :func:`page_links`
#: with the view in each link; Streamlit's own list is hidden (``client.showSidebarNavigation``)
#: because it drops the query on a switch, and writing it back pushed a second history entry.
NAV_FILES = {**PAGE_FILES, "review": "pages/5_Review.py", "benchmark": "pages/8_Benchmark.py"}
_NO_VIEW = ("review", "benchmark")  # pages that do not draw the view: their links carry none
VIEW_KEY = "_gradlens_view"
_COMMITTED_KEY = "_gradlens_committed_query"  # what commit() last wrote to the address bar
_HERE = Path(__file__).resolve().parent


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
            fresh = fresh.with_changes(slow=view.slow)
            st.session_state["_page_changed"] = True  # every widget takes the entry's value
        st.session_state["_url_messages"] = messages
        st.session_state[VIEW_KEY] = view = fresh
    return view


def link_query(view: ViewState) -> dict[str, str]:
    """The query of a link to ``view``: ``to_query()`` without the model's default sample (what a
    link without ``?image=`` shows anyway)."""
    wanted = view.to_query()
    if wanted.get("image") == services.default_image(view.model):
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
    """The page list, each link carrying the view (one history entry per switch; see NAV_FILES).

    Drawn only when the app was started from ``dashboard/Home.py`` (``streamlit run
    dashboard/Home.py``): Streamlit resolves a link's file against the entry script's folder and
    knows only the pages it found there. A page file started on its own (``streamlit run
    dashboard/pages/1_Methods.py``, or a test driving one page) has no page list to link to.
    """
    if not _started_from_home():
        return
    query = link_query(view) if view is not None else {}
    for page, file in NAV_FILES.items():
        label = "Home" if page == "home" else Path(file).stem.split("_", 1)[-1]
        container.page_link(file, label=label, query_params=query if page not in _NO_VIEW else None)


def _started_from_home() -> bool:
    ctx = get_script_run_ctx()
    main = getattr(ctx, "main_script_path", None) if ctx is not None else None
    return main is not None and Path(main).resolve() == _HERE / PAGE_FILES["home"]


def page_show(page: str) -> Callable[[ViewState], None]:
    """The ``show(state)`` function of a page, loaded from its file without running the page
    (what the Review page calls to redraw a saved view)."""
    if page not in PAGE_FILES:
        raise ValueError(f"page={page!r} is not one of {list(PAGE_FILES)}")
    spec = importlib.util.spec_from_file_location(f"gradlens_page_{page}", _HERE / PAGE_FILES[page])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the page's `if __name__ == "__main__"` part does not run
    return module.show


def render_view(state: ViewState) -> None:
    """Draw ``state.page``'s content from ``state`` (errors shown like on the page itself)."""
    with shown_errors(doing=f"drawing the saved {state.page} view"):
        page_show(state.page)(state)
