"""Review store edges from the audit: each was a raw exception (or a silent wrong answer) before.

* a lone surrogate in a comment: UnicodeEncodeError from sqlite3;
* a target index beyond int64: OverflowError ("Python int too large to convert to SQLite INTEGER");
* a NUL in the text filter: SQLite's LIKE stops at the NUL, so ``"\\x00..."`` matched every snapshot;
* a PNG whose header is valid but whose data is cut: accepted, then ``image_array()`` failed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from methods.errors import SnapshotError
from methods.review.codec import encode_png
from methods.review.store import NewSnapshot, SnapshotStore


@pytest.fixture()
def store(tmp_path: Path) -> SnapshotStore:
    s = SnapshotStore(tmp_path / "review.sqlite3")
    yield s
    s.close()


def _png(seed: int = 0) -> bytes:
    return encode_png(np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8))


def _snap(**overrides) -> NewSnapshot:
    return NewSnapshot(**(dict(image_png=_png(), model_id="resnet50", author="ana") | overrides))


def test_lone_surrogates_are_refused_everywhere_text_is_stored(store):
    sid = store.save(_snap(title="dog"))
    with pytest.raises(SnapshotError, match=r"comment holds a lone surrogate \(U\+D800 at position 4\)"):
        store.add_comment(sid, author="ben", text="bad \ud800 text")
    with pytest.raises(SnapshotError, match="title holds a lone surrogate"):
        store.save(_snap(title="\udfff"))
    with pytest.raises(SnapshotError, match="view holds a lone surrogate"):
        store.save(_snap(view={"note": "x\ud83d"}))
    with pytest.raises(SnapshotError, match="a name in methods holds a lone surrogate"):
        store.save(_snap(methods=("grad\udc00cam",)))
    assert [c.text for c in store.comments(sid)] == []
    assert store.add_comment(sid, author="ben", text="emoji \U0001f436 is fine").text == "emoji \U0001f436 is fine"


def test_target_index_beyond_int64_is_refused(store):
    assert store.get(store.save(_snap(target_index=2**63 - 1))).target_index == 2**63 - 1
    with pytest.raises(
        SnapshotError, match=r"target_index=9223372036854775808 must be a class index in 0\.\.2\*\*63-1"
    ):
        store.save(_snap(target_index=2**63))


def test_nul_in_a_filter_is_refused_not_matching_everything(store):
    store.save(_snap(title="a dog on snow"))
    store.save(_snap(title="a cat"))
    assert [s.title for s in store.list(text="dog")] == ["a dog on snow"]
    for field in ("text", "author", "model", "method"):
        with pytest.raises(SnapshotError, match=rf"the {field} filter holds a NUL character \(at position 0\)"):
            store.list(**{field: "\x00dog"})
    with pytest.raises(SnapshotError, match="title holds a NUL character"):
        store.save(_snap(title="nul\x00here"))


def test_png_with_a_valid_header_but_truncated_data_is_refused(store):
    data = _png(1)
    cut = data[: len(data) * 2 // 3]  # IHDR intact: png_size() reads 32x32 from it
    with pytest.raises(
        SnapshotError, match=r"image_png has a valid header \(32x32\) but its pixel data is truncated or corrupt"
    ):
        store.save(_snap(image_png=cut))
    assert store.list() == []
    good = store.get(store.save(_snap(image_png=data)))
    assert good.image_array().shape == (32, 32, 3)


def test_truncated_png_is_refused_even_when_pillow_loads_truncated_images(store, monkeypatch):
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # another part of the process set it
    data = _png(2)
    with pytest.raises(SnapshotError, match="truncated or corrupt"):
        store.save(_snap(image_png=data[: len(data) // 2]))
