"""A user model's class names and preprocessing, from a small JSON file: :class:`ModelConfig`.

The commands' ``--model-config FILE`` (beside ``--checkpoint`` or a ``module:function`` factory)
reads one JSON object; every field is optional::

    {
      "class_names": ["cat", "dog", "fox"],      (or "classes_file": "classes.txt", one name a line)
      "input_size": 224,                         (or [height, width])
      "mean": [0.485, 0.456, 0.406],
      "std": [0.229, 0.224, 0.225],
      "resize": "crop",                          (squash, crop or letterbox: methods.data.placement)
      "crop_pct": 0.875,
      "task": "classification"
    }

A field left out keeps what the model declares (a checkpoint's classifier gives the number of
classes, a factory's :class:`~methods.models.loaded.LoadedModel` its own values), else the
defaults of :func:`methods.models.checkpoints.load.load_checkpoint` (224 x 224, ImageNet mean/std,
squash). A ``classes_file`` path is read relative to the config file.

Bounds (a config is user input): the file at most 1 MiB, a classes file at most 4 MiB, at most
100,000 classes of at most 200 characters each, ``input_size`` sides 8 to 4096, ``std`` > 0,
``crop_pct`` in (0, 1]. An unknown field is refused (a typo would otherwise be ignored silently).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from methods._internal.checks import floats3, size2
from methods.data.placement import RESIZES
from methods.errors import OptionError, suggest
from methods.models.loaded import TASKS

__all__ = ["ModelConfig", "read_model_config", "MAX_CLASSES", "MAX_CONFIG_BYTES"]

MAX_CONFIG_BYTES = 1 << 20
MAX_CLASSES_FILE_BYTES = 4 << 20
MAX_CLASSES = 100_000
MAX_NAME_CHARS = 200
SIZE_RANGE = (8, 4096)


@dataclass(frozen=True)
class ModelConfig:
    """What a user says about their model; ``None`` = keep what the model declares (or the default).

    Raises:
        OptionError: a field out of its bounds (module docstring), the message names it.
    """

    class_names: tuple[str, ...] | None = None
    input_size: tuple[int, int] | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    resize: str | None = None
    crop_pct: float | None = None
    task: str | None = None

    def __post_init__(self) -> None:
        if self.class_names is not None:
            names = tuple(self.class_names) if isinstance(self.class_names, (list, tuple)) else None
            if not names or not all(isinstance(n, str) and 0 < len(n) <= MAX_NAME_CHARS for n in names):
                raise OptionError(
                    f"model config: class_names must be a non-empty list of names of 1-{MAX_NAME_CHARS} characters"
                )
            if len(names) > MAX_CLASSES:
                raise OptionError(f"model config: {len(names)} class names; at most {MAX_CLASSES}")
            object.__setattr__(self, "class_names", names)
        if self.input_size is not None:
            size = size2(self.input_size, "model config: input_size")
            if not all(SIZE_RANGE[0] <= s <= SIZE_RANGE[1] for s in size):
                raise OptionError(f"model config: input_size {size} must have sides {SIZE_RANGE[0]} to {SIZE_RANGE[1]}")
            object.__setattr__(self, "input_size", size)
        if self.mean is not None:
            object.__setattr__(self, "mean", floats3(self.mean, "model config: mean"))
        if self.std is not None:
            std = floats3(self.std, "model config: std")
            if min(std) <= 0:
                raise OptionError(f"model config: std must be three numbers > 0, got {list(std)}")
            object.__setattr__(self, "std", std)
        if self.resize is not None and self.resize not in RESIZES:
            raise OptionError(f"model config: resize must be one of {list(RESIZES)}, got {self.resize!r}")
        if self.crop_pct is not None:
            ok = isinstance(self.crop_pct, (int, float)) and not isinstance(self.crop_pct, bool)
            if not ok or not 0.0 < float(self.crop_pct) <= 1.0:
                raise OptionError(f"model config: crop_pct must be in (0, 1], got {self.crop_pct!r}")
            object.__setattr__(self, "crop_pct", float(self.crop_pct))
        if self.task is not None and self.task not in TASKS:
            raise OptionError(f"model config: task must be one of {list(TASKS)}, got {self.task!r}")

    def overrides(self) -> dict[str, Any]:
        """The fields that were given, for ``dataclasses.replace`` of a LoadedModel."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


def _read_limited(path: Path, limit: int, what: str) -> str:
    if not path.is_file():
        raise OptionError(f"{what} {str(path)!r} is not a file; check the path")
    if path.stat().st_size > limit:
        raise OptionError(f"{what} {str(path)!r} is larger than {limit // 1024} KiB")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OptionError(f"{what} {str(path)!r} cannot be read as UTF-8 text ({exc})") from None


def read_model_config(path: str | Path | None) -> ModelConfig:
    """The :class:`ModelConfig` in a JSON file (``None`` -> all fields unset).

    Raises:
        OptionError: a missing or unreadable file, not a JSON object, an unknown field (with the
            closest known ones), both ``class_names`` and ``classes_file``, a bad value.
    """
    if path is None:
        return ModelConfig()
    path = Path(path).expanduser()
    text = _read_limited(path, MAX_CONFIG_BYTES, "model config")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OptionError(f"model config {str(path)!r} is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise OptionError(f"model config {str(path)!r} must hold one JSON object, got {type(raw).__name__}")
    known = [f.name for f in fields(ModelConfig)] + ["classes_file"]
    for key in raw:
        if key not in known:
            raise OptionError(
                f"model config: unknown field {key!r}.{suggest(key, known)} Known fields: {', '.join(known)}"
            )
    if "classes_file" in raw:
        if "class_names" in raw:
            raise OptionError("model config: give class_names or classes_file, not both")
        file = raw.pop("classes_file")
        if not isinstance(file, str):
            raise OptionError(f"model config: classes_file must be a path, got {file!r}")
        lines = _read_limited(path.parent / Path(file).expanduser(), MAX_CLASSES_FILE_BYTES, "classes file")
        raw["class_names"] = [line.strip() for line in lines.splitlines() if line.strip()]
    return ModelConfig(**raw)
