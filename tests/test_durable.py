"""Durable actors on SQLite and PostgreSQL: machine versions, effects (at least once, with
an idempotency key), event ids, optimistic concurrency, workers, replay, restore cost.

The ``backend`` fixture (and its PostgreSQL isolation: a fresh schema per test) comes from
tests/test_store.py.
"""

from __future__ import annotations

import json
import random
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import fsm
from fsm.errors import SnapshotError, StepError
from fsm.runtime.durable import DurableActor, replay
from fsm.runtime.worker import Worker
from fsm.store import ConflictError, SQLStore, StoreError, VersionMismatch
from fsm.store.base import MAX_EFFECT_ATTEMPTS
from fsm.testing.convention import Recorder, provide
from fsm.testing.strategies import statecharts, steps_for
from tests import test_store as stores
from tests.test_store import Backend, counter


@pytest.fixture(params=stores.BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from stores.make_backend(request.param, tmp_path)


@pytest.fixture
def store(backend: Backend) -> SQLStore:
    return backend.open()


def seqs(store: SQLStore, instance_id: str) -> list[int]:
    return [r.seq for r in store.history(instance_id)]


# -- machine versions --------------------------------------------------------------------------

TICKET_V1: dict[str, Any] = {
    "id": "ticket",
    "initial": "waiting",
    "context": {"notes": 0},
    "states": {
        "waiting": {"on": {"APPROVE": "approved", "NOTE": {"actions": {"type": "assign", "assignment": {"notes": 1}}}}},
        "approved": {"type": "final"},
    },
}
# v2 renames `waiting` to `pending` and adds a REJECT transition
TICKET_V2: dict[str, Any] = {
    "id": "ticket",
    "initial": "pending",
    "context": {"notes": 0},
    "states": {
        "pending": {"on": {"APPROVE": "approved", "REJECT": "rejected"}},
        "approved": {"type": "final"},
        "rejected": {"type": "final"},
    },
}
# v3 keeps v1's states and adds REJECT
TICKET_V3: dict[str, Any] = {
    **TICKET_V1,
    "states": {
        "waiting": {"on": {"APPROVE": "approved", "REJECT": "rejected"}},
        "approved": {"type": "final"},
        "rejected": {"type": "final"},
    },
}


def test_resuming_with_a_changed_definition_raises_version_mismatch(store: SQLStore) -> None:
    v1, v3 = fsm.Machine.from_dict(TICKET_V1), fsm.Machine.from_dict(TICKET_V3)
    assert v1.version != v3.version
    v1.start(store=store, instance_id="t", clock=fsm.VirtualClock()).stop()
    with pytest.raises(VersionMismatch) as caught:
        v3.resume(store, "t")
    err = caught.value
    assert (err.instance_id, err.stored, err.given) == ("t", v1.version, v3.version)
    assert v1.version in str(err) and v3.version in str(err) and "allow_version_change" in str(err)
    assert store.load("t").machine_version == v1.version

    other = fsm.Machine.from_dict({"id": "other", "initial": "a", "states": {"a": {}}})
    with pytest.raises(VersionMismatch, match="other"):
        other.resume(store, "t")


def test_allow_version_change_resumes_and_records_the_new_version(store: SQLStore) -> None:
    v1, v3 = fsm.Machine.from_dict(TICKET_V1), fsm.Machine.from_dict(TICKET_V3)
    v1.start(store=store, instance_id="t", clock=fsm.VirtualClock()).stop()
    actor = v3.resume(store, "t", allow_version_change=True, clock=fsm.VirtualClock())
    actor.send("REJECT")  # only v3 knows this event
    assert actor.snapshot.value == "rejected"
    stored = store.load("t")
    assert (stored.machine_version, stored.status, stored.snapshot["value"]) == (v3.version, "done", "rejected")
    assert store.machine_definition("ticket", v3.version) == v3.definition
    assert store.machine_definition("ticket", v1.version) == v1.definition, "the old definition is kept"
    v3.resume(store, "t").stop()  # now the stored version: no flag needed
    with pytest.raises(VersionMismatch):
        v1.resume(store, "t")


def test_migrate_transforms_the_stored_snapshot(store: SQLStore) -> None:
    v1, v2 = fsm.Machine.from_dict(TICKET_V1), fsm.Machine.from_dict(TICKET_V2)
    actor = v1.start(store=store, instance_id="t", clock=fsm.VirtualClock())
    actor.send("NOTE")
    actor.stop()

    with pytest.raises(SnapshotError, match="'t'"):  # a renamed state cannot be resumed as is
        v2.resume(store, "t", allow_version_change=True)

    seen: list[dict[str, Any]] = []

    def rename(snapshot: dict[str, Any]) -> dict[str, Any]:
        seen.append(snapshot)
        swap = {"waiting": "pending", "ticket.waiting": "ticket.pending"}
        return {
            **snapshot,
            "value": swap.get(snapshot["value"], snapshot["value"]),
            "configuration": [swap.get(s, s) for s in snapshot["configuration"]],
        }

    migrated = v2.resume(store, "t", migrate=rename, clock=fsm.VirtualClock())
    assert seen and seen[0]["value"] == "waiting"
    assert migrated.snapshot.value == "pending"
    assert migrated.snapshot.context == {"notes": 1}
    migrated.send("REJECT")
    stored = store.load("t")
    assert (stored.snapshot["value"], stored.machine_version) == ("rejected", v2.version)


def test_a_version_change_is_journaled_at_once_and_replay_starts_from_it(store: SQLStore) -> None:
    v1, v3 = fsm.Machine.from_dict(TICKET_V1), fsm.Machine.from_dict(TICKET_V3)
    actor = v1.start(store=store, instance_id="t", clock=fsm.VirtualClock(start=1_000))
    actor.send("NOTE")
    actor.stop()
    resumed = v3.resume(store, "t", allow_version_change=True, clock=fsm.VirtualClock(start=2_000))
    # recorded on resume, before any step of the new version
    upgrade = store.history("t")[-1]
    assert (upgrade.seq, upgrade.event) == (2, {"type": "fsm.upgrade", "from": v1.version, "to": v3.version})
    assert (upgrade.now, upgrade.value, upgrade.status, upgrade.event_id) == (2_000, "waiting", "active", None)
    assert upgrade.extra["snapshot"] == store.get_snapshot("t"), "the snapshot the new version starts from"
    assert (store.load("t").version, store.load("t").machine_version) == (2, v3.version)
    assert replay(v3, store, "t").matches

    resumed.send("REJECT")
    report = replay(v3, store, "t")
    assert (report.matches, report.records) == (True, 4), report.message
    # the steps before the change ran v1 and are not re-run: v3 has no NOTE transition,
    # so a replay from the initial step would lose the note the context keeps
    assert report.replayed["context"] == {"notes": 1}
    # and the steps after it are checked against the machine given: v1 cannot REJECT
    stale = replay(v1, store, "t")
    assert (stale.matches, stale.diverged_at) == (False, 3)


# -- effects: at least once, after the commit, with an idempotency key ---------------------------

PAY: dict[str, Any] = {
    "id": "pay",
    "initial": "cart",
    "context": {"total": 10},
    "states": {
        "cart": {
            "on": {
                "PAY": {
                    "target": "paid",
                    "actions": [{"type": "charge", "params": {"currency": "EUR"}}, "receipt"],
                }
            }
        },
        "paid": {"on": {"REFUND": "cart"}},
    },
}


def test_a_failing_effect_stays_pending_and_is_retried_with_the_same_key(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = backend.open()
    calls: list[tuple[str, int, Any]] = []
    receipts: list[str] = []
    down = {"card service": True}

    def charge(ctx: Any, ev: Any, params: Any, *, effect: Any) -> None:
        calls.append((effect.key, effect.attempt, (dict(ctx), dict(ev), dict(params))))
        if down["card service"]:
            raise ConnectionError("card service unavailable")

    def receipt(ctx: Any, ev: Any, params: Any, *, effect: Any) -> None:
        receipts.append(effect.key)

    machine = fsm.Machine.from_dict(PAY).provide(actions={"charge": charge, "receipt": receipt})
    errors: list[Any] = []
    actor = machine.start(store=store, instance_id="p", clock=fsm.VirtualClock())
    actor.subscribe(None, errors.append)
    actor.send("PAY", amount=10)

    # the step is committed whatever its effects do
    assert actor.snapshot.value == "paid" and actor.snapshot.status == "active"
    assert store.load("p").snapshot["value"] == "paid"
    assert receipts == ["p:1:1"], "the next effect of the step still runs"
    [pending] = store.pending_effects("p")
    assert (pending.key, pending.attempts) == ("p:1:0", 1)
    assert pending.last_error == "ConnectionError: card service unavailable"
    assert len(errors) == 1 and isinstance(errors[0], StepError) and "p:1:0" in str(errors[0])

    # a failed effect waits before it runs again: 1 s after the first failure, doubling
    assert pending.retry_after is not None and 0.5 < pending.retry_after - time.time() <= 1.0
    assert actor.run_pending_effects() == 0  # an explicit run does not wait
    [pending] = store.pending_effects("p")
    assert pending.attempts == 2 and 1.5 < pending.retry_after - time.time() <= 2.0
    actor.stop()

    # another process (another store connection) resumes the instance: while the backoff
    # lasts the effect waits; once it is over, the effect runs again
    down["card service"] = False
    other = backend.open()
    machine.resume(other, "p", clock=fsm.VirtualClock()).stop()
    assert store.pending_effects("p")[0].attempts == 2
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 10)
    resumed = machine.resume(other, "p", clock=fsm.VirtualClock())
    assert store.pending_effects("p") == []
    assert [(k, a) for k, a, _ in calls] == [("p:1:0", 1), ("p:1:0", 2), ("p:1:0", 3)]
    # every attempt sees the context, event and params of the step that produced it
    assert {repr(args) for _, _, args in calls} == {
        repr(({"total": 10}, {"type": "PAY", "amount": 10}, {"currency": "EUR"}))
    }
    assert resumed.run_pending_effects() == 0
    assert len(calls) == 3 and receipts == ["p:1:1"], "a completed effect never runs again"


def test_an_effect_that_always_fails_is_given_up_after_max_attempts(backend: Backend) -> None:
    store = backend.open(durable=False)
    attempts: list[int] = []

    def charge(ctx: Any, ev: Any, params: Any, *, effect: Any) -> None:
        attempts.append(effect.attempt)
        raise ConnectionError("card service gone")

    machine = fsm.Machine.from_dict(PAY).provide(actions={"charge": charge, "receipt": lambda c, e, p: None})
    actor = machine.start(store=store, instance_id="p", clock=fsm.VirtualClock())
    errors: list[BaseException] = []
    actor.subscribe(None, errors.append)
    actor.send("PAY")  # the first attempt
    later = (time.time() + 1) * 1000
    assert store.claim_due("w", now=later, lease_ms=1, effects_after_s=0) == ["p"], "pending: a worker takes it"
    store.release("p", "w")
    for _ in range(2 * MAX_EFFECT_ATTEMPTS):
        if not store.pending_effects("p"):
            break
        actor.run_pending_effects()
    assert attempts == list(range(1, MAX_EFFECT_ATTEMPTS + 1))
    row = backend.sql("SELECT done, attempts, last_error FROM fsm_outbox WHERE instance_id = ? AND idx = 0", ("p",))
    assert row == [(2, MAX_EFFECT_ATTEMPTS, "ConnectionError: card service gone")], "dead-lettered, error kept"
    assert ["given up" in str(e) for e in errors] == [False] * (MAX_EFFECT_ATTEMPTS - 1) + [True]
    # given up for good: not retried by the actor, a resume, or a worker
    assert actor.run_pending_effects() == 0
    actor.stop()
    machine.resume(backend.open(), "p", clock=fsm.VirtualClock()).stop()
    assert store.claim_due("w", now=later, lease_ms=1, effects_after_s=0) == []
    assert len(attempts) == MAX_EFFECT_ATTEMPTS
    assert store.load("p").snapshot["value"] == "paid", "the step stays committed"


def test_effects_run_after_their_step_is_committed(backend: Backend) -> None:
    store = backend.open()
    observer = backend.open()  # another connection: sees only committed data
    seen: list[dict[str, Any]] = []

    def charge(ctx: Any, ev: Any, params: Any, *, effect: Any) -> None:
        stored = observer.load(effect.actor)
        seen.append(
            {
                "key": effect.key,
                "stored version": stored.version,
                "stored value": stored.snapshot["value"],
                "last journaled": observer.history(effect.actor)[-1].seq,
                "pending": [i.key for i in observer.pending_effects(effect.actor)],
            }
        )

    machine = fsm.Machine.from_dict(PAY).provide(actions={"charge": charge, "receipt": lambda c, e, p: None})
    actor = machine.start(store=store, instance_id="p", clock=fsm.VirtualClock())
    actor.send("PAY")
    assert seen == [
        {
            "key": "p:1:0",
            "stored version": 1,
            "stored value": "paid",
            "last journaled": 1,
            "pending": ["p:1:0", "p:1:1"],  # marked done only after it returns
        }
    ]
    assert store.pending_effects("p") == []


def test_entry_actions_of_the_initial_step_go_through_the_outbox(store: SQLStore) -> None:
    keys: list[str] = []
    counter(keys).start(store=store, instance_id="c", clock=fsm.VirtualClock())
    assert keys == ["c:0:0"]
    assert store.pending_effects("c") == []


def test_log_actions_run_on_durable_actors(store: SQLStore) -> None:
    machine = fsm.Machine.from_dict(
        {"id": "l", "initial": "a", "states": {"a": {"on": {"GO": {"actions": {"type": "log", "message": "going"}}}}}}
    )
    lines: list[tuple[Any, ...]] = []
    plain = machine.start(clock=fsm.VirtualClock(), logger=lambda *a: lines.append(a))
    plain.send("GO")
    assert lines == [("going",)]
    durable = machine.start(store=store, instance_id="l", clock=fsm.VirtualClock(), logger=lambda *a: lines.append(a))
    durable.send("GO")
    assert lines == [("going",), ("going",)]


def test_a_worker_finishes_effects_left_pending(store: SQLStore, monkeypatch: pytest.MonkeyPatch) -> None:
    down = {"now": True}
    done: list[str] = []

    def charge(ctx: Any, ev: Any, params: Any, *, effect: Any) -> None:
        if down["now"]:
            raise ConnectionError("down")
        done.append(effect.key)

    machine = fsm.Machine.from_dict(PAY).provide(actions={"charge": charge, "receipt": lambda c, e, p: None})
    actor = machine.start(store=store, instance_id="p", clock=fsm.VirtualClock())
    actor.subscribe(None, lambda err: None)
    actor.send("PAY")
    actor.stop()
    down["now"] = False
    worker = Worker(store, machine, executor="inline", effects_after_s=0)
    worker.run_once()
    assert done == [], "a failed effect waits out its backoff (1 s after one failure)"
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 1.5)
    worker.run_once()
    assert done == ["p:1:0"]


