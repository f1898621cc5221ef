"""The Compare and Sanity pages in a real browser (Playwright on Debian's chromium). Compare: two
ImageNet models from a link, the overlay grid, the depth table, the heatmap's hover naming both
layers, a CSV download. Sanity: two methods' strips, the chart, the verdicts, the class section.
Screenshots go to ``tests/_artifacts/compare*.png`` and ``sanity*.png`` (look at them).

``GRADLENS_BROWSER_PORT`` picks the server's port (default: a free one).
"""

from __future__ import annotations

import os

import pytest

from browser_kit import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, VIEWPORT, check_page, download, start_server, stop_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def compare_server():
    port = int(os.environ.get("GRADLENS_BROWSER_PORT", "0")) or None
    proc, base, log = start_server(ARTIFACTS / "streamlit_compare.log", port=port)
    try:
        yield base
    finally:
        stop_server(proc, log)


def test_compare_page_in_a_real_browser(compare_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(compare_server + "/Compare")
            check_page(page, "compare_scenes", "Compare models", images=9, plots=2)
            body = page.inner_text("body")
            assert "Each map explains its model's own class" in body
            assert "Agreement at the matched depths" in body

            page.goto(compare_server + "/Compare?model=efficientnet_lite0&models=efficientnet_lite1")
            check_page(page, "compare_lite", "Compare models", images=9, plots=2)
            body = page.inner_text("body")
            assert "EfficientNet-Lite1" in body and "20 block layers" in body and "25 block layers" in body
            heat = page.locator('[data-testid="stPlotlyChart"]').nth(1)
            heat.scroll_into_view_if_needed()
            box = heat.locator(".nsewdrag").first.bounding_box()
            page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.9)
            page.wait_for_selector(".hoverlayer .hovertext", timeout=30_000)
            hover = page.locator(".hoverlayer .hovertext").first.text_content()
            assert "EfficientNet-Lite0" in hover and "EfficientNet-Lite1" in hover and "Spearman" in hover, hover
            page.screenshot(path=str(ARTIFACTS / "compare_heatmap.png"))
            csv = download(page, "Agreement table as CSV").decode()
            lines = csv.splitlines()
            assert lines[0].startswith("Depth,Models,Layers,Grids,Spearman") and len(lines) == 5, lines
        finally:
            browser.close()


def test_sanity_page_in_a_real_browser(compare_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(
                compare_server + "/Sanity?model=scenes_vgg&methods=gradcam,random"
            )  # 7 blocks: 8 steps per method
            check_page(page, "sanity", "Sanity checks", images=2 * 8 + 6, plots=1)
            body = page.inner_text("body")
            assert "Grad-CAM passes" in body and "Does the map depend on the class?" in body
            assert page.locator('a[href="https://arxiv.org/abs/1810.03292"]').count() == 1
            page.locator('[data-testid="stPlotlyChart"]').first.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "sanity_chart.png"))
            csv = download(page, "Similarity by step as CSV").decode()
            assert (
                csv.splitlines()[0].startswith("method,step,block,probability,spearman") and len(csv.splitlines()) == 17
            )
        finally:
            browser.close()
