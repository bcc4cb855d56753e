"""python-statemachine 3.x, class-based as its docs teach, on ``StateMachine`` rather than
``StateChart``: the documented subclass with ``atomic_configuration_update=True`` and
``catch_errors_as_events=False``, which measured ~10% faster here on W1 (the fastest
documented configuration; every workload event has a transition, so its stricter
``allow_event_without_transition=False`` changes nothing).

Callbacks are model methods named in the definition (``enter=``, ``exit=``, ``cond=``,
``on=``); W2's INC is an internal self-transition. A snapshot is the model's ``state``
field (python-statemachine's domain-model persistence) plus the context; restoring
builds a machine around a model that holds them, which resumes without re-entering.
The 1,000-state machine is loaded with ``create_machine_class_from_definition``.
"""

from __future__ import annotations

import json
from typing import Any

from statemachine import State, StateMachine
from statemachine.io import create_machine_class_from_definition
from statemachine.orderedset import OrderedSet

from peers import workloads as w
from peers.system import System, dist_version
from peers.timing import Trial, expect

COUNTS = [0, 0]


class Callbacks:
    """The callbacks the definitions name, mixed into each machine class."""

    n = 0
    limit = 0

    def below(self) -> bool:
        return self.n < self.limit

    def inc(self) -> None:
        self.n += 1

    def entered(self) -> None:
        COUNTS[0] += 1

    def exited(self) -> None:
        COUNTS[1] += 1

    def ok(self) -> bool:
        return True


class W1(Callbacks, StateMachine):
    a = State(initial=True)
    b = State()
    c = State()
    EV = a.to(b) | b.to(c) | c.to(a)


class W2(Callbacks, StateMachine):
    a = State(initial=True)
    INC = a.to.itself(internal=True, cond="below", on="inc")

    def __init__(self, limit: int, **kwargs: Any) -> None:
        self.n = 0
        self.limit = limit
        super().__init__(**kwargs)


COUNTED: dict[str, Any] = {"enter": "entered", "exit": "exited"}


class W3(Callbacks, StateMachine):
    class A(State.Compound, **COUNTED):
        class A1(State.Compound, **COUNTED):
            x = State(initial=True, **COUNTED)
            y = State(**COUNTED)
            T = x.to(y) | y.to(x)

    class B(State.Compound, **COUNTED):
        class B1(State.Compound, **COUNTED):
            p = State(initial=True, **COUNTED)
            q = State(**COUNTED)
            T = p.to(q) | q.to(p)

    GO = A.A1.y.to(B.B1.p) | B.B1.p.to(A.A1.x)


class W4(Callbacks, StateMachine):
    # state ids are global in python-statemachine, so each region names its own
    class P(State.Parallel):
        class r1(State.Compound):
            off1 = State(initial=True)
            on1 = State()
            TOGGLE = off1.to(on1) | on1.to(off1)

        class r2(State.Compound):
            off2 = State(initial=True)
            on2 = State()
            TOGGLE = off2.to(on2) | on2.to(off2)

        class r3(State.Compound):
            off3 = State(initial=True)
            on3 = State()
            TOGGLE = off3.to(on3) | on3.to(off3)


class Model:
    """A domain model: python-statemachine keeps the configuration in ``state``."""

    def __init__(self, state: Any = None) -> None:
        self.state = state


def _sender(machine: StateMachine, events: list[str]) -> Any:
    def run() -> None:
        send = machine.send
        for event in events:
            send(event)

    return run


def _leaf(machine: StateMachine) -> str:
    return list(machine.configuration_values)[-1]


def w1(events: list[str]) -> Trial:
    machine = W1()
    want = w.W1_STATES[len(events) % 3]
    return Trial(_sender(machine, events), lambda: expect(_leaf(machine) == want, f"ended in {_leaf(machine)!r}"))


def w2(events: list[str]) -> Trial:
    machine = W2(len(events))
    return Trial(_sender(machine, events), lambda: expect(machine.n == len(events), f"n = {machine.n}"))


