"""The sample-image gallery: generated scenes with ground truth, and scikit-image's photos.

Everything here loads offline. Scene samples are regenerated on demand from fixed seeds (in a
range no bundled model was trained or evaluated on: ``SAMPLE_SEED_START`` and up), so no image
files ship; their object masks come with them (:func:`load_sample_mask`). Photo samples are the
natural images bundled with scikit-image (``skimage.data``); they suit ImageNet classifiers, not
the scenes models, and have no mask.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

import numpy as np

from methods.data.scenes import CLASS_NAMES, EVAL_SEED_START, make_scene

__all__ = ["Sample", "SAMPLE_SEED_START", "list_samples", "get_sample", "load_sample", "load_sample_mask"]

#: Scene samples use seeds from here on: past the evaluation seeds of the bundled models' cards.
SAMPLE_SEED_START = EVAL_SEED_START + 2_000_000


@dataclass(frozen=True)
class Sample:
    """One gallery entry.

    Attributes:
        name: key for :func:`load_sample` (lower_snake).
        kind: ``"scene"`` (generated, has masks) or ``"photo"`` (natural image, no mask).
        description: one line for people.
        suggested_model: ``"scenes_vgg"`` for scenes, ``"imagenet"`` for photos.
        classes: scene samples: the class name of each object, in mask order; photos: ``()``.
    """

    name: str
    kind: Literal["scene", "photo"]
    description: str
    suggested_model: str
    classes: tuple[str, ...] = ()


# name -> (seed, n_objects); the classes and backgrounds in the descriptions are checked by tests.
_SCENES: dict[str, tuple[int, int, str]] = {
    "scene_star_brick": (SAMPLE_SEED_START + 9, 1, "a star on brick"),
    "scene_diamond_cell": (SAMPLE_SEED_START + 8, 1, "a diamond on a cell micrograph"),
    "scene_cross_noise": (SAMPLE_SEED_START + 6, 1, "a cross on coloured noise"),
    "scene_semicircle_grass": (SAMPLE_SEED_START + 26, 1, "a semicircle on grass"),
    "scene_circle_semicircle_grass": (SAMPLE_SEED_START + 13, 2, "a circle and a semicircle on grass"),
    "scene_cross_diamond_moon": (SAMPLE_SEED_START + 25, 2, "a cross and a diamond on the moon's surface"),
    "scene_triangle_square_brick": (SAMPLE_SEED_START + 28, 2, "a triangle and a square on brick"),
}

# name -> (skimage.data function, description)
_PHOTOS: dict[str, tuple[str, str]] = {
    "chelsea": ("chelsea", "Chelsea the cat (scikit-image sample photo)"),
    "coffee": ("coffee", "a cup of coffee on a saucer (scikit-image sample photo)"),
    "astronaut": ("astronaut", "astronaut Eileen Collins, NASA portrait (scikit-image sample photo)"),
    "rocket": ("rocket", "a rocket on its launch pad (scikit-image sample photo)"),
}


def _scene_classes(name: str) -> tuple[str, ...]:
    # The class names are part of the sample's name, in drawing order; tests check they match.
    parts = name.split("_")[1:]
    return tuple(p for p in parts if p in CLASS_NAMES)


def list_samples() -> list[Sample]:
    """All samples: the generated scenes first, then the photos."""
    out = [
        Sample(
            name=name,
            kind="scene",
            description=f"Scene ({'two objects' if n == 2 else 'one object'}): {text}",
            suggested_model="scenes_vgg",
            classes=_scene_classes(name),
        )
        for name, (seed, n, text) in _SCENES.items()
    ]
    out += [
        Sample(name=name, kind="photo", description=text, suggested_model="imagenet")
        for name, (_, text) in _PHOTOS.items()
    ]
    return out


def _unknown(name) -> ValueError:
    names = [s.name for s in list_samples()]
    close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(f"unknown sample {name!r}{hint} Valid names: {names}")


def get_sample(name: str) -> Sample:
    """The :class:`Sample` called ``name``.

    Raises:
        ValueError: unknown name (suggests the closest names).
    """
    for s in list_samples():
        if s.name == name:
            return s
    raise _unknown(name)


def load_sample(name: str) -> np.ndarray:
    """The RGB image of sample ``name``: (H, W, 3) uint8, a fresh array the caller may modify.

    Scenes are 128x128; photos keep their own size.

    Raises:
        ValueError: unknown name (suggests the closest names).
    """
    if name in _SCENES:
        seed, n, _ = _SCENES[name]
        return make_scene(seed, n_objects=n).image
    if name in _PHOTOS:
        from skimage import data

        img = np.asarray(getattr(data, _PHOTOS[name][0])())
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        return np.ascontiguousarray(img[..., :3], dtype=np.uint8)
    raise _unknown(name)


def load_sample_mask(name: str) -> np.ndarray | None:
    """Object masks of a scene sample, (K, H, W) bool in the order of ``Sample.classes``; None for photos.

    Raises:
        ValueError: unknown name (suggests the closest names).
    """
    if name in _SCENES:
        seed, n, _ = _SCENES[name]
        return make_scene(seed, n_objects=n).masks
    if name in _PHOTOS:
        return None
    raise _unknown(name)
