"""The synchronous actor: a mailbox around the pure step function.

``send`` puts the event in a mailbox and, unless the actor is already processing (an
action sending to its own actor, or another thread), processes the mailbox to empty:
run-to-completion, one macrostep at a time, serialised by a lock so several threads may
send safely.

After each step the actor executes the step's effects in XState's order: custom actions
and ``log`` first, in order (XState runs them as the step proceeds), then the deferred
built-ins (``emit``, ``sendTo``, starting and stopping children, timers). If a custom
action raises, the actor keeps the snapshot from before the event with status ``error``,
as XState v5 does, and stops.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from fsm.errors import FsmError, StepError
from fsm.runtime.clock import Clock, TimerHandle, default_clock
from fsm.runtime.services import Child, start_service
from fsm.semantics import events
from fsm.semantics.snapshot import ACTIVE, DONE, ERROR, STOPPED, Effect, Snapshot, Timer

if TYPE_CHECKING:
    from fsm.machine import Machine

log = logging.getLogger("fsm.runtime")

Listener = Callable[[Snapshot], None]
Inspector = Callable[[dict[str, Any]], None]


class Subscription:
    __slots__ = ("_remove",)

    def __init__(self, remove: Callable[[], None]) -> None:
        self._remove = remove

    def unsubscribe(self) -> None:
        self._remove()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unsubscribe()


class Actor:
    """A running machine instance."""

    def __init__(
        self,
        machine: Machine,
        *,
        context: Mapping[str, Any] | None = None,
        snapshot: Snapshot | None = None,
        clock: Clock | None = None,
        input: Any = None,
        parent: Actor | None = None,
        id: str | None = None,
        inspect: Inspector | None = None,
        logger: Callable[..., None] | None = None,
        executor: Any = None,
    ) -> None:
        self.machine = machine
        self.id = id or machine.id
        self.parent = parent
        self.clock: Clock = clock or (parent.clock if parent is not None else default_clock())
        self.executor: Any = executor if executor is not None else (parent.executor if parent is not None else None)
        self._inspectors: list[Inspector] = [inspect] if inspect else []
        if parent is not None:
            self._inspectors = parent._inspectors
        self._logger: Callable[..., None] = logger or (parent._logger if parent is not None else _default_logger)
        self._initial_context = context
        self._input = input
        self._snapshot: Snapshot | None = snapshot
        self._lock = threading.RLock()
        self._mailbox: deque[tuple[str, Any]] = deque()
        self._processing = False
        self._started = False
        self._listeners: list[
            tuple[Listener | None, Callable[[BaseException], None] | None, Callable[[], None] | None]
        ] = []
        self._emit_handlers: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        self._armed: dict[str, tuple[int, TimerHandle]] = {}
        self.children: dict[str, Child] = {}

    # -- public API --------------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        if self._snapshot is None:
            raise FsmError("the actor has not been started yet; call start()")
        return self._snapshot

    def get_snapshot(self) -> Snapshot:
        return self.snapshot

    @property
    def status(self) -> str:
        return self.snapshot.status

    def start(self) -> Actor:
        """Compute the initial snapshot (unless restored) and run its effects."""
        with self._lock:
            if self._started:
                return self
            self._started = True
            self._processing = True
            try:
                if self._snapshot is None:
                    self._start_fresh()
                else:
                    self._resume()
                self._drain()
            finally:
                self._processing = False
        return self

    def send(self, event: Any, **payload: Any) -> None:
        """Send an event: ``send("PAY", amount=3)`` or ``send({"type": "PAY", ...})``.

        Events sent while the actor is processing (from an action, or from another
        thread) are queued and processed after the current step, never re-entered.
        """
        ev = events.normalize(event, payload)
        self._enqueue(("event", ev))

    def subscribe(
        self,
        listener: Listener | None = None,
        error: Callable[[BaseException], None] | None = None,
        complete: Callable[[], None] | None = None,
    ) -> Subscription:
        """Call ``listener(snapshot)`` after every processed event; ``error`` /
        ``complete`` when the actor fails or finishes. Returns an unsubscribe handle."""
        entry = (listener, error, complete)
        with self._lock:
            self._listeners.append(entry)

        def remove() -> None:
            with self._lock:
                if entry in self._listeners:
                    self._listeners.remove(entry)

        return Subscription(remove)

    def on(self, event_type: str, handler: Callable[[dict[str, Any]], None]) -> Subscription:
        """Listen to events emitted by the machine (``emit`` actions); ``"*"`` for all."""
        with self._lock:
            self._emit_handlers.setdefault(event_type, []).append(handler)

        def remove() -> None:
            with self._lock:
                handlers = self._emit_handlers.get(event_type, [])
                if handler in handlers:
                    handlers.remove(handler)

        return Subscription(remove)

    def inspect(self, inspector: Inspector) -> Subscription:
        """Receive every event, step, action and snapshot as a dict (for tracing)."""
        with self._lock:
            self._inspectors.append(inspector)
        return Subscription(lambda: self._inspectors.remove(inspector) if inspector in self._inspectors else None)

    def stop(self) -> None:
        """Stop the actor: pending timers are cancelled, children stopped, status
        becomes ``stopped`` (no exit actions run, as in XState)."""
        with self._lock:
            if self._snapshot is None or self._snapshot.status != ACTIVE:
                self._teardown()
                return
            self._snapshot = self._snapshot.replace(status=STOPPED)
            self._teardown()
            self._notify(self._snapshot)
            self._complete()

    # -- mailbox -----------------------------------------------------------------------

    def _enqueue(self, item: tuple[str, Any]) -> None:
        with self._lock:
            self._mailbox.append(item)
            if self._processing or not self._started:
                return
            self._processing = True
            try:
                self._drain()
            finally:
                self._processing = False

    def _drain(self) -> None:
        while self._mailbox:
            kind, payload = self._mailbox.popleft()
            if self._snapshot is None or self._snapshot.status != ACTIVE:
                if kind == "event":
                    log.debug(
                        "event %r sent to actor %r with status %s: ignored", payload["type"], self.id, self.status
                    )
                continue
            if kind == "event":
                self._process(payload, None)
            elif kind == "timer":
                self._fire(*payload)

    def _start_fresh(self) -> None:
        try:
            snapshot, effects = self.machine.initial_transition(
                self._initial_context, input=self._input, now=self.clock.now()
            )
        except StepError as exc:
            self._fail(None, exc, [])
            return
        self._inspect({"type": "@fsm.event", "event": {"type": events.INIT}})
        self._apply(None, snapshot, effects, {"type": events.INIT})

    def _resume(self) -> None:
        snapshot = self.snapshot
        self._sync_timers(snapshot)
        for child_id, src in snapshot.children.items():
            self._start_child(child_id, src, None, resumed=True)
        self._notify(snapshot)

    def _process(self, event: dict[str, Any], timer: str | None) -> None:
        before = self.snapshot
        self._inspect({"type": "@fsm.event", "event": event, "timer": timer})
        try:
            snapshot, effects = self.machine.transition(before, event, now=self.clock.now(), timer=timer)
        except StepError as exc:
            self._fail(before, exc, exc.effects)
            return
        self._apply(before, snapshot, effects, event)

    def _fire(self, timer_id: str, seq: int) -> None:
        snapshot = self.snapshot
        timer = next((t for t in snapshot.timers if t.id == timer_id and t.seq == seq), None)
        self._armed.pop(timer_id, None)
        if timer is None:
            return
        if timer.to is None:
            self._process(dict(timer.event), timer.id)
            return
        self._snapshot = snapshot.replace(timers=tuple(t for t in snapshot.timers if t is not timer))
        self._deliver(timer.to, dict(timer.event))

    # -- effects -----------------------------------------------------------------------

    def _apply(self, before: Snapshot | None, snapshot: Snapshot, effects: list[Effect], event: dict[str, Any]) -> None:
        for effect in effects:
            if effect.immediate:
                try:
                    self._run_immediate(effect)
                except Exception as exc:
                    err = StepError(
                        f"action {effect.type!r} raised while processing {event['type']!r}: {exc}",
                        event_type=event["type"],
                        cause=exc,
                    )
                    self._fail(before, err, [], executed=True)
                    return
        self._snapshot = snapshot
        self._sync_timers(snapshot)
        for effect in effects:
            if not effect.immediate:
                self._run_deferred(effect)
        self._inspect({"type": "@fsm.snapshot", "event": event, "snapshot": snapshot})
        self._notify(snapshot)
        if snapshot.status != ACTIVE:
            self._teardown()
            if snapshot.status == DONE:
                self._complete()
                if self.parent is not None:
                    self.parent._deliver_from_child(self.id, events.done_actor(self.id, snapshot.output))
            elif snapshot.status == ERROR:
                self._report_error(snapshot.error)

    def _run_immediate(self, effect: Effect) -> None:
        self._inspect(
            {"type": "@fsm.action", "action": {"type": effect.type, "params": effect.params}, "effect": effect}
        )
        if effect.type == "xstate.log":
            params = effect.params
            if params.get("label"):
                self._logger(params["label"], params["value"])
            else:
                self._logger(params["value"])
            return
        if effect.fn is None:
            raise FsmError(f"action {effect.type!r} is not provided; pass it with machine.provide(actions=...)")
        effect.fn(effect.context, effect.event, effect.params if effect.params is not None else {})

    def _run_deferred(self, effect: Effect) -> None:
        kind, params = effect.type, effect.params
        self._inspect({"type": "@fsm.action", "action": {"type": kind, "params": params}, "effect": effect})
        if kind == "xstate.emit":
            self._emit(params["event"])
        elif kind == "xstate.sendTo":
            self._deliver(params["to"], params["event"])
        elif kind == "xstate.spawnChild":
            self._start_child(params["id"], params["src"], params.get("input"))
        elif kind == "xstate.stopChild":
            child = self.children.pop(params["id"], None)
            if child is not None:
                child.stop()

    def _emit(self, event: dict[str, Any]) -> None:
        handlers = list(self._emit_handlers.get(event["type"], ())) + list(self._emit_handlers.get("*", ()))
        for handler in handlers:
            try:
                handler(event)
            except Exception:
                log.exception("emit handler for %r failed", event["type"])

    def _deliver(self, to: str, event: dict[str, Any]) -> None:
        from fsm.actions import PARENT

        if to == PARENT:
            if self.parent is None:
                log.warning("sendParent from %r, which has no parent: %r dropped", self.id, event["type"])
                return
            self.parent.send(event)
            return
        child = self.children.get(to)
        if child is None:
            log.warning("sendTo %r from %r: no such child; %r dropped", to, self.id, event["type"])
            return
        child.send(event)

    def _deliver_from_child(self, child_id: str, event: dict[str, Any]) -> None:
        """A child finished or failed: its result arrives as a normal event, unless the
        child was stopped in the meantime (a late result is dropped)."""
        if child_id not in self.children:
            return
        self.children.pop(child_id, None)
        self._enqueue(("event", event))

    def _start_child(self, child_id: str, src: str, input_: Any, resumed: bool = False) -> None:
        impl = self.machine.impl.services.get(src)
        if impl is None:
            self._enqueue(("event", events.error_actor(child_id, FsmError(f"service {src!r} is not provided"))))
            return
        self.children[child_id] = start_service(self, child_id, impl, input_, resumed)

    def _sync_timers(self, snapshot: Snapshot) -> None:
        wanted: dict[str, Timer] = {t.id: t for t in snapshot.timers}
        for timer_id, (seq, handle) in list(self._armed.items()):
            timer = wanted.get(timer_id)
            if timer is None or timer.seq != seq:
                handle.cancel()
                del self._armed[timer_id]
        for timer in sorted(snapshot.timers, key=lambda t: t.seq):
            if timer.id not in self._armed:
                handle = self.clock.call_at(timer.due, self._timer_callback(timer))
                self._armed[timer.id] = (timer.seq, handle)

    def _timer_callback(self, timer: Timer) -> Callable[[], None]:
        item = ("timer", (timer.id, timer.seq))
        return lambda: self._enqueue(item)

    # -- endings -----------------------------------------------------------------------

    def _fail(self, before: Snapshot | None, exc: StepError, partial: list[Effect], executed: bool = False) -> None:
        if not executed:
            for effect in partial:
                if effect.immediate:
                    try:
                        self._run_immediate(effect)
                    except Exception:
                        break
        self._snapshot = self.machine.error_snapshot(before, exc, self._initial_context)
        self._inspect({"type": "@fsm.error", "error": exc})
        self._teardown()
        self._notify(self._snapshot)
        self._report_error(exc)
        if self.parent is not None:
            self.parent._deliver_from_child(self.id, events.error_actor(self.id, exc))

    def _teardown(self) -> None:
        for _, handle in self._armed.values():
            handle.cancel()
        self._armed.clear()
        for child in list(self.children.values()):
            child.stop()
        self.children.clear()
        self._mailbox.clear()

    def _notify(self, snapshot: Snapshot) -> None:
        for listener, _, _ in list(self._listeners):
            if listener is not None:
                try:
                    listener(snapshot)
                except Exception:
                    log.exception("snapshot listener failed")

    def _complete(self) -> None:
        for _, _, complete in list(self._listeners):
            if complete is not None:
                try:
                    complete()
                except Exception:
                    log.exception("completion listener failed")

    def _report_error(self, error: Any) -> None:
        handled = False
        for _, on_error, _ in list(self._listeners):
            if on_error is not None:
                handled = True
                try:
                    on_error(error)
                except Exception:
                    log.exception("error listener failed")
        if not handled and self.parent is None:
            log.error("actor %r failed: %s", self.id, error)

    def _inspect(self, record: dict[str, Any]) -> None:
        if not self._inspectors:
            return
        record["actor"] = self.id
        for inspector in list(self._inspectors):
            try:
                inspector(record)
            except Exception:
                log.exception("inspector failed")

    def __repr__(self) -> str:
        status = self._snapshot.status if self._snapshot is not None else "not started"
        return f"<Actor {self.id!r} {status}>"


def _default_logger(*args: Any) -> None:
    logging.getLogger("fsm.log").info(" ".join(str(a) for a in args))