def test_the_store_never_holds_a_context_other_than_the_live_one(store: SQLStore) -> None:
    import datetime

    machine = fsm.Machine.from_dict(
        {"id": "m", "initial": "a", "context": {}, "states": {"a": {"on": {"STAMP": {"actions": "stamp"}}}}}
    ).provide(actions={"stamp": fsm.assign(lambda ctx, ev, params: {"on": datetime.date(2024, 1, 2)})})
    actor = machine.start(store=store, instance_id="m", clock=fsm.VirtualClock())
    actor.subscribe(None, lambda err: None)
    try:
        actor.send("STAMP")  # refusing the step (an error) would be fine; diverging is not
    except fsm.FsmError:
        pass
    assert store.get_snapshot("m")["context"] == actor.snapshot.context


# -- event ids ----------------------------------------------------------------------------------


def test_a_repeated_event_id_is_applied_once(backend: Backend) -> None:
    store = backend.open()
    keys: list[str] = []
    machine = counter(keys)
    actor = machine.start(store=store, instance_id="c", clock=fsm.VirtualClock())
    actor.send("INC", event_id="order-42")
    actor.send("INC", event_id="order-42")
    actor.stop()
    # redelivered to another process, through another connection
    again = machine.resume(backend.open(), "c", clock=fsm.VirtualClock())
    again.send("INC", event_id="order-42")
    assert again.snapshot.context == {"n": 1}
    assert store.load("c").snapshot["context"] == {"n": 1}
    assert [r.event_id for r in store.history("c")] == [None, "order-42"]
    assert keys == ["c:0:0", "c:1:0"], "the effect of the event ran once"
    again.send("INC", event_id="order-43")
    assert store.load("c").snapshot["context"] == {"n": 2}


