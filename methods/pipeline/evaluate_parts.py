"""evaluate's checkpoint: every scored image is saved as it finishes, so a killed run resumes.

A run with ``out`` keeps a hidden folder beside it, ``.<out name>.parts/``:

* ``settings.json`` — what the results depend on (model, methods, layers, seed, steps,
  baselines, precision, batch size, references, the ``--images`` spec). A folder whose settings
  differ is not resumed from: it is emptied and the run starts again;
* one ``<index>.json`` per finished image (its ``index``, ``name``, ``status`` and ``rows``),
  written atomically (:func:`methods.pipeline.batch_files.write_atomic`) before the progress bar
  moves. A file input also records its size and mtime: a changed file is scored again.

On a resume, images with a readable part whose name (and file stamp) still match are not scored
again; a part that cannot be read (a foreign or damaged file) is quarantined
(:func:`~methods.pipeline.batch_files.quarantine`) and its image scored again, as are images
that failed (a failure may be transient). When the table has been written the folder is removed.
Without ``out`` nothing is kept (there is nowhere to resume to).

The rows of a resumed run equal an uninterrupted run's, except the wall-time columns
(``seconds``, ``eval_seconds``) of the images scored in the second run.
"""

from __future__ import annotations

import json
import math
import pathlib
import shutil
from collections.abc import Callable
from typing import Any

import numpy as np

from methods.errors import WrongTypeError
from methods.pipeline.batch_files import file_stamp, quarantine, remove_partials, write_atomic

__all__ = ["EvalCheckpoint", "parts_folder"]

_SETTINGS = "settings.json"


def parts_folder(out: pathlib.Path) -> pathlib.Path:
    """The checkpoint folder of ``out``: ``.<out name>.parts`` in the same folder."""
    return out.with_name(f".{out.name}.parts")


def _plain(value: Any) -> Any:
    """A JSON-ready value (numpy scalars as Python ones; NaN kept: json writes and reads it)."""
    if isinstance(value, np.generic):
        return value.item()
    raise WrongTypeError(f"cannot store a {type(value).__name__} in an evaluate checkpoint (a row's cell)")


def _same(a: Any, b: Any) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def _stamp(item: dict) -> list[int] | None:
    path = item.get("path")
    if not path:
        return None
    try:
        return list(file_stamp(pathlib.Path(path)))
    except OSError:
        return None


class EvalCheckpoint:
    """The finished images of one evaluate run with ``out`` (see the module docstring)."""

    def __init__(self, out: pathlib.Path, settings: dict[str, Any], log: Callable[[str], None]) -> None:
        self.folder = parts_folder(pathlib.Path(out))
        self.settings = json.loads(json.dumps(settings, default=_plain))
        self.log = log
        self._stamps: dict[int, list[int] | None] = {}

    def open(self, items: list[dict]) -> dict[int, dict]:
        """Prepare the folder; returns the finished results of ``items`` from an earlier run
        (``index -> result``), which are not to be scored again."""
        self._stamps = {int(it["index"]): _stamp(it) for it in items}
        folder = self.folder
        if folder.exists() and not folder.is_dir():
            quarantine(folder)
        if folder.is_dir():
            remove_partials(folder)
            if self._settings_on_disk() != self.settings:
                self.log(f"{folder}: an earlier run with other settings; starting again")
                shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / _SETTINGS, json.dumps(self.settings, indent=1).encode())
        return self._finished(items)

    def _settings_on_disk(self) -> Any:
        try:
            return json.loads((self.folder / _SETTINGS).read_text())
        except (OSError, ValueError):
            return None

    def _finished(self, items: list[dict]) -> dict[int, dict]:
        names = {int(it["index"]): it["name"] for it in items}
        found: dict[int, dict] = {}
        for path in sorted(self.folder.glob("*.json")):
            if path.name == _SETTINGS:
                continue
            try:
                part = json.loads(path.read_text())
                index = int(part["index"])
                ok = part["status"] in ("done", "skipped") and isinstance(part["rows"], list)
            except (OSError, ValueError, KeyError, TypeError):
                self.log(f"{path}: unreadable checkpoint part, moved to {quarantine(path).name}; its image runs again")
                continue
            if not ok or names.get(index) != part.get("name") or part.get("stamp") != self._stamps.get(index):
                path.unlink(missing_ok=True)  # another image now, a changed file, or a failure to retry
                continue
            found[index] = part
        if found:
            self.log(f"resuming: {len(found)} image(s) already scored in {self.folder}")
        return found

    def save(self, results: list[dict]) -> None:
        """Persist finished images (before the caller counts them as done); failures are not kept."""
        for r in results:
            if r.get("status") not in ("done", "skipped"):
                continue
            index = int(r["index"])
            part = dict(r, stamp=self._stamps.get(index))
            write_atomic(self.folder / f"{index}.json", json.dumps(part, default=_plain).encode())

    def close(self) -> None:
        """The table is written: the checkpoint is no longer needed."""
        shutil.rmtree(self.folder, ignore_errors=True)
