"""Every request has a budget (issue 26): a page opened from a link never starts work above
:data:`methods.cams.core.cost.SMALL_BUDGET` without a click in its session, "slow" is decided by
the request's estimated cost (not a static flag per method), the Sanity checks take a slow-job
slot, and opening a review snapshot runs nothing it did not save.

"No model call ran" is read from the dashboard's own counter of cache misses that ran the model
(``cache.MODEL_CALLS["explain"]``) and, where it matters, from a forward pre-hook on the shared
model (``ForwardCounter``).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_kit import PAGES, TIMEOUT, ForwardCounter, assert_clean, open_app, plain
from dashboard.app import cache
from methods.cams.core.cost import SMALL_BUDGET, estimate
from methods.review.store import SnapshotStore

ROOT = Path(__file__).resolve().parents[2]
METHODS_PAGE = str(ROOT / "dashboard" / PAGES["methods"])
LAYERS_PAGE = str(ROOT / "dashboard" / PAGES["layers"])
SANITY_PAGE = str(ROOT / "dashboard" / PAGES["sanity"])
REVIEW_PAGE = str(ROOT / "dashboard" / PAGES["review"])


def _gate_texts(at: AppTest) -> list[str]:
    return [plain(m.value) for m in at.markdown if "is slow" in m.value or "was not saved" in m.value]


def test_the_estimate_reads_the_options():
    """Closed forms of the estimate (forward-pass equivalents; a backward counts 2, an SVD 1)."""
    size = (128, 128)
    assert estimate("gradcam", input_size=size, channels=[64]).passes == 3
    assert estimate("smoothgradcampp", {"num_samples": 40}, input_size=size, channels=[64]).passes == 41 * 3
    assert estimate("scorecam", input_size=size, channels=[512]).passes == 1 + 513
    assert estimate("scorecam", {"channels": 2}, input_size=size, channels=[512]).passes == 1 + 3
    assert (
        estimate("sscam", {"num_samples": 10, "channels": 4}, input_size=size, channels=[512, 64]).passes == 1 + 2 * 41
    )
    assert estimate("rise", {"num_masks": 500}, input_size=size, channels=[8, 8, 8]).passes == 501  # once per call
    grid = len(range(0, 128 - 16 + 1, 8)) ** 2  # window 16, stride 8 on 128 px: 15 x 15
    assert estimate("occlusion", input_size=size, channels=[8]).passes == 2 + grid
    both = {"aug_smooth": True, "eigen_smooth": True}
    assert estimate("gradcampp", both, input_size=size, channels=[16] * 22).passes == 6 * (3 + 22)
    assert estimate("gradcam", input_size=size, channels=[64], images=7).passes == 21
    big = estimate("smoothgradcampp", {"num_samples": 40}, input_size=size, channels=[64])
    assert big.units == 123 * 128 * 128 > SMALL_BUDGET and big.over()


def test_a_link_over_the_budget_shows_its_cost_and_runs_nothing_until_clicked():
    """``/Methods?methods=smoothgradcampp&opts=smoothgradcampp.num_samples:3000`` ran 23 s with no
    click (Smooth Grad-CAM++ was not a "slow" method); 40 samples are over the budget here."""
    counter = ForwardCounter()
    try:
        at = open_app(METHODS_PAGE, {"methods": "smoothgradcampp", "opts": "smoothgradcampp.num_samples:40"})
        before, forwards = cache.MODEL_CALLS["explain"], counter.count
        at.run()
        assert_clean(at)
        assert cache.MODEL_CALLS["explain"] == before
        assert counter.count - forwards <= 2  # the prediction (and the layer list): never 41 passes
        (gate,) = _gate_texts(at)
        assert "Smooth Grad-CAM++ is slow" in gate and "here: about 123 model passes" in gate, gate
        at.button(key="methods_run_smoothgradcampp").click().run()
        assert_clean(at)
        assert cache.MODEL_CALLS["explain"] == before + 1
        # (the run itself is on a private copy of the model in a slow-job slot: not counted by the hook)
    finally:
        counter.close()


def test_slow_is_decided_by_the_cost_not_by_the_method():
    """Score-CAM scoring 2 channels is 4 passes: it runs from a link like Grad-CAM does."""
    at = open_app(METHODS_PAGE, {"methods": "scorecam", "opts": "scorecam.channels:2"})
    before = cache.MODEL_CALLS["explain"]
    at.run()
    assert_clean(at)
    assert not _gate_texts(at) and cache.MODEL_CALLS["explain"] == before + 1


def test_layers_every_layer_with_both_smoothings_waits_for_a_click():
    """``opts=gradcampp.aug_smooth:true,gradcampp.eigen_smooth:true&layerset=all`` ran 63.6 s on open."""
    query = {"method": "gradcampp", "opts": "gradcampp.aug_smooth:true,gradcampp.eigen_smooth:true", "layerset": "all"}
    at = open_app(LAYERS_PAGE, query)
    before = cache.MODEL_CALLS["explain"]
    at.run()
    assert_clean(at)
    assert cache.MODEL_CALLS["explain"] == before
    (gate,) = _gate_texts(at)
    assert "Grad-CAM++ is slow" in gate and "about 150 model passes" in gate and "22 layer(s)" in gate
    assert any(b.key == "layers_run_gradcampp" for b in at.button)


class _CountingSlots:
    """Stands in for the slow-job semaphore: counts acquisitions and the most held at once."""

    def __init__(self, real) -> None:
        self.real, self.acquired, self.held, self.most = real, 0, 0, 0
        self.lock = threading.Lock()

    def acquire(self, *args, **kwargs):
        got = self.real.acquire(*args, **kwargs)
        if got:
            with self.lock:
                self.acquired += 1
                self.held += 1
                self.most = max(self.most, self.held)
        return got

    def release(self):
        with self.lock:
            self.held -= 1
        self.real.release()


def test_the_sanity_checks_take_a_slow_job_slot(monkeypatch):
    """The checks copied the model themselves: three link-opened Sanity tabs ran beside the two
    slow jobs the slots allow."""
    slots = _CountingSlots(cache._SLOW_SLOTS)
    monkeypatch.setattr(cache, "_SLOW_SLOTS", slots)
    at = open_app(SANITY_PAGE, {"methods": "gradcam", "mode": "independent", "classes": "2"})
    before = cache.MODEL_CALLS["sanity"]
    at.run()
    assert_clean(at)
    ran = cache.MODEL_CALLS["sanity"] - before
    assert ran >= 1 and slots.acquired == ran and slots.held == 0  # every check held a slot, then gave it back


@pytest.fixture
def review_db(tmp_path, monkeypatch):
    path = tmp_path / "review.sqlite3"
    monkeypatch.setenv("GRADLENS_DB", str(path))
    return path


def test_opening_a_snapshot_runs_nothing_that_was_not_saved(review_db):
    """Saved on Methods while Score-CAM waited for its Run button; opening ``Review?snapshot=``
    ran Score-CAM live (SS-CAM on Lite0: ~50 minutes per open tab)."""
    at = open_app(METHODS_PAGE, {"methods": "gradcam,scorecam"})
    at.run()
    assert_clean(at)
    assert any("Score-CAM is slow" in g for g in _gate_texts(at))
    at.text_input(key="w_review_author").input("ana")
    at.text_input(key="w_review_title").input("waiting")
    (save,) = [b for b in at.button if b.label == "Save snapshot"]
    save.click().run()
    assert_clean(at)
    (row,) = SnapshotStore(review_db).list()
    assert set(SnapshotStore(review_db).get(row.id).maps) == {"gradcam"}

    counter = ForwardCounter()
    try:
        review = AppTest.from_file(REVIEW_PAGE, default_timeout=TIMEOUT)
        review.query_params["snapshot"] = row.id
        before, forwards = cache.MODEL_CALLS["explain"], counter.count
        review.run()
        assert_clean(review)
        assert cache.MODEL_CALLS["explain"] == before and counter.count == forwards
        assert any("Score-CAM was not saved in this snapshot" in g for g in _gate_texts(review))
    finally:
        counter.close()


def test_the_benchmark_pages_evaluation_takes_a_slow_job_slot(monkeypatch):
    slots = _CountingSlots(cache._SLOW_SLOTS)
    monkeypatch.setattr(cache, "_SLOW_SLOTS", slots)
    at = AppTest.from_file(str(ROOT / "dashboard" / "Home.py"), default_timeout=TIMEOUT).run()
    at.switch_page(str(ROOT / "dashboard" / PAGES["benchmark"])).run()
    at.number_input(key="bm_n").set_value(1).run()
    at.slider(key="bm_steps").set_value(5).run()
    assert slots.acquired == 0  # nothing runs before the click
    at.button(key="bm_run").click().run()
    assert_clean(at)
    assert slots.acquired == 1 and slots.held == 0


def test_compare_decides_slow_by_the_summed_cost_of_its_models():
    """Compare used the static "slow" flag: Score-CAM on two channels per layer is 4 passes per
    layer and runs from a link; Smooth Grad-CAM++ with 40 samples over the block layers of two
    models waits for its button and no model call runs until it is clicked."""
    page = str(ROOT / "dashboard" / PAGES["compare"])
    at = open_app(page, {"method": "scorecam", "opts": "scorecam.channels:2"})
    at.run()
    assert_clean(at)
    assert not _gate_texts(at)
    at = open_app(page, {"method": "smoothgradcampp", "opts": "smoothgradcampp.num_samples:40"})
    before = cache.MODEL_CALLS["explain"]
    at.run()
    assert_clean(at)
    assert cache.MODEL_CALLS["explain"] == before
    (gate,) = _gate_texts(at)
    assert "Smooth Grad-CAM++ is slow" in gate and "block layers of 2 models" in gate, gate
