"""Guards as data: named references, combinators and expressions.

A guard in a definition is a name (``"canRetry"``), a name with params
(``{"type": "canRetry", "params": {"max": 3}}``), a combinator (``and`` / ``or`` / ``not``),
``stateIn``, or a safe expression (``{"expr": "context.n < 3"}``). They compile to the
small tree below; named guards are looked up in the machine's implementations when
evaluated, exactly like XState's ``setup({guards})``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fsm.expressions import Expression


class Guard:
    """Base class. ``evaluate`` is given a lookup for named guards and a stateIn check."""

    __slots__ = ()

    def names(self) -> list[str]:
        """Names of the implementations this guard needs."""
        return []

    def label(self) -> str:
        """Short text used in diagrams and error messages."""
        return "?"


class Named(Guard):
    __slots__ = ("name", "params")

    def __init__(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.params: Mapping[str, Any] = params or {}

    def names(self) -> list[str]:
        return [self.name]

    def label(self) -> str:
        return self.name


class And(Guard):
    __slots__ = ("guards",)

    def __init__(self, guards: list[Guard]) -> None:
        self.guards = guards

    def names(self) -> list[str]:
        return [n for g in self.guards for n in g.names()]

    def label(self) -> str:
        return " && ".join(_paren(g) for g in self.guards)


class Or(Guard):
    __slots__ = ("guards",)

    def __init__(self, guards: list[Guard]) -> None:
        self.guards = guards

    def names(self) -> list[str]:
        return [n for g in self.guards for n in g.names()]

    def label(self) -> str:
        return " || ".join(_paren(g) for g in self.guards)


class Not(Guard):
    __slots__ = ("guard",)

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    def names(self) -> list[str]:
        return self.guard.names()

    def label(self) -> str:
        return "!" + _paren(self.guard)


class StateIn(Guard):
    """True when the machine is in the given state (``#id`` or a state value)."""

    __slots__ = ("state",)

    def __init__(self, state: str | Mapping[str, Any]) -> None:
        self.state = state

    def label(self) -> str:
        return f"in {self.state}"


class Expr(Guard):
    __slots__ = ("expression",)

    def __init__(self, source: str, path: str = "") -> None:
        self.expression = Expression(source, path)

    def label(self) -> str:
        return self.expression.source


class Inline(Guard):
    """A Python callable used directly as a guard (``f(context, event, params)``)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def label(self) -> str:
        return getattr(self.fn, "__name__", "inline")


def _paren(g: Guard) -> str:
    text = g.label()
    return f"({text})" if isinstance(g, (And, Or)) else text


def from_json(spec: Any, path: str) -> Guard:
    """Build a guard from its JSON form (already schema-validated)."""
    if isinstance(spec, str):
        return Named(spec)
    if "expr" in spec:
        return Expr(spec["expr"], path)
    kind = spec["type"]
    if kind in ("and", "or") and "guards" in spec:
        parts = [from_json(g, f"{path}.guards[{i}]") for i, g in enumerate(spec["guards"])]
        return And(parts) if kind == "and" else Or(parts)
    if kind == "not" and "guard" in spec:
        return Not(from_json(spec["guard"], f"{path}.guard"))
    if kind == "stateIn" and "state" in spec:
        return StateIn(spec["state"])
    return Named(kind, spec.get("params"))


# Python creators, for use in ``machine.provide(guards=...)`` and in tests.


def and_(guards: list[Any]) -> And:
    """All guards must pass (names, guard objects or callables)."""
    return And([coerce(g) for g in guards])


def or_(guards: list[Any]) -> Or:
    """At least one guard must pass."""
    return Or([coerce(g) for g in guards])


def not_(guard: Any) -> Not:
    """The guard must fail."""
    return Not(coerce(guard))


def state_in(state: str | Mapping[str, Any]) -> StateIn:
    """The machine must be in ``state`` (``"#id"`` or a state value like ``"a.b"``)."""
    return StateIn(state)


def coerce(value: Any) -> Guard:
    if isinstance(value, Guard):
        return value
    if isinstance(value, str):
        return Named(value)
    if callable(value):
        return Inline(value)
    return from_json(value, "")
