"""The floors: hand-written CPython loops over transition tables.

- ``raw``: the physical floor. The state is a string, the table a dict of dicts, the
  loop does the lookups inline; guards and actions are inline expressions.
- ``raw+calls``: the same loop making one Python call per guard, action, entry and exit
  (``f(context, event, None)``): the floor for anything that runs user callbacks. W1 and W4
  have no callbacks, so there it is the same loop as ``raw``.
- ``raw+send``: ``raw+calls`` behind a ``send(event)`` method of an instance object, the
  shape of every library's public API: the floor for a library (one more call per event).
"""

from __future__ import annotations

import json
import platform
from typing import Any

from peers import workloads as w
from peers.system import System
from peers.timing import Trial, expect

COUNTS = [0, 0]


def entered(context: Any, event: Any, params: Any) -> None:
    COUNTS[0] += 1


def exited(context: Any, event: Any, params: Any) -> None:
    COUNTS[1] += 1


def below(context: Any, event: Any, params: Any) -> bool:
    return context["n"] < context["limit"]


def inc(context: Any, event: Any, params: Any) -> None:
    context["n"] = context["n"] + 1


W1_TABLE = {"a": {"EV": "b"}, "b": {"EV": "c"}, "c": {"EV": "a"}}
W4_TABLE = {"off": {"TOGGLE": "on"}, "on": {"TOGGLE": "off"}}

# W3: (state, event) -> (target leaf, exit callbacks, entry callbacks), one callback per state
_CROSS = (exited, exited, exited)
W3_TABLE: dict[str, dict[str, tuple[str, tuple[Any, ...], tuple[Any, ...]]]] = {
    "x": {"T": ("y", (exited,), (entered,))},
    "y": {"T": ("x", (exited,), (entered,)), "GO": ("p", _CROSS, (entered, entered, entered))},
    "p": {"T": ("q", (exited,), (entered,)), "GO": ("x", _CROSS, (entered, entered, entered))},
    "q": {"T": ("p", (exited,), (entered,))},
}
W3_START = (entered, entered, entered)


class RawInstance:
    """``raw+send``: one instance of a table machine with a ``send`` method."""

    __slots__ = ("context", "state", "table")

    def __init__(self, table: dict[str, Any], state: str, context: dict[str, Any] | None = None) -> None:
        self.table = table
        self.state = state
        self.context = context if context is not None else {}

    def send(self, event: str) -> None:
        target, exits, entries = self.table[self.state][event]
        context = self.context
        for fn in exits:
            fn(context, event, None)
        self.state = target
        for fn in entries:
            fn(context, event, None)


def _check_w1(state: str, events: list[str]) -> None:
    expect(state == w.W1_STATES[len(events) % 3], f"ended in {state!r}")


def _check_w3(state: str, events: list[str], counted: bool) -> None:
    expect(state == w.w3_leaf_after(len(events)), f"ended in {state!r}")
    if counted:
        calls = len(events) // 5 * w.W3_CYCLE_CALLS
        expect([calls, calls] == COUNTS, f"entry/exit calls {COUNTS}, expected {calls} each")


# -- raw ----------------------------------------------------------------------------------------


def raw_w1(events: list[str]) -> Trial:
    box = ["a"]

    def run() -> None:
        table, state = W1_TABLE, box[0]
        for event in events:
            state = table[state][event]
        box[0] = state

    return Trial(run, lambda: _check_w1(box[0], events))


def raw_w2(events: list[str]) -> Trial:
    context = {"n": 0, "limit": len(events)}
    table = {"a": {"INC": "a"}}

    def run() -> None:
        state = "a"
        for event in events:
            state = table[state][event]
            if context["n"] < context["limit"]:
                context["n"] = context["n"] + 1

    return Trial(run, lambda: expect(context["n"] == len(events), f"n = {context['n']}"))


