"""The sample-image gallery: generated scenes with ground truth, real photos, composites, and an
annotated photo.

Everything here loads offline. Four kinds:

* ``"scene"``: regenerated on demand from fixed seeds (in a range no bundled model was trained or
  evaluated on: ``SAMPLE_SEED_START`` and up), so no image files ship; their object masks come
  with them (:func:`load_sample_mask`). For the bundled ``scenes_*`` models.
* ``"photo"``: natural photos bundled with scikit-image (:mod:`methods.data.photos`); they suit
  ImageNet classifiers (``efficientnet_lite0`` ...), not the scenes models, and have no mask.
* ``"composite"``: two photos side by side (``chelsea_coffee``: cat | espresso); the mask of each
  named ImageNet class is the tile its photo fills, for class-discrimination checks.
* ``"annotated"``: a real photo with a hand-drawn outline: ``quokka`` (imgaug 0.4.0, MIT;
  :mod:`methods.data.quokka`), ImageNet class "wallaby", its mask the outline polygon rasterised.

:attr:`Sample.domain` says which models a sample suits, matching
:attr:`methods.models.LoadedModel.domain` (``"scenes"`` or ``"imagenet"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from methods.data.photos import COMPOSITES, PHOTOS, composite_masks, load_composite, load_photo
from methods.data.quokka import QUOKKA_CLASS, QUOKKA_CLASS_ID, load_quokka, quokka_mask
from methods.data.scenes import CLASS_NAMES, EVAL_SEED_START, make_scene
from methods.errors import OptionError, suggest

__all__ = ["Sample", "SAMPLE_SEED_START", "list_samples", "get_sample", "load_sample", "load_sample_mask"]

#: Scene samples use seeds from here on: past the evaluation seeds of the bundled models' cards.
SAMPLE_SEED_START = EVAL_SEED_START + 2_000_000


@dataclass(frozen=True)
class Sample:
    """One gallery entry.

    Attributes:
        name: key for :func:`load_sample` (lower_snake).
        kind: ``"scene"`` (generated, has masks), ``"photo"`` (natural image, no mask),
            ``"composite"`` (photos side by side, a mask per class) or ``"annotated"`` (a natural
            photo with an annotated outline mask).
        description: one line for people.
        suggested_model: ``"scenes_vgg"`` for scenes, ``"imagenet"`` for photos and composites.
        classes: the class name of each mask of :func:`load_sample_mask`, in order (scene object
            classes; a composite's ImageNet classes, left to right); photos: ``()``.
        domain: the models it suits: ``"scenes"`` or ``"imagenet"`` (compare with
            :attr:`methods.models.LoadedModel.domain`).
        class_ids: the index of each class among the model's outputs (scene class indices;
            ImageNet-1k indices for composites); photos: ``()``.
    """

    name: str
    kind: Literal["scene", "photo", "composite", "annotated"]
    description: str
    suggested_model: str
    classes: tuple[str, ...] = ()
    domain: Literal["scenes", "imagenet"] = "scenes"
    class_ids: tuple[int, ...] = ()


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


def _scene_classes(name: str) -> tuple[str, ...]:
    # The class names are part of the sample's name, in drawing order; tests check they match.
    parts = name.split("_")[1:]
    return tuple(p for p in parts if p in CLASS_NAMES)


def list_samples() -> list[Sample]:
    """All samples: the generated scenes first, then the photos, the composites, the annotated photo.

    Examples:
        >>> [s.name for s in list_samples() if s.kind == "composite"]
        ['chelsea_coffee', 'coffee_chelsea']
    """
    out = [
        Sample(
            name=name,
            kind="scene",
            description=f"Scene ({'two objects' if n == 2 else 'one object'}): {text}",
            suggested_model="scenes_vgg",
            classes=_scene_classes(name),
            domain="scenes",
            class_ids=tuple(CLASS_NAMES.index(c) for c in _scene_classes(name)),
        )
        for name, (seed, n, text) in _SCENES.items()
    ]
    out += [
        Sample(name=name, kind="photo", description=p.description, suggested_model="imagenet", domain="imagenet")
        for name, p in PHOTOS.items()
    ]
    out += [
        Sample(
            name=name,
            kind="composite",
            description=c.description,
            suggested_model="imagenet",
            classes=c.classes,
            domain="imagenet",
            class_ids=c.class_ids,
        )
        for name, c in COMPOSITES.items()
    ]
    out.append(
        Sample(
            name="quokka",
            kind="annotated",
            description="a quokka with its outline (imgaug sample photo, MIT; ImageNet: wallaby, the closest class)",
            suggested_model="imagenet",
            classes=(QUOKKA_CLASS,),
            domain="imagenet",
            class_ids=(QUOKKA_CLASS_ID,),
        )
    )
    return out


def _unknown(name) -> OptionError:
    names = [s.name for s in list_samples()]
    return OptionError(f"unknown sample {name!r}.{suggest(name, names)} Valid names: {names}")


def get_sample(name: str) -> Sample:
    """The :class:`Sample` called ``name``.

    Raises:
        OptionError (a ValueError): unknown name (suggests the closest names).
    """
    for s in list_samples():
        if s.name == name:
            return s
    raise _unknown(name)


def load_sample(name: str) -> np.ndarray:
    """The RGB image of sample ``name``: (H, W, 3) uint8, a fresh array the caller may modify.

    Scenes are 128x128; photos keep their own size; composites are 300 x 600.

    Raises:
        OptionError (a ValueError): unknown name (suggests the closest names).
    """
    if name in _SCENES:
        seed, n, _ = _SCENES[name]
        return make_scene(seed, n_objects=n).image
    if name in PHOTOS:
        return load_photo(name)
    if name in COMPOSITES:
        return load_composite(name)
    if name == "quokka":
        return load_quokka()
    raise _unknown(name)


def load_sample_mask(name: str) -> np.ndarray | None:
    """Masks of a sample, (K, H, W) bool in the order of ``Sample.classes``: a scene's object masks,
    a composite's class tiles, the quokka's outline; None for photos.

    Raises:
        OptionError (a ValueError): unknown name (suggests the closest names).
    """
    if name in _SCENES:
        seed, n, _ = _SCENES[name]
        return make_scene(seed, n_objects=n).masks
    if name in PHOTOS:
        return None
    if name in COMPOSITES:
        return composite_masks(name)
    if name == "quokka":
        return quokka_mask()
    raise _unknown(name)
