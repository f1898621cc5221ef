"""batch and evaluate with the bundled detector (scenes_det) and segmenter (scenes_seg): one row per
object, each object's energy and pointing as :func:`methods.object_scores` gives them directly, and a
classifier's tables as before.

The objects are known by hand: scenes 11_000_001 and 11_000_002 (``scenes2:2`` with ``seed=1``)
hold two objects each (classes circle + star, cross + diamond); both bundled models find exactly
those (checked below against the masks), nothing else.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from methods.data.scenes import make_scene
from methods.metrics.objects import object_scores
from methods.models.catalog import load_model
from methods.models.scenes.evaluation import EVAL_TWO_START
from methods.pipeline import evaluate as ev
from methods.pipeline.batch import run_batch
from methods.pipeline.manifest import COLUMNS, OBJECT_ONLY
from methods.targets import BoxTarget, RegionTarget

SEEDS = (EVAL_TWO_START + 1, EVAL_TWO_START + 2)


@pytest.fixture(scope="module")
def det():
    return load_model("scenes_det")


@pytest.fixture(scope="module")
def seg():
    return load_model("scenes_seg")


def truth() -> list[tuple[str, int, tuple[float, float, float, float], np.ndarray]]:
    """(scene name, label in the models' numbering, box from the mask, mask) of every object, by hand."""
    out = []
    for seed in SEEDS:
        sc = make_scene(seed, n_objects=2)
        for lab, m in zip(sc.labels, sc.masks):
            ys, xs = np.where(m)
            out.append((f"scene:{seed}", int(lab) + 1, (xs.min(), ys.min(), xs.max() + 1.0, ys.max() + 1.0), m))
    return out


def test_hand_known_objects():
    assert [(n, lab) for n, lab, _, _ in truth()] == [
        (f"scene:{SEEDS[0]}", 1),
        (f"scene:{SEEDS[0]}", 4),
        (f"scene:{SEEDS[1]}", 5),
        (f"scene:{SEEDS[1]}", 6),
    ]


def _evaluate(model, **kw):
    opts = dict(methods=["gradcam"], seed=1, steps=3, precision="fp32", progress=False, workers=1, log=lambda s: None)
    return ev.evaluate(model, "scenes2:2", **(opts | kw))


def test_evaluate_detector_one_row_per_ground_truth_object(det):
    df = _evaluate(det, references=False)
    objs = truth()
    assert list(df.columns) == list(ev.OBJECT_COLUMNS) and len(df) == len(objs) == 4
    assert df["detected"].all() and (df["method"] == "gradcam").all() and (df["task"] == "detection").all()
    assert [(r.image, r.label) for r in df.itertuples()] == [(n, lab) for n, lab, _, _ in objs]
    assert list(df["label_name"]) == ["circle", "star", "cross", "diamond"]
    from methods.cams.core.explain import explain

    for row, (name, lab, box, _) in zip(df.itertuples(), objs):
        assert row.box == ",".join(f"{v:g}" for v in box)
        assert 0.5 < row.score <= 1.0
        x = det.preprocess(make_scene(int(name.split(":")[1]), n_objects=2).image)[None]
        target = BoxTarget(box, lab, iou_threshold=0.5)
        sal = explain(det, x, "gradcam", target=target).maps[det.default_layer][0]
        direct = object_scores(det, x, sal, target, curves=row.Index == 0, steps=3, precision="fp32")
        assert row.energy_pg == pytest.approx(direct.energy["map"], abs=1e-6)
        assert row.pointing_hit == direct.pointing["map"]
        if row.Index == 0:  # the curves of one object (the slow part)
            assert row.deletion_auc == pytest.approx(direct.deletion["map"], abs=1e-6)
            assert row.insertion_auc == pytest.approx(direct.insertion["map"], abs=1e-6)


def test_evaluate_detector_missed_object_is_one_row_without_a_map(det):
    blind = dataclasses.replace(det, model=copy.deepcopy(det.model))
    blind.model.roi_heads.score_thresh = 1.0  # it detects nothing
    df = _evaluate(blind, references=True, steps=2)
    assert len(df) == 4 and not df["detected"].any() and df["method"].isna().all() and df["energy_pg"].isna().all()


def test_evaluate_segmenter_one_row_per_class_present_with_references(seg):
    df = _evaluate(seg, references=True)
    objs = truth()
    assert len(df) == len(objs) * 3  # gradcam, random, centre on the default layer
    assert list(df["method"][:3]) == ["gradcam", "random", "centre"]
    maps = df[df["method"] == "gradcam"]
    assert [(r.image, r.label) for r in maps.itertuples()] == [(n, lab) for n, lab, _, _ in objs]
    from methods.cams.core.explain import explain

    for row, (name, lab, _, mask) in zip(maps.itertuples(), objs):
        x = seg.preprocess(make_scene(int(name.split(":")[1]), n_objects=2).image)[None]
        target = RegionTarget(lab, mask=torch.from_numpy(mask))
        sal = explain(seg, x, "gradcam", target=target).maps[seg.default_layer][0]
        direct = object_scores(seg, x, sal, target, curves=False)
        assert row.energy_pg == pytest.approx(direct.energy["map"], abs=1e-6)
        with torch.no_grad():
            assert row.score == pytest.approx(float(target.scores(seg.model(x))[0]), rel=1e-4)
    # the map beats the random map on energy for every object (the segmenter is good)
    rand = df[df["method"] == "random"]["energy_pg"].to_numpy(float)
    assert (maps["energy_pg"].to_numpy(float) > rand).all()


def test_evaluate_classifier_table_unchanged():
    df = ev.evaluate("scenes_vgg", "scenes:1", steps=2, progress=False, workers=1, references=False)
    assert list(df.columns) == list(ev.COLUMNS) and len(df) == 1


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("objects") / "in"
    root.mkdir()
    for seed in SEEDS:
        Image.fromarray(make_scene(seed, n_objects=2).image).save(root / f"s{seed}.png")
    return root


@pytest.mark.parametrize("name", ["det", "seg"])
def test_batch_one_row_per_object_with_its_maps(name, request, folder, tmp_path):
    loaded = request.getfixturevalue(name)
    res = run_batch(loaded, folder, tmp_path / "out", methods="gradcam", workers=1, log=lambda s: None)
    m = res.manifest
    objs = truth()
    assert res.done == 2 and not res.failed and not res.skipped and len(m) == len(objs)
    assert list(m.columns) == list(COLUMNS)
    assert [(r.image, r.target) for r in m.itertuples()] == [(f"s{n.split(':')[1]}.png", lab) for n, lab, _, _ in objs]
    assert list(m["object"]) == [0, 1, 0, 1]
    for row, (_, lab, box, mask) in zip(m.itertuples(), objs):
        for view in ("grayscale", "heatmap", "overlay"):
            assert (res.out / getattr(row, view)).is_file() and f"object{row.object}__gradcam__" in getattr(row, view)
        raw = torch.from_numpy(np.load(res.out / row.maps)[row.map_key])
        x = loaded.preprocess(np.array(Image.open(folder / row.image).convert("RGB")))[None]
        got = tuple(float(v) for v in row.box.split(","))
        if name == "det":  # the detector's own box: on the object (IoU with the mask's box)
            target = BoxTarget(got, lab)
            inter = max(0.0, min(got[2], box[2]) - max(got[0], box[0])) * max(
                0.0, min(got[3], box[3]) - max(got[1], box[1])
            )
            union = (got[2] - got[0]) * (got[3] - got[1]) + (box[2] - box[0]) * (box[3] - box[1]) - inter
            assert inter / union > 0.7 and row.score >= 0.5
        else:  # the predicted mask of the class: mostly the true object
            with torch.no_grad():
                pred = loaded.model(x)["out"][0].argmax(0).numpy() == lab
            assert (pred & mask).sum() / (pred | mask).sum() > 0.7
            target = RegionTarget(lab, mask=torch.from_numpy(pred))
        direct = object_scores(None, x, raw, target, curves=False)
        assert row.energy_pg == pytest.approx(direct.energy["map"], abs=1e-6)
        assert row.energy_random == pytest.approx(direct.energy["random"], abs=1e-6)
        assert row.energy_centre == pytest.approx(direct.energy["centre"], abs=1e-6)
        assert row.pointing_hit == direct.pointing["map"]
    again = run_batch(loaded, folder, tmp_path / "out", methods="gradcam", workers=1, log=lambda s: None)
    assert again.done == 0 and again.already == 2 and len(again.manifest) == len(objs)


def test_batch_classifier_rows_leave_object_columns_empty(folder, tmp_path):
    res = run_batch("scenes_vgg", folder, tmp_path / "out", methods="gradcam", workers=1, log=lambda s: None)
    m = res.manifest
    assert len(m) == 2 and list(m.columns) == list(COLUMNS)
    assert all(m[c].isna().all() for c in OBJECT_ONLY)
    assert m["map_key"].str.startswith("gradcam__").all() and m["overlay"].str.contains("/gradcam__").all()


def test_object_options_are_bounded(det, folder, tmp_path):
    from methods.errors import OptionError

    with pytest.raises(OptionError, match="min_score"):
        run_batch(det, folder, tmp_path / "o", min_score=1.5, log=lambda s: None)
    with pytest.raises(OptionError, match="max_objects"):
        ev.evaluate(det, "scenes:1", max_objects=0, progress=False)
    with pytest.raises(OptionError, match="label file"):
        labels = tmp_path / "l.csv"
        pd.DataFrame({"image": ["a.png"], "label": [0]}).to_csv(labels, index=False)
        run_batch(det, folder, tmp_path / "o", targets=labels, log=lambda s: None)
