"""``run_batch`` on annotated data sets: each image explained for its annotated class, the same
maps as a label file gives, images naming several classes skipped with the reason."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from annotated_kit import picture, tiny_gap, voc_xml, write_coco
from methods.errors import OptionError
from methods.pipeline import batch


@pytest.fixture
def tiny():
    return tiny_gap((32, 32))


def test_imagefolder_batch_equals_a_label_file_run(tmp_path, tiny, fp32):
    picture(tmp_path / "set" / "espresso" / "1.png", 40, 30, 1)
    picture(tmp_path / "set" / "wallaby" / "2.png", 40, 30, 2)
    (tmp_path / "labels.csv").write_text("image,label\nespresso/1.png,espresso\nwallaby/2.png,wallaby\n")
    opts = dict(methods=["gradcam"], workers=1, batch_size=2)
    res = batch.run_batch(tiny, f"imagefolder:{tmp_path / 'set'}", tmp_path / "a", **opts)
    ref = batch.run_batch(tiny, tmp_path / "set", tmp_path / "b", targets=tmp_path / "labels.csv", **opts)
    assert (res.done, res.skipped, res.failed) == (2, [], [])
    got, want = res.manifest.sort_values("image"), ref.manifest.sort_values("image")
    assert got["image"].tolist() == ["espresso/1.png", "wallaby/2.png"]
    assert got["label"].tolist() == got["target"].tolist() == [2, 3]
    for col in ("target", "label", "prob"):
        np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float), atol=1e-6)
    for rel in got["image"]:
        a, b = np.load(tmp_path / "a" / rel / "maps.npz"), np.load(tmp_path / "b" / rel / "maps.npz")
        np.testing.assert_allclose(a["gradcam__features.4"], b["gradcam__features.4"], atol=1e-6)


def test_voc_batch_skips_an_image_with_two_classes(tmp_path, tiny, fp32):
    picture(tmp_path / "JPEGImages" / "one.png", 40, 30, 1)
    picture(tmp_path / "JPEGImages" / "two.png", 40, 30, 2)
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "one.xml").write_text(
        voc_xml("one.png", 40, 30, [("tench", 1, 1, 9, 9, 0), ("tench", 20, 5, 30, 20, 1)])
    )
    (tmp_path / "Annotations" / "two.xml").write_text(
        voc_xml("two.png", 40, 30, [("tench", 1, 1, 9, 9, 0), ("espresso", 20, 5, 30, 20, 0)])
    )
    res = batch.run_batch(tiny, f"voc:{tmp_path}", tmp_path / "out", methods=["gradcam"], workers=1)
    assert res.done == 1 and res.manifest["image"].tolist() == ["one.png"] and res.manifest["label"].tolist() == [0]
    ((name, why),) = res.skipped
    assert name == "two.png" and "several classes (tench, espresso)" in why
    assert pd.read_csv(tmp_path / "out" / "skipped.csv")["image"].tolist() == ["two.png"]


def test_batch_refuses_a_label_file_with_a_data_set_and_mask_folders(tmp_path, tiny):
    path = write_coco(tmp_path, [], [])
    with pytest.raises(OptionError, match="leave targets at 'top1'"):
        batch.run_batch(tiny, f"coco:{path}", tmp_path / "out", targets=tmp_path / "labels.csv", workers=1)
    (tmp_path / "m" / "images").mkdir(parents=True)
    with pytest.raises(OptionError, match="use 'gradlens evaluate' on it"):
        batch.run_batch(tiny, f"masks:{tmp_path / 'm'}", tmp_path / "out", workers=1)
