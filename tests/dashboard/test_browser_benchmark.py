"""The Benchmark page in a real browser: open an evaluate table by its path, see the leaderboard and
the distribution, follow the link to one image on the Methods page (helpers: tests/browser_kit.py).

Its own server (``GRADLENS_BROWSER_PORT`` picks the port; default a free one). Screenshots:
``tests/_artifacts/benchmark_*.png``.
"""

from __future__ import annotations

import os

import pytest

from browser_kit import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, VIEWPORT, check_page, start_server, stop_server, wait_ready
from methods.pipeline.evaluate import evaluate

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def bench_server(tmp_path_factory):
    """The server reads tables below $GRADLENS_RESULTS_ROOT only: the session's temporary folder,
    where the test writes its table."""
    port = int(os.environ["GRADLENS_BROWSER_PORT"]) if os.environ.get("GRADLENS_BROWSER_PORT") else None
    mp = pytest.MonkeyPatch()
    mp.setenv("GRADLENS_RESULTS_ROOT", str(tmp_path_factory.getbasetemp().resolve()))
    proc, base, log = start_server(ARTIFACTS / "streamlit_benchmark.log", port)
    try:
        yield base
    finally:
        stop_server(proc, log)
        mp.undo()


def test_open_a_table_and_follow_a_row_to_the_methods_page(bench_server, tmp_path):
    from playwright.sync_api import sync_playwright

    df = evaluate(
        "scenes_vgg",
        "scenes2:2",
        methods=["gradcam", "gradcampp"],
        steps=5,
        workers=1,
        progress=False,
        log=lambda _s: None,
    )
    path = tmp_path / "eval.parquet"
    df.to_parquet(path, index=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(bench_server + "/Benchmark")
            check_page(page, "benchmark_empty", "Benchmark")
            box = page.get_by_role("textbox", name="Path of an evaluate result or a batch manifest")
            box.fill(str(path))
            box.press("Enter")
            wait_ready(page)
            page.get_by_role("button", name="Open").click()
            page.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=120_000)
            check_page(page, "benchmark_table", "Benchmark", plots=1)
            body = page.inner_text("body")
            assert "Leaderboard" in body and "Paired difference to the random map" in body
            assert page.locator('[data-testid="stDataFrame"]').count() >= 5
            link = page.locator('[data-testid="stPageLink"] a', has_text="on the Methods page")
            assert link.count() == 1
            link.click()
            page.wait_for_url("**/Methods?**", timeout=60_000)
            check_page(page, "benchmark_to_methods", "Methods side by side", plots=1)
            image_menu = page.get_by_role("combobox", name="Image").input_value()
            worst = df[df["method"] == "gradcam"].sort_values("deletion_auc", ascending=False).iloc[0]
            seed = worst["image"].split(":")[1]
            assert image_menu == f"Scene {seed} (two objects, from a benchmark)"  # the scored scene, no fallback
            assert f"image=scene2%3A{seed}" in page.url or f"image=scene2:{seed}" in page.url
            assert f"Class {worst['target_name']} · layer features.20" in page.inner_text("body")  # that row's class
        finally:
            browser.close()
