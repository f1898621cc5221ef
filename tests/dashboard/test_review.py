"""Team review in the dashboard (dashboard/app/save_panel.py, dashboard/views/review.py) under AppTest.

Every test uses its own SQLite file through ``GRADLENS_DB`` (never ``data/``). One module-level
snapshot is saved through the Home page's "Save to review" form; the other tests read it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app_kit import HOME, TIMEOUT, ForwardCounter, assert_clean, model_calls, open_app, plain
from dashboard.core import pages
from methods.review.store import SnapshotStore

ROOT = Path(__file__).resolve().parents[2]

REVIEW = str(ROOT / "dashboard" / pages.page("review").script)
EVIL = "<script>alert('x')</script> **bold**"


def button(at: AppTest, label: str):
    (b,) = [b for b in at.button if b.label == label]
    return b


@pytest.fixture(scope="module")
def saved(db):
    """Save the Home page's view through its form; return (snapshot id, the app after saving)."""
    at = open_app(HOME)
    at.query_params.update({"cmap": "viridis", "alpha": "0.7"})
    at.run()
    assert_clean(at)
    at.text_input(key="w_review_author").input("ana")
    at.text_input(key="w_review_title").input("Background blob")
    at.text_area(key="w_review_note").input(EVIL)
    at.selectbox(key="w_review_verdict").select("needs check")
    button(at, "Save snapshot").click().run()
    assert_clean(at)
    (row,) = SnapshotStore(db).list()
    return row.id, at


def test_save_stores_the_pages_view_maps_and_metrics(saved, db):
    sid, at = saved
    assert any(f"Review?snapshot={sid}" in s.value for s in at.success)
    snap = SnapshotStore(db).get(sid)
    assert (snap.author, snap.title, snap.note, snap.verdict, snap.page) == (
        "ana",
        "Background blob",
        EVIL,
        "needs check",
        "home",
    )
    assert (snap.colormap, snap.alpha, snap.view["cmap"], snap.view["alpha"]) == ("viridis", 0.7, "viridis", 0.7)
    assert snap.view["norm"] == "minmax" and "steps" in snap.view  # defaults are stored too
    assert snap.methods == ("gradcam",) and len(snap.layers) == 1
    raw = snap.maps["gradcam"][snap.layers[0]]
    assert raw.ndim == 2 and raw.dtype == np.float32 and np.ptp(raw) > 0
    top5 = snap.metrics["top5"]
    assert len(top5) == 5 and snap.metrics["num_classes"] >= 5
    assert [row[0] for row in top5][0] == snap.target_index and top5[0][1] == snap.target_name  # top-1 explained
    probs = [row[2] for row in top5]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert snap.metrics["target_probability"] == probs[0]
    assert snap.image_array().ndim == 3


def test_review_list_and_filters(saved):
    sid, _ = saved
    at = AppTest.from_file(REVIEW, default_timeout=TIMEOUT).run()
    assert_clean(at)
    assert list(at.dataframe[0].value["id"]) == [sid]
    at.text_input(key="w_rv_author").input("ANA").run()  # author ignores ASCII case
    assert list(at.dataframe[0].value["id"]) == [sid]
    at.text_input(key="w_rv_author").input("bob").run()
    assert at.dataframe[0].value.empty
    at.text_input(key="w_rv_author").input("").run()
    at.selectbox(key="w_rv_verdict").select("spurious").run()
    assert at.dataframe[0].value.empty
    at.selectbox(key="w_rv_verdict").select("needs check").run()
    at.selectbox(key="w_rv_method").select("gradcam").run()
    at.text_input(key="w_rv_text").input("BLOB").run()
    assert list(at.dataframe[0].value["id"]) == [sid]
    at.text_input(key="w_rv_text").input("nothing like this").run()
    assert at.dataframe[0].value.empty
    assert_clean(at)


def test_open_restores_the_view_without_the_model(saved):
    sid, saving = saved
    st.cache_data.clear()  # nothing cached: a map drawn now must come from the snapshot
    calls = model_calls()
    counter = ForwardCounter()
    try:
        at = AppTest.from_file(REVIEW, default_timeout=TIMEOUT)
        at.query_params["snapshot"] = sid
        at.run()
    finally:
        counter.close()
    assert_clean(at)
    assert counter.count == 0 and model_calls() == calls
    shown = [s.value for s in at.subheader]
    assert saving.subheader[0].value in shown  # "Grad-CAM for “<class>” at layer <layer>"
    assert plain(shown[0]) == "GradLens · scenes_vgg"
    captions = [c for img in at.image for c in img.captions]
    assert captions == [c for img in saving.image for c in img.captions]
    assert "Heatmap (viridis)" in captions and "Overlay (alpha 0.70)" in captions
    top5, before = at.dataframe[0].value, saving.dataframe[0].value  # the Prediction table
    assert list(top5["Class"]) == list(before["Class"])
    np.testing.assert_allclose(top5["Probability"], before["Probability"], atol=1e-6)
    texts = [t.value for t in at.text]
    assert EVIL in texts  # the note, as plain text
    assert at.header[0].value == "Background blob"
    assert not any("<script>" in m.value for m in at.markdown)


