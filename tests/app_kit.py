"""Shared pieces of the AppTest page tests: run a page, count model forwards, read Plotly specs
(imported by tests/dashboard/test_app.py and test_review.py)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from dashboard.app import cache
from dashboard.core import pages

ROOT = Path(__file__).resolve().parents[1]

HOME = str(ROOT / "dashboard" / pages.page("home").script)
#: page key -> its script, from THE page table (dashboard.core.pages): the tests keep no copy of it.
PAGES = {p.key: p.script for p in pages.PAGES if p.key != "home"}
REVIEW = str(ROOT / "dashboard" / PAGES["review"])
TIMEOUT = 300  # seconds per script run: 2 shared cores, torch import on the first run


#: The model the page tests run on unless they say otherwise: the bundled scene model (small,
#: fast, exact object masks). The app itself opens on EfficientNet-Lite0 (tests/dashboard/test_imagenet.py).
SCENES = "scenes_vgg"


def open_app(path: str = HOME, query: dict | None = None, *, model: str | None = SCENES) -> AppTest:
    """An AppTest of ``path`` (not run yet) whose link names ``model`` (None: the app's default),
    plus ``query``."""
    at = AppTest.from_file(path, default_timeout=TIMEOUT)
    if model is not None:
        at.query_params["model"] = model
    if query:
        at.query_params.update(query)
    return at


def run_page(page: str | None = None, query: dict | None = None, *, model: str | None = SCENES) -> AppTest:
    """Home (then ``page``) run once, on ``model`` (None: the app's default model)."""
    at = open_app(HOME, query, model=model)
    if page is None:
        return at.run()
    at.run()  # pages are found after the first run of the main script
    return at.switch_page(PAGES[page]).run()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def plain(markdown: str) -> str:
    """What markdown escaped by ``dashboard.app.errors.md_escape`` reads as (backslashes and the
    zero-width joiners that stop autolinks dropped)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u200d", "")


def texts(elements) -> str:
    """The plain text of alert elements (``at.warning``, ``at.error``...), joined."""
    return " ".join(plain(e.value) for e in elements)


def live_markup(at: AppTest) -> list[tuple[str, str]]:
    """Markdown the page renders that would make a link, an image or HTML: an unescaped bracket or
    angle bracket, or a bare URL (GFM turns ``http://…`` and ``www.…`` into links)."""
    found = []
    for kind in ("warning", "error", "info", "success", "caption", "markdown", "subheader", "header"):
        for el in getattr(at, kind):
            for bit in re.findall(r"(?<!\\)[\[\]<>]|(?i:https?:|www\.)", el.value):
                found.append((kind, f"{bit!r} in {el.value[:120]!r}"))
    return found


def map_images(at: AppTest) -> list:
    """The page's pictures without its colour bars (their caption says "colours")."""
    return [img for img in at.image if "colours:" not in (img.proto.imgs[0].caption or "")]


def plotly_specs(at: AppTest) -> list[dict]:
    import json

    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


class ForwardCounter:
    """Counts forward passes of the cached default model (a forward pre-hook)."""

    def __init__(self, model_id: str = SCENES) -> None:
        self.count = 0
        net = cache.model_handle(model_id).loaded.model
        self.handle = net.register_forward_pre_hook(self._hook)

    def _hook(self, module, args):
        self.count += 1

    def close(self) -> None:
        self.handle.remove()


def as_array(value) -> np.ndarray:
    """A Plotly JSON array: a list, or a typed array ``{"dtype": "f8", "bdata": base64}``."""
    import base64

    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value)


def model_calls() -> int:
    return sum(cache.MODEL_CALLS.values())


# ------------------------------------------------------------------------------------------
# every page renders
