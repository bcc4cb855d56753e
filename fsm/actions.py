"""Built-in actions: pure ``resolve`` now, side effects later.

As in XState v5, a built-in action is resolved during the step (``assign`` computes the new
context, ``raise`` queues an internal event, a delayed ``raise`` records a timer) and may
leave an effect for the runtime to execute afterwards (``log`` prints, ``emit`` notifies
listeners, ``sendTo`` delivers). The step function never executes effects itself, which is
what keeps it pure and replayable.

The same classes back the JSON forms (``{"type": "assign", "assignment": {...}}``) and the
Python creators (``fsm.assign(...)``) so both spellings behave identically.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from fsm.expressions import compile_value

# The one calling convention for every implementation: f(context, event, params).
Impl = Callable[[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]], Any]


class ActionScope(Protocol):
    """What a built-in action may do while a step is being computed."""

    context: dict[str, Any]
    event: Mapping[str, Any]

    def assign(self, updates: Mapping[str, Any]) -> None: ...
    def raise_internal(self, event: dict[str, Any]) -> None: ...
    def schedule(self, event: dict[str, Any], delay: Any, send_id: str | None, to: str | None) -> None: ...
    def cancel(self, send_id: str) -> None: ...
    def effect(self, type_: str, params: dict[str, Any]) -> None: ...
    def stop_child(self, child_id: str) -> None: ...


class Value:
    """A field of a built-in action: a constant, an ``{"expr": ...}`` value, or a callable.

    Callables follow the one convention ``f(context, event, params)``.
    """

    __slots__ = ("constant", "expr", "fn")

    def __init__(self, value: Any, path: str = "") -> None:
        self.constant: Any = value
        self.fn: Impl | None = None
        self.expr = None
        if callable(value):
            self.fn = value
        else:
            self.expr = compile_value(value, path)

    def get(self, context: Mapping[str, Any], event: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
        if self.fn is not None:
            return self.fn(context, event, params)
        if self.expr is not None:
            return self.expr({"context": context, "event": event, "params": params})
        return self.constant


def _event_value(event: Any, path: str) -> Value:
    if isinstance(event, str):
        event = {"type": event}
    return Value(event, path)


class BuiltinAction:
    """Base of the built-in actions. ``type`` is the XState action type it mirrors."""

    type = "xstate.builtin"
    __slots__ = ()

    def resolve(self, scope: ActionScope, params: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def names(self) -> list[tuple[str, str]]:
        """(kind, name) references this action needs from the implementations."""
        return []

    def __repr__(self) -> str:
        return f"<{self.type}>"


class Assign(BuiltinAction):
    """``assign``: the only way context changes, so a step can be replayed exactly."""

    type = "xstate.assign"
    __slots__ = ("per_key", "whole")

    def __init__(self, assignment: Any, path: str = "") -> None:
        self.whole: Value | None = None
        self.per_key: list[tuple[str, Value]] | None = None
        if callable(assignment):
            self.whole = Value(assignment)
        elif isinstance(assignment, Mapping):
            self.per_key = [(k, Value(v, f"{path}.{k}")) for k, v in assignment.items()]
        else:
            raise TypeError("assign() takes a function returning a dict of updates, or a dict")

    def updates(
        self, ctx: Mapping[str, Any], ev: Mapping[str, Any], params: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        if self.whole is not None:
            updates = self.whole.get(ctx, ev, params)
            # `type(...) is dict` first: the ABC isinstance check costs more than the
            # whole context merge, and assign functions return plain dicts.
            if updates is not None and type(updates) is not dict and not isinstance(updates, Mapping):
                raise _not_updates(updates)
            return updates
        assert self.per_key is not None
        return {k: v.get(ctx, ev, params) for k, v in self.per_key}

    def resolve(self, scope: ActionScope, params: Mapping[str, Any]) -> None:
        updates = self.updates(scope.context, scope.event, params)
        if updates is not None:
            scope.assign(updates)

    def updated(self, ctx: dict[str, Any], ev: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        """The context after this assignment (a new dict; ``ctx`` is left as it was):
        for replays that keep the context in a local instead of a step."""
        whole = self.whole
        if whole is None:
            assert self.per_key is not None
            return {**ctx, **{k: v.get(ctx, ev, params) for k, v in self.per_key}}
        updates = whole.get(ctx, ev, params)
        if type(updates) is dict:
            return {**ctx, **updates}
        if updates is None:
            return ctx
        if not isinstance(updates, Mapping):
            raise _not_updates(updates)
        return {**ctx, **updates}


def _not_updates(updates: Any) -> TypeError:
    return TypeError(f"an assign function must return a dict of updates, got {type(updates).__name__}")


class Raise(BuiltinAction):
    """``raise``: an internal event (same macrostep) or, with a delay, a timer to self."""

    type = "xstate.raise"
    __slots__ = ("delay", "event", "id")

    def __init__(self, event: Any, delay: Any = None, id: str | None = None, path: str = "") -> None:
        self.event = _event_value(event, f"{path}.event")
        self.delay = None if delay is None else Value(delay, f"{path}.delay")
        self.id = id

    def resolve(self, scope: ActionScope, params: Mapping[str, Any]) -> None:
        event = self.event.get(scope.context, scope.event, params)
        if self.delay is None:
            scope.raise_internal(event)
        else:
            delay = self.delay.get(scope.context, scope.event, params)
            scope.schedule(event, delay, self.id, None)

    def names(self) -> list[tuple[str, str]]:
        if self.delay is not None and isinstance(self.delay.constant, str):
            return [("delay", self.delay.constant)]
        return []


class SendTo(BuiltinAction):
    """``sendTo`` / ``sendParent``: an event to another actor, now or after a delay."""

    type = "xstate.sendTo"
    __slots__ = ("delay", "event", "id", "to")

    def __init__(self, to: str, event: Any, delay: Any = None, id: str | None = None, path: str = "") -> None:
        self.to = to
        self.event = _event_value(event, f"{path}.event")
        self.delay = None if delay is None else Value(delay, f"{path}.delay")
        self.id = id

    def resolve(self, scope: ActionScope, params: Mapping[str, Any]) -> None:
        event = self.event.get(scope.context, scope.event, params)
        if self.delay is None:
            scope.effect(self.type, {"to": self.to, "event": event, "id": self.id})
        else:
            delay = self.delay.get(scope.context, scope.event, params)
            scope.schedule(event, delay, self.id, self.to)

    def names(self) -> list[tuple[str, str]]:
        if self.delay is not None and isinstance(self.delay.constant, str):
            return [("delay", self.delay.constant)]
        return []


PARENT = "#_parent"


class Cancel(BuiltinAction):
    """``cancel``: drop a pending delayed event by its id."""

    type = "xstate.cancel"
    __slots__ = ("id",)

    def __init__(self, id: Any, path: str = "") -> None:
        self.id = Value(id, f"{path}.id")

    def resolve(self, scope: ActionScope, params: Mapping[str, Any]) -> None:
        scope.cancel(str(self.id.get(scope.context, scope.event, params)))


class Log(BuiltinAction):
    """``log``: resolved now (so the logged value is the context at that point), printed later."""

    type = "xstate.log"
    __slots__ = ("label", "message")

    def __init__(self, message: Any = None, label: str | None = None, path: str = "") -> None:
        self.message = None if message is None else Value(message, f"{path}.message")
        self.label = label

    def resolve(self, scope: ActionScope, params: Mapping[str, Any]) -> None:
        if self.message is None:
            value: Any = {"context": scope.context, "event": dict(scope.event)}
        else:
            value = self.message.get(scope.context, scope.event, params)
        scope.effect(self.type, {"value": value, "label": self.label})


class Emit(BuiltinAction):
    """``emit``: an event for the actor's listeners (``actor.on(type, handler)``)."""

    type = "xstate.emit"
    __slots__ = ("event",)

    def __init__(self, event: Any, path: str = "") -> None:
        self.event = _event_value(event, f"{path}.event")

    def resolve(self, scope: ActionScope, params: Mapping[str, Any]) -> None:
        scope.effect(self.type, {"event": self.event.get(scope.context, scope.event, params)})


