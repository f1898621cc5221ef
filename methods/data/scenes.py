"""Synthetic scenes with known ground truth: the offline GradLens benchmark.

Every scene is a deterministic function of one integer seed (``numpy.random.default_rng(seed)``):
one or two objects from eight shape classes, drawn with :mod:`skimage.draw` at a random size,
position, rotation and colour, over a background cut from scikit-image's bundled textures
(brick, grass, gravel, moon, cell, immunohistochemistry) or coloured noise, with clutter
(thin lines, curved strokes, small irregular specks) that is not any class shape.

Because the pixels of every object are known, a class activation map can be scored against
truth (pointing game, energy inside the mask), and a classifier trained on these scenes gives
Grad-CAM maps that mean something without any download (see :mod:`methods.models.scenes.nets`).

Design choices that matter for the benchmark:

* Colour never tells the class: each object gets a random colour, only constrained to differ
  from the background under it (RGB distance >= ``_MIN_CONTRAST``), so the object is visible.
* Clutter is drawn *before* the objects, so an object's mask is exactly its visible pixels.
* Objects of two-object scenes have different classes and do not overlap (their bounding
  circles are at least ``_GAP`` pixels apart); each has its own mask.
* Masks are the drawn pixels, and every class is a solid shape whose centre lies inside it.
  Hollow shapes (a ring, a crescent) were tried and dropped: Grad-CAM of both bundled networks
  peaks in the hole or the bite - the unit that sees the whole shape sits at its centre - so a
  pixel-exact pointing game cannot score them (see ``docs/scenes.md``).

Seed ranges: the bundled models were trained on seeds in ``TRAIN_SEEDS`` and every number
reported for them is measured on seeds ``>= EVAL_SEED_START``; the two ranges are disjoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
from skimage import draw as _draw

from methods.data.photos import skimage_image
from methods.errors import OptionError

__all__ = [
    "CLASS_NAMES",
    "BACKGROUNDS",
    "TRAIN_SEEDS",
    "EVAL_SEED_START",
    "Scene",
    "make_scene",
    "make_batch",
]

CLASS_NAMES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "diamond",
    "ellipse",
    "semicircle",
)

#: Background kinds, drawn with equal probability. All textures ship inside scikit-image.
BACKGROUNDS: tuple[str, ...] = (
    "brick",
    "grass",
    "gravel",
    "moon",
    "cell",
    "immunohistochemistry",
    "noise",
)

#: Seeds the bundled models were trained on (half-open range).
TRAIN_SEEDS = range(0, 1_000_000)
#: Every evaluation seed is >= this; disjoint from TRAIN_SEEDS.
EVAL_SEED_START = 10_000_000

_MIN_CONTRAST = 90.0  # minimum RGB distance between an object's colour and its background
_GAP = 4.0  # pixels between the bounding circles of the two objects of a two-object scene
_NOISE_SIGMA = 6.0  # per-pixel Gaussian noise on the final image (uint8 units)


@dataclass(frozen=True)
class Scene:
    """One generated scene and its ground truth.

    Attributes:
        image: (H, W, 3) uint8 RGB image.
        labels: class index (into ``CLASS_NAMES``) of each object, in drawing order.
        masks: (K, H, W) bool, ``masks[k]`` is the set of visible pixels of object ``k``.
        seed: the seed that reproduces this scene with ``make_scene``.
        background: which of ``BACKGROUNDS`` the scene was drawn on.
    """

    image: np.ndarray
    labels: tuple[int, ...]
    masks: np.ndarray
    seed: int
    background: str = ""

    @property
    def label(self) -> int:
        """Class index of the first object (the only one in a single-object scene)."""
        return self.labels[0]

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool union of all object masks (the first object's mask if there is one)."""
        return np.asarray(self.masks.any(axis=0))  # an array: masks is (K, H, W)

    @property
    def class_names(self) -> tuple[str, ...]:
        """Names of ``labels``."""
        return tuple(CLASS_NAMES[i] for i in self.labels)


# --------------------------------------------------------------------------------------------
# Backgrounds


@cache
def _texture(name: str) -> np.ndarray:
    """A bundled texture as float32 in [0, 1], (H, W) for grey or (H, W, 3) for RGB. Cached."""
    img = skimage_image(name)
    return np.ascontiguousarray(img, dtype=np.float32) / 255.0


