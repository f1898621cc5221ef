"""The Advisor page (dashboard/views/advisor/, pages/10_Advisor.py) under AppTest: the run button
behind a cost, the recommendation the library gives for the same choices, the error bars equal to
the library's intervals, user text escaped, and the URL parameters."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from app_kit import HOME, PAGES, TIMEOUT, assert_clean, plain, plotly_specs, run_page
from dashboard.views.advisor import settings as adv
from methods.advisor import AdviseOptions, advise
from methods.data.annotated import AnnotatedOptions
from methods.data.scenes import make_scene
from methods.errors import InputError
from methods.review.store import SnapshotStore

OPTIONS = dict(methods=("gradcam",), layers="default", normalizations=("minmax",), n_sanity=0, steps=5)


def _page() -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
    at.switch_page(PAGES["advisor"]).run()
    assert_clean(at)
    return at


def test_run_shows_the_librarys_recommendation_and_intervals(fp32, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADLENS_DB", str(tmp_path / "review.db"))
    at = _page()
    at.selectbox(key="adv_model").select("scenes_vgg").run()
    at.number_input(key="adv_n").set_value(3).run()
    at.multiselect(key="adv_methods").set_value(["gradcam"]).run()
    at.multiselect(key="adv_norms").set_value(["minmax"]).run()
    at.radio(key="adv_layers").set_value("default").run()
    at.slider(key="adv_steps").set_value(5).run()
    at.number_input(key="adv_sanity").set_value(0).run()
    boxes = [m.value for m in at.markdown if "forward passes" in m.value]
    assert boxes and "Up to 72 forward passes" in boxes[0]  # 3 images x 2 maps x 2 curves x 6 points
    assert not [s for s in at.success if "Recommendation" in s.value]  # nothing runs before the click
    at.button(key="adv_run").click().run()
    assert_clean(at)
    want = advise("scenes_vgg", "scenes:3", AdviseOptions(**OPTIONS, n_boot=1000), log=lambda _s: None)
    # three scenes cannot give p < 0.05 against random (sign test: 2 / 2^3): a warning box, not a success
    assert not want.beats_random and not [s for s in at.success if "Recommendation" in s.value]
    shown = [w.value for w in at.warning if "Recommendation" in w.value]
    assert len(shown) == 1 and plain(shown[0]) == f"**Recommendation.** {want.recommendation}"
    spec = plotly_specs(at)[0]["data"][0]
    assert spec["x"] == pytest.approx(want.table["mean"].tolist())
    assert spec["error_x"]["array"] == pytest.approx((want.table["high"] - want.table["mean"]).tolist())
    assert at.query_params["n"] == "3" and at.query_params["model"] == "scenes_vgg"
    # Save to Review: the recommended map of the first scene, the report in the snapshot
    at.text_input(key="w_review_author").input("ana").run()
    at.button(key="adv_save").click().run()
    assert_clean(at)
    with SnapshotStore(tmp_path / "review.db") as store:
        (summary,) = store.list()
        snap = store.get(summary.id)
    assert snap.page == "advisor" and snap.author == "ana" and snap.layers == ("features.20",)
    assert snap.metrics["advisor"]["recommendation"] == want.recommendation


def test_url_parameters_round_trip_and_bad_values_are_ignored():
    choice, notes = adv.from_query(
        {"model": "scenes_resnet", "n": "99", "metric": "energy"},
        ["scenes_vgg", "scenes_resnet"],
        adv.Choice("scenes_vgg"),
    )
    assert choice == adv.Choice("scenes_resnet", "scenes", 8, "energy")
    assert notes == [f"the link's n was ignored: n must be in [2, {adv.MAX_IMAGES}]"]
    assert adv.from_query(adv.to_query(choice), ["scenes_resnet"], adv.Choice("x"))[0] == choice


def test_cost_bound():
    """3 scenes, 1 method + random, 2 layers, 2 normalizations, 5 steps: 3 x 2 x 2 x 2 x 2 x 6."""
    assert adv.forwards("scenes", 3, 1, 2, 2, 5, "insertion") == 3 * 2 * 2 * 2 * 2 * 6
    assert adv.forwards("scenes2", 3, 1, 1, 1, 5, "insertion") == 2 * 3 * 2 * 2 * 6
    assert adv.forwards("scenes", 3, 1, 1, 1, 5, "energy") == 0
    # ROAD: 9 MoRF + 9 LeRF fractions per map
    assert adv.forwards("scenes", 3, 1, 1, 1, 5, "road_morf") == 3 * 2 * 18


def test_the_annotated_quokka_on_lite0_ranks_by_its_outline_and_saves(fp32, tmp_path, monkeypatch):
    """An ImageNet model offers the quokka; its energy equals the library's on the same options, the
    one-image warning is shown, and Save to Review reads the photo through the data set."""
    monkeypatch.setenv("GRADLENS_DB", str(tmp_path / "review.db"))
    at = _page()
    at.selectbox(key="adv_model").select("efficientnet_lite0").run()
    at.radio(key="adv_images").set_value("quokka").run()
    at.selectbox(key="adv_metric").select("energy").run()
    at.multiselect(key="adv_methods").set_value(["gradcam"]).run()
    at.multiselect(key="adv_norms").set_value(["raw"]).run()
    at.radio(key="adv_layers").set_value("default").run()
    at.number_input(key="adv_sanity").set_value(0).run()
    at.button(key="adv_run").click().run()
    assert_clean(at)
    opts = dict(OPTIONS, normalizations=("raw",), metric="energy", n_boot=1000)
    want = advise("efficientnet_lite0", adv.images_spec("quokka", 1), AdviseOptions(**opts), log=lambda _s: None)
    shown = [w.value for w in at.warning if "Recommendation" in w.value]
    assert len(shown) == 1 and plain(shown[0]) == f"**Recommendation.** {want.recommendation}"
    assert "energy pointing game" in want.recommendation and not want.beats_random
    at.text_input(key="w_review_author").input("ana").run()
    at.button(key="adv_save").click().run()
    assert_clean(at)
    with SnapshotStore(tmp_path / "review.db") as store:
        (summary,) = store.list()
        assert store.get(summary.id).page == "advisor"


def _one_small_grid(at) -> None:
    """Grad-CAM, min-max, the default layer, 5 steps, no sanity check: OPTIONS, on the page."""
    at.multiselect(key="adv_methods").set_value(["gradcam"]).run()
    at.multiselect(key="adv_norms").set_value(["minmax"]).run()
    at.radio(key="adv_layers").set_value("default").run()
    at.slider(key="adv_steps").set_value(5).run()
    at.number_input(key="adv_sanity").set_value(0).run()


def _shows_the_librarys_advice(at, model, spec: str) -> None:
    """The page's recommendation box is advise()'s on the first 4 images of ``spec`` with OPTIONS."""
    want = advise(
        model,
        spec,
        AdviseOptions(**OPTIONS, n_boot=1000),
        log=lambda _s: None,
        dataset_options=AnnotatedOptions(max_images=4),
    )
    assert want.evaluations == 4
    shown = [b.value for b in [*at.warning, *at.success] if "Recommendation" in b.value]
    assert len(shown) == 1 and plain(shown[0]) == f"**Recommendation.** {want.recommendation}"


def _mask_folder(root, count: int) -> None:
    """``count`` one-object scenes as a mask folder (classes.txt: background, then scenes_vgg's classes)."""
    names = ("circle", "square", "triangle", "star", "cross", "diamond", "ellipse", "semicircle")
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.txt").write_text("\n".join(["background", *names]) + "\n")
    for i in range(count):
        s = make_scene(3_000 + i)
        Image.fromarray(s.image).save(root / "images" / f"s{i}.png")
        Image.fromarray((s.mask * (s.label + 1)).astype(np.uint8), mode="L").save(root / "masks" / f"s{i}.png")


def test_dataset_spec_stays_in_the_results_folder(tmp_path):
    root = tmp_path / "results"
    _mask_folder(root / "val", 1)
    (root / "val" / "ann.json").write_text("{}")
    assert adv.dataset_spec("masks:val", root) == f"masks:{root / 'val'}"
    assert (
        adv.dataset_spec("coco:val/ann.json:val/images", root)
        == f"coco:{root / 'val' / 'ann.json'}:{root / 'val' / 'images'}"
    )
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    refused = "no data set .* in the results folder"
    for text in (
        "masks:../outside",
        "masks:link",
        "masks:nothing",
        "coco:val",
        f"masks:{tmp_path}",
        "voc:val/classes.txt",
    ):
        with pytest.raises(InputError, match=refused):
            adv.dataset_spec(text, root)
    for text in ("val", "tiff:val", "masks:"):
        with pytest.raises(InputError, match="FORMAT:PATH"):
            adv.dataset_spec(text, root)


def test_dataset_spec_is_off_when_the_operator_turns_the_folder_off(monkeypatch):
    monkeypatch.setenv("GRADLENS_RESULTS_ROOT", "off")
    with pytest.raises(InputError, match="turned off"):
        adv.dataset_spec("masks:val")


def test_the_users_annotated_set_from_the_results_folder(fp32, tmp_path, monkeypatch):
    """The first n images of a mask folder in the results folder: the cost counts its image x class
    pairs, the recommendation is the library's on the same set and limit, a link keeps the set, and
    a path outside the folder is a message on the page."""
    root = tmp_path / "results"
    _mask_folder(root / "val", 5)
    monkeypatch.setenv("GRADLENS_RESULTS_ROOT", str(root))
    at = _page()
    at.selectbox(key="adv_model").select("scenes_vgg").run()
    at.radio(key="adv_images").set_value("dataset").run()
    assert [i.value for i in at.info if "Type the data set" in i.value]
    at.text_input(key="adv_dataset").input("masks:../").run()
    errors = [plain(e.value) for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("No data set 'masks:../' in the results folder"), errors
    assert str(tmp_path) not in errors[0]  # no server path shown
    at.text_input(key="adv_dataset").input("masks:val").run()
    at.number_input(key="adv_n").set_value(4).run()
    _one_small_grid(at)
    assert_clean(at)
    boxes = [m.value for m in at.markdown if "forward passes" in m.value]
    assert boxes and "Up to 96 forward passes" in boxes[0] and "for 4 image(s)" in boxes[0]  # 4 x 2 maps x 2 curves x 6
    at.button(key="adv_run").click().run()
    assert_clean(at)
    assert at.query_params["images"] == "dataset" and at.query_params["dataset"] == "masks:val"
    _shows_the_librarys_advice(at, "scenes_vgg", f"masks:{root / 'val'}")


def test_an_uploaded_checkpoint_of_its_own_classes_on_its_own_image_folder(fp32, tmp_path, monkeypatch):
    """A checkpoint uploaded in the sidebar (squeezenet1_1, 3 classes of the user's) is offered by
    the Advisor with the data set as its only image kind; the page's recommendation equals the
    library's on a copy of the same loaded model, the same set and limit."""
    import io

    import torch
    import torchvision

    from dashboard.app import uploads

    root = tmp_path / "results"
    fruit = ("apple", "banana", "cherry")
    for k, name in enumerate(fruit):
        for j in range(2):
            folder = root / "fruit" / name
            folder.mkdir(parents=True, exist_ok=True)
            pixels = np.random.default_rng(10 * k + j).integers(0, 256, (48, 64, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{j}.png")
    monkeypatch.setenv("GRADLENS_RESULTS_ROOT", str(root))
    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.save(torchvision.models.squeezenet1_1(num_classes=3).state_dict(), buf)
    at = run_page()
    at.file_uploader(key="w_ckpt_file").set_value(("fruit.pt", buf.getvalue(), "application/octet-stream"))
    at.selectbox(key="w_ckpt_arch").set_value("squeezenet1_1")
    at.number_input(key="w_ckpt_classes").set_value(3)
    at.text_area(key="w_ckpt_names").set_value("\n".join(fruit))
    at.run()
    at.button(key="w_ckpt_load").click().run()
    assert_clean(at)
    upload_id = at.selectbox(key="w_model").value
    assert upload_id.startswith("upload:")
    at.switch_page(PAGES["advisor"]).run()
    assert_clean(at)
    menu = at.selectbox(key="adv_model")
    label = "Uploaded: fruit.pt (squeezenet1_1)"  # the menu shows the upload by its file name
    assert menu.options[-1] == label
    menu.select(label).run()
    assert at.query_params["model"] == upload_id
    assert at.radio(key="adv_images").options == [adv.KINDS["dataset"]]
    at.text_input(key="adv_dataset").input("imagefolder:fruit").run()
    at.number_input(key="adv_n").set_value(4).run()
    _one_small_grid(at)
    at.button(key="adv_run").click().run()
    assert_clean(at)
    entry = at.session_state[uploads._UPLOAD_KEYS["models"]][upload_id]
    loaded = entry["handle"].loaded
    assert loaded.class_names == fruit
    _shows_the_librarys_advice(at, loaded, f"imagefolder:{root / 'fruit'}")
