"""The evaluation command end to end, in-process: tiny runs, the written tables read back and checked.

A tiny untrained 8-class CNN stands in for a catalog model (the pipeline's
``load_model`` is patched), so these tests need no weights and stay fast. The claim that needs a trained model
(Grad-CAM beats the random map on 200 scenes) is in ``test_faithfulness.py``.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from methods.cli import evaluate as evaluate_cli
from methods.data.scenes import CLASS_NAMES, EVAL_SEED_START, make_scene
from methods.metrics.faithfulness import curves as fa
from methods.metrics.localization import energy_pointing_game, pointing_game
from methods.pipeline import evaluate as ev

STEPS = 4


class Tiny(nn.Module):
    def __init__(self, classes: int = 8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(4),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def tiny_loaded(classes=CLASS_NAMES, name="tiny"):
    from methods.models import LoadedModel

    torch.manual_seed(0)
    return LoadedModel(
        name=name,
        model=Tiny(len(classes)).eval(),
        input_size=(128, 128),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        class_names=tuple(classes),
        default_layer="features.4",
        source="checkpoint",
    )


@pytest.fixture
def tiny(monkeypatch):
    loaded = tiny_loaded()
    monkeypatch.setattr("methods.pipeline.common.load_model", lambda name, **kw: loaded)
    monkeypatch.setattr(
        "methods.pipeline.engines.default_workers", lambda: 1
    )  # the tiny model lives in this process only
    return loaded


def test_cli_scenes_to_parquet(tiny, tmp_path, capsys, fp32):
    out = tmp_path / "r.parquet"
    code = evaluate_cli.main(
        [
            "--model",
            "tiny",
            "--images",
            "scenes:3",
            "--methods",
            "gradcam,gradcampp",
            "--seed",
            "5",
            "--steps",
            str(STEPS),
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    df = pd.read_parquet(out)
    assert list(df.columns) == list(ev.COLUMNS)
    assert len(df) == 3 * 4  # 3 scenes x (gradcam, gradcampp, random, centre) x 1 layer
    assert sorted(df["method"].unique()) == ["centre", "gradcam", "gradcampp", "random"]
    assert set(df["layer"]) == {"features.4"}
    seeds = [EVAL_SEED_START + 5 + i for i in range(3)]
    assert sorted(df["seed"].unique().tolist()) == seeds
    for s in seeds:
        sc = make_scene(s)
        rows = df[df["seed"] == s]
        assert (rows["label"] == sc.label).all() and (rows["target"] == sc.label).all()
        assert (rows["image"] == f"scene:{s}").all()
        assert (rows["target_name"] == CLASS_NAMES[sc.label]).all()
    for col in ("deletion_auc", "insertion_auc", "energy_pg"):
        assert df[col].between(0, 1).all(), col
    assert df["avg_drop"].between(0, 100).all()
    assert df["pointing_hit"].notna().all()
    assert (df["steps"] == STEPS).all() and (df["baseline"] == "blur").all() and (df["precision"] == "fp32").all()

    # one row recomputed directly from the library: the table holds exactly these numbers
    from methods.cams.core.explain import explain

    s = seeds[1]
    sc = make_scene(s)
    x = tiny.preprocess(sc.image)[None]
    sal = explain(tiny, x, "gradcam", target=sc.label).maps["features.4"][0]
    row = df[(df["seed"] == s) & (df["method"] == "gradcam")].iloc[0]
    blur = fa.deletion_curve(tiny, x, sal, sc.label, steps=STEPS, baseline="blur").auc  # the default now
    assert row["deletion_auc"] == pytest.approx(blur, abs=1e-6)
    assert fa.deletion_curve(tiny, x, sal, sc.label, steps=STEPS).auc == blur
    assert row["insertion_auc"] == pytest.approx(fa.insertion_curve(tiny, x, sal, sc.label, steps=STEPS).auc, abs=1e-6)
    assert row["avg_drop"] == pytest.approx(fa.confidence_change(tiny, x, sal, sc.label).drop, abs=1e-4)
    assert row["energy_pg"] == pytest.approx(energy_pointing_game(sal, sc.masks[0]), abs=1e-9)
    assert bool(row["pointing_hit"]) == pointing_game(sal, sc.masks[0])
    ref = df[(df["seed"] == s) & (df["method"] == "random")].iloc[0]
    rmap = fa.reference_maps(tuple(sal.shape), seed=5 + 1)["random"]  # seed + image index
    assert ref["deletion_auc"] == pytest.approx(fa.deletion_curve(tiny, x, rmap, sc.label, steps=STEPS).auc, abs=1e-6)

    printed = capsys.readouterr().out
    expected = ev.chance_warnings(ev.summarize(df))  # the untrained net: whatever it gives, it is printed
    assert [line for line in printed.splitlines() if line.startswith("warning:")] == expected
    assert "3 image(s), 12 rows" in printed
    for name in ("gradcam", "gradcampp", "random", "centre", "deletion AUC", "insertion AUC", "pointing"):
        assert name in printed


def test_cli_two_object_scenes_to_csv_explains_each_class(tiny, tmp_path):
    out = tmp_path / "sub" / "r.csv"
    assert (
        evaluate_cli.main(
            [
                "--model",
                "tiny",
                "--images",
                "scenes2:2",
                "--steps",
                "2",
                "--out",
                str(out),
                "--quiet",
                "--no-references",
            ]
        )
        == 0
    )
    df = pd.read_csv(out)
    assert len(df) == 2 * 2  # 2 scenes x 2 classes x gradcam
    from methods.models.scenes.train import EVAL_TWO_START

    for i in range(2):
        sc = make_scene(EVAL_TWO_START + i, n_objects=2)
        rows = df[df["seed"] == sc.seed]
        assert sorted(rows["target"]) == sorted(sc.labels)
        for k, label in enumerate(sc.labels):
            row = rows[rows["target"] == label].iloc[0]
            x = tiny.preprocess(sc.image)[None]
            from methods.cams.core.explain import explain

            sal = explain(tiny, x, "gradcam", target=label).maps["features.4"][0]
            assert row["energy_pg"] == pytest.approx(energy_pointing_game(sal, sc.masks[k]), abs=1e-6)


def _png(rgb) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def test_folder_of_own_images_skips_bad_files(tiny, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    (folder / "a.png").write_bytes(_png(rng.integers(0, 255, (60, 90, 3), dtype=np.uint8)))
    (folder / "b.png").write_bytes(_png(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("hello")
    out = tmp_path / "r.parquet"
    assert evaluate_cli.main(["--model", "tiny", "--images", str(folder), "--steps", "2", "--out", str(out)]) == 0
    df = pd.read_parquet(out)
    assert sorted(df["image"].unique()) == ["a.png", "b.png"]
    assert len(df) == 2 * 3
    assert df["label"].isna().all() and df["pointing_hit"].isna().all() and df["energy_pg"].isna().all()
    assert (df["target"] == df["predicted"]).all()
    err = capsys.readouterr()
    for name in ("broken.png", "empty.jpg", "notes.txt"):
        assert f"skipped {name}" in err.err
    assert "(3 file(s) skipped)" in err.out
    assert "5/5" in err.err  # the progress bar counts skipped files as done


def test_all_layers_and_named_layers(tiny):
    df = ev.evaluate(tiny, "scenes:1", layers="all", steps=1, progress=False, references=False)
    from methods.cams.core.layers import candidate_layers

    assert list(df["layer"]) == [info.name for info in candidate_layers(tiny.model, (128, 128))]
    df = ev.evaluate(tiny, "scenes:1", layers="features.1,features.4", steps=1, progress=False)
    assert sorted(set(df["layer"])) == ["features.1", "features.4"] and len(df) == 2 * 3


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--methods", "gradcm"], "gradcam"),  # unknown method: the closest name is suggested
        (["--methods", "gradcam,random"], "reference"),
        (["--out", "r.txt"], ".parquet or .csv"),
        (["--images", "scenes:0"], "scenes:"),
        (["--images", "/no/such/folder"], "folder"),
        (["--baseline", "black"], "'black'"),
        (["--precision", "fp16"], "'fp16'"),
        (["--steps", "0"], "steps"),
        (["--layers", "nope"], "nope"),
    ],
)
def test_cli_bad_input_is_a_clear_error(tiny, tmp_path, capsys, argv, needle):
    base = {"--images": "scenes:1", "--out": str(tmp_path / "r.parquet"), "--methods": "gradcam"}
    args = dict(base)
    args.update(dict(zip(argv[::2], argv[1::2])))
    flat = ["--model", "tiny", "--quiet"] + [v for kv in args.items() for v in kv]
    assert evaluate_cli.main(flat) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err


def test_scenes_need_a_scene_model(monkeypatch, tmp_path, capsys):
    other = tiny_loaded(classes=[f"c{i}" for i in range(10)], name="other")
    monkeypatch.setattr("methods.pipeline.common.load_model", lambda name, **kw: other)
    assert (
        evaluate_cli.main(["--model", "other", "--images", "scenes:1", "--out", str(tmp_path / "r.csv"), "--quiet"])
        == 2
    )
    assert "scenes' classes" in capsys.readouterr().err


def test_summary_has_mean_and_std_per_method_and_layer():
    df = pd.DataFrame(
        dict(
            method=["gradcam", "gradcam", "random"],
            layer=["l", "l", "l"],
            deletion_auc=[0.1, 0.3, 0.5],
            insertion_auc=[0.5, 0.7, 0.2],
            avg_drop=[10.0, 30.0, 50.0],
            increase=[True, False, False],
            pointing_hit=pd.array([True, None, False], dtype="boolean"),
            energy_pg=pd.array([0.5, None, 0.1], dtype="Float64"),
            seconds=[0.1, 0.1, 0.0],
        )
    )
    s = ev.summarize(df).set_index("method")
    assert s.loc["gradcam", "n"] == 2
    assert s.loc["gradcam", "deletion_auc_mean"] == pytest.approx(0.2)
    assert s.loc["gradcam", "deletion_auc_std"] == pytest.approx(0.1)  # population std
    assert s.loc["gradcam", "increase_mean"] == pytest.approx(50.0)  # percent
    assert s.loc["gradcam", "pointing_hit_mean"] == pytest.approx(100.0)  # the empty one is left out
    assert s.loc["random", "pointing_hit_mean"] == pytest.approx(0.0)
    text = ev.format_summary(ev.summarize(df))
    assert "0.200 ± 0.100" in text and "gradcam" in text and "random" in text


def test_chance_warnings_by_hand():
    """gradcam beats random on both curves; gradcampp ties on deletion (not lower: a warning) and
    loses on insertion; each layer is compared with the random map of the same layer."""
    s = pd.DataFrame(
        {
            "method": ["gradcam", "gradcampp", "gradcam", "random", "centre", "random"],
            "layer": ["a", "a", "b", "a", "a", "b"],
            "deletion_auc_mean": [0.15, 0.32, 0.40, 0.32, 0.50, 0.35],
            "insertion_auc_mean": [0.75, 0.30, 0.60, 0.33, 0.10, 0.50],
        }
    )
    assert ev.chance_warnings(s) == [
        "warning: gradcampp at a does not beat the random map on deletion (AUC 0.320 vs random 0.320; lower is better)",
        "warning: gradcampp at a does not beat the random map on insertion (AUC 0.300 vs random 0.330; higher is better)",
        "warning: gradcam at b does not beat the random map on deletion (AUC 0.400 vs random 0.350; lower is better)",
    ]
    assert ev.chance_warnings(s[s["method"] != "random"]) == []  # --no-references: nothing to compare with


def test_csv_output_neutralises_formula_cells(tiny, tmp_path):
    """A file named like a formula: its name in the CSV starts with a quote, so a spreadsheet
    shows it as text (numbers, negative ones too, stay numbers)."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "=HYPERLINK(1).png").write_bytes(_png(np.full((32, 32, 3), 90, np.uint8)))
    out = tmp_path / "r.csv"
    assert (
        evaluate_cli.main(
            [
                "--model",
                "tiny",
                "--images",
                str(folder),
                "--steps",
                "1",
                "--out",
                str(out),
                "--quiet",
                "--no-references",
            ]
        )
        == 0
    )
    raw = out.read_text().splitlines()
    assert raw[1].startswith("'=HYPERLINK(1).png,")
    assert pd.read_csv(out)["deletion_auc"].between(0, 1).all()
