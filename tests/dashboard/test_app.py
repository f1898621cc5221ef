"""The dashboard pages under ``streamlit.testing.v1.AppTest``: widgets in, elements out.

AppTest runs the page scripts in this process, so the tests can reach the same cached model
objects as the pages (``cache.model_handle``) and count their forward passes with a hook.

The tests run on the bundled ``scenes_vgg`` (weights in ``methods/assets``: no download), named in
each link by ``app_kit.run_page`` / ``open_app``; the app's own default (EfficientNet-Lite0 on
chelsea) is tested in test_imagenet.py.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

import methods
from app_kit import (
    HOME,
    PAGES,
    ROOT,
    TIMEOUT,
    ForwardCounter,
    as_array,
    assert_clean,
    live_markup,
    map_images,
    model_calls,
    open_app,
    plain,
    plotly_specs,
    run_page,
    texts,
)
from dashboard.app import cache
from dashboard.core import pages, services


def test_home_shows_prediction_views_and_the_method_table():
    at = run_page()
    assert_clean(at)
    assert [t.value for t in at.title] == ["GradLens"]
    heads = [h.value for h in at.subheader]
    assert {"Prediction", "How to read this", "Methods in the library"} <= set(heads)
    assert any(h.startswith("Grad-CAM for") for h in heads)
    assert len(map_images(at)) == 4  # original, grayscale, heatmap, overlay
    assert len(at.image) == 5  # and the colour bar under them
    top5, table = at.dataframe
    assert len(top5.value) == 5
    assert top5.value["Probability"].is_monotonic_decreasing
    assert list(table.value["Key"]) == [s.name for s in methods.list_methods()]
    assert {"Method", "Family", "Cost", "Paper", "Summary"} <= set(table.value.columns)
    assert len(at.get("download_button")) == 3


@pytest.mark.parametrize("page", ["methods", "layers", "normalization"])
def test_analysis_pages_render(page):
    at = run_page(page)
    assert_clean(at)
    assert [t.value for t in at.title] == [pages.page(page).title]
    assert "page" not in at.query_params  # the path names the page
    if page == "methods":
        (spec,) = plotly_specs(at)
        assert [t["type"] for t in spec["data"]].count("heatmap") == len(at.multiselect(key="w_methods").value)
    elif page == "layers":
        blocks = cache.block_infos(cache.model_handle("scenes_vgg"))
        assert len(map_images(at)) == len(blocks) == 7  # a map for every block output (of 22 candidate layers)
        assert at.image[0].proto.imgs[0].caption.startswith(blocks[0].name)
        assert len(plotly_specs(at)) == 1  # the concentration chart
    else:
        assert len(at.image) == 2 * len(services.NORM_MODES)  # every mode, with and without ReLU
        assert len(plotly_specs(at)) == 2 * len(services.NORM_MODES)  # a histogram under each
        assert any("Why both" in m.value for m in at.markdown)


def test_methods_page_says_the_pass_is_shared_and_notes_maps_equal_by_mathematics():
    """Issue 25: the "Seconds" column repeated the shared pass for every method without saying so,
    and Grad-CAM, XGrad-CAM and HiResCAM drew the same map at a layer that feeds global average
    pooling and a linear head (scenes_vgg ``features.20``) with no note. Measured: their min-max maps
    differ by at most 1.8e-7 there."""
    at = run_page("methods", {"methods": "gradcam,xgradcam,hirescam,gradcampp"})
    assert_clean(at)
    table = at.dataframe[0].value
    assert "Seconds" not in table.columns
    assert "Seconds (incl. the shared forward+backward, counted once per method)" in table.columns
    captions = " ".join(plain(c.value) for c in at.caption)
    assert "share ONE forward and backward pass" in captions and "do not add up" in captions
    info = texts(at.info)
    assert "Grad-CAM, XGrad-CAM and HiResCAM draw the same map at layer features.20" in info, info
    assert "mathematics, not chance" in info and "global average pooling and a linear head" in info
    assert "Grad-CAM++" not in info.split("draw the same map")[0]  # a different map: not in the group


def test_method_menu_comes_from_the_registry():
    at = run_page("methods")
    expected = [s.label + (" (slow)" if s.is_slow else "") for s in methods.list_methods()]
    assert at.multiselect(key="w_methods").options == expected


def test_layers_page_uses_one_explain_call_for_all_layers():
    at = run_page("layers")
    before = cache.MODEL_CALLS["explain"]
    at.selectbox(key="w_method").set_value("xgradcam").run()  # a method not computed before
    assert_clean(at)
    assert cache.MODEL_CALLS["explain"] == before + 1
    assert len(map_images(at)) == len(cache.block_infos(cache.model_handle("scenes_vgg")))


def test_layers_subset_in_forward_order_and_in_the_url():
    at = run_page("layers")
    rows, default = cache.layer_infos(cache.model_handle("scenes_vgg"))
    picked = [rows[-1].name, rows[0].name, rows[len(rows) // 2].name]  # out of order on purpose
    at.multiselect(key="w_layers").set_value(picked).run()
    assert_clean(at)
    forward = sorted(picked, key=[r.name for r in rows].index)
    assert [img.proto.imgs[0].caption.split(" · ")[0] for img in map_images(at)] == forward
    assert at.query_params["layers"] == ",".join(forward)
    calls = model_calls()
    at.radio(key="w_scope").set_value("shared").run()  # one scale across layers: display only
    assert not at.exception and model_calls() == calls
    assert "One shared scale" in at.caption[0].value


# ------------------------------------------------------------------------------------------
# the cache boundary: display choices never run the model


def test_normalization_colormap_and_alpha_never_run_the_model():
    at = run_page("methods")
    assert_clean(at)
    counter = ForwardCounter()
    try:
        calls = model_calls()
        spec_before = plotly_specs(at)[0]
        changes = [
            ("selectbox", "w_norm", "max"),
            ("checkbox", "w_relu", False),
            ("radio", "w_scope", "shared"),
            ("selectbox", "w_norm", "percentile"),
            ("slider", "w_pct", (5.0, 95.0)),
            ("selectbox", "w_cmap", "viridis"),
            ("slider", "w_alpha", 0.8),
        ]
        for kind, key, value in changes:
            getattr(at, kind)(key=key).set_value(value).run()
            assert_clean(at)
            assert counter.count == 0, f"changing {key} ran the model"
            assert model_calls() == calls, f"changing {key} missed the cache"
        spec_after = plotly_specs(at)[0]
        heat = [t for t in spec_after["data"] if t["type"] == "heatmap"][0]
        assert heat["opacity"] == 0.8
        assert spec_after != spec_before  # the picture did change
        # positive control: a new method does run the model, once
        at.multiselect(key="w_methods").select("hirescam").run()
        assert_clean(at)
        assert counter.count >= 1 and model_calls() == calls + 1
    finally:
        counter.close()


def test_home_colormap_and_alpha_changes_hit_the_cache():
    at = run_page()
    counter = ForwardCounter()
    try:
        first = at.image[3].proto.imgs[0].url
        at.selectbox(key="w_cmap").set_value("inferno").run()
        at.slider(key="w_alpha").set_value(0.2).run()
        assert_clean(at)
        assert counter.count == 0
        assert at.image[3].proto.imgs[0].url != first
    finally:
        counter.close()


# ------------------------------------------------------------------------------------------
# state across pages and in the URL


def test_choices_persist_across_pages_and_live_in_the_url():
    at = open_app(HOME).run()
    at.selectbox(key="w_cmap").set_value("viridis").run()
    at.slider(key="w_alpha").set_value(0.3).run()
    at.selectbox(key="w_norm").set_value("max").run()
    assert at.query_params["cmap"] == "viridis" and at.query_params["alpha"] == "0.3"
    at.switch_page(PAGES["normalization"]).run()
    assert_clean(at)
    at.switch_page(PAGES["methods"]).run()
    assert_clean(at)
    assert at.selectbox(key="w_cmap").value == "viridis"
    assert at.slider(key="w_alpha").value == 0.3
    assert at.selectbox(key="w_norm").value == "max"
    assert "page" not in at.query_params and at.query_params["norm"] == "max"


def test_a_link_restores_the_view():
    query = {
        "page": "methods",
        "cmap": "turbo",
        "alpha": "0.7",
        "methods": "layercam,gradcam",
        "norm": "max",
        "relu": "0",
        "scope": "shared",
        "target": "2",
        "layer": "features.13",
    }
    at = open_app(str(ROOT / "dashboard" / PAGES["methods"]))
    at.query_params.update(query)
    at.run()
    assert_clean(at)
    assert not at.warning, [w.value for w in at.warning]
    assert at.selectbox(key="w_cmap").value == "turbo"
    assert at.slider(key="w_alpha").value == 0.7
    assert at.multiselect(key="w_methods").value == ["layercam", "gradcam"]
    assert at.selectbox(key="w_norm").value == "max" and at.checkbox(key="w_relu").value is False
    assert at.radio(key="w_scope").value == "shared"
    assert at.selectbox(key="w_target").value == 2
    assert at.selectbox(key="w_layer").value == "features.13"
    assert "features.13" in plain(at.caption[0].value)
    for key, value in query.items():
        assert at.query_params.get(key) == (None if key == "page" else value)  # the path names the page


def test_a_hand_edited_link_falls_back_with_messages():
    query = {
        "alpha": "7",
        "cmap": "rainbow",
        "layer": "features.99",
        "model": "upload:0badc0de",
        "image": "upload:feedbeef",
        "target": "5000",
        "bogus": "1",
    }  # no model has 5000 classes
    at = open_app(str(ROOT / "dashboard" / PAGES["methods"]))
    at.query_params.update(query)
    at.run()
    assert_clean(at)
    warnings = texts(at.warning)
    for words in (
        "alpha='7'",
        "rainbow",
        "'features.99' is not a layer",
        "uploaded checkpoint",
        "uploaded image",
        "cannot travel in a URL",
        "Target class 5000 does not exist",
        "'bogus'",
    ):
        assert words in warnings, words
    assert at.selectbox(key="w_layer").value == ""  # the default layer
    assert len(plotly_specs(at)) == 1  # the page still draws
    assert "alpha" not in at.query_params and "bogus" not in at.query_params


# ------------------------------------------------------------------------------------------
# a saved view redraws from its state and stored raw maps, without the model


def test_render_view_from_preloaded_maps_runs_no_model():
    script = """
