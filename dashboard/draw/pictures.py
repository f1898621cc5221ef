"""Pictures for the dashboard's pages and PNG downloads: pure numpy / PIL, no streamlit.

PNG encoding (with text chunks), data URIs, colour bars that say what the colours stand for
(:class:`ColourScale`: colormap, value range from ``methods.viz.ranges``, normalization), grids of
captioned pictures for downloads, and crisp enlargement of small model inputs.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from methods.viz import render as _render
from methods.viz.ranges import is_signed_display

__all__ = [
    "png_bytes",
    "data_uri",
    "ColourScale",
    "scale_text",
    "scale_of",
    "colorbar",
    "with_colorbar",
    "compose_grid",
    "caption_strip",
    "notes_text",
    "with_notes",
    "enlarge",
]


def png_bytes(image: np.ndarray, *, compress_level: int = 1, info: Mapping[str, str] | None = None) -> bytes:
    """PNG encoding of an (H, W, 3) or (H, W) uint8 array (level 1: fast, for the page itself);
    ``info`` goes into the file as text chunks (``Image.open(f).text``)."""
    meta = None
    if info:
        meta = PngInfo()
        for key, value in info.items():
            meta.add_itxt(str(key), str(value))
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=compress_level, pnginfo=meta)
    return buf.getvalue()


def data_uri(image: np.ndarray) -> str:
    """``data:image/png;base64,...`` of an image, for ``go.Image(source=...)``."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


_GLYPHS = str.maketrans({"–": "-", "—": "-", "−": "-"})  # dashes Pillow's default font lacks


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    text = text.translate(_GLYPHS)
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


@dataclass(frozen=True)
class ColourScale:
    """What the colours of maps stand for, for a colour bar.

    Attributes:
        cmap: colormap name (``methods.viz.render.COLORMAPS``).
        value_range: the values of the colormap's two ends (``methods.viz.ranges``), or None when
            each map has its own range (raw values, one scale per map: ranges in the captions).
        text: how the values were made ("min-max normalization after ReLU, each map on its own scale").
    """

    cmap: str
    value_range: tuple[float, float] | None
    text: str

    @property
    def range_text(self) -> str:
        if self.value_range is None:
            return "each map from its own minimum to its own maximum"
        lo, hi = self.value_range
        return f"{lo:.4g} (left) to {hi:.4g} (right)"

    def png_info(self) -> dict[str, str]:
        """The scale as PNG text chunks (what ``widgets.download_png(info=...)`` writes)."""
        return {
            "GradLens normalization": self.text,
            "GradLens colour range": self.range_text,
            "GradLens colormap": self.cmap,
        }


_MODE_TEXT = {
    "raw": "raw values",
    "minmax": "min-max normalization",
    "max": "max normalization (M / max|M|)",
    "percentile": "percentile normalization",
}


def scale_text(mode: str, relu: bool, scope: str | None, percentiles: tuple[float, float] | None = None) -> str:
    """One line saying how map values became colours ("min-max normalization after ReLU, one
    shared scale"); ``scope=None`` for a single map."""
    text = _MODE_TEXT.get(mode, mode)
    if mode == "percentile" and percentiles is not None:
        text += f" ({percentiles[0]:g}–{percentiles[1]:g} %)"
    text += " after ReLU" if relu else ", no ReLU"
    if is_signed_display(mode=mode, relu=relu):
        text += ": diverging colours, blue below 0, white at 0, red above"
    elif not relu:
        text += " (0 is not the middle here: choose max for a zero-centred view)"
    if scope is not None:
        text += ", one shared scale" if scope == "shared" else ", each map on its own scale"
    return text


def scale_of(cmap: str, ranges: Sequence[tuple[float, float]], text: str) -> ColourScale:
    """The colour scale of maps drawn with ``ranges`` (``methods.viz.ranges.display_ranges``):
    one range when they share it, else "each map its own" (the captions then give the ranges)."""
    shared = len(set(ranges)) == 1
    return ColourScale(cmap, ranges[0] if ranges and shared else None, text)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int, lines: int = 2) -> list[str]:
    """``text`` in at most ``lines`` lines of ``width`` pixels (the last one shortened to fit)."""
    out: list[str] = []
    words = text.translate(_GLYPHS).split(" ")
    while words and len(out) < lines - 1:
        line = words.pop(0)
        while words and draw.textlength(line + " " + words[0], font=font) <= width:
            line += " " + words.pop(0)
        out.append(line)
    if words:
        out.append(_fit_text(draw, " ".join(words), font, width))
    return out


def colorbar(scale: ColourScale, width: int, *, bar_height: int = 16, pad: int = 8, font_size: int = 13) -> np.ndarray:
    """A horizontal colour bar ``width`` pixels wide: its two end values and the middle one (or
    "min/max of each map" for per-map ranges) under it, then the colormap and the scale's text
    (up to two lines); (H, width, 3) uint8 on white."""
    font = _font(font_size)
    inner = max(16, width - 2 * pad)
    ramp = np.linspace(0.0, 1.0, inner, dtype=np.float32)[None, :]  # (1, inner)
    colours = _render.heatmap(ramp, (1, inner), colormap=scale.cmap)[0]  # (inner, 3)
    line = font_size + 5
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text = f"{scale.cmap} · {scale.text}" + (
        " · each map from its own min to its own max" if scale.value_range is None else ""
    )
    lines = _wrap(probe, text, font, inner)
    canvas = Image.new("RGB", (width, bar_height + (1 + len(lines)) * line + pad), (255, 255, 255))
    canvas.paste(Image.fromarray(np.repeat(colours[None], bar_height, axis=0)), (pad, 0))
    draw = ImageDraw.Draw(canvas)
    if scale.value_range is None:
        ticks = ["min", "", "max"]
    else:
        lo, hi = scale.value_range
        ticks = [f"{lo:.3g}", f"{(lo + hi) / 2:.3g}", f"{hi:.3g}"]
    for i, tick in enumerate(ticks):
        x = pad + i * (inner - 1) / 2 - draw.textlength(tick, font=font) * i / 2  # left, centred, right aligned
        draw.text((x, bar_height + 2), tick, fill=(20, 20, 20), font=font)
    for i, words in enumerate(lines):
        draw.text((pad, bar_height + (i + 1) * line + 2), words, fill=(60, 60, 60), font=font)
    return np.asarray(canvas)


