"""sismic: statecharts loaded from its dict format (``sismic.io.import_from_dict``, the
codec under its YAML loader), run by the default ``Interpreter`` with its default Python
code evaluator: guards and actions are Python code strings in the statechart, as sismic's
docs write them, and callbacks are functions passed in the initial context. One event is
``interpreter.queue(name)`` followed by ``execute_once()`` (one macrostep).

sismic has no snapshot or restore API (its issue #89 is open; pickling the interpreter is
the suggested workaround), so W5b is n/a.
"""

from __future__ import annotations

from typing import Any

from sismic.interpreter import Interpreter
from sismic.io.datadict import import_from_dict
from sismic.model import Statechart

from peers import workloads as w
from peers.system import System, dist_version
from peers.timing import Trial, expect

COUNTS = [0, 0]


def entered() -> None:
    COUNTS[0] += 1


def exited() -> None:
    COUNTS[1] += 1


CALLBACKS = {"entered": entered, "exited": exited}


def _chart(name: str, root: dict[str, Any], preamble: str | None = None) -> Statechart:
    chart: dict[str, Any] = {"name": name, "root state": {"name": "root", **root}}
    if preamble:
        chart["preamble"] = preamble
    return import_from_dict({"statechart": chart})


def _on(event: str, target: str) -> dict[str, str]:
    return {"event": event, "target": target}


def _counted(name: str, **spec: Any) -> dict[str, Any]:
    return {"name": name, "on entry": "entered()", "on exit": "exited()", **spec}


W1 = _chart(
    "w1",
    {
        "initial": "a",
        "states": [
            {"name": "a", "transitions": [_on("EV", "b")]},
            {"name": "b", "transitions": [_on("EV", "c")]},
            {"name": "c", "transitions": [_on("EV", "a")]},
        ],
    },
)
W2 = _chart(
    "w2",
    {
        "initial": "a",
        "states": [{"name": "a", "transitions": [{"event": "INC", "guard": "n < limit", "action": "n = n + 1"}]}],
    },
    preamble="n = 0",
)
W3 = _chart(
    "w3",
    {
        "initial": "A",
        "states": [
            _counted(
                "A",
                initial="A1",
                states=[
                    _counted(
                        "A1",
                        initial="x",
                        states=[
                            _counted("x", transitions=[_on("T", "y")]),
                            _counted("y", transitions=[_on("T", "x"), _on("GO", "p")]),
                        ],
                    )
                ],
            ),
            _counted(
                "B",
                initial="B1",
                states=[
                    _counted(
                        "B1",
                        initial="p",
                        states=[
                            _counted("p", transitions=[_on("T", "q"), _on("GO", "x")]),
                            _counted("q", transitions=[_on("T", "p")]),
                        ],
                    )
                ],
            ),
        ],
    },
)
W4 = _chart(
    "w4",
    {
        # state names are global in sismic, so each region names its own
        "parallel states": [
            {
                "name": f"r{i}",
                "initial": f"off{i}",
                "states": [
                    {"name": f"off{i}", "transitions": [_on("TOGGLE", f"on{i}")]},
                    {"name": f"on{i}", "transitions": [_on("TOGGLE", f"off{i}")]},
                ],
            }
            for i in (1, 2, 3)
        ]
    },
)


def _start(chart: Statechart, context: dict[str, Any] | None = None) -> Interpreter:
    interpreter = Interpreter(chart, initial_context=context)
    interpreter.execute_once()  # enters the initial configuration
    return interpreter


def _sender(interpreter: Interpreter, events: list[str]) -> Any:
    def run() -> None:
        queue, execute_once = interpreter.queue, interpreter.execute_once
        for event in events:
            queue(event)
            execute_once()

    return run


def _leaf(interpreter: Interpreter) -> str:
    return interpreter.configuration[-1]


def w1(events: list[str]) -> Trial:
    interpreter = _start(W1)
    want = w.W1_STATES[len(events) % 3]
    return Trial(_sender(interpreter, events), lambda: expect(_leaf(interpreter) == want, "wrong final state"))


def w2(events: list[str]) -> Trial:
    interpreter = _start(W2, {"limit": len(events)})
    n = len(events)
    return Trial(_sender(interpreter, events), lambda: expect(interpreter.context["n"] == n, "wrong n"))


def w3(events: list[str]) -> Trial:
    interpreter = _start(W3, dict(CALLBACKS))
    COUNTS[:] = [0, 0]

    def check() -> None:
        calls = len(events) // 5 * w.W3_CYCLE_CALLS
        expect(_leaf(interpreter) == w.w3_leaf_after(len(events)), f"ended in {interpreter.configuration}")
        expect([calls, calls] == COUNTS, f"entry/exit calls {COUNTS}, expected {calls} each")

    return Trial(_sender(interpreter, events), check)


def w4(events: list[str]) -> Trial:
    interpreter = _start(W4)
    state = w.w4_region_after(len(events))
    want = {f"{state}{i}" for i in (1, 2, 3)}
    return Trial(
        _sender(interpreter, events),
        lambda: expect(want <= set(interpreter.configuration), f"ended in {interpreter.configuration}"),
    )


def w5_create(count: int) -> Trial:
    instances: list[Interpreter] = []
    COUNTS[:] = [0, 0]

    def run() -> None:
        for _ in range(count):
            instances.append(_start(W3, dict(CALLBACKS)))

    def check() -> None:
        expect(len(instances) == count and _leaf(instances[-1]) == "x", "not started in x")
        expect(COUNTS[0] == count * w.W3_INITIAL_ENTRIES, f"{COUNTS[0]} entry actions for {count} instances")

    return Trial(run, check)


def _big_chart() -> dict[str, Any]:
    """The generated machine in sismic's dict form (names are global: leaves are
    ``g7s3``); converted untimed."""
    groups = []
    for group, spec in w.big_definition()["states"].items():
        leaves = []
        for s, leaf_spec in enumerate(spec["states"].values()):
            target = leaf_spec["on"]["NEXT"]
            target = target[1:] if target.startswith("#") else f"{group}{target}"
            leaves.append(
                {
                    "name": f"{group}s{s}",
                    "transitions": [_on("NEXT", target), {"event": "RESET", "target": "g0s0", "guard": "ok()"}],
                }
            )
        groups.append({"name": group, "initial": f"{group}s0", "on entry": "entered()", "states": leaves})
    return {"statechart": {"name": "big", "root state": {"name": "root", "initial": "g0", "states": groups}}}


def l1() -> Trial:
    data = _big_chart()
    built: list[Statechart] = []

    def check() -> None:
        interpreter = _start(built[0], {"entered": entered, "ok": lambda: True})
        for event in w.BIG_CHECK_EVENTS:
            interpreter.queue(event)
            interpreter.execute_once()
        expect(_leaf(interpreter) == "".join(w.BIG_CHECK_LEAF), f"ended in {interpreter.configuration}")

    return Trial(lambda: built.append(import_from_dict(data)), check)


def m1_check(interpreter: Interpreter) -> None:
    expect(_leaf(interpreter) == "x", "not started in x")


SYSTEM = System(
    key="sismic",
    label="sismic",
    version=dist_version("sismic"),
    benches={
        "W1": w1,
        "W2": w2,
        "W3": w3,
        "W4": w4,
        "W5a": w5_create,
        "L1": l1,
        "M1": (lambda: _start(W3, dict(CALLBACKS)), m1_check),
    },
    na={"W5b": "no snapshot/restore API (sismic issue #89; pickle is the workaround)"},
    description="sismic.interpreter.Interpreter",
)
