"""The commands on an annotated data set: the quokka as a COCO set, its class "animal" mapped to
"wallaby" with ``--class-map``; without the map the command exits 2 with the closest names."""

from __future__ import annotations

import json
import pathlib

import pandas as pd
import pytest

from annotated_kit import CLASSES
from methods.cli import batch as batch_cli
from methods.cli import evaluate as evaluate_cli
from methods.data.quokka import quokka_box, quokka_path, quokka_polygon
from methods.models import LoadedModel
from tiny_models import GapNet


@pytest.fixture
def tiny(monkeypatch):
    loaded = LoadedModel(
        name="tiny_gap",
        model=GapNet(classes=len(CLASSES), seed=0).eval(),
        input_size=(48, 64),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        class_names=CLASSES,
        default_layer="features.4",
        source="checkpoint",
    )
    monkeypatch.setattr("methods.pipeline.common.load_model", lambda name, **kw: loaded)
    monkeypatch.setattr("methods.pipeline.engines.default_workers", lambda: 1)
    return loaded


def quokka_set(tmp_path: pathlib.Path) -> str:
    x0, y0, x1, y1 = quokka_box()
    doc = {
        "images": [{"id": 1, "file_name": "quokka.jpg", "width": 960, "height": 643}],
        "categories": [{"id": 1, "name": "animal"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "segmentation": [quokka_polygon()],
            }
        ],
    }
    (tmp_path / "q.json").write_text(json.dumps(doc))
    return f"coco:{tmp_path / 'q.json'}:{pathlib.Path(quokka_path()).parent}"


def test_evaluate_cli_with_a_class_map(tmp_path, tiny, capsys, fp32):
    images, out = quokka_set(tmp_path), tmp_path / "r.csv"
    args = ["--model", "tiny", "--images", images, "--steps", "2", "--out", str(out), "--quiet"]
    assert evaluate_cli.main(args) == 2
    assert "class 'animal' is not a class of the model" in capsys.readouterr().err
    (tmp_path / "map.json").write_text(json.dumps({"animal": "wallaby"}))
    assert evaluate_cli.main(args + ["--class-map", str(tmp_path / "map.json")]) == 0
    df = pd.read_csv(out)
    assert (df["image"] == "quokka.jpg").all() and (df["label"] == 3).all() and (df["target_name"] == "wallaby").all()
    assert df["energy_pg"].between(0, 1).all() and df["pointing_hit"].notna().all()


def test_batch_cli_with_a_class_map_and_limits(tmp_path, tiny, capsys):
    images = quokka_set(tmp_path)
    (tmp_path / "map.json").write_text(json.dumps({"animal": "#3"}))
    args = ["--model", "tiny", "--images", images, "--out", str(tmp_path / "out"), "--quiet"]
    assert batch_cli.main(args + ["--class-map", str(tmp_path / "map.json"), "--max-images", "1"]) == 0
    df = pd.read_parquet(tmp_path / "out" / "manifest.parquet")
    assert df["image"].tolist() == ["quokka.jpg"] and df["target"].tolist() == [3]
    assert batch_cli.main(args + ["--max-annotations", "0"]) == 2
    assert "max_annotations must be an int >= 1" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("[1]")
    assert batch_cli.main(args + ["--class-map", str(tmp_path / "bad.json")]) == 2
    assert "must be a JSON object" in capsys.readouterr().err
