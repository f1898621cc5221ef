"""Fixtures of the batch and evaluate loop tests (and their commands): the test plugin, and a local
Ray that each module starts and stops itself."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator
from types import ModuleType

import pytest
import ray

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def plugin():
    """Registers the test plugin (tests/batch_plugins.py) for one test and unregisters it after,
    so no other test (the README's method table ...) sees it."""
    import batch_plugins
    from methods.cams.core import registry

    registry.register_method(
        **{k: getattr(batch_plugins.FailsOnFlat.spec, k) for k in ("name", "label", "family", "cost", "summary")}
    )(batch_plugins.FailsOnFlat)
    yield
    registry._REGISTRY.pop("fails_on_flat", None)


@pytest.fixture(scope="module")
def ray_local() -> Iterator[ModuleType]:
    """``ray.init(num_cpus=2)`` for one module, shut down after it. Ray's workers are new
    interpreters: they find the project (and tests/batch_plugins.py) by PYTHONPATH, restored after."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests")] + ([old] if old else []))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
