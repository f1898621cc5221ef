"""The annotated data set options both commands share: ``--class-map``, ``--max-images``,
``--max-annotations`` (docs/datasets.md)."""

from __future__ import annotations

import argparse

from methods.data.annotated import AnnotatedOptions, read_class_map

__all__ = ["add_dataset_options", "dataset_options"]


def add_dataset_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("annotated data sets (--images coco:/voc:/imagefolder:/masks:)")
    g.add_argument(
        "--class-map",
        default=None,
        help='JSON file {"annotation class": "model class" or "#index"} applied before matching class names',
    )
    g.add_argument("--max-images", type=int, default=None, help="read at most this many images (default 100000)")
    g.add_argument("--max-annotations", type=int, default=None, help="refuse an image with more objects (default 100)")


def dataset_options(args: argparse.Namespace) -> AnnotatedOptions | None:
    """The options the arguments ask for (None: the defaults)."""
    given = {
        k: v for k, v in (("max_images", args.max_images), ("max_annotations", args.max_annotations)) if v is not None
    }
    if args.class_map is not None:
        given["class_map"] = read_class_map(args.class_map)
    return AnnotatedOptions(**given) if given else None
