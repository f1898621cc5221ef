"""The Benchmark page's data, without streamlit: read a result table, tell what it is, format the
leaderboard, and make the view that opens one scored image on the Methods page.

Two kinds of table open here:

* an **evaluate** result (``python -m methods.evaluate``, columns in :mod:`methods.pipeline.evaluate`):
  scores per image x method x layer x class, the leaderboard's input
  (:func:`methods.metrics.benchmark.leaderboard.leaderboard`);
* a **batch manifest** (``python -m methods.batch``, columns in :mod:`methods.pipeline.manifest`): maps
  and pictures, no scores; the page summarises it and shows its pictures.
"""

from __future__ import annotations

import io
import math
import os
import pathlib
from dataclasses import dataclass

import pandas as pd
import pyarrow.parquet as pq

from dashboard.core.scene_ids import scene_id
from dashboard.core.state import ViewState
from methods.errors import InputError
from methods.metrics.benchmark.leaderboard import METRICS, REFERENCES

__all__ = [
    "MAX_BYTES",
    "MAX_ROWS",
    "MAX_MENU",
    "BOOT_DRAWS",
    "capped_menu",
    "resamples_for",
    "RESULTS_ENV",
    "results_root",
    "Table",
    "read_table",
    "read_path",
    "leaderboard_tables",
    "cell",
    "manifest_summary",
    "scene_of",
    "methods_view",
    "picture_path",
]

#: Largest table read (upload or server file): 200 MB.
MAX_BYTES = 200_000_000
_EVALUATE_KEYS = ("image", "method", "layer", "target")
_MANIFEST_KEYS = ("image", "method", "layer", "overlay", "map_key")
_BOOLS = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0}


@dataclass(frozen=True)
class Table:
    """A table as read: ``kind`` is ``"evaluate"`` or ``"manifest"``; ``name`` the file name shown;
    ``folder`` the manifest's OUTDIR when it was opened from a server path (its pictures are there)."""

    kind: str
    name: str
    frame: pd.DataFrame
    folder: pathlib.Path | None = None


class _TooLong(Exception):
    def __init__(self, rows: int | None) -> None:
        self.rows = rows


def _parse(data: bytes, name: str) -> pd.DataFrame:
    suffix = pathlib.PurePath(name).suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise InputError(f"{name!r} is neither a .parquet nor a .csv file; open an evaluate result or a batch manifest")
    if len(data) > MAX_BYTES:
        raise InputError(f"{name!r} is {len(data) / 1e6:.0f} MB; tables up to {MAX_BYTES / 1e6:.0f} MB open here")
    try:
        if suffix == ".parquet":
            # the row count from the file's footer, before a single row is decoded: 189 KB of 10 M
            # identical rows (run-length encoded) decoded to 2.5 GB before the row cap saw them
            rows = pq.ParquetFile(io.BytesIO(data)).metadata.num_rows
            if rows > MAX_ROWS:
                raise _TooLong(rows)
            return pd.read_parquet(io.BytesIO(data))
        df = pd.read_csv(io.BytesIO(data), nrows=MAX_ROWS + 1)  # never more than the cap + 1 rows
        if len(df) > MAX_ROWS:
            raise _TooLong(None)
        return df
    except _TooLong as long:
        count = f"{long.rows:,}" if long.rows is not None else f"more than {MAX_ROWS:,}"
        raise InputError(f"{name!r} has {count} rows; this page opens tables of up to {MAX_ROWS:,} rows") from None
    except Exception as exc:  # noqa: BLE001 -- any parser failure on a user's file is a message, not a bug
        raise InputError(f"{name!r} cannot be read as {suffix[1:]}: {type(exc).__name__}: {str(exc)[:200]}") from None


def _as_float(col: pd.Series) -> pd.Series:
    """A metric column as float: bools and their text (CSV) as 0/1, empty cells as NaN."""
    if col.dtype == object or str(col.dtype) in ("string", "str"):
        col = col.map(lambda v: _BOOLS.get(str(v).strip().lower(), v) if isinstance(v, (str, bool)) else v)
    return pd.to_numeric(col.astype(object), errors="coerce").astype(float)


def read_table(data: bytes, name: str, folder: pathlib.Path | None = None) -> Table:
    """Read ``data`` (the bytes of ``name``, .parquet or .csv) and tell its kind.

    Raises:
        InputError: another suffix, too large, unreadable, or neither an evaluate result nor a
            manifest (the message names the missing columns).
    """
    df = _parse(data, name)
    if len(df) > MAX_ROWS:
        raise InputError(f"{name!r} has {len(df):,} rows; this page opens tables of up to {MAX_ROWS:,} rows")
    if all(c in df.columns for c in _MANIFEST_KEYS):
        return Table("manifest", name, df.reset_index(drop=True), folder)
    missing = [c for c in _EVALUATE_KEYS if c not in df.columns]
    metrics = [m for m in METRICS if m in df.columns]
    if missing or not metrics:
        raise InputError(
            f"{name!r} is neither an evaluate result nor a batch manifest: "
            + (f"it has no column(s) {missing}" if missing else f"it has none of the metric columns {list(METRICS)}")
            + f" (its columns: {', '.join(map(str, list(df.columns)[:10]))}"
            + (" …)" if len(df.columns) > 10 else ")")
        )
    df = df.reset_index(drop=True).copy()
    for m in metrics:
        df[m] = _as_float(df[m])
    for c in ("image", "method", "layer"):
        df[c] = df[c].astype(str)
    target = pd.to_numeric(df["target"], errors="coerce")
    if target.isna().any():
        raise InputError(f"{name!r}: the target column has {int(target.isna().sum())} empty or non-integer cell(s)")
    df["target"] = target.astype("int64")
    if "target_name" not in df.columns:
        df["target_name"] = df["target"].astype(str)
    df["target_name"] = df["target_name"].astype(str)
    return Table("evaluate", name, df, None)


