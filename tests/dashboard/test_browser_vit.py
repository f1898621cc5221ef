"""A CNN beside a ViT on the Compare page, in a real browser (Playwright on Debian's chromium):
scenes_vgg and the bundled scenes_vit, trained on the same scenes, matched by relative depth
(both have 7 block layers). Screenshot: ``tests/_artifacts/compare_vgg_vit.png`` (look at it).
"""

from __future__ import annotations

import os

import pytest

from browser_kit import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, VIEWPORT, check_page, start_server, stop_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def vit_server():
    port = int(os.environ.get("GRADLENS_BROWSER_PORT", "0")) or None
    proc, base, log = start_server(ARTIFACTS / "streamlit_vit.log", port=port)
    try:
        yield base
    finally:
        stop_server(proc, log)


def test_compare_scenes_vgg_beside_scenes_vit(vit_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(vit_server + "/Compare?model=scenes_vgg&models=scenes_vit&image=scene_star_brick")
            check_page(page, "compare_vgg_vit", "Compare models", images=9, plots=2)
            body = page.inner_text("body")
            assert "Scenes ViT" in body and "Scenes VGG" in body
            assert body.count("7 block layers") >= 2 or "7 block layers" in body
            assert "Agreement at the matched depths" in body
            assert "blocks.3" in body  # the ViT's last block sits beside the VGG's last layer
        finally:
            browser.close()
