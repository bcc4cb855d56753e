"""The store: durable instances as a snapshot plus an append-only journal.

Per instance the store keeps the current snapshot (as JSON), a version number (the
sequence number of its last journal record), and one journal record per macrostep. A
step is committed in ONE transaction: the journal record is appended, the snapshot row
is updated only if its version is still the one the step started from (optimistic
concurrency), and the step's custom actions are written to an outbox. Effects are
executed after the commit and marked done one by one, so after a crash every effect of
a committed step runs at least once, with a stable idempotency key
(``<instance>:<seq>:<index>``).

:class:`SQLStore` holds everything SQLite and PostgreSQL share; the two backends add a
connection and a few dialect details.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fsm.errors import FsmError


class StoreError(FsmError):
    """A store operation failed."""


class InstanceExists(StoreError):
    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        super().__init__(f"instance {instance_id!r} already exists; resume it or choose another id")


class InstanceNotFound(StoreError):
    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        super().__init__(f"no instance {instance_id!r} in the store")


class ConflictError(StoreError):
    """Another writer committed a step to this instance first."""

    def __init__(self, instance_id: str, expected: int, actual: int | None) -> None:
        self.instance_id = instance_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"instance {instance_id!r} changed under us: expected version {expected}, found {actual}; reload and retry"
        )


class DuplicateEvent(StoreError):
    """An event with this id was already applied to the instance."""

    def __init__(self, instance_id: str, event_id: str) -> None:
        self.instance_id = instance_id
        self.event_id = event_id
        super().__init__(f"event {event_id!r} was already applied to instance {instance_id!r}")


class VersionMismatch(StoreError):
    """The instance was started with another version of the machine definition."""

    def __init__(self, instance_id: str, stored: str, given: str) -> None:
        self.instance_id = instance_id
        self.stored = stored
        self.given = given
        super().__init__(
            f"instance {instance_id!r} runs machine version {stored}, but the machine given is version {given}; "
            "pass allow_version_change=True (or migrate=...) to resume it with the new definition"
        )


@dataclass(frozen=True)
class JournalRecord:
    """One committed macrostep. ``seq`` 0 is the initial step (event ``xstate.init``)."""

    seq: int
    event: dict[str, Any]
    event_id: str | None
    timer: dict[str, Any] | None
    now: float
    value: Any
    status: str
    effects: list[dict[str, Any]]
    recorded_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "event": self.event,
            "event_id": self.event_id,
            "timer": self.timer,
            "now": self.now,
            "value": self.value,
            "status": self.status,
            "effects": self.effects,
            "recorded_at": self.recorded_at,
            **({"extra": self.extra} if self.extra else {}),
        }


@dataclass(frozen=True)
class StoredInstance:
    id: str
    machine_id: str
    machine_version: str
    version: int
    status: str
    snapshot: dict[str, Any]
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class OutboxItem:
    instance_id: str
    seq: int
    index: int
    effect: dict[str, Any]
    attempts: int
    last_error: str | None
    #: After a failure: not retried before this wall-clock time (seconds), see
    #: effect_backoff_s. None for an effect that has not failed.
    retry_after: float | None = None

    @property
    def key(self) -> str:
        """The idempotency key handed to the effect's implementation."""
        return f"{self.instance_id}:{self.seq}:{self.index}"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseException):
        return {"type": type(value).__name__, "message": str(value)}
    return repr(value)


def next_due(snapshot: dict[str, Any]) -> float | None:
    """The earliest pending timer of a stored snapshot (None when there is none or the
    instance is no longer active), indexed so workers find due instances cheaply."""
    if snapshot.get("status") != "active":
        return None
    dues = [t["due"] for t in snapshot.get("timers") or ()]
    return min(dues) if dues else None


MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE fsm_machines (
            machine_id TEXT NOT NULL, version TEXT NOT NULL, definition TEXT NOT NULL,
            created_at {REAL} NOT NULL, PRIMARY KEY (machine_id, version))""",
        """CREATE TABLE fsm_instances (
            id TEXT PRIMARY KEY, machine_id TEXT NOT NULL, machine_version TEXT NOT NULL,
            status TEXT NOT NULL, version INTEGER NOT NULL, snapshot TEXT NOT NULL,
            next_due {REAL}, lease_owner TEXT, lease_until {REAL},
            created_at {REAL} NOT NULL, updated_at {REAL} NOT NULL)""",
        "CREATE INDEX fsm_instances_due ON fsm_instances (next_due) WHERE next_due IS NOT NULL",
        "CREATE INDEX fsm_instances_status ON fsm_instances (status, machine_id)",
        """CREATE TABLE fsm_journal (
            instance_id TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL, event_id TEXT,
            timer TEXT, now {REAL} NOT NULL, value TEXT NOT NULL, status TEXT NOT NULL,
            effects TEXT NOT NULL, extra TEXT, recorded_at {REAL} NOT NULL,
            PRIMARY KEY (instance_id, seq))""",
        "CREATE UNIQUE INDEX fsm_journal_event_id ON fsm_journal (instance_id, event_id) WHERE event_id IS NOT NULL",
        """CREATE TABLE fsm_outbox (
            instance_id TEXT NOT NULL, seq INTEGER NOT NULL, idx INTEGER NOT NULL, effect TEXT NOT NULL,
            done INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
            PRIMARY KEY (instance_id, seq, idx))""",
        "CREATE INDEX fsm_outbox_pending ON fsm_outbox (instance_id, seq, idx) WHERE done = 0",
    ],
    [
        # When an effect was recorded: workers retry effects left pending for a while.
        "ALTER TABLE fsm_outbox ADD COLUMN created_at {REAL}",
    ],
    [
        # Effects recorded before migration 2 have no created_at, and a NULL never
        # compares as due: give them the time their step was committed (the journal
        # record's recorded_at, written in the same transaction), or 0 without one.
        """UPDATE fsm_outbox SET created_at = COALESCE(
            (SELECT j.recorded_at FROM fsm_journal j
             WHERE j.instance_id = fsm_outbox.instance_id AND j.seq = fsm_outbox.seq), 0)
           WHERE created_at IS NULL""",
    ],
    [
        # A failed effect waits (exponential backoff) before a worker runs it again.
        "ALTER TABLE fsm_outbox ADD COLUMN retry_after {REAL}",
    ],
]

#: An effect that failed this many times is given up (``done = 2``) and reported.
MAX_EFFECT_ATTEMPTS = 25
#: Backoff between runs of a failing effect: 1 s after the first failure, doubling, at
#: most an hour, so 25 attempts span about 14 hours. Retrying at once would burn every
#: attempt within a second of a downstream outage.
EFFECT_BACKOFF_BASE_S = 1.0
EFFECT_BACKOFF_MAX_S = 3600.0


def effect_backoff_s(failures: int) -> float:
    """Seconds to wait after an effect's ``failures``-th failed run."""
    return float(min(EFFECT_BACKOFF_BASE_S * 2 ** min(failures - 1, 32), EFFECT_BACKOFF_MAX_S))


