"""User text in charts and captions stays text (issue 26, "Text that becomes markup").

The audit saw live links and remote images: Plotly rendered ``<a href>`` from layer and label names
of saved Sanity and Compare snapshots and from method/layer names of an uploaded Benchmark CSV;
a Sanity snapshot's layer broke out of a code span in a caption (the listener logged 4 fetches);
checkpoint class names like ``![cls0](http://…/x.png)`` became remote images. Every such text now
reaches Plotly through :func:`dashboard.draw.text.plotly_text` and markdown through
:func:`dashboard.app.errors.md_escape`.
"""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app_kit import HOME, REVIEW, TIMEOUT, assert_clean, live_markup, plotly_specs
from dashboard.core import pages
from dashboard.draw import benchmark, checks, figures
from dashboard.draw.text import plotly_text
from methods.review.store import SnapshotStore

HOST = "http://127.0.0.1:8999"
A_TAG = f'<a href="{HOST}/h">m</a>'
IMG_TAG = f'<img src="{HOST}/i.png">'
BOLD = "<b>loud</b> &amp; %{y}"
LINK = f"[Click to re-login]({HOST}/login)"
IMAGE = f"![cls0]({HOST}/x.png)"
TICK = f"`a` [x]({HOST}/t) `"  # closes a code span the caption put it in
HOSTILE = (A_TAG, IMG_TAG, BOLD, LINK, IMAGE, TICK)


