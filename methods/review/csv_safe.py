"""CSV that a spreadsheet opens as data: text cells that would start a formula are neutralised.

A cell starting with ``=``, ``+``, ``-`` or ``@`` (and tab or carriage return, which some
spreadsheets skip before looking) is read by Excel, LibreOffice and Google Sheets as a FORMULA:
``=HYPERLINK("http://...","click")`` in an image name or a method label becomes a live link, and
DDE payloads can run programs (OWASP "CSV Injection"). :func:`safe_cell` prefixes such TEXT with a
single quote, which spreadsheets show as text; numbers are left alone (``-0.5`` is a number, not
a formula, and stays one).

Every CSV GradLens writes goes through here: :func:`csv_bytes` for a table (the evaluate
command's ``--out x.csv``, the dashboard's downloads) and :func:`safe_row` for ``csv.writer`` rows
(the report's ``curves.csv``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["FORMULA_STARTS", "safe_cell", "safe_row", "safe_frame", "csv_bytes"]

FORMULA_STARTS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a text cell as a formula."""


def safe_cell(value: Any) -> Any:
    """``value`` with a leading ``'`` if it is text starting with one of :data:`FORMULA_STARTS`.

    Examples:
        >>> safe_cell('=HYPERLINK("http://x","y")'), safe_cell("layer4"), safe_cell(-0.5)
        ('\\'=HYPERLINK("http://x","y")', 'layer4', -0.5)
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(row: Iterable[Any]) -> list[Any]:
    """Every cell of a ``csv.writer`` row through :func:`safe_cell`."""
    return [safe_cell(v) for v in row]


def safe_frame(frame: Any) -> Any:
    """A copy of a pandas DataFrame whose text cells, column names and index labels are safe (a
    list of row dicts or a dict of columns is read as a DataFrame first)."""
    import pandas as pd

    out = frame.copy() if isinstance(frame, pd.DataFrame) else pd.DataFrame(frame)
    for column in out.columns:
        series = out[column]
        if series.dtype == object or isinstance(series.dtype, (pd.StringDtype, pd.CategoricalDtype)):
            out[column] = series.astype(object).map(safe_cell)
    out.columns = [safe_cell(c) for c in out.columns]
    if out.index.dtype == object:
        out.index = out.index.map(safe_cell)
    return out


def csv_bytes(frame: Any, *, index: bool = False) -> bytes:
    """UTF-8 CSV of a DataFrame (or of rows / columns :func:`safe_frame` reads), made safe by :func:`safe_frame`.

    Examples:
        >>> import pandas as pd
        >>> csv_bytes(pd.DataFrame({"image": ["=1+2", "cat.png"], "auc": [-0.5, 0.25]})).decode()
        "image,auc\\n'=1+2,-0.5\\ncat.png,0.25\\n"
    """
    return safe_frame(frame).to_csv(index=index).encode("utf-8")
