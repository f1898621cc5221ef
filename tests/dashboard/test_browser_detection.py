"""The Detection page in a real browser (helpers from tests/browser_kit.py): the bundled detector's boxes
on the default two-object scene, one box's maps, its energy table and deletion curve, the PNG and CSV
downloads; a classification page sends the detector here. Screenshots: ``tests/_artifacts/detection_*.png``
(the boxes picture alone: ``detection_boxes.png``)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from browser_kit import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, VIEWPORT, check_page, download, wait_ready
from methods.data import samples
from methods.models import load_model
from methods.targets import detect

pytestmark = pytest.mark.browser


def _expected_boxes() -> list[tuple[str, tuple[float, ...]]]:
    """The detector's own boxes on the default scene (label name, box), highest score first."""
    lm = load_model("scenes_det")
    image = np.asarray(samples.load_sample("scene_circle_semicircle_grass"))
    det = detect(lm, lm.preprocess(image)[None])[0]
    keep = det["scores"] >= 0.5  # the page's MIN_SCORE
    return [(lm.class_names[int(l)], tuple(b.tolist())) for l, b in zip(det["labels"][keep], det["boxes"][keep])]


def test_detection_page_boxes_maps_and_downloads(server):
    from playwright.sync_api import sync_playwright

    expected = _expected_boxes()
    # the scene's two objects, found first (torchvision's NMS is per class: a weaker box of another
    # class on the same object may follow)
    assert [name for name, _ in expected[:2]] == ["circle", "semicircle"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(server + "/Detection?model=scenes_det&box=1")
            check_page(page, "detection_page", "Detection and segmentation", images=6, plots=1)
            body = page.inner_text("body")
            name, box = expected[1]
            assert f"#2 {name}" in body and "explained: #2" in body
            first = page.locator('[data-testid="stImage"] img').first
            first.screenshot(path=str(ARTIFACTS / "detection_boxes.png"))
            maps = page.locator('[data-testid="stImage"] img').nth(1)
            maps.screenshot(path=str(ARTIFACTS / "detection_map.png"))
            assert page.locator('[data-testid="stDataFrame"]').count() == 1 and "Deletion curve" in body

            png = download(page, "Maps as PNG")
            grid = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
            assert grid.shape[0] > 200 and grid.shape[1] > 600
            csv = download(page, "Energy table as CSV").decode("utf-8")
            assert csv.splitlines()[0].startswith("Row,Method,Layer,Energy in region")

            page.goto(server + "/Methods?model=scenes_det")
            wait_ready(page)
            assert "is a detector" in page.inner_text("body")
            page.get_by_text("Open the Detection and segmentation page").click()
            check_page(page, "detection_from_methods", "Detection and segmentation", images=2)
            assert "explained: #1" in page.inner_text("body")
        finally:
            browser.close()
