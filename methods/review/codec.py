"""Bytes in and out of the review store: PNG images, raw maps as compressed ``.npz``, JSON.

Nothing here uses pickle. Maps are written with :func:`numpy.savez_compressed` and read back with
``allow_pickle=False``; the (method, layer) names travel inside the same ``.npz`` as a JSON index
stored as a ``uint8`` array, so one blob is self-describing and names can hold any character
(layer names have dots, user plugins may use anything) without becoming file names in the archive.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from methods.errors import OptionError, WrongTypeError

__all__ = [
    "PNG_SIGNATURE",
    "MapDict",
    "encode_png",
    "decode_png",
    "png_size",
    "as_map_array",
    "maps_nbytes",
    "encode_maps",
    "decode_maps",
    "dump_json",
    "load_json",
    "strict_json",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

MapDict = dict[str, dict[str, np.ndarray]]
"""method -> layer -> (h, w) float32 raw map."""

_INDEX_KEY = "index"


def encode_png(image: np.ndarray) -> bytes:
    """An (H, W, 3) or (H, W) uint8 array as PNG bytes (lossless)."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise OptionError(
            f"image must be (H, W), (H, W, 3) or (H, W, 4) uint8; got shape {arr.shape}, dtype {arr.dtype}"
        )
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes as an (H, W, 3) uint8 RGB array (alpha and palettes flattened by Pillow)."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the PNG header, without decoding pixels.

    Raises:
        ValueError: not a PNG file, or Pillow cannot read its header.
    """
    if not bytes(data[:8]) == PNG_SIGNATURE:
        raise OptionError("the bytes do not start with the PNG signature")
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != "PNG":
                raise OptionError(f"Pillow reads it as {im.format}, not PNG")
            return int(im.width), int(im.height)
    except (OSError, SyntaxError) as exc:
        raise OptionError(f"Pillow cannot read the PNG header: {exc}") from exc


def as_map_array(value: Any) -> np.ndarray:
    """A raw map as a C-contiguous (h, w) float32 array (numpy array or torch tensor in).

    Raises:
        ValueError: not 2-D, or not real numbers.
    """
    if hasattr(value, "detach"):  # torch tensor, without importing torch here
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiub":
        raise OptionError(f"a map must hold real numbers; got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise OptionError(f"a map must be 2-D (h, w); got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def maps_nbytes(maps: Mapping[str, Mapping[str, np.ndarray]]) -> int:
    """Total uncompressed size of all maps, in bytes."""
    return sum(int(a.nbytes) for layers in maps.values() for a in layers.values())


def encode_maps(maps: Mapping[str, Mapping[str, np.ndarray]]) -> bytes:
    """``savez_compressed`` bytes of method -> layer -> float32 array, with a JSON name index."""
    arrays: dict[str, np.ndarray] = {}
    index: list[list[str]] = []
    for method, layers in maps.items():
        for layer, arr in layers.items():
            key = f"m{len(index)}"
            index.append([method, layer, key])
            arrays[key] = as_map_array(arr)
    arrays[_INDEX_KEY] = np.frombuffer(json.dumps(index).encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, allow_pickle=True, **arrays)  # numpy's default, named: no key can take its place
    return buf.getvalue()


def decode_maps(blob: bytes) -> MapDict:
    """Inverse of :func:`encode_maps` (``allow_pickle=False``); order of methods and layers kept."""
    out: MapDict = {}
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        index = json.loads(npz[_INDEX_KEY].tobytes().decode("utf-8"))
        for method, layer, key in index:
            out.setdefault(method, {})[layer] = npz[key]
    return out


def _plain(value: Any) -> Any:
    """json.dumps ``default``: numpy scalars and arrays, tuples, sets become plain JSON."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if hasattr(value, "detach"):
        return value.detach().cpu().tolist()
    raise WrongTypeError(f"{type(value).__name__} is not JSON-serializable")


def dump_json(value: Any) -> str:
    """Compact JSON; numpy values converted; NaN/inf kept (Python's JSON reads them back).

    Raises:
        TypeError, ValueError: something is not JSON-serializable (or a circular reference).
    """
    return json.dumps(value, default=_plain, ensure_ascii=False, separators=(",", ":"))


def load_json(text: str) -> Any:
    return json.loads(text)


def strict_json(value: Any) -> Any:
    """A copy with NaN and +-inf replaced by ``None``, for files other tools will parse."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value
