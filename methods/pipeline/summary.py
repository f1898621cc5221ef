"""The evaluate command's summary: mean ± std per method x layer, and the chance check.

A method whose maps do not beat the random reference map (deletion AUC not lower, insertion AUC not
higher, on the same layer's grid) explains nothing on this data with these options:
:func:`chance_warnings` says so, and the command prints it under the summary table.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

__all__ = ["REFERENCES", "summarize", "format_summary", "chance_warnings"]

REFERENCES: tuple[str, ...] = ("random", "centre")


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std per method x layer (references last): n, the two AUCs, Average Drop (%),
    Increase in Confidence (%), pointing game (%) and energy. Rows without a method (a
    ground-truth object the detector missed) are left out."""
    df = df[df["method"].notna()]
    metrics = {
        "deletion_auc": 1.0,
        "insertion_auc": 1.0,
        "avg_drop": 1.0,
        "increase": 100.0,
        "pointing_hit": 100.0,
        "energy_pg": 1.0,
        "seconds": 1.0,
    }
    order = list(
        dict.fromkeys(
            [m for m in df["method"] if m not in REFERENCES] + [m for m in REFERENCES if m in set(df["method"])]
        )
    )
    out = []
    for method in order:
        for layer in dict.fromkeys(df.loc[df["method"] == method, "layer"]):
            g = df[(df["method"] == method) & (df["layer"] == layer)]
            row: dict[str, Any] = {"method": method, "layer": layer, "n": len(g)}
            for col, scale in metrics.items():
                if col not in g.columns:  # a detector's / segmenter's table has no Average Drop, no Increase
                    row[f"{col}_mean"] = row[f"{col}_std"] = math.nan
                    continue
                v = pd.to_numeric(g[col].astype("Float64"), errors="coerce").dropna().astype(float) * scale
                row[f"{col}_mean"] = float(v.mean()) if len(v) else math.nan
                row[f"{col}_std"] = float(v.std(ddof=0)) if len(v) else math.nan
            out.append(row)
    return pd.DataFrame(out)


def format_summary(summary: pd.DataFrame) -> str:
    """The summary as a text table: ``mean ± std`` per metric (percent for the rates)."""
    headers = {
        "deletion_auc": "deletion AUC ↓",
        "insertion_auc": "insertion AUC ↑",
        "avg_drop": "avg drop % ↓",
        "increase": "increase % ↑",
        "pointing_hit": "pointing % ↑",
        "energy_pg": "energy ↑",
        "seconds": "map s",
    }
    table = {"method": summary["method"], "layer": summary["layer"], "n": summary["n"]}
    for col, title in headers.items():
        digits = 1 if col in ("avg_drop", "increase", "pointing_hit") else 3
        table[title] = [
            "—"
            if math.isnan(m)
            else (f"{m:.{digits}f}" if col in ("increase", "pointing_hit") else f"{m:.{digits}f} ± {s:.{digits}f}")
            for m, s in zip(summary[f"{col}_mean"], summary[f"{col}_std"])
        ]
    return pd.DataFrame(table).to_string(index=False)


def chance_warnings(summary: pd.DataFrame) -> list[str]:
    """One "warning: ..." line per method x layer whose mean deletion AUC is not below the random
    map's on that layer, and one per mean insertion AUC not above it (a NaN mean counts as not
    beating it). Empty when every method beats chance or there is no random row.

    Examples:
        >>> s = pd.DataFrame({"method": ["gradcam", "random"], "layer": ["l4", "l4"],
        ...                   "deletion_auc_mean": [0.30, 0.25], "insertion_auc_mean": [0.8, 0.4]})
        >>> chance_warnings(s)
        ['warning: gradcam at l4 does not beat the random map on deletion (AUC 0.300 vs random 0.250; lower is better)']
    """
    random = {row["layer"]: row for _, row in summary[summary["method"] == "random"].iterrows()}
    out = []
    for _, row in summary.iterrows():
        ref = random.get(row["layer"])
        if row["method"] in REFERENCES or ref is None:
            continue
        for col, kind, better, beats in (
            ("deletion_auc_mean", "deletion", "lower", lambda a, b: a < b),
            ("insertion_auc_mean", "insertion", "higher", lambda a, b: a > b),
        ):
            a, b = float(row[col]), float(ref[col])
            if not beats(a, b):
                out.append(
                    f"warning: {row['method']} at {row['layer']} does not beat the random map on {kind} "
                    f"(AUC {a:.3f} vs random {b:.3f}; {better} is better)"
                )
    return out