def test_a_cloudevents_envelope_id_is_the_event_id(store: SQLStore) -> None:
    actor = counter().start(store=store, instance_id="c", clock=fsm.VirtualClock())
    envelope = {
        "specversion": "1.0",
        "id": "ce-7",
        "source": "/billing",
        "type": "ADD",
        "datacontenttype": "application/json",
        "data": {"by": 5},
    }
    actor.send(envelope)
    actor.send(envelope)  # redelivered by the broker
    assert actor.snapshot.context == {"n": 5}
    [_, record] = store.history("c")
    assert (record.event_id, record.event) == ("ce-7", {"type": "ADD", "by": 5})


def test_an_actor_that_loses_an_event_id_race_catches_up_with_the_store(backend: Backend) -> None:
    keys: list[str] = []
    machine = counter(keys)
    machine.start(store=backend.open(), instance_id="c", clock=fsm.VirtualClock()).stop()
    a = machine.resume(backend.open(), "c", clock=fsm.VirtualClock())
    b = machine.resume(backend.open(), "c", clock=fsm.VirtualClock())
    a.send("INC", event_id="e-1")
    # b checked the id just before a committed it (simulated: b's check sees nothing),
    # so the id is found inside b's commit
    raised: list[str] = []
    commit = b.store.commit

    def watched_commit(*args: Any, **kwargs: Any) -> int:
        try:
            return commit(*args, **kwargs)
        except StoreError as exc:
            raised.append(type(exc).__name__)
            raise

    b.store.commit = watched_commit  # type: ignore[method-assign]
    b.store.has_event = lambda instance_id, event_id: False  # type: ignore[method-assign]
    b.send("INC", event_id="e-1")
    assert raised == ["DuplicateEvent"]
    assert (b.version, b.snapshot.context) == (1, {"n": 1}), "b adopted the stored instance"
    assert keys == ["c:0:0", "c:1:0"], "the event's effect ran once"
    b.send("INC", event_id="e-2")
    assert raised == ["DuplicateEvent"], "b was up to date: no conflict"
    # an id found by the early check: a, now behind, catches up too
    a.send("INC", event_id="e-2")
    assert (a.version, a.snapshot.context) == (2, {"n": 2})
    assert backend.open().load("c").snapshot["context"] == {"n": 2}


