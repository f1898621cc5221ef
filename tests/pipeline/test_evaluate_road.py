"""ROAD in the evaluation table (``evaluate(..., road=True)`` / ``--road``): an opt-in pair of columns
whose every value equals :func:`methods.metrics.faithfulness.road.road` of that row's map.

The tiny untrained scene-class CNN of tests/pipeline/test_evaluate.py stands in for a catalog model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from methods.cams.core.explain import explain_many
from methods.data.scenes import CLASS_NAMES, EVAL_SEED_START, make_scene
from methods.metrics.agreement.metric_agreement import metric_agreement
from methods.metrics.faithfulness.road import RoadOptions, road
from methods.models import LoadedModel
from methods.pipeline import evaluate as ev


@pytest.fixture
def tiny(monkeypatch):
    """An untrained 8-class CNN as the catalog's model (the pipeline's load_model patched), one worker."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(4),
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, len(CLASS_NAMES)),
    ).eval()  # fmt: skip
    loaded = LoadedModel(
        name="tiny", model=net, input_size=(64, 64), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
        class_names=tuple(CLASS_NAMES), default_layer="4", source="checkpoint",
    )  # fmt: skip
    monkeypatch.setattr("methods.pipeline.common.load_model", lambda name, **kw: loaded)
    monkeypatch.setattr("methods.pipeline.engines.default_workers", lambda: 1)
    return loaded


def test_road_columns_equal_the_library_function(tiny, fp32):
    df = ev.evaluate(tiny, "scenes:1", steps=2, progress=False, road=True, workers=1, log=lambda _s: None)
    assert list(df.columns[-2:]) == ["road_morf", "road_lerf"]
    row = df[df["method"] == "gradcam"].iloc[0]
    scene = make_scene(EVAL_SEED_START)
    x = tiny.preprocess(scene.image)[None]
    sal = explain_many(tiny, x, ["gradcam"], layers=["4"], target=int(row["target"]))["gradcam"].maps["4"][0]
    want = road(tiny, x, sal, int(row["target"]), options=RoadOptions(seed=0, batch_size=32, precision="fp32"))
    assert row["road_morf"] == pytest.approx(want.road_morf, abs=1e-6)
    assert row["road_lerf"] == pytest.approx(want.road_lerf, abs=1e-6)
    assert df["road_morf"].notna().all() and set(df["method"]) == {"gradcam", "random", "centre"}
    # the agreement view reads the new columns with their directions
    res = metric_agreement(df)
    assert "road_morf" in res.metrics and "road_lerf" in res.metrics


def test_without_road_the_table_is_unchanged(tiny):
    df = ev.evaluate(tiny, "scenes:1", steps=1, progress=False, workers=1, log=lambda _s: None)
    assert list(df.columns) == list(ev.COLUMNS)
    with pytest.raises(Exception, match="road"):
        ev.evaluate(tiny, "scenes:1", steps=1, progress=False, road="yes")
    assert np.isfinite(df["deletion_auc"]).all()
