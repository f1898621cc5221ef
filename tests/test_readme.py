"""The README stays true: the method table matches the registry; the commands match CI."""

from __future__ import annotations

from pathlib import Path

import methods  # noqa: F401  registers the built-in methods
from methods.cli.method_table import block

ROOT = Path(__file__).resolve().parents[1]


def test_readme_method_table_matches_registry():
    readme = (ROOT / "README.md").read_text()
    assert block() in readme, "README's method table is stale: paste `python -m methods.cli.method_table` into it"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = [line for line in ci.splitlines() if "python -m pytest" in line]
    assert len(command) == 1 and command[0].strip() in readme
    assert "pip install -r requirements.txt && streamlit run dashboard/Home.py" in readme
