"""Tests for methods/images.py: a corpus of bad and unusual files, generated in the test."""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from methods.data.images import ALLOWED_FORMATS, MAX_PIXELS, image_digest, load_image
from methods.errors import GradLensError, ImageError

# ----------------------------------------------------------------------------- helpers


def _encode(im: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR claims width x height RGB pixels; the pixel data is a few bytes.

    This is the shape of a decompression bomb: the header promises far more pixels than the file
    could hold. Nothing may be decoded before the size check refuses it.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit, colour type 2 = RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + _png_chunk(b"IEND", b"")
    )


def _rgb(h: int, w: int, colour=(128, 128, 128)) -> np.ndarray:
    a = np.empty((h, w, 3), np.uint8)
    a[:] = colour
    return a


def _assert_rgb_uint8(a: np.ndarray) -> None:
    assert a.dtype == np.uint8
    assert a.ndim == 3 and a.shape[2] == 3
    assert a.flags.c_contiguous and a.flags.writeable


# ----------------------------------------------------------------------------- sources


def test_accepts_path_str_bytes_and_file_objects(tmp_path: Path):
    a = np.random.default_rng(0).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    data = _encode(Image.fromarray(a), "PNG")
    p = tmp_path / "x.png"
    p.write_bytes(data)

    results = [
        load_image(p),
        load_image(str(p)),
        load_image(data),
        load_image(bytearray(data)),
        load_image(memoryview(data)),
        load_image(io.BytesIO(data)),
    ]
    with open(p, "rb") as fh:  # a real file object: has read() but no getvalue()
        results.append(load_image(fh))
    for r in results:
        _assert_rgb_uint8(r)
        np.testing.assert_array_equal(r, a)  # PNG is lossless: exact pixels


def test_upload_object_read_from_start_regardless_of_position():
    """Streamlit's UploadedFile is a BytesIO subclass with a .name; its position may be anywhere."""

    class FakeUpload(io.BytesIO):
        name = "holiday.png"

    a = _rgb(5, 7, (10, 20, 30))
    up = FakeUpload(_encode(Image.fromarray(a), "PNG"))
    up.read()  # position at the end, as after a previous read
    np.testing.assert_array_equal(load_image(up), a)


def test_error_message_names_the_upload():
    class FakeUpload(io.BytesIO):
        name = "notes.png"

    with pytest.raises(ImageError, match="notes.png"):
        load_image(FakeUpload(b"just some text, not pixels\n"))


def test_missing_path_and_directory(tmp_path: Path):
    with pytest.raises(ImageError, match="No such image file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)


def test_bad_source_type_and_text_stream():
    with pytest.raises(TypeError, match="expects a path"):
        load_image(12345)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="binary mode"):
        load_image(io.StringIO("abc"))  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, None])
def test_max_side_validated(bad):
    with pytest.raises(ValueError, match="max_side"):
        load_image(b"irrelevant", max_side=bad)  # type: ignore[arg-type]


def test_image_error_is_a_gradlens_error():
    assert issubclass(ImageError, GradLensError)


# ----------------------------------------------------------------------------- bad files


def test_text_file_renamed_png(tmp_path: Path):
    p = tmp_path / "notes.png"
    p.write_text("Dear diary, this is not a picture.\n" * 20)
    with pytest.raises(ImageError, match=r"notes\.png.*not an image GradLens can read"):
        load_image(p)


def test_empty_file(tmp_path: Path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty \(0 bytes\)"):
        load_image(p)
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")


def test_truncated_jpeg(tmp_path: Path):
    a = np.random.default_rng(1).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    data = _encode(Image.fromarray(a), "JPEG", quality=90)
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="incomplete or corrupt.*truncated"):
        load_image(p)


