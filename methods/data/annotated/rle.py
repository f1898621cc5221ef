"""COCO run-length encoded masks: the compressed string and the uncompressed ``counts`` list.

A COCO RLE mask of an image of ``h`` rows and ``w`` columns is a list of run lengths over the
pixels in COLUMN-MAJOR order (down the first column, then the next: flat index ``col * h + row``),
alternating background and foreground and starting with background (a mask whose first pixel is
set starts with a 0-length run). ``sum(counts) == h * w``.

The compressed form (``{"size": [h, w], "counts": "<string>"}``, what ``pycocotools.mask.encode``
writes) stores each count as a little-endian run of 5-bit groups, one printable character each
(value + 48): bit 0x20 says another group follows, bit 0x10 of the last group is the sign; from
the fourth count on, the stored value is the DIFFERENCE to the count two places back (the previous
run of the same colour). Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014,
https://arxiv.org/abs/1405.0312 (the format is documented by the COCO API's ``maskApi.c``).

Deviation: none in the decoded pixels (tests check them against pycocotools where it is installed
and against hand-drawn masks); pycocotools itself is not needed at run time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from methods.errors import AnnotationError

__all__ = ["decode_counts_string", "decode_rle", "rle_area"]


def decode_counts_string(text: str, *, where: str = "an RLE mask") -> list[int]:
    """The run lengths of a compressed COCO RLE string.

    Raises:
        AnnotationError: a character outside the alphabet (``'0'`` .. ``'o'``), a string that ends in
            the middle of a count, or a negative run.

    Examples:
        >>> decode_counts_string("237")
        [2, 3, 7]
        >>> decode_counts_string("0:1")  # 0, 10, then 1 + the count two back (0)
        [0, 10, 1]
    """
    counts: list[int] = []
    value, shift = 0, 0
    for pos, ch in enumerate(text):
        c = ord(ch) - 48
        if not 0 <= c < 64:
            raise AnnotationError(
                f"{where}: character {ch!r} at position {pos} of the RLE string is not a COCO RLE character "
                "('0' to 'o'); expected the 'counts' string pycocotools.mask.encode writes"
            )
        value |= (c & 0x1F) << shift
        shift += 5
        if c & 0x20:  # another 5-bit group of this count follows
            continue
        if c & 0x10:  # sign of the last group: sign-extend
            value |= -1 << shift
        if len(counts) > 2:
            value += counts[-2]
        if value < 0:
            raise AnnotationError(f"{where}: run {len(counts)} of the RLE string is negative ({value})")
        counts.append(value)
        value, shift = 0, 0
    if shift:
        raise AnnotationError(f"{where}: the RLE string ends in the middle of a count (truncated?)")
    return counts


def _counts(rle: dict, where: str) -> tuple[int, int, list[int]]:
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise AnnotationError(
            f"{where}: an RLE mask must be {{'size': [h, w], 'counts': ...}}; got {type(rle).__name__}"
        )
    size = rle["size"]
    if not (isinstance(size, Sequence) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise AnnotationError(f"{where}: RLE 'size' must be [height, width] of positive ints; got {size!r}")
    h, w = int(size[0]), int(size[1])
    raw = rle["counts"]
    if isinstance(raw, str):
        counts = decode_counts_string(raw, where=where)
    elif isinstance(raw, Sequence) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in raw):
        counts = [int(v) for v in raw]
    else:
        raise AnnotationError(
            f"{where}: RLE 'counts' must be a compressed string or a list of non-negative ints; got {type(raw).__name__}"
        )
    if sum(counts) != h * w:
        raise AnnotationError(
            f"{where}: the RLE runs add up to {sum(counts)} pixels but its size {h}x{w} has {h * w}; the mask is corrupt"
        )
    return h, w, counts


def decode_rle(rle: dict, *, where: str = "an RLE mask") -> np.ndarray:
    """The (h, w) bool mask of a COCO RLE dict (compressed string or uncompressed counts).

    Args:
        rle: ``{"size": [h, w], "counts": str | list[int]}``.
        where: names the mask in error messages ("ann.json, annotation 7").

    Returns:
        (h, w) bool, C-contiguous.

    Raises:
        AnnotationError: malformed size or counts, or runs that do not cover ``h * w`` pixels.

    Examples:
        >>> decode_rle({"size": [2, 3], "counts": [1, 2, 3]}).astype(int).tolist()
        [[0, 1, 0], [1, 0, 0]]
    """
    h, w, counts = _counts(rle, where)
    colours = np.arange(len(counts)) % 2 == 1  # background first
    flat = np.repeat(colours, counts)  # (h * w,) column-major
    return np.ascontiguousarray(flat.reshape(w, h).T)


def rle_area(rle: dict, *, where: str = "an RLE mask") -> int:
    """Foreground pixels of an RLE mask, from its counts alone (no mask is made).

    Examples:
        >>> rle_area({"size": [2, 3], "counts": [1, 2, 3]})
        2
    """
    _, _, counts = _counts(rle, where)
    return int(sum(counts[1::2]))
