"""Fixtures of the batch and evaluate loop tests (and their commands)."""

from __future__ import annotations

import pytest


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
