"""Broken data sets: each refusal is an AnnotationError that names the file, the bad value and
what was expected (and, for a class, the model's closest names)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from annotated_kit import CLASSES, picture, voc_xml, write_coco
from methods.data.annotated import AnnotatedOptions, iter_annotated, iter_records, parse_dataset
from methods.errors import AnnotationError, OptionError


def one_image(tmp_path, ann, *, width=10, height=8, file="a.png"):
    picture(tmp_path / "a.png", width, height)
    return write_coco(tmp_path, [{"id": 1, "file_name": file, "width": width, "height": height}], [ann])


def records(spec, **kw):
    return list(iter_records(spec, CLASSES, AnnotatedOptions(**kw)))


def test_missing_image_names_the_file(tmp_path):
    path = one_image(tmp_path, {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2]}, file="gone.png")
    with pytest.raises(AnnotationError, match=r"image 'gone.png'.*the image file '.*gone.png' does not exist"):
        records(f"coco:{path}")


@pytest.mark.parametrize("name", ["../a.png", "/etc/a.png", "x/../../a.png", "a\\b.png"])
def test_file_names_stay_inside_the_images_folder(tmp_path, name):
    path = one_image(tmp_path, {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2]}, file=name)
    with pytest.raises(AnnotationError, match=r"must be a path relative to the images folder"):
        records(f"coco:{path}")


def test_box_outside_names_the_box_and_the_image_size(tmp_path):
    path = one_image(tmp_path, {"id": 7, "image_id": 1, "category_id": 1, "bbox": [6, 2, 8, 3]})
    with pytest.raises(
        AnnotationError,
        match=r"annotations\[0\] \(image 'a.png'\): the box \(x0, y0, x1, y1\) = \(6.0, 2.0, 14.0, 5.0\) lies "
        r"outside the image, which is 10x8",
    ):
        records(f"coco:{path}")
    # within the tolerance it is clipped
    path = one_image(tmp_path, {"id": 7, "image_id": 1, "category_id": 1, "bbox": [6, 2, 4.5, 3]})
    assert records(f"coco:{path}")[0]["objects"][0]["box"] == [6.0, 2.0, 10.0, 5.0]
    with pytest.raises(AnnotationError, match="outside"):
        records(f"coco:{path}", box_tolerance=0.0)


def test_unknown_class_suggests_the_closest_names(tmp_path):
    picture(tmp_path / "a.png", 10, 8)
    path = write_coco(
        tmp_path,
        [{"id": 1, "file_name": "a.png", "width": 10, "height": 8}],
        [{"id": 1, "image_id": 1, "category_id": 5, "bbox": [0, 0, 2, 2]}],
        categories=[{"id": 5, "name": "expresso"}],
    )
    with pytest.raises(
        AnnotationError, match=r"class 'expresso' is not a class of the model. Did you mean 'espresso'\?"
    ):
        records(f"coco:{path}")
    assert records(f"coco:{path}", class_map={"expresso": "espresso"})[0]["objects"][0]["label"] == 2


def test_a_class_the_model_has_twice_must_be_mapped_to_an_index(tmp_path):
    picture(tmp_path / "crane" / "1.png", 4, 4)
    with pytest.raises(AnnotationError, match=r"class 'crane' names 2 classes of the model \(indices \[1, 3\]\)"):
        list(iter_records(f"imagefolder:{tmp_path}", ("a", "crane", "b", "crane")))
    got = list(
        iter_records(
            f"imagefolder:{tmp_path}", ("a", "crane", "b", "crane"), AnnotatedOptions(class_map={"crane": "#3"})
        )
    )
    assert got[0]["objects"][0]["label"] == 3


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"images": [', r"is not valid JSON: Expecting value at line 1, column 13; expected a COCO object"),
        ("[1, 2]", r"holds a JSON list; expected a COCO object"),
        ('{"images": [], "categories": []}', r"has no 'annotations' list"),
        ('{"images": [{"id": 1}], "annotations": [{"image_id": 1, "category_id": 1}], "categories": []}',
         r"images\[0\]: expected an object with \['id', 'file_name', 'width', 'height'\]; got \['id'\]"),
    ],
)  # fmt: skip
def test_malformed_json_says_what_was_expected(tmp_path, text, match):
    (tmp_path / "ann.json").write_text(text)
    with pytest.raises(AnnotationError, match=match):
        records(f"coco:{tmp_path / 'ann.json'}")


def test_bad_segmentation_and_bbox(tmp_path):
    path = one_image(tmp_path, {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2], "segmentation": []})
    with pytest.raises(AnnotationError, match=r"'bbox' must be \[x, y, width, height\]; got \[0, 0, 2\]"):
        records(f"coco:{path}")
    path = one_image(tmp_path, {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "segmentation": "x"})
    with pytest.raises(AnnotationError, match=r"'segmentation' must be a list of flat polygons"):
        records(f"coco:{path}")
    bad_rle = {"size": [8, 10], "counts": [3, 4]}
    path = one_image(
        tmp_path, {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "segmentation": bad_rle}
    )
    with pytest.raises(
        AnnotationError, match=r"ann.json, image 'a.png', annotation 1 \(tench\): the RLE runs add up to 7 pixels"
    ):
        list(iter_annotated(f"coco:{path}", CLASSES))


def test_image_of_another_size_than_annotated(tmp_path):
    picture(tmp_path / "a.png", 12, 8)
    path = write_coco(
        tmp_path,
        [{"id": 1, "file_name": "a.png", "width": 10, "height": 8}],
        [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2]}],
    )
    with pytest.raises(AnnotationError, match=r"'.*a.png' is 12x8 \(width x height\) but the annotations say 10x8"):
        list(iter_annotated(f"coco:{path}", CLASSES))


def test_limits_are_options_with_bounds(tmp_path):
    anns = [{"id": i, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]} for i in range(3)]
    picture(tmp_path / "a.png", 4, 4)
    path = write_coco(tmp_path, [{"id": 1, "file_name": "a.png", "width": 4, "height": 4}], anns)
    with pytest.raises(AnnotationError, match=r"has 3 annotations, more than max_annotations=2"):
        records(f"coco:{path}", max_annotations=2)
    with pytest.raises(AnnotationError, match=r"bytes, more than max_file_bytes=1,024"):
        path.write_text(json.dumps({"images": [], "annotations": [], "categories": [], "pad": "x" * 2000}))
        records(f"coco:{path}", max_file_bytes=1024)
    for bad in (dict(max_images=0), dict(max_annotations=10_001), dict(max_side=8), dict(box_tolerance=-1)):
        with pytest.raises(OptionError):
            AnnotatedOptions(**bad)
    with pytest.raises(OptionError, match="class_map must map"):
        AnnotatedOptions(class_map={"a": 3})


def test_voc_errors(tmp_path):
    (tmp_path / "Annotations").mkdir()
    picture(tmp_path / "JPEGImages" / "x.png", 12, 10)
    (tmp_path / "Annotations" / "x.xml").write_text("<annotation><size><width>12</width>")
    with pytest.raises(
        AnnotationError, match=r"x.xml' is not well-formed XML \(line 1, column \d+\).*expected <annotation>"
    ):
        records(f"voc:{tmp_path}")
    (tmp_path / "Annotations" / "x.xml").write_text(voc_xml("x.png", 12, 10, [("espreso", 1, 1, 14, 3, 0)]))
    with pytest.raises(
        AnnotationError,
        match=r"object 0 \(espreso, VOC corners 1,1,14,3\): the box .* lies outside the image, which is 12x10",
    ):
        records(f"voc:{tmp_path}")
    (tmp_path / "Annotations" / "x.xml").write_text(voc_xml("x.png", 12, 10, [("espreso", 1, 1, 4, 3, 0)]))
    with pytest.raises(AnnotationError, match=r"'espreso' is not a class of the model. Did you mean 'espresso'"):
        records(f"voc:{tmp_path}")
    (tmp_path / "Annotations" / "x.xml").write_text(voc_xml("y.png", 12, 10, [("espresso", 1, 1, 4, 3, 0)]))
    with pytest.raises(AnnotationError, match=r"JPEGImages/y.png' does not exist"):
        records(f"voc:{tmp_path}")
    with pytest.raises(AnnotationError, match="no 'Annotations' folder"):
        records(f"voc:{tmp_path / 'JPEGImages'}")


def test_imagefolder_and_mask_folder_errors(tmp_path):
    picture(tmp_path / "sets" / "Tenchh" / "1.png", 4, 4)
    with pytest.raises(AnnotationError, match=r"folder 'Tenchh/': class 'Tenchh' .* Did you mean 'tench'"):
        records(f"imagefolder:{tmp_path / 'sets'}")
    m = tmp_path / "m"
    picture(m / "images" / "a.png", 4, 4)
    (m / "masks").mkdir()
    with pytest.raises(AnnotationError, match=r"needs DIR/classes.txt"):
        records(f"masks:{m}")
    (m / "classes.txt").write_text("background\nespresso\n")
    with pytest.raises(AnnotationError, match=r"a.png' has no mask: expected '.*masks/a.png'"):
        records(f"masks:{m}")
    values = np.zeros((4, 4), np.uint8)
    values[0, 0] = 7
    Image.fromarray(values).save(m / "masks" / "a.png")
    with pytest.raises(AnnotationError, match=r"has pixel value 7, which classes.txt does not name"):
        list(iter_annotated(f"masks:{m}", CLASSES))
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(m / "masks" / "a.png")
    with pytest.raises(AnnotationError, match=r"is a RGB PNG; a label-index mask is one channel"):
        list(iter_annotated(f"masks:{m}", CLASSES))
    Image.fromarray(np.zeros((3, 4), np.uint8)).save(m / "masks" / "a.png")
    with pytest.raises(AnnotationError, match=r"is 4x3 \(width x height\) but its image .* is 4x4"):
        list(iter_annotated(f"masks:{m}", CLASSES))


def test_exif_rotated_images_are_refused(tmp_path):
    img = Image.fromarray(np.zeros((4, 6, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    picture(tmp_path / "espresso" / "r.png", 4, 4)
    img.save(tmp_path / "espresso" / "r.jpg", exif=exif.tobytes())
    with pytest.raises(AnnotationError, match=r"r.jpg' carries EXIF orientation 6"):
        list(iter_annotated(f"imagefolder:{tmp_path}", CLASSES))


@pytest.mark.parametrize(
    ("spec", "match"),
    [("coco:/nope.json", "does not exist"), ("voc:/nope", "is not a folder"), ("pascal:/x", "is not a data set")],
)
def test_spellings(spec, match):
    with pytest.raises(OptionError, match=match):
        parse_dataset(spec)
