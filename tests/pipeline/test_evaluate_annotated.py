"""``evaluate`` on annotated data sets: the rows hold exactly the library's localization numbers on
the union mask of each class, a COCO copy of scenes scores as the scenes themselves, and the Ray
engine gives the local engine's table."""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from annotated_kit import CLASSES, encode_string, picture, tiny_gap, write_coco
from methods.cams.core.explain import explain
from methods.data.annotated import rasterize_polygons
from methods.data.scenes import CLASS_NAMES, make_scene
from methods.errors import AnnotationError, OptionError
from methods.metrics.localization import energy_pointing_game, pointing_game
from methods.models.scenes.evaluation import EVAL_TWO_START
from methods.pipeline import evaluate as ev
from methods.pipeline.sources import load_sample, parse_images, sample_items

CAT_A = [4, 4, 20, 4, 20, 16, 4, 16]  # two cats (polygons) and an espresso (box only)
CAT_B = [40, 30, 60, 30, 50, 44]


def tiny_coco(root: pathlib.Path) -> pathlib.Path:
    picture(root / "a.png", 64, 48, 5)
    picture(root / "b.png", 64, 48, 6)
    images = [{"id": i + 1, "file_name": f, "width": 64, "height": 48} for i, f in enumerate(["a.png", "b.png"])]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 2, "bbox": [4, 4, 16, 12], "segmentation": [CAT_A]},
        {"id": 2, "image_id": 1, "category_id": 3, "bbox": [30, 2, 10, 8]},
        {"id": 3, "image_id": 1, "category_id": 2, "bbox": [40, 30, 20, 14], "segmentation": [CAT_B]},
        {
            "id": 4,
            "image_id": 2,
            "category_id": 4,
            "bbox": [10, 10, 30, 30],
            "segmentation": [[10, 10, 40, 10, 40, 40]],
        },
    ]
    return write_coco(root, images, anns)


def test_coco_rows_match_a_direct_localization_call(tmp_path, fp32):
    loaded, path = tiny_gap(), tiny_coco(tmp_path)
    df = ev.evaluate(loaded, f"coco:{path}", methods=["gradcam"], steps=3, workers=1, progress=False)
    assert list(df.columns) == list(ev.COLUMNS)
    # a.png: the cat (both objects, one row set) then the espresso; b.png: the wallaby
    firsts = df[df["method"] == "gradcam"][["image", "label", "target", "target_name"]].values.tolist()
    assert firsts == [["a.png", 1, 1, "Egyptian cat"], ["a.png", 2, 2, "espresso"], ["b.png", 3, 3, "wallaby"]]
    assert len(df) == 3 * 3  # x (gradcam, random, centre)
    cat = rasterize_polygons([CAT_A], 48, 64) | rasterize_polygons([CAT_B], 48, 64)  # the class's union
    espresso = np.zeros((48, 64), bool)
    espresso[2:10, 30:40] = True
    image = np.array(Image.open(tmp_path / "a.png"))
    x = loaded.preprocess(image)[None]
    for label, mask in ((1, cat), (2, espresso)):
        sal = explain(loaded, x, "gradcam", target=label).maps["features.4"][0]
        row = df[(df["image"] == "a.png") & (df["method"] == "gradcam") & (df["label"] == label)].iloc[0]
        assert bool(row["pointing_hit"]) == pointing_game(sal, mask)
        assert row["energy_pg"] == pytest.approx(energy_pointing_game(sal, mask), abs=1e-6)
    assert df["pointing_hit"].notna().all() and df["energy_pg"].between(0, 1).all()


def test_imagefolder_rows_carry_the_label_and_no_localization(tmp_path, fp32):
    picture(tmp_path / "espresso" / "1.png", 64, 48)
    df = ev.evaluate(tiny_gap(), f"imagefolder:{tmp_path}", methods=["gradcam"], steps=2, workers=1, progress=False)
    assert (df["label"] == 2).all() and (df["target"] == 2).all()
    assert df["pointing_hit"].isna().all() and df["energy_pg"].isna().all()


