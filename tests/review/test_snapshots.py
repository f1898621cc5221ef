"""Tests for the review store: methods/snapshots.py (+ snapshot_records, snapshot_schema, snapshot_codec).

Every test uses its own database file under pytest's tmp_path. Images and maps are tiny and
seeded, so the whole file runs in seconds; the two kill tests start a writer subprocess (which
imports the library, torch included) and kill it with SIGKILL.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from methods.errors import GradLensError
from methods.review.codec import decode_maps, encode_maps, encode_png
from methods.review.schema import (
    DB_ENV,
    MIGRATIONS,
    SCHEMA_VERSION,
    connect,
    migrate,
    resolve_db_path,
    schema_version,
)
from methods.review.store import (
    LIMITS,
    VERDICTS,
    Comment,
    NewSnapshot,
    NormSettings,
    Snapshot,
    SnapshotError,
    SnapshotNotFound,
    SnapshotStore,
    VerdictChange,
)

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- helpers


def _image(h: int = 12, w: int = 9, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _make(**overrides) -> NewSnapshot:
    """A small valid snapshot; keyword overrides replace fields."""
    rng = np.random.default_rng(overrides.pop("seed", 0))
    fields = dict(
        image_png=encode_png(_image()),
        model_id="resnet50",
        author="ana",
        methods=("gradcam",),
        layers=("layer4",),
        maps={"gradcam": {"layer4": rng.standard_normal((3, 4)).astype(np.float32)}},
    )
    fields.update(overrides)
    return NewSnapshot(**fields)


@pytest.fixture()
def store(tmp_path: Path) -> SnapshotStore:
    s = SnapshotStore(tmp_path / "review.sqlite3")
    yield s
    s.close()


def _raw(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# ----------------------------------------------------------------------------- round trip


def test_round_trip_every_field_bit_exact(store: SnapshotStore) -> None:
    rng = np.random.default_rng(7)
    tricky = rng.standard_normal((5, 7)).astype(np.float32)
    tricky[0, :4] = [np.nan, np.inf, -np.inf, -0.0]
    tricky[1, 0] = np.float32(1e-45)  # a denormal
    maps = {
        "gradcam": {"layer4": tricky, "layer3.1.conv2": rng.standard_normal((14, 14)).astype(np.float32)},
        "scorecam": {"layer4": torch.arange(12, dtype=torch.float32).reshape(3, 4)},
    }
    image = _image(20, 16, seed=3)
    png = encode_png(image)
    view = {"page": "compare", "methods": ["gradcam", "scorecam"], "zoom": 1.5, "grid": True, "nested": {"a": [1, 2]}}
    metrics = {
        "auc": {"gradcam": {"deletion": 0.12, "insertion": 0.81}},
        "probs": [0.7, 0.2, 0.1],
        "np_scalar": np.float64(0.25),
        "curves": {"gradcam": {"deletion": {"fractions": [0.0, 0.5, 1.0], "scores": [0.9, 0.3, 0.1]}}},
    }
    new = NewSnapshot(
        image_png=png,
        model_id="uploaded:my_net.pt",
        model_sha256="ab" * 32,
        author="  Ana Müller  ",
        methods=("gradcam", "scorecam"),
        layers=("layer4", "layer3.1.conv2"),
        maps=maps,
        page="compare",
        target_index=207,
        target_name="golden retriever",
        normalization=NormSettings(mode="percentile", relu=False, scope="shared", percentiles=(2.0, 98.5)),
        colormap="viridis",
        alpha=0.35,
        view=view,
        metrics=metrics,
        title="Dog → snow?",
        note="line one\nline two ✓",
        verdict="needs check",
    )
    sid = store.save(new)
    got = store.get(sid)

    assert isinstance(got, Snapshot) and got.id == sid
    assert got.image_png == png
    assert got.image_sha256 == hashlib.sha256(png).hexdigest()
    assert (got.image_width, got.image_height) == (16, 20)
    np.testing.assert_array_equal(got.image_array(), image)
    assert got.model_id == "uploaded:my_net.pt" and got.model_sha256 == "ab" * 32
    assert got.author == "Ana Müller"  # stripped
    assert got.methods == ("gradcam", "scorecam") and got.layers == ("layer4", "layer3.1.conv2")
    assert got.page == "compare" and got.target_index == 207 and got.target_name == "golden retriever"
    assert got.normalization == NormSettings(mode="percentile", relu=False, scope="shared", percentiles=(2.0, 98.5))
    assert got.colormap == "viridis" and got.alpha == 0.35
    assert got.view == view
    assert got.metrics == {**metrics, "np_scalar": 0.25}
    assert got.title == "Dog → snow?" and got.note == "line one\nline two ✓" and got.verdict == "needs check"
    assert got.created_at == got.updated_at and got.created_at.endswith("+00:00")

    # maps: same keys in the same order, float32, identical bits (NaN, -0.0 and the denormal included)
    assert list(got.maps) == ["gradcam", "scorecam"]
    assert list(got.maps["gradcam"]) == ["layer4", "layer3.1.conv2"]
    for method, layers in maps.items():
        for layer, arr in layers.items():
            expected = arr.numpy() if isinstance(arr, torch.Tensor) else arr
            out = got.maps[method][layer]
            assert out.dtype == np.float32 and out.shape == expected.shape
            assert out.tobytes() == np.ascontiguousarray(expected, dtype=np.float32).tobytes()


def test_defaults_round_trip(store: SnapshotStore) -> None:
    got = store.get(store.save(_make(maps={}, methods=(), layers=())))
    assert got.maps == {} and got.view == {} and got.metrics == {}
    assert got.verdict == "unreviewed" and got.title == "" and got.note == ""
    assert got.normalization == NormSettings() and got.colormap == "jet" and got.alpha == 0.5
    assert got.model_sha256 is None and got.target_index is None and got.target_name is None


def test_ids_are_short_url_safe_and_unique(store: SnapshotStore) -> None:
    ids = [store.save(_make()) for _ in range(50)]
    assert len(set(ids)) == 50
    for sid in ids:
        assert len(sid) == 10 and all(c.isalnum() or c in "-_" for c in sid) and sid.isascii()


def test_maps_blob_never_unpickles() -> None:
    """The stored blob is plain .npz; an object array smuggled into one is refused on load."""
    good = encode_maps({"m": {"l": np.ones((2, 2), np.float32)}})
    assert decode_maps(good)["m"]["l"].tolist() == [[1.0, 1.0], [1.0, 1.0]]
    buf = io.BytesIO()
    index = np.frombuffer(b'[["m","l","m0"]]', dtype=np.uint8)
    np.savez(buf, m0=np.array([{"evil": 1}], dtype=object), index=index)
    with pytest.raises(ValueError, match="allow_pickle"):
        decode_maps(buf.getvalue())


# ----------------------------------------------------------------------------- not found


@pytest.mark.parametrize("bad", [None, "", "a/b", "../../etc", "x" * 65, 123, "abc def", "id;drop"])
def test_malformed_id_is_not_found(store: SnapshotStore, bad) -> None:
    for call in (
        store.get,
        store.comments,
        store.delete,
        lambda i: store.set_verdict(i, "spurious"),
        lambda i: store.add_comment(i, author="a", text="t"),
    ):
        with pytest.raises(SnapshotNotFound, match="malformed"):
            call(bad)


def test_missing_id_is_not_found_and_key_error(store: SnapshotStore) -> None:
    with pytest.raises(SnapshotNotFound, match="no snapshot with id 'AAAAAAAAAA'") as info:
        store.get("AAAAAAAAAA")
    assert isinstance(info.value, KeyError) and isinstance(info.value, GradLensError)
    assert str(info.value).startswith("no snapshot")  # not KeyError's quoted repr
    for call in (
        store.comments,
        store.delete,
        store.verdict_history,
        lambda i: store.set_verdict(i, "spurious"),
        lambda i: store.add_comment(i, author="a", text="t"),
    ):
        with pytest.raises(SnapshotNotFound):
            call("AAAAAAAAAA")


# ----------------------------------------------------------------------------- list and filters


@pytest.fixture()
def corpus(store: SnapshotStore) -> dict[str, str]:
    """Six snapshots with distinct authors, models, methods, verdicts and texts; name -> id."""
    specs = {
        "a": dict(
            author="ana",
            model_id="resnet50",
            methods=("gradcam", "gradcampp"),
            verdict="spurious",
            title="Dog on SNOW",
            note="background",
        ),
        "b": dict(
            author="Ben", model_id="resnet50", methods=("gradcampp",), verdict="looks right", title="100% sure", note=""
        ),
        "c": dict(
            author="ana",
            model_id="vgg16",
            methods=("scorecam",),
            verdict="needs check",
            title="cat_face",
            note="Straße",
        ),
        "d": dict(
            author="cleo", model_id="vgg16", methods=("gradcam",), verdict="unreviewed", title="catXface", note="a\\b"
        ),
        "e": dict(
            author="ana",
            model_id="resnet50",
            methods=("eigencam",),
            verdict="wrong class",
            title="plain",
            note="nothing",
        ),
        "f": dict(
            author="ben", model_id="resnet50", methods=("gradcam",), verdict="spurious", title="ÄPFEL", note="1000 sure"
        ),
    }
    ids = {}
    for name, fields in specs.items():
        ids[name] = store.save(_make(**fields))
    store.add_comment(ids["e"], author="ben", text="Snowy background again")
    return ids


def _names(result, ids: dict[str, str]) -> set[str]:
    back = {v: k for k, v in ids.items()}
    return {back[s.id] for s in result}


def test_list_all_newest_first(store: SnapshotStore, corpus) -> None:
    rows = store.list()
    assert [r.id for r in rows] == [corpus[k] for k in "fedcba"]
    e = next(r for r in rows if r.id == corpus["e"])
    assert e.n_comments == 1 and e.methods == ("eigencam",) and e.model_id == "resnet50"
    assert [r.id for r in store.list(limit=2)] == [corpus["f"], corpus["e"]]


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (dict(author="ana"), "ace"),
        (dict(author="BEN"), "bf"),  # author matches case-insensitively
        (dict(author="an"), ""),  # exact, not a substring
        (dict(model="vgg16"), "cd"),
        (dict(model="resnet"), ""),
        (dict(method="gradcam"), "adf"),  # not gradcampp-only b
        (dict(method="gradcampp"), "ab"),
        (dict(verdict="spurious"), "af"),
        (dict(verdict="unreviewed"), "d"),
        (dict(text="snow"), "ae"),  # title of a, comment of e
        (dict(text="BACKGROUND"), "ae"),  # note of a, comment of e
        (dict(text="100%"), "b"),  # % is literal: "1000 sure" of f does not match
        (dict(text="%"), "b"),
        (dict(text="cat_face"), "c"),  # _ is literal: "catXface" of d does not match
        (dict(text="_"), "c"),
        (dict(text="a\\b"), "d"),  # backslash is literal too
        (dict(text="STRASSE"), "c"),  # Unicode case folding: ß ~ ss
        (dict(text="äpfel"), "f"),  # non-ASCII case-insensitive
        (dict(text="   "), "abcdef"),  # blank text: no filter
        (dict(author="ana", model="resnet50"), "ae"),
        (dict(author="ana", method="gradcam", verdict="spurious"), "a"),
        (dict(model="resnet50", text="sure"), "bf"),
        (dict(model="vgg16", verdict="spurious"), ""),
    ],
)
def test_list_filters(store: SnapshotStore, corpus, kwargs, expected) -> None:
    assert _names(store.list(**kwargs), corpus) == set(expected)


def test_list_rejects_bad_arguments(store: SnapshotStore) -> None:
    with pytest.raises(SnapshotError) as info:
        store.list(verdict="maybe")
    for v in VERDICTS:
        assert repr(v) in str(info.value)
    for bad in (0, -1, 10_001, 2.5, True):
        with pytest.raises(SnapshotError, match="limit"):
            store.list(limit=bad)
    for name in ("author", "model", "method", "text"):
        with pytest.raises(SnapshotError, match=f"{name}=3 must be a string or None"):
            store.list(**{name: 3})


# ----------------------------------------------------------------------------- comments, verdicts, delete


def test_comments_in_order_and_counted(store: SnapshotStore) -> None:
    sid = store.save(_make())
    other = store.save(_make())
    assert store.comments(sid) == []
    c1 = store.add_comment(sid, author=" ben ", text="first <b>")
    c2 = store.add_comment(sid, author="cleo", text="second\nline")
    store.add_comment(other, author="dan", text="elsewhere")
    assert isinstance(c1, Comment) and c1.author == "ben" and c1.snapshot_id == sid
    assert store.comments(sid) == [c1, c2]
    assert [c.text for c in store.comments(sid)] == ["first <b>", "second\nline"]
    assert {r.id: r.n_comments for r in store.list()} == {sid: 2, other: 1}


def test_set_verdict_changes_verdict_and_updated_time(store: SnapshotStore) -> None:
    sid = store.save(_make())
    before = store.get(sid)
    time.sleep(0.002)
    store.set_verdict(sid, "spurious")
    after = store.get(sid)
    assert after.verdict == "spurious" and after.created_at == before.created_at
    assert after.updated_at > before.updated_at
    store.set_verdict(sid, "spurious")  # unchanged: no new time, no history entry
    assert store.get(sid).updated_at == after.updated_at
    store.set_verdict(sid, "looks right", author=" ben ")
    final = store.get(sid)
    assert store.verdict_history(sid) == [
        VerdictChange(snapshot_id=sid, verdict="unreviewed", previous=None, author="ana", changed_at=before.created_at),
        VerdictChange(
            snapshot_id=sid, verdict="spurious", previous="unreviewed", author=None, changed_at=after.updated_at
        ),
        VerdictChange(
            snapshot_id=sid, verdict="looks right", previous="spurious", author="ben", changed_at=final.updated_at
        ),
    ]
    store.set_verdict(sid, "spurious")
    assert [r.id for r in store.list(verdict="spurious")] == [sid]
    with pytest.raises(SnapshotError) as info:
        store.set_verdict(sid, "Spurious")
    assert "'Spurious'" in str(info.value) and all(repr(v) in str(info.value) for v in VERDICTS)
    assert store.get(sid).verdict == "spurious"


def test_verdicts_are_the_fixed_set() -> None:
    assert set(VERDICTS) == {"looks right", "spurious", "needs check", "wrong class", "unreviewed"}


def test_delete_removes_snapshot_blobs_and_comments(store: SnapshotStore) -> None:
    sid = store.save(_make())
    keep = store.save(_make())
    store.add_comment(sid, author="a", text="x")
    store.add_comment(keep, author="a", text="y")
    store.delete(sid)
    with pytest.raises(SnapshotNotFound):
        store.get(sid)
    with pytest.raises(SnapshotNotFound):
        store.delete(sid)
    assert [r.id for r in store.list()] == [keep]
    assert _raw(store.path, "SELECT count(*) FROM comments") == [(1,)]
    assert _raw(store.path, "SELECT snapshot_id FROM snapshot_blobs") == [(keep,)]
    assert _raw(store.path, "SELECT DISTINCT snapshot_id FROM verdict_changes") == [(keep,)]
    assert store.get(keep).maps  # the other one is intact


# ----------------------------------------------------------------------------- limits and validation


@pytest.mark.parametrize("field, limit", [("title", 200), ("note", 10_000), ("author", 100)])
def test_text_limits(store: SnapshotStore, field: str, limit: int) -> None:
    assert LIMITS[field] == limit
    sid = store.save(_make(**{field: "x" * limit}))
    assert getattr(store.get(sid), field) == "x" * limit
    with pytest.raises(SnapshotError, match=rf"{field} is {limit + 1:,} characters long; the limit is {limit:,}"):
        store.save(_make(**{field: "x" * (limit + 1)}))


def test_comment_limits(store: SnapshotStore) -> None:
    sid = store.save(_make())
    store.add_comment(sid, author="a" * 100, text="y" * 5_000)
    with pytest.raises(SnapshotError, match="comment is 5,001 characters long; the limit is 5,000"):
        store.add_comment(sid, author="a", text="y" * 5_001)
    with pytest.raises(SnapshotError, match="author is 101 characters"):
        store.add_comment(sid, author="a" * 101, text="y")
    for blank in ("", "   \n"):
        with pytest.raises(SnapshotError, match="author is empty"):
            store.add_comment(sid, author=blank, text="y")
        with pytest.raises(SnapshotError, match="comment is empty"):
            store.add_comment(sid, author="a", text=blank)
    assert len(store.comments(sid)) == 1


def test_empty_author_refused(store: SnapshotStore) -> None:
    for blank in ("", "  "):
        with pytest.raises(SnapshotError, match="author is empty"):
            store.save(_make(author=blank))


def test_image_limits(store: SnapshotStore) -> None:
    too_big = b"\x89PNG\r\n\x1a\n" + bytes(LIMITS["image_bytes"])  # 20 MB + 8 bytes
    with pytest.raises(SnapshotError, match=r"image_png is 20,971,528 bytes; the limit is 20,971,520 \(20 MB\)"):
        store.save(_make(image_png=too_big))
    jpeg = io.BytesIO()
    from PIL import Image

    Image.fromarray(_image()).save(jpeg, "JPEG")
    with pytest.raises(SnapshotError, match="not a readable PNG"):
        store.save(_make(image_png=jpeg.getvalue()))
    with pytest.raises(SnapshotError, match="not a readable PNG"):
        store.save(_make(image_png=b"\x89PNG\r\n\x1a\n" + b"garbage"))
    with pytest.raises(SnapshotError, match="must be PNG bytes"):
        store.save(_make(image_png=_image()))


def test_maps_limit(store: SnapshotStore) -> None:
    n = LIMITS["maps_bytes"] // 4  # float32 elements in 50 MB
    half = np.zeros((1, n // 2), np.float32)
    sid = store.save(_make(maps={"a": {"l": half}, "b": {"l": half}}))  # exactly at the limit: accepted
    assert store.get(sid).maps["b"]["l"].shape == (1, n // 2)
    over = {"a": {"l": half}, "b": {"l": half, "m": np.zeros((1, 1), np.float32)}}
    with pytest.raises(SnapshotError, match=r"maps total 52,428,804 bytes as float32; the limit is 52,428,800"):
        store.save(_make(maps=over))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(verdict="fine"), "verdict='fine' is not one of"),
        (dict(colormap="rainbow"), "colormap='rainbow' is not one of"),
        (dict(alpha=1.5), "alpha=1.5 must be a number in"),
        (dict(alpha="x"), "alpha='x' must be a number"),
        (dict(normalization=NormSettings(mode="zscore")), "normalization.mode='zscore' is not one of"),
        (dict(normalization=NormSettings(scope="global")), "normalization.scope='global'"),
        (dict(normalization=NormSettings(percentiles=(99.0, 1.0))), "percentiles"),
        (dict(model_sha256="ABC"), "model_sha256='ABC' must be 64 lowercase hex"),
        (dict(target_index=-1), "target_index=-1"),
        (dict(target_index=True), "target_index=True"),
        (dict(model_id=""), "model_id is empty"),
        (dict(methods="gradcam"), "methods must be a list of strings"),
        (dict(layers=("ok", "")), "a name in layers is empty"),
        (
            dict(maps={"gradcam": {"layer4": np.zeros((1, 3, 4), np.float32)}}),
            r"maps\['gradcam'\]\['layer4'\]: a map must be 2-D",
        ),
        (dict(maps={"gradcam": {"layer4": np.array([["a"]])}}), "real numbers"),
        (dict(maps={"gradcam": np.zeros((2, 2))}), r"maps\['gradcam'\] must be a dict"),
        (dict(view={"x": object()}), "view is not JSON-serializable"),
        (dict(metrics=[1, 2]), "metrics must be a dict"),
    ],
)
def test_invalid_fields_refused_and_nothing_written(store: SnapshotStore, overrides, message) -> None:
    with pytest.raises(SnapshotError, match=message):
        store.save(_make(**overrides))
    assert store.list() == []
    assert _raw(store.path, "SELECT count(*) FROM snapshot_blobs") == [(0,)]


def test_verdict_message_lists_all_choices(store: SnapshotStore) -> None:
    with pytest.raises(SnapshotError) as info:
        store.save(_make(verdict="fine"))
    assert all(repr(v) in str(info.value) for v in VERDICTS)


def test_save_takes_a_new_snapshot(store: SnapshotStore) -> None:
    with pytest.raises(SnapshotError, match="takes a NewSnapshot"):
        store.save({"title": "x"})  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- file, location, schema


def test_file_is_wal_with_foreign_keys_and_current_schema(store: SnapshotStore) -> None:
    assert _raw(store.path, "PRAGMA journal_mode") == [("wal",)]
    assert _raw(store.path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    conn = store._connect()
    try:
        assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
        assert conn.execute("PRAGMA busy_timeout").fetchone() == (30_000,)
    finally:
        conn.close()


def test_location_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    (project / ".streamlit").mkdir(parents=True)
    home = tmp_path / "home"
    (home / ".streamlit").mkdir(parents=True)
    monkeypatch.chdir(project)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv(DB_ENV, raising=False)

    # 4. default: data/gradlens.sqlite3 at the repository root
    assert resolve_db_path() == REPO / "data" / "gradlens.sqlite3"
    assert (REPO / "data").is_dir()
    # 3b. the user's secrets.toml
    (home / ".streamlit" / "secrets.toml").write_text(f'gradlens_db = "{tmp_path / "home.db"}"\n')
    assert resolve_db_path() == tmp_path / "home.db"
    # 3a. the project's secrets.toml wins over the user's; a relative value is relative to the project
    (project / ".streamlit" / "secrets.toml").write_text('other = 1\ngradlens_db = "dbs/review.sqlite3"\n')
    assert resolve_db_path() == project / "dbs" / "review.sqlite3"
    assert (project / "dbs").is_dir()
    # 2. the environment variable wins over secrets.toml
    monkeypatch.setenv(DB_ENV, "env/x.sqlite3")
    assert resolve_db_path() == project / "env" / "x.sqlite3"
    # 1. an explicit path wins over everything
    assert resolve_db_path(tmp_path / "explicit.db") == tmp_path / "explicit.db"
    store = SnapshotStore()
    assert store.path == project / "env" / "x.sqlite3" and store.path.is_file()


def test_location_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(DB_ENV, raising=False)
    with pytest.raises(SnapshotError, match="':memory:' is not a database file path"):
        resolve_db_path(":memory:")
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text("gradlens_db = [1]\n")
    with pytest.raises(SnapshotError, match="gradlens_db in .* must be a non-empty path string"):
        resolve_db_path()
    (tmp_path / ".streamlit" / "secrets.toml").write_text("gradlens_db = \n")
    with pytest.raises(SnapshotError, match="cannot read .*secrets.toml"):
        resolve_db_path()


def test_not_a_database_file_refused(tmp_path: Path) -> None:
    bad = tmp_path / "notes.sqlite3"
    bad.write_bytes(b"this is not sqlite " * 100)
    with pytest.raises(SnapshotError, match="not a usable SQLite database"):
        SnapshotStore(bad)


def test_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    SnapshotStore(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SnapshotError, match=f"schema version {SCHEMA_VERSION + 1}, newer than"):
        SnapshotStore(path)


def test_failed_migration_rolls_back_completely(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    conn = connect(path)
    try:
        broken = (
            ("CREATE TABLE a (x INTEGER)", "INSERT INTO a VALUES (1)"),
            ("CREATE TABLE b (y INTEGER)", "INSERT INTO nowhere VALUES (1)"),
        )
        with pytest.raises(SnapshotError, match="migration to version 2 failed and was rolled back"):
            migrate(conn, migrations=broken)
        assert schema_version(conn) == 0
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []  # step 1 undone too
        assert migrate(conn, migrations=broken[:1]) == 0
        assert schema_version(conn) == 1
        assert migrate(conn, migrations=broken[:1]) == 1  # already there: nothing to do
        assert conn.execute("SELECT x FROM a").fetchall() == [(1,)]
    finally:
        conn.close()


def _v1_database(path: Path) -> dict:
    """A file at schema v1 (the first release) holding one snapshot and one comment, written with
    plain SQL in v1's columns, the way a v1 GradLens left it."""
    conn = connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    assert migrate(conn, migrations=MIGRATIONS[:1]) == 0
    png = encode_png(_image())
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    row = dict(
        id="OldSnap_01",
        created_at="2025-01-02T03:04:05.000006+00:00",
        updated_at="2025-02-01T00:00:00.000000+00:00",
        author="ana",
        title="old",
        note="from v1",
        verdict="spurious",
        model_id="vgg16",
        model_sha256=None,
        page="single",
        methods='["gradcam"]',
        layers='["features.29"]',
        target_index=3,
        target_name="cat",
        norm_mode="max",
        norm_relu=0,
        norm_scope="per_map",
        norm_p_low=1.0,
        norm_p_high=99.0,
        colormap="turbo",
        alpha=0.4,
        view='{"page":"single"}',
        metrics='{"auc":0.5}',
        image_sha256=hashlib.sha256(png).hexdigest(),
        image_width=9,
        image_height=12,
    )
    conn.execute(f"INSERT INTO snapshots ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
    conn.execute(
        "INSERT INTO snapshot_blobs VALUES (?, ?, ?)", (row["id"], png, encode_maps({"gradcam": {"features.29": arr}}))
    )
    conn.execute(
        "INSERT INTO comments (snapshot_id, author, text, created_at) VALUES (?, 'ben', 'hm', ?)",
        (row["id"], row["created_at"]),
    )
    conn.close()
    return {**row, "png": png, "arr": arr}


def test_upgrade_v1_database_to_current(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    old = _v1_database(path)
    assert _raw(path, "PRAGMA user_version") == [(1,)]
    assert ("verdict_changes",) not in _raw(path, "SELECT name FROM sqlite_master WHERE type = 'table'")

    store = SnapshotStore(path)  # opening upgrades
    assert _raw(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert _raw(path, "PRAGMA integrity_check") == [("ok",)]
    snap = store.get("OldSnap_01")
    assert (snap.title, snap.note, snap.verdict, snap.model_id, snap.target_name) == (
        "old",
        "from v1",
        "spurious",
        "vgg16",
        "cat",
    )
    assert snap.normalization == NormSettings(mode="max", relu=False, scope="per_map", percentiles=(1.0, 99.0))
    assert snap.image_png == old["png"] and snap.maps["gradcam"]["features.29"].tobytes() == old["arr"].tobytes()
    assert [c.text for c in store.comments("OldSnap_01")] == ["hm"]
    # v2's history starts with the verdict the snapshot had at the upgrade, dated by its last change
    assert store.verdict_history("OldSnap_01") == [
        VerdictChange(
            snapshot_id="OldSnap_01", verdict="spurious", previous=None, author=None, changed_at=old["updated_at"]
        )
    ]
    store.set_verdict("OldSnap_01", "looks right", author="cleo")
    assert [(v.previous, v.verdict, v.author) for v in store.verdict_history("OldSnap_01")] == [
        (None, "spurious", None),
        ("spurious", "looks right", "cleo"),
    ]
    new_id = store.save(_make())  # new snapshots work alongside the old one
    assert {r.id for r in store.list()} == {"OldSnap_01", new_id}
    assert [r.id for r in store.list(author="ANA", model="vgg16")] == ["OldSnap_01"]  # the v2 indexes serve filters
    SnapshotStore(path)  # opening again is a no-op
    assert len(store.verdict_history("OldSnap_01")) == 2


def test_migrations_are_numbered_by_position() -> None:
    assert SCHEMA_VERSION == len(MIGRATIONS) >= 1
    assert all(isinstance(stmt, str) for step in MIGRATIONS for stmt in step)


# ----------------------------------------------------------------------------- concurrency


def test_sixteen_threads_save_concurrently(store: SnapshotStore) -> None:
    """16 threads x 100 saves through ONE store object: every save lands, ids are unique."""
    png = encode_png(_image(4, 4))
    tiny = {"gradcam": {"layer4": np.ones((2, 2), np.float32)}}
    ids: list[list[str]] = [[] for _ in range(16)]
    errors: list[BaseException] = []
    start = threading.Barrier(16)

    def writer(k: int) -> None:
        try:
            start.wait()
            for i in range(100):
                ids[k].append(store.save(_make(image_png=png, maps=tiny, author=f"t{k}", title=f"{k}-{i}")))
                if i % 25 == 0:
                    store.list(author=f"t{k}", limit=5)  # readers interleave with writers
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    flat = [i for per in ids for i in per]
    assert len(flat) == 1600 and len(set(flat)) == 1600
    listed = store.list(limit=10_000)
    assert {r.id for r in listed} == set(flat)
    for k in range(16):  # each thread's own saves, complete
        assert {r.title for r in store.list(author=f"t{k}", limit=10_000)} == {f"{k}-{i}" for i in range(100)}
    assert _raw(store.path, "PRAGMA integrity_check") == [("ok",)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_opens_its_own_connections(store: SnapshotStore) -> None:
    """A store used before fork() keeps working in the child, on the child's own connections."""
    parent_id = store.save(_make(title="parent"))
    assert store._idle.qsize() >= 1  # the parent holds a pooled connection the child must not use
    pid = os.fork()
    if pid == 0:  # child: report through the exit status only
        code = 1
        try:
            inherited = store._idle
            child_id = store.save(_make(title="child"))
            ok = store.get(parent_id).title == "parent" and store.get(child_id).title == "child"
            code = 0 if ok and store._idle is not inherited else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert {r.title for r in store.list()} == {"parent", "child"}
    assert _raw(store.path, "PRAGMA integrity_check") == [("ok",)]


def test_lock_held_too_long_is_a_clear_error(tmp_path: Path) -> None:
    """Another process holding the write lock longer than busy_timeout: a SnapshotError, then recovery."""
    store = SnapshotStore(tmp_path / "busy.sqlite3", busy_timeout_ms=100)
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    t0 = time.monotonic()
    with pytest.raises(SnapshotError, match="busy.sqlite3: database is locked"):
        store.save(_make())
    assert time.monotonic() - t0 >= 0.09  # it did wait for the lock first
    assert store.list() == []  # readers are not blocked by the writer (WAL)
    blocker.execute("ROLLBACK")
    blocker.close()
    assert len(store.get(store.save(_make())).maps) == 1


_WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from methods.review.store import NewSnapshot, SnapshotStore
    from methods.review.codec import encode_png

    path, mode = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    png = encode_png(rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8))

    class Store(SnapshotStore):
        hang = False

        def _connect(self):
            conn = super()._connect()
            def trace(sql):
                if self.hang and sql.strip().upper() == "COMMIT":
                    print("HANGING", flush=True)
                    time.sleep(600)
            conn.set_trace_callback(trace)
            return conn

    store = Store(path)
    print("READY", flush=True)
    sys.stdin.readline()

    def snap(i, side):
        # incompressible maps: the write is as large as the array
        maps = {"gradcam": {"layer4": rng.standard_normal((side, side)).astype(np.float32)}}
        return NewSnapshot(image_png=png, model_id="m", author="w", title=f"s{i}", maps=maps)

    if mode == "hang":
        for i in range(4):
            print("SAVED", store.save(snap(i, 64)), flush=True)
        store.hang = True
        store.save(snap(4, 1500))  # 9 MB: more than the page cache, so it spills into the WAL
    else:
        i = 0
        while True:
            print("SAVED", store.save(snap(i, 400)), flush=True)  # 640 KB each
            i += 1
    """
)


@pytest.fixture(scope="module", autouse=True)
def writers(tmp_path_factory: pytest.TempPathFactory):
    """Both writer subprocesses, started together so their (slow, torch-importing) start-up overlaps.

    Each prints READY after its imports and waits for a line on stdin before writing anything.
    ``autouse``: they start with this module's first test and import while the other tests run.
    """
    root = tmp_path_factory.mktemp("writers")
    script = root / "writer.py"
    script.write_text(_WRITER)
    started = {}
    for mode in ("hang", "loop"):
        db = root / f"{mode}.sqlite3"
        proc = subprocess.Popen(
            [sys.executable, str(script), str(db), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        started[mode] = (proc, db)
    yield started
    for proc, _ in started.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()


def _go(proc: subprocess.Popen) -> None:
    assert _read_until(proc, lambda ls: ls[-1] == "READY") == ["READY"]
    proc.stdin.write("go\n")
    proc.stdin.flush()


def _read_until(proc: subprocess.Popen, predicate, timeout: float = 120.0) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"writer ended early: {proc.stderr.read()}")
        lines.append(line.strip())
        if predicate(lines):
            return lines
    raise AssertionError(f"writer too slow; got {lines}")


def _assert_consistent(db: Path) -> list[str]:
    assert _raw(db, "PRAGMA integrity_check") == [("ok",)]
    store = SnapshotStore(db)
    listed = [r.id for r in store.list(limit=10_000)]
    for sid in listed:
        snap = store.get(sid)  # every listed snapshot loads completely
        assert snap.image_array().shape == (16, 16, 3)
        (arr,) = [a for layers in snap.maps.values() for a in layers.values()]
        assert arr.dtype == np.float32 and arr.ndim == 2 and np.isfinite(arr).all()
    assert store.save(_make())  # and the file takes new writes (the dead writer's lock is gone)
    return listed


def test_kill_inside_an_open_transaction_leaves_last_commit(writers) -> None:
    """SIGKILL while a 9 MB save sits inside its transaction, with its pages already in the WAL."""
    proc, db = writers["hang"]
    _go(proc)
    try:
        lines = _read_until(proc, lambda ls: ls[-1] == "HANGING")
        committed = [ln.split()[1] for ln in lines if ln.startswith("SAVED")]
        assert len(committed) == 4
        wal = Path(f"{db}-wal")
        # most of the uncommitted save has really reached the disk (the 4 commits before are ~70 KB;
        # the rest of the 9 MB is still in the 2 MB page cache)
        assert wal.stat().st_size > 4_000_000
        # meanwhile a reader sees exactly the committed state, without waiting for the writer
        assert {r.id for r in SnapshotStore(db).list()} == set(committed)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert set(_assert_consistent(db)) == set(committed)


def test_kill_during_a_save_loop(writers) -> None:
    """SIGKILL at an arbitrary moment of a writer saving 640 KB snapshots in a loop."""
    proc, db = writers["loop"]
    _go(proc)
    try:
        lines = _read_until(proc, lambda ls: len(ls) >= 6)
        time.sleep(float(np.random.default_rng(1).uniform(0.0, 0.05)))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    printed = [ln.split()[1] for ln in lines]
    listed = _assert_consistent(db)
    # each printed id was committed before it was printed; at most a few more landed after we stopped reading
    assert set(printed) <= set(listed)
    assert len(listed) >= len(printed)
