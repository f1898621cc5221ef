"""The Review page: saved snapshots listed (thumbnails, readable times, file names of uploaded
models), filtered, opened (``?snapshot=<id>``), commented, judged, deleted and exported.

A snapshot opens from ``?snapshot=<id>``: its page's ``show(state)`` redraws it from the stored
image and maps (``capture.preloaded``), so the model does not run. Names of who comments and
judges come from :func:`dashboard.app.save_panel.identity_panel` (sign-in or open mode). Stored text is
shown with ``st.text``, in dataframes, or through ``errors.md_escape``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.app import capture
from dashboard.app.errors import md_escape, notice, shown_errors
from dashboard.app.navigation import render_view
from dashboard.app.save_panel import bundle_of, identity_panel, store
from dashboard.core import pages, services
from dashboard.core.params import is_upload
from dashboard.core.state import ViewState
from dashboard.draw import figures, pictures
from methods.review.report import html_report, zip_report
from methods.review.store import VERDICTS, Snapshot
from methods.viz.styles import REFERENCE_KEYS, REFERENCE_LABELS

__all__ = ["show", "when", "THUMB_PX", "PAGE_SIZE"]

THUMB_PX = 72  # long side of a list thumbnail
PAGE_SIZE = 50  # rows of the list per page (each new row loads its snapshot once, for the thumbnail)
_CONFIRM_KEY = "_rv_confirm_delete"
_DELETED_KEY = "_rv_deleted"


def when(stamp: str, now: datetime | None = None) -> str:
    """A stored UTC time as people read it: ``2026-12-01 10:20 UTC (5 min ago)``."""
    try:
        t = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):  # not an ISO time (an old or hand-made row): show it as stored
        return str(stamp)
    t = t if t.tzinfo else t.replace(tzinfo=timezone.utc)
    seconds = ((now or datetime.now(timezone.utc)) - t).total_seconds()
    ago = (
        "just now"
        if seconds < 60
        else f"{seconds // 60:.0f} min ago"
        if seconds < 3600
        else f"{seconds // 3600:.0f} h ago"
        if seconds < 86_400
        else f"{seconds // 86_400:.0f} days ago"
    )
    return f"{t.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC ({ago if seconds >= 0 else 'in the future'})"


@st.cache_data(show_spinner=False, max_entries=2000)
def _card(snapshot_id: str, image_sha256: str) -> tuple[str, str | None]:
    """(thumbnail data URI, model label) of a snapshot; its image never changes (keyed by digest)."""
    snap = store().get(snapshot_id)
    image = snap.image_array()
    step = max(1, int(np.ceil(max(image.shape[:2]) / THUMB_PX)))
    return pictures.data_uri(np.ascontiguousarray(image[::step, ::step])), (snap.metrics or {}).get("model_label")


def _model_name(model_id: str, label: str | None) -> str:
    if is_upload(model_id):
        return f"uploaded {label}" if label else "an uploaded checkpoint"
    return model_id


def _filters() -> dict:
    everything = store().list(limit=1000)
    models = sorted({s.model_id for s in everything})
    methods_ = sorted({m for s in everything for m in s.methods})
    cols = st.columns([2, 2, 2, 2, 3])
    author = cols[0].text_input("Author", key="w_rv_author")
    model = cols[1].selectbox("Model", ["(any)"] + models, key="w_rv_model")
    method = cols[2].selectbox(
        "Method",
        ["(any)"] + methods_,
        key="w_rv_method",
        format_func=lambda m: m if m == "(any)" else services.method_label(m),
    )
    verdict = cols[3].selectbox("Verdict", ("(any)",) + tuple(VERDICTS), key="w_rv_verdict")
    text = cols[4].text_input("Text in title, note or comments", key="w_rv_text")
    return {
        k: v
        for k, v in dict(author=author.strip(), model=model, method=method, verdict=verdict, text=text.strip()).items()
        if v and v != "(any)"
    }


def _exports(ids: list[str], stem: str, key: str) -> None:
    def html_file() -> bytes:  # built only when the button is pressed
        return html_report([store().get(i) for i in ids], comments={i: store().comments(i) for i in ids}).encode()

    def zipped() -> bytes:
        return zip_report([store().get(i) for i in ids], comments={i: store().comments(i) for i in ids})

    a, b = st.columns(2)  # on_click="ignore": a download never reruns the page (see widgets.download_png)
    a.download_button(
        "HTML report",
        html_file,
        file_name=f"{stem}.html",
        mime="text/html",
        key=f"{key}_html",
        icon=":material/download:",
        disabled=not ids,
        on_click="ignore",
    )
    b.download_button(
        "ZIP (report, maps, settings)",
        zipped,
        file_name=f"{stem}.zip",
        mime="application/zip",
        key=f"{key}_zip",
        icon=":material/download:",
        disabled=not ids,
        on_click="ignore",
    )


def _stored_curves(snap: Snapshot) -> None:
    curves = (snap.metrics or {}).get("curves") or {}
    if not curves:
        return
    labels = {k: services.method_label(k) for k in curves}  # curves_figure escapes them for Plotly
    labels.update(REFERENCE_LABELS)
    have = {k: v for k, v in curves.items() if "deletion" in v and "insertion" in v}
    fig = figures.curves_figure(
        {k: (v["deletion"]["fractions"], v["deletion"]["scores"]) for k, v in have.items()},
        {k: (v["insertion"]["fractions"], v["insertion"]["scores"]) for k, v in have.items()},
        labels=labels,
        references=REFERENCE_KEYS,
    )
    st.plotly_chart(fig, width="stretch", key="review_curves")
    st.dataframe(
        pd.DataFrame(
            {
                "Map": [services.method_label(k) if k not in REFERENCE_KEYS else labels[k] for k in have],
                "Deletion AUC (lower is better)": [v["deletion"].get("auc") for v in have.values()],
                "Insertion AUC (higher is better)": [v["insertion"].get("auc") for v in have.values()],
            }
        ),
        hide_index=True,
        width="stretch",
    )


def _open(snapshot_id: str) -> None:
    """One snapshot: its view redrawn from the stored maps, then review text, comments, verdict."""
    snap = store().get(snapshot_id)
    state, messages = ViewState.from_dict(snap.view, services.choices())
    if st.button("Back to the list", icon=":material/arrow_back:", key="rv_back"):
        st.query_params.clear()
        st.rerun()
    st.header(md_escape(snap.title) if snap.title else "(untitled)", anchor=False)  # a header is markdown
    model = _model_name(snap.model_id, (snap.metrics or {}).get("model_label"))
    st.text(f"Snapshot {snap.id} · by {snap.author} · {when(snap.created_at)} · verdict: {snap.verdict}")
    if snap.note:
        st.text(snap.note)
    for text in messages:
        notice(text, "warning", icon=":material/link_off:")
    page = state.page if state.page in pages.VIEW_PAGES else "home"
    with st.container(border=True):
        st.subheader(f"{pages.page(page).title} · {md_escape(model)}", anchor=False)
        bundle = bundle_of(snap)
        single = snap.layers[0] if len(snap.layers) == 1 else None
        with capture.preloaded(bundle, default_layer=single):
            # slow=False: what the snapshot did not save (a slow method that waited for its Run
            # button when it was saved) waits for a click here too, it never runs on open
            if page == "faithfulness":  # the curves are stored: draw them, and the maps they rank
                render_view(replace(state, page="methods", methods=tuple(snap.methods), slow=False))
                _stored_curves(snap)
            else:
                render_view(replace(state, slow=False))
    if not is_upload(snap.model_id) and not is_upload(state.image):
        path = "./" if page == "home" else pages.page(page).script.removesuffix(".py").split("_", 1)[-1]
        st.markdown(f"[Open this view live on its page (runs the model)]({path}?{urlencode(state.to_query())})")

    st.subheader("Comments", anchor=False)
    for c in store().comments(snap.id):
        st.caption(f"{md_escape(c.author)} · {when(c.created_at)}")
        st.text(c.text)
    who = identity_panel("comment")
    with st.form("rv_comment", clear_on_submit=True, border=True):
        text = st.text_area("Comment", key="w_rv_comment_text", height=80)
        if st.form_submit_button("Add comment", icon=":material/add_comment:"):
            with shown_errors(doing="saving the comment"):
                store().add_comment(snap.id, author=who, text=text)
                st.rerun()

    st.subheader("Verdict", anchor=False)
    cols = st.columns([2, 1], vertical_alignment="bottom")
    verdict = cols[0].selectbox(
        "Verdict", VERDICTS, index=list(VERDICTS).index(snap.verdict), key=f"w_rv_set_verdict_{snap.id}"
    )
    if cols[1].button("Set verdict", key="rv_set_verdict", disabled=verdict == snap.verdict):
        store().set_verdict(snap.id, verdict, author=who or None)
        st.rerun()
    history = store().verdict_history(snap.id)
    st.dataframe(
        pd.DataFrame(
            [
                {"When": when(h.changed_at), "Verdict": h.verdict, "Before": h.previous or "", "By": h.author or ""}
                for h in history
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.subheader("Export", anchor=False)
    _exports([snap.id], f"gradlens_{snap.id}", "rv_one")


def _confirm_delete(found: list) -> None:
    """The second step of a delete: what goes, and two buttons."""
    sid = st.session_state.get(_CONFIRM_KEY)
    snap = next((s for s in found if s.id == sid), None)
    if snap is None:
        st.session_state.pop(_CONFIRM_KEY, None)
        return
    with st.container(border=True):
        notice(
            f"Delete snapshot {snap.id} “{snap.title or '(untitled)'}” by {snap.author}, with its "
            f"{snap.n_comments} comment(s) and its verdict history? This cannot be undone.",
            "warning",
            icon=":material/delete:",
        )
        yes, no = st.columns(2)
        if yes.button("Delete for good", key="rv_delete_yes", type="primary", icon=":material/delete_forever:"):
            store().delete(snap.id)
            st.session_state.pop(_CONFIRM_KEY, None)
            st.session_state[_DELETED_KEY] = f"Deleted snapshot {snap.id} “{snap.title or '(untitled)'}”."
            st.rerun()
        if no.button("Keep it", key="rv_delete_no"):
            st.session_state.pop(_CONFIRM_KEY, None)
            st.rerun()


def _listing() -> None:
    st.caption("Snapshots saved with “Save to review” on the analysis pages. Filters must all match.")
    done = st.session_state.pop(_DELETED_KEY, None)
    if done:
        notice(done, "success", icon=":material/check:")
    found = store().list(**_filters(), limit=500)
    n_pages = max(1, -(-len(found) // PAGE_SIZE))
    page = st.number_input("List page", 1, n_pages, 1, key="w_rv_page") if n_pages > 1 else 1
    shown = found[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    cards = {s.id: _card(s.id, s.image_sha256) for s in shown}
    table = pd.DataFrame(
        [
            {
                "Image": cards[s.id][0],
                "id": s.id,
                "Title": s.title,
                "Author": s.author,
                "Verdict": s.verdict,
                "Model": _model_name(s.model_id, cards[s.id][1]),
                "Page": s.page,
                "Methods": ", ".join(s.methods),
                "Class": s.target_name or "",
                "Comments": s.n_comments,
                "Saved": when(s.created_at),
            }
            for s in shown
        ],
        columns=["Image", "id", "Title", "Author", "Verdict", "Model", "Page", "Methods", "Class", "Comments", "Saved"],
    )
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        row_height=THUMB_PX + 4,
        column_config={"Image": st.column_config.ImageColumn("Image", width="small")},
    )
    st.caption(f"{len(found)} snapshot(s)." + (f" Page {page} of {n_pages}." if n_pages > 1 else ""))
    if shown:
        cols = st.columns([3, 1, 1], vertical_alignment="bottom")
        chosen = cols[0].selectbox(
            "Snapshot",
            [s.id for s in shown],
            key="w_rv_open",
            format_func=lambda i: next(f"{s.id} · {s.title or '(untitled)'}" for s in shown if s.id == i),
        )
        if cols[1].button("Open", key="rv_open", icon=":material/open_in_new:"):
            st.query_params["snapshot"] = chosen
            st.rerun()
        if cols[2].button("Delete…", key="rv_delete", icon=":material/delete:"):
            st.session_state[_CONFIRM_KEY] = chosen
        _confirm_delete(shown)
    st.subheader("Export the filtered set", anchor=False)
    _exports([s.id for s in found], "gradlens_review", "rv_all")


def show() -> None:
    """The Review page under its title: ``?snapshot=<id>`` opens one; otherwise the filtered list."""
    sid = st.query_params.get("snapshot")
    if sid is not None:
        with shown_errors(doing="opening the snapshot") as outcome:
            _open(sid)
        if not outcome.failed:
            return
        st.query_params.clear()
    with shown_errors(doing="listing the snapshots"):
        _listing()
