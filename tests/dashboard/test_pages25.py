"""Issue 25, the pages people read: what the Normalization page says when two panels coincide.
(The other issue-25 page tests sit beside their pages' own tests: test_compare.py, test_imagenet.py,
test_benchmark.py, test_sanity.py.)"""

from __future__ import annotations

import numpy as np

from app_kit import assert_clean, plain, run_page
from dashboard.views.normalization import same_max_minmax
from methods.viz.normalize import normalize


def test_normalization_page_says_why_max_and_minmax_coincide_under_relu():
    """On the default view (scenes_vgg, Grad-CAM at its default layer) the map has values <= 0, so
    after ReLU its minimum is 0 and "max" equals "min-max": the page says so once, in the ReLU row."""
    at = run_page("normalization")
    assert_clean(at)
    said = [plain(c.value) for c in at.caption if "draw the same picture here" in c.value]
    assert len(said) == 1 and "minimum is 0" in said[0]
    raw = np.array([[-2.0, 0.5], [1.0, 3.0]])
    assert same_max_minmax(raw)
    np.testing.assert_allclose(normalize(raw, mode="max", relu=True), normalize(raw, mode="minmax", relu=True))
    pos = raw + 3.0  # minimum 1 > 0: the two differ, no caption
    assert not same_max_minmax(pos)
    assert not np.allclose(normalize(pos, mode="max", relu=True), normalize(pos, mode="minmax", relu=True))


def test_guided_backprop_is_drawn_with_a_percentile_clip_and_the_page_says_so():
    """Issue 25: Guided Backprop was nearly invisible under min-max (a few pixels hold the maximum).
    The Methods page draws a fine-grained pixel map up to its 99th percentile and says so; the
    layer map beside it keeps plain min-max."""
    import methods
    from dashboard.core.state import ViewState
    from dashboard.views.methods import FINE_CLIP, display_norms

    at = run_page("methods", {"methods": "gradcam,guidedbackprop"})
    assert_clean(at)
    said = [plain(i.value) for i in at.info if "percentile clip" in i.value]
    assert len(said) == 1 and said[0].startswith(
        "Guided Backprop: a fine-grained pixel map, drawn with a 99th-percentile clip"
    )
    vgg = methods.load_model("scenes_vgg")
    from dashboard.core import menus

    x = vgg.preprocess(menus.load_sample(menus.default_image("scenes_vgg")))[None]
    exps = methods.explain_many(vgg, x, ["gradcam", "guidedbackprop"])
    raw = [exps[m].maps[exps[m].layers[0]][0].numpy() for m in ("gradcam", "guidedbackprop")]
    norm, clipped = display_norms(["gradcam", "guidedbackprop"], raw, ViewState(), vgg.input_size)
    assert clipped == ["guidedbackprop"]
    np.testing.assert_allclose(norm[0], normalize(raw[0], mode="minmax"), atol=1e-6)
    gb = np.maximum(raw[1], 0)
    want = np.clip(gb / np.percentile(gb, FINE_CLIP), 0, 1)  # ReLU, then 0 .. 99th percentile
    np.testing.assert_allclose(norm[1], want, atol=1e-5)
    plain_minmax = normalize(raw[1], mode="minmax")
    assert float(norm[1].mean()) > 3 * float(plain_minmax.mean())  # visibly brighter than min-max


def test_png_exports_carry_the_notes_as_visible_text_and_a_text_chunk():
    """Issue 25: a map's notes must reach its PNG download: a caption strip under the grid (seen)
    and a ``GradLens notes`` text chunk (read by tools)."""
    import io

    from PIL import Image

    from dashboard.draw import pictures

    pic = np.zeros((32, 32, 3), np.uint8)
    notes = pictures.notes_text({"Guided Backprop": ("first note", "second note"), "Grad-CAM": ()})
    assert notes == "Note · Guided Backprop: first note\nNote · Guided Backprop: second note"
    bare = pictures.compose_grid([pic], ["a"], cell=64)
    noted = pictures.compose_grid([pic], ["a"], cell=64, note=notes)
    strip = pictures.caption_strip(notes, bare.shape[1], pad=8)
    assert noted.shape[0] == bare.shape[0] + strip.shape[0] and strip.shape[0] >= 2 * 18  # two lines at least
    np.testing.assert_array_equal(noted[bare.shape[0] :], strip)
    assert (strip < 200).any()  # text drawn, not a blank strip
    info = pictures.with_notes({"GradLens colormap": "jet"}, notes)
    png = Image.open(io.BytesIO(pictures.png_bytes(noted, info=info)))
    assert png.text["GradLens notes"] == notes and png.text["GradLens colormap"] == "jet"
    assert pictures.with_notes({"a": "b"}, "") == {"a": "b"}
