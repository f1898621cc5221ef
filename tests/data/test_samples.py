"""Tests of methods.data.samples: every sample loads offline, scene samples carry true masks."""

from __future__ import annotations

import numpy as np
import pytest

from methods.data.samples import Sample, get_sample, list_samples, load_sample, load_sample_mask
from methods.data.scenes import BACKGROUNDS, CLASS_NAMES, EVAL_SEED_START, make_scene


def test_gallery_has_scenes_and_the_four_photos():
    samples = list_samples()
    assert all(isinstance(s, Sample) for s in samples)
    names = [s.name for s in samples]
    assert len(names) == len(set(names))
    scenes = [s for s in samples if s.kind == "scene"]
    photos = [s for s in samples if s.kind == "photo"]
    assert len(scenes) >= 6
    assert {len(s.classes) for s in scenes} == {1, 2}
    assert {s.name for s in photos} == {"chelsea", "coffee", "astronaut", "rocket"}
    assert all(s.suggested_model == "scenes_vgg" for s in scenes)
    assert all(s.suggested_model == "imagenet" for s in photos)
    assert all(s.description for s in samples)


@pytest.mark.parametrize("name", [s.name for s in list_samples()])
def test_every_sample_loads_as_rgb_uint8(name):
    img = load_sample(name)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert img.shape[0] >= 128 and img.shape[1] >= 128
    assert img.std() > 10  # a real picture, not a blank


@pytest.mark.parametrize("sample", [s for s in list_samples() if s.kind == "scene"], ids=lambda s: s.name)
def test_scene_samples_say_what_they_show(sample):
    """The classes in the name/description and the background are what the generator draws."""
    from methods.data import samples as mod

    seed, n, _ = mod._SCENES[sample.name]
    assert seed >= EVAL_SEED_START + 2_000_000  # never a training or card-evaluation seed
    sc = make_scene(seed, n_objects=n)
    assert tuple(CLASS_NAMES[c] for c in sc.labels) == sample.classes
    bg_word = sample.name.split("_")[-1]
    assert bg_word in BACKGROUNDS and sc.background == bg_word
    for cls in sample.classes:
        assert cls in sample.description
    masks = load_sample_mask(sample.name)
    assert masks.shape == (n, 128, 128) and masks.dtype == bool
    assert (masks.sum(axis=(1, 2)) > 150).all()
    np.testing.assert_array_equal(load_sample(sample.name), sc.image)


def test_photos_have_no_mask():
    assert load_sample_mask("chelsea") is None


def test_load_sample_returns_a_fresh_array():
    a = load_sample("coffee")
    a[:] = 0
    assert load_sample("coffee").max() > 0
    m = load_sample_mask("scene_star_brick")
    m[:] = False
    assert load_sample_mask("scene_star_brick").any()


@pytest.mark.parametrize("fn", [load_sample, load_sample_mask, get_sample])
def test_unknown_name_suggests_close_ones(fn):
    with pytest.raises(ValueError, match=r"unknown sample 'chelsey'.*'chelsea'"):
        fn("chelsey")
    with pytest.raises(ValueError, match=r"scene_star_brick"):
        fn("scene_star")


def test_get_sample():
    assert get_sample("rocket").kind == "photo"
