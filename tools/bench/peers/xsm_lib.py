"""xstate-statemachine: the same XState JSON definitions as fsm, ``create_machine`` with a
``MachineLogic`` of Python callables, run by its synchronous engine (``SyncInterpreter``,
the faster of its two). W2's update is a plain action mutating the context (the form its
README's persistence example uses, ~25% faster here than its ``assign`` helper). A
snapshot is ``get_snapshot()`` (a JSON string) and ``SyncInterpreter.from_snapshot``
restores it.
"""

from __future__ import annotations

import logging
from typing import Any

from xstate_statemachine import MachineLogic, SyncInterpreter, create_machine

from peers import workloads as w
from peers.system import System, dist_version
from peers.timing import Trial, expect

logging.getLogger("xstate_statemachine").setLevel(logging.WARNING)

COUNTS = [0, 0]


def entered(interpreter: Any, context: Any, event: Any, action: Any) -> None:
    COUNTS[0] += 1


def exited(interpreter: Any, context: Any, event: Any, action: Any) -> None:
    COUNTS[1] += 1


def below(context: Any, event: Any) -> bool:
    return context["n"] < context["limit"]


def inc(interpreter: Any, context: Any, event: Any, action: Any) -> None:
    context["n"] = context["n"] + 1


W1 = create_machine(w.W1)
W3 = create_machine(w.W3, logic=MachineLogic(actions={"entered": entered, "exited": exited}))
W4 = create_machine(w.W4)


def _start(machine: Any) -> SyncInterpreter:
    return SyncInterpreter(machine).start()


def _sender(interpreter: SyncInterpreter, events: list[str]) -> Any:
    def run() -> None:
        send = interpreter.send
        for event in events:
            send(event)

    return run


def _leaf(interpreter: SyncInterpreter) -> str:
    return max(interpreter.current_state_ids, key=len).rsplit(".", 1)[-1]


def w1(events: list[str]) -> Trial:
    interpreter = _start(W1)
    want = w.W1_STATES[len(events) % 3]
    return Trial(_sender(interpreter, events), lambda: expect(_leaf(interpreter) == want, "wrong final state"))


def w2(events: list[str]) -> Trial:
    machine = create_machine(
        w.w2_definition(len(events)), logic=MachineLogic(guards={"below": below}, actions={"inc": inc})
    )
    interpreter = _start(machine)
    n = len(events)
    return Trial(
        _sender(interpreter, events), lambda: expect(interpreter.context["n"] == n, f"n = {interpreter.context['n']}")
    )


def w3(events: list[str]) -> Trial:
    interpreter = _start(W3)
    COUNTS[:] = [0, 0]

    def check() -> None:
        calls = len(events) // 5 * w.W3_CYCLE_CALLS
        expect(_leaf(interpreter) == w.w3_leaf_after(len(events)), f"ended in {interpreter.current_state_ids}")
        expect([calls, calls] == COUNTS, f"entry/exit calls {COUNTS}, expected {calls} each")

    return Trial(_sender(interpreter, events), check)


def w4(events: list[str]) -> Trial:
    interpreter = _start(W4)
    state = w.w4_region_after(len(events))
    want = {f"w4.{region}.{state}" for region in w.W4_REGIONS}
    return Trial(
        _sender(interpreter, events),
        lambda: expect(interpreter.current_state_ids == want, f"ended in {interpreter.current_state_ids}"),
    )


def w5_create(count: int) -> Trial:
    instances: list[SyncInterpreter] = []
    COUNTS[:] = [0, 0]

    def run() -> None:
        for _ in range(count):
            instances.append(SyncInterpreter(W3).start())

    def check() -> None:
        expect(len(instances) == count and _leaf(instances[-1]) == "x", "not started in x")
        expect(COUNTS[0] == count * w.W3_INITIAL_ENTRIES, f"{COUNTS[0]} entry actions for {count} instances")

    return Trial(run, check)


def w5_restore(count: int) -> Trial:
    source = _start(W3)
    for event in w.W3_SNAPSHOT_EVENTS:
        source.send(event)
    restored: list[SyncInterpreter] = []

    def run() -> None:
        from_snapshot = SyncInterpreter.from_snapshot
        for _ in range(count):
            restored.append(from_snapshot(source.get_snapshot(), W3))

    def check() -> None:
        last = restored[-1]
        expect(len(restored) == count and _leaf(last) == w.W3_SNAPSHOT_LEAF, f"restored in {_leaf(last)!r}")
        last.send("T")
        expect(_leaf(last) == "q", "the restored instance does not run")

    return Trial(run, check)


def l1() -> Trial:
    definition = w.big_definition()
    logic: Any = MachineLogic(actions={"entered": entered}, guards={"ok": lambda context, event: True})
    built: list[Any] = []

    def check() -> None:
        interpreter = _start(built[0])
        for event in w.BIG_CHECK_EVENTS:
            interpreter.send(event)
        expect(_leaf(interpreter) == w.BIG_CHECK_LEAF[1], f"ended in {interpreter.current_state_ids}")
        expect(f"big.{'.'.join(w.BIG_CHECK_LEAF)}" in interpreter.current_state_ids, "wrong group")

    return Trial(lambda: built.append(create_machine(definition, logic=logic)), check)


def m1_check(interpreter: SyncInterpreter) -> None:
    expect(_leaf(interpreter) == "x", "not started in x")


SYSTEM = System(
    key="xstate-statemachine",
    label="xstate-sm",
    version=dist_version("xstate-statemachine"),
    benches={
        "W1": w1,
        "W2": w2,
        "W3": w3,
        "W4": w4,
        "W5a": w5_create,
        "W5b": w5_restore,
        "L1": l1,
        "M1": (lambda: _start(W3), m1_check),
    },
    description="xstate_statemachine.SyncInterpreter",
)
