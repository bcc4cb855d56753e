"""Every error fsm raises on purpose derives from :class:`FsmError`.

Errors carry structured attributes (the JSON path, the state id, the event type) as well
as a readable message, so that a CLI can print them and a program can act on them without
parsing text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class FsmError(Exception):
    """Base class of every error raised by fsm itself."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a machine definition, located by its JSON path.

    ``path`` is the dotted form a person reads (``states.checkout.on.PAY[1].target``);
    ``pointer`` is the same place as a tuple of keys and indexes for programs.
    """

    path: str
    message: str
    pointer: tuple[str | int, ...] = ()

    def __str__(self) -> str:
        return f"{self.path or '<root>'}: {self.message}"


def format_path(pointer: tuple[str | int, ...] | list[str | int]) -> str:
    """Render a key/index path as ``states.a.on.EV[0].target``.

    Keys that are not plain identifiers-with-dots are quoted so the path stays unambiguous
    (``on["order.*"]``).
    """
    out: list[str] = []
    for part in pointer:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif part and all(c.isalnum() or c in "_-$" for c in part):
            out.append(("." if out else "") + part)
        else:
            out.append(f"[{part!r}]".replace("'", '"'))
    return "".join(out)


class DefinitionError(FsmError):
    """A machine definition is invalid. ``problems`` lists every problem found, not just
    the first, so one run of ``fsm validate`` shows everything to fix."""

    def __init__(self, problems: list[Problem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        lines = [f"invalid machine definition{where} ({len(self.problems)} problem(s)):"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class LoadError(DefinitionError):
    """The document could not be read or parsed (bad JSON/YAML, too deep, not a mapping)."""


class ImplementationError(FsmError):
    """Actions, guards, services or delays referenced by the machine are not provided.

    Raised when a machine is started (or a transition needs one), listing every missing
    name with the places that reference it.
    """

    def __init__(self, missing: dict[str, dict[str, list[str]]], machine_id: str = "") -> None:
        self.missing = missing
        lines = [f"machine {machine_id!r} references implementations that were not provided:"]
        for kind, names in missing.items():
            for name, places in names.items():
                lines.append(f"  - {kind[:-1]} {name!r} (used at {', '.join(places)})")
        lines.append("provide them with machine.provide(actions=..., guards=..., services=..., delays=...)")
        super().__init__("\n".join(lines))


class ExpressionError(FsmError):
    """An expression in the safe expression language is refused or fails to evaluate."""

    def __init__(self, message: str, expression: str = "", path: str = "") -> None:
        self.expression = expression
        self.path = path
        where = f" at {path}" if path else ""
        super().__init__(f"expression {expression!r}{where}: {message}")


class StepError(FsmError):
    """A guard, action or assignment raised while processing an event.

    The snapshot the step started from is unchanged (snapshots are immutable values); an
    actor moves to status ``error`` keeping that snapshot's value and context, as XState v5
    does. ``cause`` holds the original exception.
    """

    def __init__(
        self,
        message: str,
        *,
        state_id: str | None = None,
        event_type: str | None = None,
        kind: str = "error",
        cause: BaseException | None = None,
    ) -> None:
        self.state_id = state_id
        self.event_type = event_type
        self.kind = kind
        self.cause = cause
        # Effects resolved before the failure. A runtime runs the custom actions among
        # them, as XState v5 does (they execute as the step proceeds there).
        self.effects: list[Any] = []
        super().__init__(message)


class InfiniteLoopError(StepError):
    """A macrostep did not settle within the microstep bound (an eventless or raise loop)."""

    def __init__(self, bound: int, state_ids: list[str], event_type: str) -> None:
        self.bound = bound
        self.state_ids = state_ids
        states = ", ".join(f"#{s}" for s in state_ids)
        super().__init__(
            f"event {event_type!r} did not settle after {bound} microsteps; "
            f"the last ones were taken from {states}. Check the guards of the `always` "
            "transitions and raised events between them, or, for a long but finite chain, "
            "raise the bound with max_microsteps=...",
            event_type=event_type,
            kind="loop",
        )


class EventError(FsmError):
    """An event is malformed (no string ``type``, reserved type, not a mapping)."""

    def __init__(self, message: str, event: Any = None) -> None:
        self.event = event
        super().__init__(message)


class SnapshotError(FsmError):
    """A persisted snapshot does not fit the machine it is restored into."""
