"""Pages and the view state's round trip: session <-> URL, and redrawing a page from a state.

The session keeps one :class:`~dashboard.state.ViewState`; on a session's first run it comes
from the URL (bad values fall back with messages), and :func:`commit` writes it back to the
address bar after each run, so a link always reproduces the view.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Callable

import streamlit as st

from dashboard import services
from dashboard.errors import shown_errors
from dashboard.state import ViewState

__all__ = ["PAGE_TITLES", "PAGE_FILES", "VIEW_KEY", "current_view", "commit", "page_show", "render_view"]

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
VIEW_KEY = "_gradlens_view"
_HERE = Path(__file__).resolve().parent


def current_view() -> ViewState:
    """The session's view; on a session's first run it comes from the URL."""
    view = st.session_state.get(VIEW_KEY)
    if view is None:
        params = {k: st.query_params.get_all(k) for k in st.query_params.keys()}
        view, messages = ViewState.from_query(params, services.choices())
        st.session_state["_url_messages"] = messages
        st.session_state[VIEW_KEY] = view
    return view


def commit(view: ViewState) -> None:
    """Remember the view for the session and write it to the URL (when it changed)."""
    st.session_state[VIEW_KEY] = view
    wanted = view.to_query()
    if {k: st.query_params.get(k) for k in st.query_params.keys()} != wanted:
        st.query_params.from_dict(wanted)


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
