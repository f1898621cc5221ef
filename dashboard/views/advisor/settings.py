"""The Advisor page's bounded choices, its URL parameters and the run itself. No streamlit here.

URL parameters (read once when the page opens, written back when the choices change; a bad value
is ignored with a note, never an error page):

    model    a catalog model id the page offers
    images   scenes | scenes2 | photos | quokka | dataset (photos: scikit-image's sample photos,
             :mod:`methods.data.photos`; quokka: the annotated photo, :func:`methods.data.quokka.quokka_dataset`;
             dataset: an annotated set in the results folder, :func:`dataset_spec`)
    dataset  the annotated set, e.g. ``masks:val`` (relative to the results folder; checked when used)
    n        images to score, 2..MAX_IMAGES (the first n of a data set)
    metric   the ranking metric (:data:`methods.advisor.METRICS`)
"""

from __future__ import annotations

import pathlib
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from dashboard.core.params import InvalidParam, parse_choice, parse_int
from dashboard.views.benchmark.data import RESULTS_ENV, results_root
from methods.advisor import METRICS, Advice, AdviseOptions, advise
from methods.data.annotated import AnnotatedOptions
from methods.data.photos import PHOTOS, load_photo
from methods.data.quokka import quokka_dataset
from methods.data.scenes import CLASS_NAMES as SCENE_CLASSES
from methods.errors import InputError
from methods.pipeline.sources import load_sample, parse_images, sample_items

__all__ = [
    "KINDS",
    "PHOTO_KINDS",
    "MAX_IMAGES",
    "Choice",
    "from_query",
    "to_query",
    "images_spec",
    "dataset_spec",
    "upload_domain",
    "kinds_for",
    "DATASET_FORMATS",
    "photo_folder",
    "forwards",
    "explained_pairs",
    "run",
]

KINDS: dict[str, str] = {
    "scenes": "One-object scenes (with masks)",
    "scenes2": "Two-object scenes (each class explained)",
    "photos": "Sample photos (no masks)",
    "quokka": "The annotated quokka photo (its outline as the mask)",
    "dataset": "Your annotated set (in the results folder)",
}
PHOTO_KINDS = ("photos", "quokka")
"""The image kinds for ImageNet models (``scenes`` and ``scenes2`` for the scene models; ``dataset`` for any)."""
DATASET_FORMATS = ("coco", "voc", "imagefolder", "masks")
IMAGENET_CLASSES = 1000


def upload_domain(class_names: Sequence[str]) -> str:
    """The image kinds an uploaded classifier can use, by its class names: ``"scenes"`` (the scenes'
    eight classes, in order), ``"imagenet"`` (1000 classes: the photos and the quokka), else ``"custom"``."""
    if tuple(class_names) == tuple(SCENE_CLASSES):
        return "scenes"
    return "imagenet" if len(class_names) == IMAGENET_CLASSES else "custom"


def kinds_for(domain: str) -> list[str]:
    """The image kinds offered for a model of ``domain``: the scenes for scene models, your data set
    only for an uploaded checkpoint of other classes (``"custom"``), else the photos and the quokka;
    your data set for every model."""
    if domain == "scenes":
        return ["scenes", "scenes2", "dataset"]
    if domain == "custom":
        return ["dataset"]
    return ["photos", "quokka", "dataset"]


MAX_DATASET_TEXT = 300
MAX_IMAGES = 30
N_RANGE = (2, MAX_IMAGES)


@dataclass(frozen=True)
class Choice:
    """What the page runs: model, image set, count, metric (the URL round trip)."""

    model: str
    images: str = "scenes"
    n: int = 8
    metric: str = "insertion"
    dataset: str = ""


def from_query(query: Mapping[str, str | None], models: Sequence[str], default: Choice) -> tuple[Choice, list[str]]:
    """The choice a link names (each bad value ignored, with a note saying which and why)."""
    values: dict[str, Any] = {}
    notes: list[str] = []
    parsers: dict[str, Callable[[str], Any]] = {
        "model": lambda v: parse_choice(v, models, "model"),
        "images": lambda v: parse_choice(v, KINDS, "images"),
        "n": lambda v: parse_int(v, *N_RANGE, "n"),
        "metric": lambda v: parse_choice(v, METRICS, "metric"),
        "dataset": _parse_dataset_text,
    }
    for key, parse in parsers.items():
        raw = query.get(key)
        if raw is None:
            continue
        try:
            values[key] = parse(str(raw))
        except InvalidParam as exc:
            notes.append(f"the link's {key} was ignored: {exc}")
    return Choice(**{**vars(default), **values}), notes


def _parse_dataset_text(value: str) -> str:
    if len(value) > MAX_DATASET_TEXT:
        raise InvalidParam(f"dataset: longer than {MAX_DATASET_TEXT} characters")
    return value


def to_query(choice: Choice) -> dict[str, str]:
    query = {"model": choice.model, "images": choice.images, "n": str(choice.n), "metric": choice.metric}
    if choice.images == "dataset" and choice.dataset:
        query["dataset"] = choice.dataset
    return query


