"""Actors: a mailbox around the pure step function.

``send`` puts the event in a mailbox and, unless the actor is already processing (an
action sending to its own actor, or another thread), processes the mailbox to empty:
run-to-completion, one macrostep at a time, serialised by a lock so several threads may
send safely.

After each step the actor executes the step's effects in XState's order: custom actions
and ``log`` first, in order (XState runs them as the step proceeds), then the deferred
built-ins (``emit``, ``sendTo``, starting and stopping children, timers). If a custom
action raises, the actor keeps the snapshot from before the event with status ``error``,
as XState v5 does, and stops.

:class:`ActorBase` holds what the synchronous :class:`Actor` and the asyncio
:class:`~fsm.runtime.aio.AsyncActor` share; they differ only in how they wait.
"""

from __future__ import annotations

import inspect
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from fsm.actions import PARENT
from fsm.errors import FsmError, StepError
from fsm.runtime.clock import Clock, TimerHandle, default_clock
from fsm.semantics import events
from fsm.semantics.snapshot import ACTIVE, DONE, ERROR, STOPPED, Effect, Snapshot, Timer

if TYPE_CHECKING:
    from fsm.machine import Machine
    from fsm.runtime.services import Child

log = logging.getLogger("fsm.runtime")

Listener = Callable[[Snapshot], None]
Inspector = Callable[[dict[str, Any]], None]
MailItem = tuple[str, Any]


@dataclass(frozen=True)
class EffectInfo:
    """What an action implementation may want to know about the effect it is running.

    ``key`` is an idempotency key, stable across retries and restarts, when the actor is
    durable (``"<instance>:<seq>:<index>"``); None otherwise. ``attempt`` counts runs.
    """

    key: str | None
    actor: str
    seq: int | None
    index: int | None
    attempt: int


_current_effect: ContextVar[EffectInfo | None] = ContextVar("fsm_current_effect", default=None)


def current_effect() -> EffectInfo | None:
    """The effect being executed in this context (for libraries that wrap actions)."""
    return _current_effect.get()


_ACCEPTS: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
_NO_EFFECTS: list[Effect] = []  # never appended to
_EMPTY: Mapping[str, Any] = MappingProxyType({})  # the params of an action given without any
_FLAG = "_fsm_takes_effect"