def raw_w3(events: list[str]) -> Trial:
    box = ["x"]

    def run() -> None:
        table, state = W3_TABLE, box[0]
        for event in events:
            state = table[state][event][0]
        box[0] = state

    return Trial(run, lambda: _check_w3(box[0], events, counted=False))


def raw_w4(events: list[str]) -> Trial:
    box = ["off", "off", "off"]

    def run() -> None:
        table = W4_TABLE
        r1, r2, r3 = box
        for event in events:
            r1 = table[r1][event]
            r2 = table[r2][event]
            r3 = table[r3][event]
        box[:] = [r1, r2, r3]

    want = w.w4_region_after(len(events))
    return Trial(run, lambda: expect(box == [want] * 3, f"ended in {box}"))


def _new_instance(calls: bool) -> dict[str, Any]:
    instance: dict[str, Any] = {"value": "x", "context": {}}
    if calls:
        for fn in W3_START:
            fn(instance["context"], None, None)
    return instance


def _w5_create(count: int, calls: bool) -> Trial:
    instances: list[Any] = []
    COUNTS[:] = [0, 0]

    def run() -> None:
        for _ in range(count):
            instances.append(_new_instance(calls))

    def check() -> None:
        expect(len(instances) == count, "instances missing")
        if calls:
            expect(COUNTS[0] == count * w.W3_INITIAL_ENTRIES, f"{COUNTS[0]} entry calls for {count} instances")

    return Trial(run, check)


def _w5_restore(count: int) -> Trial:
    source = {"value": w.W3_SNAPSHOT_LEAF, "context": {}}
    restored: list[Any] = []

    def run() -> None:
        dumps, loads = json.dumps, json.loads
        for _ in range(count):
            restored.append(loads(dumps(source)))

    def check() -> None:
        expect(len(restored) == count and restored[-1]["value"] == w.W3_SNAPSHOT_LEAF, "bad restore")

    return Trial(run, check)


# -- raw+calls ----------------------------------------------------------------------------------


def calls_w2(events: list[str]) -> Trial:
    context = {"n": 0, "limit": len(events)}
    table = {"a": {"INC": ("a", below, inc)}}

    def run() -> None:
        state = "a"
        for event in events:
            target, guard, action = table[state][event]
            if guard(context, event, None):
                state = target
                action(context, event, None)

    return Trial(run, lambda: expect(context["n"] == len(events), f"n = {context['n']}"))


def calls_w3(events: list[str]) -> Trial:
    box = ["x"]
    COUNTS[:] = [0, 0]
    context: dict[str, Any] = {}

    def run() -> None:
        table, state = W3_TABLE, box[0]
        for event in events:
            target, exits, entries = table[state][event]
            for fn in exits:
                fn(context, event, None)
            state = target
            for fn in entries:
                fn(context, event, None)
        box[0] = state

    return Trial(run, lambda: _check_w3(box[0], events, counted=True))


# -- raw+send -----------------------------------------------------------------------------------


def _send_all(instance: Any, events: list[str]) -> Any:
    def run() -> None:
        send = instance.send
        for event in events:
            send(event)

    return run


def send_w1(events: list[str]) -> Trial:
    table = {s: {e: (t, (), ()) for e, t in row.items()} for s, row in W1_TABLE.items()}
    instance = RawInstance(table, "a")
    return Trial(_send_all(instance, events), lambda: _check_w1(instance.state, events))


class GuardedInstance(RawInstance):
    """``raw+send`` for W2: the table row holds (target, guard, action)."""

    __slots__ = ()

    def send(self, event: str) -> None:
        target, guard, action = self.table[self.state][event]
        context = self.context
        if guard(context, event, None):
            self.state = target
            action(context, event, None)


def send_w2(events: list[str]) -> Trial:
    instance = GuardedInstance({"a": {"INC": ("a", below, inc)}}, "a", {"n": 0, "limit": len(events)})
    return Trial(
        _send_all(instance, events),
        lambda: expect(instance.context["n"] == len(events), f"n = {instance.context['n']}"),
    )


