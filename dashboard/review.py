"""Team review in the dashboard: "Save to review" on every analysis page, and the Review page.

* :func:`store` is the one :class:`~methods.review.store.SnapshotStore` of the process
  (``st.cache_resource``, keyed by the database path: ``GRADLENS_DB``, secrets, or ``data/``).
* :func:`save_panel` is drawn by ``runner.run_page`` under every page's title. It saves what the
  page has just drawn: the image as the model saw it, the RAW maps of every ``runner.raw_maps``
  call of the run (``capture.recorded()``), the probabilities, the faithfulness curves, and the
  whole view state (``ViewState.to_dict``: every field, defaults included).
* :func:`review_page` lists, filters, opens, comments, judges and exports snapshots. A snapshot
  opens from ``?snapshot=<id>`` on the Review page: its page's ``show(state)`` redraws it from the
  stored image and maps (``capture.preloaded``), so the model does not run.

User text (author, title, note, comments) is shown with ``st.text`` or in dataframes, never as
markdown.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import streamlit as st

from methods.review.codec import encode_png
from methods.review.store import VERDICTS, NewSnapshot, NormSettings, Snapshot, SnapshotStore
from methods.review.report import html_report, zip_report
from methods.review.schema import resolve_db_path

from dashboard import cache, capture, figures, services
from dashboard.errors import shown_errors
from dashboard.navigation import PAGE_FILES, PAGE_TITLES, render_view
from dashboard.services import REFERENCE_KEYS, MapBundle
from dashboard.state import ViewState, is_upload

__all__ = ["store", "new_snapshot", "save_panel", "snapshot_link", "bundle_of", "review_page", "REVIEW_PAGE"]

REVIEW_PAGE = "pages/5_Review.py"
_AUTHOR_KEY = "_review_author"
_SAVED_KEY = "_review_saved"


@st.cache_resource(show_spinner=False, max_entries=4)
def _store(path: str) -> SnapshotStore:
    return SnapshotStore(path)


def store() -> SnapshotStore:
    """The process's snapshot store (one per database file; shared by every session)."""
    return _store(str(resolve_db_path(None)))


def snapshot_link(snapshot_id: str) -> str:
    """Relative URL of a snapshot: the Review page with ``?snapshot=<id>``.

    Relative, so it works behind any host name or base path: every page lives at the app's root
    (``/Methods``, ``/Review``), so ``Review?snapshot=…`` resolves from each of them.
    """
    return f"Review?snapshot={snapshot_id}"


def _curve(curve: dict) -> dict:
    return {k: np.asarray(v).tolist() if isinstance(v, np.ndarray) else v for k, v in curve.items()}


def new_snapshot(view: ViewState, recorded: dict, *, author: str, title: str = "", note: str = "",
                 verdict: str = "unreviewed") -> NewSnapshot:
    """The snapshot of what a page drew (``capture.recorded()``) in ``view``."""
    bundle: MapBundle = recorded["bundle"]
    layers: list[str] = []
    for per_layer in bundle.maps.values():
        layers += [l for l in per_layer if l not in layers]
    model_sha = None
    if is_upload(view.model):
        info = cache.uploaded_models().get(view.model)
        if info is not None:
            model_sha = hashlib.sha256(info["data"]).hexdigest()
    probs = np.asarray(bundle.probs, dtype=float)
    order = probs.argsort()[::-1][:5]
    names = bundle.class_names
    metrics: dict = {  # top-5 only: a report stays readable for 1000 classes (and it is all Home shows)
        "top5": [[int(i), names[i] if i < len(names) else str(i), round(float(probs[i]), 6)] for i in order],
        "target_probability": round(float(probs[bundle.target]), 6),
        "num_classes": int(len(probs)),
        "seconds": {k: float(v) for k, v in bundle.seconds.items()},  # exact: pages print them
    }
    if bundle.extras:  # what the Compare and Sanity pages need to redraw the view (bundle_of reads it back)
        metrics["extras"] = bundle.extras
    curves = recorded.get("curves") or {}
    if curves:
        metrics["curves"] = {k: {kind: _curve(c) for kind, c in v.items()} for k, v in curves.items()}
        metrics["auc"] = {k: {kind: c.get("auc") for kind, c in v.items()} for k, v in curves.items()}
    return NewSnapshot(
        image_png=encode_png(bundle.image), model_id=bundle.extras.get("model_id") or view.model,
        model_sha256=model_sha, author=author,
        methods=tuple(bundle.maps), layers=tuple(layers), maps=bundle.maps, page=view.page,
        target_index=int(bundle.target), target_name=bundle.target_name,
        normalization=NormSettings(mode=view.norm, relu=view.relu, scope=view.scope,
                                   percentiles=(view.p_lo, view.p_hi)),
        colormap=view.cmap, alpha=float(view.alpha), view=view.to_dict(), metrics=metrics,
        title=title, note=note, verdict=verdict,
    )


