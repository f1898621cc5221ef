"""The Detection page (dashboard/views/detection/, pages/9_Detection.py): its pure pieces (objects,
boxes drawn, energy in a region, URL fields) and the page under AppTest on the bundled detector and
segmenter; a classification page names the page that fits a detector."""

from __future__ import annotations

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app_kit import REVIEW, TIMEOUT, ForwardCounter, assert_clean, model_calls, plain, run_page
from dashboard.core import pages
from dashboard.core.state import ViewState
from dashboard.views.detection.objects import (
    Obj,
    box_region,
    detected_objects,
    draw_objects,
    energy_inside,
    segmented_objects,
)
from dashboard.views.detection.view import chosen_object
from methods.review.store import SnapshotStore

NAMES = ("background", "circle", "square")


def test_detections_keep_the_models_order_and_drop_weak_ones():
    det = {
        "boxes": np.array([[10, 10, 30, 30], [50, 40, 90, 80], [0, 0, 5, 5]], float),
        "labels": np.array([2, 1, 1]),
        "scores": np.array([0.95, 0.6, 0.1]),
    }
    objs = detected_objects(det, NAMES)
    assert [(o.rank, o.name, o.score) for o in objs] == [(0, "square", 0.95), (1, "circle", 0.6)]
    assert objs[1].box == (50.0, 40.0, 90.0, 80.0) and "#2 circle 0.60" in objs[1].text()
    weak = {"boxes": det["boxes"][2:], "labels": det["labels"][2:], "scores": det["scores"][2:]}
    assert [o.rank for o in detected_objects(weak, NAMES)] == [0]  # nothing strong: the weak one is listed


def test_segments_from_logits():
    logits = np.zeros((3, 8, 10))
    logits[0] = 1.0  # background everywhere ...
    logits[1, 1:3, 2:5] = 5.0  # ... a 2 x 3 circle
    logits[2, 4:8, 0:4] = 5.0  # ... and a 4 x 4 square, the largest
    objs = segmented_objects(logits, NAMES)
    assert [(o.label, o.box) for o in objs] == [(2, (0.0, 4.0, 4.0, 8.0)), (1, (2.0, 1.0, 5.0, 3.0))]
    assert objs[0].score == pytest.approx(16 / 80) and objs[1].mask.sum() == 6


def test_energy_inside_a_region_by_hand():
    m = np.zeros((4, 4))
    m[0, 0], m[3, 3], m[1, 1] = 3.0, 1.0, -5.0  # the negative value does not count
    region = box_region((0, 0, 2, 2), (4, 4))
    assert region.sum() == 4 and region[0, 0] and not region[2, 2]
    assert energy_inside(m, region) == pytest.approx(0.75)
    assert energy_inside(-np.ones((4, 4)), region) == 0.0  # nothing positive: no energy anywhere


def test_the_chosen_box_is_drawn_yellow_the_others_white():
    image = np.zeros((16, 16, 3), np.uint8)
    objs = [Obj(0, 1, "circle", 0.9, (0, 0, 8, 8)), Obj(1, 2, "square", 0.8, (8, 8, 16, 16))]
    big = draw_objects(image, objs, chosen=1, min_side=64)  # 4x
    assert big.shape == (64, 64, 3)
    assert tuple(big[40, 33]) == (255, 221, 0)  # the chosen box's left edge (x = 8 * 4 + 1), below its tag
    assert tuple(big[20, 0]) == (255, 255, 255)  # the other box's left edge (1 px, black around)
    assert tuple(big[20, 20]) == (0, 0, 0)  # inside: the image untouched


def test_the_view_names_the_object():
    objs = [Obj(0, 1, "circle", 0.9, (0, 0, 8, 8)), Obj(1, 2, "square", 0.8, (8, 8, 16, 16))]
    assert chosen_object(ViewState(box=1), objs, "detection") == (objs[1], "")
    obj, message = chosen_object(ViewState(box=7), objs, "detection")
    assert obj is objs[0] and "#8 is not among the 2" in message
    assert chosen_object(ViewState(target=2), objs, "segmentation")[0] is objs[1]
    state, messages = ViewState.from_query({"box": "2", "region": "box"})
    assert (state.box, state.region, messages) == (2, "box", [])
    state, messages = ViewState.from_query({"box": "-1", "region": "blob"})
    assert (state.box, state.region) == (0, "mask") and len(messages) == 2


