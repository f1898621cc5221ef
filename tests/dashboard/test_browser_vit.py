"""A CNN beside a ViT on the Compare page, in a real browser (Playwright on Debian's chromium):
scenes_vgg and the bundled scenes_vit, trained on the same scenes, matched by relative depth
(both have 7 block layers). Screenshot: ``tests/_artifacts/compare_vgg_vit.png`` (look at it).
"""

from __future__ import annotations

import os

import pytest

from browser_kit import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORT,
    check_page,
    panel_titles,
    start_server,
    stop_server,
)

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


def test_methods_page_scenes_vit_gradcam_rollout_chefer(vit_server):
    """Screenshot ``tests/_artifacts/methods_vit.png``: Grad-CAM at the last block, attention rollout and
    Chefer relevance on the bundled ViT, three maps, no note that a method does not apply."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(vit_server + "/Methods?model=scenes_vit&methods=gradcam,rollout,chefer&image=scene_star_brick")
            check_page(page, "methods_vit", "Methods side by side", plots=1)
            titles = " ".join(panel_titles(page))
            assert "Grad-CAM" in titles and "rollout" in titles.lower() and "Chefer" in titles, titles
            body = page.inner_text("body")
            assert "layer blocks.3" in body and "does not apply" not in body
        finally:
            browser.close()


def test_layers_page_scenes_vit_lists_its_blocks(vit_server):
    """Screenshot ``tests/_artifacts/layers_vit.png``: the patch embedding and the four blocks."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(vit_server + "/Layers?model=scenes_vit&image=scene_star_brick")
            check_page(page, "layers_vit", "Layers", images=7, plots=1)  # 7 block outputs + the depth curve
            body = page.inner_text("body")
            for name in ("patch_embed", "blocks.0", "blocks.1", "blocks.2", "norm"):
                assert f"{name} · 128×8×8" in body, name
            assert "blocks.3 · 128×8×8 · default" in body
        finally:
            browser.close()


def test_rollout_on_a_cnn_is_a_note_beside_the_gradcam_map(vit_server):
    """Screenshot ``tests/_artifacts/methods_cnn_rollout.png``: the note, and Grad-CAM's map alone."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(vit_server + "/Methods?model=scenes_vgg&methods=gradcam,rollout&image=scene_star_brick")
            check_page(page, "methods_cnn_rollout", "Methods side by side", plots=1)
            assert "Attention rollout does not apply to this model" in page.inner_text("body")
            titles = " ".join(panel_titles(page))
            assert "Grad-CAM" in titles and "rollout" not in titles.lower(), titles
        finally:
            browser.close()
