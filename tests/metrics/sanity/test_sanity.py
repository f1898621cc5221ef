"""The model-parameter randomization test (Adebayo et al. 2018, arXiv:1810.03292)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import methods
from methods.data.samples import load_sample
from methods.errors import LayerError, OptionError
from methods.metrics.agreement.similarity import SIMILARITIES
from methods.metrics.sanity.check import sanity_check
from methods.metrics.sanity.randomize import Block, block_seed, reinitialise
from tiny_models import GapNet, count_hooks


@pytest.fixture(scope="module")
def scenes():
    return {name: methods.load_model(name) for name in ("scenes_vgg", "scenes_resnet")}


def _x(loaded, sample="scene_star_brick"):
    return loaded.preprocess(load_sample(sample))[None]


@pytest.mark.parametrize("spec", [s for s in methods.list_methods() if s.requires is None], ids=lambda s: s.name)
def test_every_method_trained_step_is_exactly_one(spec):
    """Step 0 is the trained model: its map is the plain explain() map and every similarity is 1.0."""
    net = GapNet().eval()
    x = torch.rand(1, 3, 16, 16)
    res = sanity_check(net, x, method=spec.name, layer="features.5", blocks=["fc", "features.4"])
    ref = methods.explain(net, x, spec.name, layers=["features.5"]).maps["features.5"][0]
    assert torch.equal(res.maps[0], ref)
    for m in SIMILARITIES:
        assert res.similarity[m][0] == 1.0 and res.similarity[m].shape == (3,)
        assert np.isfinite(res.similarity[m]).all()
    assert res.steps == ("trained", "fc", "features.4") and res.probs.shape == (3,)
    with torch.no_grad():
        assert res.probs[0] == pytest.approx(float(torch.softmax(net(x), 1)[0, res.target]), abs=1e-6)


def test_the_callers_model_is_unchanged_bit_for_bit(scenes):
    net = copy.deepcopy(scenes["scenes_vgg"].model)
    net.train()
    net.features[1].eval()  # a mix of modes
    net.classifier[1].weight.requires_grad_(False)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    modes = [m.training for m in net.modules()]
    flags = [p.requires_grad for p in net.parameters()]
    ptrs = [p.data_ptr() for p in net.parameters()]
    rng = torch.get_rng_state()
    x = _x(scenes["scenes_vgg"])
    x_before = x.clone()
    for mode in ("cascading", "independent"):
        sanity_check(net, x, mode=mode, blocks=["classifier", "features.18 + features.19".split(" + ")])
    after = net.state_dict()
    assert set(after) == set(before)
    assert all(
        after[k].dtype == before[k].dtype and after[k].cpu().numpy().tobytes() == before[k].cpu().numpy().tobytes()
        for k in before
    )
    assert [m.training for m in net.modules()] == modes
    assert [p.requires_grad for p in net.parameters()] == flags and [p.data_ptr() for p in net.parameters()] == ptrs
    assert count_hooks(net) == 0 and torch.equal(torch.get_rng_state(), rng) and torch.equal(x, x_before)


def test_steps_follow_the_documented_order(scenes):
    vgg = sanity_check(scenes["scenes_vgg"], _x(scenes["scenes_vgg"]), method="centre")
    assert vgg.steps == (
        "trained",
        "classifier",
        "features.18 + features.19",
        "features.15 + features.16",
        "features.11 + features.12",
        "features.8 + features.9",
        "features.4 + features.5",
        "features.0 + features.1",
    )
    assert vgg.layer == "features.20" and len(vgg.maps) == 8 and vgg.randomized_fraction[-1] == 1.0
    res = sanity_check(scenes["scenes_resnet"], _x(scenes["scenes_resnet"]), method="centre", blocks=["fc", "layer4"])
    assert res.steps == ("trained", "fc", "layer4") and res.layer == "layer4"


def test_seeded_runs_repeat_exactly_and_modes_agree_on_the_first_block(scenes):
    loaded = scenes["scenes_resnet"]
    x = _x(loaded)
    a = sanity_check(loaded, x, seed=3)
    b = sanity_check(loaded, x, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.maps, b.maps))
    assert all(np.array_equal(a.similarity[m], b.similarity[m]) for m in SIMILARITIES)
    assert np.array_equal(a.probs, b.probs)
    other = sanity_check(loaded, x, seed=4)
    assert not torch.equal(other.maps[2], a.maps[2])
    ind = sanity_check(loaded, x, seed=3, mode="independent")
    assert torch.equal(ind.maps[1], a.maps[1])  # step 1 randomizes block 0 alone in both modes
    assert not torch.equal(ind.maps[2], a.maps[2])  # cascading: blocks 0 and 1; independent: block 1
    # independent step k = the trained model with block k (and only it) re-initialised
    work = copy.deepcopy(loaded.model)
    reinitialise(work, ind.blocks[3], seed=block_seed(3, 3))
    ref = methods.explain(work, x, "gradcam", layers=["layer4"], target=ind.target).maps["layer4"][0]
    assert torch.equal(ind.maps[4], ref)


@pytest.mark.parametrize(
    ("model", "sample", "gradcam_layer", "random_layer", "untouched"),
    [
        ("scenes_vgg", "scene_star_brick", "features.20", "features.13", 3),
        ("scenes_vgg", "scene_cross_diamond_moon", "features.20", "features.13", 3),
        ("scenes_resnet", "scene_star_brick", "layer4", "layer2", 3),
        ("scenes_resnet", "scene_cross_diamond_moon", "layer4", "layer2", 3),
    ],
)
def test_gradcam_decorrelates_while_random_ignores_what_it_never_reads(
    scenes, model, sample, gradcam_layer, random_layer, untouched
):
    """Cascading randomization on the bundled models, default seed 0. Measured (Spearman of the raw
    map to the trained one, steps 0..n; this machine, 2026-12-01):

    scenes_vgg, Grad-CAM at features.20: star_brick 1.00 -0.11 0.14 0.18 0.49 0.41 0.32 0.43;
    cross_diamond_moon 1.00 0.54 -0.00 0.03 -0.09 -0.06 -0.03 -0.21.
    scenes_resnet, Grad-CAM at layer4: star_brick 1.00 0.19 -0.06 -0.09 -0.08 0.20 -0.19;
    cross_diamond_moon 1.00 -0.51 -0.08 -0.09 -0.12 0.04 0.07.
    Random at features.13 (vgg): 1.00 1.00 1.00 1.00 0.06 -0.22 0.09 0.11 and
    1.00 1.00 1.00 1.00 0.09 -0.10 0.01 -0.01; at layer2 (resnet): 1.00 1.00 1.00 1.00 -0.05 -0.16 0.21
    and 1.00 1.00 1.00 1.00 0.21 0.03 -0.12.

    Grad-CAM reads the gradient from the logits down, so it changes as soon as the head is random
    (the target's probability falls from 0.45-0.86 to about 1/8). Random weights the layer's
    activations, which no block above the layer touches: exactly 1.0 for those steps, then it
    decorrelates once its own block goes."""
    loaded = scenes[model]
    x = _x(loaded, sample)
    cam = sanity_check(loaded, x, method="gradcam", layer=gradcam_layer)
    assert (cam.similarity["spearman"][1:] < 0.6).all()
    verdict = cam.verdict()
    assert verdict.passes is True and "passes" in verdict.text and verdict.value < 0.5
    assert cam.probs[0] > 0.4 and (cam.probs[1:] < 0.2).all()

    rnd = sanity_check(loaded, x, method="random", layer=random_layer)
    for m in SIMILARITIES:
        assert (rnd.similarity[m][: untouched + 1] == 1.0).all(), m
    assert rnd.similarity["spearman"][untouched + 1] < 0.5


def test_a_map_that_ignores_the_weights_fails(scenes):
    """The Centre baseline draws the same blob whatever the weights: similarity 1 at every step."""
    loaded = scenes["scenes_vgg"]
    res = sanity_check(loaded, _x(loaded), method="centre")
    assert all((res.similarity[m] == 1.0).all() for m in SIMILARITIES)
    v = res.verdict()
    assert v.passes is False and "fails" in v.text and v.step == 4 and "top 4 of 7" in v.criterion
    assert v.paper == "https://arxiv.org/abs/1810.03292"
    assert res.verdict(fraction=1.0).step == 7


def test_bad_arguments(scenes):
    net = GapNet().eval()
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(OptionError, match="mode"):
        sanity_check(net, x, mode="sideways")
    with pytest.raises(OptionError, match="seed"):
        sanity_check(net, x, seed=-1)
    with pytest.raises(LayerError):
        sanity_check(net, x, layer="features.9")
    with pytest.raises(OptionError, match="Did you mean"):
        sanity_check(net, x, blocks=["fcc"])
    with pytest.raises(methods.errors.InputError):
        sanity_check(net, torch.rand(2, 3, 16, 16))
    res = sanity_check(net, x, mode="independent", blocks=[Block("fc", ("fc",))])
    with pytest.raises(OptionError, match="cascading"):
        res.verdict()
    with pytest.raises(OptionError, match="metric"):
        sanity_check(net, x, blocks=["fc"]).verdict(metric="iou")
    assert methods.sanity_check is sanity_check