def save_panel(view: ViewState) -> None:
    """The "Save to review" expander: author (remembered), title, note, verdict -> a snapshot."""
    rec = capture.recorded()
    saved = st.session_state.get(_SAVED_KEY)
    with st.expander("Save to review", icon=":material/bookmark_add:", expanded=bool(saved and saved[0] == view.page)):
        if rec["bundle"] is None:
            st.caption("Nothing to save yet: the page has not computed a map.")
            return
        with st.form(f"save_{view.page}", clear_on_submit=False, border=False):
            left, right = st.columns([1, 1])
            author = left.text_input("Your name", value=st.session_state.get(_AUTHOR_KEY, ""), max_chars=100,
                                     key="w_review_author")
            verdict = right.selectbox("Verdict", VERDICTS, key="w_review_verdict")
            title = st.text_input("Title", max_chars=200, key="w_review_title")
            note = st.text_area("Note", max_chars=10_000, key="w_review_note", height=80)
            pressed = st.form_submit_button("Save snapshot", icon=":material/save:")
        if pressed:
            st.session_state[_AUTHOR_KEY] = author
            sid = store().save(new_snapshot(view, rec, author=author, title=title, note=note, verdict=verdict))
            st.session_state[_SAVED_KEY] = (view.page, sid)
            saved = (view.page, sid)
        if saved and saved[0] == view.page:
            link = snapshot_link(saved[1])
            st.success(f"Saved as snapshot `{saved[1]}`. Link (relative to this app): [{link}]({link})",
                       icon=":material/check:")
            st.code(link, language=None)


# ==========================================================================================
# the Review page


def bundle_of(snap: Snapshot) -> MapBundle:
    """A snapshot's stored image, raw maps, target and probabilities as the pages' MapBundle."""
    metrics = snap.metrics or {}
    target = int(snap.target_index or 0)
    size = max(int(metrics.get("num_classes") or 0), target + 1)
    probs = np.zeros(size)  # the classes outside the top 5 were not stored
    names = [str(i) for i in range(size)]
    for index, name, p in metrics.get("top5") or []:
        if 0 <= int(index) < size:
            probs[int(index)], names[int(index)] = float(p), str(name)
    if "target_probability" in metrics:
        probs[target] = float(metrics["target_probability"])
    if snap.target_name:
        names[target] = snap.target_name
    names = tuple(names)
    seconds = {k: float(v) for k, v in (metrics.get("seconds") or {}).items()}
    return MapBundle(snap.image_array(), {m: dict(l) for m, l in snap.maps.items()}, target, probs, names, seconds,
                     dict(metrics.get("extras") or {}))


