"""Issue 16 in a real browser (helpers from tests/browser_kit.py, server from conftest.py): downloads
right after settings changes, Back, hostile links, the class label after an image change, and slow
work that a link cannot start, that Cancel stops, that leaves the model free for a second tab and
that stops when its tab closes. Screenshots: ``tests/_artifacts/hardening_*.png``.

Every wait is on a condition (the script has finished, a text or element is there, a log line is
written), with the generous timeouts of browser_kit, never a longer sleep: the suite must pass on
a loaded machine.
"""

from __future__ import annotations

import io
import re
import time
from urllib.parse import urlparse

import pytest
from PIL import Image

from browser_kit import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    LOAD_TIMEOUT_MS,
    VIEWPORT,
    check_page,
    download,
    nav,
    wait_ready,
)

pytestmark = pytest.mark.browser
EVIL = "http://evil.example"
LOG = ARTIFACTS / "streamlit.log"


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _pick(page, box: str, option) -> None:
    """Choose ``option`` (text, or a compiled pattern) in the selectbox labelled ``box``, then wait
    for the rerun to finish."""
    page.get_by_role("combobox", name=box).click()
    page.get_by_role("option", name=option, exact=isinstance(option, str)).click()
    wait_ready(page)


def _multi(page, box: str, add: str | None = None, remove: str | None = None) -> None:
    if add is not None:
        page.get_by_role("combobox", name=box).click()
        page.get_by_role("combobox", name=box).fill(add)
        page.get_by_role("option", name=add, exact=True).click()
        page.keyboard.press("Escape")
    if remove is not None:
        page.get_by_role("button", name=f"Remove {remove}").first.click()  # the chip's ✕
    wait_ready(page)


def _heading(page, text: str) -> None:
    page.wait_for_function(
        "t => (document.querySelector('h1') || {}).innerText?.trim() === t", arg=text, timeout=LOAD_TIMEOUT_MS
    )
    wait_ready(page)


