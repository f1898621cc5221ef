"""Where the evaluation command's images come from: ``scenes:N``, ``scenes2:N``, a folder, or an
annotated data set.

* ``scenes:N``  — N single-object scenes ``make_scene(EVAL_SINGLE_START + seed + i)`` (seeds from
  10_000_000, never used in training), with the object's class and mask;
* ``scenes2:N`` — N two-object scenes ``make_scene(EVAL_TWO_START + seed + i, n_objects=2)``
  (seeds from 11_000_000), with both classes and masks;
* a folder — every regular, non-hidden file in it (not recursive, sorted by name) that
  :func:`methods.data.images.load_image` can read; the others are collected as (name, reason) and
  skipped, never a crash;
* an annotated data set — ``coco:ANN.json[:IMAGES_DIR]``, ``voc:DIR``, ``imagefolder:DIR``,
  ``masks:DIR`` (:mod:`methods.data.annotated`, docs/datasets.md): each image with the model
  classes its annotations name and, per class, ONE mask, the union of that class's objects (a
  classifier explains a class, so a map is scored against every object of it). An ImageFolder
  gives the class and no mask. The set is listed (and checked: classes, boxes, files) up front;
  each image is decoded only when its turn comes.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from methods.data.annotated import (
    AnnotatedOptions,
    AnnotatedSample,
    DatasetSpec,
    build_sample,
    is_dataset,
    iter_records,
    parse_dataset,
)
from methods.data.images import load_image
from methods.data.scenes import make_scene
from methods.errors import GradLensError, OptionError
from methods.models.scenes.evaluation import EVAL_SINGLE_START, EVAL_TWO_START

__all__ = ["Sample", "Source", "parse_images", "per_class", "samples", "sample_items", "load_sample"]


@dataclass(frozen=True)
class Sample:
    """One image to evaluate.

    Attributes:
        name: file name or ``scene:<seed>``.
        image: (H, W, 3) uint8.
        labels: true class of each object (empty without ground truth).
        masks: (K, H, W) bool object masks, one per label (None without ground truth).
        seed: the scene's seed (None for files).
        annotated: the annotated data set's own sample (every object, its box, mask source,
            ``difficult`` flag), None for scenes and plain files.
    """

    name: str
    image: np.ndarray
    labels: tuple[int, ...] = ()
    masks: np.ndarray | None = None
    seed: int | None = None
    annotated: AnnotatedSample | None = None


@dataclass(frozen=True)
class Source:
    """A parsed ``--images``: ``kind`` is ``"scenes"``, ``"scenes2"``, ``"folder"`` or ``"annotated"``;
    ``count`` the number of scenes or of candidate files (0 for a data set: known once listed);
    ``dataset`` the annotated data set."""

    kind: str
    count: int
    folder: pathlib.Path | None = None
    dataset: DatasetSpec | None = None


def per_class(sample: AnnotatedSample) -> Sample:
    """The evaluation's view of an annotated sample: each class once (in order of first
    appearance) with the union of its objects' masks; no mask for an ImageFolder, and no label
    for an image whose mask shows no object."""
    labels = tuple(dict.fromkeys(sample.labels))
    masks = None
    if sample.masks is not None and labels:
        masks = np.stack([sample.masks[[lab == c for lab in sample.labels]].any(axis=0) for c in labels])
    return Sample(sample.name, sample.image, labels, masks, None, sample)


def parse_images(spec: str) -> Source:
    """Parse ``--images``: ``scenes:N``, ``scenes2:N``, a folder path or an annotated data set
    (``coco:ANN.json[:IMAGES_DIR]``, ``voc:DIR``, ``imagefolder:DIR``, ``masks:DIR``).

    Raises:
        ValueError: a malformed ``scenes`` spec, or a path that is not a folder.
    """
    if not isinstance(spec, str) or not spec:
        raise OptionError(f"images must be 'scenes:N', 'scenes2:N', a folder path or a data set; got {spec!r}")
    if is_dataset(spec):
        return Source("annotated", 0, dataset=parse_dataset(spec))
    head, sep, tail = spec.partition(":")
    if sep and head in ("scenes", "scenes2"):
        try:
            n = int(tail)
        except ValueError:
            n = 0
        if n < 1:
            raise OptionError(f"images={spec!r}: the count after '{head}:' must be an int >= 1, e.g. '{head}:200'")
        return Source(head, n)
    path = pathlib.Path(spec)
    if not path.is_dir():
        raise OptionError(
            f"images={spec!r} is neither 'scenes:N', 'scenes2:N', an existing folder nor a data set "
            "('coco:ANN.json', 'voc:DIR', 'imagefolder:DIR', 'masks:DIR')"
        )
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    return Source("folder", len(files), path)


def _need_classes(source: Source, class_names) -> None:
    if class_names is None:
        raise OptionError(f"images='{source.dataset}' is an annotated data set: pass the model's class_names")


def samples(
    source: Source,
    seed: int,
    skipped: list[tuple[str, str]],
    *,
    class_names: Sequence[str] | None = None,
    options: AnnotatedOptions | None = None,
) -> Iterator[Sample]:
    """Yield the samples of ``source`` in order; unreadable files are appended to ``skipped`` as
    ``(file name, reason)`` and left out. ``seed`` offsets the scene seeds. An annotated data set
    needs the model's ``class_names`` (and takes ``options``); its structural errors raise
    :class:`~methods.errors.AnnotationError`, an image that cannot be read is skipped."""
    if source.kind == "annotated":
        _need_classes(source, class_names)
        assert source.dataset is not None and class_names is not None
        opts = options or AnnotatedOptions()
        for record in iter_records(source.dataset, class_names, opts):
            try:
                yield per_class(build_sample(record, opts))
            except (GradLensError, OSError) as exc:
                skipped.append((record["name"], str(exc)))
        return
    if source.kind in ("scenes", "scenes2"):
        two = source.kind == "scenes2"
        start = (EVAL_TWO_START if two else EVAL_SINGLE_START) + seed
        for i in range(source.count):
            sc = make_scene(start + i, n_objects=2 if two else 1)
            yield Sample(f"scene:{sc.seed}", sc.image, tuple(sc.labels), sc.masks, sc.seed)
        return
    assert source.folder is not None
    for path in sorted(p for p in source.folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            image = load_image(path)
        except (GradLensError, OSError, ValueError) as exc:
            skipped.append((path.name, str(exc)))
            continue
        yield Sample(path.name, image)


def sample_items(
    source: Source,
    seed: int,
    *,
    exclude: pathlib.Path | None = None,
    class_names: Sequence[str] | None = None,
    options: AnnotatedOptions | None = None,
) -> list[dict]:
    """The samples of ``source`` as plain dicts an engine can send to a worker (nothing is read
    yet): ``{"index", "name", "kind": "scene" | "file" | "annotated", "seed", "n_objects" | "path" |
    "record" + "options"}``. ``exclude`` is a file left out of a folder (the evaluation's own output
    table). An annotated data set needs the model's ``class_names``; it is listed and checked here
    (:func:`methods.data.annotated.iter_records`), its pixels are not read.

    Raises:
        AnnotationError: the data set is malformed or names classes the model does not have.
    """
    if source.kind == "annotated":
        _need_classes(source, class_names)
        assert source.dataset is not None and class_names is not None
        opts = options or AnnotatedOptions()
        return [
            {"index": i, "name": r["name"], "kind": "annotated", "record": r, "options": opts.as_dict()}
            for i, r in enumerate(iter_records(source.dataset, class_names, opts))
        ]
    if source.kind in ("scenes", "scenes2"):
        two = source.kind == "scenes2"
        start = (EVAL_TWO_START if two else EVAL_SINGLE_START) + seed
        return [
            {"index": i, "name": f"scene:{start + i}", "kind": "scene", "seed": start + i, "n_objects": 2 if two else 1}
            for i in range(source.count)
        ]
    assert source.folder is not None
    files = sorted(p for p in source.folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if exclude is not None:
        files = [p for p in files if p.resolve() != pathlib.Path(exclude).resolve()]
    return [{"index": i, "name": p.name, "kind": "file", "path": str(p)} for i, p in enumerate(files)]


def load_sample(item: dict) -> Sample:
    """The :class:`Sample` of one :func:`sample_items` entry (a scene is re-made from its seed).

    Raises:
        ImageError, OSError: the file cannot be read.
        AnnotationError: an annotated image or its mask cannot be read or does not fit its annotations.
    """
    if item["kind"] == "scene":
        sc = make_scene(int(item["seed"]), n_objects=int(item["n_objects"]))
        return Sample(f"scene:{sc.seed}", sc.image, tuple(sc.labels), sc.masks, sc.seed)
    if item["kind"] == "annotated":
        return per_class(build_sample(item["record"], AnnotatedOptions.from_dict(item["options"])))
    return Sample(item["name"], load_image(item["path"]))
