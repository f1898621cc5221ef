"""Explanation drift (methods/pipeline/drift.py, `gradlens drift`): numbers against hand expectations.

* the same weights saved twice: every map equal, so Spearman exactly 1.0, top-1 change 0, every AUC
  equal, exit 0;
* the classifier negated (B's logits = -A's): B's Grad-CAM map of A's class is exactly -A's map
  (its gradient is -W_c / Z through the global pooling), so Spearman = Pearson = -1, map change 2,
  and B's top-1 is A's bottom class: top-1 change 1 on every image;
* the last conv's weights shuffled with a seed: past every threshold, exit 3, and each image's
  Spearman equals scipy's rank correlation of the two maps computed here with methods.explain;
* two architectures, a file of another architecture, bad thresholds: refused, exit 2.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

import methods
from methods.cli import main as gradlens
from methods.cli.drift import EXIT_BAD_INPUT, EXIT_DRIFT, EXIT_OK
from methods.errors import CheckpointError, InputError, OptionError
from methods.pipeline.drift import DriftOptions, DriftThresholds, drift, failed_thresholds, summarize_drift
from methods.pipeline.drift_report import MAX_REPORT_BYTES, read_report, write_report

FAST = DriftOptions(steps=3, n_boot=50)
N = 4


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """scenes_vgg's state_dict saved twice, negated at the classifier, shuffled at the last conv;
    scenes_resnet's state_dict (another architecture)."""
    root = tmp_path_factory.mktemp("drift")
    state = methods.load_model("scenes_vgg").model.state_dict()
    torch.save(state, root / "a.pt")
    torch.save(state, root / "a_again.pt")
    neg = {k: (-v if k.startswith("classifier.1.") else v.clone()) for k, v in state.items()}
    torch.save(neg, root / "negated.pt")
    last = [k for k, v in state.items() if v.ndim == 4][-1]  # features.18.weight
    w = state[last]
    perm = torch.randperm(w.numel(), generator=torch.Generator().manual_seed(0))
    torch.save({**state, last: w.flatten()[perm].reshape(w.shape)}, root / "damaged.pt")
    torch.save(methods.load_model("scenes_resnet").model.state_dict(), root / "resnet.pt")
    return root


def test_identical_checkpoints_agree_exactly(files):
    r = drift(files / "a.pt", files / "a_again.pt", f"scenes:{N}", arch="scenes_vgg", options=FAST)
    assert r["n_images"] == N and r["passed"] and r["failed"] == []
    for row in r["images"]:
        assert row["spearman"] == 1.0 and row["pearson"] == 1.0 and row["iou_top"] == 1.0
        assert row["map_change"] == 0.0 and row["top1_changed"] == 0 and row["top1_a"] == row["top1_b"]
        assert row["deletion_a"] == row["deletion_b"] and row["insertion_a"] == row["insertion_b"]
        assert row["faithfulness_drop"] == 0.0
    s = r["summary"]
    assert s["spearman"] == {"mean": 1.0, "low": 1.0, "high": 1.0, "n": N}
    assert s["top1_changed"]["mean"] == 0.0 and s["map_change"]["high"] == 0.0
    assert r["model_a"]["source"] == "checkpoint" and r["layer"] == "features.20"


def test_a_negated_classifier_reverses_every_map_and_class(files):
    r = drift("scenes_vgg", files / "negated.pt", f"scenes:{N}", arch="scenes_vgg", options=FAST)
    for row in r["images"]:
        assert row["spearman"] == pytest.approx(-1.0, abs=1e-12)
        assert row["pearson"] == pytest.approx(-1.0, abs=1e-12)
        assert row["map_change"] == pytest.approx(2.0, abs=1e-12)
        assert row["top1_changed"] == 1 and row["iou_top"] == 0.0
    assert r["summary"]["top1_changed"]["mean"] == 1.0
    assert r["model_a"]["source"] == "bundled" and r["model_b"]["source"] == "checkpoint"