def test_comment_and_verdict(saved, db):
    sid, _ = saved
    at = AppTest.from_file(REVIEW, default_timeout=TIMEOUT)
    at.query_params["snapshot"] = sid
    at.run()
    at.text_input(key="w_review_author").input("ben")
    at.text_area(key="w_rv_comment_text").input("Same on the other photos.")
    button(at, "Add comment").click().run()
    assert_clean(at)
    at.selectbox(key=f"w_rv_set_verdict_{sid}").select("spurious").run()  # the button enables on a change
    button(at, "Set verdict").click().run()
    assert_clean(at)
    store = SnapshotStore(db)
    (comment,) = store.comments(sid)
    assert (comment.author, comment.text) == ("ben", "Same on the other photos.")
    assert store.get(sid).verdict == "spurious"
    assert [h.verdict for h in store.verdict_history(sid)] == ["needs check", "spurious"]
    assert "Same on the other photos." in [t.value for t in at.text]


@pytest.mark.parametrize("bad", ["nope0nope0", "../../etc", ""])
def test_bad_snapshot_id_is_a_message(db, bad):
    at = AppTest.from_file(REVIEW, default_timeout=TIMEOUT)
    at.query_params["snapshot"] = bad
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and "snapshot" in at.error[0].value.lower()


def test_html_export_escapes_the_note(saved):
    from methods.review.report import html_report

    sid, _ = saved
    at = AppTest.from_file(REVIEW, default_timeout=TIMEOUT).run()
    labels = [el.proto.label for el in at.get("download_button")]
    assert "HTML report" in labels and "ZIP (report, maps, settings)" in labels
    # the page's button builds exactly this (AppTest cannot press a download button)
    store = SnapshotStore()
    html = html_report([store.get(sid)], comments={sid: store.comments(sid)})
    assert "&lt;script&gt;alert(" in html and "<script>alert(" not in html


def test_a_faithfulness_snapshot_opens_with_its_stored_curves(db):
    """Curves are drawn from the snapshot's metrics: no model, no recomputation."""
    from methods.review.codec import encode_png
    from methods.review.store import NewSnapshot

    ramp = np.arange(49, dtype=np.float32).reshape(7, 7)
    curve = {"fractions": [0.0, 0.5, 1.0], "scores": [0.9, 0.4, 0.1], "auc": 0.45}
    sid = SnapshotStore(db).save(
        NewSnapshot(
            image_png=encode_png(np.full((28, 28, 3), 120, np.uint8)),
            model_id="scenes_vgg",
            author="cy",
            methods=("gradcam",),
            layers=("L",),
            maps={"gradcam": {"L": ramp}},
            page="faithfulness",
            target_index=1,
            target_name="dog",
            view={"page": "faithfulness", "methods": ["gradcam"], "layer": "L"},
            metrics={
                "top5": [[1, "dog", 0.7], [0, "cat", 0.3]],
                "num_classes": 2,
                "curves": {"gradcam": {"deletion": curve, "insertion": {**curve, "auc": 0.61}}},
            },
        )
    )
    st.cache_data.clear()
    calls = model_calls()
    at = AppTest.from_file(REVIEW, default_timeout=TIMEOUT)
    at.query_params["snapshot"] = sid
    at.run()
    assert_clean(at)
    assert model_calls() == calls
    assert len(at.get("plotly_chart")) == 2  # the maps and the curves
    aucs = at.dataframe[-2].value  # AUC table (the last one is the verdict history)
    assert list(aucs.iloc[0, 1:]) == [0.45, 0.61]


def test_a_snapshot_of_an_uploaded_image_opens_in_another_session(db):
    """The upload's id cannot travel in a URL, but the snapshot holds the image itself."""
    import io

    from PIL import Image

    stripes = np.zeros((80, 80, 3), np.uint8)
    stripes[:, ::8] = 255
    buf = io.BytesIO()
    Image.fromarray(stripes).save(buf, format="PNG")
    at = open_app(HOME).run()
    at.file_uploader(key="w_image_upload").set_value(("stripes.png", buf.getvalue(), "image/png")).run()
    assert_clean(at)
    at.text_input(key="w_review_author").input("dee")
    at.text_input(key="w_review_title").input("uploaded stripes")
    button(at, "Save snapshot").click().run()
    assert_clean(at)
    (row,) = SnapshotStore(db).list(text="uploaded stripes")
    assert SnapshotStore(db).get(row.id).view["image"].startswith("upload:")

    opened = AppTest.from_file(REVIEW, default_timeout=TIMEOUT)  # a new session: the upload is not in it
    opened.query_params["snapshot"] = row.id
    opened.run()
    assert_clean(opened)
    assert [c for img in opened.image for c in img.captions] == [c for img in at.image for c in img.captions]