def test_pages_for_tasks():
    assert pages.page_for_task("detection").key == "detection"
    assert pages.page_for_task("segmentation").key == "detection"
    assert pages.page_for_task("classification").key == "methods"


# ------------------------------------------------------------------------------------------ AppTest


def test_a_classification_page_points_a_detector_to_the_detection_page():
    at = run_page("methods", model="scenes_det")
    assert_clean(at)
    text = " ".join(plain(m.value) for m in at.markdown)
    assert "Scenes detector (bundled) is a detector" in text and "Detection and segmentation page" in text
    assert not at.image  # no map drawn for a model the page cannot explain


def test_the_detection_page_points_a_classifier_to_methods():
    at = run_page("detection", model="scenes_vgg")
    assert_clean(at)
    assert "is a classifier" in " ".join(plain(m.value) for m in at.markdown)


def test_detection_page_boxes_pick_and_maps():
    """The two-object default scene: two boxes; picking #2 writes box=1 to the URL and the maps follow."""
    at = run_page("detection", model="scenes_det")
    assert_clean(at)
    box = at.selectbox(key="w_box")
    assert len(box.options) >= 2
    caption = at.image[0].proto.imgs[0].caption
    assert "object(s) reported" in caption
    box.select(box.options[1] and 1).run()
    assert_clean(at)
    assert at.query_params.get("box") in (["1"], "1")
    energies = at.dataframe[0].value["Energy in region"]
    assert len(energies) >= 3 and np.nanmax(energies) > 0


def test_segmentation_page_class_and_region():
    at = run_page("detection", model="scenes_seg")
    assert_clean(at)
    cls = at.selectbox(key="w_seg_class")
    assert len(cls.options) >= 2
    at.radio(key="w_region").set_value("box").run()
    assert_clean(at)
    assert at.query_params.get("region") in (["box"], "box")


def test_save_to_review_reopens_without_the_model(db):
    """The chosen detection's view saved, then opened on Review: same images, same energy table,
    the deletion curve; no forward of the detector and no model computation."""
    at = run_page("detection", model="scenes_det", query={"box": "1"})
    assert_clean(at)
    at.text_input(key="w_review_author").input("ana")
    at.text_input(key="w_review_title").input("second box")
    (save,) = [b for b in at.button if b.label == "Save snapshot"]
    save.click().run()
    assert_clean(at)
    (row,) = SnapshotStore(db).list(text="second box")
    assert row.page == "detection"
    snap = SnapshotStore(db).get(row.id)
    assert snap.metrics["extras"]["detection"]["chosen"] == 1 and snap.target_index == 1
    st.cache_data.clear()
    calls, counter = model_calls(), ForwardCounter("scenes_det")
    try:
        opened = AppTest.from_file(REVIEW, default_timeout=TIMEOUT)
        opened.query_params["snapshot"] = row.id
        opened.run()
    finally:
        counter.close()
    assert_clean(opened)
    assert counter.count == 0 and model_calls() == calls
    assert [i.proto.imgs[0].caption for i in opened.image] == [i.proto.imgs[0].caption for i in at.image]
    a, b = opened.dataframe[0].value, at.dataframe[0].value
    assert list(a["Layer"]) == list(b["Layer"]) and np.allclose(a["Energy in region"], b["Energy in region"])
    assert len(opened.get("plotly_chart")) == len(at.get("plotly_chart")) == 1


def test_the_pictures_caption_shows_a_class_name_as_text():
    """A checkpoint's class name is user text: under the boxes it is escaped, never a link or an image."""
    from types import SimpleNamespace

    from dashboard.views.detection.draw import objects_caption

    hostile = Obj(
        rank=0,
        label=1,
        name="![x](http://127.0.0.1:8999/x.png) [Click](http://evil)",
        score=0.9,
        box=(1.0, 2.0, 3.0, 4.0),
    )
    caption = objects_caption(SimpleNamespace(objects=(hostile,), chosen=hostile))
    assert "\\!\\[x\\]" in caption and "\\[Click\\]" in caption and "](http" not in caption
    assert plain(caption).startswith("1 object(s) reported by the model; explained: #1 ![x]")
