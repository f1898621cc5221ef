"""The Compare page opens a `gradlens drift` report (dashboard/views/compare/drift.py) under AppTest.

The report is made here by the library (scenes_vgg against a copy whose classifier is negated:
every map reversed, every top-1 class changed), then uploaded: the page's summary and most-moved
tables hold the report's numbers in its order; names from the report are escaped; a broken or
foreign file is a message, never a traceback.
"""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import torch

import methods
from app_kit import assert_clean, live_markup, plain, run_page, texts
from dashboard.views.compare.drift import UPLOAD_KEY
from methods.pipeline.drift import DriftOptions, DriftThresholds, drift

HOSTILE = "[click](http://evil.example) <b>bold</b> *x*"


@pytest.fixture(scope="module")
def report() -> dict:
    a = methods.load_model("scenes_vgg")
    net = copy.deepcopy(a.model)
    with torch.no_grad():
        net.classifier[1].weight.neg_()
        net.classifier[1].bias.neg_()
    b = dataclasses.replace(a, name="scenes_vgg negated", model=net)
    r = drift(
        a, b, "scenes:3", options=DriftOptions(steps=2, n_boot=50), thresholds=DriftThresholds(max_map_change=0.1)
    )
    r["images"][0]["image"] = HOSTILE
    r["model_b"]["name"] = HOSTILE
    return r


def _upload(at, name: str, data: bytes):
    at.expander[0]  # the section is drawn (closed) before anything is uploaded
    at.file_uploader(key=UPLOAD_KEY).set_value((name, data, "application/json")).run()
    return at


def test_a_drift_report_shows_its_numbers_in_order_with_names_escaped(report):
    at = _upload(run_page("compare"), "report.json", json.dumps(report).encode())
    assert_clean(at)
    (summary,) = [d.value for d in at.dataframe if "Statistic" in d.value.columns]
    means = dict(zip(summary["Statistic"], summary["Mean"]))
    assert means["Map change (1 − Spearman)"] == pytest.approx(2.0, abs=1e-12)
    assert means["Top-1 changed (share)"] == 1.0
    assert means["Spearman of the two maps"] == pytest.approx(report["summary"]["spearman"]["mean"])
    (images,) = [d.value for d in at.dataframe if "Image" in d.value.columns]
    assert list(images["Image"]) == [r["image"] for r in report["images"]]
    assert list(images["map_change"]) == pytest.approx([r["map_change"] for r in report["images"]])
    warned = texts(at.warning)
    assert "Past its thresholds: max_map_change = 0.1" in warned and HOSTILE in warned
    assert not live_markup(at)  # the hostile name reads as text, nowhere as a link or HTML


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b'{"kind": "gradlens-drift", "version": 1, "summary": NaN}', "not strict JSON"),
        (b'{"kind": "batch-manifest"}', 'has no "kind": "gradlens-drift"'),
        (b"\xff\xfe", "not strict JSON"),
    ],
)
def test_a_broken_report_is_a_message(data, said):
    at = _upload(run_page("compare"), "odd [name].json", data)
    assert not at.exception
    message = plain(at.error[0].value)
    assert "odd [name].json" in message and said in message
    assert not live_markup(at)
