"""The habits the house holds, run inside the test command so CI runs them: ruff (lint and import
order), the format check, mypy over methods/, the API reference built with warnings as errors, and
every repository path that the README and docs/ name exists.

Each runs the tool as a subprocess from the repository root with the configuration in
pyproject.toml (docs/api/conf.py for Sphinx), so a failure prints the tool's own report.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    "command",
    [("ruff", "check", "."), ("ruff", "format", "--check", "."), ("mypy",)],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_tool_is_clean(command):
    done = _run(*command)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"


def test_api_reference_builds_without_warnings(tmp_path):
    """Sphinx autodoc + autosummary (recursive over ``methods``) + napoleon, ``-W``: a docstring that
    does not render (a broken table, an unclosed literal) fails here."""
    done = _run("sphinx", "-q", "-W", "--keep-going", "-b", "html", "docs/api", str(tmp_path / "html"))
    assert done.returncode == 0, done.stderr[-6000:]
    page = (tmp_path / "html" / "_generated" / "methods.cams.core.explain.html").read_text()
    assert 'id="methods.cams.core.explain.explain_many"' in page  # the functions are really documented


#: Paths the docs name that are not in the repository on purpose: files a user or a test run creates,
#: and the throw-away example of docs/dashboard.md "How to add a page".
NOT_IN_THE_TREE = {
    ".streamlit/secrets.toml",  # the operator's sign-in secrets (git-ignored)
    "tests/_artifacts/",  # screenshots and logs written by the browser tests
    "dashboard/pages/N_Name.py",  # the pattern of a page script's name
    "dashboard/views/histogram.py",  # the example page, shown as a diff
}
_PATH = re.compile(r"(?<![\w/.-])((?:methods|dashboard|tests|benchmarks|docs|\.ci|\.streamlit)/[\w./-]*[\w/])")


def test_every_path_the_docs_name_exists():
    """README.md, CHANGELOG.md and docs/*.md name files (``methods/cams/score/fold.py``); a move
    that leaves a stale path behind fails here."""
    missing = []
    for doc in [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for match in _PATH.finditer(doc.read_text()):
            path = match.group(1)
            if path not in NOT_IN_THE_TREE and not (ROOT / path).exists():
                missing.append(f"{doc.name}: {path}")
    assert not missing, missing