RESULTS_ENV = "GRADLENS_RESULTS_ROOT"
"""The folder the "Path on the server" box may read below: ``$GRADLENS_RESULTS_ROOT`` (default
``results`` in the server's working folder); ``off`` turns the box off."""

#: Rows a table may have on this page (the leaderboard's bootstrap and the menus grow with them).
MAX_ROWS = 200_000

#: Options a menu built from a table's cells may have (a 10 M-row manifest of one image built a
#: "Map" menu of 10 M options); the rest are named in a message.
MAX_MENU = 1_000

#: Resample draws (resamples x rows) one bootstrap interval may take: with more rows than
#: ``BOOT_DRAWS / resamples``, the page takes fewer resamples and says so (50,000 rows at the
#: page's 20,000 resamples were 1e9 draws per interval, minutes of a core per leaderboard).
BOOT_DRAWS = 100_000_000


def capped_menu(options: list, what: str) -> tuple[list, str | None]:
    """At most :data:`MAX_MENU` of ``options``, and the message to show when some were left out."""
    if len(options) <= MAX_MENU:
        return options, None
    return options[:MAX_MENU], (
        f"This table has {len(options):,} {what}; the menu lists the first {MAX_MENU:,}. "
        "Open a smaller table to see the others."
    )


def resamples_for(df: pd.DataFrame, wanted: int) -> tuple[int, str | None]:
    """The resamples the leaderboard takes for ``df``: ``wanted``, or fewer when its largest
    method x layer group would need more than :data:`BOOT_DRAWS` draws per interval (at least 100)."""
    largest = int(df.groupby(["method", "layer"], sort=False).size().max()) if len(df) else 0
    cap = max(100, BOOT_DRAWS // max(1, largest))
    if wanted <= cap:
        return wanted, None
    return cap, (
        f"{wanted:,} resamples of {largest:,} rows would be {wanted * largest:,} draws per interval; "
        f"the intervals use {cap:,} resamples (at most {BOOT_DRAWS:,} draws each)."
    )


def results_root() -> pathlib.Path | None:
    """The resolved results folder, or None when the operator turned the path box off."""
    value = os.environ.get(RESULTS_ENV, "").strip()
    if value.lower() in ("off", "none", "0", "false"):
        return None
    return pathlib.Path(value or "results").expanduser().resolve()


def read_path(text: str, root: pathlib.Path | None = None) -> Table:
    """Read a table below the results folder (:func:`results_root`); a manifest's folder is kept for
    its pictures.

    The path may be relative to the folder or absolute; symbolic links are resolved first, and
    anything that is not a regular .parquet or .csv file INSIDE the folder gets the same message,
    so the box tells nothing about the rest of the server (no existence, size or type).

    Raises:
        InputError: the box is off, an empty path, anything outside the folder or not a table file
            there (one message), or :func:`read_table`'s reasons.
    """
    root = results_root() if root is None else root
    if root is None:
        raise InputError("reading tables from the server is turned off here; upload the table instead")
    typed = str(text).strip()
    if not typed:
        raise InputError("type the path of a .parquet or .csv file in the results folder")
    refused = InputError(
        f"no .parquet or .csv table named {typed[:200]!r} in the results folder (paths are relative to the "
        f"folder the operator set with ${RESULTS_ENV}); upload the table instead"
    )
    try:
        path = (root / typed).resolve()
        path.relative_to(root)
        ok = path.suffix.lower() in (".parquet", ".csv") and path.is_file()
    except (ValueError, OSError):
        raise refused from None
    if not ok:
        raise refused
    if path.stat().st_size > MAX_BYTES:
        raise InputError(
            f"{typed!r} is {path.stat().st_size / 1e6:.0f} MB; tables up to {MAX_BYTES / 1e6:.0f} MB open here"
        )
    return read_table(path.read_bytes(), path.name, path.parent)


# ------------------------------------------------------------------------------------------
# the leaderboard as people read it


def _digits(metric: str) -> int:
    return 1 if METRICS[metric].unit == "%" else 3


def cell(mean: float, low: float, high: float, metric: str, p: float | None = None) -> str:
    """``0.123 [0.101, 0.145]`` (``%`` metrics with one decimal), ``· p=0.012`` when ``p`` is given,
    ``—`` for no value.

    Examples:
        >>> cell(0.1234, 0.1, 0.15, "deletion_auc", p=0.0123)
        '0.123 [0.100, 0.150] · p=0.012'
    """
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    d = _digits(metric)
    text = f"{mean:.{d}f} [{low:.{d}f}, {high:.{d}f}]"
    if p is not None and not math.isnan(p):
        text += f" · p={p:.3f}" if p >= 0.001 else f" · p={p:.1e}"
    return text


def _header(metric: str) -> str:
    info = METRICS[metric]
    return f"{info.label}{' (%)' if info.unit == '%' else ''} {'↓' if info.better == 'lower' else '↑'}"


def leaderboard_tables(board: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The long leaderboard as wide tables: ``"means"`` (one row per method x layer, a column per
    metric: mean [interval]) and one per reference (difference [interval] · p)."""
    keys = ["method", "layer"]
    base = board.drop_duplicates(keys)[keys].reset_index(drop=True)
    n = board.groupby(keys, sort=False)["n"].max().reset_index(drop=True)
    out = {"means": base.assign(n=n.values)}
    metrics = list(dict.fromkeys(board["metric"]))
    for m in metrics:
        part = board[board["metric"] == m].set_index(keys)
        rows = part.loc[list(map(tuple, base.values))]
        out["means"][_header(m)] = [cell(r.mean, r.low, r.high, m) for r in rows.itertuples()]
    for ref in REFERENCES:
        if f"{ref}_diff" not in board.columns:
            continue
        table = base[~base["method"].eq(ref)].reset_index(drop=True)
        for m in metrics:
            part = board[board["metric"] == m].set_index(keys).loc[list(map(tuple, table.values))]
            table[_header(m)] = [
                cell(
                    getattr(r, f"{ref}_diff"),
                    getattr(r, f"{ref}_low"),
                    getattr(r, f"{ref}_high"),
                    m,
                    getattr(r, f"{ref}_p"),
                )
                for r in part.itertuples()
            ]
        out[ref] = table
    return out


def manifest_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per method x layer of a batch manifest: rows, images, mean probability of the explained
    class, mean seconds per map, and top-1 accuracy where the manifest has labels."""
    rows = []
    for (method, layer), g in df.groupby(["method", "layer"], sort=False):
        label = pd.to_numeric(g["label"], errors="coerce") if "label" in g.columns else pd.Series(dtype=float)
        labelled = label.notna()
        acc = (
            float((pd.to_numeric(g.loc[labelled, "predicted"], errors="coerce") == label[labelled]).mean() * 100)
            if labelled.any() and "predicted" in g.columns
            else math.nan
        )
        rows.append(
            {
                "method": method,
                "layer": layer,
                "rows": len(g),
                "images": g["image"].nunique(),
                "mean probability": float(pd.to_numeric(g.get("prob"), errors="coerce").mean())
                if "prob" in g
                else math.nan,
                "seconds per map": float(pd.to_numeric(g.get("seconds"), errors="coerce").mean())
                if "seconds" in g
                else math.nan,
                "top-1 accuracy (%)": acc,
            }
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------
# one image on the Methods page


def scene_of(df: pd.DataFrame, image: str) -> str | None:
    """The dashboard id of an evaluated scene (``scene:<seed>``, ``scene2:<seed>`` for a scene
    with two explained true classes), None for a file (it cannot travel in a link)."""
    if not str(image).startswith("scene:"):
        return None
    digits = str(image)[len("scene:") :]
    if not digits.isdigit():
        return None
    rows = df[df["image"] == image]
    labels = pd.to_numeric(rows["label"], errors="coerce").dropna().unique() if "label" in rows.columns else []
    return scene_id(int(digits), 2 if len(labels) >= 2 else 1)


def methods_view(
    df: pd.DataFrame, row: pd.Series, models: tuple[str, ...], method_keys: tuple[str, ...]
) -> tuple[ViewState | None, str]:
    """The Methods page's view of one scored row, or None and the reason it cannot open there."""
    image = scene_of(df, str(row["image"]))
    if image is None:
        return None, (
            f"{row['image']} is a file of the evaluated folder: files cannot travel in a link. Upload it "
            "on the Methods page (sidebar, Image) to see its maps."
        )
    model = str(row.get("model", "scenes_vgg"))
    if model not in models:
        return None, f"The table's model {model!r} is not in this dashboard's catalog."
    method = str(row["method"])
    chosen = (method,) if method in method_keys else ("gradcam",)
    return ViewState(
        page="methods", model=model, image=image, target=int(row["target"]), methods=chosen, layer=str(row["layer"])
    ), ""


def picture_path(folder: pathlib.Path, relative: str) -> pathlib.Path | None:
    """``folder / relative`` when it is a file INSIDE ``folder`` (a manifest's picture), else None."""
    try:
        path = (folder / str(relative)).resolve()
        path.relative_to(folder.resolve())
    except (ValueError, OSError):
        return None
    return path if path.is_file() else None
