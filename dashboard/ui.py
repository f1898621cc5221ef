"""Widgets shared by the pages, the view state's round trip (session <-> URL), and the page runner.

Each widget is keyed (``w_<field>``) and seeded from the view state, so a choice persists across
pages (Streamlit does not carry a widget's value to the same-keyed widget of another page; the
view state does) and can come from a link. Data and caches are in :mod:`dashboard.common`.
"""

from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from dashboard import common
from dashboard.common import shown_errors
from dashboard.state import PAGES, ViewState

__all__ = [
    "PAGE_TITLES",
    "PAGE_FILES",
    "VIEW_KEY",
    "seed",
    "force",
    "layer_select",
    "method_select",
    "current_view",
    "commit",
    "run_page",
    "page_show",
    "render_view",
]

PAGE_TITLES = {
    "home": "GradLens",
    "methods": "Methods side by side",
    "layers": "Layers",
    "normalization": "Normalization",
    "faithfulness": "Faithfulness",
}
PAGE_FILES = {
    "home": "Home.py",
    "methods": "pages/1_Methods.py",
    "layers": "pages/2_Layers.py",
    "normalization": "pages/3_Normalization.py",
    "faithfulness": "pages/4_Faithfulness.py",
}
VIEW_KEY = "_gradlens_view"



def seed(key: str, value: Any) -> None:
    """Give a widget its value from the view, unless it holds the user's latest value.

    On a page's first run after a page switch every widget is set from the view: Streamlit does
    not carry a widget's value to the same-keyed widget of another page.
    """
    if key not in st.session_state or st.session_state.get("_page_changed", True):
        st.session_state[key] = value


def force(key: str, value: Any) -> None:
    """Set a widget's value from code (only before the widget is drawn in this run)."""
    st.session_state[key] = value


def layer_select(state: ViewState, container=None, *, label: str = "Layer") -> str | None:
    """The layer menu: candidate layers in forward order with their output shape; None = default.

    A layer from a hand-edited URL that the model lacks is reported and replaced by the default.
    """
    handle = common.model_handle(state.model)
    rows, default = common.layer_infos(handle)
    by_name = {r.name: r for r in rows}
    if state.layer is not None and state.layer not in by_name:
        st.warning(f"Layer {state.layer!r} is not a layer of {state.model} with a spatial output."
                   f"{common.did_you_mean(state.layer, list(by_name))} Showing the default layer {default!r}.",
                   icon=":material/link_off:")
        force("w_layer", "")
    seed("w_layer", state.layer or "")  # "" = the default layer (a selectbox shows None as "nothing chosen")
    if st.session_state["w_layer"] and st.session_state["w_layer"] not in by_name:
        force("w_layer", "")

    def fmt(name: str) -> str:
        if not name:
            return f"default: {default} · {by_name[default].resolution}" if default in by_name else f"default: {default}"
        return f"{name} · {by_name[name].type} · {by_name[name].resolution}"

    chosen = (container or st).selectbox(label, [""] + list(by_name), key="w_layer", format_func=fmt,
                                         help="Candidate layers in forward order, with their output C×h×w.")
    return chosen or None


def method_select(state: ViewState, container=None, *, key: str = "w_method") -> str:
    """One method from the registry (Layers and Normalization pages)."""
    specs = common.method_specs()
    names = [s.name for s in specs]
    labels = {s.name: s.label + (" (slow)" if s.is_slow else "") for s in specs}
    seed(key, state.method if state.method in names else names[0])
    return (container or st).selectbox("Method", names, key=key, format_func=labels.get)


def current_view() -> ViewState:
    """The session's view; on a session's first run it comes from the URL."""
    view = st.session_state.get(VIEW_KEY)
    if view is None:
        params = {k: st.query_params.get_all(k) for k in st.query_params.keys()}
        view, messages = ViewState.from_query(params, common.choices())
        st.session_state["_url_messages"] = messages
        st.session_state[VIEW_KEY] = view
    return view


def commit(view: ViewState) -> None:
    """Remember the view for the session and write it to the URL (when it changed)."""
    st.session_state[VIEW_KEY] = view
    wanted = view.to_query()
    if {k: st.query_params.get(k) for k in st.query_params.keys()} != wanted:
        st.query_params.from_dict(wanted)


def run_page(page: str, show: Callable[[ViewState], None],
             controls: Callable[[ViewState], ViewState] | None = None) -> ViewState:
    """Run one page: view -> sidebar -> page controls -> session + URL -> ``show(state)``.

    ``show`` is the page's single function that draws everything from a :class:`ViewState`
    (a saved snapshot restores a view through it).
    """
    from dashboard.sidebar import sidebar

    if page not in PAGES:
        raise ValueError(f"page={page!r} is not one of {PAGES}")
    st.set_page_config(page_title=f"{PAGE_TITLES[page]} · GradLens", page_icon=":material/blur_on:", layout="wide")
    first_run = VIEW_KEY not in st.session_state
    st.session_state["_page_changed"] = st.session_state.get("_last_page") != page
    st.session_state["_last_page"] = page
    view = current_view()
    if first_run and view.page != page and "page" in st.query_params:
        commit(view)  # a link to another page, opened on this one: go there with the same view
        st.switch_page(PAGE_FILES[view.page])
    view = sidebar(view.with_changes(page=page), page)
    st.title(PAGE_TITLES[page])
    common.start_recording()
    review_slot = st.container()  # "Save to review", filled once the page has drawn its maps
    if controls is not None:
        with shown_errors() as outcome:
            view = controls(view)
        if outcome.failed:  # e.g. the model cannot be loaded: said once, nothing more to draw
            commit(view)
            return view
    commit(view)
    with shown_errors():
        show(view)
    from dashboard import review

    with review_slot, shown_errors():
        review.save_panel(view)
    return view


def page_show(page: str) -> Callable[[ViewState], None]:
    """The ``show(state)`` function of a page, loaded from its file without running the page
    (what a Review page calls to redraw a saved view)."""
    import importlib.util
    from pathlib import Path

    if page not in PAGE_FILES:
        raise ValueError(f"page={page!r} is not one of {list(PAGE_FILES)}")
    path = Path(__file__).resolve().parent / PAGE_FILES[page]
    spec = importlib.util.spec_from_file_location(f"gradlens_page_{page}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the page's `if __name__ == "__main__"` part does not run
    return module.show


def render_view(state: ViewState) -> None:
    """Draw ``state.page``'s content from ``state`` (errors shown like on the page itself)."""
    with shown_errors():
        page_show(state.page)(state)