import numpy as np
from dashboard.app import capture, navigation
from dashboard.core.services import MapBundle
from dashboard.core.state import ViewState

ramp = np.arange(64, dtype=np.float32).reshape(8, 8) - 10.0
bundle = MapBundle(image=np.full((32, 32, 3), 90, np.uint8), maps={"gradcam": {"L": ramp}, "layercam": {"L": -ramp}},
                   target=1, probs=np.array([0.2, 0.8]), class_names=("cat", "dog"), seconds={})
state = ViewState(page=PAGE, methods=("gradcam", "layercam"), method="gradcam", layer="L", cmap="viridis")
with capture.preloaded(bundle):
    navigation.render_view(state)
"""
    calls = model_calls()
    at = AppTest.from_string(script.replace("PAGE", '"methods"'), default_timeout=TIMEOUT).run()
    assert_clean(at)
    (spec,) = plotly_specs(at)
    heat = [t for t in spec["data"] if t["type"] == "heatmap"]
    assert len(heat) == 2
    custom = (
        as_array(heat[1]["customdata"]).reshape(8, 8, 3)
        if isinstance(heat[1]["customdata"], dict)
        else np.asarray(heat[1]["customdata"])
    )
    np.testing.assert_allclose(custom[..., 0], -(np.arange(64).reshape(8, 8) - 10.0))
    assert "dog" in at.caption[0].value
    at = AppTest.from_string(script.replace("PAGE", '"normalization"'), default_timeout=TIMEOUT).run()
    assert_clean(at)
    assert len(at.image) == 2 * len(services.NORM_MODES)
    assert model_calls() == calls  # nothing was computed


# ------------------------------------------------------------------------------------------
# errors: st.error with the library's message, never a traceback


def test_shown_errors_turns_library_errors_into_messages():
    script = """
