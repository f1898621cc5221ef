"""methods/cli/main.py: the one ``gradlens`` command dispatches to the subcommands' own parsers."""

from __future__ import annotations

import subprocess
import sys

import pytest

import methods
from methods.cli import main as gradlens
from methods.cli.method_table import markdown_table


def test_methods_subcommand_prints_the_registry_table(capsys):
    assert gradlens.main(["methods"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == markdown_table()
    assert all(f"`{spec.name}`" in out for spec in methods.list_methods())


def test_no_or_unknown_subcommand_is_a_usage_error(capsys):
    assert gradlens.main([]) == 2
    assert gradlens.main(["explode"]) == 2
    assert "choose a subcommand: batch, evaluate, advise, drift, methods, serve" in capsys.readouterr().err
    assert gradlens.main(["--help"]) == 0


@pytest.mark.parametrize("command", ["batch", "evaluate"])
def test_batch_and_evaluate_hand_their_arguments_to_the_commands(command, capsys):
    with pytest.raises(SystemExit) as exc:
        gradlens.main([command, "--help"])
    assert exc.value.code == 0
    assert f"python -m methods.{command}" in capsys.readouterr().out


def test_bad_options_exit_2_like_the_python_m_commands(tmp_path):
    assert (
        gradlens.main(
            [
                "evaluate",
                "--model",
                "tiny",
                "--images",
                "scenes:1",
                "--methods",
                "nope",
                "--out",
                str(tmp_path / "r.csv"),
                "--quiet",
            ]
        )
        == 2
    )


def test_serve_runs_streamlit_on_the_installed_dashboard(monkeypatch):
    calls = []
    monkeypatch.setattr(gradlens.subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    assert gradlens.main(["serve", "--server.port", "8599"]) == 0
    (cmd,) = calls
    assert cmd[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert cmd[4].endswith("dashboard/Home.py") and cmd[5:] == ["--server.port", "8599"]
    assert gradlens.dashboard_home().is_file()


def test_python_m_forwarders_still_work():
    for command in ("methods.batch", "methods.evaluate"):
        done = subprocess.run([sys.executable, "-m", command, "--help"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and f"python -m {command}" in done.stdout
