"""The ``Examples`` sections of the library's docstrings run as written (doctest)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import methods

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(methods.__path__, prefix="methods.")
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest example(s) failed in {name}"


def test_the_examples_exist():
    """The public entry points carry runnable examples."""
    finder = doctest.DocTestFinder()
    with_examples = {t.name for name in MODULES for t in finder.find(importlib.import_module(name)) if t.examples}
    for public in (
        "methods.cams.core.explain.explain",
        "methods.cams.core.explain.explain_many",
        "methods.viz.normalize.normalize",
        "methods.cams.core.layers.candidate_layers",
        "methods.cams.core.recorder.record",
        "methods.errors.suggest",
    ):
        assert public in with_examples, public
