"""``fsm.Machine``: a validated definition plus its implementations.

A Machine is immutable: :meth:`Machine.provide` returns a new one sharing the compiled
model. Its two pure methods, :meth:`initial_transition` and :meth:`transition`, are the
whole semantics; :meth:`start` hands the machine to a runtime actor that executes the
effects they return.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsm import loading
from fsm import schema as schema_mod
from fsm.errors import DefinitionError, FsmError, ImplementationError, StepError
from fsm.model.build import build_model
from fsm.model.nodes import Model, StateNode, Transition
from fsm.semantics import events
from fsm.semantics.algorithm import Implementations, Step, initial_step, initial_targets
from fsm.semantics.snapshot import ACTIVE, ERROR, Effect, Snapshot, snapshot_from_dict

if TYPE_CHECKING:
    from fsm.runtime.actor import Actor
    from fsm.runtime.clock import Clock

KINDS = {"action": "actions", "guard": "guards", "delay": "delays", "service": "services"}


class Machine:
    """A statechart definition compiled and ready to run."""

    __slots__ = ("_version", "impl", "model", "source")

    def __init__(self, model: Model, impl: Implementations | None = None, source: str | None = None) -> None:
        self.model = model
        self.impl = impl or Implementations()
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
        problems = schema_mod.validate(definition)
        if problems:
            raise DefinitionError(problems, source)
        try:
            model = build_model(json.loads(json.dumps(definition)), max_microsteps)
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

    def missing_implementations(self) -> dict[str, list[str]]:
        """``{"guard 'x'": [paths...]}`` for every referenced name not provided."""
        missing: dict[str, list[str]] = {}
        for (kind, name), places in self.model.references.items():
            provided: Mapping[str, Any] = getattr(self.impl, KINDS[kind])
            if name not in provided:
                missing[f"{kind} {name!r}"] = places
        return missing

    def check_implementations(self) -> None:
        missing = self.missing_implementations()
        if missing:
            raise ImplementationError(missing, self.id)

    # -- the pure step -----------------------------------------------------------------

    def initial_transition(
        self, context: Mapping[str, Any] | None = None, *, input: Any = None, now: float = 0.0
    ) -> tuple[Snapshot, list[Effect]]:
        """The initial snapshot and the effects of entering it.

        ``context`` is merged over the definition's ``context``. ``now`` (milliseconds) is
        only used to give delayed events their due time; the step never reads a clock.
        """
        ctx = dict(self.model.context)
        if context:
            ctx.update(context)
        try:
            step = initial_step(self.model, self.impl, ctx, now, input)
        except Exception as exc:
            raise _step_error(exc, events.INIT, None) from exc
        return step.snapshot(self), step.effects

    def transition(
        self, snapshot: Snapshot, event: Any, *, now: float = 0.0, timer: str | None = None
    ) -> tuple[Snapshot, list[Effect]]:
        """Process one event to completion (a macrostep): ``(next snapshot, effects)``.

        Pure: the input snapshot is never modified, and on any error (a guard or action
        raising, a loop that does not settle) a :class:`~fsm.errors.StepError` is raised
        and nothing has changed. An event nobody handles returns the same snapshot.
        ``timer`` names the pending timer this event comes from; it is removed.
        """
        ev = events.normalize(event)
        if snapshot.machine is not self and snapshot.model is not self.model:
            raise FsmError(f"this snapshot belongs to machine {snapshot.model.id!r}, not {self.id!r}")
        if timer is not None:
            remaining = tuple(t for t in snapshot.timers if t.id != timer)
            if len(remaining) != len(snapshot.timers):
                snapshot = snapshot.replace(timers=remaining)
        if snapshot.status != ACTIVE:
            return snapshot, []
        step = Step(self.model, self.impl, snapshot, now)
        try:
            step.macrostep(ev)
        except Exception as exc:
            raise _step_error(exc, ev["type"], step) from exc
        if step.microsteps == 0 and step.status == snapshot.status:
            return snapshot, step.effects
        return step.snapshot(self), step.effects

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
            ctx = dict(self.model.context)
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
        **options: Any,
    ) -> Actor:
        """Start a live actor (see :mod:`fsm.runtime`). Missing implementations are
        reported here, all at once, by name."""
        from fsm.runtime.actor import Actor

        self.check_implementations()
        actor = Actor(self, context=context, clock=clock, input=input, **options)
        actor.start()
        return actor

    def restore(self, data: Mapping[str, Any] | Snapshot, *, clock: Clock | None = None, **options: Any) -> Actor:
        """Resume an actor from a persisted snapshot, re-arming its pending timers."""
        from fsm.runtime.actor import Actor

        self.check_implementations()
        snapshot = data if isinstance(data, Snapshot) else self.snapshot_from_dict(data)
        actor = Actor(self, snapshot=snapshot, clock=clock, **options)
        actor.start()
        return actor

    def __repr__(self) -> str:
        return f"<Machine {self.id!r} ({len(self.model.nodes)} states)>"


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
