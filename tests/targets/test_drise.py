"""D-RISE on the hand-set one-conv detector (tests/task_models.py): closed forms against RISE."""

from __future__ import annotations

import pytest
import torch

import methods
from methods.cams.perturb import rise_masks
from methods.errors import TargetError
from methods.targets import BoxTarget, RegionTarget
from task_models import BOX1, BoxDetector

OPTS = {"num_masks": 40, "cell": 4, "seed": 5}


def _x() -> torch.Tensor:
    return torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(11))


def test_drise_weights_each_mask_by_iou_times_the_class_score(fp32):
    """Reference box (2, 2, 6, 8): IoU with the class-1 detection (BOX1) is 2/3 on every masked
    input, so w_i = 2/3 s1(x o M_i) and D-RISE = 2/3 x RISE on the class score of BOX1."""
    x = _x()
    ref = BoxTarget((2.0, 2.0, 6.0, 8.0), 1)
    d = methods.explain(BoxDetector(), x, "drise", target=ref, **OPTS)
    r = methods.explain(BoxDetector(), x, "rise", target=BoxTarget(BOX1, 1), **OPTS)
    torch.testing.assert_close(d.maps[d.layers[0]], 2 / 3 * r.maps[r.layers[0]], rtol=1e-5, atol=1e-7)
    masks = rise_masks(40, (8, 8), cell=4, seed=5)
    s = (x * masks[:, None]).mean(dim=1)[:, 2:6, 2:6].mean(dim=(1, 2))  # (40,)
    naive = (2 / 3 * s[:, None, None] * masks).sum(0) / 20
    torch.testing.assert_close(d.maps[d.layers[0]][0], naive, rtol=1e-5, atol=1e-6)


def test_drise_uses_the_cosine_of_probability_vectors_when_the_detector_gives_them(fp32):
    """With probs, w_i = max_d IoU_d * p_d[c] / |p_d|: the class-1 detection's p = (1 - s1, s1, 0)."""
    x = _x()
    d = methods.explain(BoxDetector(probs=True), x, "drise", target=BoxTarget(BOX1, 1), **OPTS)
    masks = rise_masks(40, (8, 8), cell=4, seed=5)
    s = (x * masks[:, None]).mean(dim=1)[:, 2:6, 2:6].mean(dim=(1, 2))  # (40,)
    s2 = (x * masks[:, None]).mean(dim=(1, 2, 3))  # the whole-image detection: IoU 16/64, p = (1 - s2, 0, s2)
    w = torch.maximum(s / torch.sqrt(s**2 + (1 - s) ** 2), torch.zeros_like(s2))  # label-2 box: cos 0 for class 1
    naive = (w[:, None, None] * masks).sum(0) / 20
    torch.testing.assert_close(d.maps[d.layers[0]][0], naive, rtol=1e-5, atol=1e-6)


def test_drise_refuses_anything_but_a_box():
    x = _x()
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    with pytest.raises(TargetError, match="D-RISE explains only box targets"):
        methods.explain(net, x, "drise", **OPTS)
    with pytest.raises(TargetError, match="D-RISE explains only box targets and the target is a region"):
        methods.explain(net, x, "drise", target=RegionTarget(0), **OPTS)
    assert "drise" not in [s.name for s in methods.list_methods()]
    assert "drise" in [s.name for s in methods.list_methods(target="box")]
