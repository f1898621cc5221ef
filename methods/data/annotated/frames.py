"""The pixel frame annotations live in: an image's header size, its boxes, and reading mask PNGs.

Boxes are ``(x0, y0, x1, y1)`` in continuous pixel coordinates (pixel ``(i, j)`` is
``[j, j + 1) x [i, i + 1)``; ``x1`` is the right EDGE). An image whose EXIF orientation is not
the identity is refused: annotation tools disagree on whether their coordinates are in the stored
or the rotated picture, and guessing would score maps against a turned mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from methods._internal.files import open_regular
from methods.data.images import MAX_PIXELS, load_image
from methods.errors import AnnotationError, ImageError

__all__ = ["header_size", "load_framed", "check_box", "box_mask", "read_index_mask", "resize_nearest"]

_ORIENTATION = 0x0112


def _orientation(im: Image.Image) -> int:
    tag = getattr(im, "tag_v2", None)  # TIFF keeps it among its own tags
    if tag is not None and _ORIENTATION in tag:
        return int(tag[_ORIENTATION])
    raw = im.info.get("exif")
    if not raw:
        return 1
    exif = Image.Exif()
    try:
        exif.load(raw)
    except Exception:  # a malformed EXIF block: load_image ignores it too
        return 1
    return int(exif.get(_ORIENTATION, 1) or 1)


def header_size(path: str) -> tuple[int, int]:
    """``(width, height)`` of an image file from its header (no pixel is decoded).

    Raises:
        AnnotationError: the file is missing or not a readable image, or carries an EXIF
            orientation other than 1 (module docstring).
    """
    try:
        with open_regular(path, ImageError, "image") as f, Image.open(f) as im:
            size, orientation = im.size, _orientation(im)
    except ImageError as exc:
        raise AnnotationError(f"{exc} (an image the annotations name)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise AnnotationError(f"the image '{path}' cannot be read: {type(exc).__name__}: {exc}") from exc
    if orientation != 1:
        raise AnnotationError(
            f"the image '{path}' carries EXIF orientation {orientation}: annotation tools disagree on whether boxes "
            "refer to the stored or the rotated picture, so GradLens does not guess. Re-save the image with the "
            "rotation applied (and the annotations in that frame) or with the orientation tag removed."
        )
    return int(size[0]), int(size[1])


def load_framed(
    path: str, frame: Sequence[int] | None, max_side: int, where: str
) -> tuple[np.ndarray, tuple[int, int]]:
    """The image as (h, w, 3) uint8 (downscaled to ``max_side``) and its header ``(W, H)``.

    Raises:
        AnnotationError: missing/unreadable file, EXIF rotation, or a header size that is not the
            ``frame`` (width, height) the annotations give.
    """
    size = header_size(path)
    if frame is not None and tuple(int(v) for v in frame) != size:
        raise AnnotationError(
            f"{where}: the image '{path}' is {size[0]}x{size[1]} (width x height) but the annotations say "
            f"{int(frame[0])}x{int(frame[1])}; they were made for another version of the picture"
        )
    try:
        image = load_image(path, max_side=max_side)
    except ImageError as exc:
        raise AnnotationError(f"{where}: {exc}") from exc
    return image, size


def check_box(box: object, width: int, height: int, tolerance: float, where: str) -> tuple[float, float, float, float]:
    """An ``(x0, y0, x1, y1)`` box checked against a ``width`` x ``height`` image and clipped to it.

    Raises:
        AnnotationError: not four finite numbers, empty (x1 <= x0 or y1 <= y0), or further than
            ``tolerance`` pixels outside the image (the message names the box and the image size).

    Examples:
        >>> check_box([-0.5, 0, 10.4, 5], 10, 5, 1.0, "a.xml")
        (0.0, 0.0, 10.0, 5.0)
    """
    if not (isinstance(box, Sequence) and len(box) == 4) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in box
    ):
        raise AnnotationError(f"{where}: a box must be 4 finite numbers; got {box!r}")
    x0, y0, x1, y1 = (float(v) for v in box)
    if x1 <= x0 or y1 <= y0:
        raise AnnotationError(f"{where}: the box (x0, y0, x1, y1) = {(x0, y0, x1, y1)} is empty (x1 <= x0 or y1 <= y0)")
    t = float(tolerance)
    if x0 < -t or y0 < -t or x1 > width + t or y1 > height + t:
        raise AnnotationError(
            f"{where}: the box (x0, y0, x1, y1) = {(x0, y0, x1, y1)} lies outside the image, which is "
            f"{width}x{height} (width x height; {t:g} px of tolerance). Fix the box or the image."
        )
    return (max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1))


def box_mask(box: Sequence[float], height: int, width: int, scale: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """The (height, width) bool mask of every pixel a box touches (a box smaller than a pixel
    still marks one), after scaling the box by ``(sx, sy)``.

    Examples:
        >>> box_mask((1, 0, 2.5, 1), 2, 4).astype(int).tolist()
        [[0, 1, 1, 0], [0, 0, 0, 0]]
    """
    sx, sy = scale
    x0, y0, x1, y1 = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
    c0, r0 = min(width - 1, int(np.floor(x0))), min(height - 1, int(np.floor(y0)))
    c1, r1 = max(c0 + 1, min(width, int(np.ceil(x1)))), max(r0 + 1, min(height, int(np.ceil(y1))))
    mask = np.zeros((height, width), dtype=bool)
    mask[r0:r1, c0:c1] = True
    return mask


def resize_nearest(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """A (H, W) array sampled at the centres of a (height, width) grid (nearest neighbour).

    Examples:
        >>> resize_nearest(np.arange(16).reshape(4, 4), 2, 2).tolist()
        [[5, 7], [13, 15]]
    """
    h, w = mask.shape
    if (h, w) == (height, width):
        return mask
    rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    return mask[rows[:, None], cols[None, :]]


def read_index_mask(path: str, max_bytes: int, where: str) -> np.ndarray:
    """A label-index mask PNG as (H, W) int64 values (a palette PNG gives its indices, never colours).

    Raises:
        AnnotationError: missing, larger than ``max_bytes``, not a PNG, over the pixel limit, or a
            colour (RGB) PNG, whose values are not class indices.
    """
    try:
        f = open_regular(path, ImageError, "mask")
    except ImageError as exc:
        raise AnnotationError(f"{where}: {exc}") from exc
    with f:
        f.seek(0, 2)
        if f.tell() > max_bytes:
            raise AnnotationError(f"{where}: the mask '{path}' is {f.tell()} bytes, over max_file_bytes={max_bytes}")
        f.seek(0)
        try:
            with Image.open(f, formats=["PNG"]) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise AnnotationError(f"{where}: the mask '{path}' has {im.width}x{im.height} pixels, too many")
                if im.mode not in ("P", "L", "1", "I", "I;16"):
                    raise AnnotationError(
                        f"{where}: the mask '{path}' is a {im.mode} PNG; a label-index mask is one channel "
                        "(mode P, L, I or I;16) whose pixel values are class indices"
                    )
                im.load()
                return np.asarray(im).astype(np.int64)
        except AnnotationError:
            raise
        except (OSError, SyntaxError, ValueError) as exc:
            raise AnnotationError(f"{where}: the mask '{path}' is not a readable PNG: {exc}") from exc
