"""Decoding memory of methods/data/images.py and decode.py: small files that claim big images.

The audit measured (before the banded conversion): a 27 KB TIFF claiming 8900 x 8900 16-bit pixels
took 2.8 GB of peak memory above the baseline, a 1.2 MB 16-bit PNG 2.8 GB, a 16 KB float32 TIFF
3.1 GB (full-size float64 copies before the downscale). These tests make such files themselves.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from hostile_files import call_on_fifo, peak_rss_mb, png16, tiff_shared_strips
from methods.data import decode
from methods.data.images import MAX_DECODE_BYTES, load_image
from methods.errors import ImageError

SIDE = 8900  # 79.2 MP: just under MAX_PIXELS (80 MP)


def _encode(im: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


@pytest.mark.slow
def test_claimed_big_high_depth_images_stay_under_a_gigabyte(tmp_path: Path):
    """Three files of <= 1.2 MB that decode to 79 MP of 16-bit or float pixels: the peak resident
    memory above the subprocess's baseline stays under 1 GB (it was 2.8-3.1 GB), and each gives a
    (2048, 2048, 3) picture whose left column is the ramp's low end."""
    files = [
        tiff_shared_strips(tmp_path / "u16.tif", SIDE, SIDE, bits=16),
        tiff_shared_strips(tmp_path / "f32.tif", SIDE, SIDE, bits=32, sample_format=3),
        png16(tmp_path / "u16.png", SIDE, SIDE),
    ]
    assert max(f.stat().st_size for f in files) < 1_300_000
    body = "\n".join(
        f"a = load_image({str(f)!r}); assert a.shape == (2048, 2048, 3), a.shape; assert a[:, 0].max() < 8"
        for f in files
    )
    peak, error = peak_rss_mb("from methods.data.images import load_image", body)
    assert error == ""
    assert peak < 1024, f"peak {peak:.0f} MB above the baseline"


def test_budget_refuses_before_decoding(tmp_path: Path):
    """A TIFF whose ONE strip is the whole 79 MP float image needs the image (317 MB) plus the
    strip buffer (317 MB) to decode: refused from the header, in a fraction of the memory (the
    file holds 64 compressed rows only, so decoding would fail anyway: the refusal comes first)."""
    path = tiff_shared_strips(
        tmp_path / "one_strip.tif", SIDE, SIDE, bits=32, sample_format=3, rows_per_strip=SIDE, stored_rows=64
    )
    with Image.open(path) as im:
        assert decode.decode_bytes(im) == 2 * SIDE * SIDE * 4
    with pytest.raises(
        ImageError,
        match=r"about 604 MB of memory to decode \(8900x8900 pixels, mode F, TIFF\).*"
        r"limit of 512 MB \(max_decode_bytes\)",
    ):
        load_image(path)
    assert MAX_DECODE_BYTES == 512 * 2**20
    with pytest.raises(ImageError, match="incomplete or corrupt"):  # with a larger budget: decoded, and truncated
        load_image(path, max_decode_bytes=2**30)


def test_decode_bytes_per_format():
    """Pillow's storage is 1 byte a pixel for L/P, 2 for 16-bit, 4 for RGB/RGBA/F; WebP adds libwebp's
    three canvases (an 8000 x 8000 RGB WebP peaked at 1089 MB above the baseline when decoded:
    ~17 bytes a pixel, against the estimate's 16)."""
    assert decode.decode_bytes(Image.open(io.BytesIO(_encode(Image.new("L", (30, 20)), "PNG")))) == 600
    assert decode.decode_bytes(Image.open(io.BytesIO(_encode(Image.new("I;16", (30, 20)), "PNG")))) == 1200
    assert decode.decode_bytes(Image.open(io.BytesIO(_encode(Image.new("RGB", (30, 20)), "PNG")))) == 2400
    assert decode.decode_bytes(Image.open(io.BytesIO(_encode(Image.new("RGB", (30, 20)), "WEBP")))) == 4 * 2400


def test_banded_downscale_matches_the_whole_image_reference(monkeypatch):
    """A 16-bit ramp 1000..3000 (with noise) downscaled from 1500 x 1200 to 300 x 240: the banded
    path equals a naive reference (whole-image float64 mapping to 8 bit, then the same reduce and
    Lanczos resize with Pillow), and the band height does not change a single pixel."""
    rng = np.random.default_rng(0)
    a16 = (1000 + np.linspace(0, 2000, 1500)[None, :] + rng.integers(0, 40, (1200, 1500))).astype(np.uint16)
    data = _encode(Image.fromarray(a16), "PNG")
    lo, hi = float(a16.min()), float(a16.max())
    u8 = np.clip(np.rint((a16.astype(np.float64) - lo) / (hi - lo) * 255), 0, 255).astype(np.uint8)  # (H, W)
    fx = fy = int(1500 / 300 / decode.REDUCING_GAP)  # 2
    reference = (
        Image.fromarray(u8)
        .reduce((fx, fy))
        .resize((300, 240), Image.Resampling.LANCZOS, box=(0, 0, 1500 / fx, 1200 / fy))
    )
    out = load_image(data, max_side=300)
    np.testing.assert_array_equal(out[:, :, 0], np.asarray(reference))
    monkeypatch.setattr(decode, "BAND_PIXELS", 7 * 1500)  # bands of 6 rows instead of 2666
    np.testing.assert_array_equal(load_image(data, max_side=300), out)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow(orientation):
    """The orientation applied to the small array equals Pillow's exif_transpose of the full image."""
    stored = np.random.default_rng(orientation).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(Image.fromarray(stored), "PNG", exif=exif.tobytes())
    with Image.open(io.BytesIO(data)) as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    np.testing.assert_array_equal(load_image(data), expected)


def test_fifo_path_is_refused_not_waited_on(tmp_path: Path):
    """open() on a FIFO blocks until a writer comes; load_image must refuse it at once. If it
    blocks, the test opens the writing end itself so the reader is released and the test fails."""
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    blocked, raised = call_on_fifo(fifo, load_image)
    assert not blocked, "load_image blocked on a FIFO"
    assert isinstance(raised, ImageError)
    assert "named pipe (FIFO), not a regular file" in str(raised)


def test_character_device_is_refused():
    with pytest.raises(ImageError, match="character device"):
        load_image("/dev/zero")
