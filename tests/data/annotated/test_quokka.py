"""The quokka: the shipped files are imgaug's, its mask is its polygon, and it loads through the
COCO loader as a one-image data set (the fixture other tests can build on)."""

from __future__ import annotations

import hashlib
import pathlib

import numpy as np
import pytest

from annotated_kit import write_quokka_coco
from methods.data.annotated import AnnotatedOptions, iter_annotated, shoelace_area
from methods.data.annotated.polygon import as_vertices
from methods.data.quokka import (
    QUOKKA_CLASS,
    QUOKKA_CLASS_ID,
    load_quokka,
    quokka_box,
    quokka_mask,
    quokka_path,
    quokka_polygon,
)
from methods.data.samples import get_sample, load_sample, load_sample_mask

SHA256 = {
    "quokka.jpg": "bf1059d0f925e7d0c712cadf07a04ba4cfc98957d7be65d3a7d8ae0c464cd76e",
    "quokka_annotations.json": "ac105c75c464fb5174d9a3f109a6440f8a3fdc6b52dfde4b7610c4ddc47471e1",
}


def test_the_files_are_imgaugs_with_the_mit_notice():
    for name, digest in SHA256.items():
        assert hashlib.sha256(pathlib.Path(quokka_path(name)).read_bytes()).hexdigest() == digest
    license_text = pathlib.Path(quokka_path("LICENSE")).read_text()
    assert "MIT License" in license_text and "Copyright (c) 2015 aleju" in license_text
    assert "imgaug 0.4.0" in pathlib.Path(quokka_path("NOTICE")).read_text()


def test_polygon_mask_area_matches_the_shoelace_area():
    """39 points; the rasterised area is within half a pixel per unit of perimeter of the exact
    area (measured: 186,377 pixels, shoelace 186,369)."""
    v = as_vertices(quokka_polygon())
    assert len(v) == 39
    mask = quokka_mask()
    assert mask.shape == (1, 643, 960) and mask.dtype == bool
    area, perimeter = shoelace_area(v), np.linalg.norm(np.diff(np.vstack([v, v[:1]]), axis=0), axis=1).sum()
    assert abs(int(mask.sum()) - area) <= 0.5 * perimeter
    assert abs(int(mask.sum()) - area) / area < 0.001
    # the mask spans the polygon's extent: x from 143 to 548, y from 50 to 641 (its vertices); note that
    # imgaug's box (148, 50, 550, 642) is not the polygon's: the outline reaches 5 px left of it
    rows, cols = np.nonzero(mask[0].any(1))[0], np.nonzero(mask[0].any(0))[0]
    assert (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1) == (143, 50, 548, 641)
    assert (v[:, 0].min(), v[:, 1].min(), v[:, 0].max(), v[:, 1].max()) == (143, 50, 548, 641)


def test_gallery_entry_is_the_photo_with_its_mask_and_class():
    from torchvision.models import ResNet18_Weights

    s = get_sample("quokka")
    assert s.kind == "annotated" and s.domain == "imagenet" and s.classes == (QUOKKA_CLASS,)
    assert ResNet18_Weights.IMAGENET1K_V1.meta["categories"][QUOKKA_CLASS_ID] == "wallaby" == QUOKKA_CLASS
    img = load_sample("quokka")
    assert img.shape == (643, 960, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, load_quokka())
    np.testing.assert_array_equal(load_sample_mask("quokka"), quokka_mask())


def test_quokka_through_the_coco_loader(tmp_path):
    from torchvision.models import ResNet18_Weights

    names = ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    path = write_quokka_coco(tmp_path / "quokka_coco.json")
    spec = f"coco:{path}:{pathlib.Path(quokka_path()).parent}"
    with pytest.raises(ValueError, match=r"class 'animal' is not a class of the model"):
        list(iter_annotated(spec, names))
    (s,) = iter_annotated(spec, names, AnnotatedOptions(class_map={"animal": "wallaby"}))
    assert s.labels == (104,) and s.mask_source == ("polygon",)
    np.testing.assert_array_equal(s.masks, quokka_mask())
    np.testing.assert_allclose(s.boxes, [quokka_box()])
    (small,) = iter_annotated(spec, names, AnnotatedOptions(class_map={"animal": "wallaby"}, max_side=480))
    assert small.image.shape == (322, 480, 3) and small.scale == pytest.approx((0.5, 322 / 643))
    assert abs(int(small.masks.sum()) - int(quokka_mask().sum()) / 4) / (int(quokka_mask().sum()) / 4) < 0.01


def test_a_non_editable_install_ships_the_quokka():
    """pyproject's package-data names the folder (a wheel built from it held these files)."""
    import tomllib

    root = pathlib.Path(__file__).resolve().parents[3]
    data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["methods"]
    assert "data/assets/quokka/*" in data
    assert sorted(p.name for p in (root / "methods" / "data" / "assets" / "quokka").iterdir()) == [
        "LICENSE",
        "NOTICE",
        "quokka.jpg",
        "quokka_annotations.json",
        "quokka_coco.json",
    ]
