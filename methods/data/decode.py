"""Decoding an opened Pillow image within a memory budget, and turning it into small 8-bit RGB.

:func:`methods.data.images.load_image` opens a file (header only), then calls:

* :func:`decode_bytes` — what decoding will cost, from the header alone: Pillow's own storage
  (1, 2 or 4 bytes a pixel by mode) plus what the format's decoder holds besides (a TIFF strip or
  tile buffer, libwebp's canvases). :func:`check_budget` refuses a file whose estimate is over
  :data:`MAX_DECODE_BYTES` BEFORE a pixel is decoded;
* :func:`to_small_rgb` — after ``im.load()``: converts the decoded image to 8-bit in horizontal
  BANDS of about :data:`BAND_PIXELS` pixels, box-reduces each band by the integer factor that
  still leaves at least twice the target size (Pillow's ``thumbnail`` rule, ``reducing_gap=2``),
  and finishes with one Lanczos resize of the reduced picture. Nothing of the full size is made
  besides the decoded image itself: no full-size float copy, no full-size RGB copy;
* :func:`orient` — the EXIF orientation applied to the small result (a transposition commutes
  with the resize, so it is done last, on the small array).

High-depth images (16-bit, 32-bit int, float) are mapped to 8 bit by their actual finite range
(two passes over the bands: the range, then the mapping), see :func:`high_depth_to_uint8`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from methods.errors import ImageError

__all__ = [
    "MAX_DECODE_BYTES",
    "BAND_PIXELS",
    "REDUCING_GAP",
    "decode_bytes",
    "check_budget",
    "high_depth_to_uint8",
    "to_small_rgb",
    "orientation_of",
    "orient",
    "swaps_sides",
]

#: Default limit on the memory decoding may take, estimated from the header (512 MiB): an 80 MP
#: RGB photo (Pillow holds 4 bytes a pixel: 320 MB) fits; a file needing more is refused first.
MAX_DECODE_BYTES: int = 512 * 2**20

#: Pixels converted at once: each band's temporaries (float64 at most) stay around 32 MB.
BAND_PIXELS: int = 4_000_000

#: The box reduction keeps at least this many times the target size before the final Lanczos.
REDUCING_GAP: float = 2.0

_ONE_BYTE = ("1", "L", "P")
_HIGH_DEPTH = ("I", "F")
_ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")
_WEBP_EXTRA_CANVASES = 3  # libwebp's animation decoder: its current and previous canvas, then a bytes copy


def _storage_bytes_per_pixel(mode: str) -> int:
    """Bytes Pillow's core allocates per pixel for ``mode`` (RGB and every 2-4 band mode: 4)."""
    if mode in _ONE_BYTE:
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def _tiff_buffer_bytes(im: Image.Image) -> int:
    """The largest strip or tile buffer libtiff and Pillow hold while decoding a TIFF."""
    tags = getattr(im, "tag_v2", {})
    width, height = im.size
    samples = int(tags.get(277, 1) or 1)
    bits = tags.get(258, (8,))
    bits = max(int(b) for b in (bits if isinstance(bits, tuple) else (bits,))) if bits else 8
    raw_px = max(1, math.ceil(samples * bits / 8))
    if 322 in tags and 323 in tags:  # tiled
        pixels = int(tags[322]) * int(tags[323])
    else:
        pixels = min(int(tags.get(278, height) or height), height) * width
    return pixels * max(raw_px, 4)  # some layouts are read through an RGBA raster


def decode_bytes(im: Image.Image) -> int:
    """Estimated peak bytes of decoding ``im`` (opened, not loaded), from its header.

    Pillow's storage (``W*H*b``, b = 1 for 1/L/P, 2 for 16-bit, 4 otherwise), plus for TIFF the
    largest strip/tile buffer and for WebP libwebp's canvases (three more ``W*H*4``).

    Examples:
        >>> decode_bytes(Image.new("I;16", (100, 10)))
        2000
    """
    width, height = im.size
    total = width * height * _storage_bytes_per_pixel(im.mode)
    if im.format == "TIFF":
        total += _tiff_buffer_bytes(im)
    elif im.format == "WEBP":
        total += _WEBP_EXTRA_CANVASES * width * height * 4
    return total


