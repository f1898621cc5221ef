"""Widgets shared by the pages: seeding from the view, layer and method menus, method options,
downloads, and the constant-map notice.

Each widget is keyed (``w_<field>``) and seeded from the view state, so a choice persists across
pages (Streamlit does not carry a widget's value to the same-keyed widget of another page; the
view state does) and can come from a link.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import streamlit as st

import methods
from dashboard.app import cache
from dashboard.app.errors import log, notice, shown_errors
from dashboard.core import services
from dashboard.core.state import ViewState
from dashboard.draw.pictures import png_bytes
from methods.cams.core.options import OptionInfo
from methods.metrics import border
from methods.review.csv_safe import csv_bytes

_JS_SAFE_INT = 2**53 - 1
"""The largest int a number widget holds exactly (a JavaScript double); a seed option's bound is 2**63 - 1."""

__all__ = [
    "seed",
    "force",
    "refresh_label",
    "layer_select",
    "method_select",
    "option_widgets",
    "download_png",
    "download_csv",
    "note_constant",
]


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


def refresh_label(key: str, label: str) -> None:
    """Make the browser show ``label`` for a keyed selectbox's current value in THIS run.

    A keyed selectbox keeps its identity when its options change, and the browser keeps the
    label it showed for the selected value (the target menu said "Top-1 prediction: star (85.8%)"
    after an image change, until the next rerun). Setting the value from code, even to itself,
    makes Streamlit send it with the new label. Call it before the widget is drawn.
    """
    shown = st.session_state.setdefault("_labels_shown", {})
    if key in st.session_state and shown.get(key, label) != label:
        force(key, st.session_state[key])
    shown[key] = label


def layer_select(state: ViewState, container=None, *, label: str = "Layer") -> str | None:
    """The layer menu: candidate layers in forward order with their output shape; None = default.

    A layer the model lacks (a hand-edited URL) was reported by the sidebar; here it falls back.
    """
    handle = cache.model_handle(state.model)
    infos, default = cache.layer_infos(handle)
    by_name = {i.name: i for i in infos}
    seed("w_layer", state.layer if state.layer in by_name else "")  # "" = the default layer
    if st.session_state["w_layer"] and st.session_state["w_layer"] not in by_name:
        force("w_layer", "")

    def fmt(name: str) -> str:
        if not name:
            return (
                f"default: {default} · {services.resolution(by_name[default])}"
                if default in by_name
                else f"default: {default}"
            )
        return f"{name} · {by_name[name].type} · {services.resolution(by_name[name])}"

    refresh_label("w_layer", fmt(st.session_state["w_layer"]))  # "default: <layer>" changes with the model
    chosen = (container or st).selectbox(
        label,
        [""] + list(by_name),
        key="w_layer",
        format_func=fmt,
        help="Candidate layers in forward order, with their output C×h×w.",
    )
    return chosen or None


def method_select(state: ViewState, container=None, *, key: str = "w_method") -> str:
    """One method from the registry (Layers and Normalization pages)."""
    specs = methods.list_methods()
    names = [s.name for s in specs]
    labels = {s.name: s.label + (" (slow)" if s.is_slow else "") for s in specs}
    seed(key, state.method if state.method in names else names[0])
    return (container or st).selectbox("Method", names, key=key, format_func=labels.get)


# ------------------------------------------------------------------------------------------
# method options: built from each method's declared OptionInfo fields (never a list of names)


def _option_widget(info: OptionInfo, key: str, current: Any, where) -> Any:
    """One widget for one declared option; returns its value as typed as the widget can."""
    label, help_ = info.name.replace("_", " "), info.help
    if info.kind == "bool":
        seed(key, bool(current))
        return where.checkbox(label, key=key, help=help_)
    if info.kind == "choice":
        seed(key, current)
        return where.selectbox(label, list(info.choices), key=key, help=help_)
    if info.kind == "int_or_choice":  # "all" or a number: typed text, checked by the library
        seed(key, str(current))
        text = where.text_input(
            label, key=key, help=f"{help_} ({' or '.join(map(str, info.choices))}, or a whole number)"
        ).strip()
        return int(text) if text.isdigit() else text
    # numbers: inclusive bounds go to the widget, a strict bound (sigma > 0) is the library's to check
    bounds: dict[str, Any] = {}
    cast = int if info.kind == "int" else float
    if info.minimum is not None and not info.exclusive_minimum:
        bounds["min_value"] = cast(math.ceil(info.minimum) if cast is int else info.minimum)
    if info.maximum is not None:
        bounds["max_value"] = cast(math.floor(info.maximum) if cast is int else info.maximum)
    if cast is int:  # the browser holds numbers as doubles: Streamlit refuses int bounds beyond 2**53 - 1
        bounds = {k: max(-_JS_SAFE_INT, min(v, _JS_SAFE_INT)) for k, v in bounds.items()}
    seed(key, cast(current))
    if cast is int:
        return where.number_input(label, step=1, key=key, help=help_, **bounds)
    return where.number_input(label, step=0.05, format="%g", key=key, help=help_, **bounds)