class StopChild(BuiltinAction):
    """``stopChild``: stop an invoked or spawned child actor by id."""

    type = "xstate.stopChild"
    __slots__ = ("id",)

    def __init__(self, id: Any, path: str = "") -> None:
        self.id = Value(id, f"{path}.id")

    def resolve(self, scope: ActionScope, params: Mapping[str, Any]) -> None:
        scope.stop_child(str(self.id.get(scope.context, scope.event, params)))


# --- Python creators (the names users import from fsm) --------------------------------


def assign(assignment: Impl | Mapping[str, Any]) -> Assign:
    """Context update: ``assign(lambda ctx, ev, params: {"n": ctx["n"] + 1})`` or
    ``assign({"n": lambda ctx, ev, params: ctx["n"] + 1, "status": "ok"})``."""
    return Assign(assignment)


def raise_event(event: Any, *, delay: Any = None, id: str | None = None) -> Raise:
    """Raise an event to this machine: internal (same macrostep) or after ``delay`` ms."""
    return Raise(event, delay, id)


def send_to(to: str, event: Any, *, delay: Any = None, id: str | None = None) -> SendTo:
    """Send an event to a child actor (by invoke id), now or after ``delay`` ms."""
    return SendTo(to, event, delay, id)


def send_parent(event: Any, *, delay: Any = None, id: str | None = None) -> SendTo:
    """Send an event to the actor that invoked this machine."""
    return SendTo(PARENT, event, delay, id)


def cancel(id: Any) -> Cancel:
    """Cancel a pending delayed event (``raise_event``/``send_to`` with the same ``id``)."""
    return Cancel(id)


def log(message: Any = None, label: str | None = None) -> Log:
    """Log a value (or the context and event when no message is given)."""
    return Log(message, label)


def emit(event: Any) -> Emit:
    """Emit an event to the listeners registered with ``actor.on(type, handler)``."""
    return Emit(event)


def stop_child(id: Any) -> StopChild:
    """Stop a child actor."""
    return StopChild(id)


BUILTIN_TYPES = ("assign", "raise", "sendTo", "sendParent", "cancel", "log", "emit", "stopChild")


def from_json(spec: Mapping[str, Any], path: str) -> BuiltinAction:
    """Build a built-in action from its JSON form (already schema-validated)."""
    kind = spec["type"]
    if kind == "assign":
        return Assign(spec["assignment"], f"{path}.assignment")
    if kind == "raise":
        return Raise(spec["event"], spec.get("delay"), spec.get("id"), path)
    if kind == "sendTo":
        return SendTo(spec["to"], spec["event"], spec.get("delay"), spec.get("id"), path)
    if kind == "sendParent":
        return SendTo(PARENT, spec["event"], spec.get("delay"), spec.get("id"), path)
    if kind == "cancel":
        return Cancel(spec["id"], path)
    if kind == "log":
        return Log(spec.get("message"), spec.get("label"), path)
    if kind == "emit":
        return Emit(spec["event"], path)
    if kind == "stopChild":
        return StopChild(spec["id"], path)
    raise ValueError(f"unknown built-in action {kind!r}")
