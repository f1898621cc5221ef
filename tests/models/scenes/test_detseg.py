"""The bundled scene detector and segmenter: metrics by hand, the trained weights on fresh scenes
(seeds never used in training; exact masks and boxes known), sizes, cards and the seeded training script."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from methods.data.scenes import TRAIN_SEEDS, make_scene
from methods.models import load_model
from methods.models.scenes import detseg_eval as ev
from methods.models.scenes import detseg_nets as dn
from methods.models.scenes.detseg_train import train_detseg

#: Fresh scenes for the test: disjoint from training and from the evaluation script's first 400.
TEST_START = ev.EVAL_DETSEG_START + 50_000
N_TEST = 24
#: A little under the evaluation script's figures on 400 scenes (the model cards), for 24 scenes.
MAP_FLOOR = 0.85
MIOU_FLOOR = 0.80


def test_average_precision_by_hand():
    # tp, fp, tp over 2 truths: recall .5/.5/1, precision 1/.5/.667 -> envelope 1 then .667
    assert ev.average_precision(np.array([1, 0, 1]), np.array([0.9, 0.8, 0.7]), 2) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert ev.average_precision(np.array([0, 1]), np.array([0.9, 0.8]), 1) == pytest.approx(0.5)
    assert ev.average_precision(np.array([]), np.array([]), 3) == 0.0


def test_detection_map_matches_by_class_and_iou():
    truths = [(np.array([[0, 0, 10, 10], [20, 20, 40, 40]], np.float32), (0, 1))]
    preds = [
        {
            "boxes": np.array([[0, 0, 10, 11], [20, 20, 40, 40], [0, 0, 10, 10]], np.float32),
            "labels": np.array([1, 1, 2]),  # 1-based: class 0, class 0 (wrong place), class 1 (wrong place)
            "scores": np.array([0.9, 0.5, 0.8]),
        }
    ]
    r = ev.detection_map(preds, truths)
    assert r["per_class"]["circle"] == pytest.approx(1.0)  # IoU 10/11 >= 0.5 first, the false one after
    assert r["per_class"]["square"] == pytest.approx(0.0)
    assert np.isnan(r["per_class"]["triangle"]) and r["map"] == pytest.approx(0.5)


def test_miou_by_hand_and_boxes_of_masks():
    t = np.array([[0, 1], [1, 1]])
    p = np.array([[0, 1], [0, 1]])
    r = ev.segmentation_miou([p], [t], n=2)
    assert r["per_class"]["background"] == pytest.approx(1 / 2) and r["per_class"]["circle"] == pytest.approx(2 / 3)
    m = np.zeros((1, 6, 7), bool)
    m[0, 2:4, 1:6] = True
    assert ev.boxes_of(m).tolist() == [[1.0, 2.0, 6.0, 4.0]]


@pytest.fixture(scope="module")
def fresh():
    scenes = [make_scene(TEST_START + i, n_objects=1 + i % 2) for i in range(N_TEST)]
    assert all(s.seed >= TRAIN_SEEDS.stop for s in scenes)
    return scenes


def test_scenes_det_reaches_the_goal_on_fresh_scenes(fresh):
    lm = load_model("scenes_det")
    assert lm.task == "detection" and lm.mean == (0.0, 0.0, 0.0) and lm.std == (1.0, 1.0, 1.0)
    assert type(lm.model).__name__ == "FasterRCNN" and lm.class_names[0] == "background"
    torch.set_num_threads(1)
    r = ev.evaluate_det(lm.model, fresh)
    assert r["map"] >= MAP_FLOOR, r
    x = torch.from_numpy(fresh[1].image).permute(2, 0, 1).float()[None] / 255.0  # the LoadedModel's input
    assert torch.allclose(lm.preprocess(fresh[1].image)[None], x)


def test_scenes_seg_reaches_the_goal_on_fresh_scenes(fresh):
    lm = load_model("scenes_seg")
    assert lm.task == "segmentation" and lm.num_classes == 9
    torch.set_num_threads(1)
    r = ev.evaluate_seg(lm.model, fresh)
    assert r["miou"] >= MIOU_FLOOR, r


@pytest.mark.parametrize("name", dn.DETSEG)
def test_weights_are_small_and_carded(name):
    path, card = dn.detseg_weights_path(name), json.loads(dn.detseg_card_path(name).read_text())
    assert path.stat().st_size <= 5 * 2**20
    assert card["task"] == dn.DETSEG_TASKS[name] and card["weights_bytes"] == path.stat().st_size
    assert card["eval"]["seed_start"] == ev.EVAL_DETSEG_START >= TRAIN_SEEDS.stop


def test_training_is_seeded(tmp_path):
    """Two 2-step runs with the same seed write the same weights (and the file loads into the net)."""
    from safetensors.torch import load_file

    a = train_detseg("scenes_det", steps=2, out_dir=tmp_path / "a", n_eval=0, log_every=0)
    train_detseg("scenes_det", steps=2, out_dir=tmp_path / "b", n_eval=0, log_every=0)
    wa, wb = (
        load_file(str(tmp_path / "a" / "scenes_det.safetensors")),
        load_file(str(tmp_path / "b" / "scenes_det.safetensors")),
    )
    assert a["training"]["steps"] == 2 and wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    dn.build_detseg("scenes_det").load_state_dict(wa, strict=True)
