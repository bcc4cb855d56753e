"""W6 durable: W2 with every step committed, on SQLite (``synchronous=FULL`` and
``NORMAL``, WAL) and PostgreSQL.

- ``fsm``: ``machine.start(store=..., instance_id=...)`` then ``actor.send("INC")``: each
  step appends a journal record and updates the snapshot in one transaction.
- ``raw``: the floor for the same durability: a plain sqlite3 / psycopg loop doing, per
  event, one transaction with one journal INSERT and one snapshot UPDATE (JSON text).

No peer ships a journaling store comparable to fsm's (xstate-statemachine's stores save a
snapshot, not a journal; the others have none), so their W6 cells are n/a.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import fsm
from fsm.store import PostgresStore, SQLiteStore, SQLStore
from peers import workloads as w
from peers.timing import Cell, Sizes, Trial, expect, measure

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
VARIANTS = ("W6 SQLite FULL", "W6 SQLite NORMAL", "W6 PostgreSQL")
NO_STORE = "no peer ships a journaling store comparable to fsm's; raw is a plain SQL loop with the same durability"
RAW_TABLES = (
    "CREATE TABLE IF NOT EXISTS raw_instances (id TEXT PRIMARY KEY, version INTEGER, snapshot TEXT)",
    "CREATE TABLE IF NOT EXISTS raw_journal (id TEXT, seq INTEGER, event TEXT, value TEXT, PRIMARY KEY (id, seq))",
)


def _machine(limit: int) -> fsm.Machine:
    return fsm.Machine.from_dict(w.w2_definition(limit)).provide(
        guards={"below": lambda context, event, params: context["n"] < context["limit"]},
        actions={"inc": fsm.assign(lambda context, event, params: {"n": context["n"] + 1})},
    )


def fsm_bench(store: SQLStore) -> Callable[[int], Trial]:
    def bench(n: int) -> Trial:
        instance_id = f"w6-{uuid.uuid4().hex[:12]}"
        actor = _machine(n).start(store=store, instance_id=instance_id, clock=fsm.VirtualClock())

        def run() -> None:
            send = actor.send
            for _ in range(n):
                send("INC")

        def check() -> None:
            stored = store.load(instance_id).snapshot
            expect(actor.snapshot.context["n"] == n, f"n = {actor.snapshot.context['n']}")
            expect(stored["context"]["n"] == n, f"stored n = {stored['context']['n']}")
            expect(len(store.history(instance_id)) == n + 1, "journal records missing")

        return Trial(run, check)

    return bench


def raw_bench(connect: Callable[[], Any], placeholder: str, begin: str | None) -> Callable[[int], Trial]:
    """The plain SQL loop. ``begin`` is the statement that opens a write transaction
    (sqlite3 in autocommit mode needs an explicit ``BEGIN IMMEDIATE``; psycopg opens one
    by itself)."""
    conn = connect()
    for statement in RAW_TABLES:
        conn.execute(statement)
    conn.commit()
    insert = f"INSERT INTO raw_journal VALUES ({', '.join([placeholder] * 4)})"
    update = f"UPDATE raw_instances SET version = {placeholder}, snapshot = {placeholder} WHERE id = {placeholder}"

    def bench(n: int) -> Trial:
        instance_id = f"w6-{uuid.uuid4().hex[:12]}"
        context = {"n": 0, "limit": n}
        conn.execute(f"INSERT INTO raw_instances VALUES ({', '.join([placeholder] * 3)})", (instance_id, 0, "{}"))
        conn.commit()

        def run() -> None:
            dumps, execute, commit = json.dumps, conn.execute, conn.commit
            for seq in range(1, n + 1):
                if context["n"] < context["limit"]:
                    context["n"] += 1
                if begin:
                    execute(begin)
                execute(insert, (instance_id, seq, '{"type":"INC"}', '"a"'))
                execute(update, (seq, dumps({"value": "a", "context": context}), instance_id))
                commit()

        def check() -> None:
            row = conn.execute(
                f"SELECT snapshot FROM raw_instances WHERE id = {placeholder}", (instance_id,)
            ).fetchone()
            conn.commit()
            expect(json.loads(row[0])["context"]["n"] == n, "stored n is wrong")

        return Trial(run, check)

    return bench


def _sqlite_raw_bench(path: Path, synchronous: str) -> Callable[[int], Trial]:
    def connect() -> _AutocommitSQLite:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        return _AutocommitSQLite(conn)

    return raw_bench(connect, "?", "BEGIN IMMEDIATE")


class _AutocommitSQLite:
    """sqlite3 in autocommit mode with an explicit BEGIN, so ``commit`` is a COMMIT."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Any = ()) -> Any:
        return self.conn.execute(sql, params)

    def commit(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")


def _with_schema(dsn: str, schema: str) -> str:
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={schema}"))
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


@contextmanager
def _postgres(dsn: str) -> Iterator[str]:
    """A DSN whose search path is a fresh schema, dropped afterwards."""
    import psycopg

    admin = psycopg.connect(dsn, autocommit=True, connect_timeout=3)
    schema = f"fsm_suite_{uuid.uuid4().hex[:8]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield _with_schema(dsn, schema)
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


def run(systems: list[str], sizes: Sizes) -> tuple[dict[str, dict[str, Cell]], list[str]]:
    """W6 cells for ``fsm`` and ``raw`` (whichever of them are selected), and notes."""
    cells: dict[str, dict[str, Cell]] = {s: {} for s in systems if s in ("fsm", "raw")}
    notes: list[str] = []
    budget = sizes.durable_budget_s

    def measure_into(
        variant: str, fsm_store: Callable[[], SQLStore], raw: Callable[[], Callable[[int], Trial]]
    ) -> None:
        if "fsm" in cells:
            store = fsm_store()
            try:
                cells["fsm"][variant] = measure(fsm_bench(store), variant, sizes.durable, sizes, budget_s=budget)
            finally:
                store.close()
        if "raw" in cells:
            cells["raw"][variant] = measure(raw(), variant, sizes.durable, sizes, budget_s=budget)

    with tempfile.TemporaryDirectory(prefix="fsm-bench-") as tmp:
        for synchronous in ("FULL", "NORMAL"):
            measure_into(
                f"W6 SQLite {synchronous}",
                partial(SQLiteStore, Path(tmp) / f"fsm-{synchronous}.db", synchronous=synchronous),
                partial(_sqlite_raw_bench, Path(tmp) / f"raw-{synchronous}.db", synchronous),
            )
    dsn = os.environ.get("FSM_BENCH_POSTGRES_DSN") or DEFAULT_DSN
    why = _postgres_unavailable(dsn)
    if why is not None:
        notes.append(why)
        for by_variant in cells.values():
            by_variant["W6 PostgreSQL"] = Cell(na=why)
        return cells, notes
    import psycopg

    with _postgres(dsn) as url:
        measure_into(
            "W6 PostgreSQL", lambda: PostgresStore(url), lambda: raw_bench(lambda: psycopg.connect(url), "%s", None)
        )
    return cells, notes


def _postgres_unavailable(dsn: str) -> str | None:
    try:
        import psycopg

        psycopg.connect(dsn, connect_timeout=3).close()
    except Exception as exc:
        return f"PostgreSQL skipped: {dsn} unreachable ({type(exc).__name__}: {str(exc).strip()[:160]})"
    return None
