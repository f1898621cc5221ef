"""The four loaders on small data sets written by the tests: what each sample holds, pixel by pixel."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from annotated_kit import CLASSES, encode_string, picture, voc_xml, write_coco
from methods.data.annotated import AnnotatedOptions, iter_annotated, iter_records
from methods.errors import AnnotationError


def coco_set(tmp_path):
    """Two images: a.png (10 x 8) with a polygon (Egyptian cat), an RLE (espresso) and a box-only
    wallaby; b.png (6 x 4) without annotations (left out of the set); c.png with one tench."""
    picture(tmp_path / "a.png", 10, 8, 1)
    picture(tmp_path / "b.png", 6, 4, 2)
    picture(tmp_path / "imgs" / "c.png", 5, 5, 3)
    rle = np.zeros((8, 10), bool)
    rle[5:7, 6:9] = True  # rows 5-6, columns 6-8
    counts = []  # column-major runs, background first (a test-side reference encoder)
    flat, run, cur = rle.T.flatten(), 0, False
    for v in flat:
        if v != cur:
            counts.append(run)
            run, cur = 0, v
        run += 1
    counts.append(run)
    images = [
        {"id": 1, "file_name": "a.png", "width": 10, "height": 8},
        {"id": 2, "file_name": "b.png", "width": 6, "height": 4},
        {"id": 3, "file_name": "imgs/c.png", "width": 5, "height": 5},
    ]
    anns = [
        {"id": 10, "image_id": 1, "category_id": 2, "bbox": [1, 1, 3, 2], "segmentation": [[1, 1, 4, 1, 4, 3, 1, 3]]},
        {"id": 11, "image_id": 1, "category_id": 3, "bbox": [6, 5, 3, 2], "iscrowd": 1,
         "segmentation": {"size": [8, 10], "counts": encode_string(counts)}},
        {"id": 12, "image_id": 1, "category_id": 4, "bbox": [0.5, 6, 2, 1.5]},
        {"id": 13, "image_id": 3, "category_id": 1, "bbox": [0, 0, 5, 5], "segmentation": {"size": [5, 5], "counts": [0, 25]}},
    ]  # fmt: skip
    return write_coco(tmp_path, images, anns), rle


def test_coco_polygon_rle_and_box_masks(tmp_path):
    path, rle = coco_set(tmp_path)
    samples = list(iter_annotated(f"coco:{path}", CLASSES))
    assert [s.name for s in samples] == ["a.png", "imgs/c.png"]  # b.png has no annotation
    a = samples[0]
    np.testing.assert_array_equal(a.image, np.asarray(Image.open(tmp_path / "a.png")))
    assert a.labels == (1, 2, 3) and a.class_names == ("Egyptian cat", "espresso", "wallaby")
    assert a.mask_source == ("polygon", "rle", "box") and a.iscrowd == (False, True, False)
    poly = np.zeros((8, 10), bool)
    poly[1:3, 1:4] = True  # the rectangle (1,1)-(4,3): pixel centres of rows 1-2, columns 1-3
    np.testing.assert_array_equal(a.masks[0], poly)
    np.testing.assert_array_equal(a.masks[1], rle)
    box = np.zeros((8, 10), bool)
    box[6:8, 0:3] = True  # [0.5, 2.5) x [6, 7.5) touches columns 0-2 and rows 6-7
    np.testing.assert_array_equal(a.masks[2], box)
    np.testing.assert_allclose(a.boxes, [[1, 1, 4, 3], [6, 5, 9, 7], [0.5, 6, 2.5, 7.5]])
    assert samples[1].masks.all() and samples[1].labels == (0,)


def test_coco_images_root_and_downscaling(tmp_path):
    """Images elsewhere (``coco:ANN.json:DIR``); an image over max_side is shrunk and its boxes and
    masks follow."""
    picture(tmp_path / "pics" / "big.png", 64, 32)
    path = write_coco(
        tmp_path,
        [{"id": 1, "file_name": "big.png", "width": 64, "height": 32}],
        [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 2,
                "bbox": [8, 4, 16, 8],
                "segmentation": [[8, 4, 24, 4, 24, 12, 8, 12]],
            }
        ],
    )
    (s,) = iter_annotated(f"coco:{path}:{tmp_path / 'pics'}", CLASSES, AnnotatedOptions(max_side=16))
    assert s.image.shape == (8, 16, 3) and s.scale == (0.25, 0.25)
    np.testing.assert_allclose(s.boxes, [[2, 1, 6, 3]])
    expect = np.zeros((8, 16), bool)
    expect[1:3, 2:6] = True
    np.testing.assert_array_equal(s.masks[0], expect)


def test_voc_boxes_difficult_and_one_based_corners(tmp_path):
    picture(tmp_path / "JPEGImages" / "x.png", 12, 10)
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "x.xml").write_text(
        voc_xml("x.png", 12, 10, [("espresso", 1, 1, 4, 3, 0), ("Egyptian cat", 5, 2, 12, 10, 1)])
    )
    (tmp_path / "Annotations" / "empty.xml").write_text(voc_xml("e.png", 12, 10, []))  # no object: no sample
    (s,) = iter_annotated(f"voc:{tmp_path}", CLASSES)
    assert s.labels == (2, 1) and s.difficult == (False, True) and s.mask_source == ("box", "box")
    np.testing.assert_allclose(s.boxes, [[0, 0, 4, 3], [4, 1, 12, 10]])  # (xmin - 1, ymin - 1, xmax, ymax)
    assert s.masks[0].sum() == 12 and s.masks[0][:3, :4].all()
    assert s.masks[1].sum() == 8 * 9 and s.masks[1][1:, 4:].all()


def test_imagefolder_labels_from_folder_names(tmp_path):
    picture(tmp_path / "espresso" / "1.png", 8, 8)
    picture(tmp_path / "espresso" / "deep" / "2.jpg", 8, 8)
    picture(tmp_path / "egyptian_cat" / "3.png", 8, 8)  # matched ignoring case and "_"
    (tmp_path / "espresso" / "README.txt").write_text("not an image")
    (tmp_path / ".hidden").mkdir()
    samples = list(iter_annotated(f"imagefolder:{tmp_path}", CLASSES))
    assert [(s.name, s.labels, s.class_names) for s in samples] == [
        ("egyptian_cat/3.png", (1,), ("egyptian_cat",)),
        ("espresso/1.png", (2,), ("espresso",)),
        ("espresso/deep/2.jpg", (2,), ("espresso",)),
    ]
    assert all(s.masks is None and s.boxes is None and s.mask_source == ("none",) for s in samples)


def test_mask_folder_one_object_per_class_value(tmp_path):
    picture(tmp_path / "images" / "m.jpg", 6, 5)
    (tmp_path / "masks").mkdir()
    values = np.zeros((5, 6), np.uint8)
    values[1:3, 1:3] = 2  # espresso
    values[4, :] = 3  # wallaby
    values[0, 5] = 255  # void: ignored
    im = Image.fromarray(values, mode="L").convert("P")  # a palette PNG: its indices are the values
    im.save(tmp_path / "masks" / "m.png")
    (tmp_path / "classes.txt").write_text("background\ntench\nespresso\nwallaby\n")
    (s,) = iter_annotated(f"masks:{tmp_path}", CLASSES)
    assert s.labels == (2, 3) and s.mask_source == ("mask_png", "mask_png")
    np.testing.assert_array_equal(s.masks[0], values == 2)
    np.testing.assert_array_equal(s.masks[1], values == 3)
    np.testing.assert_allclose(s.boxes, [[1, 1, 3, 3], [0, 4, 6, 5]])


def test_records_are_plain_and_streamed(tmp_path):
    """Records hold no pixels (an engine sends them as they are) and the samples come one at a
    time: the second image is not decoded before the first sample is taken."""
    import json

    path, _ = coco_set(tmp_path)
    records = list(iter_records(f"coco:{path}", CLASSES))
    assert json.loads(json.dumps(records)) == records
    it = iter_annotated(f"coco:{path}", CLASSES)
    first = next(it)
    (tmp_path / "imgs" / "c.png").write_bytes(b"")  # broken only after the first sample was made
    assert first.name == "a.png"
    with pytest.raises(AnnotationError, match=r"imgs/c.png' cannot be read"):
        next(it)


def test_max_images_keeps_the_first(tmp_path):
    path, _ = coco_set(tmp_path)
    assert [r["name"] for r in iter_records(f"coco:{path}", CLASSES, AnnotatedOptions(max_images=1))] == ["a.png"]
