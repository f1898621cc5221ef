"""The Sanity page (dashboard/pages/7_Sanity.py) under AppTest: the strips, the chart, the verdicts
and the class-sensitivity section equal ``methods.sanity_check`` / ``methods.class_sensitivity``
computed here on the same model and image; a saved check reopens on Review without the model."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

import methods
from app_kit import REVIEW, TIMEOUT, ForwardCounter, as_array, assert_clean, model_calls, plain, plotly_specs, run_page
from dashboard.app import cache
from dashboard.core import menus
from dashboard.views.sanity import PER_ROW, class_picks, number
from methods.review.store import SnapshotStore


def test_sanity_page_shows_the_librarys_numbers_and_reopens_without_the_model(db):
    at = run_page("sanity", {"methods": "gradcam,random"})
    assert_clean(at)
    loaded = cache.model_handle("scenes_vgg").loaded
    image = menus.load_sample(menus.default_image("scenes_vgg"))
    x = torch.as_tensor(loaded.preprocess(image))[None]
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    res = {m: methods.sanity_check(loaded, x, method=m, mode="cascading", seed=0) for m in ("gradcam", "random")}
    probs = torch.softmax(loaded.model(x), dim=1)[0].detach().numpy()
    picks = class_picks(probs, res["gradcam"].target, 3)  # top-1, least likely, top-2
    assert picks[1] == int(probs.argmin()) and picks[2] == int(np.argsort(-probs)[1])
    cls = {m: methods.class_sensitivity(loaded, x, method=m, classes=list(picks)) for m in ("gradcam", "random")}
    assert all(torch.equal(v, loaded.model.state_dict()[k]) for k, v in before.items())  # never touched
    captions = [plain(i.proto.imgs[0].caption) for i in at.image]  # markdown, names escaped
    n = len(res["gradcam"].steps)
    assert n == 8 and res["gradcam"].steps[1] == "classifier"
    for r, m in enumerate(("gradcam", "random")):
        want = [
            f"{k}: {s} · ρ\u00a0{number(v)}"
            for k, (s, v) in enumerate(zip(res[m].steps, res[m].similarity["spearman"]))
        ]
        assert captions[r * n : (r + 1) * n] == want
    names = loaded.class_names
    c = cls["gradcam"]
    assert captions[2 * n : 2 * n + 3] == [f"{names[c.classes[0]]} ({c.probs[0]:.1%}) · reference"] + [
        f"{names[c.classes[j]]} ({c.probs[j]:.1%}){' · least likely' if j == 1 else ''} · "
        f"IoU\u00a0{number(c.agreements[j - 1].iou_top)} · ρ\u00a0{number(c.agreements[j - 1].spearman)}"
        for j in (1, 2)
    ]
    # the verdict names the classes, top-1 against the least likely (not a near-synonym)
    criterion = cls["gradcam"].verdict().criterion
    assert f'between the maps of "{names[picks[0]]}" ({picks[0]}) and "{names[picks[1]]}" ({picks[1]})' in criterion
    said = [plain(b.value) for b in list(at.success) + list(at.warning) + list(at.info)]
    for m in ("gradcam", "random"):
        v = res[m].verdict()
        assert f"{v.text} Criterion: {v.criterion}." in said, (v.text, said)
        w = cls[m].verdict()
        assert f"{w.text} Criterion: {w.criterion}." in said
    assert any("1810.03292" in md.value for md in at.markdown)
    (spec,) = plotly_specs(at)
    by_name = {t["name"]: t for t in spec["data"]}
    np.testing.assert_allclose(
        as_array(by_name["Grad-CAM: Spearman"]["y"]), res["gradcam"].similarity["spearman"], atol=1e-9
    )
    np.testing.assert_allclose(as_array(by_name["Random: SSIM"]["y"]), res["random"].similarity["ssim"], atol=1e-9)
    prob = [t for t in spec["data"] if t["name"].startswith("p(")][0]
    np.testing.assert_allclose(as_array(prob["y"]), res["gradcam"].probs, atol=1e-6)
    assert prob["yaxis"] == "y2"  # the probability on the second axis

    calls = model_calls()
    at.selectbox(key="w_cmap").select("viridis").run()
    assert_clean(at)
    assert model_calls() == calls  # colours from the cached results

    at.text_input(key="w_review_author").input("ana")
    at.text_input(key="w_review_title").input("sanity vgg")
    (save,) = [b for b in at.button if b.label == "Save snapshot"]
    save.click().run()
    assert_clean(at)
    (row,) = SnapshotStore(db).list(text="sanity vgg")
    assert row.page == "sanity"
    st.cache_data.clear()
    calls = model_calls()
    counter = ForwardCounter()
    try:
        opened = AppTest.from_file(REVIEW, default_timeout=TIMEOUT)
        opened.query_params["snapshot"] = row.id
        opened.run()
    finally:
        counter.close()
    assert_clean(opened)
    assert counter.count == 0 and model_calls() == calls
    assert [plain(i.proto.imgs[0].caption) for i in opened.image][: 2 * n + 3] == captions[: 2 * n + 3]


def test_independent_mode_has_no_verdict_but_says_why():
    """Issue 25: the same info box repeated once per method; it is said once."""
    at = run_page("sanity", {"methods": "gradcam,random", "mode": "independent"})
    assert_clean(at)
    assert sum("Independent mode" in plain(i.value) for i in at.info) == 1


def test_strips_keep_their_captions_readable():
    """Issue 25: eight pictures in eight columns wrapped captions per character and split "-0.0 / 8"
    across lines. A strip is drawn in rows of at most PER_ROW pictures, and a negative number carries
    a minus sign (U+2212) that no browser breaks after, joined to its symbol by a no-break space."""
    assert PER_ROW <= 5 and number(-0.03) == "\u22120.03" and number(0.5) == "0.50"
    at = run_page("sanity", {"methods": "gradcam"})
    assert_clean(at)
    strip = [i for i in at.image if i.proto.imgs[0].caption[:1].isdigit()]
    assert len(strip) == 8
    assert all("-" not in i.proto.imgs[0].caption.split("ρ")[-1] for i in strip)
    rows = []  # the column rows holding strip pictures: how many columns each has

    def walk(node):
        kids = list(getattr(node, "children", {}).values())
        cols = [k for k in kids if getattr(k, "type", None) == "column"]
        if any(
            getattr(e, "type", None) == "image" and e.proto.imgs[0].caption[:1].isdigit()
            for c in cols
            for e in c.children.values()
        ):
            rows.append(len(cols))
        for k in kids:
            walk(k)

    walk(at.main)
    assert rows == [PER_ROW, PER_ROW], rows  # 8 pictures: two rows of five columns (the last row 3 + 2 empty)


def test_a_note_reaches_the_sanity_page_and_its_verdict(noted_method):
    """Issue 25: a map's notes are shown beside the strip, and the verdict drawn from it says so."""
    at = run_page("sanity", {"methods": "test_notedcam"})
    assert_clean(at)
    notes = [plain(w.value) for w in at.warning if "test note" in w.value]
    assert notes and notes[0] == "Test-Noted-CAM: test note: this map is partly made up"
    said = [plain(b.value) for b in list(at.success) + list(at.warning) + list(at.info)]
    assert any("This verdict comes from a map with a note" in t for t in said), said


def test_a_slow_method_waits_for_its_button(slow_method):
    at = run_page("sanity", {"methods": "test_slowcam"})
    assert_clean(at)
    assert any("Test-Slow-CAM is slow" in m.value for m in at.markdown) and not at.image
    at.button(key="sanity_run_cascade_test_slowcam").click().run()
    assert_clean(at)
    at.button(key="sanity_run_classes_test_slowcam").click().run()
    assert_clean(at)
    assert len([i for i in at.image if i.proto.imgs[0].caption[:1].isdigit()]) == 8  # the strip: trained + 7 blocks
    assert any("reference" in i.proto.imgs[0].caption for i in at.image)
