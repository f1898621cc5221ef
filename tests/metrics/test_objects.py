"""Per-object scores (methods.metrics.objects) on the hand-set detector: hand-computed values."""

from __future__ import annotations

import pytest
import torch

import methods
from methods.errors import InputError
from methods.metrics.faithfulness.curves import reference_maps
from methods.metrics.objects import object_mask, object_scores
from methods.targets import BoxTarget, RegionTarget
from task_models import BOX1, BoxDetector


def test_object_mask_from_a_box_a_target_or_a_region():
    m = object_mask((8, 8), target=BoxTarget(BOX1, 1))
    assert m.sum() == 16 and m[2:6, 2:6].all()
    region = torch.zeros(8, 8, dtype=torch.bool)
    region[0, :3] = True
    assert torch.equal(object_mask((8, 8), target=RegionTarget(0, mask=region)), region)
    with pytest.raises(InputError, match="give the object"):
        object_mask((8, 8))


def test_energy_and_pointing_of_the_map_and_the_references():
    sal = torch.zeros(8, 8)
    sal[3, 3] = 4.0
    sal[0, 0] = 1.0  # 4 of 5 units of positive energy lie in BOX1
    s = object_scores(None, torch.zeros(1, 3, 8, 8), sal, BoxTarget(BOX1, 1), curves=False)
    assert s.pointing["map"] is True and s.energy["map"] == pytest.approx(0.8)
    refs = reference_maps((8, 8), seed=0)
    rand = refs["random"].double()
    assert s.energy["random"] == pytest.approx(float(rand[2:6, 2:6].sum() / rand.sum()), rel=1e-6)
    centre = refs["centre"].double()
    assert s.energy["centre"] == pytest.approx(float(centre[2:6, 2:6].sum() / centre.sum()), rel=1e-6)
    assert s.beats()["energy"] == {"random": 0.8 > s.energy["random"], "centre": 0.8 > s.energy["centre"]}


def test_deletion_and_insertion_on_the_box_score(fp32):
    """Deleting BOX1 first (zero baseline) drops the box score s1 = mean of the box linearly to 0."""
    x = torch.full((1, 3, 8, 8), 0.5)
    sal = torch.zeros(8, 8)
    sal[2:6, 2:6] = 1.0
    s = object_scores(BoxDetector(), x, sal, BoxTarget(BOX1, 1), steps=64, baseline="zero")
    curve = s.curves["deletion/map"]
    assert curve.scores[:17].tolist() == pytest.approx([0.5 * (16 - k) / 16 for k in range(17)])
    assert s.deletion["map"] == pytest.approx(0.5 * 16 / 64 / 2)  # the triangle, then 0
    ins = s.curves["insertion/map"].scores
    assert ins[:17].tolist() == pytest.approx([0.5 * k / 16 for k in range(17)])
    assert s.beats()["deletion"] == {r: s.deletion["map"] < s.deletion[r] for r in ("random", "centre")}
    exp = methods.explain(BoxDetector(), x, "hirescam", layers="conv", target=BoxTarget(BOX1, 1))
    assert object_scores(None, x, exp.maps["conv"][0], BoxTarget(BOX1, 1), curves=False).energy["map"] == 1.0


def test_object_rows_one_row_per_object_method_layer_and_reference(fp32):
    from methods.pipeline.objects import detected_targets, object_rows
    from task_models import BOX2

    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    targets = detected_targets(BoxDetector(), x, min_score=0.0)
    assert [(t.box, t.label) for t in targets] == [(BOX1, 1), (BOX2, 2)]
    rows = object_rows(BoxDetector(), x, targets, ["hirescam", "gradcam"], layers=["conv"], image="a.png", steps=4)
    assert len(rows) == 2 * (2 + 2)  # 2 objects x (2 methods + random + centre)
    first = rows[0]
    assert (first["image"], first["object"], first["method"], first["layer"]) == ("a.png", 0, "hirescam", "conv")
    assert first["energy_pg"] == 1.0 and first["pointing_hit"] is True  # HiResCAM of BOX1 lies in BOX1
    assert first["score"] == pytest.approx(float(x.mean(dim=1)[0, 2:6, 2:6].mean()), rel=1e-6)
    assert [r["method"] for r in rows[:4]] == ["hirescam", "gradcam", "random", "centre"]
    assert all(r["deletion_auc"] is not None for r in rows)
    assert rows[4]["target"] == "box (0, 0, 8, 8) class 2" and rows[4]["energy_pg"] == 1.0  # the whole image