def test_unknown_class_stops_before_any_work(tmp_path):
    picture(tmp_path / "expresso" / "1.png", 8, 8)
    with pytest.raises(AnnotationError, match=r"class 'expresso' is not a class of the model. Did you mean 'espresso'"):
        ev.evaluate(tiny_gap(), f"imagefolder:{tmp_path}", methods=["gradcam"], workers=1, progress=False)


def test_items_are_plain_and_need_the_class_names(tmp_path):
    import json

    source = parse_images(f"coco:{tiny_coco(tmp_path)}")
    assert source.kind == "annotated" and source.dataset.format == "coco"
    with pytest.raises(OptionError, match="pass the model's class_names"):
        sample_items(source, 0)
    items = sample_items(source, 0, class_names=CLASSES)
    again = json.loads(json.dumps(items))  # what any engine sends is what the worker rebuilds
    for a, b in zip(items, again):
        sa, sb = load_sample(a), load_sample(b)
        assert sa.labels == sb.labels and np.array_equal(sa.masks, sb.masks) and np.array_equal(sa.image, sb.image)
    assert load_sample(items[0]).labels == (1, 2) and load_sample(items[0]).annotated.labels == (1, 2, 1)


def scenes_as_coco(root: pathlib.Path, n: int) -> pathlib.Path:
    """The first n two-object evaluation scenes as PNGs with each object's exact mask as an RLE."""
    images, anns = [], []
    for i in range(n):
        sc = make_scene(EVAL_TWO_START + i, n_objects=2)
        Image.fromarray(sc.image).save(root / f"s{i}.png")
        images.append({"id": i, "file_name": f"s{i}.png", "width": 128, "height": 128})
        for k, (lab, m) in enumerate(zip(sc.labels, sc.masks)):
            flat, runs, cur, run = m.T.flatten(), [], False, 0
            for v in flat:
                if v != cur:
                    runs.append(run)
                    cur, run = v, 0
                run += 1
            runs.append(run)
            rows, cols = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
            box = [int(cols[0]), int(rows[0]), int(cols[-1] + 1 - cols[0]), int(rows[-1] + 1 - rows[0])]
            rle = {"size": [128, 128], "counts": encode_string(runs)}
            anns.append({"id": 10 * i + k, "image_id": i, "category_id": lab, "bbox": box, "segmentation": rle})
    cats = [{"id": i, "name": c} for i, c in enumerate(CLASS_NAMES)]
    return write_coco(root, images, anns, categories=cats)


SAME = [c for c in ev.COLUMNS if c not in ("image", "seed", "seconds", "eval_seconds")]


def test_scenes_written_as_coco_score_as_the_scenes(tmp_path):
    """scenes2:2 and the same two scenes as a COCO set (PNG + RLE masks) give the same table."""
    path = scenes_as_coco(tmp_path, 2)
    opts = dict(methods=["gradcam"], steps=3, workers=1, progress=False, precision="fp32")
    scenes = ev.evaluate("scenes_vgg", "scenes2:2", **opts)
    coco = ev.evaluate("scenes_vgg", f"coco:{path}", **opts)
    assert coco["image"].tolist() == [f"s{i}.png" for i in (0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1)]
    pd.testing.assert_frame_equal(scenes[SAME], coco[SAME], atol=1e-6)


def test_annotated_set_on_ray_equals_the_local_run(tmp_path, ray_local):
    path = scenes_as_coco(tmp_path, 2)
    opts = dict(methods=["gradcam"], steps=2, progress=False, precision="fp32")
    here = ev.evaluate("scenes_vgg", f"coco:{path}", engine="local", workers=1, **opts)
    there = ev.evaluate("scenes_vgg", f"coco:{path}", engine="ray", workers=2, **opts)
    cols = [c for c in ev.COLUMNS if c not in ("seconds", "eval_seconds")]
    pd.testing.assert_frame_equal(here[cols], there[cols], atol=1e-6)


def test_a_detector_on_an_annotated_set_is_refused(tmp_path):
    with pytest.raises(OptionError, match="annotated data sets are scored with classifiers for now"):
        ev.evaluate("scenes_det", f"coco:{tiny_coco(tmp_path)}", methods=["gradcam"], workers=1, progress=False)
