"""Real photos for ImageNet models: scikit-image's sample photos and composites made from them.

Every photo here ships inside scikit-image (``skimage.data``; no download, unlike ``eagle``,
``lily`` or ``skin``, which need the network). What EfficientNet-Lite0 (ImageNet-1k, 224 x 224)
calls them with its evaluation transform (timm's resize 256 + centre crop 224, issue 25) and, as
before issue 25, with the whole image squashed to 224 x 224, measured on this machine and
re-checked in tests/models/test_pypi_zoo.py for the first four:

================ ================================= =============================== ==========================
name             photo                             Lite0 top-1 (evaluation crop)   whole image squashed
================ ================================= =============================== ==========================
``chelsea``      Chelsea the cat                   tiger cat 0.38 / Egyptian 0.37  Egyptian cat 0.79
``coffee``       a cup of espresso on a saucer     espresso 0.95                   espresso 0.88
``motorcycle``   a motorcycle (stereo pair, left)  moped 0.57 / scooter 0.12       moped 0.48 / scooter 0.34
``camera``       the cameraman (grayscale -> RGB)  tripod 0.95                     tripod 0.94
``rocket``       a rocket on its launch pad        missile 0.31 / projectile 0.23  drilling platform 0.54
``astronaut``    Eileen Collins, NASA portrait     bobsled 0.13 (no class fits)    bobsled 0.30
================ ================================= =============================== ==========================

Composites put two photos side by side (each centre-cropped to a square, 300 x 300), so a
class-discriminative map must light up the half of the class asked for. Their ground truth is a
boolean mask per named ImageNet class: the **tile** the photo occupies (not an object outline),
usable by localization metrics (:func:`methods.metrics.localization.energy_pointing_game`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "Photo",
    "Composite",
    "PHOTOS",
    "COMPOSITES",
    "TILE",
    "load_photo",
    "square_tile",
    "load_composite",
    "composite_masks",
    "skimage_image",
]

#: Side of each square tile of a composite (pixels).
TILE = 300


@dataclass(frozen=True)
class Photo:
    """A scikit-image photo.

    Attributes:
        loader: the ``skimage.data`` function.
        description: one line for people.
        view: for a function returning several images (``stereo_motorcycle``), which one.
    """

    loader: str
    description: str
    view: int | None = None


@dataclass(frozen=True)
class Composite:
    """Photos side by side, left to right, each with the ImageNet class it shows.

    Attributes:
        photos: photo names (keys of :data:`PHOTOS`), left to right.
        classes: the ImageNet-1k class name of each photo (exactly as in torchvision's
            categories, so ``class_names.index(name)`` finds it).
        class_ids: the ImageNet-1k index of each class.
        description: one line for people.
    """

    photos: tuple[str, ...]
    classes: tuple[str, ...]
    class_ids: tuple[int, ...]
    description: str


PHOTOS: dict[str, Photo] = {
    "chelsea": Photo("chelsea", "Chelsea the cat (scikit-image sample photo; ImageNet: a cat class)"),
    "coffee": Photo("coffee", "a cup of espresso on a saucer (scikit-image sample photo; ImageNet: espresso)"),
    "motorcycle": Photo(
        "stereo_motorcycle",
        "a motorcycle, left view of a stereo pair (scikit-image; ImageNet: moped / motor scooter)",
        view=0,
    ),
    "camera": Photo(
        "camera", "the cameraman with his camera on a tripod, grayscale shown as RGB (scikit-image; ImageNet: tripod)"
    ),
    "rocket": Photo(
        "rocket",
        "a rocket on its launch pad (scikit-image sample photo; ImageNet has no good class: drilling platform, missile)",
    ),
    "astronaut": Photo(
        "astronaut",
        "astronaut Eileen Collins, NASA portrait (scikit-image sample photo; no ImageNet class fits a person)",
    ),
}

COMPOSITES: dict[str, Composite] = {
    "chelsea_coffee": Composite(
        ("chelsea", "coffee"),
        ("Egyptian cat", "espresso"),
        (285, 967),
        "Composite: Chelsea the cat (left) | a cup of espresso (right), for class-discrimination demos",
    ),
    "coffee_chelsea": Composite(
        ("coffee", "chelsea"),
        ("espresso", "Egyptian cat"),
        (967, 285),
        "Composite: a cup of espresso (left) | Chelsea the cat (right), the same two photos swapped",
    ),
}


#: ``skimage.data`` loaders that only read one PNG file of ``skimage/data/`` (tests/data/test_photos.py
#: checks each against its loader, pixel for pixel).
PLAIN_PNG: dict[str, str] = {
    **{n: f"{n}.png" for n in ("astronaut", "brick", "camera", "cell", "chelsea", "coffee", "grass", "gravel", "moon")},
    "immunohistochemistry": "ihc.png",
}


def skimage_image(loader: str) -> np.ndarray:
    """The image of the ``skimage.data`` function ``loader``, as that function returns it.

    A loader of :data:`PLAIN_PNG` is read straight from its file with Pillow: ``skimage.data``'s own
    readers import ``skimage.io`` and SciPy (about 0.5 s in a fresh process, on the dashboard's
    first map). Any other loader is called.

    Examples:
        >>> skimage_image("chelsea").shape, skimage_image("brick").shape
        ((300, 451, 3), (512, 512))
    """
    if loader in PLAIN_PNG:
        import skimage  # a lazy package: its submodules are not imported here
        from PIL import Image

        path = Path(skimage.__file__).parent / "data" / PLAIN_PNG[loader]
        if path.is_file():
            with Image.open(path) as im:
                return np.asarray(im)
    from skimage import data

    return getattr(data, loader)()


def load_photo(name: str) -> np.ndarray:
    """The photo ``name`` (a key of :data:`PHOTOS`) as (H, W, 3) uint8 RGB, a fresh array.

    Grayscale photos are repeated into three channels; an alpha channel is dropped.

    Examples:
        >>> load_photo("camera").shape
        (512, 512, 3)
    """
    photo = PHOTOS[name]
    img = skimage_image(photo.loader)
    if photo.view is not None:
        img = img[photo.view]
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.array(img[..., :3], dtype=np.uint8, order="C")


def square_tile(img: np.ndarray, side: int) -> np.ndarray:
    """Centre crop to a square, then resize to ``side`` x ``side`` (antialiased bilinear).

    Args:
        img: (H, W, 3) uint8.
        side: output side in pixels.

    Returns:
        (side, side, 3) uint8; the crop itself when its side already equals ``side``.

    Examples:
        >>> square_tile(np.zeros((4, 6, 3), np.uint8), 2).shape
        (2, 2, 3)
    """
    import torch
    import torch.nn.functional as F

    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    crop = np.ascontiguousarray(img[top : top + s, left : left + s])
    x = torch.from_numpy(crop).permute(2, 0, 1)[None].float()  # (1, 3, s, s)
    x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False, antialias=True)  # (1, 3, side, side)
    return x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()  # (side, side, 3)


def load_composite(name: str) -> np.ndarray:
    """The composite ``name`` (a key of :data:`COMPOSITES`): (TILE, k * TILE, 3) uint8, photos left
    to right, each centre-cropped to a square and resized to TILE x TILE.

    Examples:
        >>> load_composite("chelsea_coffee").shape
        (300, 600, 3)
    """
    return np.concatenate([square_tile(load_photo(p), TILE) for p in COMPOSITES[name].photos], axis=1)


def composite_masks(name: str) -> np.ndarray:
    """(K, TILE, K * TILE) bool: mask k is the tile of ``COMPOSITES[name].classes[k]``.

    Examples:
        >>> m = composite_masks("chelsea_coffee"); m.shape, bool(m[0, :, :300].all()), bool(m[0, :, 300:].any())
        ((2, 300, 600), True, False)
    """
    k = len(COMPOSITES[name].photos)
    masks = np.zeros((k, TILE, k * TILE), dtype=bool)
    for i in range(k):
        masks[i, :, i * TILE : (i + 1) * TILE] = True
    return masks