def test_a_damaged_checkpoint_fails_every_threshold_with_numbers_a_reference_recomputes(files, tmp_path, capsys):
    out = tmp_path / "report.json"
    argv = ["drift", str(files / "a.pt"), str(files / "damaged.pt"), "--arch", "scenes_vgg"]
    argv += ["--images", f"scenes:{N}", "--steps", "3", "--n-boot", "50", "--quiet", "--out", str(out)]
    argv += ["--max-map-change", "0.1", "--max-top1-change", "0.25", "--max-faithfulness-drop", "0.05"]
    assert gradlens.main(argv) == EXIT_DRIFT
    text = capsys.readouterr().out
    assert "DRIFT: map_change" in text and "past max_map_change = 0.1" in text
    report = json.loads(out.read_text())
    assert [f["threshold"] for f in report["failed"]] == ["max_map_change", "max_top1_change", "max_faithfulness_drop"]
    assert report["passed"] is False
    moved = [row["map_change"] for row in report["images"]]
    assert moved == sorted(moved, reverse=True)  # most moved first
    assert report["most_moved"] == [row["image"] for row in report["images"]]

    a = methods.load_model("scenes_vgg")
    damaged = torch.load(files / "damaged.pt", weights_only=True)
    b_net = methods.load_model("scenes_vgg").model
    b_net.load_state_dict(damaged)
    by_name = {row["image"]: row for row in report["images"]}
    for i in range(N):
        seed = 10_000_000 + i
        image = methods.data.scenes.make_scene(seed).image
        x = a.preprocess(image)[None]
        ea = methods.explain(a, x, "gradcam", layers="features.20")
        eb = methods.explain(b_net, x, "gradcam", layers="features.20", target=int(ea.targets[0]))
        rho = spearmanr(ea.maps["features.20"][0].flatten().numpy(), eb.maps["features.20"][0].flatten().numpy())[0]
        row = by_name[f"scene:{seed}"]
        assert row["spearman"] == pytest.approx(rho, abs=1e-9)
        assert row["top1_changed"] == int(int(ea.probs[0].argmax()) != int(eb.probs[0].argmax()))
        assert row["faithfulness_drop"] == pytest.approx(
            (row["insertion_a"] - row["deletion_a"]) - (row["insertion_b"] - row["deletion_b"]), abs=1e-12
        )


def test_identical_checkpoints_exit_zero_with_every_threshold_at_its_tightest(files, tmp_path):
    argv = ["drift", str(files / "a.pt"), str(files / "a_again.pt"), "--arch", "scenes_vgg", "--images", "scenes:2"]
    argv += ["--steps", "2", "--n-boot", "20", "--quiet", "--out", str(tmp_path / "r.json")]
    argv += ["--max-map-change", "0", "--max-top1-change", "0", "--max-faithfulness-drop", "0"]
    assert gradlens.main(argv) == EXIT_OK  # a value equal to its limit is within it
    argv[-1] = "-0.01"  # demanding an improvement: identical weights cannot give one
    assert gradlens.main(argv) == EXIT_DRIFT
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["failed"] == [
        {"threshold": "max_faithfulness_drop", "statistic": "faithfulness_drop", "limit": -0.01, "value": 0.0}
    ]


def test_two_architectures_are_refused(files, capsys):
    with pytest.raises(CheckpointError, match="not one architecture"):
        drift("scenes_vgg", "scenes_resnet", "scenes:1", options=FAST)
    with pytest.raises(CheckpointError, match="does not fit the architecture of 'scenes_vgg'.*missing key"):
        drift("scenes_vgg", files / "resnet.pt", "scenes:1", arch="scenes_vgg", options=FAST)
    assert gradlens.main(["drift", "scenes_vgg", "scenes_resnet", "--images", "scenes:1", "--quiet"]) == EXIT_BAD_INPUT
    assert "not one architecture" in capsys.readouterr().err
    no_arch = ["drift", str(files / "a.pt"), "scenes_vgg", "--images", "scenes:1", "--quiet"]
    assert gradlens.main(no_arch) == EXIT_BAD_INPUT
    assert "--arch" in capsys.readouterr().err
    assert gradlens.main(["drift", "nope.pt", "scenes_vgg", "--images", "scenes:1"]) == EXIT_BAD_INPUT
    assert "neither an existing file nor a catalog model" in capsys.readouterr().err


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_map_change": -0.1},
        {"max_map_change": 2.01},
        {"max_top1_change": 1.5},
        {"max_top1_change": float("nan")},
        {"max_faithfulness_drop": 2.5},
        {"max_faithfulness_drop": -2.5},
    ],
)
def test_thresholds_outside_their_bounds_are_refused(kwargs):
    with pytest.raises(OptionError, match=next(iter(kwargs))):
        DriftThresholds(**kwargs)


def test_options_are_bounded():
    for bad in ({"limit": 0}, {"limit": 2001}, {"steps": 0}, {"top": 0.0}, {"baseline": "grey"}):
        with pytest.raises(OptionError):
            DriftOptions(**bad)
    with pytest.raises(OptionError, match="input-resolution"):
        DriftOptions(method="rise")
    assert gradlens.main(["drift", "scenes_vgg", "scenes_vgg", "--images", "scenes:1", "--limit", "5000"]) == 2


def test_limit_takes_the_first_images_and_says_so():
    r = drift("scenes_vgg", "scenes_vgg", "scenes:5", options=DriftOptions(limit=2, steps=2, n_boot=10))
    assert r["n_images"] == 2 and r["limited"] is True
    assert sorted(row["image"] for row in r["images"]) == ["scene:10000000", "scene:10000001"]


