"""The batch command around its output folder: reserved names, --out against --images, an --out
that cannot be written, a skip report that a spreadsheet reads as data, and a broken manifest or
part file on resume (moved aside, never a traceback).

Each test runs the real command (``methods.cli.batch.main``) in this process with one worker on
the bundled scenes_vgg model and checks the exit status, the message and the files on disk.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import methods
from methods.cli import batch as batch_cli
from methods.data.scenes import make_scene
from methods.pipeline import batch_files
from methods.pipeline.manifest import PARTS


@pytest.fixture(scope="module")
def vgg():
    return methods.load_model("scenes_vgg")


@pytest.fixture
def cli(vgg, monkeypatch):
    """``batch_cli.main`` with the model loaded once for the module (the catalog name maps to it)."""
    from methods.pipeline import batch

    real = batch.load_model_arg
    monkeypatch.setattr(batch, "load_model_arg", lambda m, **kw: vgg if m == "scenes_vgg" else real(m, **kw))

    def run(images: pathlib.Path, out: pathlib.Path, *extra: str) -> int:
        argv = ["--model", "scenes_vgg", "--images", str(images), "--out", str(out), "--workers", "1", "--quiet"]
        return batch_cli.main(argv + list(extra))

    return run


def scene_png(path: pathlib.Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(make_scene(10_000_000 + seed).image).save(path, format="PNG")


def test_reserved_names_are_skipped_with_a_reason_and_the_report_is_written(tmp_path, cli, capsys):
    images, out = tmp_path / "in", tmp_path / "out"
    scene_png(images / "a.png", 0)
    scene_png(images / "skipped.csv", 1)  # a real PNG under the skip report's name
    scene_png(images / "manifest.parquet", 2)
    scene_png(images / "MANIFEST.parquet" / "b.png", 3)  # its folder would be the manifest too (any case)
    assert cli(images, out) == 0
    assert (out / "skipped.csv").is_file() and (out / "manifest.parquet").is_file()
    report = pd.read_csv(out / "skipped.csv")
    assert sorted(report["image"]) == ["MANIFEST.parquet/b.png", "manifest.parquet", "skipped.csv"]
    assert (report["status"] == "skipped").all() and report["reason"].str.contains("reserved").all()
    assert set(pd.read_parquet(out / "manifest.parquet")["image"]) == {"a.png"}
    assert "skipped skipped.csv: " in capsys.readouterr().err


def test_out_equal_to_images_or_holding_it_is_refused(tmp_path, cli, capsys):
    images = tmp_path / "in"
    scene_png(images / "a.png")
    assert cli(images, images) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: out=") and "read back as inputs" in err
    assert sorted(p.name for p in images.iterdir()) == ["a.png"]  # nothing written
    assert cli(images, tmp_path) == 2  # --images inside --out
    assert "read back as inputs" in capsys.readouterr().err
    assert not (tmp_path / "manifest.parquet").exists()


def test_out_that_is_a_file_is_refused(tmp_path, cli, capsys):
    images, out = tmp_path / "in", tmp_path / "out"
    scene_png(images / "a.png")
    out.write_text("keep me")
    assert cli(images, out) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: out=") and "is a file, not a folder" in err and "Traceback" not in err
    assert out.read_text() == "keep me"


def test_out_that_cannot_be_written_is_refused_before_any_work(tmp_path, cli, capsys, monkeypatch):
    images, out = tmp_path / "in", tmp_path / "out"
    scene_png(images / "a.png")
    out.mkdir()

    def refuse(path, write):  # a read-only folder (root ignores chmod, so the write itself refuses)
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(batch_files, "write_atomic", refuse)
    assert cli(images, out) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: out=") and "cannot be written" in err and "Permission denied" in err
    assert list(out.iterdir()) == []


def test_skip_report_neutralises_formulas_in_file_names(tmp_path, cli):
    images, out = tmp_path / "in", tmp_path / "out"
    scene_png(images / "a.png")
    (images / '=HYPERLINK("x","y").png').write_bytes(b"not an image")
    (images / "@SUM(1+1).png").write_bytes(b"not an image")
    assert cli(images, out) == 0
    cells = pd.read_csv(out / "skipped.csv")["image"].tolist()
    assert sorted(cells) == ['\'=HYPERLINK("x","y").png', "'@SUM(1+1).png"]


def _two_runs(cli, tmp_path, spoil) -> tuple[pathlib.Path, pd.DataFrame]:
    images, out = tmp_path / "in", tmp_path / "out"
    scene_png(images / "a.png", 0)
    scene_png(images / "b.png", 1)
    assert cli(images, out) == 0
    spoil(out)
    assert cli(images, out) == 0
    return out, pd.read_parquet(out / "manifest.parquet")


def test_a_truncated_manifest_is_moved_aside_and_the_run_goes_on(tmp_path, cli, capsys):
    def spoil(out):
        data = (out / "manifest.parquet").read_bytes()
        (out / "manifest.parquet").write_bytes(data[: len(data) // 2])

    out, df = _two_runs(cli, tmp_path, spoil)
    assert sorted(df["image"]) == ["a.png", "b.png"]  # done again
    assert (out / "manifest.parquet.broken-1").is_file()
    err = capsys.readouterr().err
    assert "manifest.parquet could not be read" in err and "manifest.parquet.broken-1" in err


def test_a_garbage_part_file_is_moved_aside(tmp_path, cli, capsys):
    def spoil(out):
        (out / PARTS).mkdir(exist_ok=True)
        (out / PARTS / "part-1.parquet").write_bytes(b"PAR1 garbage")
        (out / PARTS / "part-1.parquet.broken-1").write_bytes(b"an earlier one")

    out, df = _two_runs(cli, tmp_path, spoil)
    assert sorted(df["image"]) == ["a.png", "b.png"]
    assert (out / PARTS / "part-1.parquet.broken-2").read_bytes() == b"PAR1 garbage"
    assert not (out / PARTS / "part-1.parquet").exists()
    assert "part-1.parquet.broken-2" in capsys.readouterr().err


def test_a_part_with_a_non_integer_target_is_moved_aside(tmp_path, cli, capsys):
    def spoil(out):
        df = pd.read_parquet(out / "manifest.parquet")
        df["target"] = "x"
        (out / PARTS).mkdir(exist_ok=True)
        df.to_parquet(out / PARTS / "part-2.parquet", index=False)

    out, df = _two_runs(cli, tmp_path, spoil)
    assert df["target"].dtype == np.int64 and sorted(df["image"]) == ["a.png", "b.png"]
    assert (out / PARTS / "part-2.parquet.broken-1").is_file()
    assert "part-2.parquet could not be read" in capsys.readouterr().err


def _huge_png(width: int = 12_000, height: int = 12_000) -> bytes:
    """A PNG whose header says width x height RGB (144 MP), with a few rows of data: what a decoder
    without limits would try to allocate (432 MB) from a file of a few hundred bytes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (1 + 3 * width) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # PIL's own, on the header
def test_images_in_the_folder_keep_the_image_limits(tmp_path, cli):
    """A 12000 x 12000 PNG is refused by methods.data.images.load_image's pixel limit (a guard:
    the batch reads every image through it)."""
    images, out = tmp_path / "in", tmp_path / "out"
    scene_png(images / "a.png")
    (images / "huge.png").write_bytes(_huge_png())
    assert cli(images, out) == 0
    report = pd.read_csv(out / "skipped.csv")
    assert report["image"].tolist() == ["huge.png"] and "pixels" in report["reason"][0]
    assert not (out / "huge.png").exists()


def test_out_inside_images_is_left_out_of_the_images(tmp_path, cli, capsys):
    images = tmp_path / "in"
    scene_png(images / "a.png")
    assert cli(images, images / "results") == 0
    assert cli(images, images / "results") == 0  # the outputs are never read back as images
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1].startswith("0 image(s) done, 1 already in the manifest, 0 skipped")
    assert set(pd.read_parquet(images / "results" / "manifest.parquet")["image"]) == {"a.png"}
