"""``fsm.Machine``: a validated definition plus its implementations.

A Machine is immutable: :meth:`Machine.provide` returns a new one sharing the compiled
model. Its two pure methods, :meth:`initial_transition` and :meth:`transition`, are the
whole semantics; :meth:`start` hands the machine to a runtime actor that executes the
effects they return.
"""

from __future__ import annotations

import copy
import json
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from fsm import loading
from fsm.errors import DefinitionError, FsmError, ImplementationError, Problem, StepError
from fsm.model.build import build_model
from fsm.model.nodes import Model, StateNode, Transition
from fsm.semantics import events
from fsm.semantics.algorithm import Implementations, Step, initial_step, initial_targets
from fsm.semantics.plans import End, Node, PlanCache, replay_lean
from fsm.semantics.plans import replay as replay_plan
from fsm.semantics.snapshot import ACTIVE, ERROR, Effect, Snapshot, Timer, intern_configuration, snapshot_from_dict

if TYPE_CHECKING:
    from concurrent.futures import Executor
    from pathlib import Path

    from fsm.runtime.actor import Actor
    from fsm.runtime.clock import Clock
    from fsm.runtime.durable import DurableActor
    from fsm.store.base import SQLStore

KINDS = {"action": "actions", "guard": "guards", "delay": "delays", "service": "services"}