def test_truncated_png():
    a = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = _encode(Image.fromarray(a), "PNG")
    with pytest.raises(ImageError):
        load_image(data[: len(data) * 2 // 3])


def test_zero_size_image_refused():
    """PNG forbids width 0; Pillow refuses such a header at open, and so do we (as ImageError)."""
    with pytest.raises(ImageError, match="zero width or height"):
        load_image(_png_header_only(0, 10))


def test_eps_is_not_opened():
    """EPS would make Pillow run Ghostscript; it is not in the allowed list, so it is refused."""
    assert "EPS" not in ALLOWED_FORMATS
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(ImageError, match="not an image"):
        load_image(eps)


# ----------------------------------------------------------------------------- bombs


def test_png_bomb_header_refused_without_decoding():
    data = _png_header_only(100_000, 100_000)  # 10^10 pixels claimed
    assert len(data) < 100
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(data)
    # Pillow's global switches are not changed by us.
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == before


def test_own_pixel_limit_applies_below_pillows():
    """81 MP is under Pillow's warning threshold (~89.5 MP) but over our 80 MP default."""
    assert MAX_PIXELS == 80_000_000
    assert 9000 * 9000 < Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageError, match=r"9000x9000 = 81\.0 megapixels.*limit of 80 MP"):
        load_image(_png_header_only(9000, 9000))


def test_pixel_limit_keyword_exact_boundary():
    data = _encode(Image.fromarray(_rgb(20, 20)), "PNG")
    assert load_image(data, max_pixels=400).shape == (20, 20, 3)
    with pytest.raises(ImageError, match="max_pixels"):
        load_image(data, max_pixels=399)


def test_bomb_refused_when_warnings_are_errors():
    """90 MP triggers Pillow's DecompressionBombWarning inside Image.open; as an error it must
    still come out as our ImageError, not a bare warning exception."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageError) as info:
            load_image(_png_header_only(10_000, 9_000))
    assert isinstance(info.value.__cause__, Image.DecompressionBombWarning)


# ----------------------------------------------------------------------------- orientation


@pytest.mark.parametrize(
    ("orientation", "shape", "red_at"),
    [
        (1, (40, 60), (4, 4)),  # as stored: red top-left
        (3, (40, 60), (35, 55)),  # rotate 180: red bottom-right
        (6, (60, 40), (4, 35)),  # rotate 90 clockwise: red top-right
        (8, (60, 40), (55, 4)),  # rotate 90 counter-clockwise: red bottom-left
    ],
)
def test_exif_orientation_applied(orientation, shape, red_at):
    stored = _rgb(40, 60, (128, 128, 128))
    stored[:16, :16] = (255, 0, 0)  # red top-left corner block of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(Image.fromarray(stored), "JPEG", quality=95, exif=exif.tobytes())

    out = load_image(data)
    assert out.shape[:2] == shape
    r, g, b = (int(v) for v in out[red_at])
    assert r > 200 and g < 60 and b < 60, (orientation, out[red_at])
    # the opposite corner is grey
    opp = (shape[0] - 1 - red_at[0], shape[1] - 1 - red_at[1])
    assert np.all(np.abs(out[opp].astype(int) - 128) < 20)


def test_malformed_exif_is_ignored():
    data = _encode(Image.fromarray(_rgb(20, 30)), "JPEG", exif=b"Exif\x00\x00garbage-bytes")
    assert load_image(data).shape == (20, 30, 3)


# ----------------------------------------------------------------------------- modes


def test_16bit_png_gradient_scaled_by_actual_range():
    """A 16-bit gradient from 1000 to 3000: the 8-bit result maps 1000 -> 0 and 3000 -> 255
    linearly (Pillow's convert('L') would clip everything above 255 to white)."""
    row = 1000 + 10 * np.arange(201)  # 1000 .. 3000
    a16 = np.tile(row, (4, 1)).astype(np.uint16)  # (4, 201)
    im = Image.fromarray(a16)
    data = _encode(im, "PNG")
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode.startswith("I;16")  # really stored and read back as 16-bit

    out = load_image(data)
    expected = np.rint((row - 1000) / 2000 * 255).astype(np.uint8)  # (201,)
    assert out.shape == (4, 201, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], np.tile(expected, (4, 1)))
    assert out.min() == 0 and out.max() == 255


def test_float_tiff_with_nan_and_inf():
    a = np.array([[-1.0, 0.0, 1.0, np.nan, np.inf, -np.inf]], np.float32)
    out = load_image(_encode(Image.fromarray(a, mode="F"), "TIFF"))
    np.testing.assert_array_equal(out[0, :, 0], [0, 128, 255, 0, 255, 0])


def test_int32_tiff_scaled():
    a = np.array([[-70000, 0, 70000]], np.int32)
    out = load_image(_encode(Image.fromarray(a, mode="I"), "TIFF"))
    np.testing.assert_array_equal(out[0, :, 1], [0, 128, 255])


def test_constant_16bit_image_uses_nominal_range():
    a = np.full((3, 3), 65535, np.uint16)
    out = load_image(_encode(Image.fromarray(a), "PNG"))
    assert np.all(out == 255)


def test_rgba_transparent_becomes_white():
    a = np.zeros((2, 3, 4), np.uint8)
    a[0, 0] = (255, 0, 0, 0)  # fully transparent red -> white
    a[0, 1] = (0, 0, 255, 255)  # opaque blue -> blue
    a[0, 2] = (255, 0, 0, 128)  # half-transparent red over white -> pink
    a[1, :] = (0, 0, 0, 0)  # transparent black -> white
    out = load_image(_encode(Image.fromarray(a, mode="RGBA"), "PNG")).astype(int)
    np.testing.assert_array_equal(out[0, 0], (255, 255, 255))
    np.testing.assert_array_equal(out[0, 1], (0, 0, 255))
    assert out[0, 2, 0] == 255
    assert abs(out[0, 2, 1] - 127) <= 1 and abs(out[0, 2, 2] - 127) <= 1
    assert np.all(out[1] == 255)


def test_la_transparent_becomes_white():
    a = np.array([[[0, 0], [0, 255], [100, 255]]], np.uint8)  # (1, 3, 2): L, A
    out = load_image(_encode(Image.fromarray(a, mode="LA"), "PNG"))
    np.testing.assert_array_equal(out[0, :, 0], [255, 0, 100])


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_with_transparency(fmt):
    idx = np.array([[0, 1], [1, 2]], np.uint8)
    im = Image.fromarray(idx, mode="P")
    im.putpalette([0, 0, 0, 0, 200, 0, 10, 20, 250] + [0] * (256 * 3 - 9))
    data = _encode(im, fmt, transparency=0)
    out = load_image(data)
    np.testing.assert_array_equal(out[0, 0], (255, 255, 255))  # index 0: transparent -> white
    np.testing.assert_array_equal(out[0, 1], (0, 200, 0))
    np.testing.assert_array_equal(out[1, 1], (10, 20, 250))


def test_palette_without_transparency():
    idx = np.array([[0, 1]], np.uint8)
    im = Image.fromarray(idx, mode="P")
    im.putpalette([0, 0, 0, 0, 200, 0] + [0] * (256 * 3 - 6))
    out = load_image(_encode(im, "PNG"))
    np.testing.assert_array_equal(out[0], [(0, 0, 0), (0, 200, 0)])


def test_cmyk_jpeg():
    im = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # no cyan, full magenta+yellow: red
    data = _encode(im, "JPEG", quality=95)
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode == "CMYK"
    out = load_image(data).astype(int)
    assert out.shape == (32, 32, 3)
    assert np.all(np.abs(out - (255, 0, 0)) <= 8)


def test_grayscale_and_bilevel():
    g = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = load_image(_encode(Image.fromarray(g, mode="L"), "PNG"))
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], g)

    bits = Image.fromarray((np.indices((4, 4)).sum(0) % 2 * 255).astype(np.uint8)).convert("1")
    out1 = load_image(_encode(bits, "PNG"))
    np.testing.assert_array_equal(out1[:, :, 0], np.indices((4, 4)).sum(0) % 2 * 255)


