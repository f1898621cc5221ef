"""The review store: snapshots of a map with notes, comments and a verdict, in one SQLite file.

A team review goes: someone finds a suspicious map, saves it (:meth:`SnapshotStore.save` returns a
short id for a ``?snapshot=<id>`` link), the team comments, someone sets a verdict, and reports are
exported (:mod:`methods.review.report`). Usage::

    store = SnapshotStore()                      # location: see methods.review.schema.resolve_db_path
    sid = store.save(NewSnapshot(image_png=png, model_id="resnet50", author="ana",
                                 methods=("gradcam",), layers=("layer4",),
                                 maps={"gradcam": {"layer4": raw}}, title="dog -> snow?"))
    store.add_comment(sid, author="ben", text="background again")
    store.set_verdict(sid, "spurious")
    snap = store.get(sid)

Concurrency: every operation opens its own connection (no connection is shared between threads or
kept across a fork), writes take the write lock up front (``BEGIN IMMEDIATE``) and wait for it up
to ``busy_timeout``; the file is in WAL mode, so readers never wait for a writer. A process killed
mid-write leaves the last committed state: SQLite's journal makes each save all-or-nothing.

Raw maps are stored, not pictures: normalization, colormap and alpha are stored as settings and
applied when shown, exactly as the dashboard does after its cache.
"""

from __future__ import annotations

import builtins
import os
import secrets
import sqlite3
from pathlib import Path
from typing import Any

from methods.errors import SnapshotError, SnapshotNotFound
from methods.review.codec import decode_maps, encode_maps, load_json
from methods.review.pool import ConnectionPool
from methods.review.records import (
    LIMITS,
    VERDICTS,
    Comment,
    NewSnapshot,
    NormSettings,
    Snapshot,
    SnapshotSummary,
    VerdictChange,
    check_id,
    check_text,
    check_unicode,
    check_verdict,
    like_pattern,
    now_utc,
    validate_new,
)
from methods.review.schema import connect, enable_wal, migrate, resolve_db_path

__all__ = [
    "VERDICTS",
    "LIMITS",
    "SnapshotError",
    "SnapshotNotFound",
    "NormSettings",
    "NewSnapshot",
    "Snapshot",
    "SnapshotSummary",
    "Comment",
    "VerdictChange",
    "SnapshotStore",
]

_ID_BYTES = 7  # token_urlsafe(7) -> 10 characters, 56 random bits


def _fold(value: Any) -> Any:
    """Unicode case folding for text search (SQLite's own LIKE folds ASCII only)."""
    return value.casefold() if isinstance(value, str) else value


# ----------------------------------------------------------------------------- the store

_SUMMARY_COLUMNS = (
    "s.id, s.created_at, s.updated_at, s.author, s.title, s.verdict, s.model_id, s.page, s.methods, "
    "s.layers, s.target_index, s.target_name, s.image_sha256, "
    "(SELECT count(*) FROM comments c WHERE c.snapshot_id = s.id) AS n_comments"
)


