"""A small pool of SQLite connections for the review store.

A connection serves one thread at a time and goes back to the idle queue. Reusing connections
matters: closing the LAST connection to a WAL file checkpoints and deletes the WAL (with fsyncs),
~10 ms per operation on a VM disk. After a ``fork()`` the child never touches the parent's
connections (SQLite's rule): it starts a fresh queue and keeps the inherited one referenced, so
closing it cannot disturb the parent.
"""

from __future__ import annotations

import os
import queue
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from methods.errors import SnapshotError

__all__ = ["ConnectionPool"]

_ABANDONED: list[object] = []  # connection queues inherited through fork()


class ConnectionPool:
    """Pooled connections to one SQLite file.

    Args:
        path: the database file (for messages).
        opener: makes a new connection (the store's own, so it can register SQL functions).
        max_idle: idle connections kept open.
    """

    def __init__(self, path: Path, opener: Callable[[], sqlite3.Connection], *, max_idle: int = 4) -> None:
        self.path = path
        self.opener = opener
        self.max_idle = max_idle
        self.idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._pid = os.getpid()

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """One connection for the block; a database error drops it and becomes a SnapshotError."""
        if os.getpid() != self._pid:  # forked: never use the parent's connections
            _ABANDONED.append(self.idle)
            self.idle, self._pid = queue.SimpleQueue(), os.getpid()
        try:
            conn = self.idle.get_nowait()
        except queue.Empty:
            conn = self.opener()
        try:
            yield conn
        except sqlite3.Error as exc:  # a database error may leave the connection in any state: drop it
            conn.close()
            raise SnapshotError(f"review database {self.path}: {exc}") from exc
        except BaseException:
            self._release(conn)
            raise
        self._release(conn)

    def _release(self, conn: sqlite3.Connection) -> None:
        if not conn.in_transaction and self.idle.qsize() < self.max_idle:
            self.idle.put(conn)
        else:
            conn.close()

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """One pooled connection, one transaction: committed on success, rolled back on any error."""
        with self.connection() as conn:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close the idle connections (the pool stays usable; it reopens on demand)."""
        while True:
            try:
                self.idle.get_nowait().close()
            except queue.Empty:
                return
