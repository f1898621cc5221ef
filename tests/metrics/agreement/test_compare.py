"""layer_similarity: one explain pass per model, cells equal to pairwise map_agreement, targets,
matched-depth rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import methods
from methods.errors import LayerError, OptionError, TargetError
from methods.metrics.agreement.compare import layer_similarity
from methods.metrics.agreement.maps import METRICS, map_agreement
from tiny_models import GapNet


class Counting(nn.Module):
    """Counts the forwards of the wrapped model (a backward needs a forward, so one forward per
    model means one forward+backward)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.net(x)


LAYERS = ["net.features.1", "net.features.3", "net.features.5"]


def test_one_explain_pass_per_model_and_cells_equal_pairwise_agreement():
    a, b = Counting(GapNet(seed=0).eval()), Counting(GapNet(seed=1).eval())
    x = torch.rand(1, 3, 16, 16)
    sim = layer_similarity(a, b, x, x, method="gradcam", layers_a=LAYERS, layers_b=LAYERS[1:])
    assert (a.calls, b.calls) == (1, 1)
    assert sim.names_a == tuple(LAYERS) and sim.names_b == tuple(LAYERS[1:])
    assert sim.grids_a == ((16, 16), (8, 8), (8, 8)) and sim.grid == (16, 16)
    assert sim.depths_a == (0.0, 0.5, 1.0) and sim.depths_b == (0.0, 1.0)
    for m in METRICS:
        assert sim.values(m).shape == (3, 2)
    for i, la in enumerate(sim.names_a):
        ref_a = methods.explain(a.net, x, "gradcam", layers=[la[4:]]).maps[la[4:]][0]
        assert torch.equal(sim.maps_a[la], ref_a)  # the same map as a plain explain
        for j, lb in enumerate(sim.names_b):
            pair = map_agreement(sim.maps_a[la], sim.maps_b[lb], top=sim.top, size=sim.grid)
            for m in METRICS:
                assert sim.values(m)[i, j] == pytest.approx(getattr(pair, m), abs=1e-12)
            assert sim.agreement(la, lb).spearman == pytest.approx(pair.spearman, abs=1e-12)


def test_a_model_against_itself_has_an_exact_unit_diagonal():
    net = GapNet().eval()
    x = torch.rand(1, 3, 16, 16)
    sim = layer_similarity(net, net, x, x, method="gradcampp", layers_a="all", layers_b="all")
    assert sim.names_a == sim.names_b
    spear = sim.values("spearman")
    assert np.array_equal(np.diag(spear), np.ones(len(sim.names_a)))
    assert np.allclose(spear, spear.T, atol=1e-12)
    assert sim.targets[0] == sim.targets[1] and sim.probs[0] == sim.probs[1]


def test_targets_none_int_and_pair():
    a, b = GapNet(seed=0).eval(), GapNet(seed=1, classes=3).eval()
    x = torch.rand(1, 3, 16, 16)
    own = layer_similarity(a, b, x, x, layers_a=["features.5"], layers_b=["features.5"])
    assert own.targets == (int(a(x).argmax()), int(b(x).argmax()))
    assert layer_similarity(a, b, x, x, layers_a=["features.5"], layers_b=["features.5"], targets=2).targets == (2, 2)
    both = layer_similarity(a, b, x, x, layers_a=["features.5"], layers_b=["features.5"], targets=(4, None))
    assert both.targets == (4, own.targets[1])
    with torch.no_grad():
        probs = torch.softmax(a(x), 1)[0, 4]
    assert both.probs[0] == pytest.approx(float(probs), abs=1e-6)
    with pytest.raises(TargetError):
        layer_similarity(a, b, x, x, layers_a=["features.5"], layers_b=["features.5"], targets=4)  # b has 3 classes
    with pytest.raises(TargetError, match="pair"):
        layer_similarity(a, b, x, x, targets=(1, 2, 3))


def test_blocks_and_matched_rows_on_the_bundled_models():
    """scenes_vgg vs scenes_resnet, block layers (7 and 5): rows at 25/50/75/100 % are the pairs of
    tests/metrics/agreement/test_matching.py, and each row's numbers are the matrix cell."""
    va, vb = methods.load_model("scenes_vgg"), methods.load_model("scenes_resnet")
    from methods.data.samples import load_sample

    img = load_sample("scene_star_brick")
    sim = layer_similarity(
        va, vb, va.preprocess(img)[None], vb.preprocess(img)[None], layers_a="blocks", layers_b="blocks"
    )
    assert len(sim.names_a) == 7 and len(sim.names_b) == 5 and sim.grid == (64, 64)
    rows = sim.by_depth(4)
    match = rows[0][0]
    assert match.pairs[-1] == ("features.20", "layer4")
    for m, row, agr in rows:
        i, j = sim.names_a.index(m.pairs[row][0]), sim.names_b.index(m.pairs[row][1])
        assert agr.spearman == sim.values("spearman")[i, j]
    res_rows = sim.by_depth(by="resolution")
    assert [m.pairs[r] for m, r, _ in res_rows] == [
        ("features.6", "layer1"),
        ("features.13", "layer2"),
        ("features.20", "layer4"),
    ]


def test_bad_arguments():
    net = GapNet().eval()
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(LayerError):
        layer_similarity(net, net, x, x, layers_a=["nope"])
    with pytest.raises(methods.errors.InputError, match="1 sample"):
        layer_similarity(net, net, torch.rand(2, 3, 16, 16), x)
    with pytest.raises(OptionError, match="metric"):
        layer_similarity(net, net, x, x, layers_a=["features.5"], layers_b=["features.5"]).values("ssim")
    with pytest.raises(OptionError, match="options"):
        layer_similarity(net, net, x, x, options=[1])
    assert methods.layer_similarity is layer_similarity