def check_budget(im: Image.Image, what: str, max_bytes: int) -> None:
    """Refuse (ImageError) before decoding when :func:`decode_bytes` is over ``max_bytes``."""
    need = decode_bytes(im)
    if need > max_bytes:
        width, height = im.size
        raise ImageError(
            f"{what} would need about {need / 2**20:,.0f} MB of memory to decode ({width}x{height} "
            f"pixels, mode {im.mode}, {im.format}), more than the limit of {max_bytes / 2**20:,.0f} MB "
            "(max_decode_bytes). Downscale or re-save it (as an 8-bit PNG or JPEG), or pass a larger "
            "max_decode_bytes if you trust the file."
        )


# ----------------------------------------------------------------------------- conversion


def _range_of(im: Image.Image, rows: int) -> tuple[float, float] | None:
    """(min, max) of the finite values of a high-depth image, band by band (None if none)."""
    width, height = im.size
    lo, hi = math.inf, -math.inf
    for y in range(0, height, rows):
        a = np.asarray(im.crop((0, y, width, min(height, y + rows))))  # (rows, W) native dtype
        if a.dtype.kind == "f":
            a = a[np.isfinite(a)]
        if a.size:
            lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
    return (lo, hi) if lo <= hi else None


def high_depth_to_uint8(a: np.ndarray, mode: str, value_range: tuple[float, float] | None) -> np.ndarray:
    """One band of a 16-bit / 32-bit int / float image as uint8, by the image's finite range.

    ``value_range`` is (min, max) of the finite values of the WHOLE image (None: it has none).
    [min, max] maps linearly to [0, 255]; +inf becomes 255, NaN and -inf 0. A constant image has
    no range and is mapped by its nominal one (0..65535 for 16-bit, 0..1 for float, 0..255 clipped
    for 32-bit int).

    Deviation from Pillow: ``convert("L")`` clips I;16 / I / F values to 0..255, which turns most
    16-bit pictures white.

    Examples:
        >>> high_depth_to_uint8(np.array([[1000, 2000, 3000]], np.uint16), "I;16", (1000.0, 3000.0))
        array([[  0, 128, 255]], dtype=uint8)
    """
    out = np.array(a, dtype=np.float64)  # (rows, W): one band only, a copy
    if value_range is None:
        out[:] = 0.0
    else:
        lo, hi = value_range
        if hi > lo:
            out -= lo
            out /= hi - lo
            out *= 255.0
        elif mode.startswith("I;16"):
            out[:] = lo / 65535.0 * 255.0
        elif mode == "F":
            out[:] = np.clip(lo, 0.0, 1.0) * 255.0
        else:
            out[:] = np.clip(lo, 0.0, 255.0)
    if a.dtype.kind == "f":
        out[~np.isfinite(a)] = 0.0  # NaN and -inf
        out[np.isposinf(a)] = 255.0
    np.rint(out, out=out)
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in _ALPHA_MODES or (im.mode in ("P", "L", "RGB") and "transparency" in im.info)


def _converter(im: Image.Image, rows: int):
    """(output mode, band -> 8-bit band function) for ``im``'s mode."""
    mode = im.mode
    if mode in _HIGH_DEPTH or mode.startswith("I;16"):
        value_range = _range_of(im, rows)
        return "L", lambda band: Image.fromarray(high_depth_to_uint8(np.asarray(band), mode, value_range), "L")
    if _has_alpha(im):

        def composite(band: Image.Image) -> Image.Image:
            rgba = band.convert("RGBA")
            canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            canvas.alpha_composite(rgba)
            return canvas.convert("RGB")  # transparent pixels become white

        return "RGB", composite
    if mode == "L":
        return "L", lambda band: band
    if mode == "1":
        return "L", lambda band: band.convert("L")
    if mode == "RGB":
        return "RGB", lambda band: band
    return "RGB", lambda band: band.convert("RGB")  # P, CMYK, YCbCr, RGBX, LAB, HSV ...


