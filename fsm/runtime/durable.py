"""Durable actors: every step committed to a store before its effects run.

A :class:`DurableActor` is an :class:`~fsm.runtime.actor.Actor` whose steps go through a
store (:mod:`fsm.store`): the pure step computes the next snapshot, then ONE transaction
appends the journal record, updates the snapshot (if no other writer got there first)
and writes the step's custom actions to an outbox. Only then do effects run; each is
marked done when it returns. The contract (docs/persistence.md):

- a committed step is never lost, an uncommitted one never half-applied;
- every custom action of a committed step runs at least once, with a stable idempotency
  key; after a crash the unfinished ones run again when the instance is resumed;
- an event id is applied at most once (a redelivered event is ignored);
- when another writer committed first, the step is recomputed on the fresh snapshot.

Unlike the in-memory actor, an action that raises does not roll the machine back (the
step is already committed): the effect stays in the outbox to be retried, and the error
is reported to error listeners.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fsm.errors import FsmError, SnapshotError, StepError
from fsm.runtime.actor import Actor, EffectInfo, _finish
from fsm.runtime.clock import Clock, RealClock, VirtualClock
from fsm.semantics import events
from fsm.semantics.snapshot import Effect, Snapshot, Timer
from fsm.store.base import (
    ConflictError,
    DuplicateEvent,
    JournalRecord,
    OutboxItem,
    SQLStore,
    StoredInstance,
    VersionMismatch,
)

if TYPE_CHECKING:
    from fsm.machine import Machine

log = logging.getLogger("fsm.durable")

MAX_CONFLICT_RETRIES = 20


def _serialise_effect(effect: Effect) -> dict[str, Any]:
    return {
        "type": effect.type,
        "params": effect.params,
        "context": effect.context,
        "event": effect.event,
        "path": list(effect.impl_path),
    }


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_default))


def _default(value: Any) -> Any:
    if isinstance(value, BaseException):
        return {"type": type(value).__name__, "message": str(value)}
    return repr(value)


class DurableActor(Actor):
    """A machine instance whose every step is committed to a store."""

    def __init__(
        self,
        machine: Machine,
        store: SQLStore,
        instance_id: str,
        *,
        version: int = -1,
        **options: Any,
    ) -> None:
        super().__init__(machine, id=instance_id, **options)
        self.store = store
        self.instance_id = instance_id
        self._version = version
        self._detached = False

    # -- public ------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """The sequence number of the last committed step."""
        return self._version

    def send(self, event: Any, *, event_id: str | None = None, **payload: Any) -> None:
        """Send an event, optionally with an id: an id already applied to this instance
        is ignored (duplicate delivery is harmless). CloudEvents envelopes bring their
        own ``id``."""
        if self._detached:
            raise FsmError(f"the actor for {self.instance_id!r} was stopped; resume the instance to send to it")
        if event_id is None and isinstance(event, Mapping) and "specversion" in event and "id" in event:
            event_id = str(event["id"])
        ev = events.normalize(event, payload)
        self._enqueue(("event", (ev, event_id)))

    def stop(self) -> None:
        """Detach this live actor: its timers and children stop here, but the stored
        instance is untouched (it is not marked stopped): a worker, or a later
        ``machine.resume``, carries on from the store."""
        with self._lock:
            self._teardown()
            self._detached = True

    def _enqueue(self, item: tuple[str, Any]) -> None:
        if self._detached:
            return
        super()._enqueue(item)

    def run_pending_effects(self) -> int:
        """Run effects of committed steps that have not completed (after a crash, or
        after an action raised). Returns how many completed."""
        with self._lock:
            return self._run_outbox(force=True)

    # -- start / resume ----------------------------------------------------------------

    def start(self) -> DurableActor:
        with self._lock:
            if self._started:
                return self
            self.machine.check_implementations()
            self._started = True
            self._processing = True
            try:
                if self._snapshot is None:
                    self._create()
                else:
                    self._resume()
                    self._run_outbox()
                self._drain()
            finally:
                self._processing = False
        return self

    def _create(self) -> None:
        begun = self._begin()
        if isinstance(begun, StepError):
            # Nothing is stored for an instance whose very first step fails.
            raise begun
        snapshot, effects, event = begun
        extra: dict[str, Any] = {}
        if self._initial_context:
            extra["context"] = _jsonable(dict(self._initial_context))
        if self._input is not None:
            extra["input"] = _jsonable(self._input)
        record = JournalRecord(
            0,
            event,
            None,
            None,
            self._now_of(snapshot),
            snapshot.value,
            snapshot.status,
            _effects_json(effects),
            extra=extra,
        )
        self.store.create(
            self.instance_id,
            self.machine.id,
            self.machine.version,
            self.machine.definition,
            _jsonable(snapshot.to_dict()),
            record,
            [_serialise_effect(e) for e in effects if not e.builtin],
        )
        self._version = 0
        self._run_outbox()
        self._run_logs(effects)
        self._commit(snapshot, effects, event)

    def _now_of(self, snapshot: Snapshot) -> float:
        return self.clock.now()

    # -- processing --------------------------------------------------------------------

    def _drain(self) -> None:
        while (item := self._take()) is not None:
            self._step(*item)

    def _step(self, event: dict[str, Any], timer: Timer | None, event_id: str | None) -> None:
        if event_id is None:
            event_id = None if timer is not None else str(uuid.uuid4())
        elif self.store.has_event(self.instance_id, event_id):
            log.info("event %s (%r) already applied to %s: ignored", event_id, event["type"], self.instance_id)
            self._refresh()  # another writer may have applied it: catch up with the store
            return
        for _ in range(MAX_CONFLICT_RETRIES):
            before = self.snapshot
            result = self._compute(event, timer)
            effects: list[Effect]
            failed: StepError | None
            if isinstance(result, StepError):
                snapshot, effects, failed = self.machine.error_snapshot(before, result), [], result
            else:
                (snapshot, effects), failed = result, None
            if timer is not None and snapshot is before:
                return  # a stale timer: nothing to record
            try:
                stored = _strict_json(snapshot)
            except (TypeError, ValueError) as exc:
                # Storing a lossy copy would make the stored instance differ from the
                # live one; the step is refused instead.
                failed = StepError(
                    f"the step would make the context of {self.instance_id!r} unstorable (not JSON): {exc}",
                    event_type=event["type"],
                    cause=exc,
                )
                snapshot, effects = self.machine.error_snapshot(before, failed), []
                stored = _strict_json(snapshot)
            record = JournalRecord(
                self._version + 1,
                dict(event),
                event_id,
                None if timer is None else {"id": timer.id, "seq": timer.seq},
                self.clock.now(),
                snapshot.value,
                snapshot.status,
                _effects_json(effects),
            )
            try:
                self.store.commit(
                    self.instance_id,
                    self._version,
                    record,
                    stored,
                    [_serialise_effect(e) for e in effects if not e.builtin],
                )
            except ConflictError:
                self._reload()
                continue
            except DuplicateEvent:
                # Another writer applied this event id between the check above and our
                # commit: nothing of ours was written, and the instance moved on without
                # this actor; adopt the stored snapshot rather than keep a stale one.
                log.info("event %s (%r) applied to %s by another writer", event_id, event["type"], self.instance_id)
                self._reload()
                return
            self._version = record.seq
            if failed is not None:
                self._run_partial(failed.effects)
                self._fail(before, failed)
                return
            # Custom actions run before the new snapshot is announced, as in XState
            # (they run as the step proceeds there); the outbox makes them durable.
            self._run_outbox()
            self._run_logs(effects)
            self._commit(snapshot, effects, event)
            return
        raise FsmError(f"instance {self.instance_id!r}: gave up after {MAX_CONFLICT_RETRIES} conflicting writers")

    def _refresh(self) -> None:
        """Reload the instance if another writer committed since this actor's last step."""
        stored = self.store.load(self.instance_id)
        if stored.version != self._version:
            self._adopt(stored)

    def _reload(self) -> None:
        self._adopt(self.store.load(self.instance_id))

    def _adopt(self, stored: StoredInstance) -> None:
        self._snapshot = self.machine.snapshot_from_dict(stored.snapshot)
        self._version = stored.version
        self._sync_timers(self._snapshot)

    # -- the outbox --------------------------------------------------------------------

    def _run_outbox(self, force: bool = False) -> int:
        """Run the pending effects; one that failed waits out its backoff (retry_after,
        wall clock) unless ``force`` (an explicit run_pending_effects)."""
        done = 0
        now = time.time()
        for item in self.store.pending_effects(self.instance_id):
            if not force and item.retry_after is not None and item.retry_after > now:
                continue
            effect = self._rebuild(item)
            info = EffectInfo(item.key, self.instance_id, item.seq, item.index, item.attempts + 1)
            try:
                _finish(self._call(effect, info))
            except Exception as exc:
                dead = self.store.fail_effect(item, f"{type(exc).__name__}: {exc}")
                state = "given up" if dead else "will be retried"
                log.warning("effect %s (%s) of %s failed (%s): %s", item.key, effect.type, self.instance_id, state, exc)
                self._report_error(
                    StepError(f"action {effect.type!r} ({item.key}) raised, {state}: {exc}", event_type=None, cause=exc)
                )
                continue
            self.store.complete_effect(item)
            done += 1
        return done

    def _run_logs(self, effects: list[Effect]) -> None:
        """``log`` is not an outbox effect (losing a log line in a crash is acceptable),
        but it runs with the step's other immediate effects."""
        for effect in effects:
            if effect.builtin and effect.type == "xstate.log":
                self._call(effect)

    def _rebuild(self, item: OutboxItem) -> Effect:
        data = item.effect
        impl: Any = self.machine.impl.actions.get(data["type"])
        for index in data.get("path") or ():
            impl = impl[index] if isinstance(impl, (list, tuple)) and index < len(impl) else None
        fn = impl if callable(impl) else None
        return Effect(data["type"], data.get("params"), data.get("context") or {}, data.get("event") or {}, False, fn)

    def _apply(self, before: Snapshot | None, snapshot: Snapshot, effects: list[Effect], event: dict[str, Any]) -> None:
        raise AssertionError("durable actors commit through _step")  # pragma: no cover