@pytest.mark.parametrize("page, file", [(k, pages.page(k).script) for k in ("methods", "layers", "normalization")])
def test_save_and_open_from_each_map_page(db, page, file):
    at = open_app(HOME).run()
    at.switch_page(file).run()
    assert_clean(at)
    at.text_input(key="w_review_author").input("eve")
    at.text_input(key="w_review_title").input(f"from {page}")
    button(at, "Save snapshot").click().run()
    assert_clean(at)
    (row,) = SnapshotStore(db).list(text=f"from {page}")
    assert row.page == page
    opened = AppTest.from_file(REVIEW, default_timeout=TIMEOUT)
    opened.query_params["snapshot"] = row.id
    opened.run()
    assert_clean(opened)
    assert len(opened.get("plotly_chart")) == len(at.get("plotly_chart"))
    assert len(opened.image) == len(at.image)
    first = [c.value for c in at.caption if "**" in c.value][:1]
    assert first, [c.value for c in at.caption]
    assert [c.value for c in opened.caption if "**" in c.value][:1] == first


def test_saving_without_a_name_is_a_message(db):
    before = len(SnapshotStore(db).list())
    at = open_app(HOME).run()
    at.text_input(key="w_review_title").input("no author")
    button(at, "Save snapshot").click().run()
    assert not at.exception
    assert len(at.error) == 1 and "author" in at.error[0].value.lower()
    assert len(SnapshotStore(db).list()) == before


def test_markdown_escape_shows_text_literally():
    from dashboard.app.errors import md_escape

    assert md_escape("**a** [x](javascript:1) <b>") == r"\*\*a\*\* \[x\]\(javascript\:1\) \<b\>"
    assert md_escape("line\n# heading") == r"line \# heading"  # one paragraph: no heading, no list


# ------------------------------------------------------------------------------------------
# who writes; a list a team can live in (issue 16)


def _open_snapshot(sid: str, **setup) -> AppTest:
    at = AppTest.from_file(REVIEW, default_timeout=TIMEOUT)
    for name, value in setup.items():
        setattr(at, name, value)
    at.query_params["snapshot"] = sid
    return at.run()


def test_open_mode_keeps_the_name_typed_once(saved, db):
    """The name cleared after each comment: the second comment had no author."""
    sid, _ = saved
    at = _open_snapshot(sid)
    box = at.text_input(key="w_review_author")
    assert "open mode: names are not checked" in box.label
    box.input("cy")
    at.text_area(key="w_rv_comment_text").input("first")
    button(at, "Add comment").click().run()
    assert_clean(at)
    at.text_area(key="w_rv_comment_text").input("second")  # no name typed this time
    button(at, "Add comment").click().run()
    assert_clean(at)
    mine = [c for c in SnapshotStore(db).comments(sid) if c.text in ("first", "second")]
    assert [(c.author, c.text) for c in mine] == [("cy", "first"), ("cy", "second")]
    assert at.text_input(key="w_review_author").value == "cy"


AUTH = {
    "auth": {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "x" * 32,
        "client_id": "gradlens",
        "client_secret": "s",
        "server_metadata_url": "https://id.example/.well-known",
    }
}


def test_sign_in_mode_takes_names_from_st_user(db):
    """With authentication configured, the author is the signed-in user; there is no name box."""
    at = open_app(HOME)
    at.secrets.update(AUTH)
    at.user = {"is_logged_in": True, "name": "Dana Reviewer", "email": "dana@example.com"}
    at.run()
    assert_clean(at)
    assert not [t for t in at.text_input if t.key == "w_review_author"]
    assert any("Signed in as **Dana Reviewer**" in c.value for c in at.caption)
    at.text_input(key="w_review_title").input("signed")
    button(at, "Save snapshot").click().run()
    assert_clean(at)
    (row,) = SnapshotStore(db).list(text="signed")
    assert row.author == "Dana Reviewer"

    out = open_app(HOME)
    out.secrets.update(AUTH)
    out.user = {"is_logged_in": False}
    out.run()
    assert any(b.label == "Sign in" for b in out.button)
    assert not [t for t in out.text_input if t.key == "w_review_author"]