def _accepts_effect(fn: Any) -> bool:
    """Does this implementation take an ``effect`` keyword? Decided once per function
    (remembered on the function itself, or in a weak table for other callables)."""
    flag = getattr(fn, _FLAG, None)
    if flag is not None:
        return bool(flag)
    try:
        return _ACCEPTS[fn]
    except (KeyError, TypeError):
        pass
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        result = False
    else:
        result = any(
            p.kind is p.VAR_KEYWORD or (p.name == "effect" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
            for p in parameters
        )
    try:
        setattr(fn, _FLAG, result)
    except (AttributeError, TypeError):
        try:
            _ACCEPTS[fn] = result
        except TypeError:
            pass
    return result


class Subscription:
    """Returned by ``subscribe`` / ``on`` / ``inspect``; also a context manager."""

    __slots__ = ("_remove",)

    def __init__(self, remove: Callable[[], None]) -> None:
        self._remove = remove

    def unsubscribe(self) -> None:
        self._remove()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unsubscribe()


class ActorBase:
    """State and bookkeeping shared by the synchronous and asyncio actors."""

    def __init__(
        self,
        machine: Machine,
        *,
        context: Mapping[str, Any] | None = None,
        snapshot: Snapshot | None = None,
        clock: Clock | None = None,
        input: Any = None,
        parent: ActorBase | None = None,
        id: str | None = None,
        inspect: Inspector | None = None,
        logger: Callable[..., None] | None = None,
        executor: Any = None,
    ) -> None:
        self.machine = machine
        self.id = id or machine.id
        self.parent = parent
        self.clock: Clock = clock or (parent.clock if parent is not None else self._default_clock())
        self.executor: Any = executor if executor is not None else (parent.executor if parent is not None else None)
        self._inspectors: list[Inspector] = parent._inspectors if parent is not None else []
        if inspect is not None:
            self._inspectors.append(inspect)
        self._logger: Callable[..., None] = logger or (parent._logger if parent is not None else _default_logger)
        self._initial_context = context
        self._input = input
        self._snapshot: Snapshot | None = snapshot
        self._mailbox: deque[MailItem] = deque()
        self._processing = False
        self._started = False
        self._listeners: list[
            tuple[Listener | None, Callable[[BaseException], None] | None, Callable[[], None] | None]
        ] = []
        self._emit_handlers: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        self._armed: dict[str, tuple[int, TimerHandle]] = {}
        self._synced: tuple[Timer, ...] | None = None  # the timers tuple last armed
        self.children: dict[str, Child] = {}
        self._handle: Child | None = None  # set when this actor is an invoked child

    def _default_clock(self) -> Clock:
        return default_clock()

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

    def subscribe(
        self,
        listener: Listener | None = None,
        error: Callable[[BaseException], None] | None = None,
        complete: Callable[[], None] | None = None,
    ) -> Subscription:
        """Call ``listener(snapshot)`` after every processed event; ``error`` /
        ``complete`` when the actor fails or finishes. Returns an unsubscribe handle."""
        entry = (listener, error, complete)
        self._listeners.append(entry)
        return Subscription(lambda: self._listeners.remove(entry) if entry in self._listeners else None)

    def on(self, event_type: str, handler: Callable[[dict[str, Any]], None]) -> Subscription:
        """Listen to events emitted by the machine (``emit`` actions); ``"*"`` for all."""
        handlers = self._emit_handlers.setdefault(event_type, [])
        handlers.append(handler)
        return Subscription(lambda: handlers.remove(handler) if handler in handlers else None)

    def inspect(self, inspector: Inspector) -> Subscription:
        """Receive every event, action, snapshot and error as a dict (for tracing).

        Records have a ``type``: ``@fsm.event``, ``@fsm.microstep``, ``@fsm.action``,
        ``@fsm.snapshot`` or ``@fsm.error``, and the ``actor`` id.
        """
        self._inspectors.append(inspector)
        return Subscription(lambda: self._inspectors.remove(inspector) if inspector in self._inspectors else None)

    def _stop(self) -> bool:
        """Mark the actor stopped (no exit actions run, as in XState). Returns whether
        the status changed."""
        if self._snapshot is None or self._snapshot.status != ACTIVE:
            self._teardown()
            return False
        self._snapshot = self._snapshot.replace(status=STOPPED)
        self._teardown()
        self._notify(self._snapshot)
        self._complete()
        return True

    # -- the step, shared by both actors -----------------------------------------------

    def _begin(self) -> tuple[Snapshot, list[Effect], dict[str, Any]] | StepError:
        """The initial step: its snapshot and effects, or the error it raised."""
        event = {"type": events.INIT}
        self._inspect({"type": "@fsm.event", "event": event})
        try:
            snapshot, effects = self.machine.initial_transition(
                self._initial_context, input=self._input, now=self.clock.now(), on_microstep=self._microstep_hook()
            )
        except StepError as exc:
            return exc
        return snapshot, effects, event

    def _compute(self, event: dict[str, Any], timer: Timer | None) -> tuple[Snapshot, list[Effect]] | StepError:
        snapshot = self.snapshot
        hook = None
        if self._inspectors:
            self._inspect({"type": "@fsm.event", "event": event, "timer": timer, "snapshot": snapshot})
            hook = self._microstep_hook()
        try:
            return self.machine._transition(snapshot, event, self.clock.now(), timer, hook)
        except StepError as exc:
            return exc

    def _microstep_hook(self) -> Callable[[dict[str, Any]], None] | None:
        if not self._inspectors:
            return None
        return lambda record: self._inspect({"type": "@fsm.microstep", **record})

    def _take(self) -> tuple[dict[str, Any], Timer | None, str | None] | None:
        """Next mailbox item to process, as ``(event, timer it comes from, event id)``.

        Events to a stopped actor are dropped, and so are timers cancelled or replaced
        since they were armed, and results of invocations stopped since they started.
        """
        while self._mailbox:
            kind, payload = self._mailbox.popleft()
            if self._snapshot is None or self._snapshot.status != ACTIVE:
                if kind == "event":
                    log.debug("event %r sent to actor %r (%s): ignored", payload[0]["type"], self.id, self.status)
                continue
            if kind == "child":
                finished: Child = payload[0]
                if self.children.get(finished.id) is not finished:
                    continue
                del self.children[finished.id]
                return payload[1], None, None
            if kind == "timer":
                timer_id, seq = payload
                snapshot = self.snapshot
                timer = next((t for t in snapshot.timers if t.id == timer_id and t.seq == seq), None)
                self._armed.pop(timer_id, None)
                if timer is None:
                    continue
                if timer.to is not None:
                    self._snapshot = snapshot.replace(timers=tuple(t for t in snapshot.timers if t is not timer))
                    self._deliver(timer.to, dict(timer.event))
                    continue
                return dict(timer.event), timer, None
            return payload[0], None, payload[1]
        return None

    def _action_error(self, effect: Effect, event: dict[str, Any], exc: Exception) -> StepError:
        return StepError(
            f"action {effect.type!r} raised while processing {event['type']!r}: {exc}",
            event_type=event["type"],
            cause=exc,
        )

    def _call(self, effect: Effect, info: EffectInfo | None = None) -> Any:
        """Start an immediate effect; returns what the implementation returned.

        An implementation that accepts a keyword argument ``effect`` receives an
        :class:`EffectInfo` (with the idempotency key when the actor is durable).
        """
        if self._inspectors:
            self._inspect(
                {"type": "@fsm.action", "action": {"type": effect.type, "params": effect.params}, "effect": effect}
            )
        fn = effect.fn
        if fn is None:
            if effect.type == "xstate.log":
                params = effect.params
                if params.get("label"):
                    self._logger(params["label"], params["value"])
                else:
                    self._logger(params["value"])
                return None
            raise FsmError(f"action {effect.type!r} is not provided; pass it with machine.provide(actions=...)")
        params = effect.params if effect.params is not None else _EMPTY
        if info is None:  # an in-memory actor: no idempotency key to publish
            if _accepts_effect(fn):
                return fn(effect.context, effect.event, params, effect=EffectInfo(None, self.id, None, None, 1))
            return fn(effect.context, effect.event, params)
        token = _current_effect.set(info)
        try:
            if _accepts_effect(fn):
                return fn(effect.context, effect.event, params, effect=info)
            return fn(effect.context, effect.event, params)
        finally:
            _current_effect.reset(token)

    def _commit(self, snapshot: Snapshot, effects: list[Effect], event: dict[str, Any]) -> None:
        """The immediate effects ran: adopt the snapshot and run the deferred effects."""
        self._snapshot = snapshot
        if snapshot[7] is not self._synced:  # timers changed
            self._sync_timers(snapshot)
        for effect in effects:
            if effect.builtin and effect.type != "xstate.log":
                self._run_deferred(effect)
        if self._inspectors:
            self._inspect({"type": "@fsm.snapshot", "event": event, "snapshot": snapshot})
        if self._listeners:
            self._notify(snapshot)
        if snapshot[3] != ACTIVE:
            self._teardown()
            if snapshot.status == DONE:
                self._complete()
                if self.parent is not None and self._handle is not None:
                    self.parent._deliver_from_child(self._handle, events.done_actor(self.id, snapshot.output))
            elif snapshot.status == ERROR:
                self._report_error(snapshot.error)

    def _fail(self, before: Snapshot | None, exc: StepError) -> None:
        self._snapshot = self.machine.error_snapshot(before, exc, self._initial_context)
        self._inspect({"type": "@fsm.error", "error": exc})
        self._teardown()
        self._notify(self._snapshot)
        self._report_error(exc)
        if self.parent is not None and self._handle is not None:
            self.parent._deliver_from_child(self._handle, events.error_actor(self.id, exc))

    def _resume(self) -> None:
        snapshot = self.snapshot
        self._sync_timers(snapshot)
        for child_id, info in snapshot.children.items():
            self._start_child(child_id, info["src"], info.get("input"))
        self._notify(snapshot)

    # -- deferred effects ----------------------------------------------------------------

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
        if to == PARENT:
            if self.parent is None:
                log.warning("sendParent from %r, which has no parent: %r dropped", self.id, event["type"])
                return
            self.parent._enqueue(("event", (event, None)))
            return
        child = self.children.get(to)
        if child is None:
            log.warning("sendTo %r from %r: no such child; %r dropped", to, self.id, event["type"])
            return
        child.send(event)

    def _deliver_from_child(self, child: Child, event: dict[str, Any]) -> None:
        """A child finished or failed: its result arrives as a normal event, unless that
        invocation was stopped in the meantime (a late result is dropped, even if a newer
        invocation has the same id). Checked when the mailbox is processed."""
        self._enqueue(("child", (child, event)))

    def _start_child(self, child_id: str, src: str, input_: Any) -> None:
        impl = self.machine.impl.services.get(src)
        if impl is None:
            error = events.error_actor(child_id, FsmError(f"service {src!r} is not provided"))
            self._enqueue(("event", (error, None)))
            return
        from fsm.runtime.services import start_service  # services need threads/asyncio: load on use

        start_service(self, child_id, impl, input_)

    def _enqueue(self, item: MailItem) -> None:
        raise NotImplementedError

    # -- timers ------------------------------------------------------------------------

    def _sync_timers(self, snapshot: Snapshot) -> None:
        """Arm the snapshot's timers on the clock; cancel armed ones no longer pending."""
        self._synced = snapshot.timers
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

    def _timer_callback(self, timer: Timer) -> Callable[[], Any]:
        item = ("timer", (timer.id, timer.seq))
        return lambda: self._enqueue(item)

    # -- endings -----------------------------------------------------------------------

    def _teardown(self) -> None:
        for _, handle in self._armed.values():
            handle.cancel()
        self._armed.clear()
        self._synced = None
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
        return f"<{type(self).__name__} {self.id!r} {status}>"


class Actor(ActorBase):
    """A running machine instance, driven synchronously (thread-safe)."""

    def __init__(self, machine: Machine, **options: Any) -> None:
        super().__init__(machine, **options)
        self._lock = threading.RLock()
        # The machine's recorded plans, for send's lookup of static steps (a plan key is
        # (configuration, event type) unless the machine has history states).
        self._roots: dict[Any, Any] | None = None if machine.model.has_history else machine._plans.roots

    def start(self) -> Actor:
        """Compute the initial snapshot (unless restored) and run its effects."""
        with self._lock:
            if self._started:
                return self
            self.machine.check_implementations()
            self._started = True
            self._processing = True
            try:
                if self._snapshot is None:
                    begun = self._begin()
                    if isinstance(begun, StepError):
                        self._fail(None, begun)
                    else:
                        self._apply(None, *begun)
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
        if type(event) is str and not payload and event and event != "*":
            roots = self._roots
            if roots is not None and not self._inspectors:
                # The most common step of all: a string event that a recorded plan says
                # only changes the configuration. One dict lookup decides it, and no
                # event dict, Step or effect list is made.
                with self._lock:
                    before = self._snapshot
                    idle = self._started and not (self._processing or self._mailbox)
                    if idle and before is not None and before[3] == ACTIVE:
                        root = roots.get((before[1], event))
                        if root is not None and root.static:
                            end = root.end
                            if end.microsteps:
                                after = tuple.__new__(Snapshot, (before[0], end.config, *before[2:]))
                                self._snapshot = after
                                if self._listeners:
                                    self._notify(after)
                            return
            ev = {"type": event}  # the common case, without the general checks
        else:
            ev = events.normalize(event, payload)
        with self._lock:
            if self._processing or not self._started or self._mailbox:
                self._mailbox.append(("event", (ev, None)))
                if self._processing or not self._started:
                    return
            elif self._snapshot is not None and self._snapshot[3] == ACTIVE:
                # Idle: process this event directly, then whatever it queued.
                self._processing = True
                try:
                    if self._inspectors:
                        self._process(ev, None)
                    else:
                        before = self._snapshot
                        try:
                            after, effects = self.machine._transition(before, ev, self.clock.now(), None, None)
                        except StepError as exc:
                            self._run_partial(exc.effects)
                            self._fail(before, exc)
                        else:
                            if effects:
                                self._apply(before, after, effects, ev)
                            elif after is not before or self._listeners:
                                self._commit(after, effects, ev)
                    if self._mailbox:
                        self._drain()
                finally:
                    self._processing = False
                return
            else:
                return  # a stopped actor ignores events, as in XState
            self._processing = True
            try:
                self._drain()
            finally:
                self._processing = False

    def stop(self) -> None:
        """Stop the actor: pending timers are cancelled, children stopped, status
        becomes ``stopped``."""
        with self._lock:
            self._stop()

    def _enqueue(self, item: MailItem) -> None:
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
        while (item := self._take()) is not None:
            self._process(item[0], item[1])

    def _process(self, event: dict[str, Any], timer: Timer | None) -> None:
        before = self._snapshot
        result = self._compute(event, timer)
        if type(result) is tuple:
            self._apply(before, result[0], result[1], event)
        else:
            assert isinstance(result, StepError)
            self._run_partial(result.effects)
            self._fail(before, result)

    def _apply(self, before: Snapshot | None, snapshot: Snapshot, effects: list[Effect], event: dict[str, Any]) -> None:
        plain = not self._inspectors
        deferred = False
        # Effects are indexed, not read by field name: this loop runs once per action
        # (type 0, params 1, context 2, event 3, builtin 4, fn 5).
        for effect in effects:
            if effect[4] and effect[0] != "xstate.log":
                deferred = True  # built-ins other than log run after the commit
                continue
            try:
                fn = effect[5]
                if plain and fn is not None and getattr(fn, _FLAG, None) is False:
                    # the common case: a plain function known not to take `effect`
                    params = effect[1]
                    result = fn(effect[2], effect[3], _EMPTY if params is None else params)
                else:
                    result = self._call(effect)
                if result is not None:
                    _finish(result)
            except Exception as exc:
                self._fail(before, self._action_error(effect, event, exc))
                return
        self._commit(snapshot, effects if deferred else _NO_EFFECTS, event)

    def _run_partial(self, effects: list[Effect]) -> None:
        """Custom actions XState would have run before a step failed."""
        for effect in effects:
            if effect.immediate:
                try:
                    _finish(self._call(effect))
                except Exception:
                    return


def _finish(result: Any) -> None:
    """A synchronous actor runs an async action to completion where it stands."""
    if result is not None and inspect.isawaitable(result):
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(_await(result))
            return
        raise FsmError("an async action ran on a synchronous Actor inside an event loop; use fsm.AsyncActor")


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _default_logger(*args: Any) -> None:
    logging.getLogger("fsm.log").info(" ".join(str(a) for a in args))
