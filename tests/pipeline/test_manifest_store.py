"""methods.pipeline.manifest.ManifestStore: the parts a store wrote are folded from memory, and the
manifest is the same table as when every part is read back from disk (what a resumed run does)."""

from __future__ import annotations

import pandas as pd

from methods.pipeline.manifest import COLUMNS, OBJECT_ONLY, ManifestStore, frame


def _row(image: str, method: str = "gradcam", **kw) -> dict:
    row = {c: None for c in COLUMNS if c not in OBJECT_ONLY}
    row.update(
        image=image, method=method, layer="features.20", target=3, target_name="cat", prob=0.25, predicted=3,
        top5=[3, 1, 2, 0, 4], top5_names=list("dbcae"), top5_probs=[0.25, 0.2, 0.2, 0.2, 0.15], original="a",
        grayscale="g", heatmap="h", overlay="o", maps="m", map_key=f"{method}__features.20", map_height=16,
        map_width=16, seconds=0.01, notes="", model="scenes_vgg", precision="fp32", precision_requested="auto",
        device="cpu", norm="minmax", relu=True, scope="per_map", percentile_low=1.0, percentile_high=99.0,
        cmap="jet", alpha=0.5, settings_id="abc", file_size=10, file_mtime_ns=7,
    )  # fmt: skip
    row.update(kw)
    return row


def test_folding_from_memory_equals_reading_the_parts_back(tmp_path):
    batches = [
        [_row("a.png"), _row("b.png", label=2)],
        [_row("c.png"), _row("a.png", prob=0.5)],  # a newer row for a.png replaces the older one
        [_row("d.png", method="gradcampp", object=1, box="0,0,4,4", score=0.9, pointing_hit=True)],
    ]
    mine = ManifestStore(tmp_path / "one")
    mine.fold()
    for rows in batches:
        mine.append(rows)
    parts = sorted((tmp_path / "one" / ".manifest-parts").iterdir())
    copies = tmp_path / "two" / ".manifest-parts"
    copies.mkdir(parents=True)
    for p in parts:  # the same part files, for a store that did not write them (a resumed run)
        (copies / p.name).write_bytes(p.read_bytes())
    folded = mine.fold()
    read_back = ManifestStore(tmp_path / "two").fold()
    pd.testing.assert_frame_equal(folded, read_back)
    pd.testing.assert_frame_equal(folded, frame(pd.read_parquet(tmp_path / "one" / "manifest.parquet")))
    assert len(folded) == 4 and float(folded.loc[folded["image"] == "a.png", "prob"].iloc[0]) == 0.5
    assert not any((tmp_path / "one" / ".manifest-parts").iterdir())


def test_frame_keeps_every_column_kind():
    df = frame([_row("a.png")])
    again = frame(df)
    pd.testing.assert_frame_equal(df, again)
    assert list(df.columns) == list(COLUMNS)
    assert str(df["label"].dtype) == "Int64" and str(df["pointing_hit"].dtype) == "boolean"
    assert df["target"].dtype == "int64" and df["prob"].dtype == "float64" and df["relu"].dtype == bool
