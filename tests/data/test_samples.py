"""Tests of methods.data.samples / photos: every sample loads offline, scene samples carry true
masks, composites carry one tile mask per ImageNet class."""

from __future__ import annotations

import numpy as np
import pytest

from methods.data.samples import Sample, get_sample, list_samples, load_sample, load_sample_mask
from methods.data.scenes import BACKGROUNDS, CLASS_NAMES, EVAL_SEED_START, make_scene
from methods.errors import OptionError


def test_gallery_has_scenes_photos_and_composites():
    samples = list_samples()
    assert all(isinstance(s, Sample) for s in samples)
    names = [s.name for s in samples]
    assert len(names) == len(set(names))
    scenes = [s for s in samples if s.kind == "scene"]
    photos = [s for s in samples if s.kind == "photo"]
    composites = [s for s in samples if s.kind == "composite"]
    annotated = [s for s in samples if s.kind == "annotated"]
    assert [s.kind for s in samples] == ["scene"] * len(scenes) + ["photo"] * len(photos) + ["composite"] * len(
        composites
    ) + ["annotated"] * len(annotated)
    assert [s.name for s in annotated] == ["quokka"]
    assert len(scenes) >= 6
    assert {len(s.classes) for s in scenes} == {1, 2}
    assert [s.name for s in photos] == ["chelsea", "coffee", "motorcycle", "camera", "rocket", "astronaut"]
    assert [s.name for s in composites] == ["chelsea_coffee", "coffee_chelsea"]
    assert all(s.suggested_model == "scenes_vgg" and s.domain == "scenes" for s in scenes)
    assert all(s.suggested_model == "imagenet" and s.domain == "imagenet" for s in photos + composites + annotated)
    assert all(s.description for s in samples)
    assert all(s.class_ids == tuple(CLASS_NAMES.index(c) for c in s.classes) for s in scenes)


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


def test_grayscale_and_stereo_photos_become_one_rgb_image():
    """camera is a 512x512 grayscale photo: three equal channels; stereo_motorcycle returns
    (left, right, disparity): the sample is the left view."""
    from skimage import data

    cam = load_sample("camera")
    assert cam.shape == (512, 512, 3)
    np.testing.assert_array_equal(cam[..., 0], data.camera())
    np.testing.assert_array_equal(cam[..., 1], cam[..., 2])
    np.testing.assert_array_equal(load_sample("motorcycle"), data.stereo_motorcycle()[0])


@pytest.mark.parametrize("name", ["chelsea_coffee", "coffee_chelsea"])
def test_composites_aresquare_tiles_with_one_mask_per_class(name):
    """Each photo is centre-cropped to a square and resized to 300x300; the class masks are the
    tiles, left to right, in the order of Sample.classes, and the ImageNet ids match
    torchvision's category list."""
    from torchvision.models import ResNet18_Weights

    from methods.data.photos import TILE, square_tile

    sample = get_sample(name)
    img, masks = load_sample(name), load_sample_mask(name)
    assert img.shape == (TILE, 2 * TILE, 3) and img.dtype == np.uint8
    assert masks.shape == (2, TILE, 2 * TILE) and masks.dtype == bool
    assert masks[0, :, :TILE].all() and not masks[0, :, TILE:].any()
    assert masks[1, :, TILE:].all() and not masks[1, :, :TILE].any()
    categories = ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    assert sample.classes == tuple(categories[i] for i in sample.class_ids)
    assert set(sample.classes) == {"Egyptian cat", "espresso"}
    left = "chelsea" if sample.classes[0] == "Egyptian cat" else "coffee"
    np.testing.assert_array_equal(img[:, :TILE], square_tile(load_sample(left), TILE))
    # the centre crop of chelsea (300x451) keeps columns 75..374: the tile is that crop shrunk to 300
    chelsea = load_sample("chelsea")
    assert square_tile(chelsea, 300).tolist() == chelsea[:, 75:375].tolist()


def test_load_sample_returns_a_fresh_array():
    a = load_sample("coffee")
    a[:] = 0
    assert load_sample("coffee").max() > 0
    m = load_sample_mask("scene_star_brick")
    m[:] = False
    assert load_sample_mask("scene_star_brick").any()


@pytest.mark.parametrize("fn", [load_sample, load_sample_mask, get_sample])
def test_unknown_name_suggests_close_ones(fn):
    with pytest.raises(OptionError, match=r"unknown sample 'chelsey'.*'chelsea'"):
        fn("chelsey")
    with pytest.raises(ValueError, match=r"scene_star_brick"):
        fn("scene_star")


def test_get_sample():
    assert get_sample("rocket").kind == "photo"
