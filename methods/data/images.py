"""Safe image input: any reasonable picture in, an (H, W, 3) uint8 RGB array out.

Everything a user can upload goes through :func:`load_image`. It is defensive on purpose:

* only a fixed list of raster formats is opened (:data:`ALLOWED_FORMATS`); formats whose Pillow
  plugin runs an external program (EPS runs Ghostscript) or that are rarely photos are refused;
* the pixel count is checked from the header *before* any pixel is decoded (decompression bombs:
  a few KB of PNG that claim 100 000 x 100 000 pixels), against our own limit
  :data:`MAX_PIXELS`, without changing Pillow's global ``Image.MAX_IMAGE_PIXELS``;
* truncated and corrupt files are refused (Pillow's global ``ImageFile.LOAD_TRUNCATED_IMAGES`` is
  left as the process set it - False by default - and not mutated here);
* EXIF orientation is applied, so a phone photo is shown the way the phone showed it;
* every pixel mode is turned into 8-bit RGB (see :func:`to_rgb_uint8`);
* large images are downscaled so that the long side is at most ``max_side``.

Every refusal is an :class:`~methods.errors.ImageError` whose message says what was wrong and what
to do.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps

from methods.errors import ImageError, OptionError, WrongTypeError

__all__ = [
    "ALLOWED_FORMATS",
    "MAX_PIXELS",
    "ImageSource",
    "load_image",
    "to_rgb_uint8",
    "image_digest",
]

#: Pillow format names :func:`load_image` will open. Deliberately short: common photo/raster
#: formats only. MPO is what Pillow calls the JPEG files many phones write.
ALLOWED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "MPO", "GIF", "BMP", "TIFF", "WEBP", "PPM")

#: Default limit on width x height of an input image, checked before decoding (80 megapixels,
#: a little below Pillow's own warning threshold of ~89.5 MP).
MAX_PIXELS: int = 80_000_000

#: What :func:`load_image` accepts: a path, the raw bytes, or a binary file-like object
#: (including Streamlit's ``UploadedFile``, which has ``getvalue()``).
ImageSource = Union[str, Path, bytes, bytearray, memoryview, BinaryIO]

_WHITE = (255, 255, 255)


def image_digest(data: bytes | bytearray | memoryview) -> str:
    """SHA-256 of raw file bytes as 64 lowercase hex characters (a cache key for uploads).

    Raises:
        TypeError: ``data`` is not bytes-like.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WrongTypeError(
            f"image_digest expects the raw bytes of a file, got {type(data).__name__}"
        )
    return hashlib.sha256(data).hexdigest()


def _describe(source: object) -> str:
    """A short human name for ``source`` used in error messages."""
    if isinstance(source, (str, Path)):
        return f"the file '{source}'"
    name = getattr(source, "name", None)
    if isinstance(name, str) and name:
        return f"the file '{name}'"
    return "the uploaded data"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _registered_formats() -> list[str]:
    """ALLOWED_FORMATS whose Pillow plugin is present (``Image.init`` registers all plugins once)."""
    Image.init()
    return [f for f in ALLOWED_FORMATS if f in Image.OPEN]


def _open_stream(source: ImageSource) -> tuple[BinaryIO, bool]:
    """Turn ``source`` into a seekable binary stream; the bool says whether we must close it."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            return open(path, "rb"), True
        except FileNotFoundError as exc:
            raise ImageError(f"No such image file: '{path}'. Check the path.") from exc
        except IsADirectoryError as exc:
            raise ImageError(f"'{path}' is a folder, not an image file.") from exc
        except OSError as exc:
            raise ImageError(f"Cannot read the image file '{path}': {exc}.") from exc
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(source)), True
    if hasattr(source, "getvalue"):  # io.BytesIO, Streamlit UploadedFile: position-independent
        data = source.getvalue()
    elif hasattr(source, "read"):
        data = source.read()
    else:
        raise WrongTypeError(
            "load_image(source=...) expects a path (str or Path), bytes, or a binary file-like "
            f"object with .read(), got {type(source).__name__}"
        )
    if isinstance(data, str):
        raise WrongTypeError("load_image got a text stream; open the file in binary mode ('rb')")
    return io.BytesIO(bytes(data)), True


def _target_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(w, h) after scaling so the long side is exactly ``max_side`` (if it was larger)."""
    long_side = max(width, height)
    if long_side <= max_side:
        return width, height
    scale = max_side / long_side
    if width >= height:
        return max_side, max(1, round(height * scale))
    return max(1, round(width * scale)), max_side


