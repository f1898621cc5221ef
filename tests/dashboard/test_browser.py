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

import pytest

from browser_kit import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORT,
    check_page,
    download,
    nav,
    panel_titles,
    wait_ready,
)

pytestmark = pytest.mark.browser


def test_every_page_in_a_real_browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(server + "/?model=scenes_vgg")  # the small bundled model: Score-CAM below stays quick
            check_page(page, "home", "GradLens", images=4)
            assert "Prediction" in page.inner_text("body")
            assert page.locator('[data-testid="stDataFrame"]').count() == 2
            assert page.url == server + "/?model=scenes_vgg"  # only what differs from the defaults
            png = download(page, "The four views as PNG")
            assert png[:8] == b"\x89PNG\r\n\x1a\n"
            (ARTIFACTS / "download_home.png").write_bytes(png)

            nav(page, "Methods")
            check_page(page, "methods", "Methods side by side", plots=1)
            assert "/Methods" in page.url and "page=" not in page.url  # the path names the page
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
            check_page(page, "layers", "Layers", images=7, plots=1)  # scenes_vgg's 7 block outputs
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
            other.goto(
                server + "/Methods?page=methods&model=scenes_vgg&cmap=turbo&norm=max&relu=0&alpha=0.7"
                "&methods=layercam,gradcam&layer=features.13"
            )
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
