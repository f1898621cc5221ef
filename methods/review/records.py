"""The records of the review store and the validation every write goes through.

:class:`NewSnapshot` is what a caller saves; :class:`Snapshot` is what comes back (the same fields
plus id, times, image digest and size); :class:`SnapshotSummary` is one row of a listing;
:class:`Comment` is one comment. All are frozen dataclasses built with keyword arguments.

Validation happens here, at the boundary, so the store never writes a value it could not read
back: every refusal is a :class:`~methods.review.schema.SnapshotError` naming the field, the bad
value (or its size) and the limit or the valid choices.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
from PIL import Image

from methods.data.images import MAX_PIXELS
from methods.review.codec import MapDict, as_map_array, decode_png, dump_json, maps_nbytes, png_size
from methods.review.schema import SnapshotError, SnapshotNotFound
from methods.viz.normalize import MODES, SCOPES
from methods.viz.render import COLORMAPS

__all__ = [
    "VERDICTS",
    "LIMITS",
    "NormSettings",
    "NewSnapshot",
    "Snapshot",
    "SnapshotSummary",
    "Comment",
    "VerdictChange",
    "now_utc",
    "check_id",
    "check_text",
    "check_unicode",
    "check_verdict",
    "validate_new",
    "like_pattern",
]

VERDICTS: tuple[str, ...] = ("unreviewed", "looks right", "spurious", "needs check", "wrong class")
"""The verdict tags a snapshot can carry; a new snapshot is ``"unreviewed"`` unless told."""

LIMITS: dict[str, int] = {
    "title": 200,  # characters
    "note": 10_000,
    "comment": 5_000,
    "author": 100,
    "model_id": 200,
    "page": 100,
    "name": 200,  # a method, layer or class name
    "image_bytes": 20 * 1024 * 1024,
    "maps_bytes": 50 * 1024 * 1024,  # uncompressed float32 total
    "json_bytes": 5 * 1024 * 1024,  # view and metrics, each, as UTF-8 JSON
}
"""Limits enforced by :meth:`SnapshotStore.save` and :meth:`SnapshotStore.add_comment`."""

_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True, kw_only=True)
class NormSettings:
    """How raw maps were normalized for display (see :func:`methods.viz.normalize.normalize_many`)."""

    mode: str = "minmax"
    relu: bool = True
    scope: str = "per_map"
    percentiles: tuple[float, float] = (1.0, 99.0)


@dataclass(frozen=True, kw_only=True, eq=False)
class NewSnapshot:
    """What the dashboard hands to :meth:`SnapshotStore.save`.

    Attributes:
        image_png: the explained image as PNG bytes (see :func:`methods.review.codec.encode_png`).
        model_id: the model's id (zoo name, or a label for an uploaded checkpoint).
        author: who saved it; not empty.
        methods, layers: what was shown, in display order.
        maps: method -> layer -> (h, w) RAW map (numpy or torch; stored as float32).
        model_sha256: the checkpoint's SHA-256 (64 hex) for an uploaded model, else ``None``.
        page: the dashboard page it was saved from.
        target_index, target_name: the explained class.
        normalization, colormap, alpha: display settings, applied to the raw maps when shown.
        view: any other view state (the dashboard's ``to_query()`` dict), JSON-serializable.
        metrics: AUCs, probabilities, curves (lists), JSON-serializable.
        title, note: free text; verdict: one of :data:`VERDICTS`.

    Equality is identity (``eq=False``): the maps are arrays, and ``==`` on them is elementwise.
    """

    image_png: bytes
    model_id: str
    author: str
    methods: tuple[str, ...] = ()
    layers: tuple[str, ...] = ()
    maps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    model_sha256: str | None = None
    page: str = ""
    target_index: int | None = None
    target_name: str | None = None
    normalization: NormSettings = field(default_factory=NormSettings)
    colormap: str = "jet"
    alpha: float = 0.5
    view: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    title: str = ""
    note: str = ""
    verdict: str = "unreviewed"


@dataclass(frozen=True, kw_only=True, eq=False)
class Snapshot(NewSnapshot):
    """A stored snapshot: everything saved, plus its id, times and the image's digest and size.

    ``maps`` comes back as ``dict[str, dict[str, np.ndarray]]`` of float32, bit-exact.
    ``created_at`` / ``updated_at`` are UTC ISO-8601 strings; ``updated_at`` moves on a verdict change.
    """

    id: str
    created_at: str
    updated_at: str
    image_sha256: str
    image_width: int
    image_height: int

    def image_array(self) -> np.ndarray:
        """The image decoded, (H, W, 3) uint8 RGB."""
        return decode_png(self.image_png)


@dataclass(frozen=True, kw_only=True)
class SnapshotSummary:
    """One row of :meth:`SnapshotStore.list` (no image, no maps)."""

    id: str
    created_at: str
    updated_at: str
    author: str
    title: str
    verdict: str
    model_id: str
    page: str
    methods: tuple[str, ...]
    layers: tuple[str, ...]
    target_index: int | None
    target_name: str | None
    image_sha256: str
    n_comments: int


@dataclass(frozen=True, kw_only=True)
class VerdictChange:
    """One entry of a snapshot's verdict history (:meth:`SnapshotStore.verdict_history`).

    ``previous`` is ``None`` for the verdict a snapshot was saved with; ``author`` is ``None`` when
    not given (and for the single entry a pre-v2 database gets on upgrade).
    """

    snapshot_id: str
    verdict: str
    previous: str | None
    author: str | None
    changed_at: str


@dataclass(frozen=True, kw_only=True)
class Comment:
    """One comment on a snapshot, oldest first in :meth:`SnapshotStore.comments`."""

    id: int
    snapshot_id: str
    author: str
    text: str
    created_at: str


# ----------------------------------------------------------------------------- validation


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def check_unicode(name: str, value: str) -> str:
    """``value`` if it is text SQLite can store and LIKE can search: no lone surrogate (not
    encodable as UTF-8) and no NUL (SQLite's LIKE stops at it, so ``"\\x00x"`` matched everything).

    Examples:
        >>> check_unicode("comment", "caf\u00e9")
        'café'
        >>> check_unicode("comment", "bad \\ud800")
        Traceback (most recent call last):
        ...
        methods.errors.SnapshotError: comment holds a lone surrogate (U+D800 at position 4), which is not valid Unicode text; remove it
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SnapshotError(
            f"{name} holds a lone surrogate (U+{ord(value[exc.start]):04X} at position {exc.start}), "
            "which is not valid Unicode text; remove it"
        ) from None
    if "\x00" in value:
        raise SnapshotError(f"{name} holds a NUL character (at position {value.index(chr(0))}); remove it")
    return value


def check_text(name: str, value: Any, limit: int, *, required: bool = False, strip: bool = False) -> str:
    if not isinstance(value, str):
        raise SnapshotError(f"{name} must be a string; got {type(value).__name__}")
    check_unicode(name, value)
    if strip:
        value = value.strip()
    if required and not value.strip():
        raise SnapshotError(f"{name} is empty; give a non-empty {name}")
    if len(value) > limit:
        raise SnapshotError(f"{name} is {len(value):,} characters long; the limit is {limit:,}")
    return value


def check_verdict(value: Any) -> str:
    if value not in VERDICTS:
        raise SnapshotError(f"verdict={value!r} is not one of {list(VERDICTS)}")
    return value


def check_id(snapshot_id: Any) -> str:
    if not isinstance(snapshot_id, str) or not _ID_RE.fullmatch(snapshot_id):
        shown = repr(snapshot_id) if len(repr(snapshot_id)) <= 80 else repr(snapshot_id)[:77] + "..."
        raise SnapshotNotFound(
            f"snapshot id {shown} is malformed: an id is 10 characters of A-Z a-z 0-9 _ - (as in ?snapshot=Ab3_x9-QzK)"
        )
    return snapshot_id


def _names(name: str, values: Any) -> tuple[str, ...]:
    if isinstance(values, str) or not hasattr(values, "__iter__"):
        raise SnapshotError(f"{name} must be a list of strings; got {type(values).__name__}")
    out = tuple(values)
    for v in out:
        check_text(f"a name in {name}", v, LIMITS["name"], required=True)
    return out


def _json(name: str, value: Any) -> str:
    if not isinstance(value, Mapping):
        raise SnapshotError(f"{name} must be a dict; got {type(value).__name__}")
    try:
        text = dump_json(dict(value))
    except (TypeError, ValueError) as exc:
        raise SnapshotError(f"{name} is not JSON-serializable: {exc}") from exc
    check_unicode(name, text)  # json.dumps writes NUL as \u0000; a lone surrogate stays raw
    size = len(text.encode("utf-8"))
    if size > LIMITS["json_bytes"]:
        raise SnapshotError(f"{name} is {size:,} bytes as JSON; the limit is {LIMITS['json_bytes']:,}")
    return text


def _norm(norm: Any) -> NormSettings:
    if not isinstance(norm, NormSettings):
        raise SnapshotError(f"normalization must be a NormSettings; got {type(norm).__name__}")
    if norm.mode not in MODES:
        raise SnapshotError(f"normalization.mode={norm.mode!r} is not one of {list(MODES)}")
    if norm.scope not in SCOPES:
        raise SnapshotError(f"normalization.scope={norm.scope!r} is not one of {list(SCOPES)}")
    try:
        lo, hi = (float(p) for p in norm.percentiles)
    except (TypeError, ValueError) as exc:
        raise SnapshotError(f"normalization.percentiles={norm.percentiles!r} must be two numbers") from exc
    if not 0.0 <= lo < hi <= 100.0:
        raise SnapshotError(f"normalization.percentiles={norm.percentiles!r} must satisfy 0 <= low < high <= 100")
    return NormSettings(mode=norm.mode, relu=bool(norm.relu), scope=norm.scope, percentiles=(lo, hi))


def _maps(maps: Any) -> MapDict:
    if not isinstance(maps, Mapping):
        raise SnapshotError(f"maps must be a dict method -> layer -> array; got {type(maps).__name__}")
    out: MapDict = {}
    for method, layers in maps.items():
        check_text("a method name in maps", method, LIMITS["name"], required=True)
        if not isinstance(layers, Mapping):
            raise SnapshotError(f"maps[{method!r}] must be a dict layer -> array; got {type(layers).__name__}")
        out[method] = {}
        for layer, arr in layers.items():
            check_text(f"a layer name in maps[{method!r}]", layer, LIMITS["name"], required=True)
            try:
                out[method][layer] = as_map_array(arr)
            except ValueError as exc:
                raise SnapshotError(f"maps[{method!r}][{layer!r}]: {exc}") from exc
    total = maps_nbytes(out)
    if total > LIMITS["maps_bytes"]:
        raise SnapshotError(f"maps total {total:,} bytes as float32; the limit is {LIMITS['maps_bytes']:,} (50 MB)")
    return out


_INT64_MAX = 2**63 - 1


def _image(data: Any) -> tuple[bytes, int, int]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SnapshotError(f"image_png must be PNG bytes; got {type(data).__name__}")
    data = bytes(data)
    if len(data) > LIMITS["image_bytes"]:
        raise SnapshotError(f"image_png is {len(data):,} bytes; the limit is {LIMITS['image_bytes']:,} (20 MB)")
    try:
        width, height = png_size(data)
    except ValueError as exc:
        raise SnapshotError(f"image_png is not a readable PNG: {exc}") from exc
    if width * height > MAX_PIXELS:
        raise SnapshotError(f"image_png is {width}x{height} pixels; the limit is {MAX_PIXELS:,} pixels")
    try:  # the whole file (chunk CRCs up to IEND, whatever LOAD_TRUNCATED_IMAGES says), then the
        # pixels as Snapshot.image_array() will decode them: a valid header is not enough
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        decode_png(data)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise SnapshotError(
            f"image_png has a valid header ({width}x{height}) but its pixel data is truncated or "
            f"corrupt ({type(exc).__name__}: {exc}); encode the image again"
        ) from exc
    return data, width, height


def validate_new(snap: NewSnapshot) -> dict[str, Any]:
    """Validate everything and return the column values (maps still as arrays)."""
    if not isinstance(snap, NewSnapshot):
        raise SnapshotError(f"save() takes a NewSnapshot; got {type(snap).__name__}")
    image, width, height = _image(snap.image_png)
    if snap.model_sha256 is not None and (
        not isinstance(snap.model_sha256, str) or not _SHA256_RE.fullmatch(snap.model_sha256)
    ):
        raise SnapshotError(f"model_sha256={snap.model_sha256!r} must be 64 lowercase hex characters or None")
    if snap.target_index is not None and (
        isinstance(snap.target_index, bool)
        or not isinstance(snap.target_index, (int, np.integer))
        or not 0 <= snap.target_index <= _INT64_MAX
    ):
        raise SnapshotError(f"target_index={snap.target_index!r} must be a class index in 0..2**63-1 or None")
    if snap.colormap not in COLORMAPS:
        raise SnapshotError(f"colormap={snap.colormap!r} is not one of {sorted(COLORMAPS)}")
    try:
        alpha = float(snap.alpha)
    except (TypeError, ValueError):
        alpha = math.nan
    if not 0.0 <= alpha <= 1.0:
        raise SnapshotError(f"alpha={snap.alpha!r} must be a number in [0, 1]")
    norm = _norm(snap.normalization)
    return {
        "author": check_text("author", snap.author, LIMITS["author"], required=True, strip=True),
        "title": check_text("title", snap.title, LIMITS["title"]),
        "note": check_text("note", snap.note, LIMITS["note"]),
        "verdict": check_verdict(snap.verdict),
        "model_id": check_text("model_id", snap.model_id, LIMITS["model_id"], required=True),
        "model_sha256": snap.model_sha256,
        "page": check_text("page", snap.page, LIMITS["page"]),
        "methods": dump_json(list(_names("methods", snap.methods))),
        "layers": dump_json(list(_names("layers", snap.layers))),
        "target_index": None if snap.target_index is None else int(snap.target_index),
        "target_name": None
        if snap.target_name is None
        else check_text("target_name", snap.target_name, LIMITS["name"]),
        "norm_mode": norm.mode,
        "norm_relu": int(norm.relu),
        "norm_scope": norm.scope,
        "norm_p_low": norm.percentiles[0],
        "norm_p_high": norm.percentiles[1],
        "colormap": snap.colormap,
        "alpha": alpha,
        "view": _json("view", snap.view),
        "metrics": _json("metrics", snap.metrics),
        "image_sha256": hashlib.sha256(image).hexdigest(),
        "image_width": width,
        "image_height": height,
        "_image_png": image,
        "_maps": _maps(snap.maps),
    }


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's own wildcards escaped (escape character: backslash)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
