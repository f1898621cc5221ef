"""methods/review/csv_safe.py: text that a spreadsheet would run as a formula is neutralised."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest

from methods.review.csv_safe import FORMULA_STARTS, csv_bytes, safe_cell, safe_frame, safe_row


@pytest.mark.parametrize("text", ["=1+2", "+1", "-1+2", "@SUM(A1)", "\t=1", "\r=1", '=HYPERLINK("http://x")'])
def test_formula_starts_are_prefixed(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["layer4", "Grad-CAM++", " =1", "", 0, -0.5, 1e-9, None, True])
def test_other_values_are_unchanged(value):
    assert safe_cell(value) is value


def test_frame_cells_columns_and_index():
    frame = pd.DataFrame(
        {
            "image": ["=cmd|' /C calc'!A0", "cat.png"],
            "=col": ["a", "-b"],
            "auc": [-0.5, 0.25],
            "cat": pd.Categorical(["@x", "y"]),
            "s": pd.array(["+1", "ok"], dtype="string"),
        }
    )
    out = safe_frame(frame)
    assert list(out.columns) == ["image", "'=col", "auc", "cat", "s"]
    assert out["image"].tolist() == ["'=cmd|' /C calc'!A0", "cat.png"]
    assert out["=col" if "=col" in out else "'=col"].tolist() == ["a", "'-b"]
    assert out["auc"].tolist() == [-0.5, 0.25] and out["auc"].dtype == float
    assert out["cat"].tolist() == ["'@x", "y"] and out["s"].tolist() == ["'+1", "ok"]
    assert frame["image"][0].startswith("=")  # the caller's frame is not changed
    rows = list(csv.reader(io.StringIO(csv_bytes(frame).decode())))
    assert rows[1][:3] == ["'=cmd|' /C calc'!A0", "a", "-0.5"]


def test_rows_for_csv_writer():
    assert safe_row(["=x", 1.5, "-y", -2]) == ["'=x", 1.5, "'-y", -2]
    assert FORMULA_STARTS == ("=", "+", "-", "@", "\t", "\r")


def test_rows_and_columns_are_read_as_a_frame_and_made_safe():
    """Home's tables are plain rows (the method table) and columns (the top-5): their CSV is the
    same as a DataFrame's, formulas neutralised."""
    rows = [{"Method": "=HYPERLINK(1)", "Cost": "1 fwd"}, {"Method": "Grad-CAM", "Cost": "+2"}]
    assert csv_bytes(rows).decode() == "Method,Cost\n'=HYPERLINK(1),1 fwd\nGrad-CAM,'+2\n"
    columns = {"Class": ["@cat", "dog"], "Probability": [0.75, 0.25]}
    assert csv_bytes(columns).decode() == "Class,Probability\n'@cat,0.75\ndog,0.25\n"