class SQLStore:
    """Shared implementation over a DB-API connection; see SQLiteStore / PostgresStore."""

    #: SQL type for floating point columns in this dialect.
    REAL = "REAL"
    #: Placeholder style: queries are written with ``?`` and converted if needed.
    PLACEHOLDER = "?"
    url = ""

    def __init__(self) -> None:
        self._lock = threading.RLock()

    # -- dialect hooks -----------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Any]:
        """A write transaction (serialised against other writers), yielding a cursor."""
        raise NotImplementedError
        yield

    @contextmanager
    def _read(self) -> Iterator[Any]:
        raise NotImplementedError
        yield

    def _is_unique_violation(self, exc: BaseException) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> SQLStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _q(self, sql: str) -> str:
        return sql if self.PLACEHOLDER == "?" else sql.replace("?", self.PLACEHOLDER)

    # -- schema ------------------------------------------------------------------------

    def _migrate(self) -> None:
        """Apply pending migrations, each in its own transaction, recording the schema
        version; concurrent openers serialise on the write lock."""
        with self._write() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS fsm_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        for version, statements in enumerate(MIGRATIONS, start=1):
            with self._write() as cur:
                cur.execute(self._q("SELECT value FROM fsm_meta WHERE key = ?"), ("schema_version",))
                row = cur.fetchone()
                current = int(row[0]) if row else 0
                if current >= version:
                    continue
                for statement in statements:
                    cur.execute(statement.replace("{REAL}", self.REAL))
                if row:
                    cur.execute(
                        self._q("UPDATE fsm_meta SET value = ? WHERE key = ?"), (str(version), "schema_version")
                    )
                else:
                    cur.execute(
                        self._q("INSERT INTO fsm_meta (key, value) VALUES (?, ?)"), ("schema_version", str(version))
                    )

    @property
    def schema_version(self) -> int:
        with self._read() as cur:
            cur.execute(self._q("SELECT value FROM fsm_meta WHERE key = ?"), ("schema_version",))
            row = cur.fetchone()
        return int(row[0]) if row else 0

    # -- writes ------------------------------------------------------------------------

    def create(
        self,
        instance_id: str,
        machine_id: str,
        machine_version: str,
        definition: dict[str, Any],
        snapshot: dict[str, Any],
        record: JournalRecord,
        outbox: Sequence[dict[str, Any]],
    ) -> int:
        """Create an instance with its initial journal record (seq 0). Refuses an id
        that exists."""
        now = time.time()
        try:
            with self._write() as cur:
                cur.execute(
                    self._q("SELECT 1 FROM fsm_machines WHERE machine_id = ? AND version = ?"),
                    (machine_id, machine_version),
                )
                if cur.fetchone() is None:
                    cur.execute(
                        self._q(
                            "INSERT INTO fsm_machines (machine_id, version, definition, created_at) VALUES (?, ?, ?, ?)"
                        ),
                        (machine_id, machine_version, _dumps(definition), now),
                    )
                cur.execute(
                    self._q(
                        "INSERT INTO fsm_instances (id, machine_id, machine_version, status, version, snapshot,"
                        " next_due, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    ),
                    (
                        instance_id,
                        machine_id,
                        machine_version,
                        snapshot["status"],
                        record.seq,
                        _dumps(snapshot),
                        next_due(snapshot),
                        now,
                        now,
                    ),
                )
                self._append(cur, instance_id, record, outbox, now)
        except StoreError:
            raise
        except Exception as exc:
            if self._is_unique_violation(exc):
                raise InstanceExists(instance_id) from None
            raise StoreError(f"database error creating {instance_id!r}: {exc}") from exc
        return record.seq

    def commit(
        self,
        instance_id: str,
        expected_version: int,
        record: JournalRecord,
        snapshot: dict[str, Any],
        outbox: Sequence[dict[str, Any]],
        machine: tuple[str, dict[str, Any]] | None = None,
    ) -> int:
        """Append a step and update the snapshot, atomically, if the instance is still at
        ``expected_version``. Raises ConflictError or DuplicateEvent (nothing written).
        ``machine`` = (version, definition) records a changed definition."""
        now = time.time()
        try:
            with self._write() as cur:
                if record.event_id is not None:
                    cur.execute(
                        self._q("SELECT 1 FROM fsm_journal WHERE instance_id = ? AND event_id = ?"),
                        (instance_id, record.event_id),
                    )
                    if cur.fetchone() is not None:
                        raise DuplicateEvent(instance_id, record.event_id)
                params: list[Any] = [snapshot["status"], record.seq, _dumps(snapshot), next_due(snapshot), now]
                extra_sql = ""
                if machine is not None:
                    extra_sql = ", machine_version = ?"
                    params.append(machine[0])
                cur.execute(
                    self._q(
                        "UPDATE fsm_instances SET status = ?, version = ?, snapshot = ?, next_due = ?, updated_at = ?"
                        f"{extra_sql} WHERE id = ? AND version = ?"
                    ),
                    (*params, instance_id, expected_version),
                )
                if cur.rowcount != 1:
                    cur.execute(self._q("SELECT version FROM fsm_instances WHERE id = ?"), (instance_id,))
                    row = cur.fetchone()
                    if row is None:
                        raise InstanceNotFound(instance_id)
                    raise ConflictError(instance_id, expected_version, int(row[0]))
                if machine is not None:
                    cur.execute(
                        self._q("SELECT 1 FROM fsm_machines WHERE machine_id = ? AND version = ?"),
                        (snapshot.get("machine"), machine[0]),
                    )
                    if cur.fetchone() is None:
                        cur.execute(
                            self._q(
                                "INSERT INTO fsm_machines (machine_id, version, definition, created_at)"
                                " VALUES (?, ?, ?, ?)"
                            ),
                            (snapshot.get("machine"), machine[0], _dumps(machine[1]), now),
                        )
                self._append(cur, instance_id, record, outbox, now)
        except StoreError:
            raise
        except Exception as exc:
            if self._is_unique_violation(exc):
                # a concurrent writer appended the same seq or event id first
                raise ConflictError(instance_id, expected_version, None) from None
            raise StoreError(f"database error committing to {instance_id!r}: {exc}") from exc
        return record.seq

    def _append(
        self, cur: Any, instance_id: str, record: JournalRecord, outbox: Sequence[dict[str, Any]], now: float
    ) -> None:
        cur.execute(
            self._q(
                "INSERT INTO fsm_journal (instance_id, seq, event, event_id, timer, now, value, status, effects,"
                " extra, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            (
                instance_id,
                record.seq,
                _dumps(record.event),
                record.event_id,
                None if record.timer is None else _dumps(record.timer),
                record.now,
                _dumps(record.value),
                record.status,
                _dumps(record.effects),
                _dumps(record.extra) if record.extra else None,
                now,
            ),
        )
        for index, effect in enumerate(outbox):
            cur.execute(
                self._q("INSERT INTO fsm_outbox (instance_id, seq, idx, effect, created_at) VALUES (?, ?, ?, ?, ?)"),
                (instance_id, record.seq, index, _dumps(effect), now),
            )

    def complete_effect(self, item: OutboxItem) -> None:
        with self._write() as cur:
            cur.execute(
                self._q(
                    "UPDATE fsm_outbox SET done = 1, attempts = attempts + 1"
                    " WHERE instance_id = ? AND seq = ? AND idx = ?"
                ),
                (item.instance_id, item.seq, item.index),
            )

    def fail_effect(self, item: OutboxItem, error: str) -> bool:
        """Count a failed run and set when it may run again (effect_backoff_s). Returns
        True when the effect is given up (after MAX_EFFECT_ATTEMPTS runs it is marked
        dead, ``done = 2``, and no longer retried)."""
        failures = item.attempts + 1
        dead = failures >= MAX_EFFECT_ATTEMPTS
        retry_after = time.time() + effect_backoff_s(failures)
        with self._write() as cur:
            cur.execute(
                self._q(
                    "UPDATE fsm_outbox SET attempts = attempts + 1, last_error = ?, done = ?, retry_after = ?"
                    " WHERE instance_id = ? AND seq = ? AND idx = ?"
                ),
                (error, 2 if dead else 0, retry_after, item.instance_id, item.seq, item.index),
            )
        return dead

    def delete(self, instance_id: str) -> None:
        """Remove an instance, its journal and its outbox."""
        with self._write() as cur:
            for table, column in (
                ("fsm_outbox", "instance_id"),
                ("fsm_journal", "instance_id"),
                ("fsm_instances", "id"),
            ):
                cur.execute(self._q(f"DELETE FROM {table} WHERE {column} = ?"), (instance_id,))

    # -- reads -------------------------------------------------------------------------

    def load(self, instance_id: str) -> StoredInstance:
        """The instance row: its current snapshot and version. Costs the same however
        long the journal is (the snapshot is stored, not recomputed)."""
        with self._read() as cur:
            cur.execute(
                self._q(
                    "SELECT id, machine_id, machine_version, version, status, snapshot, created_at, updated_at"
                    " FROM fsm_instances WHERE id = ?"
                ),
                (instance_id,),
            )
            row = cur.fetchone()
        if row is None:
            raise InstanceNotFound(instance_id)
        return StoredInstance(row[0], row[1], row[2], int(row[3]), row[4], json.loads(row[5]), row[6], row[7])

    def get_snapshot(self, instance_id: str) -> dict[str, Any]:
        return self.load(instance_id).snapshot

    def exists(self, instance_id: str) -> bool:
        with self._read() as cur:
            cur.execute(self._q("SELECT 1 FROM fsm_instances WHERE id = ?"), (instance_id,))
            return cur.fetchone() is not None

    def has_event(self, instance_id: str, event_id: str) -> bool:
        with self._read() as cur:
            cur.execute(
                self._q("SELECT 1 FROM fsm_journal WHERE instance_id = ? AND event_id = ?"), (instance_id, event_id)
            )
            return cur.fetchone() is not None

    def history(self, instance_id: str, *, after: int = -1, limit: int | None = None) -> list[JournalRecord]:
        """The journal of an instance in order (records with seq > ``after``)."""
        sql = (
            "SELECT seq, event, event_id, timer, now, value, status, effects, extra, recorded_at FROM fsm_journal"
            " WHERE instance_id = ? AND seq > ? ORDER BY seq"
        )
        params: tuple[Any, ...] = (instance_id, after)
        if limit is not None:
            sql += " LIMIT ?"
            params = (*params, limit)
        with self._read() as cur:
            cur.execute(self._q(sql), params)
            rows = cur.fetchall()
        if not rows and after < 0 and not self.exists(instance_id):
            raise InstanceNotFound(instance_id)
        return [
            JournalRecord(
                int(r[0]),
                json.loads(r[1]),
                r[2],
                None if r[3] is None else json.loads(r[3]),
                float(r[4]),
                json.loads(r[5]),
                r[6],
                json.loads(r[7]),
                float(r[9]),
                json.loads(r[8]) if r[8] else {},
            )
            for r in rows
        ]

    def instances(
        self, *, status: str | None = None, machine: str | None = None, limit: int | None = None
    ) -> list[StoredInstance]:
        """Instances, newest first, optionally filtered by status and machine id."""
        sql = (
            "SELECT id, machine_id, machine_version, version, status, snapshot, created_at, updated_at"
            " FROM fsm_instances WHERE 1 = 1"
        )
        params: list[Any] = []
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        if machine is not None:
            sql += " AND machine_id = ?"
            params.append(machine)
        sql += " ORDER BY created_at DESC, id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._read() as cur:
            cur.execute(self._q(sql), tuple(params))
            rows = cur.fetchall()
        return [StoredInstance(r[0], r[1], r[2], int(r[3]), r[4], json.loads(r[5]), r[6], r[7]) for r in rows]

    def pending_effects(self, instance_id: str) -> list[OutboxItem]:
        with self._read() as cur:
            cur.execute(
                self._q(
                    "SELECT seq, idx, effect, attempts, last_error, retry_after FROM fsm_outbox"
                    " WHERE instance_id = ? AND done = 0 ORDER BY seq, idx"
                ),
                (instance_id,),
            )
            rows = cur.fetchall()
        return [OutboxItem(instance_id, int(r[0]), int(r[1]), json.loads(r[2]), int(r[3]), r[4], r[5]) for r in rows]

    def machine_definition(self, machine_id: str, version: str) -> dict[str, Any] | None:
        with self._read() as cur:
            cur.execute(
                self._q("SELECT definition FROM fsm_machines WHERE machine_id = ? AND version = ?"),
                (machine_id, version),
            )
            row = cur.fetchone()
        return None if row is None else dict(json.loads(row[0]))

    # -- workers -----------------------------------------------------------------------

    #: Instances a worker should take: a timer is due, or an effect has been pending
    #: (recorded more than the given seconds ago) — a crash left it unfinished, or it
    #: failed and its backoff (retry_after) is over. A row without created_at (written
    #: by a process still running code older than migration 2) counts as long overdue.
    CLAIMABLE = (
        "((next_due IS NOT NULL AND next_due <= ? AND status = 'active') OR EXISTS ("
        " SELECT 1 FROM fsm_outbox o WHERE o.instance_id = fsm_instances.id AND o.done = 0"
        " AND COALESCE(o.created_at, 0) < ? AND COALESCE(o.retry_after, 0) <= ?))"
        " AND (lease_until IS NULL OR lease_until < ?)"
    )

    def claim_due(
        self, owner: str, now: float, lease_ms: float, limit: int = 100, effects_after_s: float = 30.0
    ) -> list[str]:
        """Lease up to ``limit`` instances whose earliest timer is due at ``now``
        (wall-clock ms), or with an effect pending for more than ``effects_after_s``,
        and that no live lease holds. A lease expires after ``lease_ms``, so a crashed
        worker's instances are picked up again."""
        raise NotImplementedError

    def release(self, instance_id: str, owner: str) -> None:
        with self._write() as cur:
            cur.execute(
                self._q(
                    "UPDATE fsm_instances SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?"
                ),
                (instance_id, owner),
            )

    def integrity_check(self) -> list[str]:
        """Problems the database itself reports (empty when healthy)."""
        return []


StoreFactory = Callable[[str], SQLStore]