def _filters() -> dict:
    everything = store().list(limit=1000)
    models = sorted({s.model_id for s in everything})
    methods_ = sorted({m for s in everything for m in s.methods})
    cols = st.columns([2, 2, 2, 2, 3])
    author = cols[0].text_input("Author", key="w_rv_author")
    model = cols[1].selectbox("Model", ["(any)"] + models, key="w_rv_model")
    method = cols[2].selectbox("Method", ["(any)"] + methods_, key="w_rv_method",
                               format_func=lambda m: m if m == "(any)" else services.method_label(m))
    verdict = cols[3].selectbox("Verdict", ("(any)",) + tuple(VERDICTS), key="w_rv_verdict")
    text = cols[4].text_input("Text in title, note or comments", key="w_rv_text")
    return {k: v for k, v in dict(author=author.strip(), model=model, method=method, verdict=verdict,
                                  text=text.strip()).items() if v and v != "(any)"}


def _exports(ids: list[str], stem: str, key: str) -> None:
    def html() -> bytes:  # built only when the button is pressed
        return html_report([store().get(i) for i in ids], comments={i: store().comments(i) for i in ids}).encode()

    def zipped() -> bytes:
        return zip_report([store().get(i) for i in ids], comments={i: store().comments(i) for i in ids})

    a, b = st.columns(2)
    a.download_button("HTML report", html, file_name=f"{stem}.html", mime="text/html", key=f"{key}_html",
                      icon=":material/download:", disabled=not ids)
    b.download_button("ZIP (report, maps, settings)", zipped,
                      file_name=f"{stem}.zip", mime="application/zip", key=f"{key}_zip",
                      icon=":material/download:", disabled=not ids)


def _stored_curves(snap: Snapshot) -> None:
    curves = (snap.metrics or {}).get("curves") or {}
    if not curves:
        return
    labels = {k: services.method_label(k) for k in curves}
    labels.update({"ref:random": "Random map (reference)", "ref:centre": "Centre map (reference)"})
    have = {k: v for k, v in curves.items() if "deletion" in v and "insertion" in v}
    fig = figures.curves_figure({k: (v["deletion"]["fractions"], v["deletion"]["scores"]) for k, v in have.items()},
                                {k: (v["insertion"]["fractions"], v["insertion"]["scores"]) for k, v in have.items()},
                                labels=labels, references=REFERENCE_KEYS)
    st.plotly_chart(fig, width="stretch", key="review_curves")
    st.dataframe(pd.DataFrame({
        "Map": [labels.get(k, k) for k in have],
        "Deletion AUC (lower is better)": [v["deletion"].get("auc") for v in have.values()],
        "Insertion AUC (higher is better)": [v["insertion"].get("auc") for v in have.values()],
    }), hide_index=True, width="stretch")


