"""The house stays in order: rooms without import cycles, small modules, private names and private
modules (``methods._internal``) kept private, the library below its faces (no ``methods.cli``, no
``dashboard``), every deliberate error a GradLensError, and the public face unchanged.

These read the source with ``ast`` (nothing is imported but :mod:`methods` itself), so a failure
names the file and line to fix.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import methods

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("methods", "dashboard")
MAX_LINES = 450  # ruff-formatted lines (the before-stop hook warns above 450 too)

#: The public names of ``import methods`` before the restructure (issue 10): all must stay.
PUBLIC_BEFORE = (
    "GradLensError UnknownMethodError LayerError TargetError RecorderError MethodSpec register_method get_method "
    "list_methods create_method CamMethod RecordedMethod GradientMethod ForwardMethod LayerContext Recording "
    "record Explanation explain explain_many normalize normalize_many COLORMAPS render_views LayerInfo "
    "candidate_layers default_layer load_image LoadedModel list_models load_model load_checkpoint deletion_curve "
    "insertion_curve reference_curves confidence_change pointing_game energy_pointing_game"
).split()


def _modules(package: str) -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(p.startswith(("_artifacts", "pages")) for p in parts) or not all(p.isidentifier() for p in parts):
            continue  # page scripts (1_Methods.py) are not importable modules
        out[".".join(parts)] = path
    return out


ALL = {name: path for pkg in PACKAGES for name, path in _modules(pkg).items()}


def _imports(name: str, path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, imported names) for every import of the project's own modules."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] not in PACKAGES:
                continue
            names = [a.name for a in node.names]
            # `from methods.models import scene_nets` imports the submodule
            subs = [f"{base}.{n}" for n in names if f"{base}.{n}" in ALL]
            found.append((node.lineno, base, [n for n in names if f"{base}.{n}" not in ALL]))
            found += [(node.lineno, s, []) for s in subs]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    found.append((node.lineno, alias.name, []))
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in ALL}
    for name, path in ALL.items():
        for _, target, _ in _imports(name, path):
            if target not in ALL or target == name:
                continue
            if path.name == "__init__.py" and target.startswith(name + "."):
                continue  # a package re-exporting its own children is fine
            graph[name].add(target)
    return graph


def test_no_import_cycle_between_modules():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


@pytest.mark.parametrize("name", sorted(n for n in ALL if n.startswith("methods")))
def test_module_is_small(name):
    lines = len(ALL[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{ALL[name].relative_to(ROOT)} has {lines} lines; split it by concept"


def test_no_module_imports_another_modules_private_names():
    offenders = []
    for name, path in ALL.items():
        for line, target, names in _imports(name, path):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and target != name:
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {private} from {target}")
    assert not offenders, "\n".join(offenders)


def test_nothing_outside_methods_imports_its_private_modules():
    """``methods._internal`` is private to ``methods/`` (the dashboard asks ``methods.runtime``);
    so is any ``_module`` of the library: private MODULES, not only private names."""
    offenders = []
    for name, path in ALL.items():
        if name.startswith("methods"):
            continue
        for line, target, _ in _imports(name, path):
            if any(part.startswith("_") and not part.startswith("__") for part in target.split(".")[1:]):
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports the private module {target}")
    assert not offenders, "\n".join(offenders)


#: the ``python -m methods.batch`` / ``python -m methods.evaluate`` forwarders (the README documents them)
FORWARDERS = ("methods.batch", "methods.evaluate", "methods.advise")


def test_the_library_imports_neither_its_command_line_nor_the_dashboard():
    """The library sits below both faces: only ``methods/cli`` and the ``python -m`` forwarders
    import ``methods.cli``; nothing in ``methods/`` imports ``dashboard``."""
    offenders = []
    for name, path in ALL.items():
        if not name.startswith("methods") or name == "methods.cli" or name.startswith("methods.cli."):
            continue
        for line, target, _ in _imports(name, path):
            if target.split(".")[0] == "dashboard":
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
            elif (target == "methods.cli" or target.startswith("methods.cli.")) and name not in FORWARDERS:
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not offenders, "\n".join(offenders)


def test_the_layout_checks_see_the_modules_they_guard():
    """The checks above would pass vacuously on an empty tree: the rooms they guard exist."""
    for room in (
        "methods._internal.torch_utils",
        "methods.runtime",
        "methods.cli.main",
        "methods.pipeline.evaluate",
        "methods.pipeline.batch",
        "methods.cams.core.registry",
        "methods.models.sources.base",
    ):
        assert room in ALL, room
    assert all(name in ALL for name in FORWARDERS)


def test_every_deliberate_error_is_a_gradlens_error():
    """No bare built-in exception is raised on purpose in the library (subclasses such as
    ``OptionError(GradLensError, ValueError)`` keep ``except ValueError`` callers working)."""
    builtins = {"ValueError", "TypeError", "RuntimeError", "KeyError", "IndexError", "Exception", "OSError"}
    offenders = []
    for name, path in ALL.items():
        if not name.startswith("methods"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name):
                if node.exc.func.id in builtins:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} raises {node.exc.func.id}")
    assert not offenders, "\n".join(offenders)


def test_every_exception_class_lives_in_errors_and_derives_from_gradlens_error():
    from methods import errors

    for name, path in ALL.items():
        if not name.startswith("methods") or name == "methods.errors":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                assert not any(b.endswith(("Error", "Exception")) for b in bases), (
                    f"{path.relative_to(ROOT)}:{node.lineno} defines exception {node.name}; put it in methods/errors.py"
                )
    for value in vars(errors).values():
        if (
            isinstance(value, type)
            and issubclass(value, Exception)
            and not issubclass(value, Warning)
            and value.__module__ == errors.__name__
        ):
            assert issubclass(value, errors.GradLensError), value


def test_public_face_keeps_every_name():
    missing = [n for n in PUBLIC_BEFORE if n not in methods.__all__ or not hasattr(methods, n)]
    assert not missing
    assert len(set(methods.__all__)) == len(methods.__all__)
    assert all(hasattr(methods, n) for n in methods.__all__)
