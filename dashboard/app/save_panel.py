"""Team review in the dashboard, the writing side: who writes, and "Save to review".

* :func:`store` is the one :class:`~methods.review.store.SnapshotStore` of the process
  (``st.cache_resource``, keyed by the database path: ``GRADLENS_DB``, secrets, or ``data/``).
* :func:`reviewer` says who writes. With Streamlit authentication configured (an ``[auth]``
  section in ``.streamlit/secrets.toml``: ``st.login`` with an OIDC provider), authors and comment
  names come from ``st.user`` and nobody can write under another name. Otherwise (open mode) a
  name typed once is kept for the whole session; anyone can type any name, and the panel says so.
* :func:`save_panel` is drawn by ``shell.run_page`` under every page's title. It saves what the
  page has just drawn: the image as the model saw it, the RAW maps of every ``jobs.raw_maps``
  call of the run (``capture.recorded()``), the probabilities, the faithfulness curves, and the
  whole view state (``ViewState.to_dict``: every field, defaults included).
* The Review page (list, open, comment, judge, delete, export) is :mod:`dashboard.views.review`.

User text (author, title, note, comments) is shown with ``st.text``, in dataframes, or through
``errors.md_escape``; never as markdown of its own.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard.app import capture, uploads
from dashboard.app.errors import md_escape
from dashboard.app.widgets import seed
from dashboard.core.params import is_upload
from dashboard.core.services import MapBundle
from dashboard.core.state import ViewState
from methods.review.codec import encode_png
from methods.review.schema import resolve_db_path
from methods.review.store import (
    VERDICTS,
    NewSnapshot,
    NormSettings,
    Snapshot,
    SnapshotStore,
)

__all__ = [
    "store",
    "auth_configured",
    "reviewer",
    "identity_panel",
    "new_snapshot",
    "save_panel",
    "snapshot_link",
    "bundle_of",
    "REVIEW_PAGE",
]

REVIEW_PAGE = "pages/5_Review.py"
_AUTHOR_KEY = "_review_author"  # the open mode's name, kept for the session
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


# ------------------------------------------------------------------------------------------
# who writes


def auth_configured() -> bool:
    """True when Streamlit authentication is set up: an ``[auth]`` section in secrets.toml."""
    return st.secrets.load_if_toml_exists() and "auth" in st.secrets


def _providers() -> list[str]:
    """Named providers (``[auth.google]`` ...); empty when ``[auth]`` itself holds the one provider."""
    section = st.secrets["auth"]
    return [k for k, v in section.items() if hasattr(v, "keys")]


def reviewer() -> tuple[str, str]:
    """``(name, mode)``: mode ``"sign-in"`` (name from ``st.user``; "" when not signed in) or
    ``"open"`` (the name typed in this session; "" when none yet)."""
    if auth_configured():
        if not st.user.get("is_logged_in", False):
            return "", "sign-in"
        return str(st.user.get("name") or st.user.get("email") or st.user.get("sub") or ""), "sign-in"
    return str(st.session_state.get(_AUTHOR_KEY, "")).strip(), "open"


def identity_panel(key: str) -> str:
    """Who writes, and in which mode: a sign-in button, the signed-in name, or (open mode) a name
    box kept for the session. Returns the name ("" when nobody is named yet)."""
    name, mode = reviewer()
    if mode == "sign-in":
        left, right = st.columns([4, 1], vertical_alignment="center")
        if name:
            left.caption(
                f"Signed in as **{md_escape(name)}**: snapshots, comments and verdicts carry this name (sign-in mode)."
            )
            if right.button("Sign out", key=f"{key}_logout", icon=":material/logout:"):
                st.logout()
        else:
            left.caption("Sign-in mode: sign in to save snapshots, comment and set verdicts under your own name.")
            for provider in _providers() or [None]:  # None: [auth] itself holds the one provider
                label = "Sign in" if provider is None else f"Sign in with {provider}"
                if right.button(label, key=f"{key}_login_{provider}", icon=":material/login:"):
                    st.login(provider)
        return name
    seed("w_review_author", name)
    typed = st.text_input(
        "Your name (open mode: names are not checked)",
        key="w_review_author",
        max_chars=100,
        help="Typed once, kept for every snapshot, comment and verdict of this session. In open "
        "mode anyone can write any name; with sign-in configured (st.login, see "
        "docs/review.md) names come from each person's account.",
    )
    st.session_state[_AUTHOR_KEY] = typed
    return typed.strip()


# ------------------------------------------------------------------------------------------
# saving


def _curve(curve: dict) -> dict:
    return {k: np.asarray(v).tolist() if isinstance(v, np.ndarray) else v for k, v in curve.items()}


def new_snapshot(
    view: ViewState, recorded: dict, *, author: str, title: str = "", note: str = "", verdict: str = "unreviewed"
) -> NewSnapshot:
    """The snapshot of what a page drew (``capture.recorded()``) in ``view``."""
    bundle: MapBundle = recorded["bundle"]
    layers: list[str] = []
    for per_layer in bundle.maps.values():
        layers += [l for l in per_layer if l not in layers]
    model_sha, model_label = None, None
    if is_upload(view.model):
        info = uploads.uploaded_models().get(view.model)
        if info is not None:
            model_sha, model_label = info["sha256"], f"{info['name']} ({info['arch']})"
    probs = np.asarray(bundle.probs, dtype=float)
    order = probs.argsort()[::-1][:5]
    names = bundle.class_names
    metrics: dict = {  # top-5 only: a report stays readable for 1000 classes (and it is all Home shows)
        "top5": [[int(i), names[i] if i < len(names) else str(i), round(float(probs[i]), 6)] for i in order],
        "target_probability": round(float(probs[bundle.target]), 6),
        "num_classes": int(len(probs)),
        "seconds": {k: float(v) for k, v in bundle.seconds.items()},  # exact: pages print them
        "notes": {k: list(v) for k, v in bundle.notes.items() if v},  # shown beside the maps when reopened
        "precision": dict(bundle.precision),
    }
    if model_label:  # the list shows an uploaded model by its file name, not "upload:46bd…"
        metrics["model_label"] = model_label
    if is_upload(view.image):  # reports name an uploaded picture by its file name
        picture = uploads.uploaded_images().get(view.image)
        if picture is not None:
            metrics["image_name"] = str(picture["name"])
    if bundle.extras:  # what the Compare and Sanity pages need to redraw the view (bundle_of reads it back)
        metrics["extras"] = bundle.extras
    curves = recorded.get("curves") or {}
    if curves:
        metrics["curves"] = {k: {kind: _curve(c) for kind, c in v.items()} for k, v in curves.items()}
        metrics["auc"] = {k: {kind: c.get("auc") for kind, c in v.items()} for k, v in curves.items()}
    return NewSnapshot(
        image_png=encode_png(bundle.image),
        model_id=bundle.extras.get("model_id") or view.model,
        model_sha256=model_sha,
        author=author,
        methods=tuple(bundle.maps),
        layers=tuple(layers),
        maps=bundle.maps,
        page=view.page,
        target_index=int(bundle.target),
        target_name=bundle.target_name,
        normalization=NormSettings(
            mode=view.norm, relu=view.relu, scope=view.scope, percentiles=(view.p_lo, view.p_hi)
        ),
        colormap=view.cmap,
        alpha=float(view.alpha),
        view=view.to_dict(),
        metrics=metrics,
        title=title,
        note=note,
        verdict=verdict,
    )


def save_panel(view: ViewState) -> None:
    """The "Save to review" expander: who (see :func:`identity_panel`), title, note, verdict -> a snapshot."""
    rec = capture.recorded()
    saved = st.session_state.get(_SAVED_KEY)
    with st.expander("Save to review", icon=":material/bookmark_add:", expanded=bool(saved and saved[0] == view.page)):
        if rec["bundle"] is None:
            st.caption("Nothing to save yet: the page has not computed a map.")
            return
        author = identity_panel("save")
        with st.form(f"save_{view.page}", clear_on_submit=False, border=False):
            left, right = st.columns([3, 1])
            title = left.text_input("Title", max_chars=200, key="w_review_title")
            verdict = right.selectbox("Verdict", VERDICTS, key="w_review_verdict")
            note = st.text_area("Note", max_chars=10_000, key="w_review_note", height=80)
            pressed = st.form_submit_button("Save snapshot", icon=":material/save:")
        if pressed:  # an empty author is the store's SnapshotError, shown by shell.run_page
            sid = store().save(new_snapshot(view, rec, author=author, title=title, note=note, verdict=verdict))
            st.session_state[_SAVED_KEY] = (view.page, sid)
            saved = (view.page, sid)
        if saved and saved[0] == view.page:
            link = snapshot_link(saved[1])
            st.success(
                f"Saved as snapshot `{saved[1]}`. Link (relative to this app): [{link}]({link})",
                icon=":material/check:",
            )
            st.code(link, language=None)


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
    notes = {str(k): tuple(str(n) for n in v) for k, v in (metrics.get("notes") or {}).items() if isinstance(v, list)}
    precision = {str(k): str(v) for k, v in (metrics.get("precision") or {}).items()}
    return MapBundle(
        snap.image_array(),
        {m: dict(l) for m, l in snap.maps.items()},
        target,
        probs,
        names,
        seconds,
        dict(metrics.get("extras") or {}),
        notes=notes,
        precision=precision,
    )
