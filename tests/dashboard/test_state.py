"""dashboard/core/state.py: the view state <-> query parameters round trip, and hand-edited URLs."""

from __future__ import annotations

import dataclasses
from dataclasses import fields, replace

import pytest

from dashboard.core.pages import VIEW_PAGES
from dashboard.core.state import STEPS_RANGE, Choices, ViewState

CHOICES = Choices(
    models=("efficientnet_lite0", "scenes_vgg", "scenes_resnet", "resnet18"),
    images=("scene_a", "scene_b", "astronaut"),
    methods=("gradcam", "gradcampp", "layercam", "eigencam", "random", "centre"),
    colormaps=("jet", "viridis", "turbo"),
)

EVERYTHING_CHANGED = ViewState(
    page="faithfulness",
    model="resnet18",
    image="astronaut",
    target=281,
    methods=("layercam", "gradcam"),
    method="eigencam",
    layer="layer4.1",
    layers=("layer2", "layer3.0.conv1"),
    norm="percentile",
    relu=False,
    scope="shared",
    p_lo=2.5,
    p_hi=97.5,
    cmap="viridis",
    alpha=0.35,
    device="cuda:1",
    baseline="mean",
    steps=80,
    step=12,
    slow=True,
    options=(("centre", "sigma", 0.125), ("random", "seed", 3)),
    layer_set="all",
    layer_page=3,
    models=("scenes_vgg", "upload:ab12"),
    depths=3,
    metric="iou_top",
    mode="independent",
    seed=7,
    classes=4,
    box=3,
    region="box",
)


def test_defaults_write_an_empty_query():
    assert ViewState().to_query() == {}
    state, messages = ViewState.from_query({}, CHOICES)
    assert state == ViewState() and messages == []


def test_every_field_differs_in_the_fixture():
    default = ViewState()
    same = [f.name for f in fields(ViewState) if getattr(default, f.name) == getattr(EVERYTHING_CHANGED, f.name)]
    assert same == [], f"the round-trip fixture leaves {same} at their defaults"


def test_round_trip_of_every_field():
    query = EVERYTHING_CHANGED.to_query()
    assert all(isinstance(v, str) for v in query.values())
    assert query["methods"] == "layercam,gradcam"
    assert query["relu"] == "0"
    assert query["plo"] == "2.5" and query["phi"] == "97.5"
    assert "page" not in query and "slow" not in query  # the path names the page; slow is the session's
    state, messages = ViewState.from_query(query, CHOICES)
    assert messages == []
    assert state == replace(EVERYTHING_CHANGED, page="home", slow=False)


def test_a_link_never_switches_slow_work_on():
    """``?slow=1`` used to start every slow method of the page with no click; now it is reported
    and ignored (the switch stays for the session that turns it on)."""
    state, messages = ViewState.from_query({"slow": "1", "page": "layers"}, CHOICES)
    assert state.slow is False and state.page == "layers"
    assert len(messages) == 1 and "slow='1'" in messages[0] and "never starts slow work" in messages[0]
    assert ViewState.from_query({"slow": "0"}, CHOICES) == (ViewState(), [])
    assert "slow" not in ViewState(slow=True).to_query()


def test_only_changed_values_are_written():
    query = ViewState(alpha=0.8, cmap="turbo").to_query()
    assert query == {"alpha": "0.8", "cmap": "turbo"}


def test_dict_round_trip_for_snapshots():
    data = EVERYTHING_CHANGED.to_dict()
    assert data["methods"] == ["layercam", "gradcam"] and data["target"] == 281
    state, messages = ViewState.from_dict(data, CHOICES)
    # slow: session-only; device: the saving machine's, not restored
    assert messages == [] and state == replace(EVERYTHING_CHANGED, slow=False, device="")
    assert ViewState.from_dict(ViewState().to_dict(), CHOICES) == (ViewState(), [])


def test_lists_from_st_query_params_take_the_last_value():
    state, messages = ViewState.from_query({"alpha": ["0.1", "0.9"], "cmap": ["jet"]}, CHOICES)
    assert state.alpha == 0.9 and state.cmap == "jet" and messages == []


@pytest.mark.parametrize(
    ("param", "value", "field", "words"),
    [
        ("alpha", "2", "alpha", "alpha must be in [0, 1]"),
        ("alpha", "nan", "alpha", "alpha must be in [0, 1]"),
        ("alpha", "half", "alpha", "alpha must be a number"),
        ("relu", "maybe", "relu", "must be 1 or 0"),
        ("steps", "abc", "steps", "steps must be a whole number"),
        ("steps", "1", "steps", f"steps must be in [{STEPS_RANGE[0]}, {STEPS_RANGE[1]}]"),
        ("target", "-3", "target", "the class index must be >= 0"),
        ("target", "cat", "target", "whole number"),
        ("norm", "zscore", "norm", "not a known normalization mode"),
        ("scope", "global", "scope", "not a known scope"),
        ("cmap", "rainbow", "cmap", "not a known colormap"),
        ("model", "resnet1000", "model", "not a known model"),
        ("image", "nope", "image", "not a known image"),
        ("method", "gradcamm", "method", "not a known method"),
        ("methods", "gradcam,bogus", "methods", "unknown method 'bogus'"),
        ("methods", "gradcam,gradcam", "methods", "listed twice"),
        ("methods", "", "methods", "no method given"),
        ("page", "admin", "page", "not a known page"),
        ("baseline", "noise", "baseline", "not a known baseline"),
        ("plo", "-1", "p_lo", "the low percentile must be in [0, 100]"),
    ],
)
def test_a_bad_value_falls_back_with_a_message(param, value, field, words):
    state, messages = ViewState.from_query(
        {param: value, "cmap" if param != "cmap" else "alpha": "viridis" if param != "cmap" else "0.7"}, CHOICES
    )
    assert getattr(state, field) == getattr(ViewState(), field)
    assert len(messages) == 1, messages
    assert param in messages[0] and repr(value) in messages[0] and words in messages[0]
    # the other, valid parameter still applies
    assert (state.cmap == "viridis") if param != "cmap" else (state.alpha == 0.7)


