"""The evaluate command around its output table: an ``--out`` that cannot be written is refused
BEFORE the run (exit 2, the documented message, no work lost), and the table is written
atomically (a failed write leaves the old table whole and no partial file behind).

The bundled scenes_vgg model scores one scene at 2 steps, in this process.
"""

from __future__ import annotations

import os

import pandas as pd
import pytest

import methods
from methods.cli import evaluate as evaluate_cli
from methods.pipeline import batch_files
from methods.pipeline import evaluate as ev


@pytest.fixture(scope="module")
def vgg():
    return methods.load_model("scenes_vgg")


@pytest.fixture
def cli(vgg, monkeypatch):
    monkeypatch.setattr("methods.pipeline.common.load_model", lambda name, **kw: vgg)
    calls = []
    real = ev.run_evaluation

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ev, "run_evaluation", counted)

    def run(out) -> int:
        argv = ["--model", "scenes_vgg", "--images", "scenes:1", "--steps", "2", "--workers", "1", "--quiet"]
        return evaluate_cli.main(argv + ["--out", str(out)])

    run.calls = calls  # type: ignore[attr-defined]
    return run


def test_out_that_is_a_folder_is_refused_before_the_run(tmp_path, cli, capsys):
    out = tmp_path / "r.parquet"
    out.mkdir()
    assert cli(out) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: out=") and "is a folder" in err and "Traceback" not in err
    assert cli.calls == [] and list(out.iterdir()) == []


def test_out_under_a_file_is_refused_before_the_run(tmp_path, cli, capsys):
    (tmp_path / "f").write_text("a file")
    assert cli(tmp_path / "f" / "r.csv") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: out=") and "cannot be written" in err
    assert cli.calls == [] and (tmp_path / "f").read_text() == "a file"


def test_read_only_out_folder_is_refused_before_the_run(tmp_path, cli, capsys, monkeypatch):
    def refuse(path, write):  # a read-only folder (root ignores chmod, so the write itself refuses)
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(batch_files, "write_atomic", refuse)
    assert cli(tmp_path / "r.parquet") == 2
    err = capsys.readouterr().err
    assert "cannot be written: Permission denied" in err and cli.calls == []
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_keeps_the_old_table_whole(tmp_path, cli, capsys, monkeypatch):
    out = tmp_path / "r.csv"
    out.write_text("old,table\n1,2\n")
    real_open = open

    def full_disk(file, mode="r", *args, **kwargs):  # the disk fills while the new table is written
        fh = real_open(file, mode, *args, **kwargs)
        if "w" in mode and os.path.basename(file).startswith(".r.csv."):  # the table's partial file
            fh.close()
            raise OSError(28, "No space left on device")
        return fh

    monkeypatch.setattr("builtins.open", full_disk)
    code = cli(out)
    monkeypatch.undo()
    assert code == 2 and cli.calls == [1]  # the run went through; its write failed
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_text() == "old,table\n1,2\n"
    # no partial file left; the checkpoint stays, so a rerun writes the table without scoring again
    assert sorted(p.name for p in tmp_path.iterdir()) == [".r.csv.parts", "r.csv"]


def test_the_table_is_written_through_a_rename(tmp_path, cli):
    out = tmp_path / "r.parquet"
    out.write_bytes(b"an older table")
    assert cli(out) == 0 and cli.calls == [1]
    assert len(pd.read_parquet(out)) == 3  # gradcam + the two references
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.parquet"]


def test_out_in_the_images_folder_is_not_read_back(tmp_path, cli, capsys):
    from PIL import Image

    from methods.data.scenes import make_scene

    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(make_scene(10_000_000).image).save(folder / "a.png")
    argv = ["--model", "scenes_vgg", "--images", str(folder), "--steps", "2", "--workers", "1", "--quiet"]
    for _ in range(2):
        assert evaluate_cli.main(argv + ["--out", str(folder / "r.parquet")]) == 0
    assert "r.parquet" not in capsys.readouterr().err  # never listed as a skipped input
    assert list(pd.read_parquet(folder / "r.parquet")["image"].unique()) == ["a.png"]