def _open(snapshot_id: str) -> None:
    """One snapshot: its view redrawn from the stored maps, then review text, comments, verdict."""
    snap = store().get(snapshot_id)
    state, messages = ViewState.from_dict(snap.view, services.choices())
    if st.button("Back to the list", icon=":material/arrow_back:", key="rv_back"):
        st.query_params.clear()
        st.rerun()
    st.header(_md_escape(snap.title) if snap.title else "(untitled)", anchor=False)  # a header is markdown
    st.text(f"Snapshot {snap.id} · by {snap.author} · {snap.created_at} · verdict: {snap.verdict}")
    if snap.note:
        st.text(snap.note)
    for text in messages:
        st.warning(text, icon=":material/link_off:")
    page = state.page if state.page in PAGE_TITLES else "home"
    with st.container(border=True):
        st.subheader(f"{PAGE_TITLES[page]} · {snap.model_id}", anchor=False)
        bundle = bundle_of(snap)
        single = snap.layers[0] if len(snap.layers) == 1 else None
        with capture.preloaded(bundle, default_layer=single):
            if page == "faithfulness":  # the curves are stored: draw them, and the maps they rank
                render_view(state.with_changes(page="methods", methods=tuple(snap.methods), slow=True))
                _stored_curves(snap)
            else:
                render_view(state.with_changes(slow=True))
    if not is_upload(snap.model_id) and not is_upload(state.image):
        path = "./" if page == "home" else PAGE_FILES[page].removesuffix(".py").split("_", 1)[-1]
        st.markdown(f"[Open this view live on its page (runs the model)]({path}?{urlencode(state.to_query())})")

    st.subheader("Comments", anchor=False)
    for c in store().comments(snap.id):
        st.caption(f"{_md_escape(c.author)} · {c.created_at}")
        st.text(c.text)
    with st.form("rv_comment", clear_on_submit=True, border=True):
        who = st.text_input("Your name", value=st.session_state.get(_AUTHOR_KEY, ""), key="w_rv_comment_author")
        text = st.text_area("Comment", key="w_rv_comment_text", height=80)
        if st.form_submit_button("Add comment", icon=":material/add_comment:"):
            with shown_errors(doing="saving the comment"):
                store().add_comment(snap.id, author=who, text=text)
                st.session_state[_AUTHOR_KEY] = who
                st.rerun()

    st.subheader("Verdict", anchor=False)
    cols = st.columns([2, 1], vertical_alignment="bottom")
    verdict = cols[0].selectbox("Verdict", VERDICTS, index=list(VERDICTS).index(snap.verdict), key=f"w_rv_set_verdict_{snap.id}")
    if cols[1].button("Set verdict", key="rv_set_verdict", disabled=verdict == snap.verdict):
        store().set_verdict(snap.id, verdict, author=st.session_state.get(_AUTHOR_KEY) or None)
        st.rerun()
    history = store().verdict_history(snap.id)
    st.dataframe(pd.DataFrame([{"When": h.changed_at, "Verdict": h.verdict, "Before": h.previous or "",
                                "By": h.author or ""} for h in history]), hide_index=True, width="stretch")
    st.subheader("Export", anchor=False)
    _exports([snap.id], f"gradlens_{snap.id}", "rv_one")


_MD_SPECIAL = "\\`*_{}[]<>()#+-.!|~$:"


def _md_escape(text: str) -> str:
    """Text that markdown shows literally (every markdown-special character backslash-escaped)."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in str(text))


def review_page() -> None:
    """The Review page: ``?snapshot=<id>`` opens one; otherwise the filtered list."""
    st.set_page_config(page_title="Review · GradLens", page_icon=":material/blur_on:", layout="wide")
    st.title("Review")
    sid = st.query_params.get("snapshot")
    if sid is not None:
        with shown_errors(doing="opening the snapshot") as outcome:
            _open(sid)
        if not outcome.failed:
            return
        st.query_params.clear()
    st.caption("Snapshots saved with “Save to review” on the analysis pages. Filters must all match.")
    with shown_errors(doing="listing the snapshots"):
        found = store().list(**_filters(), limit=500)
        table = pd.DataFrame([{
            "id": s.id, "Title": s.title, "Author": s.author, "Verdict": s.verdict, "Model": s.model_id,
            "Page": s.page, "Methods": ", ".join(s.methods), "Class": s.target_name or "",
            "Comments": s.n_comments, "Saved (UTC)": s.created_at,
        } for s in found], columns=["id", "Title", "Author", "Verdict", "Model", "Page", "Methods", "Class",
                                    "Comments", "Saved (UTC)"])
        st.dataframe(table, hide_index=True, width="stretch")
        st.caption(f"{len(found)} snapshot(s).")
        if found:
            cols = st.columns([3, 1], vertical_alignment="bottom")
            chosen = cols[0].selectbox("Snapshot", [s.id for s in found], key="w_rv_open",
                                       format_func=lambda i: next(f"{s.id} · {s.title or '(untitled)'}"
                                                                  for s in found if s.id == i))
            if cols[1].button("Open", key="rv_open", icon=":material/open_in_new:"):
                st.query_params["snapshot"] = chosen
                st.rerun()
        st.subheader("Export the filtered set", anchor=False)
        _exports([s.id for s in found], "gradlens_review", "rv_all")