def test_summary_and_failed_thresholds_on_hand_rows():
    rows = [{"map_change": v, "spearman": 1 - v, "top1_changed": t} for v, t in ((0.0, 0), (0.5, 1), (1.0, 0))]
    rows = [{**r, **dict.fromkeys(("pearson", "iou_top", "faithfulness_a", "faithfulness_b"), 0.0)} for r in rows]
    rows = [{**r, "faithfulness_drop": 0.1, "deletion_change": 0.0, "insertion_change": 0.0} for r in rows]
    s = summarize_drift(rows, n_boot=200)
    assert s["map_change"]["mean"] == 0.5 and s["top1_changed"]["mean"] == pytest.approx(1 / 3)
    assert s["faithfulness_drop"] == {
        "mean": pytest.approx(0.1),
        "low": pytest.approx(0.1),
        "high": pytest.approx(0.1),
        "n": 3,
    }
    assert 0.0 <= s["map_change"]["low"] <= 0.5 <= s["map_change"]["high"] <= 1.0
    failed = failed_thresholds(s, DriftThresholds(max_map_change=0.5, max_top1_change=0.3, max_faithfulness_drop=0.2))
    assert [f["threshold"] for f in failed] == ["max_top1_change"]  # 0.5 <= 0.5 passes; 1/3 > 0.3 fails


def test_read_report_round_trip_and_refusals(files, tmp_path):
    r = drift(
        "scenes_vgg",
        files / "damaged.pt",
        "scenes:2",
        arch="scenes_vgg",
        options=FAST,
        thresholds=DriftThresholds(max_map_change=0.1),
    )
    path = write_report(r, tmp_path / "r.json")
    back = read_report(path.read_bytes())
    assert back["passed"] is False and back["failed"][0]["threshold"] == "max_map_change"
    assert [row["image"] for row in back["images"]] == [row["image"] for row in r["images"]]
    assert back["images"][0]["spearman"] == r["images"][0]["spearman"]
    assert back["summary"]["map_change"] == r["summary"]["map_change"]
    bad = [
        b"not json",
        b'{"kind": "other"}',
        json.dumps({**r, "version": 99}).encode(),
        path.read_bytes().replace(b'"spearman": ', b'"spearman": NaN, "x": ', 1),
        json.dumps({**r, "images": [{"image": 3}]}).encode(),
        json.dumps({**r, "images": []}).encode(),
        json.dumps({**r, "failed": [{"threshold": "max_map_change", "limit": None, "value": 1.0}]}).encode(),
        b" " * (MAX_REPORT_BYTES + 1),
    ]
    for data in bad:
        with pytest.raises(InputError):
            read_report(data)
    assert np.isfinite([row["map_change"] for row in back["images"]]).all()


def test_torchvision_checkpoints_on_a_folder_with_an_unreadable_file(tmp_path):
    """The commands' own checkpoint path (ModelRef: --arch resnet18 and a model config) on a folder:
    the same random weights saved twice agree exactly; a file that is no image is skipped and listed."""
    from PIL import Image
    from torchvision.models import resnet18

    torch.manual_seed(0)
    state = resnet18(num_classes=3).state_dict()
    torch.save(state, tmp_path / "r1.pt")
    torch.save(state, tmp_path / "r2.pt")
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    (folder / "notes.txt").write_text("not an image")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"class_names": ["a", "b", "c"], "input_size": 64}))
    out = tmp_path / "r.json"
    argv = ["drift", str(tmp_path / "r1.pt"), str(tmp_path / "r2.pt"), "--arch", "resnet18", "--model-config"]
    argv += [str(config), "--images", str(folder), "--steps", "2", "--n-boot", "20", "--quiet", "--out", str(out)]
    assert gradlens.main([*argv, "--max-map-change", "0"]) == EXIT_OK
    report = json.loads(out.read_text())
    assert report["n_images"] == 2 and [s[0] for s in report["skipped"]] == ["notes.txt"]
    assert report["layer"] == "layer4" and report["model_a"]["classes"] == 3
    assert all(r["spearman"] == 1.0 and r["map_change"] == 0.0 for r in report["images"])
    assert {r["target_name"] for r in report["images"]} <= {"a", "b", "c"}


def test_drift_reads_an_annotated_data_set(files, tmp_path):
    """A COCO set (count unknown until listed) is read with A's class names and bounded by --limit:
    the two scenes written as COCO give the same per-image numbers as the scenes themselves."""
    from tests.pipeline.test_evaluate_annotated import scenes_as_coco

    ann = scenes_as_coco(tmp_path, 2)
    as_coco = drift(files / "a.pt", files / "damaged.pt", f"coco:{ann}", arch="scenes_vgg", options=FAST)
    as_scenes = drift(files / "a.pt", files / "damaged.pt", "scenes2:2", arch="scenes_vgg", options=FAST)
    assert as_coco["n_images"] == 2 and not as_coco["limited"]
    coco_sp = sorted(r["spearman"] for r in as_coco["images"])
    scene_sp = sorted(r["spearman"] for r in as_scenes["images"])
    assert coco_sp == pytest.approx(scene_sp, abs=1e-6)
    one = drift(
        files / "a.pt",
        files / "a_again.pt",
        f"coco:{ann}",
        arch="scenes_vgg",
        options=DriftOptions(steps=3, n_boot=50, limit=1),
    )
    assert one["n_images"] == 1 and one["limited"] and one["passed"]