def with_colorbar(picture: np.ndarray, scale: ColourScale) -> np.ndarray:
    """``picture`` (H, W, 3) with its colour bar appended under it (same width)."""
    arr = np.asarray(picture)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    bar = colorbar(scale, arr.shape[1], pad=2, font_size=max(11, arr.shape[1] // 24))
    return np.concatenate([arr.astype(np.uint8), bar], axis=0)


def compose_grid(
    images: Sequence[np.ndarray],
    captions: Sequence[str] = (),
    *,
    ncols: int = 4,
    cell: int = 224,
    title: str | None = None,
    pad: int = 8,
    scale: ColourScale | None = None,
    note: str | None = None,
) -> np.ndarray:
    """Tile pictures into one RGB image with a caption under each (for PNG downloads).

    Args:
        images: (H, W, 3) or (H, W) uint8 arrays; each is scaled to fit ``cell`` x ``cell``
            (nearest-neighbour when enlarging small pictures, so pixels stay visible).
        captions: one line under each picture (shortened to fit).
        ncols: pictures per row.
        cell: side of each picture's square, pixels.
        title: optional line above the grid.
        scale: the maps' colours: a colour bar with the value range and the normalization under
            the grid (:func:`colorbar`).
        note: one more line under everything (what a colour bar cannot say).

    Returns:
        (H, W, 3) uint8 RGB on a white background.
    """
    if not images:
        raise ValueError("compose_grid needs at least one image")
    ncols = max(1, min(ncols, len(images)))
    nrows = math.ceil(len(images) / ncols)
    font = _font(14)
    cap_h = 22 if captions else 0
    title_h = 28 if title else 0
    width = ncols * cell + (ncols + 1) * pad
    height = title_h + nrows * (cell + cap_h) + (nrows + 1) * pad
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((pad, pad), _fit_text(draw, title, _font(16), width - 2 * pad), fill=(0, 0, 0), font=_font(16))
    for i, img in enumerate(images):
        arr = np.asarray(img)
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        pic = Image.fromarray(np.ascontiguousarray(arr.astype(np.uint8)))
        factor = cell / max(pic.size)
        size = (max(1, round(pic.size[0] * factor)), max(1, round(pic.size[1] * factor)))
        resample = Image.Resampling.NEAREST if factor >= 1 else Image.Resampling.LANCZOS
        pic = pic.resize(size, resample)
        row, col = divmod(i, ncols)
        x = pad + col * (cell + pad)
        y = title_h + pad + row * (cell + cap_h + pad)
        canvas.paste(pic, (x + (cell - size[0]) // 2, y + (cell - size[1]) // 2))
        if i < len(captions):
            text = _fit_text(draw, str(captions[i]), font, cell)
            draw.text((x, y + cell + 4), text, fill=(20, 20, 20), font=font)
    parts = [np.asarray(canvas)]
    if scale is not None:
        parts.append(colorbar(scale, width, pad=pad))
    if note:
        parts.append(caption_strip(note, width, pad=pad))
    return np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]


def notes_text(notes: Mapping[str, Sequence[str]]) -> str:
    """The notes of the maps in a picture, one line each ("Guided Backprop: 33 activations ..."),
    for a PNG's caption strip and its ``GradLens notes`` text chunk; "" when there are none.

    Examples:
        >>> notes_text({"Grad-CAM": (), "Guided Backprop": ("a note",)})
        'Note · Guided Backprop: a note'
    """
    return "\n".join(f"Note · {who}: {text}" for who, said in notes.items() for text in said)


def with_notes(info: Mapping[str, str] | None, notes: str) -> dict[str, str]:
    """A PNG's text chunks with the notes added (``GradLens notes``) when there are any."""
    out = dict(info or {})
    if notes:
        out["GradLens notes"] = notes
    return out


def caption_strip(text: str, width: int, *, pad: int = 8, font_size: int = 12, max_lines: int = 12) -> np.ndarray:
    """``text`` as a white strip ``width`` pixels wide, wrapped at words (each ``"\\n"`` starts a
    new line) over at most ``max_lines`` lines, the last shortened with "…": (H, width, 3) uint8.
    What a picture's notes become in a PNG download, so they are seen, not only stored."""
    font = _font(font_size)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines: list[str] = []
    for para in str(text).split("\n"):
        left = max_lines - len(lines)
        if left <= 0:
            break
        lines += _wrap(probe, para, font, max(16, width - 2 * pad), lines=left)
    step = font_size + 6
    canvas = Image.new("RGB", (width, step * len(lines) + 4), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, words in enumerate(lines):
        draw.text((pad, 2 + i * step), words, fill=(60, 60, 60), font=font)
    return np.asarray(canvas)


def enlarge(image: np.ndarray, min_side: int = 384) -> np.ndarray:
    """Nearest-neighbour upscale by an integer factor so the short side reaches ``min_side``
    (small model inputs stay crisp in the browser instead of being blurred)."""
    arr = np.asarray(image)
    factor = max(1, int(math.ceil(min_side / max(1, min(arr.shape[:2])))))
    if factor == 1:
        return arr
    return np.repeat(np.repeat(arr, factor, axis=0), factor, axis=1)
