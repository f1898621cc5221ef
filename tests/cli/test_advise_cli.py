"""``gradlens advise`` / ``python -m methods.advise``: the report files, the printed recommendation
and the documented exit status."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

import methods.cli.advise as cli
from methods.advisor.result import Advice
from methods.cli import main as gradlens


def test_advise_writes_the_report_and_exits_0_when_it_beats_random(fp32, tmp_path, capsys):
    out = tmp_path / "adv"
    code = gradlens.main(
        ["advise", "--model", "scenes_vgg", "--images", "scenes:6", "--out", str(out), "--methods", "gradcam",
         "--layers", "features.13,features.20", "--normalizations", "minmax,raw", "--n-sanity", "0",
         "--n-boot", "300", "--steps", "6", "--precision", "fp32", "--quiet"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == cli.EXIT_OK
    assert printed.startswith("Grad-CAM at features.20, min-max ≡ raw: insertion AUC")
    report = json.loads((out / "advice.json").read_text())
    assert report["best"]["layer"] == "features.20" and report["beats_random"] is True
    assert len(pd.read_parquet(out / "scores.parquet")) == 6 * 2 * 2  # images x (gradcam, random) x layers


def test_exit_1_when_nothing_beats_random(monkeypatch, tmp_path):
    fake = Advice("x", pd.DataFrame(), {}, False, False, (), (), "insertion", "insertion AUC", "higher", "wilcoxon", {})
    monkeypatch.setattr(cli, "advise", lambda *a, **k: fake)
    code = cli.main(["--model", "scenes_vgg", "--images", "scenes:1", "--out", str(tmp_path), "--quiet"])
    assert code == cli.EXIT_NOT_BEATING_RANDOM == 1


def test_bad_input_exits_2(tmp_path, capsys):
    assert cli.main(["--model", "scenes_vgg", "--images", "scenes:0", "--out", str(tmp_path)]) == cli.EXIT_BAD_INPUT
    assert (
        cli.main(["--model", "scenes_vgg", "--images", "scenes:1", "--out", str(tmp_path), "--methods", "gradcm"]) == 2
    )
    err = capsys.readouterr().err
    assert "scenes:0" in err and "gradcam" in err  # the bad value, and the closest method


def test_python_m_methods_advise_forwards_to_the_command():
    done = subprocess.run(
        [sys.executable, "-m", "methods.advise", "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "Exit 0: the recommendation beats the random map" in " ".join(done.stdout.split())
