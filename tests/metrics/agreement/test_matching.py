"""matched_layers on lists whose nearest depths are worked out by hand (i(t) = floor(t (L-1) + 1/2)),
by resolution, and on two real models of different depth."""

from __future__ import annotations

import pytest

import methods
from methods.cams.core.blocks import block_layers
from methods.cams.core.layers import LayerInfo
from methods.errors import OptionError, WrongTypeError
from methods.metrics.agreement.matching import matched_layers, nearest_index, relative_depths
from methods.models.scenes import nets as scene_nets


def _names(prefix, n):
    return [f"{prefix}{i}" for i in range(n)]


def test_depth_pairs_of_known_lists():
    """3 vs 5 layers: depths 0, 1/2, 1 -> B indices 0, 2, 4.
    3 vs 4: 1/2 * 3 = 1.5 -> floor(2.0) = 2 (a tie goes deeper).
    4 vs 7: depths 0, 1/3, 2/3, 1 -> 0, floor(2.5) = 2, floor(4.5) = 4, 6."""
    m = matched_layers(_names("a", 3), _names("b", 5))
    assert m.pairs == (("a0", "b0"), ("a1", "b2"), ("a2", "b4"))
    assert m.depths_a == (0.0, 0.5, 1.0) and m.depths_b == (0.0, 0.5, 1.0) and m.by == "depth"
    assert [b for _, b in matched_layers(_names("a", 3), _names("b", 4))] == ["b0", "b2", "b3"]
    assert [b for _, b in matched_layers(_names("a", 4), _names("b", 7))] == ["b0", "b2", "b4", "b6"]
    assert matched_layers(_names("a", 4), _names("b", 7)).depths_b == (0.0, 2 / 6, 4 / 6, 1.0)


def test_the_shorter_list_leads_whichever_side_it_is():
    """5 vs 3: B's depths 0, 1/2, 1 pick A's 0, 2, 4; the pairs stay (A, B)."""
    m = matched_layers(_names("a", 5), _names("b", 3))
    assert m.pairs == (("a0", "b0"), ("a2", "b1"), ("a4", "b2")) and m.targets == (0.0, 0.5, 1.0)


def test_n_target_depths():
    """n = 4: targets 1/4, 1/2, 3/4, 1. A has 9 layers (L-1 = 8): 2, 4, 6, 8; B has 5 (4): 1, 2, 3, 4.
    n = 3 on 4 layers: 1/3 * 3 = 1, 2/3 * 3 = 2, 3."""
    m = matched_layers(_names("a", 9), _names("b", 5), n=4)
    assert m.targets == (0.25, 0.5, 0.75, 1.0)
    assert m.pairs == (("a2", "b1"), ("a4", "b2"), ("a6", "b3"), ("a8", "b4"))
    assert m.depths_a == (0.25, 0.5, 0.75, 1.0)
    assert [a for a, _ in matched_layers(_names("a", 4), _names("b", 4), n=3)] == ["a1", "a2", "a3"]
    single = matched_layers(["only"], _names("b", 3), n=2)
    assert single.pairs == (("only", "b1"), ("only", "b2")) and single.depths_a == (1.0, 1.0)


def test_helpers():
    assert relative_depths(3) == [0.0, 0.5, 1.0] and relative_depths(1) == [1.0]
    assert [nearest_index(t, 5) for t in (0.0, 0.124, 0.125, 0.5, 1.0)] == [0, 0, 1, 2, 4]


def _info(name, h, i):
    return LayerInfo(name, "X", (8, h, h), i)


def test_by_resolution():
    """The last layer of each grid both lists have, in forward order (A: 32 at a1, 16 at a3,
    8 at a4; B: 32 at b0, 8 at b2 - no 16)."""
    a = [_info("a0", 32, 0), _info("a1", 32, 1), _info("a2", 16, 2), _info("a3", 16, 3), _info("a4", 8, 4)]
    b = [_info("b0", 32, 0), _info("b1", 4, 1), _info("b2", 8, 2)]
    m = matched_layers(a, b, by="resolution")
    assert m.pairs == (("a1", "b0"), ("a4", "b2")) and m.grids == ((32, 32), (8, 8))
    assert m.depths_a == (0.25, 1.0) and m.depths_b == (0.0, 1.0)


def test_by_resolution_across_input_sizes_uses_the_stride():
    """At 128 px, 16 x 16 is stride 8; at 224 px, 28 x 28 is stride 8 and 14 x 14 stride 16."""
    a = [_info("a0", 32, 0), _info("a1", 16, 1)]
    b = [_info("b0", 28, 0), _info("b1", 14, 1)]
    assert matched_layers(a, b, by="resolution").pairs == ()
    m = matched_layers(a, b, by="resolution", input_sizes=(128, 224))
    assert m.pairs == (("a1", "b0"),) and m.grids == ((8, 8),)


def test_models_of_different_depth():
    """scenes_vgg has 7 block layers, scenes_resnet 5 (tests/cams/core/test_block_layers.py). n = 4:
    VGG indices 2, 3, 5, 6 (floor(1.5 + .5), floor(3.5), floor(5), 6) and ResNet 1, 2, 3, 4.
    Without n the 5 ResNet layers lead: VGG 0, 2 (1.5 -> 2), 3, 5 (4.5 -> 5), 6. By resolution the
    grids 64, 32, 16 are shared."""
    vgg = block_layers(scene_nets.build("scenes_vgg"), 128)
    res = block_layers(scene_nets.build("scenes_resnet"), 128)
    assert matched_layers(vgg, res, n=4).pairs == (
        ("features.6", "layer1"),
        ("features.7", "layer2"),
        ("features.14", "layer3"),
        ("features.20", "layer4"),
    )
    assert [a for a, _ in matched_layers(vgg, res)] == [
        "features.2",
        "features.6",
        "features.7",
        "features.14",
        "features.20",
    ]
    assert matched_layers(vgg, res, by="resolution").pairs == (
        ("features.6", "layer1"),
        ("features.13", "layer2"),
        ("features.20", "layer4"),
    )


def test_bad_arguments():
    with pytest.raises(OptionError, match="empty"):
        matched_layers([], ["b"])
    with pytest.raises(OptionError, match="duplicate"):
        matched_layers(["a", "a"], ["b"])
    with pytest.raises(WrongTypeError):
        matched_layers("layer4", ["b"])
    with pytest.raises(WrongTypeError):
        matched_layers([3], ["b"])
    with pytest.raises(OptionError, match="by="):
        matched_layers(["a"], ["b"], by="width")
    with pytest.raises(OptionError, match="n must be"):
        matched_layers(["a"], ["b"], n=0)
    with pytest.raises(OptionError, match="applies to by='depth'"):
        matched_layers([_info("a", 4, 0)], [_info("b", 4, 0)], by="resolution", n=2)
    with pytest.raises(WrongTypeError, match="LayerInfo"):
        matched_layers(["a"], ["b"], by="resolution")
    assert methods.matched_layers is matched_layers
