"""End to end in a real browser: ``streamlit run dashboard/Home.py`` driven by Playwright on Debian's chromium.

One server and one browser session for every page (the suite must stay fast on 2 cores). Each
page is reached the way a person does it (the sidebar's page links), waited for until the script
has finished and no placeholder is left, screenshotted into ``tests/_artifacts/`` (git-ignored:
look at them), and checked for headings, images and plots and for the absence of any exception
box. Then a link with query parameters is opened in a fresh session and must show that view.

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``); without it the test FAILS, on
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
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 2600}
READY = '[data-testid="stApp"][data-test-script-state="notRunning"]'
LOAD_TIMEOUT_MS = 240_000  # first page: torch import + model load on 2 shared cores

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium) to run the "
                    "browser test; `playwright install` cannot download browsers here")
    env = dict(os.environ)
    port = _free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS / "streamlit.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "dashboard/Home.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            pytest.fail(f"streamlit did not start; see {ARTIFACTS / 'streamlit.log'}")
        time.sleep(0.5)
    yield base
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
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {n}",
                           timeout=60_000)


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
    return page.eval_on_selector_all(".js-plotly-plot .infolayer .annotation-text", "els => els.map(e => e.textContent)")


def download(page, label: str) -> bytes:
    """Press a download button and return the file's bytes (the data is made on the click)."""
    with page.expect_download(timeout=60_000) as info:
        page.locator('[data-testid="stDownloadButton"] button', has_text=label).click()
    return Path(info.value.path()).read_bytes()


def nav(page, label: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a', has_text=label).first.click()
    page.wait_for_timeout(300)


def test_every_page_in_a_real_browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(server + "/")
            check_page(page, "home", "GradLens", images=4)
            assert "Prediction" in page.inner_text("body")
            assert page.locator('[data-testid="stDataFrame"]').count() == 2
            assert "image=" in page.url  # the view is in the address bar
            png = download(page, "The four views as PNG")
            assert png[:8] == b"\x89PNG\r\n\x1a\n"
            (ARTIFACTS / "download_home.png").write_bytes(png)

            nav(page, "Methods")
            check_page(page, "methods", "Methods side by side", plots=1)
            assert "/Methods" in page.url and "page=methods" in page.url
            panels = panel_titles(page)
            assert {"Grad-CAM", "Grad-CAM++", "LayerCAM"} <= set(panels)
            csv = download(page, "Table as CSV").decode()
            assert csv.splitlines()[0].startswith("Method,Family,Cost") and len(csv.splitlines()) == 4

            # a slow method: its cost first, then a progress bar while it runs
            page.get_by_role("combobox", name="Methods").click()
            page.get_by_role("combobox", name="Methods").fill("Score")
            page.get_by_role("option", name="Score-CAM (slow)").click()
            page.keyboard.press("Escape")
            wait_ready(page)
            assert "Score-CAM is slow" in page.inner_text("body")
            page.get_by_role("button", name="Run Score-CAM").click()
            page.wait_for_selector('[data-testid="stProgress"]', timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "methods_progress.png"))
            check_page(page, "methods_scorecam", "Methods side by side", plots=1)
            assert "Score-CAM" in panel_titles(page)
            assert page.locator('[data-testid="stProgress"]').count() == 0

            nav(page, "Layers")
            check_page(page, "layers", "Layers", images=8, plots=1)
            assert "How concentrated is the map" in page.inner_text("body")

            nav(page, "Normalization")
            check_page(page, "normalization", "Normalization", images=8, plots=8)

            nav(page, "Faithfulness")
            wait_ready(page)
            page.get_by_role("button", name="Run the curves").click()
            page.wait_for_timeout(500)
            check_page(page, "faithfulness", "Faithfulness", images=2, plots=1)
            assert page.locator('[data-testid="stDataFrame"]').count() == 1  # the AUC table (a canvas grid)

            # a teammate opens a link: a fresh session shows the same view
            other = browser.new_page(viewport=VIEWPORT)
            other.goto(server + "/Methods?page=methods&cmap=turbo&norm=max&relu=0&alpha=0.7"
                       "&methods=layercam,gradcam&layer=features.13")
            check_page(other, "link", "Methods side by side", plots=1)
            body = other.inner_text("body")
            assert "features.13" in body and "max normalization" in body
            panels = panel_titles(other)
            assert panels[:2] == ["LayerCAM", "Grad-CAM"]
            assert other.get_by_role("combobox", name="Colormap").input_value() == "turbo"
            assert other.get_by_role("combobox", name="Normalization").input_value() == "max"
            assert "cmap=turbo" in other.url and "alpha=0.7" in other.url
            assert other.locator('[data-testid="stAlertContentWarning"]').count() == 0
        finally:
            browser.close()
