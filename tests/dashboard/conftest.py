"""Fixtures of the dashboard tests.

``server``: one ``streamlit run dashboard/Home.py`` per browser test module, on a free port, with
the test environment (``PYTHONPATH``, ``GRADLENS_DB`` set by a module's autouse fixture) inherited;
its log is ``tests/_artifacts/streamlit.log``. The helpers are in ``tests/browser_kit.py``.
``db``: a module's own review store. ``slow_method``: a registered slow test method.
"""

from __future__ import annotations

import pytest

from browser_kit import ARTIFACTS, start_server, stop_server


@pytest.fixture(scope="module")
def server():
    proc, base, log = start_server(ARTIFACTS / "streamlit.log")
    try:
        yield base
    finally:
        stop_server(proc, log)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """A review store of the module's own (``GRADLENS_DB``), for pages that save snapshots."""
    path = tmp_path_factory.mktemp("review") / "review.sqlite3"
    mp = pytest.MonkeyPatch()
    mp.setenv("GRADLENS_DB", str(path))
    yield path
    mp.undo()


@pytest.fixture
def slow_method(request):
    """A registered slow (score-family) test method that reports progress in ``steps`` steps per
    layer (2, or the test's ``@pytest.mark.parametrize("slow_method", [k], indirect=True)``),
    removed afterwards."""
    steps = getattr(request, "param", 2)
    from methods import ForwardMethod, register_method
    from methods.cams.core.registry import _REGISTRY

    @register_method(
        name="test_slowcam",
        label="Test-Slow-CAM",
        family="score",
        cost="8 forwards",
        summary="test only: channel mean, with progress",
    )
    class SlowCam(ForwardMethod):
        progress_seen: list = []

        def compute_layer(self, ctx):
            for i in range(steps):
                if ctx.progress is not None:
                    ctx.progress(i + 1, steps)
                    SlowCam.progress_seen.append(i + 1)
            return ctx.activations.mean(dim=1)  # (N, h, w)

    yield SlowCam
    _REGISTRY.pop("test_slowcam", None)  # the registry has no public unregister; keep it clean


@pytest.fixture
def noted_method():
    """A registered fast test method whose every map carries a note (it warns a GradLensWarning,
    which ``explain`` turns into ``Explanation.notes``), removed afterwards."""
    import warnings

    from methods import ForwardMethod, register_method
    from methods.cams.core.registry import _REGISTRY
    from methods.errors import GradLensWarning

    @register_method(
        name="test_notedcam",
        label="Test-Noted-CAM",
        family="activation",
        cost="1 forward",
        summary="test only: channel mean, with a note",
    )
    class NotedCam(ForwardMethod):
        def compute_layer(self, ctx):
            warnings.warn(GradLensWarning("test note: this map is partly made up"), stacklevel=2)
            return ctx.activations.mean(dim=1)  # (N, h, w)

    yield NotedCam
    _REGISTRY.pop("test_notedcam", None)
