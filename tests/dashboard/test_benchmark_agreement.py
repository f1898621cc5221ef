"""The Benchmark page's "Where the metrics disagree" section under AppTest.

A hand-made evaluate table (no model runs): four methods whose deletion and insertion rankings
agree (+1) and whose Average Drop ranking is the reverse (-1), with a method name that is markup.
The page must show the library's numbers (:func:`methods.metrics.agreement.metric_agreement.metric_agreement`,
checked by hand in tests/metrics/agreement/test_metric_agreement.py) and escape the names.
"""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app_kit import HOME, TIMEOUT, assert_clean, live_markup, plotly_specs
from dashboard.core import pages
from dashboard.views.benchmark import data as bd
from dashboard.views.benchmark.agreement import pairs_table
from methods.metrics.agreement.metric_agreement import metric_agreement

BENCH = pages.page("benchmark").script
EVIL = "<b>evil</b> [x](http://e.x)"


def _table() -> pd.DataFrame:
    rows = []
    for k, method in enumerate(["gradcam", EVIL, "m3", "m4"]):
        for image in ("a.png", "b.png"):
            rows.append(
                dict(
                    image=image,
                    method=method,
                    layer="layer4",
                    target=0,
                    target_name="cat",
                    deletion_auc=0.1 * (k + 1),
                    insertion_auc=0.9 - 0.1 * k,
                    avg_drop=40.0 - 10 * k,
                    increase=k < 2,
                )
            )
    return pd.DataFrame(rows)


def _array(value) -> np.ndarray:
    """A Plotly array: a (nested) list, or the typed-array form ``{"bdata": base64, "dtype", "shape"}``."""
    if isinstance(value, dict):
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).astype(float)
        shape = [int(v) for v in str(value.get("shape", len(flat))).split(",")]
        return flat.reshape(shape)
    return np.array(value, dtype=float)


@pytest.fixture(autouse=True)
def _results_root(tmp_path, monkeypatch):
    monkeypatch.setenv(bd.RESULTS_ENV, str(tmp_path.resolve()))


def test_the_section_shows_the_librarys_correlations_escaped(tmp_path):
    df = _table()
    df.to_parquet(tmp_path / "agree.parquet", index=False)
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
    at.switch_page(BENCH).run()
    at.text_input(key="bm_path").input(str(tmp_path / "agree.parquet"))
    at = at.button(key="bm_open").click().run()
    assert_clean(at)
    assert not live_markup(at)
    assert any(s.value == "Where the metrics disagree" for s in at.subheader)
    frame = bd.read_table((tmp_path / "agree.parquet").read_bytes(), "agree.parquet").frame
    res = metric_agreement(frame)
    shown = next(d.value for d in at.dataframe if list(d.value.columns) == list(pairs_table(res).columns))
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), pairs_table(res))
    by_pair = {(r.metric, r.versus): (r.correlation, r.verdict) for r in shown.itertuples()}
    assert by_pair[("Deletion AUC", "Insertion AUC")] == (1.0, "agree")
    assert by_pair[("Deletion AUC", "Average Drop")] == (-1.0, "disagree (reverse order)")
    heat = next(s for s in plotly_specs(at) if s["data"][0]["type"] == "heatmap")
    z = _array(heat["data"][0]["z"])
    np.testing.assert_allclose(z, res.matrix.to_numpy(dtype=float))
    assert heat["data"][0]["x"][0] == "Deletion AUC"
    # Kendall and leaving the references out re-run the library with those options
    at.radio(key="bm_agree_stat").set_value("kendall").run()
    assert_clean(at)
    kendall = metric_agreement(frame, statistic="kendall")
    shown = next(d.value for d in at.dataframe if list(d.value.columns) == list(pairs_table(kendall).columns))
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), pairs_table(kendall))
    assert not live_markup(at)  # the markup-named method never reaches the page as markup
