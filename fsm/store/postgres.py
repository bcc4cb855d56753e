"""PostgreSQL store (psycopg 3, ``pip install 'fsm[postgres]'``): many worker processes on
many hosts.

Each step is one transaction; optimistic concurrency is the ``WHERE version = ?`` of the
snapshot update, so two writers can never both apply a step to the same version. Workers
lease due instances with ``FOR UPDATE SKIP LOCKED``, so several workers share timers
without waiting on each other and no instance is claimed by two at once. Migrations run
under a transaction-level advisory lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fsm.store.base import SQLStore, StoreError

_MIGRATION_LOCK = 0x46534D  # "FSM"


class PostgresStore(SQLStore):
    REAL = "DOUBLE PRECISION"
    PLACEHOLDER = "%s"

    def __init__(self, dsn: str) -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise StoreError("PostgresStore needs psycopg 3: pip install 'fsm[postgres]'") from exc
        super().__init__()
        self._psycopg = psycopg
        self.dsn = dsn
        self.url = dsn
        self._local = threading.local()
        self._connections: list[Any] = []
        self._migrate()

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._psycopg.connect(self.dsn, autocommit=False)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[Any]:
        conn = self._connection()
        with conn.transaction(), conn.cursor() as cur:
            yield cur

    @contextmanager
    def _read(self) -> Iterator[Any]:
        conn = self._connection()
        try:
            with conn.transaction(), conn.cursor() as cur:
                yield cur
        except self._psycopg.Error as exc:
            raise StoreError(f"database error: {exc}") from exc

    def _migrate(self) -> None:
        with self._write() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            super()._migrate()

    def _is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, self._psycopg.errors.UniqueViolation)

    def claim_due(
        self, owner: str, now: float, lease_ms: float, limit: int = 100, effects_after_s: float = 30.0
    ) -> list[str]:
        claimable = self.CLAIMABLE.replace("?", "%s")
        with self._write() as cur:
            cur.execute(
                "UPDATE fsm_instances SET lease_owner = %s, lease_until = %s WHERE id IN ("
                f" SELECT id FROM fsm_instances WHERE {claimable} ORDER BY next_due LIMIT %s FOR UPDATE SKIP LOCKED)"
                " RETURNING id",
                (owner, now + lease_ms, now, now / 1000.0 - effects_after_s, now / 1000.0, now, limit),
            )
            return [row[0] for row in cur.fetchall()]

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                try:
                    conn.close()
                except Exception:
                    pass
            self._connections.clear()
        self._local = threading.local()

    def __repr__(self) -> str:
        return "PostgresStore(...)"