def w3(events: list[str]) -> Trial:
    machine = W3()
    COUNTS[:] = [0, 0]

    def check() -> None:
        calls = len(events) // 5 * w.W3_CYCLE_CALLS
        expect(_leaf(machine) == w.w3_leaf_after(len(events)), f"ended in {machine.configuration_values}")
        expect([calls, calls] == COUNTS, f"entry/exit calls {COUNTS}, expected {calls} each")

    return Trial(_sender(machine, events), check)


def w4(events: list[str]) -> Trial:
    machine = W4()
    state = w.w4_region_after(len(events))
    want = {f"{state}{i}" for i in (1, 2, 3)}

    def check() -> None:
        expect(want <= set(machine.configuration_values), f"ended in {machine.configuration_values}")

    return Trial(_sender(machine, events), check)


def w5_create(count: int) -> Trial:
    instances: list[StateMachine] = []
    COUNTS[:] = [0, 0]

    def run() -> None:
        for _ in range(count):
            instances.append(W3())

    def check() -> None:
        expect(len(instances) == count and _leaf(instances[-1]) == "x", "not started in x")
        expect(COUNTS[0] == count * w.W3_INITIAL_ENTRIES, f"{COUNTS[0]} entry actions for {count} instances")

    return Trial(run, check)


def w5_restore(count: int) -> Trial:
    model = Model()
    source = W3(model=model)
    for event in w.W3_SNAPSHOT_EVENTS:
        source.send(event)
    restored: list[StateMachine] = []

    def run() -> None:
        dumps, loads = json.dumps, json.loads
        for _ in range(count):
            data = loads(dumps({"state": list(model.state), "context": {}}))
            restored.append(W3(model=Model(OrderedSet(data["state"]))))

    def check() -> None:
        last = restored[-1]
        expect(len(restored) == count and _leaf(last) == w.W3_SNAPSHOT_LEAF, f"restored in {_leaf(last)!r}")
        last.send("T")
        expect(_leaf(last) == "q", "the restored instance does not run")

    return Trial(run, check)


def _big_states() -> dict[str, Any]:
    """The generated machine in python-statemachine's dict form (state ids are global,
    so leaves are named ``g7s3``); converted untimed."""
    states: dict[str, Any] = {}
    for g, (group, spec) in enumerate(w.big_definition()["states"].items()):
        leaves: dict[str, Any] = {}
        for s, leaf_spec in enumerate(spec["states"].values()):
            target = leaf_spec["on"]["NEXT"]
            target = target[1:] if target.startswith("#") else f"{group}{target}"
            leaves[f"{group}s{s}"] = {
                "initial": s == 0,
                "on": {"NEXT": [{"target": target}], "RESET": [{"target": "g0s0", "cond": "ok"}]},
            }
        states[group] = {"initial": g == 0, "enter": "entered", "states": leaves}
    return states


def l1() -> Trial:
    states = _big_states()  # the loader consumes its input: a fresh copy per repetition
    built: list[type] = []

    def run() -> None:
        built.append(create_machine_class_from_definition("Big", states=states))

    def check() -> None:
        machine = type("BigMachine", (Callbacks, built[0]), {})()
        for event in w.BIG_CHECK_EVENTS:
            machine.send(event)
        expect(_leaf(machine) == "".join(w.BIG_CHECK_LEAF), f"ended in {machine.configuration_values}")

    return Trial(run, check)


def m1_check(machine: StateMachine) -> None:
    expect(_leaf(machine) == "x", "not started in x")


SYSTEM = System(
    key="python-statemachine",
    label="py-statemachine",
    version=dist_version("python-statemachine"),
    benches={
        "W1": w1,
        "W2": w2,
        "W3": w3,
        "W4": w4,
        "W5a": w5_create,
        "W5b": w5_restore,
        "L1": l1,
        "M1": (W3, m1_check),
    },
    description="statemachine.StateMachine (3.x)",
)