class SnapshotStore:
    """Snapshots, comments and verdicts in one SQLite file (see the module docstring).

    Args:
        path: the database file; ``None`` follows :func:`methods.review.schema.resolve_db_path`
            (``GRADLENS_DB``, then ``.streamlit/secrets.toml`` key ``gradlens_db``, then
            ``data/gradlens.sqlite3``).
        busy_timeout_ms: how long a write waits for another writer's lock before failing.

    Opening creates or upgrades the file (WAL mode, schema migrations). The object holds no
    connection and can be shared between threads (e.g. in ``st.cache_resource``).

    Raises:
        SnapshotError: the file is not SQLite, is newer than this code, or cannot use WAL.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        busy_timeout_ms: int = 30_000,
        max_idle_connections: int = 4,
    ) -> None:
        self.path: Path = resolve_db_path(path)
        self.busy_timeout_ms = int(busy_timeout_ms)
        self._pool = ConnectionPool(self.path, self._connect, max_idle=int(max_idle_connections))
        self._transaction = self._pool.transaction
        with self._pool.connection() as conn:
            enable_wal(conn, self.path)
            migrate(conn, path=self.path)

    def _connect(self) -> sqlite3.Connection:
        """A new connection with the store's settings and its case-folding SQL function."""
        try:
            conn = connect(self.path, busy_timeout_ms=self.busy_timeout_ms, check_same_thread=False)
        except sqlite3.Error as exc:
            raise SnapshotError(f"cannot open the review database {self.path}: {exc}") from exc
        conn.create_function("gl_fold", 1, _fold, deterministic=True)
        return conn

    @property
    def _idle(self):  # the pool's idle connections (tests look at its size)
        return self._pool.idle

    def __repr__(self) -> str:
        return f"SnapshotStore({str(self.path)!r})"

    def close(self) -> None:
        """Close the idle connections (the store stays usable; it reopens on demand)."""
        self._pool.close()

    def __enter__(self) -> SnapshotStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _require(conn: sqlite3.Connection, snapshot_id: str) -> None:
        if conn.execute("SELECT 1 FROM snapshots WHERE id = ?", (snapshot_id,)).fetchone() is None:
            raise SnapshotNotFound(
                f"no snapshot with id {snapshot_id!r} (deleted, or the link is from another database)"
            )

    # -- snapshots -----------------------------------------------------------------------------

    def save(self, snapshot: NewSnapshot) -> str:
        """Validate and store ``snapshot``; return its new id (10 URL-safe characters).

        The maps are compressed before the write lock is taken; the row, image and maps are
        written in one transaction.

        Raises:
            SnapshotError: a field is invalid or over its limit (:data:`LIMITS`).
        """
        values = validate_new(snapshot)
        image_png = values.pop("_image_png")
        maps_npz = encode_maps(values.pop("_maps"))
        now = now_utc()
        values["created_at"] = now
        values["updated_at"] = now
        columns = list(values)
        insert = f"INSERT INTO snapshots (id, {', '.join(columns)}) VALUES (?, {', '.join('?' * len(columns))})"
        with self._transaction(write=True) as conn:
            for _ in range(20):
                snapshot_id = secrets.token_urlsafe(_ID_BYTES)
                if conn.execute("SELECT 1 FROM snapshots WHERE id = ?", (snapshot_id,)).fetchone() is None:
                    break
            else:  # pragma: no cover - 20 collisions of 56-bit tokens
                raise SnapshotError("could not find an unused snapshot id")
            conn.execute(insert, (snapshot_id, *values.values()))
            conn.execute(
                "INSERT INTO snapshot_blobs (snapshot_id, image_png, maps_npz) VALUES (?, ?, ?)",
                (snapshot_id, image_png, maps_npz),
            )
            conn.execute(
                "INSERT INTO verdict_changes (snapshot_id, verdict, previous, author, changed_at) VALUES (?, ?, NULL, ?, ?)",
                (snapshot_id, values["verdict"], values["author"], now),
            )
        return snapshot_id

    def get(self, snapshot_id: str) -> Snapshot:
        """The full snapshot (image, maps, settings, metrics).

        Raises:
            SnapshotNotFound: no snapshot with this id, or the id is malformed.
        """
        check_id(snapshot_id)
        with self._transaction(write=False) as conn:
            cur = conn.cursor()
            cur.row_factory = sqlite3.Row
            row = cur.execute(
                "SELECT s.*, b.image_png, b.maps_npz FROM snapshots s JOIN snapshot_blobs b ON b.snapshot_id = s.id "
                "WHERE s.id = ?",
                (snapshot_id,),
            ).fetchone()
        if row is None:
            raise SnapshotNotFound(
                f"no snapshot with id {snapshot_id!r} (deleted, or the link is from another database)"
            )
        return Snapshot(
            id=row["id"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            image_png=bytes(row["image_png"]),
            image_sha256=row["image_sha256"],
            image_width=row["image_width"],
            image_height=row["image_height"],
            model_id=row["model_id"],
            model_sha256=row["model_sha256"],
            author=row["author"],
            methods=tuple(load_json(row["methods"])),
            layers=tuple(load_json(row["layers"])),
            maps=decode_maps(bytes(row["maps_npz"])),
            page=row["page"],
            target_index=row["target_index"],
            target_name=row["target_name"],
            normalization=NormSettings(
                mode=row["norm_mode"],
                relu=bool(row["norm_relu"]),
                scope=row["norm_scope"],
                percentiles=(row["norm_p_low"], row["norm_p_high"]),
            ),
            colormap=row["colormap"],
            alpha=row["alpha"],
            view=load_json(row["view"]),
            metrics=load_json(row["metrics"]),
            title=row["title"],
            note=row["note"],
            verdict=row["verdict"],
        )

    def list(
        self,
        *,
        author: str | None = None,
        model: str | None = None,
        method: str | None = None,
        verdict: str | None = None,
        text: str | None = None,
        limit: int = 200,
    ) -> builtins.list[SnapshotSummary]:
        """Snapshots matching ALL given filters, newest first.

        Args:
            author: exact author, ASCII case-insensitive.
            model: exact ``model_id``.
            method: snapshots whose ``methods`` include this method key.
            verdict: one of :data:`VERDICTS`.
            text: substring of the title, the note or any comment; case-insensitive (Unicode case
                folding); ``%`` and ``_`` match themselves.
            limit: at most this many rows, 1..10 000.

        Raises:
            SnapshotError: ``verdict`` not in :data:`VERDICTS`, ``limit`` out of range, or a filter
                with a NUL character or a lone surrogate.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise SnapshotError(f"limit={limit!r} must be an integer in 1..10000")
        for name, value in (("author", author), ("model", model), ("method", method), ("text", text)):
            if value is not None and not isinstance(value, str):
                raise SnapshotError(f"{name}={value!r} must be a string or None")
            check_unicode(f"the {name} filter", value or "")  # a NUL made LIKE match every snapshot
        where: list[str] = []
        params: list[Any] = []
        if author is not None:
            where.append("s.author = ? COLLATE NOCASE")
            params.append(author.strip())
        if model is not None:
            where.append("s.model_id = ?")
            params.append(model)
        if method is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(s.methods) WHERE json_each.value = ?)")
            params.append(method)
        if verdict is not None:
            where.append("s.verdict = ?")
            params.append(check_verdict(verdict))
        if text is not None and text.strip():
            pattern = like_pattern(text.strip().casefold())
            where.append(
                "(gl_fold(s.title) LIKE ? ESCAPE '\\' OR gl_fold(s.note) LIKE ? ESCAPE '\\' OR EXISTS ("
                "SELECT 1 FROM comments c WHERE c.snapshot_id = s.id AND gl_fold(c.text) LIKE ? ESCAPE '\\'))"
            )
            params.extend([pattern] * 3)
        sql = f"SELECT {_SUMMARY_COLUMNS} FROM snapshots s"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY s.created_at DESC, s.seq DESC LIMIT ?"
        params.append(limit)
        with self._transaction(write=False) as conn:
            rows = conn.execute(sql, params).fetchall()
        return [
            SnapshotSummary(
                id=r[0],
                created_at=r[1],
                updated_at=r[2],
                author=r[3],
                title=r[4],
                verdict=r[5],
                model_id=r[6],
                page=r[7],
                methods=tuple(load_json(r[8])),
                layers=tuple(load_json(r[9])),
                target_index=r[10],
                target_name=r[11],
                image_sha256=r[12],
                n_comments=r[13],
            )
            for r in rows
        ]

    def delete(self, snapshot_id: str) -> None:
        """Delete a snapshot with its image, maps, comments and verdict history.

        Raises:
            SnapshotNotFound: no snapshot with this id.
        """
        check_id(snapshot_id)
        with self._transaction(write=True) as conn:
            self._require(conn, snapshot_id)
            conn.execute("DELETE FROM snapshots WHERE id = ?", (snapshot_id,))

    # -- comments and verdicts -----------------------------------------------------------------

    def add_comment(self, snapshot_id: str, *, author: str, text: str) -> Comment:
        """Add a comment; return it.

        Raises:
            SnapshotNotFound: no snapshot with this id.
            SnapshotError: empty author or text, or over :data:`LIMITS`.
        """
        check_id(snapshot_id)
        author = check_text("author", author, LIMITS["author"], required=True, strip=True)
        text = check_text("comment", text, LIMITS["comment"], required=True)
        created = now_utc()
        with self._transaction(write=True) as conn:
            self._require(conn, snapshot_id)
            cur = conn.execute(
                "INSERT INTO comments (snapshot_id, author, text, created_at) VALUES (?, ?, ?, ?)",
                (snapshot_id, author, text, created),
            )
            assert cur.lastrowid is not None  # set by the INSERT
            comment_id = int(cur.lastrowid)
        return Comment(id=comment_id, snapshot_id=snapshot_id, author=author, text=text, created_at=created)

    def comments(self, snapshot_id: str) -> builtins.list[Comment]:
        """The snapshot's comments, oldest first.

        Raises:
            SnapshotNotFound: no snapshot with this id.
        """
        check_id(snapshot_id)
        with self._transaction(write=False) as conn:
            self._require(conn, snapshot_id)
            rows = conn.execute(
                "SELECT id, snapshot_id, author, text, created_at FROM comments WHERE snapshot_id = ? ORDER BY id",
                (snapshot_id,),
            ).fetchall()
        return [Comment(id=r[0], snapshot_id=r[1], author=r[2], text=r[3], created_at=r[4]) for r in rows]

    def set_verdict(self, snapshot_id: str, verdict: str, *, author: str | None = None) -> None:
        """Set the verdict tag (one of :data:`VERDICTS`).

        A change moves ``updated_at`` and appends to :meth:`verdict_history` (with ``author`` if
        given); setting the verdict a snapshot already has changes nothing.

        Raises:
            SnapshotNotFound: no snapshot with this id.
            SnapshotError: ``verdict`` is not in :data:`VERDICTS`, or ``author`` is over its limit.
        """
        check_id(snapshot_id)
        check_verdict(verdict)
        if author is not None:
            author = check_text("author", author, LIMITS["author"], strip=True) or None
        with self._transaction(write=True) as conn:
            self._require(conn, snapshot_id)
            (previous,) = conn.execute("SELECT verdict FROM snapshots WHERE id = ?", (snapshot_id,)).fetchone()
            if previous == verdict:
                return
            now = now_utc()
            conn.execute("UPDATE snapshots SET verdict = ?, updated_at = ? WHERE id = ?", (verdict, now, snapshot_id))
            conn.execute(
                "INSERT INTO verdict_changes (snapshot_id, verdict, previous, author, changed_at) VALUES (?, ?, ?, ?, ?)",
                (snapshot_id, verdict, previous, author, now),
            )

    def verdict_history(self, snapshot_id: str) -> builtins.list[VerdictChange]:
        """Every verdict the snapshot has had, oldest first (the first is the one it was saved with).

        Raises:
            SnapshotNotFound: no snapshot with this id.
        """
        check_id(snapshot_id)
        with self._transaction(write=False) as conn:
            self._require(conn, snapshot_id)
            rows = conn.execute(
                "SELECT snapshot_id, verdict, previous, author, changed_at FROM verdict_changes "
                "WHERE snapshot_id = ? ORDER BY id",
                (snapshot_id,),
            ).fetchall()
        return [
            VerdictChange(snapshot_id=r[0], verdict=r[1], previous=r[2], author=r[3], changed_at=r[4]) for r in rows
        ]