def _strict_json(snapshot: Snapshot) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(snapshot.to_dict()))
    return data


def _effects_json(effects: list[Effect]) -> list[dict[str, Any]]:
    return [_jsonable(e.to_dict()) for e in effects]


# -- entry points (used by Machine.start / Machine.resume) ------------------------------


def start_durable(
    machine: Machine,
    store: SQLStore,
    instance_id: str,
    *,
    context: Mapping[str, Any] | None = None,
    input: Any = None,
    clock: Clock | None = None,
    **options: Any,
) -> DurableActor:
    actor = DurableActor(machine, store, instance_id, context=context, input=input, clock=clock, **options)
    return actor.start()


def resume_durable(
    machine: Machine,
    store: SQLStore,
    instance_id: str,
    *,
    allow_version_change: bool = False,
    migrate: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    clock: Clock | None = None,
    **options: Any,
) -> DurableActor:
    stored = store.load(instance_id)
    if stored.machine_id != machine.id:
        raise VersionMismatch(
            instance_id, f"{stored.machine_id}@{stored.machine_version}", f"{machine.id}@{machine.version}"
        )
    upgrade = stored.machine_version != machine.version
    if upgrade and not (allow_version_change or migrate):
        raise VersionMismatch(instance_id, stored.machine_version, machine.version)
    data = migrate(stored.snapshot) if (upgrade and migrate) else stored.snapshot
    try:
        snapshot = machine.snapshot_from_dict(data)
    except SnapshotError as exc:
        raise SnapshotError(f"instance {instance_id!r} cannot be resumed with this definition: {exc}") from None
    version = stored.version
    if upgrade:
        # Record the change at once (not at the next step), as a journal record that
        # carries the migrated snapshot: a replay restarts from it with the new machine.
        now = (clock or RealClock()).now()
        record = JournalRecord(
            version + 1,
            {"type": "fsm.upgrade", "from": stored.machine_version, "to": machine.version},
            None,
            None,
            now,
            snapshot.value,
            snapshot.status,
            [],
            extra={"snapshot": _strict_json(snapshot)},
        )
        store.commit(
            instance_id, version, record, _strict_json(snapshot), [], machine=(machine.version, machine.definition)
        )
        version = record.seq
    actor = DurableActor(machine, store, instance_id, snapshot=snapshot, version=version, clock=clock, **options)
    return actor.start()


