"""The dashboard's shape: an installed package whose modules import each other without a cycle,
each under ~400 lines, with no sys.path edits, no imports hidden in functions, and no torch in pages."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "dashboard"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "Home"))
SCRIPTS = [PACKAGE / "Home.py", *sorted((PACKAGE / "pages").glob("*.py"))]
EVERY_FILE = sorted(PACKAGE.rglob("*.py"))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _dashboard_imports(node: ast.AST) -> set[str]:
    """Names of the dashboard modules ``node`` imports (``from dashboard import x``, ``dashboard.x``)."""
    out: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
            if n.module == "dashboard":
                out |= {a.name for a in n.names}
            elif n.module.startswith("dashboard."):
                out.add(n.module.split(".")[1])
        elif isinstance(n, ast.Import):
            out |= {a.name.split(".")[1] for a in n.names if a.name.startswith("dashboard.")}
    return out


def _graph() -> dict[str, set[str]]:
    return {m: _dashboard_imports(_tree(PACKAGE / f"{m}.py")) - {m} for m in MODULES}


def test_the_modules_are_the_planned_ones():
    assert set(MODULES) == {"cache", "capture", "check_figures", "compare_services", "compare_view", "errors",
                            "figures", "menus", "model_fit", "navigation", "params", "pictures", "review", "review_page",
                            "runner", "sanity_view", "services", "sidebar", "state", "widgets",
                            "benchmark_data", "benchmark_figures", "benchmark_page", "benchmark_run", "scene_ids"}


def test_no_import_cycle_among_dashboard_modules():
    graph = _graph()
    assert all(deps <= set(MODULES) for deps in graph.values()), graph
    state = dict.fromkeys(graph, "new")

    def visit(m: str, path: list[str]) -> None:
        if state[m] == "open":
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(m):] + [m]))
        if state[m] == "done":
            return
        state[m] = "open"
        for d in sorted(graph[m]):
            visit(d, path + [m])
        state[m] = "done"

    for m in graph:
        visit(m, [])


def test_pure_modules_import_no_streamlit():
    for name in ("state", "params", "services", "figures", "pictures", "menus", "check_figures", "compare_services",
                 "benchmark_data", "benchmark_figures", "benchmark_run", "scene_ids"):
        tree = _tree(PACKAGE / f"{name}.py")
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert "streamlit" not in imported, name


def test_no_import_inside_a_function():
    """Function-level imports are how cycles get dodged; the package has none."""
    found = []
    for path in EVERY_FILE:
        for fn in ast.walk(_tree(path)):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found += [f"{path.relative_to(ROOT)}:{n.lineno} in {fn.name}" for n in ast.walk(fn)
                          if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert found == []


@pytest.mark.parametrize("path", EVERY_FILE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_over_400_lines_and_no_sys_path_edit(path):
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 400
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
    done = subprocess.run([sys.executable, "-c", code, *MODULES], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
