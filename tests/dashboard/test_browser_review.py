"""Save to review and open the snapshot's link, in a real browser (helpers from tests/browser_kit.py).

The server gets its own database through ``GRADLENS_DB`` (a temp file), set before it starts.
Screenshots: ``tests/_artifacts/review_*.png``.
"""

from __future__ import annotations

import re

import pytest

from browser_kit import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, VIEWPORT, check_page, download, panel_titles, wait_ready

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", autouse=True)
def _review_db(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("GRADLENS_DB", str(tmp_path_factory.mktemp("browser_review") / "review.sqlite3"))
    yield
    mp.undo()


def test_save_then_open_the_link_in_a_new_page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(server + "/Methods?page=methods&methods=layercam,gradcam&cmap=turbo&alpha=0.7")
            check_page(page, "review_source", "Methods side by side", plots=1)
            source_caption = page.locator('[data-testid="stCaptionContainer"]', has_text="Class ").first.inner_text()
            source_panels = panel_titles(page)
            assert source_panels[:2] == ["LayerCAM", "Grad-CAM"]

            page.get_by_text("Save to review").click()
            page.get_by_role("textbox", name=re.compile("Your name")).fill("ana")
            page.keyboard.press("Tab")  # outside the form: kept for the session on its own rerun
            wait_ready(page)
            page.get_by_label("Title").fill("Turbo <b>check</b>")
            page.get_by_label("Note").fill("LayerCAM looks wider.")
            page.get_by_role("button", name="Save snapshot").click()
            page.wait_for_selector('[data-testid="stAlertContentSuccess"]', timeout=60_000)
            wait_ready(page)
            page.screenshot(path=str(ARTIFACTS / "review_saved.png"))
            success = page.locator('[data-testid="stAlertContentSuccess"]').inner_text()
            link = re.search(r"Review\?snapshot=[A-Za-z0-9_-]{10}", success).group(0)

            other = browser.new_page(viewport=VIEWPORT)
            other.goto(f"{server}/{link}")
            check_page(other, "review_opened", "Review", plots=1)
            body = other.inner_text("body")
            assert "Methods side by side · scenes_vgg" in body
            assert "Turbo <b>check</b>" in body and "LayerCAM looks wider." in body  # plain text
            assert source_caption in body  # same class, layer, normalization
            assert panel_titles(other)[:2] == source_panels[:2]
            assert other.locator(".js-plotly-plot .heatmaplayer, .js-plotly-plot image").count() >= 1

            html = download(other, "HTML report").decode("utf-8")
            assert "Turbo &lt;b&gt;check&lt;/b&gt;" in html and "<b>check</b>" not in html
            (ARTIFACTS / "review_report.html").write_text(html, encoding="utf-8")

            other.get_by_role("button", name="Back to the list").click()
            check_page(other, "review_list", "Review")
            assert "1 snapshot(s)." in other.inner_text("body")
            assert other.locator('[data-testid="stDataFrame"]').count() == 1
        finally:
            browser.close()
