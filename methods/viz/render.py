"""Turn a normalized map into pictures: grayscale, colormap heatmap, overlay on the image.

These are the four views of the original notebook (original, grayscale map, heatmap, overlay),
as uint8 RGB arrays at the image's own size. The map is resized with bilinear interpolation
(OpenCV's half-pixel convention, the same as ``align_corners=False``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from methods.errors import InputError, OptionError

__all__ = [
    "COLORMAPS",
    "DIVERGING",
    "diverging_lut",
    "Views",
    "resize_map",
    "to_uint8",
    "grayscale",
    "heatmap",
    "overlay",
    "render_views",
]

DIVERGING = "diverging"
"""The colormap signed maps are drawn with (:func:`methods.viz.ranges.display_colormap`)."""


def diverging_lut() -> np.ndarray:
    """A blue - white - red colormap as an OpenCV lookup table (256, 1, 3) uint8, BGR.

    Entry ``i`` interpolates linearly in RGB between blue (40, 80, 200) at 0, near-white
    (240, 240, 240) at 127.5 and red (190, 30, 40) at 255, so a value at the middle of the display
    range — zero for a signed map drawn on ``[-a, a]`` — is (near) white, negatives are blue and
    positives red. Entries 127 and 128 are the two closest to white.

    Examples:
        >>> lut = diverging_lut()
        >>> lut.shape, lut[0, 0, ::-1].tolist(), lut[255, 0, ::-1].tolist()
        ((256, 1, 3), [40, 80, 200], [190, 30, 40])
    """
    t = np.arange(256, dtype=np.float64) / 255.0  # (256,)
    blue, white, red = np.array([40.0, 80, 200]), np.array([240.0, 240, 240]), np.array([190.0, 30, 40])
    low = blue + (white - blue) * np.clip(t / 0.5, 0, 1)[:, None]  # (256, 3)
    high = white + (red - white) * np.clip((t - 0.5) / 0.5, 0, 1)[:, None]
    rgb = np.where((t < 0.5)[:, None], low, high)
    return np.round(rgb[:, ::-1]).astype(np.uint8)[:, None, :]  # (256, 1, 3) BGR


COLORMAPS: dict[str, int | np.ndarray] = {
    "jet": cv2.COLORMAP_JET,
    "turbo": cv2.COLORMAP_TURBO,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "inferno": cv2.COLORMAP_INFERNO,
    "magma": cv2.COLORMAP_MAGMA,
    "plasma": cv2.COLORMAP_PLASMA,
    "cividis": cv2.COLORMAP_CIVIDIS,
    "hot": cv2.COLORMAP_HOT,
    "bone": cv2.COLORMAP_BONE,
    "parula": cv2.COLORMAP_PARULA,
    DIVERGING: diverging_lut(),
}
"""Colormap name -> OpenCV colormap id (or lookup table: ``"diverging"``, for signed maps)."""


@dataclass(frozen=True)
class Views:
    """The four pictures of one explanation, uint8, at the image's size."""

    original: np.ndarray  # (H, W, 3)
    grayscale: np.ndarray  # (H, W)
    heatmap: np.ndarray  # (H, W, 3)
    overlay: np.ndarray  # (H, W, 3)


def _as_map(m) -> np.ndarray:
    arr = np.asarray(m.detach().cpu().numpy() if hasattr(m, "detach") else m, dtype=np.float32)
    if arr.ndim != 2:
        raise InputError(f"a map must be 2-D (h, w); got shape {arr.shape}")
    return np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)


def resize_map(m, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an (h, w) map to ``size`` = (H, W); float32."""
    arr = _as_map(m)
    height, width = int(size[0]), int(size[1])
    if arr.shape == (height, width):
        return arr.copy()
    return cv2.resize(arr, (width, height), interpolation=cv2.INTER_LINEAR)


def to_uint8(m, value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Map values in ``value_range`` linearly to 0..255 (clipped), uint8.

    Use ``value_range=(-1, 1)`` for signed maps from ``normalize(mode="max", relu=False)``.
    """
    lo, hi = value_range
    if not hi > lo:
        raise OptionError(f"value_range={value_range!r} must have high > low")
    arr = (_as_map(m) - lo) / (hi - lo)
    return np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)


def _colormap_id(colormap: str) -> int | np.ndarray:
    if colormap not in COLORMAPS:
        raise OptionError(f"colormap={colormap!r} is not one of {sorted(COLORMAPS)}")
    return COLORMAPS[colormap]


