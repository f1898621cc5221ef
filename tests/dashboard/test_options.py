"""Typed method options in the dashboard: widgets built from each method's declared OptionInfo,
values that change the map, the URL round trip, and bad values as the library's messages."""

from __future__ import annotations

import numpy as np
import torch
from streamlit.testing.v1 import AppTest

import methods
from app_kit import (
    HOME,
    PAGES,
    ROOT,
    as_array,
    assert_clean,
    model_calls,
    open_app,
    plain,
    plotly_specs,
    run_page,
    texts,
)
from dashboard.app import cache


def _raw_maps_on_page(at: AppTest) -> list[np.ndarray]:
    """The raw values each heatmap of the Methods figure shows on hover (customdata[..., 0]), flat."""
    (spec,) = plotly_specs(at)
    out = []
    for t in (t for t in spec["data"] if t["type"] == "heatmap"):
        custom = t["customdata"]
        arr = as_array(custom).reshape(-1, 3) if isinstance(custom, dict) else np.asarray(custom).reshape(-1, 3)
        out.append(arr[:, 0])
    return out


def _library_map(method: str, **options) -> np.ndarray:
    """The same map straight from the library (default model, default image, default layer)."""
    at = open_app(HOME).run()
    handle = cache.model_handle("scenes_vgg")
    image = cache.image_for(at.selectbox(key="w_image").value)
    x = torch.as_tensor(handle.loaded.preprocess(image))[None]
    with handle.lock:
        e = methods.explain(handle.loaded, x, method, **options)
    return e.maps[e.layers[0]][0].numpy().ravel()


def test_score_cam_options_come_from_its_declaration():
    at = run_page("methods")
    at.multiselect(key="w_methods").set_value(["gradcam", "scorecam"]).run()
    assert_clean(at)
    assert [e.label for e in at.expander if e.label.endswith(" options")] == ["Grad-CAM options", "Score-CAM options"]
    assert [o.name for o in methods.get_method("gradcam").options] == [
        "aug_smooth",
        "eigen_smooth",
    ]  # the gradient family's
    declared = methods.get_method("scorecam").options
    widgets = [*at.number_input, *at.text_input, *at.selectbox, *at.checkbox]
    keys = {w.key for w in widgets if (w.key or "").startswith("w_opt_scorecam_")}
    assert keys == {f"w_opt_scorecam_{o.name}" for o in declared}
    assert at.number_input(key="w_opt_scorecam_batch_size").value == 32
    assert at.text_input(key="w_opt_scorecam_channels").value == "all"
    assert at.selectbox(key="w_opt_scorecam_precision").options == ["auto", "fp32", "bf16"]
    assert at.selectbox(key="w_opt_scorecam_precision").value == "auto"  # bf16 where native, else fp32
    assert at.checkbox(key="w_opt_scorecam_baseline_subtract").value is False


def test_an_option_changes_the_map_and_travels_in_the_url():
    at = run_page("methods")
    at.multiselect(key="w_methods").set_value(["random"]).run()
    assert_clean(at)
    (seed0,) = _raw_maps_on_page(at)
    calls = model_calls()
    at.number_input(key="w_opt_random_seed").set_value(3).run()
    assert_clean(at)
    (seed3,) = _raw_maps_on_page(at)
    assert model_calls() == calls + 1  # a new cache key: the options are part of it
    assert at.query_params["opts"] == "random.seed:3"
    assert not np.allclose(seed0, seed3)
    np.testing.assert_allclose(seed3, _library_map("random", seed=3), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(seed0, _library_map("random"), rtol=1e-5, atol=1e-6)

    # the link opens the same view: widget value and map
    link = open_app(str(ROOT / "dashboard" / PAGES["methods"]))
    link.query_params.update({"page": "methods", "methods": "random", "opts": "random.seed:3"})
    link.run()
    assert_clean(link)
    assert not link.warning, [w.value for w in link.warning]
    assert link.number_input(key="w_opt_random_seed").value == 3
    np.testing.assert_array_equal(_raw_maps_on_page(link)[0], seed3)
    assert link.query_params["opts"] == "random.seed:3"

    at.number_input(key="w_opt_random_seed").set_value(0).run()  # back to the default: out of the URL
    assert_clean(at)
    assert "opts" not in at.query_params


def test_normalization_page_has_its_methods_options():
    at = run_page("normalization")
    at.selectbox(key="w_method").set_value("centre").run()
    assert_clean(at)
    assert at.number_input(key="w_opt_centre_sigma").value == 0.25
    before = at.image[0].proto.imgs[0].url
    at.number_input(key="w_opt_centre_sigma").set_value(0.05).run()
    assert_clean(at)
    assert at.query_params["opts"] == "centre.sigma:0.05"
    assert at.image[0].proto.imgs[0].url != before  # a narrower blob


def test_a_bad_option_in_a_widget_is_the_librarys_message():
    at = run_page("layers")
    at.selectbox(key="w_method").set_value("centre").run()
    at.number_input(key="w_opt_centre_sigma").set_value(0.0).run()  # sigma must be > 0
    assert not at.exception
    (error,) = at.error
    assert "sigma=0.0 is not valid" in plain(error.value) and "> 0" in plain(error.value)
    assert not plain(error.value).startswith("Something went wrong")  # a library OptionError, not a bug
    assert len(at.image) > 0  # the page still draws, with the last valid options
    assert "opts" not in at.query_params


def test_bad_options_in_a_link_fall_back_with_a_message():
    at = open_app(str(ROOT / "dashboard" / PAGES["methods"]))
    at.query_params.update({"page": "methods", "methods": "centre", "opts": "centre.sigma:0"})
    at.run()
    assert_clean(at)
    warnings = texts(at.warning)
    assert "URL parameter opts='centre.sigma:0'" in warnings and "sigma=0.0 is not valid" in warnings
    assert "using every method's default options" in warnings
    assert at.number_input(key="w_opt_centre_sigma").value == 0.25
    for bad, words in (
        ("centre.sigmx:1", "Did you mean 'sigma'"),
        ("nocam.seed:1", "unknown method 'nocam'"),
        ("random.seed:x", "not a whole number"),
    ):
        at = open_app(str(ROOT / "dashboard" / PAGES["methods"]))
        at.query_params.update({"page": "methods", "opts": bad})
        at.run()
        assert_clean(at)
        assert any(words in w.value for w in at.warning), (bad, [w.value for w in at.warning])


def _every_number_option_app() -> None:
    import streamlit as st

    import methods
    from dashboard.app.widgets import _option_widget

    for spec in methods.list_methods():
        for info in spec.options:
            if info.kind in ("int", "float"):
                _option_widget(info, f"w_opt_{spec.name}_{info.name}", info.default, st)


def test_every_declared_bound_fits_a_number_widget():
    """A seed's bound is 2**63 - 1; Streamlit refuses an int bound beyond 2**53 - 1 (what a browser
    holds exactly), so the widget clamps it and the library checks the rest."""
    at = AppTest.from_function(_every_number_option_app, default_timeout=60).run()
    assert not at.exception
    seeds = [w for w in at.number_input if w.key.endswith("_seed")]
    assert len(seeds) >= 4
    assert all(w.max == 2**53 - 1 and w.min == 0 for w in seeds)
