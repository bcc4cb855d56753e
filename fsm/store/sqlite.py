"""SQLite store: the embedded default (stdlib ``sqlite3``, WAL mode).

Writes run in ``BEGIN IMMEDIATE`` transactions, so concurrent processes serialise on
SQLite's write lock (with a busy timeout) instead of failing mid-transaction.
``synchronous=FULL`` (the default here) makes every committed step survive power loss;
``NORMAL`` trades the last steps before an OS crash for speed (a killed process still
loses nothing in WAL mode).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fsm.store.base import SQLStore, StoreError


class SQLiteStore(SQLStore):
    REAL = "REAL"
    PLACEHOLDER = "?"

    def __init__(self, path: str | Path, *, synchronous: str = "FULL", timeout: float = 30.0) -> None:
        super().__init__()
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA", "OFF"):
            raise StoreError(f"synchronous must be FULL, NORMAL, EXTRA or OFF, not {synchronous!r}")
        self.path = str(path)
        self.url = f"sqlite:///{self.path}"
        self.synchronous = synchronous.upper()
        self.timeout = timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    def _connection(self) -> sqlite3.Connection:
        """One connection per thread (sqlite3 connections are not shareable), except for
        ``:memory:``, where a second connection would be a second, empty database: there
        all threads share one connection, serialised by the store's lock."""
        if self.path == ":memory:" and self._connections:
            return self._connections[0]
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
            # Switching a fresh file to WAL needs a lock that a concurrent opener may
            # hold, and SQLite answers "locked" at once instead of waiting: retry.
            self._retry_locked(lambda: conn.execute("PRAGMA journal_mode=WAL"))
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _retry_locked(self, operation: Any) -> Any:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return operation()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    @contextmanager
    def _write(self) -> Iterator[Any]:
        conn = self._connection()
        shared = self.path == ":memory:"
        if shared:
            self._lock.acquire()
        try:
            cur = conn.cursor()
            try:
                self._retry_locked(lambda: cur.execute("BEGIN IMMEDIATE"))
            except sqlite3.Error as exc:
                raise StoreError(f"database error ({self.path}): {exc}") from exc
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            try:
                cur.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"database error ({self.path}): {exc}") from exc
        finally:
            if shared:
                self._lock.release()

    @contextmanager
    def _read(self) -> Iterator[Any]:
        shared = self.path == ":memory:"
        if shared:
            self._lock.acquire()
        try:
            yield self._connection().cursor()
        except sqlite3.Error as exc:
            raise StoreError(f"database error ({self.path}): {exc}") from exc
        finally:
            if shared:
                self._lock.release()

    def _is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)

    def claim_due(
        self, owner: str, now: float, lease_ms: float, limit: int = 100, effects_after_s: float = 30.0
    ) -> list[str]:
        with self._write() as cur:
            cur.execute(
                f"SELECT id FROM fsm_instances WHERE {self.CLAIMABLE} ORDER BY next_due LIMIT ?",
                (now, now / 1000.0 - effects_after_s, now / 1000.0, now, limit),
            )
            ids = [row[0] for row in cur.fetchall()]
            for instance_id in ids:
                cur.execute(
                    "UPDATE fsm_instances SET lease_owner = ?, lease_until = ? WHERE id = ?",
                    (owner, now + lease_ms, instance_id),
                )
        return ids

    def integrity_check(self) -> list[str]:
        rows = self._connection().execute("PRAGMA integrity_check").fetchall()
        return [] if rows == [("ok",)] else [str(r[0]) for r in rows]

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._connections.clear()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"