# -- optimistic concurrency -------------------------------------------------------------------


def test_two_actors_stepping_from_the_same_version_both_apply(backend: Backend) -> None:
    machine = counter()
    machine.start(store=backend.open(), instance_id="c", clock=fsm.VirtualClock()).stop()
    a = machine.resume(backend.open(), "c", clock=fsm.VirtualClock())
    b = machine.resume(backend.open(), "c", clock=fsm.VirtualClock())
    assert a.version == b.version == 0
    a.send("INC", event_id="from-a")
    b.send("ADD", by=10, event_id="from-b")  # b is one step behind: conflict, reload, recompute
    assert (a.version, b.version) == (1, 2)
    assert b.snapshot.context == {"n": 11}, "no lost update"
    a.send("INC", event_id="from-a-again")  # now a is behind
    store = backend.open()
    assert store.load("c").snapshot["context"] == {"n": 12}
    assert seqs(store, "c") == [0, 1, 2, 3]
    assert [r.event_id for r in store.history("c")][1:] == ["from-a", "from-b", "from-a-again"]


def test_concurrent_writers_apply_every_event_exactly_once(backend: Backend) -> None:
    writers, per_writer = 3, 15
    keys: list[str] = []
    machine = counter(keys)
    machine.start(store=backend.open(), instance_id="c", clock=fsm.VirtualClock()).stop()
    actors = [machine.resume(backend.open(), "c", clock=fsm.VirtualClock()) for _ in range(writers)]
    conflicts = Counter[int]()
    barrier = threading.Barrier(writers)
    failures: list[BaseException] = []

    def write(index: int, actor: DurableActor) -> None:
        commit = actor.store.commit

        def counting_commit(*args: Any, **kwargs: Any) -> int:
            try:
                return commit(*args, **kwargs)
            except ConflictError:
                conflicts[index] += 1
                raise

        actor.store.commit = counting_commit  # type: ignore[method-assign]
        barrier.wait()
        try:
            for i in range(per_writer):
                actor.send("INC", event_id=f"w{index}-{i}")
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(i, a)) for i, a in enumerate(actors)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures, failures
    store = backend.open()
    total = writers * per_writer
    assert store.load("c").snapshot["context"] == {"n": total}
    history = store.history("c")
    assert [r.seq for r in history] == list(range(total + 1))
    ids = Counter(r.event_id for r in history[1:])
    assert set(ids) == {f"w{w}-{i}" for w in range(writers) for i in range(per_writer)}
    assert max(ids.values()) == 1
    # at least once: every committed effect ran; two live actors may both run one
    assert set(keys) == {"c:0:0"} | {f"c:{s}:0" for s in range(1, total + 1)}
    assert store.pending_effects("c") == []
    assert replay(machine, store, "c").matches
    # every actor started at version 0, so all but one had to reload and retry
    assert sum(conflicts.values()) >= writers - 1


