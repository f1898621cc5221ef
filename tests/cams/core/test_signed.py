"""The signed-layer note: methods that divide by / multiply activation sums, or zero channels, say so
when more than half of a layer's activations are negative."""

from __future__ import annotations

import torch

import methods
from methods.cams.core.signed import negative_fraction
from tiny_models import GapNet

WARNS = {"xgradcam", "gradcampp", "smoothgradcampp", "ablationcam"}


def _net(shift: float) -> GapNet:
    net = GapNet(classes=3, seed=71)
    with torch.no_grad():
        net.features[4].bias.fill_(shift)  # features.4 is a conv before the last ReLU
    return net


def test_signed_layer_notes():
    x = torch.randn(1, 3, 16, 16)
    names = [s.name for s in methods.list_methods() if s.resolution == "layer" and not s.final_layer_only]
    opts = {"sscam": {"num_samples": 2}, "iscam": {"steps": 2}, "smoothgradcampp": {"num_samples": 2}}
    negative = _net(-3.0)
    rec = methods.record(negative, x, ["features.4"], gradients=False)
    assert negative_fraction(rec.activations["features.4"]) > 0.5
    many = methods.explain_many(negative, x, names, layers=["features.4"], target=1, options=opts)
    noted = {name for name, exp in many.items() if any("negative" in n for n in exp.notes)}
    assert noted == WARNS
    note = many["xgradcam"].notes[0]
    assert "'features.4'" in note and "% of the activations are negative" in note and "Grad-CAM / HiResCAM" in note
    positive = methods.explain_many(_net(3.0), x, sorted(WARNS), layers=["features.4"], target=1, options=opts)
    assert all(not exp.notes for exp in positive.values())
