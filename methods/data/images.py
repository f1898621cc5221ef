"""Safe image input: any reasonable picture in, an (H, W, 3) uint8 RGB array out.

Everything a user can upload goes through :func:`load_image`. It is defensive on purpose:

* only a fixed list of raster formats is opened (:data:`ALLOWED_FORMATS`); formats whose Pillow
  plugin runs an external program (EPS runs Ghostscript) or that are rarely photos are refused;
* the pixel count is checked from the header *before* any pixel is decoded (decompression bombs:
  a few KB of PNG that claim 100 000 x 100 000 pixels), against our own limit
  :data:`MAX_PIXELS`, without changing Pillow's global ``Image.MAX_IMAGE_PIXELS``;
* truncated and corrupt files are refused (Pillow's global ``ImageFile.LOAD_TRUNCATED_IMAGES`` is
  left as the process set it - False by default - and not mutated here);
* the memory decoding will take is estimated from the header and refused over
  :data:`MAX_DECODE_BYTES` (:mod:`methods.data.decode`), before decoding;
* a path must be a regular file: a FIFO or a device is refused, never waited on;
* EXIF orientation is applied, so a phone photo is shown the way the phone showed it;
* every pixel mode is turned into 8-bit RGB (see :func:`to_rgb_uint8`), in bands: 16-bit and float
  images are never converted to float at full size;
* large images are downscaled so that the long side is at most ``max_side`` (a box reduction per
  band, then one Lanczos resize).

Every refusal is an :class:`~methods.errors.ImageError` whose message says what was wrong and what
to do.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image

from methods._internal.files import open_regular
from methods.data.decode import MAX_DECODE_BYTES, check_budget, orient, orientation_of, swaps_sides, to_small_rgb
from methods.errors import ImageError, OptionError, WrongTypeError

__all__ = [
    "ALLOWED_FORMATS",
    "MAX_PIXELS",
    "MAX_DECODE_BYTES",
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


def image_digest(data: bytes | bytearray | memoryview) -> str:
    """SHA-256 of raw file bytes as 64 lowercase hex characters (a cache key for uploads).

    Raises:
        TypeError: ``data`` is not bytes-like.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WrongTypeError(f"image_digest expects the raw bytes of a file, got {type(data).__name__}")
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
    """Turn ``source`` into a seekable binary stream; the bool says whether we must close it.

    A path must be a regular file (:func:`methods._internal.files.open_regular`): a FIFO or a device is
    refused at once instead of blocking or reading forever.
    """
    if isinstance(source, (str, Path)):
        return open_regular(source, ImageError, "image"), True
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


def to_rgb_uint8(im: Image.Image) -> np.ndarray:
    """Convert a decoded Pillow image of any common mode to an (H, W, 3) uint8 RGB array.

    * ``1``, ``L``, ``P`` without transparency, ``CMYK``, ``YCbCr``, ``RGBX``...: Pillow's
      conversion to RGB (CMYK JPEGs written by Adobe tools are un-inverted by Pillow).
    * Anything with transparency (``LA``, ``PA``, ``P`` with a transparency entry, ``RGBA``,
      ``La``, ``RGBa``): alpha-composited on **white**, so transparent pixels are white.
    * ``I;16*``, ``I``, ``F`` (16-bit, 32-bit int, float): scaled to 8 bit by the actual value
      range, not clipped (see :func:`methods.data.decode.high_depth_to_uint8`), then grey -> RGB.

    The conversion runs in bands (:func:`methods.data.decode.to_small_rgb`): no full-size float
    copy is made. Colour profiles (ICC) are not applied; pixel values are taken as sRGB.

    Raises:
        ImageError: the mode cannot be converted.
    """
    return to_small_rgb(im, im.size, "an image")


def load_image(
    source: ImageSource,
    *,
    max_side: int = 2048,
    max_pixels: int = MAX_PIXELS,
    max_decode_bytes: int = MAX_DECODE_BYTES,
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
        max_decode_bytes: keyword-only; a file whose decoding would take more memory than this
            (estimated from the header: :func:`methods.data.decode.decode_bytes`) is refused
            before decoding. Default :data:`MAX_DECODE_BYTES` (512 MiB). Converting and
            downscaling after decoding work in bands and add little to it.

    Returns:
        ``np.ndarray`` of shape (H, W, 3), dtype uint8, RGB, C-contiguous and writable.

    Multi-frame files (animated GIF / WebP / PNG, multi-page TIFF): only the **first** frame is
    used. EXIF orientation is applied; a malformed EXIF block is ignored rather than fatal.

    Raises:
        ImageError: empty file, not an image / not an allowed format, truncated or corrupt data,
            zero width or height, more than ``max_pixels`` pixels or ``max_decode_bytes`` of
            decoding memory, unconvertible pixel mode, missing or unreadable path, a path that
            is not a regular file (a FIFO, a device).
        TypeError: ``source`` is none of the accepted types.
        ValueError: ``max_side``, ``max_pixels`` or ``max_decode_bytes`` is not a positive int.

    Examples:
        >>> import io; from PIL import Image
        >>> buf = io.BytesIO(); Image.new("I;16", (4000, 10), 300).save(buf, "PNG")
        >>> load_image(buf.getvalue(), max_side=400).shape
        (1, 400, 3)
    """
    for arg, value in (("max_side", max_side), ("max_pixels", max_pixels), ("max_decode_bytes", max_decode_bytes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise OptionError(f"load_image({arg}=...) must be a positive int, got {value!r}")
    what = _describe(source)
    stream, must_close = _open_stream(source)
    try:
        stream.seek(0, io.SEEK_END)
        n_bytes = stream.tell()
        stream.seek(0)
        if n_bytes == 0:
            raise ImageError(f"{_cap(what)} is empty (0 bytes). Choose or upload an image file (PNG, JPEG, ...).")
        return _decode(stream, what, max_side=max_side, max_pixels=max_pixels, max_bytes=max_decode_bytes)
    finally:
        if must_close:
            stream.close()


def _decode(stream: BinaryIO, what: str, *, max_side: int, max_pixels: int, max_bytes: int) -> np.ndarray:
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
    except (OSError, SyntaxError, ValueError, EOFError, TypeError) as exc:
        raise ImageError(
            f"{_cap(what)} has a corrupt image header ({type(exc).__name__}: {exc}). Re-export or re-download it."
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
        check_budget(im, _cap(what), max_bytes)  # from the header: nothing is decoded yet
        try:
            im.seek(0)
            im.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(f"{_cap(what)} is too large to decode safely ({exc}). Downscale it first.") from exc
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError, TypeError) as exc:
            raise ImageError(
                f"The image data in {what} is incomplete or corrupt ({type(exc).__name__}: {exc}). The file may be "
                "truncated (e.g. an interrupted download or upload); re-download or re-export it."
            ) from exc

        orientation = orientation_of(im)  # after load(): PNG's getexif() decodes the image
        # the size it is shown at (after EXIF orientation), then the same size before orientation
        shown = (im.height, im.width) if swaps_sides(orientation) else im.size
        tw, th = _target_size(*shown, max_side)
        rgb = to_small_rgb(im, (th, tw) if swaps_sides(orientation) else (tw, th), what)  # (h, w, 3)
    return orient(rgb, orientation)
