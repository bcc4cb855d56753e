"""The differential-testing convention (docs/conformance.md), implemented for fsm.

Machines used to compare fsm with XState reference actions and guards by name only; this
module supplies fsm implementations that behave exactly like the ones
``tools/xstate/oracle.mjs`` supplies to XState (including JavaScript's ``===`` and ``??``),
and runs a case to produce a trace in the oracle's format.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from fsm.actions import assign
from fsm.errors import FsmError, InfiniteLoopError, StepError
from fsm.machine import Machine
from fsm.runtime.clock import VirtualClock
from fsm.semantics.snapshot import Snapshot

ASSIGN_ACTIONS = ("inc", "set", "setFromEvent")
BUILTIN_ACTIONS = ("raise", "cancel", "emit", "assign", "sendTo", "sendParent", "log", "stopChild")


def _nullish(value: Any, default: Any) -> Any:
    return default if value is None else value


def js_strict_equal(a: Any, b: Any) -> bool:
    """JavaScript ``a === b`` for JSON values: objects and arrays are never equal
    (distinct references), booleans never equal numbers."""
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _inc(ctx: Mapping[str, Any], ev: Mapping[str, Any], p: Mapping[str, Any]) -> dict[str, Any]:
    return {p["key"]: _nullish(ctx.get(p["key"]), 0) + _nullish(p.get("by"), 1)}


def _set(ctx: Mapping[str, Any], ev: Mapping[str, Any], p: Mapping[str, Any]) -> dict[str, Any]:
    return {p["key"]: p.get("value")}


def _set_from_event(ctx: Mapping[str, Any], ev: Mapping[str, Any], p: Mapping[str, Any]) -> dict[str, Any]:
    return {p["key"]: _nullish(ev.get(p["field"]), None)}


GUARDS: dict[str, Any] = {
    "ctxLt": lambda c, e, p: _nullish(c.get(p["key"]), 0) < p["value"],
    "ctxGe": lambda c, e, p: _nullish(c.get(p["key"]), 0) >= p["value"],
    "ctxEq": lambda c, e, p: js_strict_equal(_nullish(c.get(p["key"]), None), p.get("value")),
    "eventEq": lambda c, e, p: js_strict_equal(e.get(p["field"]), p.get("value")),
    "yes": lambda c, e, p: True,
    "no": lambda c, e, p: False,
}


def action_names(definition: Any) -> set[str]:
    """Every named (non built-in) action referenced anywhere in a definition."""
    names: set[str] = set()
    stack = [definition]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in ("entry", "exit", "actions"):
                refs = node.get(key)
                if refs is None:
                    continue
                for ref in refs if isinstance(refs, list) else [refs]:
                    if isinstance(ref, str):
                        names.add(ref)
                    elif isinstance(ref, dict) and ref.get("type") not in (None, *BUILTIN_ACTIONS):
                        names.add(str(ref["type"]))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return names


class Recorder:
    """Collects what the convention's recording actions and ``emit`` do, per step."""

    def __init__(self) -> None:
        self.actions: list[dict[str, Any]] = []
        self.emitted: list[dict[str, Any]] = []

    def take(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        actions, emitted = self.actions, self.emitted
        self.actions, self.emitted = [], []
        return actions, emitted

    def action(self, name: str) -> Any:
        def record(ctx: Any, ev: Any, params: Any) -> None:
            self.actions.append({"type": name, "params": params if params else None})

        record.__name__ = name
        return record


def provide(machine: Machine, recorder: Recorder) -> Machine:
    """The machine with the convention's implementations."""
    actions: dict[str, Any] = {"inc": assign(_inc), "set": assign(_set), "setFromEvent": assign(_set_from_event)}
    for name in action_names(machine.definition):
        if name not in ASSIGN_ACTIONS:
            actions[name] = recorder.action(name)
    return machine.provide(actions=actions, guards=GUARDS)


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _entry(snapshot: Snapshot, recorder: Recorder, error: BaseException | None) -> dict[str, Any]:
    actions, emitted = recorder.take()
    kind = None
    if snapshot.status == "error":
        cause = error if error is not None else snapshot.error
        kind = "loop" if isinstance(cause, InfiniteLoopError) else "error"
    return {
        "value": _json(snapshot.value),
        "context": _json(snapshot.context),
        "actions": actions,
        "emitted": _json(emitted),
        "status": snapshot.status,
        "output": _json(snapshot.output),
        "error": kind,
    }


def run_case(case: Mapping[str, Any]) -> dict[str, Any]:
    """Run one conformance case through fsm; same result shape as the XState oracle."""
    try:
        return {"id": case.get("id"), "trace": list(iter_trace(case))}
    except FsmError as exc:
        return {"id": case.get("id"), "fatal": str(exc)}


def prepare(case: Mapping[str, Any]) -> tuple[Machine, Recorder]:
    """The case's machine with the convention's implementations, and their recorder."""
    machine = Machine.from_dict(case["machine"], max_microsteps=case.get("maxIterations"))
    recorder = Recorder()
    return provide(machine, recorder), recorder


def iter_trace(case: Mapping[str, Any], prepared: tuple[Machine, Recorder] | None = None) -> Iterator[dict[str, Any]]:
    """The trace of a case. ``prepared`` reuses a machine (and its recorded steps)."""
    machine, recorder = prepared or prepare(case)
    recorder.take()
    clock = VirtualClock()
    errors: list[BaseException] = []
    from fsm.runtime.actor import Actor

    actor = Actor(machine, context=case.get("context"), clock=clock, executor="inline", logger=lambda *a: None)
    actor.on("*", lambda ev: recorder.emitted.append(ev))
    actor.subscribe(None, errors.append)
    actor.start()
    yield _entry(actor.snapshot, recorder, errors[-1] if errors else None)
    for step in case.get("steps", []):
        if actor.snapshot.status == "active":
            if "event" in step:
                event = step["event"]
                # a bare type goes as a string: the form Actor.send's fastest path takes,
                # so the differential test covers it too
                actor.send(event["type"] if event.keys() == {"type"} else event)
            else:
                clock.advance(float(step["advance"]), max_fires=10_000)
        else:
            recorder.take()
        yield _entry(actor.snapshot, recorder, errors[-1] if errors else None)


__all__ = [
    "GUARDS",
    "Recorder",
    "StepError",
    "action_names",
    "iter_trace",
    "js_strict_equal",
    "prepare",
    "provide",
    "run_case",
]