def _high_depth_to_uint8(im: Image.Image) -> np.ndarray:
    """Map a 16-bit / 32-bit int / float single-channel image to uint8 by its actual range.

    Deviation from Pillow: ``Image.convert("L")`` clips I;16 / I / F values to 0..255, which turns
    most 16-bit pictures white. Here the finite range [min, max] maps linearly to [0, 255];
    non-finite values (NaN, +-inf) become 0 / 255 / 0 for NaN / +inf / -inf. A constant image has
    no range; it is mapped by its nominal range instead (0..65535 for 16-bit, 0..1 for float,
    0..255 clipped for 32-bit int).
    """
    a = np.asarray(im, dtype=np.float64)  # (H, W)
    finite = np.isfinite(a)
    out = np.zeros(a.shape, dtype=np.float64)
    if finite.any():
        lo = float(a[finite].min())
        hi = float(a[finite].max())
        if hi > lo:
            out[finite] = (a[finite] - lo) / (hi - lo) * 255.0
        elif im.mode.startswith("I;16"):
            out[finite] = lo / 65535.0 * 255.0
        elif im.mode == "F":
            out[finite] = np.clip(lo, 0.0, 1.0) * 255.0
        else:
            out[finite] = np.clip(lo, 0.0, 255.0)
    out[np.isposinf(a)] = 255.0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def to_rgb_uint8(im: Image.Image) -> np.ndarray:
    """Convert a decoded Pillow image of any common mode to an (H, W, 3) uint8 RGB array.

    * ``1``, ``L``, ``P`` without transparency, ``CMYK``, ``YCbCr``, ``RGBX``...: Pillow's
      conversion to RGB (CMYK JPEGs written by Adobe tools are un-inverted by Pillow).
    * Anything with transparency (``LA``, ``PA``, ``P`` with a transparency entry, ``RGBA``,
      ``La``, ``RGBa``): alpha-composited on **white**, so transparent pixels are white.
    * ``I;16*``, ``I``, ``F`` (16-bit, 32-bit int, float): scaled to 8 bit by the actual value
      range, not clipped (see :func:`_high_depth_to_uint8`), then grey -> RGB.

    Colour profiles (ICC) are not applied; pixel values are taken as sRGB.

    Raises:
        ImageError: the mode cannot be converted.
    """
    mode = im.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        grey = _high_depth_to_uint8(im)  # (H, W)
        return np.repeat(grey[:, :, None], 3, axis=2)
    has_alpha = mode in ("LA", "La", "PA", "RGBA", "RGBa") or (
        mode in ("P", "L", "RGB") and "transparency" in im.info
    )
    try:
        if has_alpha:
            rgba = im.convert("RGBA")
            canvas = Image.new("RGBA", rgba.size, _WHITE + (255,))
            canvas.alpha_composite(rgba)
            rgb = canvas.convert("RGB")
        else:
            rgb = im if mode == "RGB" else im.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageError(
            f"Cannot convert an image with pixel mode '{mode}' to RGB ({exc}). "
            "Re-save the image as an 8-bit RGB PNG or JPEG."
        ) from exc
    return np.array(rgb, dtype=np.uint8)  # (H, W, 3), a writable copy


