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
    names = [
        s.name
        for s in methods.list_methods()
        if s.resolution == "layer" and not s.final_layer_only and s.requires is None  # a CNN here
    ]
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


def test_one_line_per_method_for_many_signed_layers():
    """Issue 25: the README's second block printed ten paragraph-long Grad-CAM++ warnings, one per
    layer. A call now warns ONCE per method and kind with one line naming the layers; the notes keep
    each layer's full message."""
    import warnings

    net = _net(-3.0)
    with torch.no_grad():
        net.features[0].bias.fill_(-3.0)  # features.0 and features.4: mostly negative; features.2 not
    x = torch.randn(1, 3, 16, 16)
    layers = ["features.0", "features.2", "features.4"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        many = methods.explain_many(net, x, ["gradcampp", "xgradcam", "gradcam"], layers=layers, target=1)
    lines = [str(w.message) for w in caught if issubclass(w.category, methods.GradLensWarning)]
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    pp = next(line for line in lines if line.startswith("Grad-CAM++"))
    assert pp.startswith("Grad-CAM++: 2 of 3 layers are mostly negative (features.0, features.4): ")
    assert "Explanation.notes" in pp and len(pp) < 400
    notes = many["gradcampp"].notes
    assert len(notes) == 2 and "'features.0'" in notes[0] and "'features.4'" in notes[1]
    assert "% of the activations are negative" in notes[1]
    assert not many["gradcam"].notes