class Machine:
    """A statechart definition compiled and ready to run."""

    __slots__ = ("_complete", "_nested_context", "_plans", "_version", "impl", "model", "source")

    def __init__(self, model: Model, impl: Implementations | None = None, source: str | None = None) -> None:
        self.model = model
        self.impl = impl or Implementations()
        # Recorded steps of this machine (with these implementations): the fast path.
        self._plans = PlanCache(self.impl)
        self._complete = False
        self._nested_context = any(isinstance(v, (dict, list)) for v in model.context.values())
        self.source = source
        self._version: str | None = None

    # -- loading -----------------------------------------------------------------------

    @classmethod
    def from_dict(
        cls, definition: Mapping[str, Any], *, source: str | None = None, max_microsteps: int | None = None
    ) -> Machine:
        """Validate (JSON Schema, then structure) and compile a definition.

        Raises :class:`~fsm.errors.DefinitionError` listing every problem with its path.
        """
        loading.check_document(definition, source)
        from fsm import schema as schema_mod  # deferred: compiling the validator costs ~15 ms

        problems = schema_mod.validate(definition)
        if problems:
            raise DefinitionError(problems + _structural_problems(definition, problems), source)
        try:
            model = build_model(copy.deepcopy(dict(definition)), max_microsteps)
        except DefinitionError as exc:
            raise DefinitionError(exc.problems, source) from None
        return cls(model, None, source)

    @classmethod
    def from_json(cls, text: str, *, source: str | None = None, max_microsteps: int | None = None) -> Machine:
        return cls.from_dict(loading.parse_json(text, source), source=source, max_microsteps=max_microsteps)

    @classmethod
    def from_yaml(cls, text: str, *, source: str | None = None, max_microsteps: int | None = None) -> Machine:
        return cls.from_dict(loading.parse_yaml(text, source), source=source, max_microsteps=max_microsteps)

    @classmethod
    def from_file(cls, path: str | Path, *, max_microsteps: int | None = None) -> Machine:
        """Load a ``.json``, ``.yaml`` or ``.yml`` machine definition."""
        return cls.from_dict(loading.read_file(path), source=str(path), max_microsteps=max_microsteps)

    # -- identity ----------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.model.root.id

    @property
    def definition(self) -> dict[str, Any]:
        """The definition as loaded (plain JSON data)."""
        return self.model.definition

    @property
    def version(self) -> str:
        """A content hash of the definition: persisted instances record it so a resumed
        instance is known to run the definition it started with."""
        if self._version is None:
            canonical = json.dumps(self.model.definition, sort_keys=True, separators=(",", ":"))
            import hashlib

            self._version = hashlib.sha256(canonical.encode()).hexdigest()[:16]
        return self._version

    def state(self, state_id: str) -> StateNode:
        """The state node with this id (``"#id"`` or ``"id"``)."""
        node = self.model.by_id.get(state_id.removeprefix("#"))
        if node is None:
            raise KeyError(f"machine {self.id!r} has no state with id {state_id!r}")
        return node

    # -- implementations ---------------------------------------------------------------

    def provide(
        self,
        *,
        actions: Mapping[str, Any] | None = None,
        guards: Mapping[str, Any] | None = None,
        services: Mapping[str, Any] | None = None,
        delays: Mapping[str, Any] | None = None,
    ) -> Machine:
        """A new machine with these implementations added (this one is unchanged).

        Every implementation is called as ``f(context, event, params)``. Actions may also
        be built-ins (``fsm.assign(...)``, ``fsm.raise_event(...)`` ...) or a list of them.
        """
        impl = Implementations(
            {**self.impl.actions, **(actions or {})},
            {**self.impl.guards, **(guards or {})},
            {**self.impl.delays, **(delays or {})},
            {**self.impl.services, **(services or {})},
        )
        return Machine(self.model, impl, self.source)

    def missing_implementations(self) -> dict[str, dict[str, list[str]]]:
        """Every referenced name that is not provided, by kind, with the JSON paths that
        use it: ``{"guards": {"canRetry": ["states.a.on.GO.guard"]}}``."""
        missing: dict[str, dict[str, list[str]]] = {}
        for (kind, name), places in self.model.references.items():
            plural = KINDS[kind]
            provided: Mapping[str, Any] = getattr(self.impl, plural)
            if name not in provided:
                missing.setdefault(plural, {})[name] = places
        return missing

    def check_implementations(self) -> None:
        if self._complete:
            return
        missing = self.missing_implementations()
        if missing:
            raise ImplementationError(missing, self.id)
        self._complete = True  # implementations never change on a Machine: check once

    # -- the pure step -----------------------------------------------------------------

    def initial_transition(
        self,
        context: Mapping[str, Any] | None = None,
        *,
        input: Any = None,
        now: float = 0.0,
        on_microstep: Callable[[dict[str, Any]], None] | None = None,
    ) -> tuple[Snapshot, list[Effect]]:
        """The initial snapshot and the effects of entering it.

        ``context`` is merged over the definition's ``context``. ``now`` (milliseconds) is
        only used to give delayed events their due time; the step never reads a clock.
        """
        ctx = self._fresh_context()
        if context:
            ctx.update(context)
        key = (events.INIT, input is None)
        root = self._plans.roots.get(key)
        if root is not None:
            step = Step(self.model, self.impl, None, now, replay=True)
            step.context = ctx
            step.on_microstep = on_microstep
            end = self._replay(step, root, _init_event(input))
            if end is not None:
                return step.snapshot(self, end.config), step.effects
        try:
            step = initial_step(self.model, self.impl, ctx, now, input, on_microstep, record=not self._plans.full)
        except Exception as exc:
            raise _step_error(exc, events.INIT, None) from exc
        config = intern_configuration(self.model, tuple(step.nodes))
        if step.rec is not None and step.cacheable:
            self._plans.insert(key, step.rec, End(config, step.microsteps))
        return step.snapshot(self, config), step.effects

    def transition(
        self,
        snapshot: Snapshot,
        event: Any,
        *,
        now: float = 0.0,
        timer: Timer | str | None = None,
        on_microstep: Callable[[dict[str, Any]], None] | None = None,
    ) -> tuple[Snapshot, list[Effect]]:
        """Process one event to completion (a macrostep): ``(next snapshot, effects)``.

        Pure: the input snapshot is never modified, and on any error (a guard or action
        raising, a loop that does not settle) a :class:`~fsm.errors.StepError` is raised
        and nothing has changed. An event nobody handles returns the same snapshot.

        ``timer`` is the pending timer this event comes from (a :class:`Timer`, or its
        id): it is removed from the snapshot. If it is no longer pending (cancelled,
        replaced by a newer timer with the same id, or delivered before), the event is
        stale and is dropped: the same snapshot comes back, with no effects.
        ``on_microstep`` is called with a description of each microstep (for inspection;
        it does not change the result).
        """
        if snapshot[0] is not self and snapshot.model is not self.model:
            raise FsmError(f"this snapshot belongs to machine {snapshot.model.id!r}, not {self.id!r}")
        return self._transition(snapshot, events.normalize(event), now, timer, on_microstep)

    def _transition(
        self,
        snapshot: Snapshot,
        ev: dict[str, Any],
        now: float,
        timer: Timer | str | None,
        on_microstep: Callable[[dict[str, Any]], None] | None,
    ) -> tuple[Snapshot, list[Effect]]:
        """``transition`` for an event already normalised (the runtime's entry point)."""
        if timer is not None:
            pending = _find_timer(snapshot, timer)
            if pending is None:
                return snapshot, []
            snapshot = snapshot.replace(timers=tuple(t for t in snapshot.timers if t is not pending))
        if snapshot[3] != ACTIVE:
            return snapshot, []
        model = self.model
        key = (snapshot[1], ev["type"], _history_key(snapshot[6])) if model.has_history else (snapshot[1], ev["type"])
        root = self._plans.roots.get(key)
        if root is not None:
            if root.static:
                end = root.end
                assert end is not None
                if end.microsteps == 0:
                    return snapshot, []  # recorded: nothing handles this event here
                if on_microstep is not None:
                    for op in root.ops:
                        on_microstep({"event": ev, **op[1]})
                return tuple.__new__(Snapshot, (self, end.config, *snapshot[2:])), []
            if root.lean and on_microstep is None:
                decided: list[tuple[Any, bool]] = []
                try:
                    lean = replay_lean(root, snapshot[2], ev, decided)
                except Exception:  # the slow path decides (and raises)
                    lean = None
                if lean is not None:
                    end, context, effects = lean
                    if end.microsteps == 0:
                        return snapshot, effects
                    return tuple.__new__(Snapshot, (self, end.config, context, *snapshot[3:])), effects
                known = deque(decided)
            else:
                step = Step(model, self.impl, snapshot, now, replay=True)
                step.on_microstep = on_microstep
                end = self._replay(step, root, ev)
                if end is not None:
                    if end.microsteps == 0 and step.status == snapshot[3]:
                        return snapshot, step.effects
                    return step.snapshot(self, end.config), step.effects
                known = step.known
        else:
            known = None
        step = Step(model, self.impl, snapshot, now)
        step.on_microstep = on_microstep
        if known:
            step.known = known
        if not self._plans.full:
            step.rec = []
        try:
            step.macrostep(ev)
        except Exception as exc:
            raise _step_error(exc, ev["type"], step) from exc
        if step.microsteps == 0 and step.status == snapshot[3]:
            if step.rec is not None and step.cacheable:
                self._plans.insert(key, step.rec, End(snapshot[1], 0))
            return snapshot, step.effects
        config = intern_configuration(model, tuple(step.nodes))
        if step.rec is not None and step.cacheable:
            self._plans.insert(key, step.rec, End(config, step.microsteps))
        return step.snapshot(self, config), step.effects

    @staticmethod
    def _replay(step: Step, root: Node, event: dict[str, Any]) -> End | None:
        try:
            return replay_plan(step, root, event)
        except Exception:  # anything unexpected: the slow path decides (and raises)
            return None

    def fire(self, snapshot: Snapshot, timer: Timer, *, now: float | None = None) -> tuple[Snapshot, list[Effect]]:
        """Deliver a pending timer (at its due time unless ``now`` is given). A timer for
        another actor is removed and returned as an ``xstate.sendTo`` effect to deliver."""
        if timer.to is not None:
            pending = _find_timer(snapshot, timer)
            if pending is None:
                return snapshot, []
            rest = snapshot.replace(timers=tuple(t for t in snapshot.timers if t is not pending))
            params = {"to": timer.to, "event": dict(timer.event), "id": timer.id}
            return rest, [Effect("xstate.sendTo", params, snapshot.context, dict(timer.event), True)]
        return self.transition(snapshot, dict(timer.event), now=timer.due if now is None else now, timer=timer)

    def advance(self, snapshot: Snapshot, until: float) -> tuple[Snapshot, list[Effect]]:
        """Fire, purely, every timer due up to ``until`` (ms), earliest first (ties in
        the order they were armed), each as its own macrostep at its due time, including
        timers armed along the way. Returns the final snapshot and all effects."""
        effects: list[Effect] = []
        for _ in range(100_000):
            due = [t for t in snapshot.timers if t.due <= until]
            if not due or snapshot.status != ACTIVE:
                return snapshot, effects
            first = min(due, key=lambda t: (t.due, t.seq))
            snapshot, more = self.fire(snapshot, first)
            effects.extend(more)
        raise FsmError(f"more than 100000 timers fired before t={until} ms: a zero-delay timer keeps re-arming itself")

    def _fresh_context(self) -> dict[str, Any]:
        """A copy of the definition's context for a new instance; nested values are
        copied too, so no two instances (nor the definition) share a mutable object."""
        base = self.model.context
        if self._nested_context:
            return copy.deepcopy(base)
        return dict(base)

    def enabled_transitions(self, snapshot: Snapshot, event: Any) -> list[Transition]:
        """The transitions this event would select now (guards evaluated, nothing run)."""
        step = Step(self.model, self.impl, snapshot, 0.0)
        return step.select_transitions(events.normalize(event))

    def error_snapshot(
        self, snapshot: Snapshot | None, error: BaseException, context: Mapping[str, Any] | None = None
    ) -> Snapshot:
        """The snapshot an actor keeps after a failed step: the last good one (or, when
        the initial step failed, the default configuration) with status ``error``."""
        if snapshot is None:
            nodes = tuple(n for n in initial_targets(self.model.root) if n.type != "history")
            ctx = self._fresh_context()
            if context:
                ctx.update(context)
            return Snapshot(self, nodes, ctx, ERROR, None, error)
        return snapshot.replace(status=ERROR, error=error)

    # -- persistence and runtime -------------------------------------------------------

    def snapshot_from_dict(self, data: Mapping[str, Any]) -> Snapshot:
        """Rebuild a snapshot saved with ``snapshot.to_dict()``, validated against this
        machine (unknown state ids or an illegal configuration are refused)."""
        return snapshot_from_dict(self, data)

    def start(
        self,
        context: Mapping[str, Any] | None = None,
        *,
        clock: Clock | None = None,
        input: Any = None,
        executor: Executor | str | None = None,
        inspect: Callable[[dict[str, Any]], None] | None = None,
        logger: Callable[..., None] | None = None,
        id: str | None = None,
        store: SQLStore | None = None,
        instance_id: str | None = None,
    ) -> Actor:
        """Start a live, synchronous actor (see docs/runtime.md).

        ``clock``: where time comes from (the real clock by default, ``fsm.VirtualClock()``
        in tests). ``executor``: where plain-callable services run (a thread pool by
        default; ``"inline"`` runs them right after the step, deterministically; or any
        ``concurrent.futures.Executor``). ``inspect``: receives every event, action,
        snapshot and error. ``logger``: receives ``log`` actions. Missing
        implementations are reported here, all at once, by name.

        With ``store`` (and ``instance_id``), the instance is durable: created in the store
        (an existing id is refused) and every step committed before its effects run
        (docs/persistence.md).
        """
        from fsm.runtime.actor import Actor

        self.check_implementations()
        if store is not None:
            from fsm.runtime.durable import start_durable

            if not instance_id:
                raise FsmError("a durable instance needs an instance_id")
            return start_durable(
                self,
                store,
                instance_id,
                context=context,
                input=input,
                clock=clock,
                executor=executor,
                inspect=inspect,
                logger=logger,
            )
        actor = Actor(
            self, context=context, clock=clock, input=input, executor=executor, inspect=inspect, logger=logger, id=id
        )
        actor.start()
        return actor

    def restore(
        self,
        data: Mapping[str, Any] | Snapshot,
        *,
        clock: Clock | None = None,
        executor: Executor | str | None = None,
        inspect: Callable[[dict[str, Any]], None] | None = None,
        logger: Callable[..., None] | None = None,
        id: str | None = None,
    ) -> Actor:
        """Resume an actor from a persisted snapshot: pending timers are re-armed and
        running invocations restarted with their recorded input (services run at least
        once)."""
        from fsm.runtime.actor import Actor

        self.check_implementations()
        if isinstance(data, Snapshot) and data.model is self.model:
            snapshot = data
        else:  # a persisted dict, or a snapshot of another Machine object: validate it here
            snapshot = self.snapshot_from_dict(data.to_dict() if isinstance(data, Snapshot) else data)
        actor = Actor(self, snapshot=snapshot, clock=clock, executor=executor, inspect=inspect, logger=logger, id=id)
        actor.start()
        return actor

    def resume(
        self,
        store: SQLStore,
        instance_id: str,
        *,
        allow_version_change: bool = False,
        migrate: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        clock: Clock | None = None,
        executor: Executor | str | None = None,
        inspect: Callable[[dict[str, Any]], None] | None = None,
        logger: Callable[..., None] | None = None,
    ) -> DurableActor:
        """Resume a durable instance from the store as a live actor: timers re-armed,
        running invocations restarted, effects left unfinished by a crash run again.

        An instance started with another version of this definition is refused unless
        ``allow_version_change=True`` or a ``migrate(snapshot_dict) -> snapshot_dict``
        is given.
        """
        from fsm.runtime.durable import resume_durable

        self.check_implementations()
        return resume_durable(
            self,
            store,
            instance_id,
            allow_version_change=allow_version_change,
            migrate=migrate,
            clock=clock,
            executor=executor,
            inspect=inspect,
            logger=logger,
        )

    def _repr_svg_(self) -> str | None:
        """Jupyter shows a machine as its diagram (when Graphviz's ``dot`` is installed)."""
        from fsm.export import repr_svg

        return repr_svg(self)

    def __repr__(self) -> str:
        return f"<Machine {self.id!r} ({len(self.model.nodes)} states)>"


