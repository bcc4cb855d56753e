"""Workers: fire the due timers of persisted instances, and finish their pending effects.

A durable instance's timers live in its stored snapshot. While a process holds the
instance live, its own clock fires them; when no process does (it crashed, or the
instance was only ever driven by ``fsm send``), a worker finds instances whose earliest
timer is due, leases them, and fires their timers in order, each as a committed step.
Several workers can share a store: leases (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite) make sure no instance is stepped by two workers at once,
and optimistic concurrency makes a live process and a worker safe together (a timer
delivered twice is recognised as stale).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from fsm.errors import FsmError
from fsm.runtime.clock import Clock, RealClock, VirtualClock

if TYPE_CHECKING:
    from fsm.machine import Machine
    from fsm.store.base import SQLStore

log = logging.getLogger("fsm.worker")

MachineSource = Callable[[str, str], "Machine | None"]


def machine_source(machines: Machine | Iterable[Machine] | Mapping[str, Machine] | MachineSource) -> MachineSource:
    """Normalise the ways a worker can be told about machines into a lookup by
    ``(machine_id, version)``."""
    from fsm.machine import Machine

    if isinstance(machines, Machine):
        machines = [machines]
    if callable(machines) and not isinstance(machines, Mapping):
        return machines
    table = dict(machines) if isinstance(machines, Mapping) else {m.id: m for m in machines}
    return lambda machine_id, version: table.get(machine_id)


class Worker:
    """Fires due timers (and finishes pending effects) of instances in a store."""

    def __init__(
        self,
        store: SQLStore,
        machines: Machine | Iterable[Machine] | Mapping[str, Machine] | MachineSource,
        *,
        owner: str | None = None,
        lease_ms: float = 60_000,
        batch: int = 100,
        clock: Clock | None = None,
        executor: Any = None,
        allow_version_change: bool = False,
        on_instance: Callable[[str, Any], None] | None = None,
        effects_after_s: float = 30.0,
        on_error: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self.store = store
        self.lookup = machine_source(machines)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_ms = lease_ms
        self.batch = batch
        self.clock = clock or RealClock()
        self.executor = executor
        self.allow_version_change = allow_version_change
        # Called with (instance id, snapshot) after each instance is stepped, and with
        # (instance id, exception) when one fails (it is logged either way, and the pass
        # goes on with the next instance).
        self.on_instance = on_instance
        self.on_error = on_error
        # An effect still pending this long after its step committed was left behind (a
        # crash, or it failed): the worker resumes the instance, which runs it again.
        self.effects_after_s = effects_after_s
        self._stop = threading.Event()

    def run_once(self) -> int:
        """One pass: lease due instances, fire their due timers. Returns how many
        instances were stepped."""
        now = self.clock.now()
        stepped = 0
        for instance_id in self.store.claim_due(self.owner, now, self.lease_ms, self.batch, self.effects_after_s):
            try:
                self._process(instance_id, now)
                stepped += 1
            except FsmError as exc:
                log.error("worker %s: instance %s: %s", self.owner, instance_id, exc)
                self._report(instance_id, exc)
            except Exception as exc:
                log.exception("worker %s: instance %s failed", self.owner, instance_id)
                self._report(instance_id, exc)
            finally:
                self.store.release(instance_id, self.owner)
        return stepped

    def _report(self, instance_id: str, exc: BaseException) -> None:
        if self.on_error is not None:
            try:
                self.on_error(instance_id, exc)
            except Exception:
                log.exception("worker %s: on_error for %s failed", self.owner, instance_id)

    def _process(self, instance_id: str, now: float) -> None:
        stored = self.store.load(instance_id)
        machine = self.lookup(stored.machine_id, stored.machine_version)
        if machine is None:
            raise FsmError(f"no machine {stored.machine_id!r} registered with this worker")
        clock = VirtualClock(start=now)
        actor = machine.resume(
            self.store,
            instance_id,
            clock=clock,
            executor=self.executor,
            allow_version_change=self.allow_version_change,
        )
        clock.advance(0)  # every timer due by now fires, in deadline order, each committed
        actor.stop()
        if self.on_instance is not None:
            self.on_instance(instance_id, actor.snapshot)

    def run(self, *, poll: float = 1.0, until_idle: bool = False) -> None:
        """Loop until :meth:`stop` (or, with ``until_idle``, until nothing is due)."""
        while not self._stop.is_set():
            stepped = self.run_once()
            if until_idle and stepped == 0:
                return
            if stepped == 0:
                self._stop.wait(poll)

    def stop(self) -> None:
        self._stop.set()