def grayscale(m, size: tuple[int, int], *, value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """The map as a grayscale image (H, W) uint8, white = high."""
    return to_uint8(resize_map(m, size), value_range)


def _colorize(gray: np.ndarray, colormap: str) -> np.ndarray:
    """An (H, W) uint8 picture through a colormap: (H, W, 3) uint8 RGB."""
    bgr = cv2.applyColorMap(gray, _colormap_id(colormap))
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _blend(img: np.ndarray, heat: np.ndarray, alpha: float) -> np.ndarray:
    """``(1 - alpha) * img + alpha * heat``, rounded to uint8."""
    if not 0.0 <= alpha <= 1.0:
        raise OptionError(f"alpha={alpha!r} must be in [0, 1]")
    blended = (1.0 - alpha) * img.astype(np.float32) + alpha * heat.astype(np.float32)
    return np.round(np.clip(blended, 0, 255)).astype(np.uint8)


def heatmap(
    m, size: tuple[int, int], *, colormap: str = "jet", value_range: tuple[float, float] = (0.0, 1.0)
) -> np.ndarray:
    """The map through a colormap, (H, W, 3) uint8 RGB."""
    return _colorize(grayscale(m, size, value_range=value_range), colormap)


def overlay(
    image: np.ndarray,
    m,
    *,
    colormap: str = "jet",
    alpha: float = 0.5,
    value_range: tuple[float, float] = (0.0, 1.0),
    placement=None,
) -> np.ndarray:
    """``(1 - alpha) * image + alpha * heatmap``, (H, W, 3) uint8 RGB at the image's size
    (``placement``: the map drawn where the model input lies on ``image``, :func:`render_views`)."""
    if not 0.0 <= alpha <= 1.0:
        raise OptionError(f"alpha={alpha!r} must be in [0, 1]")
    if placement is not None:
        return render_views(
            image, m, colormap=colormap, alpha=alpha, value_range=value_range, placement=placement
        ).overlay
    img = _as_image(image)
    return _blend(img, heatmap(m, img.shape[:2], colormap=colormap, value_range=value_range), alpha)


def _as_image(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise InputError(f"image must be (H, W, 3) uint8 RGB; got shape {img.shape}, dtype {img.dtype}")
    return img


def _placed(m, size: tuple[int, int], placement) -> tuple[np.ndarray, np.ndarray | None]:
    """The map at the picture's size, and where the model saw nothing of it (None: it saw all).

    ``placement`` (:class:`methods.data.placement.Placement`, from ``LoadedModel.placement``) puts
    a map of the model input onto the picture it came from (a centre crop leaves a border unseen)."""
    if placement is None or placement.mode == "squash":  # the whole picture: the plain resize
        return resize_map(m, size), None
    if tuple(placement.image_size) != tuple(size):
        raise InputError(f"the placement is for a {placement.image_size} picture, the image is {tuple(size)}")
    placed = placement.onto(_as_map(m))  # (H, W), NaN outside what the model saw
    outside = np.isnan(placed)
    return np.nan_to_num(placed, nan=0.0), (outside if outside.any() else None)


#: How a part of the picture the model did not see is drawn: the picture dimmed to this share,
#: and a light grey in the grayscale and heatmap views ("not explained").
UNSEEN_DIM = 0.35
UNSEEN_GREY = 215


def render_views(
    image: np.ndarray,
    m,
    *,
    colormap: str = "jet",
    alpha: float = 0.5,
    value_range: tuple[float, float] = (0.0, 1.0),
    placement=None,
) -> Views:
    """All four views of a normalized map ``m`` (h, w) over ``image`` (H, W, 3) uint8.

    The map is resized and scaled once; the heatmap is coloured once and the overlay is blended
    from that same heatmap (equal to calling :func:`grayscale`, :func:`heatmap` and :func:`overlay`).

    With ``placement`` (``LoadedModel.placement(image.shape[:2])``), ``image`` is the user's own
    picture and the map (which covers the model input) is drawn where that input lies on it; a
    part the model did not see (outside a centre crop) is not explained: dimmed to
    :data:`UNSEEN_DIM` in the overlay, light grey in the grayscale and heatmap views.
    """
    img = _as_image(image)
    placed, outside = _placed(m, img.shape[:2], placement)
    gray = to_uint8(placed, value_range)  # (H, W)
    heat = _colorize(gray, colormap)  # (H, W, 3)
    over = _blend(img, heat, alpha)
    if outside is not None:
        gray[outside] = UNSEEN_GREY
        heat[outside] = UNSEEN_GREY
        over[outside] = np.round(img[outside].astype(np.float32) * UNSEEN_DIM).astype(np.uint8)
    return Views(original=img.copy(), grayscale=gray, heatmap=heat, overlay=over)
