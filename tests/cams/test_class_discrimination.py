"""Class discrimination on a real two-object scene, for every class-discriminative method.

The bundled ``scenes_vgg`` on the gallery's two-object scene ``scene_cross_diamond_moon`` (a cross and
a diamond): the map explaining each object's class must be higher, on average, over that object than
over the other one. The comparison of two means is free of the map's offset and scale (RISE's maps
are positive everywhere), and ONE map cannot pass it for both classes — a class-agnostic method
fails it by construction (checked on Eigen-CAM below), so methods marked ``class_agnostic`` in their
spec are skipped, and every other registered method is checked the moment it registers.
"""

from __future__ import annotations

import warnings

import pytest
import torch

import methods
from methods.data.samples import get_sample, load_sample, load_sample_mask
from methods.data.scenes import CLASS_NAMES

SCENE = "scene_cross_diamond_moon"
# cheap settings for the slow methods (the maps still discriminate; full settings only sharpen them)
FAST = {"num_samples": 2, "steps": 2, "num_masks": 400, "batch_size": 64}


@pytest.fixture(scope="module")
def scene():
    loaded = methods.load_model("scenes_vgg")
    x = loaded.preprocess(load_sample(SCENE))[None]  # (1, 3, 128, 128)
    masks = torch.from_numpy(load_sample_mask(SCENE))  # (2, 128, 128) bool
    classes = [CLASS_NAMES.index(c) for c in get_sample(SCENE).classes]
    return loaded, x, masks, classes


def _means(loaded, x, masks, classes, name):
    spec = methods.get_method(name)
    opts = {k: v for k, v in FAST.items() if k in spec.option_names}
    out = []
    for k, c in enumerate(classes):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", methods.GradLensWarning)
            up = methods.explain(loaded, x, name, target=c, **opts).upsampled(size=(128, 128))[0]  # (128, 128)
        out.append((float(up[masks[k]].mean()), float(up[masks[1 - k]].mean())))
    return out  # [(own, other) for each object]


@pytest.mark.parametrize(
    "spec", [s for s in methods.list_methods() if not s.class_agnostic and s.requires is None], ids=lambda s: s.name
)
def test_each_class_map_is_higher_on_its_own_object(spec, scene):
    for own, other in _means(*scene, spec.name):
        assert own > other, f"{spec.label}: mean over its own object {own:.4g} <= over the other object {other:.4g}"


def test_the_criterion_fails_for_a_class_agnostic_map(scene):
    """Eigen-CAM's map is the same for both classes: it can favour at most one of the two objects."""
    (own0, other0), (own1, other1) = _means(*scene, "eigencam")
    assert own0 == pytest.approx(other1) and own1 == pytest.approx(other0)
    assert not (own0 > other0 and own1 > other1)
