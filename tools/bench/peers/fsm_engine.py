"""fsm, through its public API: ``Machine.from_dict`` once, ``provide``, ``start`` (with a
``VirtualClock``: no timer threads), ``actor.send(name)``, ``snapshot.to_dict`` and
``machine.restore``."""

from __future__ import annotations

import json
import platform
from typing import Any

import fsm
from peers import workloads as w
from peers.system import System
from peers.timing import Trial, expect

COUNTS = [0, 0]  # entry and exit actions run
CLOCK = fsm.VirtualClock()


def entered(context: Any, event: Any, params: Any) -> None:
    COUNTS[0] += 1


def exited(context: Any, event: Any, params: Any) -> None:
    COUNTS[1] += 1


def below(context: Any, event: Any, params: Any) -> bool:
    return context["n"] < context["limit"]


inc = fsm.assign(lambda context, event, params: {"n": context["n"] + 1})

W1 = fsm.Machine.from_dict(w.W1)
W3 = fsm.Machine.from_dict(w.W3).provide(actions={"entered": entered, "exited": exited})
W4 = fsm.Machine.from_dict(w.W4)


def _sender(actor: fsm.Actor, events: list[str]) -> Any:
    def run() -> None:
        send = actor.send
        for event in events:
            send(event)

    return run


def w1(events: list[str]) -> Trial:
    actor = W1.start(clock=CLOCK)

    def check() -> None:
        expect(actor.snapshot.value == w.W1_STATES[len(events) % 3], f"ended in {actor.snapshot.value!r}")

    return Trial(_sender(actor, events), check)


def w2(events: list[str]) -> Trial:
    machine = fsm.Machine.from_dict(w.w2_definition(len(events))).provide(guards={"below": below}, actions={"inc": inc})
    actor = machine.start(clock=CLOCK)

    def check() -> None:
        expect(actor.snapshot.context["n"] == len(events), f"n = {actor.snapshot.context['n']}")

    return Trial(_sender(actor, events), check)


def _w3_leaf(value: Any) -> str:
    return next(iter(next(iter(value.values())).values()))


def w3(events: list[str]) -> Trial:
    actor = W3.start(clock=CLOCK)
    COUNTS[:] = [0, 0]

    def check() -> None:
        leaf, calls = _w3_leaf(actor.snapshot.value), len(events) // 5 * w.W3_CYCLE_CALLS
        expect(leaf == w.w3_leaf_after(len(events)), f"ended in {actor.snapshot.value!r}")
        expect([calls, calls] == COUNTS, f"entry/exit calls {COUNTS}, expected {calls} each")

    return Trial(_sender(actor, events), check)


def w4(events: list[str]) -> Trial:
    actor = W4.start(clock=CLOCK)

    def check() -> None:
        want = w.w4_region_after(len(events))
        expect(actor.snapshot.value == dict.fromkeys(w.W4_REGIONS, want), f"ended in {actor.snapshot.value!r}")

    return Trial(_sender(actor, events), check)


def w5_create(count: int) -> Trial:
    instances: list[fsm.Actor] = []
    COUNTS[:] = [0, 0]

    def run() -> None:
        start, clock = W3.start, CLOCK
        for _ in range(count):
            instances.append(start(clock=clock))

    def check() -> None:
        expect(len(instances) == count, "instances missing")
        expect(COUNTS[0] == count * w.W3_INITIAL_ENTRIES, f"{COUNTS[0]} entry actions for {count} instances")
        expect(_w3_leaf(instances[-1].snapshot.value) == "x", "not started in x")

    return Trial(run, check)


def w5_restore(count: int) -> Trial:
    source = W3.start(clock=CLOCK)
    for event in w.W3_SNAPSHOT_EVENTS:
        source.send(event)
    restored: list[fsm.Actor] = []

    def run() -> None:
        restore, clock, dumps, loads = W3.restore, CLOCK, json.dumps, json.loads
        for _ in range(count):
            restored.append(restore(loads(dumps(source.snapshot.to_dict())), clock=clock))

    def check() -> None:
        expect(len(restored) == count, "instances missing")
        last = restored[-1]
        expect(_w3_leaf(last.snapshot.value) == w.W3_SNAPSHOT_LEAF, f"restored in {last.snapshot.value!r}")
        last.send("T")
        expect(_w3_leaf(last.snapshot.value) == "q", "the restored instance does not run")

    return Trial(run, check)


def l1() -> Trial:
    definition = w.big_definition()
    built: list[fsm.Machine] = []

    def check() -> None:
        machine = built[0].provide(actions={"entered": entered}, guards={"ok": lambda c, e, p: True})
        actor = machine.start(clock=CLOCK)
        for event in w.BIG_CHECK_EVENTS:
            actor.send(event)
        group, leaf = w.BIG_CHECK_LEAF
        expect(actor.snapshot.value == {group: leaf}, f"ended in {actor.snapshot.value!r}")
        expect(len(machine.model.nodes) == w.BIG_STATES + 1, f"{len(machine.model.nodes)} nodes")  # + the root

    return Trial(lambda: built.append(fsm.Machine.from_dict(definition)), check)


def m1_check(actor: fsm.Actor) -> None:
    expect(_w3_leaf(actor.snapshot.value) == "x", "not started in x")


SYSTEM = System(
    key="fsm",
    label="fsm",
    version=lambda: f"{fsm.__version__} (CPython {platform.python_version()})",
    benches={
        "W1": w1,
        "W2": w2,
        "W3": w3,
        "W4": w4,
        "W5a": w5_create,
        "W5b": w5_restore,
        "L1": l1,
        "M1": (lambda: W3.start(clock=CLOCK), m1_check),
    },
    description="this project",
)