def _wait_for_log(pattern: str, since: int, timeout_s: float = 120) -> str:
    """Poll the server log (written by the server process) until ``pattern`` appears after byte ``since``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = LOG.read_text(encoding="utf-8", errors="replace")[since:]
        found = re.search(pattern, text)
        if found:
            return found.group(0)
        time.sleep(0.25)
    raise AssertionError(f"no {pattern!r} in the server log after {timeout_s} s")


def test_downloads_work_right_after_each_change(browser, server):
    """ "Table as CSV" did nothing in 2 of 5 clicks right after a settings change: the click's own
    rerun made the file's id stale. Five changes, each followed at once by a download whose bytes
    say the change was applied."""
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(server + "/Methods?model=scenes_vgg")
    check_page(page, "hardening_methods", "Methods side by side", plots=1)
    labels = ["Grad-CAM", "Grad-CAM++", "LayerCAM"]
    steps = [
        ("add XGrad-CAM", lambda: _multi(page, "Methods", add="XGrad-CAM"), labels + ["XGrad-CAM"]),
        ("colormap", lambda: _pick(page, "Colormap", "turbo"), None),
        (
            "remove Grad-CAM++",
            lambda: _multi(page, "Methods", remove="Grad-CAM++"),
            ["Grad-CAM", "LayerCAM", "XGrad-CAM"],
        ),
        ("normalization", lambda: _pick(page, "Normalization", "max"), None),
        ("layer", lambda: _pick(page, "Layer", re.compile(r"^features\.13 · ")), None),
    ]
    expected, tables = labels, []
    for name, change, now in steps:
        change()
        expected = now or expected
        rows = download(page, "Table as CSV").decode("utf-8").splitlines()
        assert rows[0].startswith("Method,Family,Cost"), (name, rows[:2])
        assert [r.split(",")[0] for r in rows[1:]] == expected, name
        tables.append(rows)
    assert tables[-1] != tables[-2]  # the layer change changed the raw values in the table
    png = download(page, "Overlays as PNG")
    text = Image.open(io.BytesIO(png)).text
    assert text["GradLens normalization"].startswith("max normalization") and text["GradLens colormap"] == "turbo"
    (ARTIFACTS / "hardening_methods_download.png").write_bytes(png)
    page.close()


def test_back_takes_one_press_per_step(browser, server):
    """Back needed two presses to leave a page: the URL sync pushed an extra history entry."""
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(server + "/")
    check_page(page, "hardening_back_home", "GradLens", images=4)
    nav(page, "Methods")
    _heading(page, "Methods side by side")
    _pick(page, "Colormap", "turbo")
    assert "cmap=turbo" in page.url
    nav(page, "Layers")
    _heading(page, "Layers")
    page.go_back()
    _heading(page, "Methods side by side")
    assert page.get_by_role("combobox", name="Colormap").input_value() == "turbo"
    page.go_back()  # undoes the colormap change, on the same page
    page.wait_for_function("() => !location.search.includes('cmap=turbo')", timeout=LOAD_TIMEOUT_MS)
    wait_ready(page)
    assert page.locator("h1").first.inner_text().strip() == "Methods side by side"
    assert page.get_by_role("combobox", name="Colormap").input_value() == "jet"
    page.go_back()
    _heading(page, "GradLens")
    page.close()


def test_a_hostile_link_shows_text_and_fetches_nothing(browser, server):
    """Values from the URL were live links and remote images inside warnings; the page icon came
    from fonts.gstatic.com. Every request now goes to this server, and the values are text."""
    page = browser.new_page(viewport=VIEWPORT)
    hosts: set = set()
    page.on("request", lambda r: hosts.add(urlparse(r.url).hostname))
    query = (
        f"?model=[Click to re-login]({EVIL}/login)&image=upload:x%20![t]({EVIL}/t.png)"
        f"&[name]({EVIL}/n)=1&layer=[layer]({EVIL}/l)"
    )
    page.goto(server + "/Methods" + query.replace(" ", "%20"))
    wait_ready(page)
    page.screenshot(path=str(ARTIFACTS / "hardening_hostile_link.png"))
    body = page.inner_text("body").replace("\u200d", "")  # the joiners that stop autolinks
    assert f"[Click to re-login]({EVIL}/login)" in body and f"[layer]({EVIL}/l)" in body
    assert page.locator('a[href*="evil.example"]').count() == 0
    assert page.locator('img[src*="evil.example"]').count() == 0
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.evaluate("document.querySelector(\"link[rel='shortcut icon']\").href").startswith("data:")
    assert hosts == {"127.0.0.1"}, hosts
    page.close()


def test_the_class_box_shows_the_new_images_top1_at_once(browser, server):
    """The box kept "Top-1 prediction: star (85.8%)" after an image change, until the next rerun."""
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(server + "/?model=scenes_vgg")
    check_page(page, "hardening_label_before", "GradLens", images=4)
    _pick(page, "Image", "Scene · scene_cross_noise: a cross on coloured noise")
    heading = page.get_by_text(re.compile("^Grad-CAM for “")).first.inner_text()
    top = re.search(r"Grad-CAM for “(.+)” at layer", heading).group(1)
    box = page.get_by_role("combobox", name="Explain the class").input_value()
    page.screenshot(path=str(ARTIFACTS / "hardening_label_after.png"))
    assert box.startswith(f"Top-1 prediction: {top} ("), (box, top)
    page.close()


def test_slow_work_waits_for_a_click_can_be_cancelled_and_ends_with_its_tab(browser, server):
    """``?slow=1`` started SS-CAM with no click and held the model: a second tab did not render for
    150 s, and the server computed 50 s after the tab closed."""
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(server + "/Methods?methods=gradcam,sscam&slow=1")
    check_page(page, "hardening_slow_link", "Methods side by side", plots=1)
    body = page.inner_text("body")
    assert "SS-CAM is slow" in body and "never starts slow work" in body
    assert page.locator('[data-testid="stProgress"]').count() == 0

    page.get_by_role("button", name="Run SS-CAM").click()
    page.wait_for_selector('[data-testid="stProgress"]', timeout=LOAD_TIMEOUT_MS)
    other = browser.new_page(viewport=VIEWPORT)  # a second session needs the same model meanwhile
    other.goto(server + "/?image=scene_triangle_square_brick&cmap=viridis")
    check_page(other, "hardening_second_tab", "GradLens", images=4)
    assert page.locator('[data-testid="stProgress"]').count() == 1  # the first tab's job still runs
    other.close()

    since = LOG.stat().st_size
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_selector("text=Cancelled: it starts again when you press the button", timeout=LOAD_TIMEOUT_MS)
    wait_ready(page)
    assert page.locator('[data-testid="stProgress"]').count() == 0
    page.screenshot(path=str(ARTIFACTS / "hardening_cancelled.png"))
    _wait_for_log(r"job 'Running SS-CAM[^']*' ended: cancelled", since)

    page.get_by_role("button", name="Run SS-CAM").click()
    page.wait_for_selector('[data-testid="stProgress"]', timeout=LOAD_TIMEOUT_MS)
    since = LOG.stat().st_size
    page.close()  # the tab goes: the job stops at its next batch
    _wait_for_log(r"job 'Running SS-CAM[^']*' ended: cancelled", since)
