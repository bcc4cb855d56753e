"""Tests of the XState oracle harness (tools/xstate/oracle.mjs + fsm.testing.xstate_oracle).

The expected traces are derived by hand from XState v5's documented semantics and its source
(xstate 5.33.3, dist/raise-*.js: ``microstep``, ``macrostep``, ``Actor``; dist/xstate.*.js:
``SimulatedClock``), not recorded from the harness. Each test says which rule it relies on.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from fsm.testing.xstate_oracle import (
    OracleCaseError,
    XStateOracle,
)

Json = dict[str, Any]


@pytest.fixture(scope="module")
def oracle(xstate_oracle: XStateOracle) -> XStateOracle:
    return xstate_oracle


def act(name: str, params: Any = None) -> Json:
    """A recorded action as it appears in a trace."""
    return {"type": name, "params": params}


def ev(type_: str, **fields: Any) -> Json:
    return {"event": {"type": type_, **fields}}


def entry(
    value: Any,
    context: Json | None = None,
    actions: list[Json] | None = None,
    emitted: list[Json] | None = None,
    status: str = "active",
    output: Any = None,
    error: str | None = None,
) -> Json:
    return {
        "value": value,
        "context": {} if context is None else context,
        "actions": actions or [],
        "emitted": emitted or [],
        "status": status,
        "output": output,
        "error": error,
    }


def test_toggle(oracle: XStateOracle) -> None:
    machine = {
        "id": "toggle",
        "initial": "inactive",
        "states": {
            "inactive": {"on": {"TOGGLE": "active"}},
            "active": {"on": {"TOGGLE": "inactive"}},
        },
    }
    trace = oracle.run_one(machine, [ev("TOGGLE"), ev("TOGGLE"), ev("UNKNOWN")])
    assert trace == [
        entry("inactive"),
        entry("active"),
        entry("inactive"),
        entry("inactive"),  # an unhandled event changes nothing
    ]


def test_nested_transition_action_order(oracle: XStateOracle) -> None:
    # SCXML microstep, as XState's microstep(): exit set (deepest first), then the
    # transition's actions, then the entry set (outermost first).
    machine = {
        "id": "m",
        "initial": "p",
        "states": {
            "p": {
                "initial": "c",
                "entry": "enterP",
                "exit": "exitP",
                "states": {
                    "c": {
                        "entry": "enterC",
                        "exit": "exitC",
                        "on": {
                            "GO": {
                                "target": "#m.q",
                                "actions": [{"type": "tGo", "params": {"n": 1}}],
                            }
                        },
                    }
                },
            },
            "q": {
                "initial": "d",
                "entry": "enterQ",
                "exit": "exitQ",
                "states": {"d": {"entry": ["enterD"]}},
            },
        },
    }
    trace = oracle.run_one(machine, [ev("GO")])
    assert trace == [
        entry({"p": "c"}, actions=[act("enterP"), act("enterC")]),
        entry(
            {"q": "d"},
            actions=[
                act("exitC"),
                act("exitP"),
                act("tGo", {"n": 1}),
                act("enterQ"),
                act("enterD"),
            ],
        ),
    ]


def test_raise_is_handled_in_the_same_macrostep(oracle: XStateOracle) -> None:
    # raise() puts the event on the internal queue; it is processed after the current
    # microstep (so b's entry runs first) and before the macrostep ends.
    machine = {
        "id": "r",
        "initial": "a",
        "context": {"n": 0},
        "states": {
            "a": {
                "on": {
                    "GO": {
                        "target": "b",
                        "actions": [
                            {"type": "raise", "event": {"type": "NEXT"}},
                            "afterRaise",
                        ],
                    }
                }
            },
            "b": {
                "entry": ["enterB", {"type": "inc", "params": {"key": "n", "by": 5}}],
                "exit": "exitB",
                "on": {"NEXT": {"target": "c", "actions": "sawNext"}},
            },
            "c": {"entry": {"type": "inc", "params": {"key": "n"}}},
        },
    }
    trace = oracle.run_one(machine, [ev("GO")])
    assert trace == [
        entry("a", {"n": 0}),
        entry(
            "c",
            {"n": 6},
            actions=[act("afterRaise"), act("enterB"), act("exitB"), act("sawNext")],
        ),
    ]


AFTER_CHAIN = {
    "id": "chain",
    "initial": "a",
    "states": {
        "a": {"after": {"100": "b"}},
        "b": {"entry": "inB", "after": {"100": {"target": "c", "actions": "bToC"}}},
        "c": {"entry": "inC"},
    },
}


def test_after_chain_crosses_two_deadlines_in_one_advance(oracle: XStateOracle) -> None:
    # b's timer is armed when b is entered, at t=100 (not at t=250), so one advance of 250
    # reaches c: the oracle must walk deadline by deadline.
    trace = oracle.run_one(AFTER_CHAIN, [{"advance": 250}])
    assert trace == [
        entry("a"),
        entry("c", actions=[act("inB"), act("bToC"), act("inC")]),
    ]


def test_after_timer_starts_when_its_state_is_entered(oracle: XStateOracle) -> None:
    steps = [{"advance": 150}, {"advance": 49}, {"advance": 1}, {"advance": 1000}]
    trace = oracle.run_one(AFTER_CHAIN, steps)
    assert trace == [
        entry("a"),
        entry("b", actions=[act("inB")]),  # t=150: a's deadline 100 passed
        entry("b"),  # t=199: b's deadline is 100 + 100
        entry("c", actions=[act("bToC"), act("inC")]),  # t=200
        entry("c"),
    ]


def test_after_is_cancelled_by_leaving_the_state(oracle: XStateOracle) -> None:
    # Leaving a runs its exit, which cancels the delayed xstate.after event; re-entering
    # arms a fresh timer from the re-entry time.
    machine = {
        "id": "c",
        "initial": "a",
        "states": {
            "a": {
                "after": {"100": {"target": "timedOut", "actions": "timeout"}},
                "on": {"LEAVE": "elsewhere"},
            },
            "elsewhere": {"on": {"BACK": "a"}},
            "timedOut": {},
        },
    }
    steps = [
        {"advance": 50},
        ev("LEAVE"),
        {"advance": 100},  # t=150: the timer armed at 0 would have fired at 100
        ev("BACK"),  # re-armed at t=150, deadline 250
        {"advance": 99},
        {"advance": 1},
    ]
    trace = oracle.run_one(machine, steps)
    assert [e["value"] for e in trace] == [
        "a",
        "a",
        "elsewhere",
        "elsewhere",
        "a",
        "a",
        "timedOut",
    ]
    assert [e["actions"] for e in trace] == [[], [], [], [], [], [], [act("timeout")]]


def test_delayed_raise_ties_fire_in_order_armed_and_cancel_works(
    oracle: XStateOracle,
) -> None:
    machine = {
        "id": "d",
        "initial": "a",
        "states": {
            "a": {
                "entry": [
                    {"type": "raise", "event": {"type": "E1"}, "delay": 100},
                    {"type": "raise", "event": {"type": "E2"}, "delay": 100},
                    {
                        "type": "raise",
                        "event": {"type": "E3"},
                        "delay": 100,
                        "id": "third",
                    },
                ],
                "on": {
                    "E1": {"actions": "got1"},
                    "E2": {"actions": "got2"},
                    "E3": {"actions": "got3"},
                    "STOP3": {"actions": {"type": "cancel", "id": "third"}},
                },
            }
        },
    }
    trace = oracle.run_one(machine, [ev("STOP3"), {"advance": 100}, {"advance": 1000}])
    assert [e["actions"] for e in trace] == [[], [], [act("got1"), act("got2")], []]


def test_guards_of_the_convention(oracle: XStateOracle) -> None:
    # The first enabled transition in document order is taken.
    def rec(which: str) -> Json:
        return {"type": "took", "params": {"which": which}}

    machine = {
        "id": "g",
        "type": "parallel",
        "context": {"n": 0},
        "states": {
            "mode": {
                "initial": "off",
                "states": {
                    "off": {"on": {"TOGGLE": "on"}},
                    "on": {"on": {"TOGGLE": "off"}},
                },
            },
            "main": {
                "initial": "idle",
                "states": {
                    "idle": {
                        "on": {
                            "INC": {"actions": {"type": "inc", "params": {"key": "n"}}},
                            "SET": {
                                "actions": {
                                    "type": "setFromEvent",
                                    "params": {"key": "n", "field": "v"},
                                }
                            },
                            "CHECK": [
                                {
                                    "guard": {
                                        "type": "and",
                                        "guards": [
                                            {
                                                "type": "ctxGe",
                                                "params": {"key": "n", "value": 2},
                                            },
                                            {
                                                "type": "stateIn",
                                                "state": {"mode": "on"},
                                            },
                                        ],
                                    },
                                    "actions": rec("and"),
                                },
                                {
                                    "guard": {
                                        "type": "or",
                                        "guards": [
                                            "no",
                                            {
                                                "type": "ctxEq",
                                                "params": {"key": "n", "value": 1},
                                            },
                                        ],
                                    },
                                    "actions": rec("or"),
                                },
                                {
                                    "guard": {
                                        "type": "not",
                                        "guard": {
                                            "type": "stateIn",
                                            "state": "#g.mode.off",
                                        },
                                    },
                                    "actions": rec("not"),
                                },
                                {
                                    "guard": {
                                        "type": "eventEq",
                                        "params": {"field": "x", "value": 7},
                                    },
                                    "actions": rec("eventEq"),
                                },
                                {
                                    "guard": {
                                        "type": "ctxLt",
                                        "params": {"key": "n", "value": 0},
                                    },
                                    "actions": rec("ctxLt"),
                                },
                                {"guard": "yes", "actions": rec("yes")},
                            ],
                        }
                    }
                },
            },
        },
    }
    steps = [
        {"event": {"type": "CHECK", "x": 7}},  # n=0, off -> eventEq
        ev("CHECK"),  # nothing else holds -> yes
        ev("TOGGLE"),  # mode on
        ev("CHECK"),  # not(stateIn #g.mode.off) -> not
        ev("INC"),
        ev("INC"),  # n=2
        ev("CHECK"),  # ctxGe 2 and mode on -> and
        ev("SET", v=1),
        ev("CHECK"),  # ctxEq n 1 -> or
        ev("SET", v=-1),
        ev("TOGGLE"),  # mode off
        ev("CHECK"),  # ctxLt n 0 -> ctxLt
    ]
    trace = oracle.run_one(machine, steps)
    took = [[a["params"]["which"] for a in e["actions"]] for e in trace]
    assert took == [
        [],
        ["eventEq"],
        ["yes"],
        [],
        ["not"],
        [],
        [],
        ["and"],
        [],
        ["or"],
        [],
        [],
        ["ctxLt"],
    ]
    assert trace[-1]["value"] == {"mode": "off", "main": "idle"}
    assert [e["context"]["n"] for e in trace] == [
        0,
        0,
        0,
        0,
        0,
        1,
        2,
        2,
        1,
        1,
        -1,
        -1,
        -1,
    ]


def test_top_level_final_state_gives_done_and_output(oracle: XStateOracle) -> None:
    # Reaching a top-level final state: status done, output from the machine's `output`,
    # and (XState v5 microstep) the exit actions of every active state run, deepest first,
    # the root last. The actor is then stopped: later events change nothing.
    machine = {
        "id": "f",
        "initial": "working",
        "exit": "exitRoot",
        "output": {"result": "ok"},
        "states": {
            "working": {
                "exit": "exitWorking",
                "on": {"FINISH": {"target": "finished", "actions": "tFinish"}},
            },
            "finished": {
                "type": "final",
                "entry": "enterFinished",
                "exit": "exitFinished",
            },
        },
    }
    trace = oracle.run_one(machine, [ev("FINISH"), ev("FINISH")])
    done_actions = [
        act("exitWorking"),
        act("tFinish"),
        act("enterFinished"),
        act("exitFinished"),
        act("exitRoot"),
    ]
    assert trace == [
        entry("working"),
        entry("finished", actions=done_actions, status="done", output={"result": "ok"}),
        entry("finished", status="done", output={"result": "ok"}),
    ]


def test_always_loop_hits_max_iterations(oracle: XStateOracle) -> None:
    # macrostep() counts loop iterations, including the final check for more work, and
    # throws when the count exceeds maxIterations: with 50, the eventless microsteps
    # a->b, b->a, ... run 50 times (25 `tick`s, executed before the error is thrown), then
    # the actor errors, keeping the value and context of the last good snapshot.
    machine = {
        "id": "loop",
        "initial": "idle",
        "context": {"n": 5},
        "states": {
            "idle": {"on": {"GO": {"target": "a", "actions": "go"}}},
            "a": {
                "always": {
                    "target": "b",
                    "actions": ["tick", {"type": "inc", "params": {"key": "n"}}],
                }
            },
            "b": {"always": "a"},
        },
    }
    trace = oracle.run_one(machine, [ev("GO"), ev("GO")], maxIterations=50)
    assert trace == [
        entry("idle", {"n": 5}),
        entry(
            "idle",
            {"n": 5},
            actions=[act("go")] + [act("tick")] * 25,
            status="error",
            error="loop",
        ),
        entry("idle", {"n": 5}, status="error", error="loop"),
    ]


def test_max_iterations_bound_is_exclusive_of_the_settle_check(
    oracle: XStateOracle,
) -> None:
    # Two eventless microsteps after the event's own microstep need maxIterations >= 3.
    machine = {
        "id": "m",
        "initial": "a",
        "states": {
            "a": {"on": {"T": "x"}},
            "x": {"always": "y"},
            "y": {"always": "z"},
            "z": {},
        },
    }
    runs = oracle.run([{"machine": machine, "steps": [ev("T")], "maxIterations": n, "id": n} for n in (2, 3)])
    assert [(r["id"], r["trace"][1]["value"], r["trace"][1]["error"]) for r in runs] == [
        (2, "a", "loop"),
        (3, "z", None),
    ]


def test_emit_is_recorded(oracle: XStateOracle) -> None:
    machine = {
        "id": "e",
        "initial": "a",
        "entry": {"type": "emit", "event": {"type": "hello"}},
        "states": {
            "a": {
                "on": {
                    "PING": {
                        "actions": [
                            "before",
                            {"type": "emit", "event": {"type": "pong", "n": 1}},
                            {"type": "emit", "event": {"type": "pong", "n": 2}},
                        ]
                    }
                }
            }
        },
    }
    trace = oracle.run_one(machine, [ev("PING"), ev("OTHER")])
    assert trace == [
        entry("a", emitted=[{"type": "hello"}]),
        entry(
            "a",
            actions=[act("before")],
            emitted=[{"type": "pong", "n": 1}, {"type": "pong", "n": 2}],
        ),
        entry("a"),
    ]


def test_context_override_and_batch_ids(oracle: XStateOracle) -> None:
    machine = {
        "id": "ctx",
        "initial": "a",
        "context": {"n": 1},
        "states": {"a": {"on": {"INC": {"actions": {"type": "inc", "params": {"key": "n", "by": 2}}}}}},
    }
    cases: list[Json] = [
        {"id": "default", "machine": machine, "steps": [ev("INC")]},
        {
            "id": {"any": "json"},
            "machine": machine,
            "steps": [ev("INC")],
            "context": {"n": 10, "s": "x"},
        },
        {"machine": machine, "steps": []},
    ]
    results = oracle.run(cases)
    assert [r["id"] for r in results] == ["default", {"any": "json"}, None]
    assert results[0]["trace"][-1]["context"] == {"n": 3}
    assert results[1]["trace"][-1]["context"] == {"n": 12, "s": "x"}
    assert results[2]["trace"] == [entry("a", {"n": 1})]


def test_many_cases_through_one_process(oracle: XStateOracle) -> None:
    machine = {
        "id": "t",
        "initial": "a",
        "states": {"a": {"on": {"T": "b"}}, "b": {"on": {"T": "a"}}},
    }
    cases = [{"id": i, "machine": machine, "steps": [ev("T")] * (i % 7)} for i in range(2000)]
    results = oracle.run(cases)
    assert [r["id"] for r in results] == list(range(2000))
    assert all(r["trace"][-1]["value"] == ("b" if (i % 7) % 2 else "a") for i, r in enumerate(results))


def test_machine_that_cannot_be_created_is_fatal(oracle: XStateOracle) -> None:
    bad = {"id": "bad", "initial": "a", "states": {"a": {"on": {"T": "nowhere"}}}}
    (result,) = oracle.run([{"id": 1, "machine": bad, "steps": []}])
    assert result["id"] == 1
    assert "nowhere" in result["fatal"]
    with pytest.raises(OracleCaseError, match="nowhere"):
        oracle.run_one(bad, [])
    # the process is still usable afterwards
    assert oracle.run_one({"initial": "a", "states": {"a": {}}}, [])[0]["value"] == "a"


def test_dead_node_process_raises_with_its_stderr() -> None:
    # Run the oracle script with Python instead of node: it dies at once with a
    # SyntaxError, which must show up in the error (no node needed for this test).
    broken = XStateOracle(node=sys.executable, timeout=30)
    try:
        with pytest.raises(RuntimeError, match=r"exited unexpectedly(?s:.*)SyntaxError"):
            broken.run_one({"initial": "a", "states": {"a": {}}}, [])
    finally:
        broken.close()