def _strings(value) -> list[str]:
    """Every string in a Plotly figure's JSON (titles, names, ticks, hover, customdata, annotations)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _assert_no_markup(spec: dict, shown: tuple[str, ...] = HOSTILE) -> None:
    """No tag a user wrote is in the figure; each hostile text is there, escaped, reading as itself."""
    strings = _strings(spec)
    for s in strings:
        assert not re.search(r"(?i)<\s*(a|img)\b", s), s
        assert not re.search(r"(?i)<[^>]*href\s*=", s), s
        assert "<b>" not in s, s
    for text in shown:
        escaped = plotly_text(text)
        found = [s for s in strings if escaped in s]
        assert found, (text, escaped)
        assert text in html.unescape(found[0])  # Plotly decodes the entities: the text reads as itself


def _figure_json(fig) -> dict:
    return json.loads(fig.to_json())


# ------------------------------------------------------------------------------------------
# the helper and each figure builder


def test_plotly_text_escapes_what_plotly_reads_as_markup():
    assert plotly_text(A_TAG) == '&lt;a href="http://127.0.0.1:8999/h"&gt;m&lt;/a&gt;'
    assert plotly_text("&lt;b&gt;") == "&amp;lt;b&amp;gt;"  # a user's own entity stays as typed
    assert plotly_text("%{customdata[0]} $x$ 10 %") == "&#37;{customdata[0]} &#36;x&#36; 10 %"
    assert plotly_text("a\nb<br>") == "a b&lt;br&gt;"
    assert plotly_text(3) == "3"
    for text in HOSTILE:
        assert html.unescape(plotly_text(text)).replace("\n", " ") == text


def test_sanity_figure_shows_hostile_names_as_text():
    steps = [A_TAG, IMG_TAG, "classifier"]
    curves = {BOLD: {"spearman": [1.0, 0.5, 0.1], "ssim": [1.0, 0.6, 0.2]}, LINK: {"spearman": [1.0, 0.2, 0.0]}}
    fig = checks.sanity_figure(steps, curves, [0.9, 0.5, 0.1], cascading=True, target_name=IMAGE + TICK)
    spec = _figure_json(fig)
    _assert_no_markup(spec, (A_TAG, IMG_TAG, BOLD, LINK, IMAGE + TICK))
    names = [t["name"] for t in spec["data"]]
    assert names[0] == f"{plotly_text(BOLD)}: Spearman" and names[-1] == f"p({plotly_text(IMAGE + TICK)})"
    assert "%{y}" not in spec["data"][0]["hovertemplate"].replace("%{y:.3f}", "")  # no substitution of a name


def test_compare_figures_show_hostile_names_as_text():
    names_a, names_b = [A_TAG, "layer2"], [IMG_TAG, TICK, "x"]
    values = {"spearman": np.zeros((2, 3)), "iou_top": np.ones((2, 3))}
    fig = checks.similarity_heatmap(
        names_a,
        names_b,
        ["8×4×4", BOLD],
        ["8×4×4", "8×2×2", "8×1×1"],
        values,
        "spearman",
        {"spearman": "Spearman", "iou_top": LINK},
        model_a=IMAGE,
        model_b=LINK,
        marks=[(A_TAG, IMG_TAG)],
    )
    spec = _figure_json(fig)
    _assert_no_markup(spec)
    assert spec["layout"]["xaxis"]["ticktext"] == [plotly_text(n) for n in names_b]
    pair = f"{IMAGE} ↔ {A_TAG}"
    depth = checks.depth_figure([0.5, 1.0], {pair: {"spearman": [0.1, 0.2]}}, {pair: [IMG_TAG, TICK]}, {})
    _assert_no_markup(_figure_json(depth), (IMAGE, A_TAG, IMG_TAG, TICK))


def test_benchmark_figure_shows_hostile_method_and_layer_names_as_text():
    df = pd.DataFrame(
        {
            "image": ["a", "b", "a", "b"],
            "method": [A_TAG, A_TAG, "random", "random"],
            "layer": [IMG_TAG] * 4,
            "target": [0, 1, 0, 1],
            "deletion_auc": [0.1, 0.2, 0.3, 0.4],
        }
    )
    for kind in ("box", "violin"):
        spec = _figure_json(benchmark.distribution_figure(df, "deletion_auc", IMG_TAG, kind=kind, labels={"x": BOLD}))
        _assert_no_markup(spec, (A_TAG, IMG_TAG))
        assert spec["data"][0]["name"] == plotly_text(A_TAG)


def test_map_layer_and_curve_figures_show_hostile_names_as_text():
    image = np.zeros((8, 8, 3), np.uint8)
    m = np.arange(16, dtype=np.float32).reshape(4, 4) / 15
    _assert_no_markup(_figure_json(figures.map_figure(image, [m, m], [m, m], [A_TAG, IMAGE])), (A_TAG, IMAGE))
    _assert_no_markup(_figure_json(figures.histogram_figure(m, value_range=(0, 1), title=IMG_TAG)), (IMG_TAG,))
    conc = figures.concentration_figure([A_TAG, TICK], [0.2, 0.4], [BOLD, "1×1"])
    _assert_no_markup(_figure_json(conc), (A_TAG, TICK, BOLD))
    curve = (np.linspace(0, 1, 3), np.array([1.0, 0.5, 0.1]))
    curves = figures.curves_figure({"x": curve}, {"x": curve}, labels={"x": A_TAG}, references=())
    _assert_no_markup(_figure_json(curves), (A_TAG,))


# ------------------------------------------------------------------------------------------
# the pages


def _caption_markup(at: AppTest) -> list[str]:
    """Image captions (markdown) that would make a link, an image or HTML."""
    caps = [c for img in at.image for c in (i.caption for i in img.proto.imgs)]
    return [c for c in caps if re.search(r"(?<!\\)[\[\]<>]|(?i:https?:(?!\u200d)|www\.(?!\u200d))", c or "")]


def test_benchmark_upload_with_hostile_names_has_no_live_markup(tmp_path, monkeypatch):
    """Method and layer names of an uploaded CSV became Plotly links in the distribution chart."""
    monkeypatch.setenv("GRADLENS_RESULTS_ROOT", str(tmp_path))
    rng = np.random.default_rng(0)
    rows = [
        {
            "image": f"img{i}.png",
            "method": method,
            "layer": IMG_TAG,
            "target": i % 2,
            "target_name": IMAGE if i % 2 else LINK,
            "deletion_auc": float(rng.uniform()),
            "insertion_auc": float(rng.uniform()),
        }
        for i in range(4)
        for method in (A_TAG, "random", "centre")
    ]
    data = pd.DataFrame(rows).to_csv(index=False).encode()
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
    at.switch_page(pages.page("benchmark").script).run()
    at.file_uploader(key="bm_upload").set_value((f"{LINK}.csv", data, "text/csv"))
    at.run()
    assert_clean(at)
    assert len(at.dataframe) >= 2  # the leaderboard is there
    assert live_markup(at) == []
    assert _caption_markup(at) == []
    distribution, agreement = plotly_specs(at)
    _assert_no_markup(distribution, (A_TAG, IMG_TAG))
    _assert_no_markup(agreement, ())  # the metric-agreement heatmap: rows and columns are metric names
    assert agreement["data"][0]["x"] == ["Deletion AUC", "Insertion AUC"]


def _sanity_snapshot(db) -> str:
    from methods.review.codec import encode_png
    from methods.review.store import NewSnapshot

    ramp = np.arange(16, dtype=np.float32).reshape(4, 4)
    verdict = {"passes": False, "text": LINK, "criterion": IMAGE}
    entry = {
        "label": A_TAG + LINK,
        "layer": TICK + A_TAG,
        "target": 1,
        "mode": LINK,
        "steps": [A_TAG + IMAGE, IMG_TAG + TICK],
        "probs": [0.7, 0.4],
        "grid": [IMAGE, TICK],
        "similarity": {"spearman": [1.0, 0.3], "ssim": [1.0, 0.5]},
        "verdict": verdict,
        "classes": {"classes": [1, 0], "probs": [0.7, 0.3], "iou_top": [0.5], "spearman": [0.2], "verdict": verdict},
    }
    maps = {"gradcam": {"step 0": ramp, "step 1": ramp, "class 1": ramp, "class 0": ramp}}
    return SnapshotStore(db).save(
        NewSnapshot(
            image_png=encode_png(np.full((28, 28, 3), 120, np.uint8)),
            model_id="scenes_vgg",
            author="mallory",
            methods=("gradcam",),
            layers=tuple(maps["gradcam"]),
            maps=maps,
            page="sanity",
            target_index=1,
            target_name=IMAGE,
            view={"page": "sanity", "methods": ["gradcam"]},
            metrics={
                "top5": [[1, IMAGE, 0.7], [0, LINK, 0.3]],
                "num_classes": 2,
                "extras": {"sanity": {"gradcam": entry}},
            },
        )
    )


def test_a_sanity_snapshot_with_hostile_fields_renders_no_live_link_on_review(db):
    """Layer, mode, grid, steps and class names of a saved Sanity check: the caption's code span
    was broken out of and the chart drew <a href> from them."""
    sid = _sanity_snapshot(db)
    st.cache_data.clear()
    at = AppTest.from_file(REVIEW, default_timeout=TIMEOUT)
    at.query_params["snapshot"] = sid
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    ours = (
        "[Open this view live on its page (runs the model)](",  # our link; stored values in it are %-encoded
        "([Adebayo et",  # the paper's link
    )
    assert [m for m in live_markup(at) if not any(o in m[1] for o in ours)] == []
    assert _caption_markup(at) == []
    assert len(at.image) >= 4  # the strip and the class maps were drawn from the snapshot
    (spec,) = plotly_specs(at)
    _assert_no_markup(spec, (A_TAG + LINK, A_TAG + IMAGE, IMG_TAG + TICK, IMAGE))


@pytest.mark.parametrize("text", HOSTILE)
def test_md_escaped_captions_read_as_the_text(text):
    """What a caption shows is the text itself (backslashes and autolink breakers dropped)."""
    from app_kit import plain
    from dashboard.app.errors import md_escape

    assert plain(md_escape(text)) == text
