"""COCO RLE decoding and polygon rasterisation: hand-drawn masks, the shoelace area, and
agreement with pycocotools (a test-only peer, requirements.txt)."""

from __future__ import annotations

import numpy as np
import pytest

from annotated_kit import encode_string
from methods.data.annotated import decode_rle, rasterize_polygons, rle_area, shoelace_area
from methods.data.annotated.frames import box_mask, check_box, resize_nearest
from methods.data.annotated.rle import decode_counts_string
from methods.errors import AnnotationError

# A hand-drawn 4 x 5 mask (rows x columns): an L shape and a lone pixel.
HAND = np.array(
    [
        [0, 1, 0, 0, 0],
        [0, 1, 0, 0, 1],
        [0, 1, 1, 1, 0],
        [0, 0, 0, 0, 0],
    ],
    dtype=bool,
)
# Column-major runs, written by reading HAND down each column: col 0 all 0 (4), col 1 rows 0-2 set
# then row 3 clear, col 2 row 2, col 3 row 2, col 4 row 1.
HAND_COUNTS = [4, 3, 3, 1, 3, 1, 2, 1, 2]


def test_uncompressed_counts_decode_to_the_hand_drawn_mask():
    assert sum(HAND_COUNTS) == 20
    mask = decode_rle({"size": [4, 5], "counts": HAND_COUNTS})
    assert mask.dtype == bool and mask.shape == (4, 5)
    np.testing.assert_array_equal(mask, HAND)
    assert rle_area({"size": [4, 5], "counts": HAND_COUNTS}) == int(HAND.sum()) == 6


def test_compressed_string_decodes_to_the_hand_drawn_mask():
    """The string, worked out by hand: counts 4, 3, 3 are stored as is ('4', '3', '3'); from the 4th
    on each is stored minus the count two back: 1-3 = -2, 3-3 = 0, 1-1 = 0, 2-3 = -1, 1-1 = 0,
    2-2 = 0. A negative value v < 0 in one group is v + 32 with the sign bit 0x10 set:
    -2 -> 30 -> chr(78) 'N', -1 -> 31 -> 'O'."""
    text = "433N00O00"
    assert encode_string(HAND_COUNTS) == text  # the test's reference encoder agrees with the hand
    assert decode_counts_string(text) == HAND_COUNTS
    np.testing.assert_array_equal(decode_rle({"size": [4, 5], "counts": text}), HAND)


def test_long_counts_use_several_groups():
    counts = [0, 1000, 70_000, 5, 3, 123_456]
    assert decode_counts_string(encode_string(counts)) == counts


@pytest.mark.parametrize(
    ("rle", "match"),
    [
        ({"size": [4, 5], "counts": [4, 3]}, r"add up to 7 pixels but its size 4x5 has 20"),
        ({"size": [4, 5], "counts": "43~"}, r"character '~' at position 2"),
        ({"size": [4, 5], "counts": "4h"}, r"ends in the middle of a count"),
        ({"size": [4], "counts": [20]}, r"'size' must be \[height, width\]"),
        ({"counts": [20]}, r"must be \{'size'"),
        ({"size": [4, 5], "counts": [4, -3]}, r"compressed string or a list of non-negative ints"),
    ],
)
def test_malformed_rle_is_refused(rle, match):
    with pytest.raises(AnnotationError, match=match):
        decode_rle(rle, where="ann.json, annotation 3")


def test_rle_agrees_with_pycocotools_on_random_masks():
    from pycocotools import mask as mask_api  # test-only peer (requirements.txt)

    rng = np.random.default_rng(0)
    for _ in range(20):
        h, w = rng.integers(1, 40, size=2)
        m = rng.random((h, w)) < rng.random()
        enc = mask_api.encode(np.asfortranarray(m.astype(np.uint8)))
        text = enc["counts"].decode("ascii")
        np.testing.assert_array_equal(decode_rle({"size": [int(h), int(w)], "counts": text}), m)
        assert rle_area({"size": [int(h), int(w)], "counts": text}) == int(mask_api.area(enc))