def test_animated_gif_takes_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(io.BytesIO(buf.getvalue())) as check:
        assert check.n_frames == 2
    out = load_image(buf.getvalue())
    assert np.all(out == (255, 0, 0))


# ----------------------------------------------------------------------------- size


@pytest.mark.parametrize(("h", "w", "expected"), [(1000, 3000, (341, 1024)), (3000, 1000, (1024, 341))])
def test_large_png_downscaled_to_max_side_exactly(h, w, expected):
    data = _encode(Image.fromarray(_rgb(h, w, (30, 60, 90))), "PNG")
    out = load_image(data, max_side=1024)
    assert out.shape == expected + (3,)
    assert np.all(out == (30, 60, 90))  # a flat colour stays exact through Lanczos


def test_small_image_not_upscaled():
    out = load_image(_encode(Image.fromarray(_rgb(10, 12)), "PNG"), max_side=1024)
    assert out.shape == (10, 12, 3)


def test_large_jpeg_downscaled_content_and_exif_together():
    """4000x3000 JPEG (left half red, right half blue) stored with EXIF orientation 6: the
    displayed picture is 3000 wide x 4000 high, red on top; max_side=512 gives 384 x 512."""
    a = _rgb(3000, 4000, (255, 0, 0))
    a[:, 2000:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encode(Image.fromarray(a), "JPEG", quality=90, exif=exif.tobytes())
    out = load_image(data, max_side=512).astype(int)
    assert out.shape == (512, 384, 3)
    assert np.all(np.abs(out[100, 192] - (255, 0, 0)) < 30)  # top: red (was left)
    assert np.all(np.abs(out[400, 192] - (0, 0, 255)) < 30)  # bottom: blue (was right)


def test_palette_image_downscaled_after_compositing():
    idx = np.zeros((40, 80), np.uint8)
    idx[:, 40:] = 1
    im = Image.fromarray(idx, mode="P")
    im.putpalette([0, 0, 0, 0, 200, 0] + [0] * (256 * 3 - 6))
    out = load_image(_encode(im, "PNG", transparency=0), max_side=20)
    assert out.shape == (10, 20, 3)
    np.testing.assert_array_equal(out[5, 2], (255, 255, 255))
    np.testing.assert_array_equal(out[5, 17], (0, 200, 0))


# ----------------------------------------------------------------------------- digest


def test_image_digest():
    assert image_digest(b"abc") == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    assert image_digest(b"abc") == hashlib.sha256(b"abc").hexdigest()
    assert image_digest(bytearray(b"abc")) == image_digest(memoryview(b"abc"))
    with pytest.raises(TypeError):
        image_digest("abc")  # type: ignore[arg-type]
