"""The store's data model, on SQLite and PostgreSQL: instances, journal, outbox, schema.

Every test taking the ``backend`` fixture runs twice, once per backend. This module also
holds the backend fixture machinery the other persistence test files import
(``from tests import test_store as stores``):

- SQLite: a fresh database file in ``tmp_path``.
- PostgreSQL: the DSN comes from ``FSM_TEST_POSTGRES_DSN`` (default
  ``postgresql://postgres@127.0.0.1:5432/test``). Each test gets a FRESH SCHEMA
  (``fsm_test_<random>``), selected with ``options=-csearch_path=<schema>`` in the URL, so
  tests never see each other's tables and may run against a shared database; the schema
  is dropped afterwards. When no server answers the PostgreSQL tests are skipped with a
  message, unless ``FSM_REQUIRE_POSTGRES=1`` (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import pytest

import fsm
from fsm.store import (
    ConflictError,
    DuplicateEvent,
    InstanceExists,
    InstanceNotFound,
    JournalRecord,
    SQLiteStore,
    SQLStore,
    StoreError,
    open_store,
)
from fsm.store.base import MIGRATIONS

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", "postgres"]

# -- backends ------------------------------------------------------------------------------


def postgres_dsn() -> str:
    return os.environ.get("FSM_TEST_POSTGRES_DSN") or DEFAULT_POSTGRES_DSN


_postgres_problem: dict[str, str | None] = {}


def postgres_problem() -> str | None:
    """None when a PostgreSQL server answers at the test DSN, else why not (cached)."""
    dsn = postgres_dsn()
    if dsn not in _postgres_problem:
        try:
            import psycopg

            with psycopg.connect(dsn, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _postgres_problem[dsn] = None
        except Exception as exc:  # ImportError, OperationalError...
            _postgres_problem[dsn] = f"{type(exc).__name__}: {exc}".strip()
    return _postgres_problem[dsn]


def require_postgres() -> None:
    problem = postgres_problem()
    if problem is None:
        return
    message = f"PostgreSQL not available at {postgres_dsn()} ({problem}); set FSM_TEST_POSTGRES_DSN"
    if os.environ.get("FSM_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"FSM_REQUIRE_POSTGRES=1 but {message}", pytrace=False)
    pytest.skip(message)


def require_postgres_or_note() -> None:
    """Fail when PostgreSQL is required (FSM_REQUIRE_POSTGRES=1) and not available."""
    problem = postgres_problem()
    if problem is not None and os.environ.get("FSM_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"FSM_REQUIRE_POSTGRES=1 but PostgreSQL is not available at {postgres_dsn()} ({problem})")


def with_options(dsn: str, *settings: str) -> str:
    """The DSN (a postgresql:// URL) with server settings added to its ``options``
    (``search_path=fsm_test_1`` becomes ``options=-csearch_path=fsm_test_1``)."""
    if "://" not in dsn:
        raise ValueError(f"FSM_TEST_POSTGRES_DSN must be a postgresql:// URL (the CLI takes URLs), not {dsn!r}")
    parts = urlsplit(dsn)
    query = parse_qsl(parts.query)
    options = " ".join([*(v for k, v in query if k == "options"), *(f"-c{s}" for s in settings)])
    query = [(k, v) for k, v in query if k != "options"] + [("options", options)]
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


class Backend:
    """One database for one test: ``url`` for ``open_store`` and the CLI, ``open()`` for
    store objects (closed at teardown), ``sql()`` for raw access (tampering, bulk loads)."""

    def __init__(self, name: str, url: str, path: Path | None = None) -> None:
        self.name = name
        self.url = url
        self.path = path
        self._stores: list[SQLStore] = []
        self._raw: Any = None

    def open(self, *, durable: bool = True, **options: Any) -> SQLStore:
        """A store on this database. ``durable=False`` skips the flush to disk at each
        commit (SQLite ``synchronous=OFF``, PostgreSQL ``synchronous_commit=off``), for
        tests about logic rather than durability."""
        if durable:
            store = open_store(self.url, **options)
        elif self.name == "sqlite":
            store = open_store(self.url, synchronous="OFF", **options)
        else:
            store = open_store(with_options(self.url, "synchronous_commit=off"), **options)
        self._stores.append(store)
        return store

    def connect(self) -> Any:
        """A new raw DB-API connection in autocommit mode (the caller closes it)."""
        if self.name == "sqlite":
            return sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        import psycopg

        return psycopg.connect(self.url, autocommit=True)

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (``?`` placeholders) and return its rows."""
        if self._raw is None:
            self._raw = self.connect()
        if self.name == "postgres":
            statement = statement.replace("?", "%s")
        cur = self._raw.execute(statement, params)
        return list(cur.fetchall()) if cur.description else []

    def bulk(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        """Insert many rows in ONE transaction (``?`` placeholders)."""
        conn = self.connect()
        try:
            if self.name == "sqlite":
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(statement, rows)
                conn.execute("COMMIT")
            else:
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(statement.replace("?", "%s"), rows)
        finally:
            conn.close()

    def script(self, sqlite: str, postgres: str) -> None:
        """Run dialect-specific DDL (several statements)."""
        if self._raw is None:
            self._raw = self.connect()
        if self.name == "sqlite":
            self._raw.executescript(sqlite)
        else:
            self._raw.execute(postgres)

    def close(self) -> None:
        for store in self._stores:
            store.close()
        self._stores.clear()
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    def __repr__(self) -> str:
        return f"Backend({self.name})"


def make_backend(name: str, tmp_path: Path) -> Iterator[Backend]:
    """The body of a ``backend`` fixture (see the module docstring for the isolation)."""
    if name == "sqlite":
        path = tmp_path / "fsm.db"
        backend = Backend("sqlite", f"sqlite:///{path}", path)
        try:
            yield backend
        finally:
            backend.close()
        return
    require_postgres()
    import psycopg

    schema = f"fsm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn(), autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    backend = Backend("postgres", with_options(postgres_dsn(), f"search_path={schema}"))
    try:
        yield backend
    finally:
        backend.close()
        with psycopg.connect(postgres_dsn(), autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from make_backend(request.param, tmp_path)


@pytest.fixture
def store(backend: Backend) -> SQLStore:
    return backend.open()


# -- machines shared by the persistence tests ------------------------------------------------

INC = {"type": "assign", "assignment": {"n": {"expr": "context.n + 1"}}}

COUNTER: dict[str, Any] = {
    "id": "counter",
    "initial": "counting",
    "context": {"n": 0},
    "states": {
        "counting": {
            "entry": ["hello"],
            "on": {
                "INC": {"actions": [INC, "note"]},
                "ADD": {"actions": [{"type": "assign", "assignment": {"n": {"expr": "context.n + event.by"}}}]},
                "STOP": "stopped",
            },
        },
        "stopped": {"type": "final"},
    },
}


def counter(record: list[Any] | None = None, **actions: Any) -> fsm.Machine:
    """The counter machine; its custom actions append their idempotency key to ``record``."""
    sink: list[Any] = record if record is not None else []

    def hello(ctx: Any, ev: Any, params: Any, *, effect: Any) -> None:
        sink.append(effect.key)

    def note(ctx: Any, ev: Any, params: Any, *, effect: Any) -> None:
        sink.append(effect.key)

    return fsm.Machine.from_dict(COUNTER).provide(actions={"hello": hello, "note": note, **actions})


# -- schema and migrations -------------------------------------------------------------------


def test_schema_version_counts_the_migrations_and_reopening_is_a_no_op(backend: Backend) -> None:
    first = backend.open()
    assert first.schema_version == len(MIGRATIONS) >= 1
    counter().start(store=first, instance_id="kept", clock=fsm.VirtualClock())
    meta = backend.sql("SELECT key, value FROM fsm_meta ORDER BY key")
    assert meta == [("schema_version", str(len(MIGRATIONS)))]

    second = backend.open()  # runs the migrations again: nothing to do
    first._migrate()  # and explicitly, on an up-to-date schema
    assert second.schema_version == first.schema_version == len(MIGRATIONS)
    assert backend.sql("SELECT key, value FROM fsm_meta ORDER BY key") == meta
    assert second.load("kept").version == 0, "reopening must not touch the data"


def test_effects_pending_before_the_upgrade_to_created_at_are_claimed_by_workers(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database created at schema version 1 (no ``fsm_outbox.created_at``) holds an
    effect left pending; after opening it with the current store, a worker claims it."""
    from fsm.store import base

    monkeypatch.setattr(base, "MIGRATIONS", MIGRATIONS[:1])
    old = backend.open()
    assert old.schema_version == 1
    snapshot = {"status": "active", "value": "a", "timers": []}  # no timer: only the effect makes it due
    record = JournalRecord(0, {"type": "xstate.init"}, None, None, 0.0, "a", "active", [])
    old.create("old", "m", "v1", {"id": "m"}, snapshot, record, [])
    # the outbox rows a schema-1 writer made: one effect pending, one done
    insert = "INSERT INTO fsm_outbox (instance_id, seq, idx, effect, done) VALUES (?, ?, ?, ?, ?)"
    backend.sql(insert, ("old", 0, 0, '{"type": "charge"}', 0))
    backend.sql(insert, ("old", 0, 1, '{"type": "receipt"}', 1))
    old.close()
    monkeypatch.undo()

    store = backend.open()
    assert store.schema_version == len(MIGRATIONS) >= 3
    [(recorded_at,)] = backend.sql("SELECT recorded_at FROM fsm_journal WHERE instance_id = ?", ("old",))
    created = backend.sql("SELECT idx, created_at FROM fsm_outbox WHERE instance_id = ? ORDER BY idx", ("old",))
    assert created == [(0, recorded_at), (1, recorded_at)], "backfilled with the commit time of their step"
    [pending] = store.pending_effects("old")
    assert (pending.key, pending.effect) == ("old:0:0", {"type": "charge"})
    # pending for less than effects_after_s: not yet taken as left behind
    assert store.claim_due("w", now=(recorded_at + 10) * 1000, lease_ms=1_000, effects_after_s=30) == []
    assert store.claim_due("w", now=(recorded_at + 31) * 1000, lease_ms=1_000, effects_after_s=30) == ["old"]


OPEN_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from fsm.store import open_store
    url, start = sys.argv[1], float(sys.argv[2])
    time.sleep(max(0.0, start - time.time()))
    store = open_store(url)
    print(store.schema_version)
    store.close()
    """
)


def test_processes_opening_a_fresh_database_at_once_all_succeed(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    """Several processes race to create the schema of an empty database."""
    start = time.time() + 1.0  # every process is up and waiting by then
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_SCRIPT, backend.url, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err
        assert out.strip() == str(len(MIGRATIONS))
    assert backend.sql("SELECT value FROM fsm_meta WHERE key = 'schema_version'") == [(str(len(MIGRATIONS)),)]


WAL_BUG = (
    "SQLiteStore runs `PRAGMA journal_mode=WAL` on every new connection; while the file is still in "
    "rollback-journal mode and another connection holds a lock (another process creating or converting "
    "the same fresh file), SQLite answers SQLITE_BUSY at once, without the busy timeout, so the opener "
    "fails with 'database is locked'"
)


def test_opening_a_sqlite_file_another_connection_is_writing_waits_for_the_lock(tmp_path: Path) -> None:
    """The deterministic form of the race above: the other writer commits within 0.3 s,
    well inside the store's 30 s timeout, so opening must wait and succeed."""
    path = tmp_path / "busy.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE someone_else (x)")
    releaser = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    releaser.start()
    try:
        store = SQLiteStore(path, timeout=10)
        assert store.schema_version == len(MIGRATIONS) >= 3
        store.close()
    finally:
        releaser.join()
        other.close()


# -- create / load -------------------------------------------------------------------------


def test_create_refuses_an_existing_id_and_changes_nothing(store: SQLStore) -> None:
    machine = counter()
    actor = machine.start(store=store, instance_id="order-1", clock=fsm.VirtualClock())
    actor.send("INC")
    before = store.load("order-1")
    with pytest.raises(InstanceExists) as caught:
        machine.start(store=store, instance_id="order-1", clock=fsm.VirtualClock())
    assert caught.value.instance_id == "order-1"
    assert "order-1" in str(caught.value)
    assert store.load("order-1") == before
    assert [r.seq for r in store.history("order-1")] == [0, 1]

    # the store call itself, with a journal record of its own
    record = JournalRecord(0, {"type": "xstate.init"}, None, None, 0.0, "counting", "active", [])
    with pytest.raises(InstanceExists):
        store.create("order-1", "counter", "v", {}, before.snapshot, record, [])
    assert store.load("order-1") == before


def test_load_and_get_snapshot_return_the_committed_snapshot(store: SQLStore) -> None:
    clock = fsm.VirtualClock()
    actor = counter().start(store=store, instance_id="c", clock=clock, context={"n": 5})
    actor.send("INC")
    stored = store.load("c")
    assert stored.id == "c"
    assert stored.machine_id == "counter"
    assert stored.machine_version == actor.machine.version
    assert stored.version == actor.version == 1
    assert stored.status == "active"
    assert stored.snapshot == store.get_snapshot("c")
    assert stored.snapshot["context"] == {"n": 6}
    assert stored.created_at <= stored.updated_at
    assert store.exists("c") and not store.exists("nope")
    with pytest.raises(InstanceNotFound, match="nope"):
        store.load("nope")
    with pytest.raises(InstanceNotFound):
        store.get_snapshot("nope")
    with pytest.raises(InstanceNotFound):
        store.history("nope")
    definition = store.machine_definition("counter", actor.machine.version)
    assert definition == actor.machine.definition


# -- one transaction per step ---------------------------------------------------------------

FAIL_OUTBOX_SQLITE = """
CREATE TRIGGER fsm_test_outbox_down BEFORE INSERT ON fsm_outbox
BEGIN SELECT RAISE(ABORT, 'outbox down'); END;
"""
FAIL_OUTBOX_POSTGRES = """
CREATE FUNCTION fsm_test_outbox_down() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'outbox down'; END $$ LANGUAGE plpgsql;
CREATE TRIGGER fsm_test_outbox_down BEFORE INSERT ON fsm_outbox
FOR EACH ROW EXECUTE FUNCTION fsm_test_outbox_down();
"""


def _everything(backend: Backend, instance_id: str) -> tuple[Any, ...]:
    return (
        backend.sql("SELECT version, status, snapshot, next_due FROM fsm_instances WHERE id = ?", (instance_id,)),
        backend.sql("SELECT seq, event, value FROM fsm_journal WHERE instance_id = ? ORDER BY seq", (instance_id,)),
        backend.sql("SELECT seq, idx, done FROM fsm_outbox WHERE instance_id = ? ORDER BY seq, idx", (instance_id,)),
    )


def test_snapshot_journal_and_outbox_are_written_in_one_transaction(backend: Backend) -> None:
    """The outbox insert is the last write of a step; when the database refuses it, the
    journal record and the snapshot update of that step are rolled back too."""
    store = backend.open()
    ran: list[str] = []
    actor = counter(ran).start(store=store, instance_id="c", clock=fsm.VirtualClock())
    actor.send("INC")
    before = _everything(backend, "c")
    ran.clear()

    backend.script(FAIL_OUTBOX_SQLITE, FAIL_OUTBOX_POSTGRES)
    with pytest.raises(Exception, match="outbox down"):
        actor.send("INC")  # its step has an effect: the outbox insert fails
    assert _everything(backend, "c") == before
    assert ran == [], "no effect may run for a step that was not committed"
    assert actor.version == 1 and actor.snapshot.context == {"n": 1}

    # the same through the store API directly
    stored = store.load("c")
    record = JournalRecord(2, {"type": "INC"}, "e-2", None, 0.0, "counting", "active", [])
    snapshot = {**stored.snapshot, "context": {"n": 99}}
    with pytest.raises(Exception, match="outbox down"):
        store.commit("c", 1, record, snapshot, [{"type": "note", "params": None}])
    assert _everything(backend, "c") == before
    assert not store.has_event("c", "e-2")

    backend.script(
        "DROP TRIGGER fsm_test_outbox_down;",
        "DROP TRIGGER fsm_test_outbox_down ON fsm_outbox; DROP FUNCTION fsm_test_outbox_down();",
    )
    actor.send("INC")  # the actor carries on from the last committed step
    assert actor.version == 2 and actor.snapshot.context == {"n": 2}
    assert ran == ["c:2:0"]
    assert store.load("c").snapshot["context"] == {"n": 2}


def test_commit_with_a_stale_version_raises_conflict_and_writes_nothing(backend: Backend) -> None:
    store = backend.open()
    actor = counter().start(store=store, instance_id="c", clock=fsm.VirtualClock())
    actor.send("INC")
    actor.send("INC")
    before = _everything(backend, "c")
    stale = store.load("c").snapshot
    record = JournalRecord(2, {"type": "INC"}, "late", None, 0.0, "counting", "active", [])
    with pytest.raises(ConflictError) as caught:
        store.commit("c", 1, record, {**stale, "context": {"n": 100}}, [{"type": "note"}])
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert "reload" in str(caught.value)
    assert _everything(backend, "c") == before
    with pytest.raises(InstanceNotFound):
        store.commit("ghost", 0, record, stale, [])


def test_commit_of_an_applied_event_id_raises_duplicate_and_writes_nothing(backend: Backend) -> None:
    store = backend.open()
    actor = counter().start(store=store, instance_id="c", clock=fsm.VirtualClock())
    actor.send("INC", event_id="evt-1")
    before = _everything(backend, "c")
    stored = store.load("c")
    record = JournalRecord(stored.version + 1, {"type": "INC"}, "evt-1", None, 0.0, "counting", "active", [])
    with pytest.raises(DuplicateEvent) as caught:
        store.commit("c", stored.version, record, stored.snapshot, [])
    assert caught.value.event_id == "evt-1"
    assert _everything(backend, "c") == before
    assert store.has_event("c", "evt-1")


# -- history and queries --------------------------------------------------------------------


def test_history_returns_every_macrostep_in_order(store: SQLStore) -> None:
    clock = fsm.VirtualClock(start=1_000)
    t0 = time.time()
    actor = counter().start(store=store, instance_id="h", clock=clock, context={"n": 1})
    actor.send("INC", event_id="first")
    clock.advance(250)
    actor.send("ADD", by=3)
    actor.send({"type": "NOBODY_LISTENS"}, event_id="ignored-but-journaled")
    actor.send("STOP")
    t1 = time.time()

    history = store.history("h")
    assert [r.seq for r in history] == [0, 1, 2, 3, 4]
    assert [r.event for r in history] == [
        {"type": "xstate.init"},
        {"type": "INC"},
        {"type": "ADD", "by": 3},
        {"type": "NOBODY_LISTENS"},
        {"type": "STOP"},
    ]
    assert history[0].event_id is None
    assert history[1].event_id == "first"
    assert history[2].event_id, "an event sent without an id gets a generated one"
    assert len({r.event_id for r in history[1:]}) == 4
    assert history[3].event_id == "ignored-but-journaled"
    assert [r.value for r in history] == ["counting"] * 4 + ["stopped"]
    assert [r.status for r in history] == ["active"] * 4 + ["done"]
    assert [r.now for r in history] == [1_000, 1_000, 1_250, 1_250, 1_250]
    assert [e["type"] for e in history[0].effects] == ["hello"]
    assert [e["type"] for e in history[1].effects] == ["note"]
    assert history[0].extra == {"context": {"n": 1}}
    stamps = [r.recorded_at for r in history]
    assert stamps == sorted(stamps) and t0 - 1 <= stamps[0] and stamps[-1] <= t1 + 1
    as_dict = history[1].to_dict()
    assert {"seq", "event", "event_id", "timer", "now", "value", "status", "effects", "recorded_at"} <= set(as_dict)

    assert [r.seq for r in store.history("h", after=1)] == [2, 3, 4]
    assert [r.seq for r in store.history("h", after=1, limit=2)] == [2, 3]
    assert store.history("h", after=4) == []
    assert store.load("h").version == history[-1].seq
    assert store.load("h").status == "done"


def test_instances_filter_by_status_and_machine(store: SQLStore) -> None:
    clock = fsm.VirtualClock()
    light = fsm.Machine.from_dict(
        {"id": "light", "initial": "red", "states": {"red": {"on": {"GO": "green"}}, "green": {}}}
    )
    for i in range(3):
        counter().start(store=store, instance_id=f"c{i}", clock=clock)
    counter().start(store=store, instance_id="c-done", clock=clock).send("STOP")
    light.start(store=store, instance_id="l0", clock=clock)

    def ids(**filters: Any) -> set[str]:
        return {i.id for i in store.instances(**filters)}

    assert ids() == {"c0", "c1", "c2", "c-done", "l0"}
    assert ids(status="active") == {"c0", "c1", "c2", "l0"}
    assert ids(status="done") == {"c-done"}
    assert ids(machine="counter") == {"c0", "c1", "c2", "c-done"}
    assert ids(machine="counter", status="active") == {"c0", "c1", "c2"}
    assert ids(machine="light", status="done") == set()
    assert len(store.instances(limit=2)) == 2
    rows = store.instances()
    assert [r.created_at for r in rows] == sorted((r.created_at for r in rows), reverse=True)
    done = next(r for r in rows if r.id == "c-done")
    assert (done.status, done.version, done.snapshot["value"]) == ("done", 1, "stopped")


# -- outbox and leases at the store level ----------------------------------------------------


def test_outbox_items_are_completed_or_failed_one_by_one(store: SQLStore) -> None:
    record = JournalRecord(0, {"type": "xstate.init"}, None, None, 0.0, "a", "active", [])
    snapshot = {"status": "active", "value": "a", "timers": []}
    store.create("o", "m", "v1", {"id": "m"}, snapshot, record, [{"type": "x"}, {"type": "y"}])
    first, second = store.pending_effects("o")
    assert (first.key, second.key) == ("o:0:0", "o:0:1")
    assert (first.attempts, first.last_error) == (0, None)
    store.fail_effect(first, "boom")
    store.complete_effect(second)
    [still] = store.pending_effects("o")
    assert (still.key, still.attempts, still.last_error, still.effect) == ("o:0:0", 1, "boom", {"type": "x"})
    store.complete_effect(still)
    assert store.pending_effects("o") == []


def test_claim_due_leases_an_instance_to_one_owner_until_released_or_expired(store: SQLStore) -> None:
    def create(instance_id: str, due: float | None, status: str = "active") -> None:
        timers = [] if due is None else [{"id": "t", "event": {"type": "T"}, "due": due, "seq": 0}]
        record = JournalRecord(0, {"type": "xstate.init"}, None, None, 0.0, "a", status, [])
        store.create(instance_id, "m", "v", {}, {"status": status, "value": "a", "timers": timers}, record, [])

    create("due", 100)
    create("later", 10_000)
    create("no-timer", None)
    create("finished", 50, status="done")
    assert store.claim_due("w1", now=1_000, lease_ms=500) == ["due"]
    assert store.claim_due("w2", now=1_000, lease_ms=500) == [], "leased to w1"
    store.release("due", "w2")  # not the owner: no effect
    assert store.claim_due("w2", now=1_100, lease_ms=500) == []
    assert store.claim_due("w2", now=1_600, lease_ms=500) == ["due"], "w1's lease expired"
    store.release("due", "w2")
    assert store.claim_due("w3", now=1_600, lease_ms=500) == ["due"]
    assert sorted(store.claim_due("w4", now=20_000, lease_ms=500)) == ["due", "later"], "w3's lease expired too"


# -- URLs and options ------------------------------------------------------------------------


def test_open_store_understands_sqlite_urls_and_refuses_unknown_schemes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for url, path in [
        ("sqlite:///rel.db", "rel.db"),
        (f"sqlite:///{tmp_path}/abs.db", f"{tmp_path}/abs.db"),
        ("bare.db", "bare.db"),
        ("sqlite://:memory:", ":memory:"),
    ]:
        store = open_store(url)
        assert isinstance(store, SQLiteStore) and store.path == path, url
        assert store.schema_version == len(MIGRATIONS) >= 3
        store.close()
    assert (tmp_path / "rel.db").exists() and (tmp_path / "abs.db").exists()
    with pytest.raises(StoreError, match="unknown store URL"):
        open_store("mysql://x/y")
    with pytest.raises(StoreError, match="synchronous"):
        SQLiteStore(tmp_path / "x.db", synchronous="SOMETIMES")


def test_an_in_memory_sqlite_store_is_one_database_for_every_thread() -> None:
    store = open_store("sqlite://:memory:")
    counter().start(store=store, instance_id="c", clock=fsm.VirtualClock())
    seen: list[object] = []

    def look() -> None:
        try:
            seen.append(store.exists("c"))
        except Exception as exc:
            seen.append(exc)

    thread = threading.Thread(target=look)
    thread.start()
    thread.join()
    store.close()
    assert seen == [True]


def test_sqlite_store_is_in_wal_mode_and_healthy(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "w.db", synchronous="NORMAL")
    counter().start(store=store, instance_id="c", clock=fsm.VirtualClock()).send("INC")
    assert store.integrity_check() == []
    conn = sqlite3.connect(tmp_path / "w.db")
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()
    store.close()


# -- the package namespace ---------------------------------------------------------------------


def test_the_stores_are_exported_from_fsm_and_imported_on_first_use() -> None:
    import fsm.store

    assert fsm.open_store is fsm.store.open_store
    assert fsm.SQLiteStore is fsm.store.SQLiteStore is SQLiteStore
    assert fsm.PostgresStore is fsm.store.PostgresStore
    assert fsm.SQLStore is fsm.store.SQLStore is SQLStore
    assert {"open_store", "SQLiteStore", "PostgresStore", "SQLStore"} <= set(fsm.__all__)
    script = (
        "import sys, fsm\n"
        "print(sorted(m for m in ('sqlite3', 'psycopg', 'fsm.store') if m in sys.modules))\n"
        "fsm.open_store\n"
        "print(sorted(m for m in ('sqlite3', 'psycopg', 'fsm.store') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "['fsm.store', 'sqlite3']"], (
        "`import fsm` loads no store; fsm.open_store loads sqlite3, psycopg waits for a PostgresStore"
    )
