"""The batch command's manifest: ``OUTDIR/manifest.parquet``, one row per image x method x layer
(x object for a detector or segmenter).

Columns (:data:`COLUMNS`; paths are relative to OUTDIR, with ``/``):

================================  ===================================================================
image                             the image's path relative to ``--images``
method, layer                     what made the map
target, target_name, prob         the explained class, its name, its softmax probability
label                             the class from the label file (empty with ``--targets top1``)
predicted, top5, top5_names,      the model's top-1 class; its five most probable classes, their
top5_probs                        names and probabilities
original                          ``<image>/original.png``: the image as the model sees it
grayscale, heatmap, overlay       ``<image>/<method>__<layer>__<view>.png``
maps, map_key                     ``<image>/maps.npz`` and the key of this raw map in it
map_height, map_width             the raw map's size (the layer's grid)
seconds                           this image's share of the method's batched computation
notes                             what the method warned about this map ("" when nothing)
model, precision,                 the run's settings: the precision the map RAN in (gradient maps:
precision_requested, device,      always fp32; forward methods: ``--precision`` resolved), what was
norm, relu, scope,                asked for, the device, and the picture settings (normalization,
percentile_low, percentile_high,  colormap, alpha)
cmap, alpha
settings_id                       a hash of the settings that change outputs: a second run skips
                                  exactly the rows with its own settings_id
file_size, file_mtime_ns          the input file when it was done (a changed file is done again)
object, box, score                a detector's or segmenter's object (one row per object x method x
                                  layer; empty for a classifier): its index in the image, its box
                                  ``x0,y0,x1,y1`` (input pixels), the detection score (a region:
                                  its summed logits); ``target`` / ``target_name`` are its label
pointing_hit, pointing_random,    pointing game and energy in the object (box; segmentation: the
pointing_centre, energy_pg,       predicted mask) of the map and of the random and centre
energy_random, energy_centre      reference maps (:func:`methods.metrics.objects.object_scores`)
================================  ===================================================================

How it is kept (:class:`ManifestStore`): after every finished batch the driver writes its rows as
a small ``OUTDIR/.manifest-parts/part-*.parquet`` (atomically), and folds the parts into
``manifest.parquet`` (atomically: a new file renamed over the old) every half minute and at the
end. A killed run therefore loses at most the batch in flight; the next run folds the parts
left behind. Rows are unique per (image, object, method, layer): a newer row replaces an older one.

A manifest or part that cannot be read as a manifest table (truncated, not parquet, a column
missing or of the wrong kind, e.g. a ``target`` that is not an integer) is moved aside to
``<name>.broken-<n>`` (:func:`methods.pipeline.batch_files.quarantine`) with a note, and the run goes
on without its rows: their images are done again.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from methods.pipeline.batch_files import quarantine, write_atomic

__all__ = ["COLUMNS", "OBJECT_ONLY", "KEY", "MANIFEST", "PARTS", "ManifestStore", "frame", "settings_id", "done_pairs"]

MANIFEST = "manifest.parquet"
PARTS = ".manifest-parts"
KEY = ("image", "object", "method", "layer")

COLUMNS: tuple[str, ...] = (
    "image",
    "method",
    "layer",
    "target",
    "target_name",
    "prob",
    "label",
    "predicted",
    "top5",
    "top5_names",
    "top5_probs",
    "original",
    "grayscale",
    "heatmap",
    "overlay",
    "maps",
    "map_key",
    "map_height",
    "map_width",
    "seconds",
    "notes",
    "model",
    "precision",
    "precision_requested",
    "device",
    "norm",
    "relu",
    "scope",
    "percentile_low",
    "percentile_high",
    "cmap",
    "alpha",
    "settings_id",
    "file_size",
    "file_mtime_ns",
    "object",
    "box",
    "score",
    "pointing_hit",
    "pointing_random",
    "pointing_centre",
    "energy_pg",
    "energy_random",
    "energy_centre",
)
OBJECT_ONLY: tuple[str, ...] = COLUMNS[COLUMNS.index("object") :]
"""Columns only a detector's or segmenter's rows fill (empty on a classifier's; a manifest written
before they came reads with them empty)."""

_INTS = ("target", "predicted", "map_height", "map_width", "file_size", "file_mtime_ns")
_FLOATS = ("prob", "seconds", "percentile_low", "percentile_high", "alpha")


def _kinds() -> dict[str, str]:
    kinds = {"object": "Int64", "box": "object", "label": "Int64", "relu": "bool"}
    kinds.update({c: "Float64" for c in ("score", "energy_pg", "energy_random", "energy_centre")})
    kinds.update({c: "boolean" for c in ("pointing_hit", "pointing_random", "pointing_centre")})
    kinds.update({c: "int64" for c in _INTS})
    kinds.update({c: "float64" for c in _FLOATS})
    return kinds


_KINDS = _kinds()
"""The dtype of every column :func:`frame` sets (the rest keep what pandas gives them)."""


def frame(rows: Sequence[dict] | pd.DataFrame) -> pd.DataFrame:
    """Rows as a manifest table: the columns in order, one dtype per column (so parts concatenate).

    A column already of its dtype is left as it is (the table is the same; converting it again
    only cost time: a manifest is framed after every batch)."""
    df = pd.DataFrame(list(rows), columns=list(COLUMNS)) if not isinstance(rows, pd.DataFrame) else rows.copy()
    for col in OBJECT_ONLY:
        if col not in df.columns:
            df[col] = None
    for col, kind in _KINDS.items():
        if df[col].dtype != kind:
            df[col] = df[col].astype(kind)
    return df[list(COLUMNS)].reset_index(drop=True)


def settings_id(settings: dict[str, Any]) -> str:
    """16 hex characters identifying the settings that change a run's outputs.

    Examples:
        >>> settings_id({"cmap": "jet"}) == settings_id({"cmap": "jet"}) != settings_id({"cmap": "turbo"})
        True
    """
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def done_pairs(
    df: pd.DataFrame, sid: str, stamps: dict[str, tuple[int, int]], labels: dict[str, int | None]
) -> dict[str, set[tuple[str, str]]]:
    """image -> the (method, layer) pairs the manifest holds for these settings, this very file
    (size and mtime) and this label."""
    out: dict[str, set[tuple[str, str]]] = {}
    if df.empty:
        return out
    rows = df[df["settings_id"] == sid]
    for image, method, layer, size, mtime, label in zip(
        rows["image"], rows["method"], rows["layer"], rows["file_size"], rows["file_mtime_ns"], rows["label"]
    ):
        if stamps.get(image) != (int(size), int(mtime)):
            continue
        want = labels.get(image)
        have = None if pd.isna(label) else int(label)
        if want == have:
            out.setdefault(image, set()).add((method, layer))
    return out


class ManifestStore:
    """The manifest of one output folder: rows appended as small parts, folded atomically.

    Only one process (the batch driver) writes it. Reading never sees half a file.
    """

    def __init__(self, out: pathlib.Path, log: Callable[[str], None] | None = None) -> None:
        self.out = pathlib.Path(out)
        self.log = log or (lambda s: print(s, file=sys.stderr))
        self.path = self.out / MANIFEST
        self.parts = self.out / PARTS
        self.last_fold = time.monotonic()
        self.fold_seconds = 0.0
        self._written: dict[pathlib.Path, pd.DataFrame] = {}  # parts this store wrote, as their tables

    def _part_files(self) -> list[pathlib.Path]:
        if not self.parts.is_dir():
            return []
        return sorted(p for p in self.parts.iterdir() if p.name.startswith("part-") and p.suffix == ".parquet")

    def read(self, parts: Sequence[pathlib.Path] | None = None) -> pd.DataFrame:
        """The manifest with the given (default: all) parts folded in; one row per key, the newest."""
        paths = [self.path] if self.path.is_file() else []
        paths += list(self._part_files() if parts is None else parts)
        frames = [f for f in (self._read_one(p) for p in paths) if f is not None and len(f)]
        if not frames:
            return frame([])
        df = pd.concat(frames, ignore_index=True)
        return frame(df.drop_duplicates(list(KEY), keep="last").sort_values(list(KEY), kind="stable"))

    def _read_one(self, path: pathlib.Path) -> pd.DataFrame | None:
        """One manifest or part file as a manifest table; None (and the file moved aside) when it
        cannot be read as one. A part this store wrote is not read back: its table is kept."""
        if (mine := self._written.get(path)) is not None:
            return mine
        try:
            return frame(pd.read_parquet(path))
        except (OSError, ValueError, TypeError, KeyError, pa.ArrowException) as exc:
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            dest = quarantine(path)
            self.log(f"{path.name} could not be read ({why}); moved it aside to {dest.name}: its images are done again")
            return None

    def append(self, rows: Sequence[dict]) -> None:
        """Persist ``rows`` at once, as a new part file (atomic)."""
        if not rows:
            return
        buf = io.BytesIO()
        table = frame(rows)
        table.to_parquet(buf, index=False)
        name = f"part-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.parquet"
        write_atomic(self.parts / name, buf.getvalue())
        self._written[self.parts / name] = table

    def fold(self) -> pd.DataFrame:
        """Fold every part into ``manifest.parquet`` (a new file renamed over the old one), then
        delete those parts. Returns the manifest (as read back from the bytes written).

        The parts this store appended are folded from the tables it kept, not read back from disk
        (the same rows: :meth:`append` wrote them from those tables)."""
        t0 = time.monotonic()
        parts = self._part_files()
        df = self.read(parts)
        if parts or not self.path.is_file():
            buf = io.BytesIO()
            df.to_parquet(buf, index=False)
            write_atomic(self.path, buf.getvalue())
            df = frame(pd.read_parquet(io.BytesIO(buf.getvalue())))  # the kinds a reader of the file gets
            for p in parts:  # a crash here only leaves parts that fold to the same rows again
                p.unlink(missing_ok=True)
                self._written.pop(p, None)
        self.last_fold = time.monotonic()
        self.fold_seconds = self.last_fold - t0
        return df

    def fold_if_due(self, every: float = 30.0) -> None:
        """Fold when ``every`` seconds (and 20x the last fold's own time) have passed."""
        if time.monotonic() - self.last_fold >= max(every, 20 * self.fold_seconds):
            self.fold()