@cache
def _noise_bank() -> np.ndarray:
    """(512, 512, 3) float32 standard normal noise from a fixed seed; crops of it are cheap."""
    return np.random.default_rng(20240601).standard_normal((512, 512, 3), dtype=np.float32)


def _noise(size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size, 3) unit Gaussian noise: a random crop of the bank (a fresh draw if bigger)."""
    bank = _noise_bank()
    if size > bank.shape[0]:
        return rng.standard_normal((size, size, 3), dtype=np.float32)
    return _crop(bank, size, rng, scales=(1,))


def _crop(tex: np.ndarray, size: int, rng: np.random.Generator, scales=(1, 2)) -> np.ndarray:
    """Random size x size crop of ``tex`` at a random scale (1x or 2x down), flip and transpose."""
    step = scales[int(rng.integers(len(scales)))]  # stride sampling: a view, no resampling cost
    h, w = tex.shape[0] // step, tex.shape[1] // step
    if h < size or w < size:
        step, h, w = 1, tex.shape[0], tex.shape[1]
    y = int(rng.integers(0, h - size + 1))
    x = int(rng.integers(0, w - size + 1))
    out = tex[y * step : (y + size) * step : step, x * step : (x + size) * step : step]
    if rng.random() < 0.5:
        out = out[:, ::-1]
    if rng.random() < 0.5:
        out = out.swapaxes(0, 1)
    return out


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.0, 255.0, size=3).astype(np.float32)


def _background(size: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """(size, size, 3) float32 background in uint8 units, and its kind."""
    kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    return _background_of(kind, size, rng), kind


def _background_of(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "noise":
        # Low-frequency colour field plus fine colour noise.
        coarse = int(rng.integers(2, 9))
        field: np.ndarray = rng.uniform(0.0, 255.0, size=(coarse, coarse, 3)).astype(np.float32)
        field = cv2.resize(field, (size, size), interpolation=cv2.INTER_CUBIC)  # smooth, no blocks
        fine = _noise(size, rng) * rng.uniform(5.0, 25.0)
        return field + fine
    tex = _crop(_texture(kind), size, rng)
    if tex.ndim == 3:
        # colour texture: random per-channel gain and offset
        gain = rng.uniform(0.6, 1.3, size=3).astype(np.float32)
        offset = rng.uniform(-40.0, 40.0, size=3).astype(np.float32)
        return tex * (255.0 * gain) + offset
    # grey texture: tint between two random colours, stretched to the texture's own range
    lo, hi = float(tex.min()), float(tex.max())
    t = (tex - lo) / max(hi - lo, 1e-3)
    c0, c1 = _random_colour(rng), _random_colour(rng)
    return c0 + t[..., None] * (c1 - c0)


# --------------------------------------------------------------------------------------------
# Clutter: thin lines, curved strokes, small specks. None of them can be mistaken for a class
# shape: lines and strokes are 1-2 px wide, specks are at most 5 px across (objects >= 22 px).


def _clutter(img: np.ndarray, rng: np.random.Generator) -> None:
    size = img.shape[0]
    for _ in range(int(rng.integers(1, 5))):  # straight lines
        r0, c0, r1, c1 = (int(v) for v in rng.integers(0, size, 4))
        rr, cc, val = _draw.line_aa(r0, c0, r1, c1)
        keep = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size)
        rr, cc, val = rr[keep], cc[keep], val[keep, None].astype(np.float32)
        img[rr, cc] = img[rr, cc] * (1 - val) + _random_colour(rng) * val
    for _ in range(int(rng.integers(0, 4))):  # curved strokes
        r0, c0, r1, c1, r2, c2 = (int(p) for p in rng.integers(0, size, 6))
        rr, cc = _draw.bezier_curve(r0, c0, r1, c1, r2, c2, weight=float(rng.uniform(0.5, 3.0)), shape=(size, size))
        img[rr, cc] = _random_colour(rng)
    for _ in range(int(rng.integers(0, 8))):  # specks: small irregular polygons
        cy, cx = rng.uniform(0, size, 2)
        n = int(rng.integers(4, 7))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = rng.uniform(0.8, 2.5, n)
        rr, cc = _draw.polygon(cy + rad * np.sin(ang), cx + rad * np.cos(ang), shape=(size, size))
        img[rr, cc] = _random_colour(rng)


# --------------------------------------------------------------------------------------------
# Shapes. Each returns the (H, W) bool mask of a shape of "radius" r (its bounding circle)
# centred at (cy, cx), rotated by theta (radians).


def _poly_mask(cy, cx, radii, angles, theta, shape) -> np.ndarray:
    a = np.asarray(angles) + theta
    r = np.asarray(radii, dtype=np.float64)
    m = np.zeros(shape, bool)
    rr, cc = _draw.polygon(cy - r * np.sin(a), cx + r * np.cos(a), shape=shape)
    m[rr, cc] = True
    return m


def _disk(cy, cx, r, shape) -> np.ndarray:
    m = np.zeros(shape, bool)
    rr, cc = _draw.disk((cy, cx), r, shape=shape)
    m[rr, cc] = True
    return m


def _shape_mask(cls: int, cy: float, cx: float, r: float, theta: float, shape, rng) -> np.ndarray:
    name = CLASS_NAMES[cls]
    if name == "circle":
        return _disk(cy, cx, r, shape)
    if name == "square":
        k = np.arange(4)
        return _poly_mask(cy, cx, np.full(4, r), k * np.pi / 2 + np.pi / 4, theta, shape)
    if name == "triangle":
        k = np.arange(3)
        return _poly_mask(cy, cx, np.full(3, r), k * 2 * np.pi / 3 + np.pi / 2, theta, shape)
    if name == "star":
        k = np.arange(10)
        radii = np.where(k % 2 == 0, r, r * rng.uniform(0.42, 0.5))
        return _poly_mask(cy, cx, radii, k * np.pi / 5 + np.pi / 2, theta, shape)
    if name == "cross":
        w = rng.uniform(0.28, 0.36)  # half arm width, as a fraction of r
        L = np.sqrt(1.0 - w * w)  # arm tips touch the bounding circle
        xs = np.array([w, w, L, L, w, w, -w, -w, -L, -L, -w, -w])
        ys = np.array([L, w, w, -w, -w, -L, -L, -w, -w, w, w, L])
        return _poly_mask(cy, cx, r * np.hypot(xs, ys), np.arctan2(ys, xs), theta, shape)
    if name == "diamond":
        # a rhombus with unequal diagonals (a rotated square has equal ones)
        a = rng.uniform(0.5, 0.62)
        return _poly_mask(cy, cx, np.array([r, a * r, r, a * r]), np.arange(4) * np.pi / 2, theta, shape)
    if name == "ellipse":
        m = np.zeros(shape, bool)
        minor = r * rng.uniform(0.4, 0.6)
        rr, cc = _draw.ellipse(cy, cx, minor, r, shape=shape, rotation=theta)
        m[rr, cc] = True
        return m
    if name == "semicircle":
        # half disk of radius R with its centroid (4R / 3pi from the flat edge) at (cy, cx);
        # R = 0.92 r keeps the flat edge's corners inside the bounding circle
        R = 0.92 * r
        t = np.linspace(0.0, np.pi, 25)
        ys, xs = R * np.sin(t) - 4 * R / (3 * np.pi), R * np.cos(t)
        return _poly_mask(cy, cx, np.hypot(ys, xs), np.arctan2(ys, xs), theta, shape)
    raise AssertionError(name)


def _paint(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> None:
    """Fill ``mask`` in ``img`` with a random colour that stands out from the pixels under it."""
    under = img[mask].mean(axis=0)  # (3,)
    colour = _random_colour(rng)
    for _ in range(20):
        if np.linalg.norm(colour - under) >= _MIN_CONTRAST:
            break
        colour = _random_colour(rng)
    else:  # push away from the background colour
        colour = np.where(under > 127.5, 20.0, 235.0).astype(np.float32)
    # gentle linear shading across the object, so fills are not flat
    rr, cc = np.nonzero(mask)
    phi = rng.uniform(0, 2 * np.pi)
    ramp = (rr - rr.mean()) * np.sin(phi) + (cc - cc.mean()) * np.cos(phi)
    ramp = ramp / max(np.abs(ramp).max(), 1.0)
    shade = 1.0 + rng.uniform(0.0, 0.2) * ramp
    img[rr, cc] = colour[None, :] * shade[:, None]


# --------------------------------------------------------------------------------------------


def make_scene(seed: int, *, size: int = 128, n_objects: int = 1) -> Scene:
    """Generate the scene of ``seed``: same seed and options, same pixels, on every machine.

    Args:
        seed: non-negative integer; see ``TRAIN_SEEDS`` / ``EVAL_SEED_START`` for the ranges
            the bundled models were trained and evaluated on.
        size: image height and width in pixels (>= 48); object sizes scale with it.
        n_objects: 1, or 2 for a scene with two objects of different classes that do not overlap.

    Returns:
        A :class:`Scene`: ``image`` (size, size, 3) uint8, ``labels`` (n_objects ints),
        ``masks`` (n_objects, size, size) bool.

    Raises:
        ValueError: for a negative seed, a size below 48 or n_objects not in (1, 2).
    """
    seed = _check_seed(seed)
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 48:
        raise OptionError(f"size must be an int >= 48, got {size!r}")
    if n_objects not in (1, 2):
        raise OptionError(f"n_objects must be 1 or 2, got {n_objects!r}")
    size = int(size)
    rng = np.random.default_rng(seed)
    shape = (size, size)

    bg, kind = _background(size, rng)
    img = np.ascontiguousarray(bg, dtype=np.float32)  # (H, W, 3)
    _clutter(img, rng)

    s = size / 128.0
    labels: tuple[int, ...]
    if n_objects == 1:
        labels = (int(rng.integers(len(CLASS_NAMES))),)
        radii = [rng.uniform(15.0, 30.0) * s]
    else:
        a, b = rng.choice(len(CLASS_NAMES), size=2, replace=False)
        labels = (int(a), int(b))
        radii = [rng.uniform(15.0, 24.0) * s for _ in range(2)]

    centres = _place(radii, size, rng)
    masks = np.zeros((n_objects, size, size), bool)
    for k, (cls, r, (cy, cx)) in enumerate(zip(labels, radii, centres)):
        theta = rng.uniform(0, 2 * np.pi)
        masks[k] = _shape_mask(cls, cy, cx, r, theta, shape, rng)
        _paint(img, masks[k], rng)

    img += _noise(size, rng) * _NOISE_SIGMA
    image = np.clip(img, 0, 255).astype(np.uint8)
    return Scene(image=image, labels=labels, masks=masks, seed=seed, background=kind)


def _place(radii: list[float], size: int, rng: np.random.Generator) -> list[tuple[float, float]]:
    """Centres for objects of the given bounding radii, fully inside the image and (for two)
    at least ``_GAP`` apart. All centres are redrawn together until they fit; should that fail
    200 times (never seen at size 128), the radii shrink by 10 % in place and it tries again."""
    while True:
        for _ in range(200):
            centres = []
            for r in radii:
                cy, cx = rng.uniform(r + 2.0, size - r - 2.0, 2)
                centres.append((float(cy), float(cx)))
            if (
                len(centres) < 2
                or np.hypot(centres[0][0] - centres[1][0], centres[0][1] - centres[1][1]) >= radii[0] + radii[1] + _GAP
            ):
                return centres
        radii[:] = [0.9 * r for r in radii]  # pragma: no cover


def make_batch(
    seeds: Iterable[int], *, size: int = 128, n_objects: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate many scenes at once.

    Args:
        seeds: the scene seeds, in order.
        size, n_objects: as for :func:`make_scene`.

    Returns:
        ``images`` (N, size, size, 3) uint8, ``labels`` and ``masks``. With ``n_objects=1``,
        labels is (N,) int64 and masks (N, size, size) bool; with ``n_objects=2`` they keep the
        object axis: labels (N, 2) and masks (N, 2, size, size).
    """
    scenes = [make_scene(s, size=size, n_objects=n_objects) for s in seeds]
    if not scenes:
        raise OptionError("seeds is empty")
    images = np.stack([sc.image for sc in scenes])  # (N, H, W, 3)
    labels = np.array([sc.labels for sc in scenes], dtype=np.int64)  # (N, K)
    masks = np.stack([sc.masks for sc in scenes])  # (N, K, H, W)
    if n_objects == 1:
        labels, masks = labels[:, 0], masks[:, 0]
    return images, labels, masks


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise OptionError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)
