"""The Layers page's "Fuse these layers (LayerCAM)" option (dashboard/views/layers.py) under AppTest.

The fused picture's caption states the fused map's peak and mean; both equal
``methods.fuse_layer_maps`` of the library's own maps of the same layers, computed here. Choosing
the option runs no model: the page fuses the maps it already has.
"""

from __future__ import annotations

import re

import pytest

import methods
from app_kit import assert_clean, map_images, model_calls, plain, run_page
from dashboard.app import cache
from dashboard.core import menus
from dashboard.views.layers import FUSE_KEY


@pytest.mark.parametrize("fuse", ["max", "mean"])
def test_the_fused_map_is_the_librarys_and_runs_no_model(fuse):
    at = run_page("layers")
    at.selectbox(key="w_method").set_value("layercam").run()
    assert_clean(at)
    calls = model_calls()
    at.selectbox(key=FUSE_KEY).set_value(fuse).run()
    assert_clean(at)
    assert model_calls() == calls  # fused from the maps the page already holds
    (fused,) = [img for img in map_images(at) if plain(img.proto.imgs[0].caption).startswith("Fused")]
    caption = plain(fused.proto.imgs[0].caption)
    loaded = cache.model_handle("scenes_vgg").loaded
    blocks = [b.name for b in methods.block_layers(loaded.model, loaded.input_size)]
    x = loaded.preprocess(menus.load_sample(at.selectbox(key="w_image").value))[None]
    exp = methods.explain(loaded, x, "layercam", layers=blocks)
    expected = methods.fuse_layer_maps({n: exp.maps[n][0] for n in blocks}, loaded.input_size, fuse=fuse)
    peak, mean = (float(v) for v in re.search(r"peak ([\d.]+) · mean ([\d.]+)", caption).groups())
    assert caption.startswith(f"Fused ({fuse}) of {len(blocks)} layers")
    assert peak == pytest.approx(float(expected.max()), abs=6e-4)
    assert mean == pytest.approx(float(expected.mean()), abs=6e-4)


def test_no_fusion_offered_for_a_method_outside_the_gradient_family():
    at = run_page("layers")
    at.selectbox(key="w_method").set_value("eigencam").run()
    assert_clean(at)
    assert not [s for s in at.selectbox if s.key == FUSE_KEY]
