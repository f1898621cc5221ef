"""The Advisor page's bounded choices, its URL parameters and the run itself. No streamlit here.

URL parameters (read once when the page opens, written back when the choices change; a bad value
is ignored with a note, never an error page):

    model    a catalog model id the page offers
    images   scenes | scenes2 | photos | quokka (photos: scikit-image's sample photos, :mod:`methods.data.photos`;
             quokka: the annotated photo, :func:`methods.data.quokka.quokka_dataset`)
    n        images to score, 2..MAX_IMAGES
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
from methods.advisor import METRICS, Advice, AdviseOptions, advise
from methods.data.photos import PHOTOS, load_photo
from methods.data.quokka import quokka_dataset
from methods.pipeline.sources import load_sample, parse_images, sample_items

__all__ = [
    "KINDS",
    "PHOTO_KINDS",
    "MAX_IMAGES",
    "Choice",
    "from_query",
    "to_query",
    "images_spec",
    "photo_folder",
    "forwards",
    "run",
]

KINDS: dict[str, str] = {
    "scenes": "One-object scenes (with masks)",
    "scenes2": "Two-object scenes (each class explained)",
    "photos": "Sample photos (no masks)",
    "quokka": "The annotated quokka photo (its outline as the mask)",
}
PHOTO_KINDS = ("photos", "quokka")
"""The image kinds for ImageNet models (the others are the scenes)."""
MAX_IMAGES = 30
N_RANGE = (2, MAX_IMAGES)


@dataclass(frozen=True)
class Choice:
    """What the page runs: model, image set, count, metric (the URL round trip)."""

    model: str
    images: str = "scenes"
    n: int = 8
    metric: str = "insertion"


def from_query(query: Mapping[str, str | None], models: Sequence[str], default: Choice) -> tuple[Choice, list[str]]:
    """The choice a link names (each bad value ignored, with a note saying which and why)."""
    values: dict[str, Any] = {}
    notes: list[str] = []
    parsers: dict[str, Callable[[str], Any]] = {
        "model": lambda v: parse_choice(v, models, "model"),
        "images": lambda v: parse_choice(v, KINDS, "images"),
        "n": lambda v: parse_int(v, *N_RANGE, "n"),
        "metric": lambda v: parse_choice(v, METRICS, "metric"),
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


def to_query(choice: Choice) -> dict[str, str]:
    return {"model": choice.model, "images": choice.images, "n": str(choice.n), "metric": choice.metric}


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


def images_spec(kind: str, n: int) -> str:
    """``scenes:N`` / ``scenes2:N``, the photo folder (all of its photos) or the quokka's COCO set."""
    if kind == "quokka":
        return quokka_dataset()
    return str(photo_folder()) if kind == "photos" else f"{kind}:{int(n)}"


def forwards(kind: str, n: int, n_methods: int, n_layers: int, n_norms: int, steps: int, metric: str) -> int:
    """Upper bound of the model forwards of a run: per image and class, every map (methods x layers
    x normalizations scored, plus the random map per layer x normalization) has a deletion and an
    insertion curve of ``steps + 1`` points; the mask metrics run no forwards beyond the maps."""
    scorer = METRICS[metric].scorer
    if scorer not in ("curves", "road"):
        return 0
    classes = 2 if kind == "scenes2" else 1
    per_map = 2 * (steps + 1) if scorer == "curves" else 18  # ROAD: 9 MoRF + 9 LeRF fractions
    return n * classes * (n_methods + 1) * n_layers * n_norms * per_map


def run(
    loaded: Any, choice: Choice, options: AdviseOptions, progress: Callable[[int, int], None], device: Any = None
) -> Advice:
    """The Advisor on ``choice``'s images, in this process, on ``device`` (the sidebar's choice;
    ``progress`` may raise Cancelled)."""
    spec = images_spec(choice.images, choice.n)
    return advise(loaded, spec, options, progress=progress, log=lambda _s: None, device=device)


def first_image(loaded: Any, choice: Choice) -> Any:
    """The first picture of ``choice``'s images (an annotated set needs the model's class names)."""
    spec = images_spec(choice.images, choice.n)
    return load_sample(sample_items(parse_images(spec), 0, class_names=loaded.class_names)[0]).image