# -- workers ------------------------------------------------------------------------------------

CHAIN: dict[str, Any] = {
    "id": "chain",
    "initial": "a",
    "states": {
        "a": {"after": {"1": {"target": "b", "actions": "stamp"}}},
        "b": {"after": {"1": {"target": "c", "actions": "stamp"}}},
        "c": {"after": {"1": {"target": "end", "actions": "stamp"}}},
        "end": {"type": "final"},
    },
}


def test_a_worker_fires_timers_that_came_due_while_no_process_ran(store: SQLStore) -> None:
    machine = fsm.Machine.from_dict(
        {
            "id": "reminder",
            "initial": "waiting",
            "context": {"reminded": 0},
            "states": {
                "waiting": {
                    "after": {
                        "100": {
                            "target": "reminded",
                            "actions": {"type": "assign", "assignment": {"reminded": 1}},
                        }
                    }
                },
                "reminded": {"after": {"1000": "expired"}},
                "expired": {"type": "final"},
            },
        }
    )
    machine.start(store=store, instance_id="r", clock=fsm.VirtualClock(start=5_000)).stop()
    assert Worker(store, machine, clock=fsm.VirtualClock(start=5_099)).run_once() == 0, "not due yet"
    assert Worker(store, machine, clock=fsm.VirtualClock(start=5_300)).run_once() == 1
    stored = store.load("r")
    assert (stored.snapshot["value"], stored.snapshot["context"]) == ("reminded", {"reminded": 1})
    last = store.history("r")[-1]
    assert (last.seq, last.event["type"], last.now) == (1, "xstate.after.100.reminder.waiting", 5_300)
    assert last.timer is not None and last.timer["id"] == "xstate.after.100.reminder.waiting"
    assert Worker(store, machine, clock=fsm.VirtualClock(start=6_000)).run_once() == 0
    assert Worker(store, machine, clock=fsm.VirtualClock(start=6_400)).run_once() == 1
    assert store.load("r").status == "done"
    assert Worker(store, machine, clock=fsm.VirtualClock(start=99_999)).run_once() == 0


def test_a_live_actor_and_a_worker_fire_a_timer_once(backend: Backend) -> None:
    stamps: list[str] = []
    machine = fsm.Machine.from_dict(CHAIN).provide(
        actions={"stamp": lambda ctx, ev, params, *, effect: stamps.append(effect.key)}
    )
    clock = fsm.VirtualClock(start=0)
    live = machine.start(store=backend.open(), instance_id="t", clock=clock)
    # the live process is slow to fire its timer; a worker sees it due and fires it
    assert Worker(backend.open(), machine, clock=fsm.VirtualClock(start=1.5), executor="inline").run_once() == 1
    clock.advance(1)  # now the live actor fires the same timer: stale, nothing recorded
    store = backend.open()
    assert [r.event["type"] for r in store.history("t")] == ["xstate.init", "xstate.after.1.chain.a"]
    assert stamps == ["t:1:0"]
    assert live.snapshot.value == "b" and live.version == 1, "the live actor reloaded the instance"
    clock.advance(2)  # and carries on from there: the next timer is due at 2.5
    assert store.load("t").snapshot["value"] == "c"
    assert seqs(store, "t") == [0, 1, 2]
    assert replay(machine, store, "t").matches


def test_a_durable_start_needs_an_instance_id(store: SQLStore) -> None:
    with pytest.raises(fsm.FsmError, match="instance_id"):
        counter().start(store=store)


LOOKUP: dict[str, Any] = {
    "id": "lookup",
    "initial": "loading",
    "context": {"user": None},
    "states": {
        "loading": {
            "invoke": {
                "id": "fetch",
                "src": "fetchUser",
                "input": {"id": 7},
                "onDone": {
                    "target": "ready",
                    "actions": {"type": "assign", "assignment": {"user": {"expr": "event.output"}}},
                },
            }
        },
        "ready": {"type": "final"},
    },
}