def test_polygon_pixels_are_those_whose_centres_are_inside():
    """A right triangle (0,0), (4,0), (0,4): centre (j+.5, i+.5) is inside when j + i + 1 < 4."""
    mask = rasterize_polygons([[0, 0, 4, 0, 0, 4]], 5, 5)
    expect = np.array([[i + j + 1 < 4 for j in range(5)] for i in range(5)])
    np.testing.assert_array_equal(mask, expect)


def test_two_polygons_of_one_object_are_united_and_scaled():
    mask = rasterize_polygons([[0, 0, 2, 0, 2, 2, 0, 2], [4, 4, 6, 4, 6, 6, 4, 6]], 6, 6)
    assert mask.sum() == 8 and mask[:2, :2].all() and mask[4:, 4:].all()
    half = rasterize_polygons([[0, 0, 4, 0, 4, 4, 0, 4]], 4, 4, scale=(0.5, 0.5))
    assert half.sum() == 4 and half[:2, :2].all()


@pytest.mark.parametrize("seed", range(5))
def test_polygon_area_matches_the_shoelace_formula(seed):
    """A random star-shaped polygon: the rasterised area is within half a pixel per unit of
    perimeter of the exact (shoelace) area."""
    rng = np.random.default_rng(seed)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 24))
    radii = rng.uniform(20, 60, 24)
    pts = np.stack([70 + radii * np.cos(angles), 70 + radii * np.sin(angles)], axis=1)
    area = shoelace_area(pts)
    perimeter = np.linalg.norm(np.diff(np.vstack([pts, pts[:1]]), axis=0), axis=1).sum()
    got = rasterize_polygons([pts.flatten().tolist()], 140, 140).sum()
    assert abs(got - area) <= 0.5 * perimeter
    assert abs(got - area) / area < 0.03


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools 2.0 on numpy 2
def test_polygon_agrees_with_pycocotools():
    from pycocotools import mask as mask_api  # test-only peer (requirements.txt)

    rng = np.random.default_rng(1)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 30))
    radii = rng.uniform(15, 45, 30)
    flat = np.stack([50 + radii * np.cos(angles), 48 + radii * np.sin(angles)], axis=1).flatten().tolist()
    theirs = mask_api.decode(mask_api.merge(mask_api.frPyObjects([flat], 100, 110))).astype(bool)
    mine = rasterize_polygons([flat], 100, 110)
    iou = (mine & theirs).sum() / (mine | theirs).sum()
    assert iou >= 0.97, iou


def test_malformed_polygon_is_refused():
    with pytest.raises(AnnotationError, match=r"at least 3 points .* got list of 5 entries"):
        rasterize_polygons([[0, 0, 1, 1, 2]], 4, 4, where="ann.json, annotation 9")


def test_box_checks_clip_and_masks():
    assert check_box([0, 0, 10.5, 4], 10, 4, 1.0, "x") == (0.0, 0.0, 10.0, 4.0)
    with pytest.raises(AnnotationError, match=r"\(2.0, 1.0, 14.0, 3.0\) lies outside the image, which is 10x4"):
        check_box([2, 1, 14, 3], 10, 4, 1.0, "a.xml, object 0")
    with pytest.raises(AnnotationError, match="is empty"):
        check_box([2, 1, 2, 3], 10, 4, 1.0, "x")
    with pytest.raises(AnnotationError, match="4 finite numbers"):
        check_box([2, 1, float("nan"), 3], 10, 4, 1.0, "x")
    m = box_mask((0.5, 1, 2.2, 2), 3, 4)
    assert m.astype(int).tolist() == [[0, 0, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0]]
    assert resize_nearest(np.eye(4, dtype=bool), 2, 2).tolist() == [[True, False], [False, True]]
