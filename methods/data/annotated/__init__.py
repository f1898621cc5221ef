"""Annotated data sets: a user's images with their labels, boxes and masks, one sample at a time.

Formats: COCO JSON (:mod:`.coco`), Pascal VOC XML (:mod:`.voc`), an ImageFolder
(:mod:`.imagefolder`) and a folder of label-index mask PNGs (:mod:`.maskfolder`); named by
:func:`parse_dataset` spellings, loaded by :func:`iter_annotated`. See docs/datasets.md.
"""

from methods.data.annotated.classes import ClassMatcher
from methods.data.annotated.options import AnnotatedOptions, read_class_map
from methods.data.annotated.polygon import rasterize_polygons, shoelace_area
from methods.data.annotated.rle import decode_rle, rle_area
from methods.data.annotated.sample import AnnotatedSample, build_sample
from methods.data.annotated.spec import FORMATS, DatasetSpec, is_dataset, iter_annotated, iter_records, parse_dataset

__all__ = [
    "AnnotatedOptions",
    "AnnotatedSample",
    "ClassMatcher",
    "DatasetSpec",
    "FORMATS",
    "build_sample",
    "decode_rle",
    "is_dataset",
    "iter_annotated",
    "iter_records",
    "parse_dataset",
    "rasterize_polygons",
    "read_class_map",
    "rle_area",
    "shoelace_area",
]