def option_widgets(state: ViewState, method_names: Sequence[str], container=None) -> ViewState:
    """An expander per method that declares options, with a widget per option (typed from its
    :class:`~methods.cams.core.options.OptionInfo`); returns the view with the non-default values.

    The values are checked by the method's own options dataclass: a bad one shows the library's
    OptionError message under the widgets and the method keeps its last valid options.
    """
    kept = [o for o in state.options if o[0] not in method_names]
    for method in method_names:
        infos = methods.get_method(method).options
        previous = state.options_of(method)
        if not infos:
            continue
        with (container or st).expander(f"{services.method_label(method)} options", icon=":material/tune:"):
            cols = st.columns(min(len(infos), 4))
            values = {
                info.name: _option_widget(
                    info, f"w_opt_{method}_{info.name}", previous.get(info.name, info.default), cols[i % len(cols)]
                )
                for i, info in enumerate(infos)
            }
            checked = dict(previous)
            with shown_errors(doing=f"checking the options of {method}"):
                checked = services.check_options(method, values)
        defaults = {info.name: info.default for info in infos}
        kept += [(method, name, value) for name, value in checked.items() if value != defaults.get(name)]
    return replace(state, options=tuple(sorted(kept, key=lambda o: (o[0], o[1]))))


# ------------------------------------------------------------------------------------------
# downloads and notices


def _made_on_click(make: Callable[[], bytes], what: str) -> Callable[[], bytes]:
    """``make`` for a download button's deferred data, with a failure logged like any bug (the
    browser only says "Failed to generate file for download")."""

    def data() -> bytes:
        try:
            return make()
        except Exception:
            log.exception("unexpected error while making the download %s", what)
            raise

    return data


def download_png(
    label: str, picture: Callable[[], np.ndarray], file_name: str, key: str, *, info: dict[str, str] | None = None
) -> None:
    """A PNG download; ``picture()`` composes the image only when the button is pressed
    (``info``: text chunks written into the PNG, e.g. the normalization and the value range).

    ``on_click="ignore"``: a download never reruns the page. With the default ("rerun") the
    browser sends the rerun BEFORE it asks for the deferred file; the rerun registers the button
    anew under a fresh id and, when it finishes, forgets the old one, so a request arriving after
    that fails ("Failed to generate file for download", gone after 5 s). On a loaded server that
    race lost 2 clicks of 5 right after a settings change.
    """
    st.download_button(
        label,
        _made_on_click(lambda: png_bytes(picture(), compress_level=6, info=info), file_name),
        file_name=file_name,
        mime="image/png",
        key=key,
        icon=":material/download:",
        on_click="ignore",
    )


def download_csv(label: str, frame, file_name: str, key: str) -> None:
    """A CSV download of a DataFrame (encoded only when the button is pressed; never a rerun:
    see :func:`download_png`). Text cells that a spreadsheet would run as a formula (``=``, ``+``,
    ``-``, ``@`` ...) are neutralised (:func:`methods.review.csv_safe.csv_bytes`), as in every
    CSV GradLens writes."""
    st.download_button(
        label,
        _made_on_click(lambda: csv_bytes(frame), file_name),
        file_name=file_name,
        mime="text/csv",
        key=key,
        icon=":material/download:",
        on_click="ignore",
    )


def note_constant(named: dict[str, np.ndarray]) -> None:
    """Say so when maps are constant: normalization then gives all zeros (a flat picture)."""
    flat = [
        f"{name} (every value {float(m.flat[0]):.3g})"
        for name, m in named.items()
        if m.size and float(m.max()) == float(m.min())
    ]
    if flat:
        notice(
            f"Constant map: {', '.join(flat)}. There is nothing to rank, so every normalization draws it "
            "flat. A uniform image, or a layer the class score does not depend on, does this.",
            "info",
            icon=":material/horizontal_rule:",
        )


def map_notes(bundle, names, label=None) -> None:
    """Beside the maps: each method's notes (``Explanation.notes``: a signed layer, a rule extended,
    a fallback) and the precision its maps ran in where it is not fp32 — text from the library,
    escaped whole. ``label`` turns a method key into its display name."""
    for name in names:
        title = label(name) if label else name
        for text in bundle.notes.get(name, ()):
            notice(f"{title}: {text}", "warning", icon=":material/report:")
        precision = bundle.precision.get(name, "fp32")
        if precision != "fp32":
            notice(
                f'{title}: computed in {precision} (bfloat16 autocast: precision "auto" on this machine), so '
                "its values can differ from an fp32 run (docs/precision.md). Set GRADLENS_PRECISION=fp32 on the "
                "server for fp32.",
                "info",
                icon=":material/memory:",
            )


def note_border(names: Sequence[str], borders: Sequence[float], size: tuple[int, int]) -> list[str]:
    """A warning naming the maps piled onto the image border (``methods.metrics.border``), with
    their figures; returns the names flagged."""
    limit = border.border_threshold(size)
    flagged = [(n, b) for n, b in zip(names, borders) if b >= limit]
    if flagged:
        notice(
            f"Border artefact likely at {', '.join(f'{n} ({b:.2f})' for n, b in flagged)}: that share of the map's "
            f"positive mass lies in the outer {border.RING:.1%} ring of the model input (a uniform map puts "
            f"{border.ring_area(size):.2f} there; flagged from {limit:.2f}, the ring twice as dense as the inside). "
            "Mid-depth layers of padded CNNs respond to the zero padding at the edge: read such a map as the frame, "
            "not the object, unless the object fills the border.",
            "warning",
            icon=":material/border_outer:",
        )
    return [n for n, _ in flagged]
