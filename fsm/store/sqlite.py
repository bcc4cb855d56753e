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
        """One connection per thread (sqlite3 connections are not shareable)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[Any]:
        conn = self._connection()
        cur = conn.cursor()
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                cur.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[Any]:
        yield self._connection().cursor()

    def _is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)

    def claim_due(self, owner: str, now: float, lease_ms: float, limit: int = 100) -> list[str]:
        with self._write() as cur:
            cur.execute(
                "SELECT id FROM fsm_instances WHERE next_due IS NOT NULL AND next_due <= ? AND status = 'active'"
                " AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_due LIMIT ?",
                (now, now, limit),
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