def _structural_problems(definition: Any, known: list[Problem]) -> list[Problem]:
    """Structural problems of a definition the schema already rejected, so one run
    reports everything it can. The builder may trip over the malformed parts; then only
    the schema's problems are reported."""
    from fsm import schema as schema_mod

    if not isinstance(definition, Mapping) or _deeper_than(definition, schema_mod.MAX_DEPTH):
        return []
    try:
        build_model(copy.deepcopy(dict(definition)))
    except DefinitionError as exc:
        seen = {p.path for p in known}
        return [p for p in exc.problems if p.path not in seen]
    except Exception:
        return []
    return []


def _deeper_than(document: Any, limit: int) -> bool:
    stack = [(document, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return False


def _init_event(input_: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"type": events.INIT}
    if input_ is not None:
        event["input"] = input_
    return event


def _history_key(history: Mapping[str, tuple[StateNode, ...]]) -> Any:
    if not history:
        return ()
    return tuple(sorted((k, tuple(n.order for n in v)) for k, v in history.items()))


def _find_timer(snapshot: Snapshot, timer: Timer | str) -> Timer | None:
    if isinstance(timer, Timer):
        return next((t for t in snapshot.timers if t.id == timer.id and t.seq == timer.seq), None)
    return next((t for t in snapshot.timers if t.id == timer), None)


def _step_error(exc: Exception, event_type: str, step: Step | None) -> StepError:
    if isinstance(exc, StepError):
        err = exc
    elif isinstance(exc, FsmError):
        err = StepError(str(exc), event_type=event_type, cause=exc)
    else:
        err = StepError(
            f"{type(exc).__name__} while processing {event_type!r}: {exc}", event_type=event_type, cause=exc
        )
    err.effects = list(step.effects) if step is not None else []
    return err
