"""The Compare page's drift report: open the JSON of ``gradlens drift --out`` and show what moved.

The report comes as an upload (never a path or a URL: the server reads no file a link names), is
checked by :func:`methods.pipeline.drift_report.read_report` (size cap, strict JSON, kind, version,
every field's type) and drawn as plain tables; every text from it (image and model names, flags)
is escaped before it reaches markdown. The maps themselves are not redrawn: the report holds
numbers, not the checkpoints (run ``gradlens drift`` again, or compare the two models above when
both are uploaded in the sidebar).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.app.errors import notice, shown_errors
from methods.pipeline.drift import STATISTICS
from methods.pipeline.drift_report import MAX_REPORT_BYTES, ROW_NUMBERS, read_report

__all__ = ["UPLOAD_KEY", "STAT_LABELS", "summary_table", "images_table", "section"]

UPLOAD_KEY = "cmp_drift_upload"

STAT_LABELS: dict[str, str] = {
    "map_change": "Map change (1 − Spearman)",
    "spearman": "Spearman of the two maps",
    "pearson": "Pearson of the two maps",
    "iou_top": "Top-10 % IoU",
    "top1_changed": "Top-1 changed (share)",
    "faithfulness_a": "A: insertion − deletion AUC",
    "faithfulness_b": "B: insertion − deletion AUC",
    "faithfulness_drop": "Faithfulness drop (A − B)",
    "deletion_change": "Deletion AUC change (B − A)",
    "insertion_change": "Insertion AUC change (B − A)",
}


def summary_table(report: dict) -> pd.DataFrame:
    """One row per statistic: its mean and 95 % bootstrap interval (pure; no Streamlit)."""
    rows = []
    for stat in STATISTICS:
        v = report["summary"][stat]
        rows.append({"Statistic": STAT_LABELS[stat], "Mean": v["mean"], "Low": v["low"], "High": v["high"]})
    return pd.DataFrame(rows)


def images_table(report: dict, limit: int = 50) -> pd.DataFrame:
    """The ``limit`` most moved images (the report's order), one row each (pure)."""
    rows = []
    for row in report["images"][:limit]:
        rows.append(
            {
                "Image": row["image"],
                "Class explained": row["target_name"],
                **{k: row[k] for k in ROW_NUMBERS},
                "Flags": "; ".join(row["flags"]),
            }
        )
    return pd.DataFrame(rows)


def _verdict(report: dict) -> None:
    a, b = report["model_a"]["name"], report["model_b"]["name"]
    head = (
        f"Drift of {b} against {a}: {report['method']} at {report['layer']}, {report['n_images']} image(s) "
        f"({report['images_spec']})."
    )
    if report["passed"]:
        notice(head + " Within every threshold the run checked.", "success", icon=":material/check_circle:")
        return
    past = "; ".join(f"{f['threshold']} = {f['limit']:g} (mean {f['value']:.4f})" for f in report["failed"])
    notice(head + f" Past its thresholds: {past}.", "warning", icon=":material/trending_down:")


def section() -> None:
    """An expander with the upload; the report's verdict, summary and most-moved images once one is given."""
    with st.expander("Open a drift report (`gradlens drift … --out report.json`)", icon=":material/compare_arrows:"):
        upload = st.file_uploader(
            f"A drift report (JSON, up to {MAX_REPORT_BYTES / 1e6:.0f} MB)",
            type=["json"],
            key=UPLOAD_KEY,
            help="Two checkpoints of one model compared on one image set, written by `gradlens drift A B --images … "
            "--out report.json` (docs/drift.md): which images' maps moved most.",
        )
        if upload is None:
            return
        with shown_errors(upload.name, doing="reading the drift report"):
            report = read_report(upload.getvalue())
            _verdict(report)
            st.dataframe(
                summary_table(report),
                hide_index=True,
                width="stretch",
                column_config={c: st.column_config.NumberColumn(c, format="%.4f") for c in ("Mean", "Low", "High")},
                key="cmp_drift_summary",
            )
            st.caption("Means over the images with 95 % percentile-bootstrap intervals; thresholds bound the means.")
            st.markdown("**The images that moved most** (largest map change first)")
            st.dataframe(images_table(report), hide_index=True, width="stretch", key="cmp_drift_images")
            shown = min(50, report["n_images"])
            st.caption(
                f"{shown} of {report['n_images']} image(s). The report holds numbers, not the checkpoints: to see the "
                "two maps of an image, upload both checkpoints in the sidebar and compare them above."
            )
