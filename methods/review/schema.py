"""Where the review database lives, how a connection is opened, and the versioned schema.

The review store (:mod:`methods.review.store`) is one SQLite file, no server. This module holds the
parts that are about the file rather than about snapshots:

* :func:`resolve_db_path` — the location rules (argument, ``GRADLENS_DB``, ``.streamlit/secrets.toml``
  key ``gradlens_db``, default ``data/gradlens.sqlite3``);
* :func:`connect` — one connection with the pragmas every connection needs (``busy_timeout``,
  ``foreign_keys``, ``synchronous``); connections are cheap and never shared between threads;
* :data:`MIGRATIONS` and :func:`migrate` — the schema as an ordered list of steps. ``PRAGMA
  user_version`` records how many steps a file has had; :func:`migrate` applies the missing ones in
  ONE ``BEGIN IMMEDIATE`` transaction, so a file is either fully upgraded or untouched.

A migration is append-only: never edit a step that has shipped, add a new one.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import tomllib

from methods.errors import SnapshotError, SnapshotNotFound

__all__ = [
    "DB_ENV",
    "SECRETS_KEY",
    "DEFAULT_DB_NAME",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SnapshotError",
    "SnapshotNotFound",
    "resolve_db_path",
    "connect",
    "schema_version",
    "migrate",
]

DB_ENV = "GRADLENS_DB"
"""Environment variable with the database path (wins over secrets.toml and the default)."""

SECRETS_KEY = "gradlens_db"
"""Top-level key in ``.streamlit/secrets.toml`` with the database path."""

DEFAULT_DB_NAME = "gradlens.sqlite3"
"""File name of the default database, inside the git-ignored ``data/`` folder."""

_REPO_ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- location


def _secrets_files() -> list[Path]:
    """Streamlit's order: the project's file (current directory) overrides the user's."""
    return [Path.cwd() / ".streamlit" / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml"]


def _from_secrets() -> Path | None:
    for file in _secrets_files():
        try:
            with open(file, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            continue
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SnapshotError(f"cannot read {file} to look up {SECRETS_KEY!r}: {exc}") from exc
        value = data.get(SECRETS_KEY)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise SnapshotError(f"{SECRETS_KEY} in {file} must be a non-empty path string; got {value!r}")
        path = Path(value).expanduser()
        # a relative path is relative to the project folder that holds .streamlit/
        return path if path.is_absolute() else file.parent.parent / path
    return None


def _default_path() -> Path:
    # in a source checkout, data/ at the repository root (git-ignored); installed, data/ in the cwd
    base = _REPO_ROOT if (_REPO_ROOT / "pyproject.toml").is_file() else Path.cwd()
    return base / "data" / DEFAULT_DB_NAME


def resolve_db_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The database file to use, by the first rule that gives one.

    1. ``path`` if given;
    2. the ``GRADLENS_DB`` environment variable (relative to the current directory);
    3. the key ``gradlens_db`` in ``./.streamlit/secrets.toml``, then ``~/.streamlit/secrets.toml``
       (read with :mod:`tomllib`; a relative value is relative to the folder holding ``.streamlit``);
    4. ``data/gradlens.sqlite3`` at the repository root (the current directory when installed).

    The parent folder is created. ``":memory:"`` is refused: every operation opens its own
    connection, and each would see a different empty in-memory database.

    Raises:
        SnapshotError: the path is empty or ``":memory:"``, or secrets.toml cannot be parsed.
    """
    if path is not None:
        chosen, origin = Path(os.fspath(path)).expanduser(), "path"
    elif os.environ.get(DB_ENV, "").strip():
        chosen, origin = Path(os.environ[DB_ENV].strip()).expanduser(), DB_ENV
    else:
        secret = _from_secrets()
        chosen, origin = (secret, SECRETS_KEY) if secret is not None else (_default_path(), "default")
    if str(chosen) in ("", ".", ":memory:"):
        raise SnapshotError(
            f"{origin}={str(chosen)!r} is not a database file path; give a file such as data/gradlens.sqlite3"
        )
    chosen = chosen.absolute()
    chosen.parent.mkdir(parents=True, exist_ok=True)
    return chosen


# ----------------------------------------------------------------------------- connections


def connect(path: Path, *, busy_timeout_ms: int = 30_000, check_same_thread: bool = True) -> sqlite3.Connection:
    """Open one connection in autocommit mode (transactions are explicit ``BEGIN`` statements).

    Pragmas: ``busy_timeout`` (wait for another writer instead of failing at once), ``foreign_keys``
    (per connection in SQLite; comments cascade with their snapshot), ``synchronous=NORMAL`` (in WAL
    mode: a crashed process never corrupts the file; a power cut may lose the last commits).
    ``check_same_thread=False`` is for a pool that hands a connection to one thread at a time.
    """
    conn = sqlite3.connect(
        path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=check_same_thread
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise SnapshotError(f"{path} is not a usable SQLite database: {exc}") from exc
    return conn


def enable_wal(conn: sqlite3.Connection, path: Path) -> None:
    """Switch the file to write-ahead logging (persistent; readers never block the writer)."""
    try:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise SnapshotError(f"{path} is not a usable SQLite database: {exc}") from exc
    if str(mode).lower() != "wal":
        raise SnapshotError(
            f"{path}: SQLite could not switch to WAL mode (journal_mode is {mode!r}); "
            "put the database on a local disk (WAL does not work on network file systems)"
        )


# ----------------------------------------------------------------------------- schema

# Each step is a tuple of SQL statements. Never edit a shipped step; append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # v1: snapshots (small columns, listed often), their blobs (separate, read only by get), comments
    (
        """CREATE TABLE snapshots (
            seq           INTEGER PRIMARY KEY,
            id            TEXT NOT NULL UNIQUE,
            created_at    TEXT NOT NULL,
            updated_at    TEXT NOT NULL,
            author        TEXT NOT NULL,
            title         TEXT NOT NULL DEFAULT '',
            note          TEXT NOT NULL DEFAULT '',
            verdict       TEXT NOT NULL DEFAULT 'unreviewed',
            model_id      TEXT NOT NULL,
            model_sha256  TEXT,
            page          TEXT NOT NULL DEFAULT '',
            methods       TEXT NOT NULL,
            layers        TEXT NOT NULL,
            target_index  INTEGER,
            target_name   TEXT,
            norm_mode     TEXT NOT NULL,
            norm_relu     INTEGER NOT NULL,
            norm_scope    TEXT NOT NULL,
            norm_p_low    REAL NOT NULL,
            norm_p_high   REAL NOT NULL,
            colormap      TEXT NOT NULL,
            alpha         REAL NOT NULL,
            view          TEXT NOT NULL,
            metrics       TEXT NOT NULL,
            image_sha256  TEXT NOT NULL,
            image_width   INTEGER NOT NULL,
            image_height  INTEGER NOT NULL
        )""",
        """CREATE TABLE snapshot_blobs (
            snapshot_id TEXT PRIMARY KEY REFERENCES snapshots(id) ON DELETE CASCADE,
            image_png   BLOB NOT NULL,
            maps_npz    BLOB NOT NULL
        )""",
        """CREATE TABLE comments (
            id          INTEGER PRIMARY KEY,
            snapshot_id TEXT NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
            author      TEXT NOT NULL,
            text        TEXT NOT NULL,
            created_at  TEXT NOT NULL
        )""",
        "CREATE INDEX comments_by_snapshot ON comments(snapshot_id, id)",
        "CREATE INDEX snapshots_by_created ON snapshots(created_at, seq)",
    ),
    # v2: every verdict change is kept (who, when, from what); files from v1 get one row per
    # snapshot with its verdict as of the upgrade. Indexes for the author and model filters.
    (
        """CREATE TABLE verdict_changes (
            id          INTEGER PRIMARY KEY,
            snapshot_id TEXT NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
            verdict     TEXT NOT NULL,
            previous    TEXT,
            author      TEXT,
            changed_at  TEXT NOT NULL
        )""",
        "CREATE INDEX verdict_changes_by_snapshot ON verdict_changes(snapshot_id, id)",
        """INSERT INTO verdict_changes (snapshot_id, verdict, previous, author, changed_at)
           SELECT id, verdict, NULL, NULL, updated_at FROM snapshots ORDER BY seq""",
        "CREATE INDEX snapshots_by_author ON snapshots(author COLLATE NOCASE)",
        "CREATE INDEX snapshots_by_model ON snapshots(model_id)",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)
"""The ``PRAGMA user_version`` of a fully migrated file."""


def schema_version(conn: sqlite3.Connection) -> int:
    """``PRAGMA user_version`` of the open file (0 for a new, empty file)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(
    conn: sqlite3.Connection,
    *,
    migrations: Sequence[Sequence[str]] = MIGRATIONS,
    path: Path | str = "the database",
) -> int:
    """Bring the file up to ``len(migrations)`` in one transaction; return the version before.

    The version is read again after ``BEGIN IMMEDIATE`` (which takes the write lock), so two
    processes opening a new file at once migrate it once. On any error the transaction is rolled
    back and the file keeps its old version and tables.

    Raises:
        SnapshotError: the file is newer than this code (``user_version > len(migrations)``), or
            a step failed.
    """
    target = len(migrations)
    if schema_version(conn) == target:  # the common case: nothing to do, no write lock taken
        return target
    conn.execute("BEGIN IMMEDIATE")
    try:
        before = schema_version(conn)
        if before > target:
            raise SnapshotError(
                f"{path} has schema version {before}, newer than this GradLens understands ({target}); "
                "upgrade GradLens or point GRADLENS_DB at another file"
            )
        for step in range(before, target):
            for statement in migrations[step]:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {target}")
        conn.execute("COMMIT")
    except BaseException as exc:
        conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise SnapshotError(
                f"{path}: schema migration to version {target} failed and was rolled back: {exc}"
            ) from exc
        raise
    return before