import streamlit as st
from dashboard.app.errors import shown_errors
from methods.errors import ImageError, OptionError
with shown_errors("Image"):
    raise ImageError("the file is truncated")
with shown_errors():
    raise OptionError("alpha=2 must be in [0, 1]")
st.write("still running")
"""
    at = AppTest.from_string(script, default_timeout=60).run()
    assert not at.exception
    assert [plain(e.value) for e in at.error] == ["Image: The file is truncated", "Alpha=2 must be in [0, 1]"]
    assert at.markdown[0].value == "still running"
    assert not at.expander  # a library error is its own message: no details to show


@pytest.mark.parametrize(
    "bug", ["RuntimeError('tensor a (3) must match b (4)')", "ValueError('alpha=2 must be in [0, 1]')"]
)
def test_any_other_exception_is_a_short_message_with_an_error_id_and_a_log_line(bug, caplog):
    """A bug (a plain ValueError too: never mistaken for a validation message) becomes a short
    message with an error id; the traceback goes to the server log under that id, never to the
    viewer (it would show server paths and code)."""
    script = f"""
import streamlit as st
from dashboard.app.errors import shown_errors
with shown_errors(doing="drawing the test maps"):
    raise {bug}
st.write("still running")
"""
    with caplog.at_level("ERROR", logger="dashboard"):
        at = AppTest.from_string(script, default_timeout=60).run()
    assert not at.exception  # no raw traceback box
    (error,) = at.error
    shown = plain(error.value)
    assert shown.startswith("Something went wrong while drawing the test maps.")
    assert "Traceback" not in shown and "must" not in shown and ".py" not in shown and "/" not in shown
    assert not at.expander and not at.code  # no details to a viewer
    ident = re.search(r"Error id ([0-9a-f]{8})", shown).group(1)
    assert at.markdown[0].value == "still running"
    logged = [r for r in caplog.records if r.name == "dashboard" and r.levelname == "ERROR"]
    assert logged and logged[0].exc_info is not None and "drawing the test maps" in logged[0].getMessage()
    assert ident in logged[0].getMessage()


def test_model_without_weights_names_the_expected_file(tmp_path, monkeypatch):
    """An empty torch hub (``$TORCH_HOME``) makes the verdict the same on every machine, whatever
    weights its own cache holds."""
    from methods import models as zoo

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    missing = next(e for e in zoo.list_models() if e.source == "torchvision" and not e.available)
    assert str(missing.expected_file).startswith(str(tmp_path))
    at = run_page()
    at.selectbox(key="w_model").set_value(missing.name).run()
    assert not at.exception
    notice = " ".join(w.value for w in at.sidebar.warning)
    assert str(missing.expected_file) in notice
    assert not at.error, texts(at.error)  # no failed load: the page says how to get the weights instead
    panel = " ".join(m.value for m in at.main.markdown)
    assert str(missing.expected_file) in panel and "Download weights" in " ".join(b.label for b in at.button)
    assert not map_images(at)
    assert at.selectbox(key="w_model").value == missing.name


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_image_upload_broken_then_constant():
    at = run_page()
    at.file_uploader(key="w_image_upload").upload("holiday.png", b"\x89PNG\r\n\x1a\n truncated", "image/png").run()
    assert not at.exception
    assert any("holiday.png" in plain(e.value) and "corrupt" in e.value.lower() for e in at.sidebar.error), [
        e.value for e in at.error
    ]
    assert not at.selectbox(key="w_image").value.startswith("upload:")

    grey = np.full((96, 96, 3), 128, np.uint8)
    at.file_uploader(key="w_image_upload").set_value(("grey.png", _png(grey), "image/png")).run()
    assert_clean(at)
    assert at.selectbox(key="w_image").value.startswith("upload:")
    assert "image" in at.query_params and at.query_params["image"].startswith("upload:")
    assert len(map_images(at)) == 4


def _checkpoint(num_classes: int) -> bytes:
    import torchvision

    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.save(torchvision.models.squeezenet1_1(num_classes=num_classes).state_dict(), buf)
    return buf.getvalue()


def test_checkpoint_upload_garbage_wrong_classes_then_right():
    at = run_page()
    at.file_uploader(key="w_ckpt_file").upload("junk.pt", b"definitely not a checkpoint").run()
    at.selectbox(key="w_ckpt_arch").set_value("squeezenet1_1").run()
    at.button(key="w_ckpt_load").click().run()
    assert not at.exception
    (error,) = at.sidebar.error  # the library's message, once, in the panel
    assert "checkpoint" in plain(error.value).lower(), error.value
    assert at.selectbox(key="w_model").value == "scenes_vgg"
    assert at.session_state["w_ckpt_open"] is True  # the panel stays open...
    assert at.selectbox(key="w_ckpt_arch").value == "squeezenet1_1"  # ...with the architecture as chosen

    data = _checkpoint(3)
    at.file_uploader(key="w_ckpt_file").set_value(("mine.pt", data, "application/octet-stream"))
    at.number_input(key="w_ckpt_classes").set_value(5)
    at.run()
    at.button(key="w_ckpt_load").click().run()
    assert not at.exception
    (error,) = at.sidebar.error
    assert "num_classes" in plain(error.value), error.value
    assert not at.error[1:], [e.value for e in at.error]  # said once: not on the page too
    assert at.session_state["w_ckpt_open"] is True and at.number_input(key="w_ckpt_classes").value == 5

    at.number_input(key="w_ckpt_classes").set_value(3)
    at.text_area(key="w_ckpt_names").set_value("apple\nbanana\ncherry")
    at.run()
    at.button(key="w_ckpt_load").click().run()
    assert_clean(at)
    assert at.selectbox(key="w_model").value.startswith("upload:")
    assert set(at.dataframe[0].value["Class"]) == {"apple", "banana", "cherry"}
    assert len(map_images(at)) == 4


# ------------------------------------------------------------------------------------------
# slow methods wait for a button, then come from the cache


@pytest.mark.parametrize("slow_method", [4], indirect=True)
def test_slow_method_shows_its_cost_and_runs_on_the_button(slow_method):
    assert methods.get_method("test_slowcam").is_slow
    at = run_page("methods")
    at.multiselect(key="w_methods").select("test_slowcam").run()
    assert_clean(at)
    assert any("Test-Slow-CAM is slow" in m.value and "8 forwards" in m.value for m in at.markdown)
    (spec,) = plotly_specs(at)
    assert "Test-Slow-CAM" not in str(spec["layout"]["annotations"])  # not run yet
    assert slow_method.progress_seen == []

    at.button(key="methods_run_test_slowcam").click().run()
    assert_clean(at)
    (spec,) = plotly_specs(at)
    assert "Test-Slow-CAM" in str(spec["layout"]["annotations"])
    assert slow_method.progress_seen == [1, 2, 3, 4]  # the progress callback reached the method

    calls = model_calls()
    at.selectbox(key="w_cmap").set_value("magma").run()  # no button press this time
    assert_clean(at)
    assert "Test-Slow-CAM" in str(plotly_specs(at)[0]["layout"]["annotations"])
    assert model_calls() == calls


# ------------------------------------------------------------------------------------------
# faithfulness


def test_faithfulness_curves_table_and_perturbed_images():
    at = run_page("faithfulness")
    assert_clean(at)
    at.slider(key="w_steps").set_value(10).run()
    assert not plotly_specs(at)  # waits for the button
    assert any("forward passes" in m.value for m in at.markdown)
    at.button(key="faith_run").click().run()
    assert_clean(at)
    (spec,) = plotly_specs(at)
    names = {t["name"] for t in spec["data"]}
    assert {"Random map (reference)", "Centre map (reference)", "Grad-CAM"} <= names
    assert all(len(as_array(t["x"])) == 11 for t in spec["data"])  # steps + 1 points
    deletion = next(t for t in spec["data"] if t["name"] == "Grad-CAM" and t["xaxis"] == "x")
    assert as_array(deletion["x"])[0] == 0.0 and as_array(deletion["x"])[-1] == 1.0
    auc = at.dataframe[0].value
    assert len(auc) == len(at.multiselect(key="w_methods").value) + 2
    assert auc["Deletion AUC (lower is better)"].between(0, 1).all()
    assert len(at.image) == 2
    calls = model_calls()
    at.slider(key="w_step").set_value(5).run()  # moving the step never re-runs the curves
    assert_clean(at)
    assert model_calls() == calls and at.query_params["step"] == "5"


def test_faithfulness_says_per_method_whether_it_beats_each_reference_on_this_image_only():
    """Issue 25: the page gave AUCs without saying whether the method beats the random and centre
    maps, nor that one image cannot tell; it now says both and links to the Benchmark page."""
    at = run_page("faithfulness", {"steps": "5"})
    at.button(key="faith_run").click().run()
    assert_clean(at)
    auc = at.dataframe[0].value
    said = " ".join(plain(m.value) for m in at.markdown)
    row = auc.set_index("Map")
    for kind, column in (
        ("deletion", "Deletion AUC (lower is better)"),
        ("insertion", "Insertion AUC (higher is better)"),
    ):
        mine = row.loc["Grad-CAM", column]
        found = re.search(rf"On this image Grad-CAM's {kind} AUC \(([\d.]+)\) is ([^\n]*)", said)
        assert found, said
        assert float(found[1]) == pytest.approx(mine, abs=1e-3)
        for ref, label in (("random", "Random map (reference)"), ("centre", "Centre map (reference)")):
            theirs = row.loc[label, column]
            shown = re.search(rf"the {ref} map's \(([\d.]+)\)", found[2])
            assert shown and float(shown[1]) == pytest.approx(theirs, abs=1e-3), found[2]
            beats = (mine < theirs if kind == "deletion" else mine > theirs) and abs(mine - theirs) >= 1e-3
            conclusion = found[2].split(": ", 1)[1]  # "it beats ... here."
            if beats:
                assert "both" in conclusion or f"beats the {ref}" in conclusion, conclusion
            elif abs(mine - theirs) >= 1e-3:
                assert re.search(rf"not( beat)? the (\w+ or the )?{ref}", conclusion), conclusion
    caveat = texts(at.info)
    assert "One image is not evidence" in caveat and "no verdict on a method" in caveat and "Benchmark page" in caveat
    links = at.get("page_link")
    assert any("Benchmark" in link.proto.label for link in links)


def test_faithfulness_page_started_on_its_own_says_where_the_benchmark_page_is():
    """A page file run on its own has no page list: the Benchmark link becomes a line of text."""
    at = open_app(str(ROOT / "dashboard" / PAGES["faithfulness"]), {"steps": "5"})
    at.run()
    at.button(key="faith_run").click().run()
    assert_clean(at)
    assert "One image is not evidence" in texts(at.info)
    assert any("streamlit run dashboard/Home.py" in plain(c.value) for c in at.caption)


def test_faithfulness_baseline_defaults_to_blur_like_the_library():
    """Issue 25: the menu defaulted to RISE's pairing (deletion to zero) while the library and
    ``methods.evaluate`` default to blur for both curves."""
    from methods.metrics.faithfulness import curves

    assert curves.DEFAULT_BASELINES == {"deletion": "blur", "insertion": "blur"}
    at = run_page("faithfulness")
    assert_clean(at)
    menu = at.selectbox(key="w_baseline")
    assert menu.value == "blur" and menu.options[0].startswith("blur")
    assert "baseline" not in at.query_params  # the default is not spelled out in the link


# ------------------------------------------------------------------------------------------
# one image context per run


def test_the_image_is_preprocessed_once_per_page_run(monkeypatch):
    """The sidebar's prediction, the maps, the model's view of the image and the curves all use
    the one context the run made: LoadedModel.preprocess runs exactly once per script run."""
    from methods.models.loaded import LoadedModel

    calls = []
    real = LoadedModel.preprocess

    def spy(self, image):
        calls.append(image.shape)
        return real(self, image)

    monkeypatch.setattr(LoadedModel, "preprocess", spy)
    at = open_app(HOME).run()
    assert_clean(at)
    assert len(calls) == 1, calls
    for page in ("methods", "layers", "normalization"):
        calls.clear()
        at.switch_page(PAGES[page]).run()
        assert_clean(at)
        assert len(calls) == 1, (page, calls)
    calls.clear()
    at.selectbox(key="w_cmap").set_value("viridis").run()  # a rerun of the same page
    assert len(calls) == 1, calls
    at.switch_page(PAGES["faithfulness"]).run()
    at.slider(key="w_steps").set_value(10).run()
    calls.clear()
    at.button(key="faith_run").click().run()  # maps, curves, references and perturbed images
    assert_clean(at)
    assert len(at.image) == 2
    assert len(calls) == 1, calls


def test_map_notes_and_precision_are_shown_beside_the_maps_and_saved(monkeypatch):
    """A method's notes (Explanation.notes) and a precision other than fp32 reach the page, next to
    the maps, and travel with the bundle a snapshot stores (bundle_of reads them back)."""
    from dashboard.app import save_panel
    from dashboard.core.state import ViewState
    from methods import ForwardMethod, GradLensWarning, register_method
    from methods.cams.core.registry import _REGISTRY

    @register_method(
        name="test_notedcam",
        label="Test-Noted-CAM",
        family="score",
        cost="0 forwards",
        summary="test only: the channel mean, with a note",
    )
    class NotedCam(ForwardMethod):
        def compute_layer(self, ctx):
            import warnings

            warnings.warn("a note <b>for</b> the [reader](http://x)", GradLensWarning, stacklevel=2)
            return ctx.activations.mean(dim=1)  # (N, h, w)

    try:
        monkeypatch.setenv("GRADLENS_PRECISION", "bf16")
        at = run_page("methods", {"methods": "gradcam,scorecam,test_notedcam"})
        at.toggle(key="w_slow").set_value(True).run()  # slow methods run only after a click in the session
        assert_clean(at)
        shown = texts(at.warning) + " " + texts(at.info)
        assert "Test-Noted-CAM: a note <b>for</b> the [reader](http://x)" in shown  # escaped, as text
        assert "Score-CAM: computed in bf16" in shown and "Grad-CAM: computed in" not in shown  # gradient maps: fp32
        assert not live_markup(at)
    finally:
        _REGISTRY.pop("test_notedcam", None)
    bundle = services.MapBundle(
        np.zeros((4, 4, 3), np.uint8),
        {"scorecam": {"l": np.ones((2, 2), np.float32)}},
        0,
        np.array([1.0]),
        ("a",),
        {"scorecam": 0.1},
        notes={"scorecam": ("n1",)},
        precision={"scorecam": "bf16"},
    )
    snap = save_panel.new_snapshot(ViewState(), {"bundle": bundle}, author="t")
    assert snap.metrics["notes"] == {"scorecam": ["n1"]} and snap.metrics["precision"] == {"scorecam": "bf16"}
    assert "image_name" not in snap.metrics  # a gallery image: the report names it from the view
    from dashboard.app import uploads

    monkeypatch.setattr(uploads, "uploaded_images", lambda: {"upload:ab12": {"name": "my cat.png"}})
    snap = save_panel.new_snapshot(ViewState(image="upload:ab12"), {"bundle": bundle}, author="t")
    assert snap.metrics["image_name"] == "my cat.png"  # reports name an upload by its file name


def test_faithfulness_perturbed_captions_show_a_hostile_class_name_as_text(monkeypatch):
    """The perturbed pictures' captions (markdown) put the class name in raw: a checkpoint whose
    class is ``![cls0](http://…/x.png)`` made every viewer's browser fetch that image."""
    hostile = "![cls0](http://127.0.0.1:8999/x.png) [login](http://127.0.0.1:8999/l)"
    monkeypatch.setattr(services.MapBundle, "target_name", property(lambda self: hostile))
    at = run_page("faithfulness", {"steps": "5"})
    at.button(key="faith_run").click().run()
    assert_clean(at)
    captions = [i.caption for img in at.image for i in img.proto.imgs if "probability of" in (i.caption or "")]
    assert len(captions) == 2  # deletion and insertion
    for caption in captions:
        assert plain(caption).endswith(f"probability of {hostile} = " + caption.rsplit("= ", 1)[1])
        assert "![" not in caption and "](http" not in caption  # escaped: no image, no link
