"""A drift report as a file: :func:`write_report` (the command) and :func:`read_report` (the Compare page).

The report is the JSON of :func:`methods.pipeline.drift.drift` (``"kind": "gradlens-drift"``).
:func:`read_report` reads one from untrusted bytes (an upload): at most :data:`MAX_REPORT_BYTES`,
strict JSON (no NaN), the kind and version checked, and only the fields the page shows kept, each
checked for its type (numbers finite, texts at most :data:`MAX_TEXT` characters, at most
:data:`methods.pipeline.drift.MAX_IMAGES` rows). Texts stay plain text: whoever shows them
escapes them.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from methods.errors import InputError
from methods.pipeline.drift import MAX_IMAGES, REPORT_KIND, REPORT_VERSION, STATISTICS

__all__ = ["MAX_REPORT_BYTES", "MAX_TEXT", "ROW_NUMBERS", "write_report", "read_report"]

#: The largest report :func:`read_report` reads (a 2000-image report is about 1.5 MB).
MAX_REPORT_BYTES = 8_000_000
#: The longest text field kept (image names, model names, flags).
MAX_TEXT = 300

#: The numeric fields of an image row, in the order the page's table shows them.
ROW_NUMBERS: tuple[str, ...] = (
    "map_change",
    "spearman",
    "pearson",
    "iou_top",
    "top1_changed",
    "top1_a",
    "top1_b",
    "faithfulness_drop",
    "deletion_a",
    "deletion_b",
    "insertion_a",
    "insertion_b",
)
_ROW_TEXTS = ("image", "target_name")
_CARD_FIELDS = ("name", "given", "source", "digest")


def write_report(report: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``report`` as indented, strict JSON (NaN refused) to ``path``; returns the path.

    Raises:
        OSError: the file cannot be written.
        ValueError: a non-finite number in the report (a bug: drift writes None instead).
    """
    out = Path(path)
    out.write_text(json.dumps(report, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return out


def _bad(what: str, why: str) -> InputError:
    return InputError(
        f"not a readable drift report: {what} {why}. Write one with `gradlens drift ... --out report.json`."
    )


def _text(value: Any, what: str, *, none: bool = False) -> str | None:
    if value is None and none:
        return None
    if not isinstance(value, str):
        raise _bad(what, f"must be text, got {type(value).__name__}")
    return value[:MAX_TEXT]


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise _bad(what, f"must be a finite number or null, got {str(value)[:40]!r}")
    return float(value)


def _reject_constant(name: str) -> Any:
    raise InputError(f"{name} is not JSON")


def read_report(data: bytes) -> dict[str, Any]:
    """The checked report held by ``data`` (see the module docstring).

    Returns:
        ``{"model_a", "model_b", "layer", "method", "images_spec", "n_images", "summary",
        "thresholds", "failed", "passed", "images"}`` with only the checked fields.

    Raises:
        InputError: too large, not JSON, another kind or version, a field of the wrong type.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise InputError(f"a drift report is read from bytes, got {type(data).__name__}")
    if len(data) > MAX_REPORT_BYTES:
        raise InputError(
            f"the drift report is {len(data) / 1e6:.1f} MB; reports up to {MAX_REPORT_BYTES / 1e6:.0f} MB open here"
        )
    try:
        raw = json.loads(bytes(data).decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _bad("the file", f"is not strict JSON ({type(exc).__name__})") from None
    if not isinstance(raw, dict) or raw.get("kind") != REPORT_KIND:
        raise _bad("the file", f'has no "kind": "{REPORT_KIND}"')
    if raw.get("version") != REPORT_VERSION:
        raise _bad("its version", f"is {str(raw.get('version'))[:20]!r}; this GradLens reads version {REPORT_VERSION}")
    out: dict[str, Any] = {}
    for side in ("model_a", "model_b"):
        card = raw.get(side)
        if not isinstance(card, dict):
            raise _bad(side, "is missing")
        out[side] = {k: _text(card.get(k), f"{side}.{k}", none=True) for k in _CARD_FIELDS}
    given = raw.get("options")
    options: dict = given if isinstance(given, dict) else {}
    out["method"] = _text(options.get("method", "?"), "options.method")
    out["layer"] = _text(raw.get("layer"), "layer")
    out["images_spec"] = _text(raw.get("images_spec", ""), "images_spec")
    summary = raw.get("summary")
    if not isinstance(summary, dict):
        raise _bad("summary", "is missing")
    out["summary"] = {}
    for stat in STATISTICS:
        entry = summary.get(stat)
        if not isinstance(entry, dict):
            raise _bad(f"summary.{stat}", "is missing")
        out["summary"][stat] = {k: _number(entry.get(k), f"summary.{stat}.{k}") for k in ("mean", "low", "high", "n")}
    given = raw.get("thresholds")
    thresholds: dict = given if isinstance(given, dict) else {}
    out["thresholds"] = {str(k)[:40]: _number(v, f"thresholds.{k}") for k, v in list(thresholds.items())[:10]}
    failed = raw.get("failed")
    if not isinstance(failed, list):
        raise _bad("failed", "must be a list")
    out["failed"] = []
    for f in failed[:10]:
        if not isinstance(f, dict):
            raise _bad("failed", "must hold objects")
        limit, value = _number(f.get("limit"), "failed.limit"), _number(f.get("value"), "failed.value")
        if limit is None or value is None:
            raise _bad("failed", "must give each threshold's limit and value")
        out["failed"].append(
            {"threshold": _text(f.get("threshold"), "failed.threshold"), "limit": limit, "value": value}
        )
    out["passed"] = not out["failed"]
    rows = raw.get("images")
    if not isinstance(rows, list) or not rows:
        raise _bad("images", "must be a non-empty list of rows")
    if len(rows) > MAX_IMAGES:
        raise _bad("images", f"has {len(rows):,} rows; a drift report holds at most {MAX_IMAGES:,}")
    out["images"] = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise _bad(f"images[{i}]", "must be an object")
        clean: dict[str, Any] = {k: _text(row.get(k, ""), f"images[{i}].{k}") for k in _ROW_TEXTS}
        clean.update({k: _number(row.get(k), f"images[{i}].{k}") for k in ROW_NUMBERS})
        flags = row.get("flags", [])
        clean["flags"] = [str(f)[:MAX_TEXT] for f in flags[:5]] if isinstance(flags, list) else []
        out["images"].append(clean)
    out["n_images"] = len(out["images"])
    return out
