"""The dashboard's shape: an installed package whose modules import each other without a cycle,
each under ~450 lines, with no sys.path edits, no imports hidden in functions, and no torch in pages."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from dashboard.core import pages
from dashboard.core.state import ViewState

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "dashboard"
ROOMS = ("app", "core", "draw", "views")
#: Every dashboard module as its dotted name below ``dashboard`` ("core.state", "views.compare.view").
MODULES = sorted(
    ".".join(p.relative_to(PACKAGE).with_suffix("").parts)
    for p in PACKAGE.rglob("*.py")
    if p.parts[len(PACKAGE.parts)] in ROOMS and p.stem != "__init__"
)
SCRIPTS = [PACKAGE / "Home.py", *sorted((PACKAGE / "pages").glob("*.py"))]
EVERY_FILE = sorted(PACKAGE.rglob("*.py"))
#: Pure modules import no streamlit: the pure rooms, and the pure helpers of a page's folder.
PURE = [m for m in MODULES if m.split(".")[0] in ("core", "draw")] + [
    "views.compare.data",
    "views.benchmark.data",
    "views.benchmark.evaluation",
]


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _path(module: str) -> Path:
    return PACKAGE.joinpath(*module.split(".")).with_suffix(".py")


def _dashboard_imports(node: ast.AST) -> set[str]:
    """Dotted names (below ``dashboard``) of the dashboard modules ``node`` imports:
    ``from dashboard.app import cache`` -> app.cache, ``from dashboard.core.state import X`` -> core.state."""
    out: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.ImportFrom) and n.module and n.level == 0 and n.module.startswith("dashboard"):
            base = n.module.split(".")[1:]
            for a in n.names:
                name = ".".join([*base, a.name])
                out.add(name if name in MODULES else ".".join(base))
        elif isinstance(n, ast.Import):
            out |= {a.name.split(".", 1)[1] for a in n.names if a.name.startswith("dashboard.")}
    return out - {""}


def _graph() -> dict[str, set[str]]:
    return {m: _dashboard_imports(_tree(_path(m))) - {m} for m in MODULES}


def test_every_module_lives_in_a_room():
    """Nothing but ``__init__`` and the scripts sits at the top: every module is in app/, core/,
    draw/ or views/ (the rooms of docs/dashboard.md)."""
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["Home.py", "__init__.py"]
    assert {m.split(".")[0] for m in MODULES} == set(ROOMS)


def test_the_page_scripts_are_the_page_table():
    """One script per row of THE page table, each two lines through the one page shell."""
    scripts = {str(p.relative_to(PACKAGE)) for p in SCRIPTS}
    assert scripts == {p.script for p in pages.PAGES}
    for row in pages.PAGES:
        text = (PACKAGE / row.script).read_text(encoding="utf-8")
        assert f'run_page("{row.key}")' in text and "from dashboard.app.shell import run_page" in text, row.script


def test_each_row_names_a_view_with_show_and_fields_of_the_view_state():
    every = {f.name for f in dataclasses.fields(ViewState)}
    used = {"page"}
    for row in pages.PAGES:
        module = importlib.import_module(row.view)
        assert callable(module.show), row.view
        assert set(row.fields) <= every, (row.key, set(row.fields) - every)
        if not row.draws_view:
            assert not hasattr(module, "controls"), row.view
        used |= set(row.fields)
    assert used == every, every - used  # every field of the view state is read by some page


def test_no_import_cycle_among_dashboard_modules():
    graph = _graph()
    assert all(deps <= set(MODULES) for deps in graph.values()), graph
    state = dict.fromkeys(graph, "new")

    def visit(m: str, path: list[str]) -> None:
        if state[m] == "open":
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(m) :] + [m]))
        if state[m] == "done":
            return
        state[m] = "open"
        for d in sorted(graph[m]):
            visit(d, path + [m])
        state[m] = "done"

    for m in graph:
        visit(m, [])


def test_rooms_import_downwards():
    """core imports no other room, draw only core, app no views (views read by name from the table)."""
    allowed = {
        "core": {"core"},
        "draw": {"core", "draw"},
        "app": {"core", "draw", "app"},
        "views": {"core", "draw", "app", "views"},
    }
    wrong = [(m, d) for m, deps in _graph().items() for d in deps if d.split(".")[0] not in allowed[m.split(".")[0]]]
    assert wrong == []


def test_pure_modules_import_no_streamlit():
    for name in PURE:
        tree = _tree(_path(name))
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert "streamlit" not in imported, name


def test_no_import_inside_a_function():
    """Function-level imports are how cycles get dodged; the package has none."""
    found = []
    for path in EVERY_FILE:
        for fn in ast.walk(_tree(path)):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found += [
                    f"{path.relative_to(ROOT)}:{n.lineno} in {fn.name}"
                    for n in ast.walk(fn)
                    if isinstance(n, (ast.Import, ast.ImportFrom))
                ]
    assert found == []


@pytest.mark.parametrize("path", EVERY_FILE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_over_450_lines_and_no_sys_path_edit(path):
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 450
    assert "sys.path" not in text


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_pages_stay_thin_no_torch(path):
    tree = _tree(path)
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "torch" not in names and "sys" not in names


def test_each_module_imports_on_its_own_in_a_fresh_process():
    """Importing any one dashboard module first works (a cycle hidden by import order would fail
    here): one fresh process, the heavy libraries imported once, the dashboard forgotten each time."""
    code = (
        "import importlib, sys, streamlit, methods\n"
        "for m in sys.argv[1:]:\n"
        "    for name in [k for k in sys.modules if k == 'dashboard' or k.startswith('dashboard.')]:\n"
        "        del sys.modules[name]\n"
        "    importlib.import_module('dashboard.' + m)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *MODULES], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
