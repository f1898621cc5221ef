"""The Advisor page in a real browser: open it by a link naming the model and the scenes, press
Run, and see the recommendation, the error-bar ranking and the table (helpers: tests/browser_kit.py).

Its own server (``GRADLENS_BROWSER_PORT`` picks the port; default a free one). Screenshots:
``tests/_artifacts/advisor_*.png``.
"""

from __future__ import annotations

import os

import pytest

from browser_kit import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, VIEWPORT, check_page, start_server, stop_server, wait_ready

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server():
    port = int(os.environ["GRADLENS_BROWSER_PORT"]) if os.environ.get("GRADLENS_BROWSER_PORT") else None
    mp = pytest.MonkeyPatch()
    mp.setenv("GRADLENS_PRECISION", "fp32")
    proc, base, log = start_server(ARTIFACTS / "streamlit_advisor.log", port)
    try:
        yield base
    finally:
        stop_server(proc, log)
        mp.undo()


def test_run_the_advisor_and_read_its_recommendation(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(server + "/Advisor?model=scenes_vgg&images=scenes&n=3&metric=insertion")
            check_page(page, "advisor_start", "Advisor")
            body = page.inner_text("body")
            assert "forward passes" in body and "Run the Advisor" in body
            assert page.get_by_role("combobox", name="Model").input_value() == "scenes_vgg"
            page.get_by_role("button", name="Run the Advisor").click()
            page.wait_for_selector(
                '[data-testid="stAlertContentSuccess"], [data-testid="stAlertContentWarning"]', timeout=600_000
            )
            wait_ready(page)
            check_page(page, "advisor_result", "Advisor", plots=1)
            page.screenshot(path="/tmp/advisor_result.png", full_page=True)
            # three scenes cannot beat random with p < 0.05 (sign test 2 / 2^3): the box is a warning
            box = page.locator('[data-testid="stAlertContentWarning"]').filter(has_text="Recommendation")
            assert box.count() == 1, page.inner_text("body")[:2000]
            assert "too few images" in page.inner_text("body")
            text = box.inner_text()
            assert "Recommendation. " in text and "insertion AUC" in text and "random map at" in text
            assert page.locator('[data-testid="stDataFrame"]').count() == 1
            assert "Sanity check" in page.inner_text("body")
        finally:
            browser.close()
