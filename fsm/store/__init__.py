"""Persistence: durable machine instances (snapshot + journal + outbox) in SQLite or
PostgreSQL. See docs/persistence.md."""

from __future__ import annotations

from urllib.parse import urlparse

from fsm.store.base import (
    ConflictError,
    DuplicateEvent,
    InstanceExists,
    InstanceNotFound,
    JournalRecord,
    OutboxItem,
    SQLStore,
    StoredInstance,
    StoreError,
    VersionMismatch,
)
from fsm.store.postgres import PostgresStore
from fsm.store.sqlite import SQLiteStore

Store = SQLStore


def open_store(url: str, **options: object) -> SQLStore:
    """Open a store from a URL: ``sqlite:///relative.db``, ``sqlite:////abs/path.db``,
    ``sqlite://:memory:`` or ``postgresql://user@host/db``. A bare path means SQLite."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return SQLiteStore(url if parsed.scheme == "" else parsed.path, **options)  # type: ignore[arg-type]
    if parsed.scheme == "sqlite":
        path = url[len("sqlite://") :]
        if path.startswith("/"):
            path = path[1:]  # sqlite:///x.db -> x.db ; sqlite:////abs -> /abs
        return SQLiteStore(path or ":memory:", **options)  # type: ignore[arg-type]
    if parsed.scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        return PostgresStore(dsn)
    raise StoreError(f"unknown store URL {url!r}: use sqlite:///path.db or postgresql://...")


__all__ = [
    "ConflictError",
    "DuplicateEvent",
    "InstanceExists",
    "InstanceNotFound",
    "JournalRecord",
    "OutboxItem",
    "PostgresStore",
    "SQLStore",
    "SQLiteStore",
    "Store",
    "StoreError",
    "StoredInstance",
    "VersionMismatch",
    "open_store",
]