def send_w3(events: list[str]) -> Trial:
    instance = RawInstance(W3_TABLE, "x")
    COUNTS[:] = [0, 0]
    return Trial(_send_all(instance, events), lambda: _check_w3(instance.state, events, counted=True))


class RegionsInstance:
    """``raw+send`` for W4: three region states advanced by one ``send``."""

    __slots__ = ("regions",)

    def __init__(self) -> None:
        self.regions = ["off", "off", "off"]

    def send(self, event: str) -> None:
        regions = self.regions
        for i, state in enumerate(regions):
            regions[i] = W4_TABLE[state][event]


def send_w4(events: list[str]) -> Trial:
    instance = RegionsInstance()
    want = w.w4_region_after(len(events))
    return Trial(
        _send_all(instance, events), lambda: expect(instance.regions == [want] * 3, f"ended in {instance.regions}")
    )


def send_w5_create(count: int) -> Trial:
    instances: list[RawInstance] = []
    COUNTS[:] = [0, 0]

    def run() -> None:
        for _ in range(count):
            instance = RawInstance(W3_TABLE, "x")
            for fn in W3_START:
                fn(instance.context, None, None)
            instances.append(instance)

    def check() -> None:
        expect(len(instances) == count, "instances missing")
        expect(COUNTS[0] == count * w.W3_INITIAL_ENTRIES, f"{COUNTS[0]} entry calls for {count} instances")

    return Trial(run, check)


def send_w5_restore(count: int) -> Trial:
    source = RawInstance(W3_TABLE, w.W3_SNAPSHOT_LEAF)
    restored: list[RawInstance] = []

    def run() -> None:
        dumps, loads = json.dumps, json.loads
        for _ in range(count):
            data = loads(dumps({"value": source.state, "context": source.context}))
            restored.append(RawInstance(W3_TABLE, data["value"], data["context"]))

    def check() -> None:
        expect(len(restored) == count and restored[-1].state == w.W3_SNAPSHOT_LEAF, "bad restore")
        restored[-1].send("T")
        expect(restored[-1].state == "q", "the restored instance does not run")

    return Trial(run, check)


def _m1_check(instance: Any) -> None:
    expect(instance is not None, "no instance")


NO_DEFINITION = "a hand-written table has no definition to validate or compile"
VERSION = f"CPython {platform.python_version()}"

RAW = System(
    key="raw",
    label="raw",
    version=lambda: VERSION,
    benches={
        "W1": raw_w1,
        "W2": raw_w2,
        "W3": raw_w3,
        "W4": raw_w4,
        "W5a": lambda count: _w5_create(count, calls=False),
        "W5b": _w5_restore,
        "M1": (lambda: _new_instance(False), _m1_check),
    },
    na={"L1": NO_DEFINITION},
    description="table loop, inline guards/actions (the physical floor)",
)

RAW_CALLS = System(
    key="raw+calls",
    label="raw+calls",
    version=lambda: VERSION,
    benches={
        "W1": raw_w1,
        "W2": calls_w2,
        "W3": calls_w3,
        "W4": raw_w4,
        "W5a": lambda count: _w5_create(count, calls=True),
        "W5b": _w5_restore,
        "M1": (lambda: _new_instance(True), _m1_check),
    },
    na={"L1": NO_DEFINITION},
    description="the same loop, one Python call per guard/action/entry/exit (floor with callbacks)",
)

RAW_SEND = System(
    key="raw+send",
    label="raw+send",
    version=lambda: VERSION,
    benches={
        "W1": send_w1,
        "W2": send_w2,
        "W3": send_w3,
        "W4": send_w4,
        "W5a": send_w5_create,
        "W5b": send_w5_restore,
        "M1": (lambda: RawInstance(W3_TABLE, "x"), _m1_check),
    },
    na={"L1": NO_DEFINITION},
    description="raw+calls behind an instance's send(event) method (floor for a library API)",
)
