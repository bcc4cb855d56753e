"""transitions 0.9.x: ``Machine`` for the flat workloads and ``HierarchicalMachine`` for
all of them, used as its README recommends for speed: ``auto_transitions=False``, model
callbacks named by string, internal transitions as ``dest=None``, and many instances as
many models added to one machine (``add_model``), which shares the definition.

Events go through ``model.trigger(name)``, the by-name public API (the same work as the
generated ``model.EV()`` methods). The context lives on the model object. A snapshot is
the model's ``state`` plus its context (transitions has no snapshot format of its own);
restoring adds a fresh model at that state.
"""

from __future__ import annotations

import json
from typing import Any

from transitions import Machine
from transitions.extensions import HierarchicalMachine

from peers import workloads as w
from peers.system import System, dist_version
from peers.timing import Trial, expect

COUNTS = [0, 0]


class Model:
    """A model carrying the W2 context and the callbacks transitions finds by name."""

    state: Any  # set by transitions, with ``trigger`` and one method per event
    trigger: Any

    def __init__(self, limit: int = 0) -> None:
        self.n = 0
        self.limit = limit

    def below(self) -> bool:
        return self.n < self.limit

    def inc(self) -> None:
        self.n += 1

    def entered(self) -> None:
        COUNTS[0] += 1

    def exited(self) -> None:
        COUNTS[1] += 1


W1_TRANSITIONS = [["EV", "a", "b"], ["EV", "b", "c"], ["EV", "c", "a"]]
W2_TRANSITIONS = [{"trigger": "INC", "source": "a", "dest": None, "conditions": "below", "after": "inc"}]


def _counted(name: str, children: list[Any] | None = None, initial: str | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"name": name, "on_enter": "entered", "on_exit": "exited"}
    if children:
        state.update(children=children, initial=initial)
    return state


W3_STATES = [
    _counted("A", [_counted("A1", [_counted("x"), _counted("y")], "x")], "A1"),
    _counted("B", [_counted("B1", [_counted("p"), _counted("q")], "p")], "B1"),
]
W3_TRANSITIONS = [
    ["T", "A_A1_x", "A_A1_y"],
    ["T", "A_A1_y", "A_A1_x"],
    ["T", "B_B1_p", "B_B1_q"],
    ["T", "B_B1_q", "B_B1_p"],
    ["GO", "A_A1_y", "B_B1_p"],
    ["GO", "B_B1_p", "A_A1_x"],
]
W4_STATES = [
    {"name": "P", "parallel": [{"name": r, "children": ["off", "on"], "initial": "off"} for r in w.W4_REGIONS]}
]
W4_TRANSITIONS = [
    ["TOGGLE", f"P_{region}_{source}", f"P_{region}_{target}"]
    for region in w.W4_REGIONS
    for source, target in (("off", "on"), ("on", "off"))
]
W3_LEAVES = {"x": "A_A1_x", "y": "A_A1_y", "p": "B_B1_p", "q": "B_B1_q"}


def _sender(model: Model, events: list[str]) -> Any:
    def run() -> None:
        trigger = model.trigger
        for event in events:
            trigger(event)

    return run


def w1(cls: type[Machine]) -> Any:
    def bench(events: list[str]) -> Trial:
        model = Model()
        cls(model=model, states=["a", "b", "c"], transitions=W1_TRANSITIONS, initial="a", auto_transitions=False)
        want = w.W1_STATES[len(events) % 3]
        return Trial(_sender(model, events), lambda: expect(model.state == want, f"ended in {model.state!r}"))

    return bench


def w2(cls: type[Machine]) -> Any:
    def bench(events: list[str]) -> Trial:
        model = Model(limit=len(events))
        cls(model=model, states=["a"], transitions=W2_TRANSITIONS, initial="a", auto_transitions=False)
        return Trial(_sender(model, events), lambda: expect(model.n == len(events), f"n = {model.n}"))

    return bench


def _w3_machine(model: Any = None) -> HierarchicalMachine:
    return HierarchicalMachine(
        model=model, states=W3_STATES, transitions=W3_TRANSITIONS, initial="A", auto_transitions=False
    )


def w3(events: list[str]) -> Trial:
    model = Model()
    _w3_machine(model)
    COUNTS[:] = [0, 0]

    def check() -> None:
        calls = len(events) // 5 * w.W3_CYCLE_CALLS
        expect(model.state == W3_LEAVES[w.w3_leaf_after(len(events))], f"ended in {model.state!r}")
        expect([calls, calls] == COUNTS, f"entry/exit calls {COUNTS}, expected {calls} each")

    return Trial(_sender(model, events), check)