@dataclass(frozen=True)
class ReplayReport:
    """The result of re-folding an instance's journal."""

    instance_id: str
    records: int
    matches: bool
    replayed: dict[str, Any]
    stored: dict[str, Any]
    diverged_at: int | None = None
    message: str = ""


def replay(machine: Machine, store: SQLStore, instance_id: str) -> ReplayReport:
    """Re-fold the journal from the initial step and compare with the stored snapshot.

    Time comes from the journal (each record's ``now``) and named delays reuse the
    values recorded when they were first computed, so replay is exact even for delay
    functions with jitter.
    """
    stored = store.load(instance_id)
    history = store.history(instance_id)
    if not history or history[0].seq != 0:
        return ReplayReport(
            instance_id, len(history), False, {}, stored.snapshot, 0, "the journal has no initial record"
        )
    upgrades = [i for i, r in enumerate(history) if r.event.get("type") == "fsm.upgrade"]
    if upgrades:
        # Steps before the last definition change ran another machine: replay from the
        # migrated snapshot the change recorded.
        start = upgrades[-1]
        snapshot = machine.snapshot_from_dict(history[start].extra["snapshot"])
        rest = history[start + 1 :]
    else:
        first = history[0]
        snapshot, _ = _replay_machine(machine, first).initial_transition(
            first.extra.get("context"), input=first.extra.get("input"), now=first.now
        )
        rest = history[1:]
    for record in rest:
        timer = None
        if record.timer is not None:
            timer = next(
                (t for t in snapshot.timers if t.id == record.timer["id"] and t.seq == record.timer["seq"]), None
            )
            if timer is None:
                return _diverged(
                    instance_id, history, snapshot, stored, record.seq, "the recorded timer is not pending"
                )
        step_machine = _replay_machine(machine, record)
        try:
            snapshot, _ = step_machine.transition(snapshot, record.event, now=record.now, timer=timer)
        except StepError as exc:
            snapshot = machine.error_snapshot(snapshot, exc)
        if _jsonable(snapshot.value) != record.value or snapshot.status != record.status:
            return _diverged(
                instance_id, history, snapshot, stored, record.seq, f"step {record.seq} gives {snapshot.value!r}"
            )
    replayed = _jsonable(snapshot.to_dict())
    comparable = {k: v for k, v in replayed.items() if k != "error"}
    expected = {k: v for k, v in stored.snapshot.items() if k != "error"}
    matches = comparable == expected
    return ReplayReport(
        instance_id,
        len(history),
        matches,
        replayed,
        stored.snapshot,
        None if matches else history[-1].seq,
        "" if matches else "the replayed snapshot differs from the stored one",
    )


def _diverged(
    instance_id: str, history: list[JournalRecord], snapshot: Snapshot, stored: Any, seq: int, message: str
) -> ReplayReport:
    return ReplayReport(instance_id, len(history), False, _jsonable(snapshot.to_dict()), stored.snapshot, seq, message)


def _replay_machine(machine: Machine, record: JournalRecord) -> Machine:
    """The machine with named delays answering the values recorded in this step."""
    recorded: dict[str, deque[float]] = {}
    for effect in record.effects:
        params = effect.get("params") or {}
        if effect.get("type") == "xstate.schedule" and "delay_name" in params:
            recorded.setdefault(params["delay_name"], deque()).append(params["delay"])
    if not recorded:
        return machine
    original = machine.impl.delays

    def replayed(name: str) -> Any:
        def delay(ctx: Any, ev: Any, params: Any) -> Any:
            queue = recorded.get(name)
            if queue:
                return queue.popleft()
            impl = original.get(name)
            return impl(ctx, ev, params) if callable(impl) else impl

        return delay

    return machine.provide(delays={name: replayed(name) for name in recorded})


__all__ = ["DurableActor", "ReplayReport", "VirtualClock", "replay", "resume_durable", "start_durable"]
