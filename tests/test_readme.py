"""The README stays true: the method table matches the registry; the commands match CI."""

from __future__ import annotations

import re
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


def python_blocks(text: str) -> list[str]:
    """The README's ```python blocks, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.M | re.S)


def test_readme_python_blocks_run_as_written(tmp_path, monkeypatch):
    """Every ```python block, in order, in ONE namespace, offline (sockets refused), in a scratch
    directory: what a new user pasting them into a session would see."""
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network access in a README example")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 4
    namespace: dict = {"__name__": "readme"}
    for i, code in enumerate(blocks, 1):
        try:
            exec(compile(code, f"README.md python block {i}", "exec"), namespace)  # noqa: S102
        except Exception as exc:  # noqa: BLE001 - report which block failed
            raise AssertionError(f"README python block {i} failed: {type(exc).__name__}: {exc}\n{code}") from exc
