"""Fixtures of the dashboard tests.

``server``: one ``streamlit run dashboard/Home.py`` per browser test module, on a free port, with
the test environment (``PYTHONPATH``, ``GRADLENS_DB`` set by a module's autouse fixture) inherited;
its log is ``tests/_artifacts/streamlit.log``. The helpers are in ``tests/browser_kit.py``.
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