def test_fallback_message_names_what_is_used_instead():
    _, messages = ViewState.from_query({"target": "x", "cmap": "rainbow"}, CHOICES)
    assert any("using the top-1 class" in m for m in messages)
    assert any("using jet" in m for m in messages)


def test_unknown_parameters_are_reported_and_ignored():
    state, messages = ViewState.from_query({"utm_source": "mail", "alpha": "0.2"}, CHOICES)
    assert state == ViewState(alpha=0.2)
    assert messages == ["URL parameter 'utm_source' is not used by the dashboard; ignored."]


def test_percentiles_in_the_wrong_order_fall_back_together():
    state, messages = ViewState.from_query({"plo": "60", "phi": "40"}, CHOICES)
    assert (state.p_lo, state.p_hi) == (1.0, 99.0)
    assert len(messages) == 1 and "plo < phi" in messages[0]


def test_step_beyond_steps_is_clamped():
    state, messages = ViewState.from_query({"steps": "20", "step": "50"}, CHOICES)
    assert (state.steps, state.step) == (20, 20)
    assert messages and "larger than steps=20" in messages[0]


def test_upload_ids_pass_syntax_but_empty_ones_do_not():
    state, messages = ViewState.from_query({"image": "upload:0123abcd", "model": "upload:ffee"}, CHOICES)
    assert (state.image, state.model) == ("upload:0123abcd", "upload:ffee") and messages == []
    state, messages = ViewState.from_query({"image": "upload:"}, CHOICES)
    assert state.image == "" and "empty upload id" in messages[0]


def test_an_upload_id_is_hex_digits_only():
    """``?image=upload:x ![t](http://…)`` used to pass as an upload id and reach a warning."""
    state, messages = ViewState.from_query({"image": "upload:x ![t](http://evil.example/t.png)"}, CHOICES)
    assert state.image == "" and len(messages) == 1 and "not an upload id" in messages[0]


def test_an_unknown_image_names_the_fallback():
    """``?image=nosuch`` used to say "using ." (the default image is empty: the model's own)."""
    _, messages = ViewState.from_query({"image": "nosuch"}, CHOICES)
    assert messages == [
        "URL parameter image='nosuch': not a known image (valid: scene_a, scene_b, astronaut); "
        "using the model's default sample."
    ]


def test_layers_are_not_checked_here_and_empty_layer_means_default():
    state, messages = ViewState.from_query({"layer": "", "layers": "a.b, c"}, CHOICES)
    assert state.layer is None and state.layers == ("a.b", "c") and messages == []


def test_without_choices_names_are_not_checked():
    state, messages = ViewState.from_query({"model": "anything", "cmap": "whatever"})
    assert (state.model, state.cmap) == ("anything", "whatever") and messages == []


def test_pages_are_the_dashboard_pages():
    assert VIEW_PAGES == (
        "home",
        "methods",
        "layers",
        "normalization",
        "faithfulness",
        "compare",
        "sanity",
        "detection",
    )
    for page in VIEW_PAGES:
        assert ViewState.from_query({"page": page}, CHOICES)[0].page == page


def test_replace_returns_a_new_frozen_state():
    a = ViewState()
    b = replace(a, alpha=0.1)
    assert a.alpha == 0.5 and b.alpha == 0.1
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.alpha = 0.2  # type: ignore[misc]


@pytest.mark.parametrize(
    "query, words",
    [
        ({"models": "scenes_vgg,scenes_resnet,resnet18"}, "at most 2"),
        ({"models": "scenes_vgg,scenes_vgg"}, "listed twice"),
        ({"models": "nope"}, "not a known model"),
        ({"depths": "1"}, "depths must be in [2, 8]"),
        ({"depths": "x"}, "whole number"),
    ],
)
def test_compare_parameters_fall_back_with_a_message(query, words):
    state, messages = ViewState.from_query(query, CHOICES)
    assert (state.models, state.depths) == ((), 4)
    assert len(messages) == 1 and words in messages[0], messages


def test_compare_models_round_trip_and_empty_means_the_default_partner():
    state, messages = ViewState.from_query({"models": "scenes_resnet", "depths": "5"}, CHOICES)
    assert (state.models, state.depths, messages) == (("scenes_resnet",), 5, [])
    assert state.to_query() == {"models": "scenes_resnet", "depths": "5"}
    assert ViewState.from_query({"models": ""}, CHOICES) == (ViewState(), [])