def dataset_spec(text: str, root: pathlib.Path | None = None) -> str:
    """The ``--images`` spelling of an annotated set typed as ``FORMAT:PATH`` relative to the
    results folder (``$GRADLENS_RESULTS_ROOT``, default ``./results``), with absolute paths:
    ``coco:ANN.json[:IMAGES_DIR]``, ``voc:DIR``, ``imagefolder:DIR``, ``masks:DIR``.

    Every path must resolve (symbolic links included) inside the folder and exist; anything else
    gets one message that tells nothing about the rest of the server.

    Raises:
        InputError: the box is off, a format not in :data:`DATASET_FORMATS`, or a path outside the
            folder or missing there.
    """
    root = results_root() if root is None else root
    if root is None:
        raise InputError("reading data sets from the server is turned off here (the operator set it off)")
    typed = str(text).strip()[:MAX_DATASET_TEXT]
    head, sep, rest = typed.partition(":")
    if not sep or head not in DATASET_FORMATS or not rest:
        raise InputError(
            f"type an annotated set as FORMAT:PATH with FORMAT one of {', '.join(DATASET_FORMATS)} "
            "(e.g. masks:val or coco:val/instances.json), the path relative to the results folder"
        )
    parts = rest.split(".json:", 1) if head == "coco" else [rest]
    if head == "coco" and len(parts) == 2:
        parts[0] += ".json"
    refused = InputError(
        f"no data set {typed!r} in the results folder (paths are relative to the folder the operator set "
        f"with ${RESULTS_ENV}); check the path"
    )
    resolved = []
    for i, part in enumerate(parts):
        try:
            path = (root / part).resolve()
            path.relative_to(root)
            ok = path.is_file() if (head == "coco" and i == 0) else path.is_dir()
        except (ValueError, OSError):
            raise refused from None
        if not ok:
            raise refused
        resolved.append(str(path))
    return f"{head}:" + ":".join(resolved)


_PHOTOS: dict[str, pathlib.Path] = {}


def photo_folder() -> pathlib.Path:
    """scikit-image's sample photos written once per process to a temporary folder (a folder is what
    the Advisor's image sources read)."""
    if "dir" not in _PHOTOS or not _PHOTOS["dir"].is_dir():
        folder = pathlib.Path(tempfile.mkdtemp(prefix="gradlens-photos-"))
        for name in PHOTOS:
            Image.fromarray(load_photo(name)).save(folder / f"{name}.png")
        _PHOTOS["dir"] = folder
    return _PHOTOS["dir"]


def images_spec(kind: str, n: int, dataset: str = "") -> str:
    """``scenes:N`` / ``scenes2:N``, the photo folder (all of its photos), the quokka's COCO set or
    the user's annotated set (:func:`dataset_spec`)."""
    if kind == "quokka":
        return quokka_dataset()
    if kind == "dataset":
        return dataset_spec(dataset)
    return str(photo_folder()) if kind == "photos" else f"{kind}:{int(n)}"


def forwards(
    kind: str,
    n: int,
    n_methods: int,
    n_layers: int,
    n_norms: int,
    steps: int,
    metric: str,
    explained: int | None = None,
) -> int:
    """Upper bound of the model forwards of a run: per image and class, every map (methods x layers
    x normalizations scored, plus the random map per layer x normalization) has a deletion and an
    insertion curve of ``steps + 1`` points; the mask metrics run no forwards beyond the maps.
    ``explained``: the (image, class) pairs when known (a data set: :func:`explained_pairs`)."""
    scorer = METRICS[metric].scorer
    if scorer not in ("curves", "road"):
        return 0
    if explained is not None:
        n, classes = int(explained), 1
    else:
        classes = 2 if kind == "scenes2" else 1
    per_map = 2 * (steps + 1) if scorer == "curves" else 18  # ROAD: 9 MoRF + 9 LeRF fractions
    return n * classes * (n_methods + 1) * n_layers * n_norms * per_map


def explained_pairs(spec: str, n: int, class_names: Sequence[str]) -> tuple[int, int]:
    """(images, image x class pairs) of the first ``n`` images of the annotated set ``spec``: its
    records are listed and checked (an AnnotationError says what is wrong), no pixel is read."""
    items = sample_items(parse_images(spec), 0, class_names=class_names, options=AnnotatedOptions(max_images=int(n)))
    return len(items), sum(len({o["label"] for o in item["record"]["objects"]}) or 1 for item in items)


def run(
    loaded: Any, choice: Choice, options: AdviseOptions, progress: Callable[[int, int], None], device: Any = None
) -> Advice:
    """The Advisor on ``choice``'s images, in this process, on ``device`` (the sidebar's choice;
    ``progress`` may raise Cancelled)."""
    spec = images_spec(choice.images, choice.n, choice.dataset)
    limits = AnnotatedOptions(max_images=int(choice.n))  # the first n images of a data set
    return advise(loaded, spec, options, progress=progress, log=lambda _s: None, device=device, dataset_options=limits)


def first_image(loaded: Any, choice: Choice) -> Any:
    """The first picture of ``choice``'s images (an annotated set needs the model's class names)."""
    spec = images_spec(choice.images, choice.n, choice.dataset)
    items = sample_items(parse_images(spec), 0, class_names=loaded.class_names, options=AnnotatedOptions(max_images=1))
    return load_sample(items[0]).image