def load_image(
    source: ImageSource,
    *,
    max_side: int = 2048,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """Read an image safely and return it as an (H, W, 3) uint8 RGB array.

    Args:
        source: a path (``str`` / ``Path``), the file's bytes, or a binary file-like object. An
            object with ``getvalue()`` (``io.BytesIO``, Streamlit's ``UploadedFile``) is read in
            full regardless of its current position; otherwise ``read()`` is called once.
        max_side: keyword-only; if the (EXIF-rotated) image's longer side exceeds this, the image
            is downscaled (Lanczos, aspect ratio kept) so the longer side equals ``max_side``
            exactly. Must be >= 1.
        max_pixels: keyword-only; width x height from the file header above this is refused before
            decoding (decompression-bomb guard). Default :data:`MAX_PIXELS` (80 MP).

    Returns:
        ``np.ndarray`` of shape (H, W, 3), dtype uint8, RGB, C-contiguous and writable.

    Multi-frame files (animated GIF / WebP / PNG, multi-page TIFF): only the **first** frame is
    used. EXIF orientation is applied; a malformed EXIF block is ignored rather than fatal.

    Raises:
        ImageError: empty file, not an image / not an allowed format, truncated or corrupt data,
            zero width or height, more than ``max_pixels`` pixels, unconvertible pixel mode,
            missing or unreadable path.
        TypeError: ``source`` is none of the accepted types.
        ValueError: ``max_side`` or ``max_pixels`` is not a positive int.
    """
    for arg, value in (("max_side", max_side), ("max_pixels", max_pixels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise OptionError(f"load_image({arg}=...) must be a positive int, got {value!r}")
    what = _describe(source)
    stream, must_close = _open_stream(source)
    try:
        stream.seek(0, io.SEEK_END)
        n_bytes = stream.tell()
        stream.seek(0)
        if n_bytes == 0:
            raise ImageError(
                f"{_cap(what)} is empty (0 bytes). Choose or upload an image file "
                "(PNG, JPEG, ...)."
            )
        return _decode(stream, what, max_side=max_side, max_pixels=max_pixels)
    finally:
        if must_close:
            stream.close()


def _decode(stream: BinaryIO, what: str, *, max_side: int, max_pixels: int) -> np.ndarray:
    formats = ", ".join(f for f in ALLOWED_FORMATS if f != "MPO")
    try:
        im = Image.open(stream, formats=_registered_formats())
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard fired first (its global limit, or warnings turned into errors).
        raise ImageError(
            f"{_cap(what)} is too large to open safely ({exc}). This guards against "
            "'decompression bomb' files. Downscale the image before loading it."
        ) from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageError(
            f"{_cap(what)} is not an image GradLens can read: the format is not recognised, or "
            "the header is invalid (for example zero width or height). Supported formats: "
            f"{formats}. If it is a picture in another format, re-save it as PNG or JPEG."
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(
            f"{_cap(what)} has a corrupt image header ({exc}). Re-export or re-download it."
        ) from exc

    with im:
        width, height = im.size
        if width <= 0 or height <= 0:
            raise ImageError(
                f"{_cap(what)} has zero width or height ({width}x{height}); there is "
                "nothing to show. Re-export the image."
            )
        if width * height > max_pixels:
            raise ImageError(
                f"{_cap(what)} claims {width}x{height} = {width * height / 1e6:.1f} "
                f"megapixels, more than the limit of {max_pixels / 1e6:g} MP (max_pixels). This "
                "guards against 'decompression bomb' files. Downscale the image before loading "
                "it, or pass a larger max_pixels if you trust the file."
            )
        if im.format in ("JPEG", "MPO"):
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that still covers the target:
            # a 50 MP photo then never exists at full size in memory. draft() keeps each side
            # >= the requested size; the exact resize happens below. The box is made square so
            # it is valid whichever way EXIF rotates the picture.
            tw, th = _target_size(width, height, max_side)
            box = max(tw, th)
            if box < max(width, height):
                im.draft("RGB", (box, box))
        try:
            im.seek(0)
            im.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(
                f"{_cap(what)} is too large to decode safely ({exc}). Downscale it first."
            ) from exc
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
            raise ImageError(
                f"The image data in {what} is incomplete or corrupt ({exc}). The file may be "
                "truncated (e.g. an interrupted download or upload); re-download or re-export it."
            ) from exc

        try:
            oriented = ImageOps.exif_transpose(im)
        except Exception:  # noqa: BLE001 - a malformed EXIF block must not make a photo unreadable
            oriented = im
        if oriented is None:  # only happens with in_place=True; kept for type-checkers
            oriented = im

        tw, th = _target_size(*oriented.size, max_side)
        if (tw, th) != oriented.size:
            if oriented.mode not in ("RGB", "RGBA", "L", "LA"):
                # Resample after conversion so palettes / 16-bit ranges are handled first.
                rgb = to_rgb_uint8(oriented)
                oriented = Image.fromarray(rgb)
            oriented = oriented.resize((tw, th), Image.Resampling.LANCZOS, reducing_gap=3.0)
        rgb = to_rgb_uint8(oriented)
    return np.ascontiguousarray(rgb)