class Stalled(Executor):
    """The process dies before the service answers: its future never completes."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        return Future()


def test_resume_restarts_an_invoked_service_the_last_process_left_running(backend: Backend) -> None:
    calls: list[Any] = []

    def fetch_user(ctx: Any, ev: Any, input: Any) -> dict[str, Any]:
        calls.append(input)
        return {"id": input["id"], "name": "ann"}

    machine = fsm.Machine.from_dict(LOOKUP).provide(services={"fetchUser": fetch_user})
    first = machine.start(store=backend.open(), instance_id="l", clock=fsm.VirtualClock(), executor=Stalled())
    first.stop()
    store = backend.open()
    assert store.get_snapshot("l")["children"] == {"fetch": {"src": "fetchUser", "input": {"id": 7}}}
    assert calls == []

    resumed = machine.resume(store, "l", clock=fsm.VirtualClock(), executor="inline")
    assert calls == [{"id": 7}], "the service ran again, with its recorded input"
    assert (resumed.snapshot.value, resumed.snapshot.status) == ("ready", "done")
    stored = store.load("l")
    assert stored.snapshot["context"] == {"user": {"id": 7, "name": "ann"}}
    assert stored.snapshot["children"] == {}
    last = store.history("l")[-1]
    assert (last.seq, last.event["type"]) == (1, "xstate.done.actor.fetch")
    assert replay(machine, store, "l").matches


class RecordingStore:
    """A store proxy for one worker: records when it holds each instance's lease and what
    it commits, to check no two workers ever step the same instance at once."""

    def __init__(self, store: SQLStore, log: list[tuple[Any, ...]], lock: threading.Lock) -> None:
        self._store = store
        self._log = log
        self._lock = lock

    def _record(self, *entry: Any) -> None:
        with self._lock:
            self._log.append((time.monotonic(), threading.current_thread().name, *entry))

    def claim_due(
        self, owner: str, now: float, lease_ms: float, limit: int = 100, effects_after_s: float = 30.0
    ) -> list[str]:
        ids = self._store.claim_due(owner, now, lease_ms, limit, effects_after_s)
        for instance_id in ids:
            self._record("claim", instance_id)
        return ids

    def release(self, instance_id: str, owner: str) -> None:
        self._record("release", instance_id)
        self._store.release(instance_id, owner)

    def commit(self, instance_id: str, expected_version: int, record: Any, *args: Any, **kwargs: Any) -> int:
        try:
            seq = self._store.commit(instance_id, expected_version, record, *args, **kwargs)
        except ConflictError:
            self._record("conflict", instance_id)
            raise
        self._record("commit", instance_id, seq)
        return seq

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_parallel_workers_fire_every_timer_exactly_once(backend: Backend) -> None:
    instances, workers = 30, 3
    stamps: list[tuple[str, int, str]] = []
    log: list[tuple[Any, ...]] = []
    lock = threading.Lock()

    def stamp(ctx: Any, ev: Any, params: Any, *, effect: Any) -> None:
        with lock:
            stamps.append((effect.actor, effect.seq, threading.current_thread().name))
        # An effect that takes a moment, as real ones do: without it, on a busy machine
        # one worker could finish every instance before another got scheduled at all.
        time.sleep(0.002)

    machine = fsm.Machine.from_dict(CHAIN).provide(actions={"stamp": stamp})
    setup = backend.open()
    past = time.time() * 1000 - 60_000  # the first timers came due a minute ago
    for i in range(instances):
        machine.start(store=setup, instance_id=f"i{i:02}", clock=fsm.VirtualClock(start=past)).stop()

    stop = threading.Event()
    errors: list[BaseException] = []
    ready = threading.Barrier(workers)

    def work(name: str) -> None:
        proxy = RecordingStore(backend.open(), log, lock)
        worker = Worker(proxy, machine, owner=name, batch=3, executor="inline")  # type: ignore[arg-type]
        ready.wait(10)  # all workers start claiming together
        try:
            while not stop.is_set():
                if worker.run_once() == 0:
                    time.sleep(0.002)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",), name=f"w{i}") for i in range(workers)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while setup.instances(status="active") and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert setup.instances(status="active") == [], "some timers never fired"

    for i in range(instances):
        history = setup.history(f"i{i:02}")
        assert [r.seq for r in history] == [0, 1, 2, 3], "each timer fired exactly once"
        assert [r.event["type"] for r in history[1:]] == [
            "xstate.after.1.chain.a",
            "xstate.after.1.chain.b",
            "xstate.after.1.chain.c",
        ]
    by_step = Counter((instance, seq) for instance, seq, _ in stamps)
    assert set(by_step) == {(f"i{i:02}", s) for i in range(instances) for s in (1, 2, 3)}
    assert max(by_step.values()) == 1, "an effect ran twice: two workers stepped one instance"

    # the lease intervals of different workers on one instance never overlap, every commit
    # happened inside its worker's lease, and no commit ever conflicted
    assert not [e for e in log if e[2] == "conflict"]
    holder: dict[str, str] = {}
    for _, worker_name, kind, instance, *_ in sorted(log, key=lambda e: e[0]):
        if kind == "claim":
            assert instance not in holder, f"{instance} claimed by {worker_name} while {holder.get(instance)} held it"
            holder[instance] = worker_name
        elif kind == "release":
            assert holder.pop(instance) == worker_name
        else:
            assert holder.get(instance) == worker_name, f"{worker_name} committed {instance} without the lease"
    workers_used = {name for _, _, name in stamps}
    assert len(workers_used) >= 2, "the workers did not share the load"


# -- replay -------------------------------------------------------------------------------------

JOB: dict[str, Any] = {
    "id": "job",
    "initial": "idle",
    "context": {"attempts": 0, "progress": 0, "beats": 0},
    "states": {
        "idle": {"on": {"START": "running"}},
        "running": {
            "initial": "active",
            "on": {"PAUSE": ".paused", "CANCEL": "#job.cancelled"},
            "states": {
                "active": {
                    "type": "parallel",
                    "states": {
                        "work": {
                            "initial": "fetching",
                            "states": {
                                "fetching": {
                                    "after": {
                                        "backoff": {
                                            "target": "processing",
                                            "actions": {
                                                "type": "assign",
                                                "assignment": {"attempts": {"expr": "context.attempts + 1"}},
                                            },
                                        }
                                    },
                                    "on": {"FAIL": {"target": "fetching", "reenter": True}},
                                },
                                "processing": {
                                    "on": {
                                        "PROGRESS": {
                                            "actions": {
                                                "type": "assign",
                                                "assignment": {"progress": {"expr": "event.pct"}},
                                            }
                                        },
                                        "DONE": [
                                            {"guard": "complete", "target": "#job.finished"},
                                            {"target": "fetching"},
                                        ],
                                    }
                                },
                            },
                        },
                        "heartbeat": {
                            "initial": "beating",
                            "states": {
                                "beating": {
                                    "after": {
                                        "700": {
                                            "target": "beating",
                                            "reenter": True,
                                            "actions": [
                                                {
                                                    "type": "assign",
                                                    "assignment": {"beats": {"expr": "context.beats + 1"}},
                                                },
                                                "ping",
                                            ],
                                        }
                                    }
                                }
                            },
                        },
                    },
                },
                "paused": {"on": {"RESUME": "resumed"}},
                "resumed": {"type": "history", "history": "deep"},
            },
        },
        "finished": {"type": "final"},
        "cancelled": {"type": "final"},
    },
}


def job_machine(seed: int) -> fsm.Machine:
    jitter = random.Random(seed)

    def backoff(ctx: Any, ev: Any, params: Any) -> float:
        return 100 * 2 ** min(ctx["attempts"], 3) * (0.5 + jitter.random())

    return fsm.Machine.from_dict(JOB).provide(
        delays={"backoff": backoff},
        guards={"complete": lambda ctx, ev, params: ctx["progress"] >= 100},
        actions={"ping": lambda ctx, ev, params: None},
    )


def run_job_scenario(store: SQLStore, instance_id: str, steps: int = 150) -> DurableActor:
    rng = random.Random(instance_id)
    clock = fsm.VirtualClock(start=1_000)
    actor = job_machine(seed=1).start(store=store, instance_id=instance_id, clock=clock)
    actor.send("START")
    for _ in range(steps):
        if actor.snapshot.status != "active":
            break
        roll = rng.random()
        if roll < 0.4:
            clock.advance(rng.choice([50, 150, 400, 800, 1500]))
        elif roll < 0.55:
            actor.send("PROGRESS", pct=rng.choice([10, 50, 90, 100]))
        elif roll < 0.65:
            actor.send("FAIL")
        elif roll < 0.75:
            actor.send("PAUSE")
        elif roll < 0.88:
            actor.send("RESUME")
        elif roll < 0.98:
            actor.send("DONE")
        else:
            actor.send("NOISE")
    return actor


def test_replay_reproduces_a_long_run_with_timers_jittered_delays_and_history(store: SQLStore) -> None:
    actor = run_job_scenario(store, "job-1")
    history = store.history("job-1")
    # the scenario exercised what replay has to get right
    assert len(history) > 100
    assert sum(r.timer is not None for r in history) >= 10, "timers fired"
    delays = [
        e["params"]["delay"]
        for r in history
        for e in r.effects
        if (e.get("params") or {}).get("delay_name") == "backoff"
    ]
    assert len(set(delays)) >= 3, "jittered named delays were recorded"
    restored = [
        r
        for r in history
        if r.event["type"] == "RESUME" and isinstance(r.value, dict) and r.value.get("running") != "paused"
    ]
    assert any(
        isinstance(r.value["running"], dict) and r.value["running"]["active"]["work"] == "processing" for r in restored
    ), "the deep history state restored a nested configuration"
    assert store.load("job-1").snapshot["context"]["beats"] > 0

    report = replay(job_machine(seed=1), store, "job-1")
    assert report.matches, report.message
    assert (report.records, report.diverged_at) == (actor.version + 1, None)
    assert report.replayed == store.get_snapshot("job-1")

    # the delay function draws other values now (another seed): replay still matches,
    # because it reuses the values recorded when the delays were first computed
    assert replay(job_machine(seed=99), store, "job-1").matches


def test_replay_starts_from_the_journaled_initial_context_and_input(store: SQLStore) -> None:
    machine = fsm.Machine.from_dict(
        {
            "id": "greeter",
            "initial": "ready",
            "context": {"greeting": "hello", "owner": None},
            "states": {
                "ready": {
                    "entry": {"type": "assign", "assignment": {"owner": {"expr": "event.input.owner"}}},
                    "on": {"RENAME": {"actions": {"type": "assign", "assignment": {"owner": {"expr": "event.to"}}}}},
                }
            },
        }
    )
    actor = machine.start(
        {"greeting": "hi"}, store=store, instance_id="g", input={"owner": "ann"}, clock=fsm.VirtualClock()
    )
    actor.send("RENAME", to="bob")
    [first, _] = store.history("g")
    assert first.extra == {"context": {"greeting": "hi"}, "input": {"owner": "ann"}}
    assert store.get_snapshot("g")["context"] == {"greeting": "hi", "owner": "bob"}
    assert replay(machine, store, "g").matches
    store.delete("g")
    assert not store.exists("g") and store.pending_effects("g") == []


def test_replay_detects_a_tampered_journal_or_snapshot(backend: Backend) -> None:
    store = backend.open()
    run_job_scenario(store, "job-1", steps=40)
    assert replay(job_machine(1), store, "job-1").matches
    history = store.history("job-1")
    middle = history[len(history) // 2]
    backend.sql(
        "UPDATE fsm_journal SET value = ? WHERE instance_id = ? AND seq = ?", ('"tampered"', "job-1", middle.seq)
    )
    report = replay(job_machine(1), store, "job-1")
    assert not report.matches and report.diverged_at == middle.seq

    run_job_scenario(store, "job-2", steps=40)
    snapshot = store.get_snapshot("job-2")
    snapshot["context"]["progress"] = -1
    backend.sql("UPDATE fsm_instances SET snapshot = ? WHERE id = ?", (json.dumps(snapshot), "job-2"))
    report = replay(job_machine(1), store, "job-2")
    assert not report.matches and "differs" in report.message


@pytest.fixture
def property_stores(tmp_path: Path) -> Iterator[list[SQLStore]]:
    """One store per available backend, for a property test that drives the same steps
    through both (the examples, which are costly to generate, are shared). Without a
    PostgreSQL server only SQLite is used, unless FSM_REQUIRE_POSTGRES=1."""
    names = ["sqlite"]
    if stores.postgres_problem() is None:
        names.append("postgres")
    else:
        stores.require_postgres_or_note()
    with ExitStack() as stack:
        backends = [stack.enter_context(contextmanager(stores.make_backend)(n, tmp_path)) for n in names]
        yield [b.open(durable=False) for b in backends]


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_replaying_the_journal_reproduces_the_stored_snapshot(
    property_stores: list[SQLStore], data: st.DataObject
) -> None:
    """Any generated statechart, driven through a DurableActor by events and clock
    advances: re-folding the journal gives exactly the stored snapshot, on every backend,
    and every backend stores the same snapshot."""
    definition = data.draw(statecharts(), label="machine")
    steps = data.draw(steps_for(definition), label="steps")
    machine = provide(fsm.Machine.from_dict(definition, max_microsteps=60), Recorder())
    instance_id = uuid.uuid4().hex
    clock = fsm.VirtualClock()
    actors: list[DurableActor] = []
    for store in property_stores:
        actor = DurableActor(machine, store, instance_id, clock=clock, executor="inline", logger=lambda *a: None)
        actor.subscribe(None, lambda err: None)
        try:
            actor.start()
        except StepError:
            assert not store.exists(instance_id), "nothing is stored for an instance whose first step fails"
            return
        actors.append(actor)
    for step in steps:
        if actors[0].snapshot.status != "active":
            break
        if "event" in step:
            for actor in actors:
                actor.send(step["event"])
        else:
            clock.advance(step["advance"], max_fires=1_000)  # fires the timers of every actor
    snapshots = []
    for store, actor in zip(property_stores, actors):
        stored = store.load(instance_id)
        assert stored.version == actor.version == store.history(instance_id)[-1].seq
        report = replay(machine, store, instance_id)
        note(f"{store!r}: {report.message} at {report.diverged_at}")
        assert report.matches
        snapshots.append(stored.snapshot)
    assert all(s == snapshots[0] for s in snapshots)


# -- restore cost does not depend on the journal's length ------------------------------------


def grow_journal(backend: Backend, store: SQLStore, instance_id: str, extra: int) -> None:
    """Append ``extra`` INC steps to an instance straight in SQL (one transaction), as if
    they had been sent one by one, and move its snapshot and version along."""
    stored = store.load(instance_id)
    template = backend.sql(
        "SELECT event, value, status, effects FROM fsm_journal WHERE instance_id = ? AND seq = 1", (instance_id,)
    )[0]
    start = stored.version + 1
    now = time.time()
    backend.bulk(
        "INSERT INTO fsm_journal (instance_id, seq, event, event_id, timer, now, value, status, effects, extra,"
        " recorded_at) VALUES (?, ?, ?, ?, NULL, 0, ?, ?, ?, NULL, ?)",
        [(instance_id, seq, template[0], f"bulk-{seq}", *template[1:], now) for seq in range(start, start + extra)],
    )
    snapshot = {**stored.snapshot, "context": {"n": stored.snapshot["context"]["n"] + extra}}
    backend.sql(
        "UPDATE fsm_instances SET version = ?, snapshot = ? WHERE id = ?",
        (stored.version + extra, json.dumps(snapshot), instance_id),
    )


def test_resume_cost_does_not_grow_with_the_journal(backend: Backend) -> None:
    store = backend.open()
    machine = counter()
    for instance_id in ("short", "long"):
        actor = machine.start(store=store, instance_id=instance_id, clock=fsm.VirtualClock())
        for _ in range(10):
            actor.send("INC")
        actor.stop()
    grow_journal(backend, store, "long", 10_000)
    assert len(store.history("long")) == 10_011

    def resume_time(instance_id: str) -> float:
        t0 = time.perf_counter()
        actor = machine.resume(store, instance_id, clock=fsm.VirtualClock())
        elapsed = time.perf_counter() - t0
        actor.stop()
        return elapsed

    for instance_id in ("short", "long"):
        resume_time(instance_id)  # warm up
    short = statistics.median(resume_time("short") for _ in range(7))
    long = statistics.median(resume_time("long") for _ in range(7))
    assert long < 5 * short + 0.02, f"resume took {long * 1e3:.2f} ms with 10,011 records vs {short * 1e3:.2f} ms"

    resumed = machine.resume(store, "long", clock=fsm.VirtualClock())
    assert (resumed.version, resumed.snapshot.context) == (10_010, {"n": 10_010})
    resumed.send("INC")
    assert store.load("long").version == 10_011