def to_small_rgb(im: Image.Image, size: tuple[int, int], what: str) -> np.ndarray:
    """A decoded image as an (h, w, 3) uint8 RGB array of ``size`` = (w, h), band by band.

    Transparency is composited on white; palettes, CMYK, YCbCr ... go through Pillow's RGB
    conversion; high-depth modes through :func:`high_depth_to_uint8`. When ``size`` is smaller,
    each band is box-reduced by ``(fx, fy) = (W // (w * REDUCING_GAP), H // (h * REDUCING_GAP))``
    (at least 1) and the reduced picture is resized with Lanczos to ``size`` exactly.

    Raises:
        ImageError: the mode cannot be converted.
    """
    width, height = im.size
    tw, th = size
    fx = max(1, int(width / tw / REDUCING_GAP))
    fy = max(1, int(height / th / REDUCING_GAP))
    rows = max(fy, (BAND_PIXELS // max(width, 1)) // fy * fy)  # a multiple of fy
    try:
        out_mode, convert = _converter(im, rows)
        if (tw, th) == (width, height):
            out = np.empty((height, width, 3), np.uint8)  # (H, W, 3): the result itself
            for y in range(0, height, rows):
                band = np.asarray(convert(im.crop((0, y, width, min(height, y + rows)))))
                out[y : y + band.shape[0]] = band[:, :, None] if band.ndim == 2 else band
            return out
        reduced = Image.new(out_mode, (math.ceil(width / fx), math.ceil(height / fy)))
        for y in range(0, height, rows):
            band = convert(im.crop((0, y, width, min(height, y + rows))))
            reduced.paste(band.reduce((fx, fy)) if (fx, fy) != (1, 1) else band, (0, y // fy))
        small = reduced.resize((tw, th), Image.Resampling.LANCZOS, box=(0, 0, width / fx, height / fy))
    except (ValueError, OSError, TypeError) as exc:
        raise ImageError(
            f"Cannot convert {what} with pixel mode '{im.mode}' to RGB ({exc}). "
            "Re-save the image as an 8-bit RGB PNG or JPEG."
        ) from exc
    arr = np.asarray(small)  # (h, w) or (h, w, 3)
    return np.repeat(arr[:, :, None], 3, axis=2) if arr.ndim == 2 else np.array(arr)


# ----------------------------------------------------------------------------- orientation

_SWAPS = (5, 6, 7, 8)


def orientation_of(im: Image.Image) -> int:
    """The EXIF orientation (1..8) of ``im``; 1 when absent or unreadable (a malformed EXIF block
    must not make a photo unreadable)."""
    try:
        value = int(im.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - any EXIF parsing failure means "no orientation"
        return 1
    return value if 1 <= value <= 8 else 1


def swaps_sides(orientation: int) -> bool:
    """Whether the orientation exchanges width and height (a quarter turn or a transposition)."""
    return orientation in _SWAPS


def orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """``a`` (h, w, 3) shown as EXIF ``orientation`` says (Pillow's ``exif_transpose`` rule).

    Examples:
        >>> a = np.arange(6).reshape(2, 3, 1)
        >>> orient(a, 6)[:, :, 0].tolist()  # rotate 90 degrees clockwise
        [[3, 0], [4, 1], [5, 2]]
    """
    ops: dict[int, Any] = {
        2: lambda x: x[:, ::-1],
        3: lambda x: x[::-1, ::-1],
        4: lambda x: x[::-1],
        5: lambda x: x.transpose(1, 0, 2),
        6: lambda x: np.rot90(x, -1),
        7: lambda x: x.transpose(1, 0, 2)[::-1, ::-1],
        8: lambda x: np.rot90(x, 1),
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(a if op is None else op(a))