def w4(events: list[str]) -> Trial:
    model = Model()
    HierarchicalMachine(model=model, states=W4_STATES, transitions=W4_TRANSITIONS, initial="P", auto_transitions=False)
    want = [f"P_{region}_{w.w4_region_after(len(events))}" for region in w.W4_REGIONS]
    return Trial(_sender(model, events), lambda: expect(model.state == want, f"ended in {model.state!r}"))


W3_MACHINE = _w3_machine()  # one definition; instances are models added to it


def w5_create(count: int) -> Trial:
    models: list[Model] = []

    def run() -> None:
        add = W3_MACHINE.add_model
        for _ in range(count):
            model = Model()
            add(model)
            models.append(model)

    def check() -> None:
        expect(len(models) == count and models[-1].state == "A_A1_x", "not started in x")
        for model in models:
            W3_MACHINE.remove_model(model)

    return Trial(run, check)


def w5_restore(count: int) -> Trial:
    source = Model()
    W3_MACHINE.add_model(source)
    for event in w.W3_SNAPSHOT_EVENTS:
        source.trigger(event)
    restored: list[Model] = []

    def run() -> None:
        add, dumps, loads = W3_MACHINE.add_model, json.dumps, json.loads
        for _ in range(count):
            data = loads(dumps({"state": source.state, "context": {"n": source.n, "limit": source.limit}}))
            model = Model()
            model.__dict__.update(data["context"])
            add(model, initial=data["state"])
            restored.append(model)

    def check() -> None:
        last = restored[-1]
        expect(len(restored) == count and last.state == W3_LEAVES[w.W3_SNAPSHOT_LEAF], f"restored in {last.state!r}")
        last.trigger("T")
        expect(last.state == "B_B1_q", "the restored instance does not run")
        for model in [source, *restored]:
            W3_MACHINE.remove_model(model)

    return Trial(run, check)


def _l1_states_and_transitions() -> tuple[list[Any], list[Any]]:
    """The generated 1,000-state machine in transitions' own form (converted untimed)."""
    definition = w.big_definition()
    states: list[Any] = []
    transitions: list[Any] = []
    for group, spec in definition["states"].items():
        states.append({"name": group, "children": list(spec["states"]), "initial": "s0", "on_enter": "entered"})
        for leaf, leaf_spec in spec["states"].items():
            source = f"{group}_{leaf}"
            target = leaf_spec["on"]["NEXT"]
            if target.startswith("#"):  # "#g7s0" -> "g7_s0"
                target = target[1:].replace("s", "_s", 1)
            else:
                target = f"{group}_{target}"
            transitions.append(["NEXT", source, target])
            transitions.append({"trigger": "RESET", "source": source, "dest": "g0_s0", "conditions": "ok"})
    return states, transitions


def l1() -> Trial:
    states, transitions = _l1_states_and_transitions()
    built: list[HierarchicalMachine] = []

    def run() -> None:
        built.append(
            HierarchicalMachine(
                model=None, states=states, transitions=transitions, initial="g0", auto_transitions=False
            )
        )

    def check() -> None:
        model = Model()
        built[0].add_model(model)
        for event in w.BIG_CHECK_EVENTS:
            model.trigger(event)
        expect(model.state == "_".join(w.BIG_CHECK_LEAF), f"ended in {model.state!r}")

    return Trial(run, check)


def m1_check(model: Model) -> None:
    expect(model.state == "A_A1_x", f"started in {model.state!r}")


def _m1_factory() -> Model:
    model = Model()
    W3_MACHINE.add_model(model)
    return model


NO_HIERARCHY = "transitions' Machine has no nested or parallel states (see the HierarchicalMachine column)"
version = dist_version("transitions")

MACHINE = System(
    key="transitions",
    label="transitions",
    version=version,
    benches={"W1": w1(Machine), "W2": w2(Machine)},
    na={k: NO_HIERARCHY for k in ("W3", "W4", "W5a", "W5b", "M1", "L1")},
    description="transitions.Machine",
)

HIERARCHICAL = System(
    key="transitions-hsm",
    label="trans-HSM",
    version=version,
    benches={
        "W1": w1(HierarchicalMachine),
        "W2": w2(HierarchicalMachine),
        "W3": w3,
        "W4": w4,
        "W5a": w5_create,
        "W5b": w5_restore,
        "L1": l1,
        "M1": (_m1_factory, m1_check),
    },
    description="transitions.extensions.HierarchicalMachine",
)
