"""Shared pieces of the real-browser tests: starting the Streamlit server, Chromium's launch
arguments and the wait/check helpers (imported by tests/dashboard/test_browser*.py; the
``server`` fixture itself is in tests/dashboard/conftest.py).

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``); without it the tests FAIL, on
purpose: CI installs it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "_artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 2600}
READY = '[data-testid="stApp"][data-test-script-state="notRunning"]'
LOAD_TIMEOUT_MS = 240_000  # first page: torch import + model load on 2 shared cores


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log_path: Path, port: int | None = None) -> tuple[subprocess.Popen, str, object]:
    """``streamlit run dashboard/Home.py`` on ``port`` (default: a free one); returns (process, base URL, log file).
    Fails the test when chromium is missing or the server does not answer its health check."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium) to run the "
            "browser test; `playwright install` cannot download browsers here"
        )
    env = dict(os.environ)
    port = port or _free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "dashboard/Home.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return proc, base, log
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            pytest.fail(f"streamlit did not start; see {log_path}")
        time.sleep(0.5)


def stop_server(proc: subprocess.Popen, log) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def wait_ready(page, settle_ms: int = 800) -> None:
    """Until the script has finished, no skeleton is left, and that holds for ``settle_ms``."""
    deadline = time.monotonic() + LOAD_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        page.wait_for_selector(READY, timeout=LOAD_TIMEOUT_MS)
        page.wait_for_timeout(settle_ms)
        if page.locator(READY).count() == 1 and page.locator('[data-testid="stSkeleton"]').count() == 0:
            return
    raise AssertionError("the page did not settle")


def wait_plots(page, n: int) -> None:
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {n}", timeout=60_000)


def check_page(page, name: str, heading: str, *, images: int = 0, plots: int = 0) -> None:
    wait_ready(page)
    if plots:
        wait_plots(page, plots)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, exceptions.first.inner_text()
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.all_inner_texts()
    assert page.locator("h1").first.inner_text().strip() == heading
    assert page.locator('[data-testid="stImage"] img').count() >= images
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= plots


def panel_titles(page) -> list[str]:
    """Subplot titles of the Plotly figures (SVG text, so textContent rather than innerText)."""
    return page.eval_on_selector_all(
        ".js-plotly-plot .infolayer .annotation-text", "els => els.map(e => e.textContent)"
    )


def download(page, label: str) -> bytes:
    """Press a download button and return the file's bytes (the data is made on the click)."""
    with page.expect_download(timeout=60_000) as info:
        page.locator('[data-testid="stDownloadButton"] button', has_text=label).click()
    return Path(info.value.path()).read_bytes()


def nav(page, label: str) -> None:
    """Click the sidebar's link to a page (the dashboard's own page list: ``st.page_link``)."""
    page.locator('[data-testid="stSidebar"] [data-testid="stPageLink"] a', has_text=label).first.click()
    page.wait_for_timeout(300)
