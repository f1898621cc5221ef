"""Transformers on the dashboard (issue 22): every classification page works with the bundled
``scenes_vit`` (Layers lists its blocks), and a method that does not apply to the model (attention
rollout on a CNN) is a short note, never an error, while the other methods still draw."""

from __future__ import annotations

import json

import pytest

from app_kit import assert_clean, live_markup, map_images, plain, plotly_specs, run_page, texts

VIT = "scenes_vit"
NOT_APPLY = "Attention rollout does not apply to this model:"


def _drawn(at) -> int:
    return len(map_images(at)) + len(plotly_specs(at))


@pytest.mark.parametrize("page", ["methods", "layers", "normalization", "faithfulness", "compare", "sanity"])
def test_every_classification_page_works_with_scenes_vit(page):
    at = run_page(page, {"steps": "5"} if page == "faithfulness" else None, model=VIT)
    assert_clean(at)
    if page == "faithfulness":
        at.button(key="faith_run").click().run()
        assert_clean(at)
        assert len(at.image) == 2 and len(plotly_specs(at)) == 1  # perturbed pictures + the curves
    else:
        assert _drawn(at) >= 1
    assert "does not apply" not in texts(at.info)


def test_layers_lists_the_vit_blocks():
    at = run_page("layers", model=VIT)
    assert_clean(at)
    drawn = json.dumps(plotly_specs(at)) + " ".join(plain(c.value) for c in at.caption)
    drawn += " ".join(str(o) for o in at.multiselect[0].options) if at.multiselect else ""
    for name in ("patch_embed", "blocks.0", "blocks.1", "blocks.2", "blocks.3"):
        assert name in drawn, name


def test_the_default_layer_of_scenes_vit_is_its_last_block():
    at = run_page("methods", {"methods": "gradcam"}, model=VIT)
    assert_clean(at)
    assert any("layer blocks.3 (8×8 cells)" in plain(c.value) for c in at.caption)


def test_vit_methods_page_draws_rollout_chefer_and_gradcam():
    at = run_page("methods", {"methods": "gradcam,rollout,chefer"}, model=VIT)
    assert_clean(at)
    (spec,) = plotly_specs(at)
    titles = json.dumps(spec["layout"].get("annotations", []))
    assert "Grad-CAM" in titles and "rollout" in titles.lower() and "Chefer" in titles
    assert "does not apply" not in texts(at.info)


def test_rollout_on_a_cnn_is_a_note_and_gradcam_still_draws():
    at = run_page("methods", {"methods": "gradcam,rollout"}, model="scenes_vgg")
    assert_clean(at)
    note = texts(at.info)
    assert NOT_APPLY in note and "ScenesVGG has no recordable self-attention" in note
    (spec,) = plotly_specs(at)
    titles = json.dumps(spec["layout"].get("annotations", []))
    assert "Grad-CAM" in titles and "rollout" not in titles.lower()  # only the map that applies
    assert len(at.dataframe[0].value) == 1


@pytest.mark.parametrize("page", ["layers", "normalization", "faithfulness", "sanity"])
def test_a_method_that_does_not_apply_is_a_note_on_every_page(page):
    query = {"method": "rollout", "methods": "rollout"}
    at = run_page(page, query, model="scenes_vgg")
    assert_clean(at)
    assert NOT_APPLY in texts(at.info)


def test_compare_names_the_model_a_method_does_not_apply_to():
    at = run_page("compare", {"method": "rollout", "models": VIT}, model="scenes_vgg")
    assert_clean(at)
    note = texts(at.info)
    assert "Attention rollout does not apply to Scenes VGG" in note and "Scenes ViT" not in note


def test_layers_says_an_attention_method_draws_one_map_whatever_the_layer():
    """Rollout reads every block's attention: the Layers page would show its one map under seven layer
    names; it says so instead of letting the pictures pass for seven layers' maps."""
    at = run_page("layers", {"method": "rollout"}, model=VIT)
    assert_clean(at)
    assert "Attention rollout draws one map whatever the layer" in texts(at.info)
    at = run_page("layers", {"method": "gradcam"}, model=VIT)
    assert "whatever the layer" not in texts(at.info)


def test_the_reason_a_method_does_not_apply_is_escaped():
    """A reason that quotes user text (a module or class name) is drawn as text, never as a link."""
    from methods import ForwardMethod, register_method
    from methods.cams.core.registry import _REGISTRY

    @register_method(
        name="test_picky",
        label="Test-Picky",
        family="score",
        cost="1 fwd",
        summary="test only: refuses every model",
        requires=lambda model: "it needs [a ViT](http://example.com/x) <b>here</b>",
    )
    class Picky(ForwardMethod):
        def compute_layer(self, ctx):  # pragma: no cover - never run: it applies to no model
            raise AssertionError("a method that does not apply must not run")

    try:
        at = run_page("methods", {"methods": "gradcam,test_picky"}, model="scenes_vgg")
        assert_clean(at)
        assert "Test-Picky does not apply to this model: it needs [a ViT](http://example.com/x) <b>here</b>" in texts(
            at.info
        )
        assert live_markup(at) == []
    finally:
        _REGISTRY.pop("test_picky", None)
