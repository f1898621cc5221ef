"""The commands on an annotated data set: the quokka as a COCO set, its class "animal" mapped to
"wallaby" with ``--class-map``; without the map the command exits 2 with the closest names."""

from __future__ import annotations

import json
import pathlib

import pandas as pd
import pytest

from annotated_kit import tiny_gap, write_quokka_coco
from methods.cli import batch as batch_cli
from methods.cli import evaluate as evaluate_cli
from methods.data.quokka import quokka_path


@pytest.fixture
def tiny(monkeypatch):
    loaded = tiny_gap()
    monkeypatch.setattr("methods.pipeline.common.load_model", lambda name, **kw: loaded)
    monkeypatch.setattr("methods.pipeline.engines.default_workers", lambda: 1)
    return loaded


def quokka_set(tmp_path: pathlib.Path) -> str:
    path = write_quokka_coco(tmp_path / "q.json")
    return f"coco:{path}:{pathlib.Path(quokka_path()).parent}"


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