def test_the_list_has_thumbnails_readable_times_and_upload_file_names(db):
    """The list said "upload:46bd…" for an uploaded model, an ISO time, and had no pictures."""
    import io

    import torch
    import torchvision

    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.save(torchvision.models.squeezenet1_1(num_classes=3).state_dict(), buf)
    at = open_app(HOME).run()
    at.file_uploader(key="w_ckpt_file").set_value(("mine.pt", buf.getvalue(), "application/octet-stream"))
    at.selectbox(key="w_ckpt_arch").set_value("squeezenet1_1")
    at.number_input(key="w_ckpt_classes").set_value(3)
    at.run()
    at.button(key="w_ckpt_load").click().run()
    at.text_input(key="w_review_author").input("fay")
    at.text_input(key="w_review_title").input("from an upload")
    button(at, "Save snapshot").click().run()
    assert_clean(at)
    listing = AppTest.from_file(REVIEW, default_timeout=TIMEOUT).run()
    assert_clean(listing)
    table = listing.dataframe[0].value
    row = table[table["Title"] == "from an upload"].iloc[0]
    assert row["Model"] == "uploaded mine.pt (squeezenet1_1)"
    assert row["Image"].startswith("data:image/png;base64,")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC \((just now|\d+ min ago)\)", row["Saved"]), row["Saved"]
    assert all(v.startswith("data:image/png;base64,") for v in table["Image"])


def test_when_reads_like_a_person_would_say_it():
    from datetime import datetime, timezone

    from dashboard.views.review import when

    now = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    assert when("2026-12-01T11:55:00.000000+00:00", now) == "2026-12-01 11:55 UTC (5 min ago)"
    assert when("2026-11-28T12:00:00+00:00", now) == "2026-11-28 12:00 UTC (3 days ago)"
    assert when("not a time", now) == "not a time"


def test_delete_asks_first_then_removes_the_snapshot_and_its_comments(db):
    from methods.review.codec import encode_png
    from methods.review.store import NewSnapshot

    store = SnapshotStore(db)
    sid = store.save(
        NewSnapshot(
            image_png=encode_png(np.full((16, 16, 3), 80, np.uint8)),
            model_id="scenes_vgg",
            author="gil",
            methods=("gradcam",),
            layers=("L",),
            maps={"gradcam": {"L": np.ones((4, 4), np.float32)}},
            title="to delete",
        )
    )
    store.add_comment(sid, author="gil", text="soon gone")
    at = AppTest.from_file(REVIEW, default_timeout=TIMEOUT).run()
    at.selectbox(key="w_rv_open").set_value(sid)
    button(at, "Delete…").click().run()
    assert "cannot be undone" in plain(at.warning[0].value) and "1 comment(s)" in plain(at.warning[0].value)
    button(at, "Keep it").click().run()
    assert store.get(sid).title == "to delete" and not at.warning
    at.selectbox(key="w_rv_open").set_value(sid)
    button(at, "Delete…").click().run()
    button(at, "Delete for good").click().run()
    assert_clean(at)
    assert sid not in [s.id for s in store.list()] and "Deleted snapshot" in plain(at.success[0].value)
    with pytest.raises(KeyError):
        store.get(sid)


def test_stored_fields_render_as_text_on_review(db):
    """A snapshot's title, author, model id, class name, view fields and comment names are shown
    as text: none becomes a link or a remote image."""
    from app_kit import live_markup
    from methods.review.codec import encode_png
    from methods.review.store import NewSnapshot

    evil = "[click](http://evil.example/x) ![i](http://evil.example/i.png)"
    store = SnapshotStore(db)
    sid = store.save(
        NewSnapshot(
            image_png=encode_png(np.full((28, 28, 3), 120, np.uint8)),
            model_id=f"scenes_vgg {evil}",
            author=evil,
            methods=("gradcam",),
            layers=(evil,),
            maps={"gradcam": {evil: np.arange(16, dtype=np.float32).reshape(4, 4)}},
            page="home",
            target_index=1,
            target_name=evil,
            title=evil,
            note=evil,
            view={"page": "home", "layer": evil, "cmap": evil, "model": evil},
            metrics={"top5": [[1, evil, 0.7], [0, "cat", 0.3]], "num_classes": 2},
        )
    )
    store.add_comment(sid, author=evil, text=evil)
    at = _open_snapshot(sid)
    assert not at.exception
    ours = "[Open this view live on its page (runs the model)]("  # our link; the stored values in it are %-encoded
    assert [m for m in live_markup(at) if ours not in m[1]] == []
    assert all("(http" not in m.value for m in at.markdown)
    listing = AppTest.from_file(REVIEW, default_timeout=TIMEOUT).run()
    assert not listing.exception and live_markup(listing) == []
