"""The pure step function, feature by feature, against XState v5's documented behaviour.

``machine.initial_transition()`` and ``machine.transition(snapshot, event)`` return
``(snapshot, effects)``; custom actions appear among the effects with their name as
``type`` (in the order XState runs them). Expected orders were derived from XState v5's
algorithm (``microstep``: exit set innermost first, then transition actions, then the
entry set outermost first) and spot-checked against XState itself.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

import pytest

import fsm
from fsm import EventError, InfiniteLoopError, Machine, StepError
from fsm.semantics.snapshot import Effect, Snapshot


def load(definition: dict[str, Any], **impl: Any) -> Machine:
    machine = Machine.from_dict(definition)
    return machine.provide(**impl) if impl else machine


def names(effects: Iterable[Effect]) -> list[str]:
    """The custom actions among the effects, in order."""
    return [e.type for e in effects if not e.builtin]


def run(machine: Machine, *events: Any, context: dict[str, Any] | None = None) -> tuple[Snapshot, list[list[str]]]:
    """Fold events through the pure API; return the last snapshot and each step's actions."""
    snap, effects = machine.initial_transition(context)
    log = [names(effects)]
    for event in events:
        snap, effects = machine.transition(snap, event)
        log.append(names(effects))
    return snap, log


# ------------------------------------------------------------------------- action order

NESTED = {
    "id": "m",
    "initial": "a",
    "states": {
        "a": {
            "initial": "a1",
            "entry": "enter_a",
            "exit": "exit_a",
            "states": {
                "a1": {
                    "initial": "a11",
                    "entry": "enter_a1",
                    "exit": "exit_a1",
                    "states": {
                        "a11": {
                            "entry": "enter_a11",
                            "exit": "exit_a11",
                            "on": {"GO": {"target": "#m.b.b1", "actions": ["t1", "t2"]}},
                        }
                    },
                }
            },
        },
        "b": {
            "initial": "b2",
            "entry": "enter_b",
            "exit": "exit_b",
            "states": {
                "b1": {"initial": "c", "entry": "enter_b1", "states": {"c": {"entry": "enter_c"}}},
                "b2": {"entry": "enter_b2"},
            },
        },
    },
}


def test_initial_transition_enters_outermost_first() -> None:
    snap, effects = load(NESTED).initial_transition()
    assert snap.value == {"a": {"a1": "a11"}}
    assert names(effects) == ["enter_a", "enter_a1", "enter_a11"]
    assert all(e.event == {"type": "xstate.init"} for e in effects)


def test_exit_innermost_then_transition_then_entry_outermost() -> None:
    _, log = run(load(NESTED), "GO")
    assert log[1] == ["exit_a11", "exit_a1", "exit_a", "t1", "t2", "enter_b", "enter_b1", "enter_c"]


def test_effects_carry_event_and_params() -> None:
    machine = load(
        {
            "id": "m",
            "initial": "a",
            "states": {"a": {"on": {"GO": {"actions": [{"type": "notify", "params": {"to": "ops"}}, "plain"]}}}},
        }
    )
    snap, _ = machine.initial_transition()
    _, effects = machine.transition(snap, {"type": "GO", "x": 1})
    assert [(e.type, e.params, e.event) for e in effects] == [
        ("notify", {"to": "ops"}, {"type": "GO", "x": 1}),
        ("plain", None, {"type": "GO", "x": 1}),
    ]
    assert [e.builtin for e in effects] == [False, False]


def test_initial_transition_actions_run_after_entry_before_children() -> None:
    machine = load(
        {
            "id": "m",
            "initial": "a",
            "states": {
                "a": {
                    "entry": "enter_a",
                    "initial": {"target": "a2", "actions": ["init_a"]},
                    "states": {"a1": {"entry": "enter_a1"}, "a2": {"entry": "enter_a2"}},
                },
                "b": {"on": {"BACK": "a"}},
            },
            "on": {"OUT": ".b"},
        }
    )
    snap, log = run(machine, "OUT", "BACK")
    assert snap.value == {"a": "a2"}
    assert log == [["enter_a", "init_a", "enter_a2"], [], ["enter_a", "init_a", "enter_a2"]]


def test_initial_actions_do_not_run_when_a_child_is_targeted_directly() -> None:
    machine = load(
        {
            "id": "m",
            "initial": "b",
            "states": {
                "a": {"initial": {"target": "a1", "actions": "init_a"}, "states": {"a1": {}, "a2": {}}},
                "b": {"on": {"GO": "#m.a.a2"}},
            },
        }
    )
    snap, log = run(machine, "GO")
    assert snap.value == {"a": "a2"}
    assert log == [[], []]


# ------------------------------------------------------------------------- self / reenter / targetless

SELF = {
    "id": "m",
    "initial": "a",
    "states": {
        "a": {
            "initial": "a1",
            "entry": "enter_a",
            "exit": "exit_a",
            "on": {
                "SELF": {"target": "a", "actions": "t"},
                "REENTER": {"target": "a", "reenter": True, "actions": "t"},
                "CHILD": {"target": ".a2", "actions": "t"},
                "CHILD_REENTER": {"target": ".a2", "reenter": True, "actions": "t"},
                "TARGETLESS": {"actions": "t"},
            },
            "states": {
                "a1": {"entry": "enter_a1", "exit": "exit_a1", "on": {"NEXT": "a2"}},
                "a2": {
                    "entry": "enter_a2",
                    "exit": "exit_a2",
                    "on": {
                        "ATOMIC_SELF": {"target": "a2", "actions": "t"},
                        "ATOMIC_REENTER": {"target": "a2", "reenter": True, "actions": "t"},
                    },
                },
            },
        }
    },
}


@pytest.mark.parametrize(
    ("event", "value", "actions"),
    [
        # XState v5: reenter defaults to false, so a self-targeting transition does not
        # leave the source; it only resets the source's descendants.
        ("SELF", {"a": "a1"}, ["exit_a2", "t", "enter_a1"]),
        ("REENTER", {"a": "a1"}, ["exit_a2", "exit_a", "t", "enter_a", "enter_a1"]),
        ("CHILD", {"a": "a2"}, ["exit_a2", "t", "enter_a2"]),
        ("CHILD_REENTER", {"a": "a2"}, ["exit_a2", "exit_a", "t", "enter_a", "enter_a2"]),
        ("TARGETLESS", {"a": "a2"}, ["t"]),
        ("ATOMIC_SELF", {"a": "a2"}, ["t"]),
        ("ATOMIC_REENTER", {"a": "a2"}, ["exit_a2", "t", "enter_a2"]),
    ],
)
def test_self_transitions(event: str, value: Any, actions: list[str]) -> None:
    machine = load(SELF)
    snap, _ = run(machine, "NEXT")
    assert snap.value == {"a": "a2"}
    after, effects = machine.transition(snap, event)
    assert after.value == value
    assert names(effects) == actions


def test_targetless_transition_keeps_configuration_and_assigns() -> None:
    machine = load(
        {
            "id": "m",
            "initial": "a",
            "context": {"n": 0},
            "states": {
                "a": {
                    "initial": "a1",
                    "states": {"a1": {"entry": "enter_a1", "exit": "exit_a1"}},
                    "on": {
                        "INC": {"actions": [{"type": "assign", "assignment": {"n": {"expr": "context.n + 1"}}}, "t"]}
                    },
                }
            },
        }
    )
    snap, log = run(machine, "INC", "INC")
    assert snap.value == {"a": "a1"}
    assert snap.context == {"n": 2}
    assert log[1:] == [["t"], ["t"]]


# ------------------------------------------------------------------------- guards

GUARDED = {
    "id": "m",
    "initial": "idle",
    "context": {"n": 0, "max": 2},
    "states": {
        "idle": {
            "on": {
                "GO": [
                    {"target": "low", "guard": {"type": "below", "params": {"limit": 1}}},
                    {"target": "mid", "guard": {"type": "below", "params": {"limit": 5}}},
                    {"target": "high"},
                ],
                "AND": {
                    "target": "mid",
                    "guard": {"type": "and", "guards": ["ok", {"type": "below", "params": {"limit": 3}}]},
                },
                "OR": {
                    "target": "mid",
                    "guard": {"type": "or", "guards": ["nope", {"type": "below", "params": {"limit": 3}}]},
                },
                "NOT": {"target": "mid", "guard": {"type": "not", "guard": "nope"}},
                "NOT_OK": {"target": "mid", "guard": {"type": "not", "guard": "ok"}},
                "IN_ID": {"target": "mid", "guard": {"type": "stateIn", "state": "#m.idle"}},
                "IN_VALUE": {"target": "mid", "guard": {"type": "stateIn", "state": "idle"}},
                "IN_OTHER": {"target": "mid", "guard": {"type": "stateIn", "state": "#m.low"}},
                "EVENT": {"target": "mid", "guard": {"type": "eventHas", "params": {"field": "ok"}}},
            }
        },
        "low": {},
        "mid": {},
        "high": {},
    },
}

GUARD_IMPLS = {
    "below": lambda ctx, ev, params: ctx["n"] < params["limit"],
    "ok": lambda ctx, ev, params: True,
    "nope": lambda ctx, ev, params: False,
    "eventHas": lambda ctx, ev, params: bool(ev.get(params["field"])),
}


@pytest.mark.parametrize(
    ("n", "event", "target"),
    [
        (0, "GO", "low"),
        (1, "GO", "mid"),
        (4, "GO", "mid"),
        (5, "GO", "high"),
        (2, "AND", "mid"),
        (3, "AND", "idle"),
        (2, "OR", "mid"),
        (3, "OR", "idle"),
        (0, "NOT", "mid"),
        (0, "NOT_OK", "idle"),
        (0, "IN_ID", "mid"),
        (0, "IN_VALUE", "mid"),
        (0, "IN_OTHER", "idle"),
        (0, {"type": "EVENT", "ok": True}, "mid"),
        (0, {"type": "EVENT", "ok": False}, "idle"),
    ],
)
def test_guards(n: int, event: Any, target: str) -> None:
    machine = load(GUARDED, guards=GUARD_IMPLS)
    snap, _ = machine.initial_transition({"n": n})
    after, _ = machine.transition(snap, event)
    assert after.value == target


def test_guard_receives_context_event_and_params() -> None:
    calls: list[tuple[Any, Any, Any]] = []

    def spy(ctx: Any, ev: Any, params: Any) -> bool:
        calls.append((dict(ctx), dict(ev), dict(params)))
        return False

    machine = load(GUARDED, guards={**GUARD_IMPLS, "below": spy})
    snap, _ = machine.initial_transition({"n": 7})
    machine.transition(snap, {"type": "GO", "x": 1})
    assert calls == [
        ({"n": 7, "max": 2}, {"type": "GO", "x": 1}, {"limit": 1}),
        ({"n": 7, "max": 2}, {"type": "GO", "x": 1}, {"limit": 5}),
    ]


def test_python_guard_combinators() -> None:
    machine = load(
        {
            "id": "m",
            "initial": "a",
            "states": {"a": {"on": {"GO": {"target": "b", "guard": "combo"}}}, "b": {}},
        },
        guards={
            "combo": fsm.and_(
                ["ok", fsm.not_("nope"), fsm.or_([lambda c, e, p: e.get("go"), "nope"]), fsm.state_in("a")]
            ),
            "ok": lambda c, e, p: True,
            "nope": lambda c, e, p: False,
        },
    )
    snap, _ = machine.initial_transition()
    assert machine.transition(snap, "GO")[0].value == "a"
    assert machine.transition(snap, {"type": "GO", "go": True})[0].value == "b"


def test_state_in_a_parallel_region() -> None:
    machine = load(
        {
            "id": "m",
            "type": "parallel",
            "states": {
                "light": {
                    "initial": "off",
                    "states": {"off": {"on": {"FLIP": "on"}}, "on": {"on": {"FLIP": "off"}}},
                },
                "door": {
                    "initial": "shut",
                    "states": {
                        "shut": {
                            "on": {"OPEN": {"target": "open", "guard": {"type": "stateIn", "state": {"light": "on"}}}}
                        },
                        "open": {},
                    },
                },
            },
        }
    )
    snap, _ = run(machine, "OPEN")
    assert snap.value == {"light": "off", "door": "shut"}
    snap, _ = run(machine, "FLIP", "OPEN")
    assert snap.value == {"light": "on", "door": "open"}


# ------------------------------------------------------------------------- wildcards

WILD = {
    "id": "m",
    "initial": "a",
    "states": {
        "a": {
            "on": {
                "*": {"actions": "any"},
                "order.*": {"actions": "order_any"},
                "order.paid.*": {"actions": "order_paid_any"},
                "order.paid": {"actions": "order_paid"},
                "order.guarded": {"guard": "nope", "actions": "exact_guarded"},
            }
        }
    },
}


@pytest.mark.parametrize(
    ("event", "action"),
    [
        ("order.paid", "order_paid"),  # exact beats every wildcard
        ("order.paid.late", "order_paid_any"),  # longer partial beats shorter
        ("order.paid.late.very", "order_paid_any"),
        ("order.shipped", "order_any"),
        ("order", "order_any"),  # `order.*` also matches `order` itself, as in XState
        ("orders.x", "any"),  # token-wise, not a string prefix
        ("other", "any"),
        ("order.guarded", "order_any"),  # an exact match whose guard fails falls through
    ],
)
def test_wildcard_priority(event: str, action: str) -> None:
    machine = load(WILD, guards={"nope": lambda c, e, p: False})
    snap, _ = machine.initial_transition()
    _, effects = machine.transition(snap, event)
    assert names(effects) == [action]


def test_wildcard_in_child_beats_exact_in_parent() -> None:
    # A state's own transitions apply only when no active descendant handles the event.
    machine = load(
        {
            "id": "m",
            "initial": "a",
            "on": {"GO": {"actions": "parent_exact"}},
            "states": {"a": {"on": {"*": {"actions": "child_any"}}}},
        }
    )
    _, log = run(machine, "GO")
    assert log[1] == ["child_any"]


# ------------------------------------------------------------------------- parallel states

PARALLEL = {
    "id": "m",
    "initial": "p",
    "states": {
        "p": {
            "type": "parallel",
            "entry": "enter_p",
            "exit": "exit_p",
            "on": {"PARENT_ONLY": {"actions": "p_handles"}, "E": {"actions": "p_shadowed"}},
            "states": {
                "x": {
                    "initial": "x1",
                    "states": {
                        "x1": {
                            "exit": "exit_x1",
                            "on": {
                                "E": {"target": "x2", "actions": "tx"},
                                "LEAVE_X": {"target": "#m.out", "actions": "tx"},
                                "LEAVE_Y": {"target": "x2", "actions": "tx"},
                            },
                        },
                        "x2": {"entry": "enter_x2", "exit": "exit_x2"},
                    },
                },
                "y": {
                    "initial": "y1",
                    "states": {
                        "y1": {
                            "exit": "exit_y1",
                            "on": {
                                "E": {"target": "y2", "actions": "ty"},
                                "LEAVE_X": {"target": "y2", "actions": "ty"},
                                "LEAVE_Y": {"target": "#m.out", "actions": "ty"},
                            },
                        },
                        "y2": {"entry": "enter_y2", "exit": "exit_y2"},
                    },
                },
            },
        },
        "out": {
            "entry": "enter_out",
            "on": {"BOTH": {"target": ["#m.p.x.x2", "#m.p.y.y2"], "actions": "t"}},
        },
    },
}


def test_parallel_initial_enters_every_region() -> None:
    snap, log = run(load(PARALLEL))
    assert snap.value == {"p": {"x": "x1", "y": "y1"}}
    assert log[0] == ["enter_p"]


def test_both_regions_handle_an_event() -> None:
    snap, log = run(load(PARALLEL), "E")
    assert snap.value == {"p": {"x": "x2", "y": "y2"}}
    # exits in reverse document order, transition actions and entries in document order
    assert log[1] == ["exit_y1", "exit_x1", "tx", "ty", "enter_x2", "enter_y2"]


def test_parent_handles_only_what_no_region_handles() -> None:
    _, log = run(load(PARALLEL), "PARENT_ONLY")
    assert log[1] == ["p_handles"]
    _, log = run(load(PARALLEL), "E")
    assert "p_shadowed" not in log[1]


@pytest.mark.parametrize(
    ("event", "actions"),
    [
        # Conflicting transitions (their exit sets intersect): the one selected first in
        # document order wins, the other is dropped with its actions.
        ("LEAVE_X", ["exit_y1", "exit_x1", "exit_p", "tx", "enter_out"]),
        ("LEAVE_Y", ["exit_x1", "tx", "enter_x2"]),
    ],
)
def test_conflicting_transitions_in_regions(event: str, actions: list[str]) -> None:
    snap, log = run(load(PARALLEL), event)
    assert log[1] == actions
    assert snap.value == ("out" if event == "LEAVE_X" else {"p": {"x": "x2", "y": "y1"}})


def test_conflict_descendant_source_wins() -> None:
    # Eventless transitions from a state and its descendant with intersecting exit sets:
    # SCXML/XState keep the descendant's.
    machine = load(
        {
            "id": "m",
            "initial": "a",
            "context": {"go": False},
            "states": {
                "a": {
                    "initial": "a1",
                    "on": {"GO": {"actions": {"type": "assign", "assignment": {"go": True}}}},
                    "states": {
                        "a1": {"always": {"target": "a2", "guard": {"expr": "context.go"}, "actions": "child"}},
                        "a2": {},
                    },
                    "always": {"target": "b", "guard": {"expr": "context.go"}, "actions": "parent"},
                },
                "b": {},
            },
        }
    )
    snap, log = run(machine, "GO")
    # the child's transition runs first; then the parent's fires in the next microstep
    assert log[1] == ["child", "parent"]
    assert snap.value == "b"


def test_multiple_targets_into_regions() -> None:
    machine = load(PARALLEL)
    snap, _ = run(machine, "LEAVE_X")
    assert snap.value == "out"
    snap, effects = machine.transition(snap, "BOTH")
    assert snap.value == {"p": {"x": "x2", "y": "y2"}}
    assert names(effects) == ["t", "enter_p", "enter_x2", "enter_y2"]


def test_multiple_targets_leave_other_regions_at_their_initial_state() -> None:
    definition = copy.deepcopy(PARALLEL)
    definition["states"]["out"]["on"]["ONE"] = {"target": "#m.p.y.y2"}
    snap, _ = run(load(definition), "LEAVE_X", "ONE")
    assert snap.value == {"p": {"x": "x1", "y": "y2"}}


# ------------------------------------------------------------------------- history


def history_machine(initial: str) -> dict[str, Any]:
    return {
        "id": "m",
        "initial": initial,
        "states": {
            "a": {
                "initial": "a1",
                "on": {"OUT": "b"},
                "states": {
                    "a1": {"on": {"NEXT": "a2"}},
                    "a2": {
                        "initial": "x",
                        "states": {"x": {"on": {"NEXT": "y"}}, "y": {"entry": "enter_y"}},
                    },
                    "shallow": {"type": "history"},
                    "deep": {"type": "history", "history": "deep"},
                    "defaulted": {"type": "history", "target": "a2.y"},
                    "deep_defaulted": {"type": "history", "history": "deep", "target": "a2"},
                },
            },
            "b": {
                "on": {
                    "SHALLOW": "#m.a.shallow",
                    "DEEP": "#m.a.deep",
                    "DEFAULTED": "#m.a.defaulted",
                    "DD": "#m.a.deep_defaulted",
                }
            },
        },
    }


@pytest.mark.parametrize(
    ("event", "value"),
    [
        ("SHALLOW", {"a": "a1"}),  # no memory: the parent's initial state
        ("DEEP", {"a": "a1"}),
        ("DEFAULTED", {"a": {"a2": "y"}}),  # no memory: the history state's own target
        ("DD", {"a": {"a2": "x"}}),
    ],
)
def test_history_defaults(event: str, value: Any) -> None:
    snap, _ = run(load(history_machine("b")), event)
    assert snap.value == value


@pytest.mark.parametrize(
    ("event", "value"),
    [
        ("SHALLOW", {"a": {"a2": "x"}}),  # remembers a2, re-enters it by default
        ("DEEP", {"a": {"a2": "y"}}),  # remembers the atomic states
        ("DEFAULTED", {"a": {"a2": "x"}}),  # memory beats the default
        ("DD", {"a": {"a2": "y"}}),
    ],
)
def test_history_memory(event: str, value: Any) -> None:
    snap, log = run(load(history_machine("a")), "NEXT", "NEXT", "OUT", event)
    assert snap.value == value
    assert log[-1] == (["enter_y"] if value == {"a": {"a2": "y"}} else [])


def test_history_memory_is_updated_on_every_exit() -> None:
    machine = load(history_machine("a"))
    snap, _ = run(machine, "NEXT", "OUT", "DEEP")
    assert snap.value == {"a": {"a2": "x"}}
    for event in ("NEXT", "OUT", "DEEP"):
        snap, _ = machine.transition(snap, event)
    assert snap.value == {"a": {"a2": "y"}}
    assert {k: [n.id for n in v] for k, v in snap.history.items()} == {
        "m.a.shallow": ["m.a.a2"],
        "m.a.deep": ["m.a.a2.y"],
        "m.a.defaulted": ["m.a.a2"],
        "m.a.deep_defaulted": ["m.a.a2.y"],
    }


def test_deep_history_in_parallel_state() -> None:
    machine = load(
        {
            "id": "m",
            "initial": "p",
            "states": {
                "p": {
                    "type": "parallel",
                    "on": {"OUT": "#m.off"},
                    "states": {
                        "x": {"initial": "x1", "states": {"x1": {"on": {"X": "x2"}}, "x2": {}}},
                        "y": {"initial": "y1", "states": {"y1": {"on": {"Y": "y2"}}, "y2": {}}},
                        "h": {"type": "history", "history": "deep"},
                    },
                },
                "off": {"on": {"BACK": "#m.p.h", "RESET": "p"}},
            },
        }
    )
    snap, _ = run(machine, "Y", "OUT", "BACK")
    assert snap.value == {"p": {"x": "x1", "y": "y2"}}
    snap, _ = run(machine, "Y", "OUT", "RESET")
    assert snap.value == {"p": {"x": "x1", "y": "y1"}}


# ------------------------------------------------------------------------- final states

FINAL = {
    "id": "m",
    "initial": "job",
    "context": {"n": 2},
    "output": {"expr": "event.output"},
    "states": {
        "job": {
            "initial": "work",
            "onDone": {
                "target": "finished",
                "actions": [{"type": "assign", "assignment": {"got": {"expr": "event.output"}}}, "job_done"],
            },
            "states": {
                "work": {"on": {"FINISH": "end"}},
                "end": {"type": "final", "entry": "enter_end", "output": {"total": {"expr": "context.n * 10"}}},
            },
        },
        "finished": {"type": "final", "exit": "exit_finished", "output": {"result": {"expr": "context.got.total"}}},
    },
}


def test_final_state_raises_done_event_with_output() -> None:
    machine = load(FINAL)
    snap, _ = machine.initial_transition()
    snap, effects = machine.transition(snap, "FINISH")
    done = [e for e in effects if e.type == "job_done"]
    assert done[0].event == {"type": "xstate.done.state.m.job", "output": {"total": 20}}
    assert snap.context == {"n": 2, "got": {"total": 20}}


def test_top_level_final_sets_status_and_output() -> None:
    machine = load(FINAL)
    snap, log = run(machine, "FINISH")
    assert snap.status == "done"
    assert snap.value == "finished"
    assert snap.output == {"result": 20}
    # XState runs the exit actions of every state when the machine completes
    assert log[1] == ["enter_end", "job_done", "exit_finished"]


def test_a_done_machine_ignores_events() -> None:
    machine = load(FINAL)
    snap, _ = run(machine, "FINISH")
    again, effects = machine.transition(snap, "FINISH")
    assert again is snap
    assert effects == []


def test_done_state_event_can_be_handled_by_name() -> None:
    machine = load(
        {
            "id": "m",
            "initial": "job",
            "on": {"xstate.done.state.m.job": {"actions": "by_name"}},
            "states": {"job": {"initial": "end", "states": {"end": {"type": "final"}}}},
        }
    )
    snap, log = run(machine)
    assert log[0] == ["by_name"]
    assert snap.status == "active"


def test_root_final_without_output() -> None:
    machine = load({"id": "m", "initial": "a", "states": {"a": {"on": {"STOP": "end"}}, "end": {"type": "final"}}})
    snap, _ = run(machine, "STOP")
    assert snap.status == "done"
    assert snap.output is None


def test_root_output_constant() -> None:
    machine = load({"id": "m", "initial": "end", "output": {"ok": True}, "states": {"end": {"type": "final"}}})
    snap, _ = machine.initial_transition()
    assert snap.status == "done"
    assert snap.output == {"ok": True}


PARALLEL_DONE = {
    "id": "m",
    "initial": "p",
    "states": {
        "p": {
            "type": "parallel",
            "onDone": {"target": "all_done", "actions": "p_done"},
            "states": {
                "x": {
                    "initial": "x1",
                    "onDone": {"actions": "x_done"},
                    "states": {"x1": {"on": {"X": "x2"}}, "x2": {"type": "final"}},
                },
                "y": {
                    "initial": "y1",
                    "onDone": {"actions": "y_done"},
                    "states": {"y1": {"on": {"Y": "y2"}}, "y2": {"type": "final"}},
                },
            },
        },
        "all_done": {},
    },
}


@pytest.mark.parametrize("order", [("X", "Y"), ("Y", "X")])
def test_parallel_done_when_all_regions_final(order: tuple[str, str]) -> None:
    machine = load(PARALLEL_DONE)
    snap, log = run(machine, order[0])
    assert snap.value == {"p": {"x": "x2" if order[0] == "X" else "x1", "y": "y2" if order[0] == "Y" else "y1"}}
    assert log[1] == [f"{order[0].lower()}_done"]
    snap, effects = machine.transition(snap, order[1])
    assert snap.value == "all_done"
    assert names(effects) == [f"{order[1].lower()}_done", "p_done"]
    assert [e.event["type"] for e in effects if e.type == "p_done"] == ["xstate.done.state.m.p"]


def test_parallel_root_done() -> None:
    definition = copy.deepcopy(PARALLEL_DONE["states"]["p"])
    definition.pop("onDone")
    machine = load({"id": "m", **definition, "output": {"expr": "event.output"}})
    snap, _ = run(machine, "X", "Y")
    assert snap.status == "done"
    assert snap.value == {"x": "x2", "y": "y2"}


# ------------------------------------------------------------------------- eventless

ALWAYS = {
    "id": "m",
    "initial": "idle",
    "context": {"n": 0},
    "states": {
        "idle": {"on": {"GO": {"target": "check", "actions": "t"}}},
        "check": {
            "entry": "enter_check",
            "always": [
                {"target": "big", "guard": {"expr": "event.n > 10"}, "actions": "to_big"},
                {"target": "small", "actions": "to_small"},
            ],
        },
        "big": {"entry": "enter_big", "always": {"target": "final_check"}},
        "small": {"entry": "enter_small"},
        "final_check": {"entry": "enter_final_check"},
    },
}


@pytest.mark.parametrize(
    ("n", "value", "actions"),
    [
        (20, "final_check", ["t", "enter_check", "to_big", "enter_big", "enter_final_check"]),
        (1, "small", ["t", "enter_check", "to_small", "enter_small"]),
    ],
)
def test_always_chains_and_guards(n: int, value: str, actions: list[str]) -> None:
    snap, log = run(load(ALWAYS), {"type": "GO", "n": n})
    assert snap.value == value
    assert log[1] == actions


def test_always_guard_is_reevaluated_after_assign() -> None:
    machine = load(
        {
            "id": "m",
            "initial": "counting",
            "context": {"n": 0},
            "states": {
                "counting": {
                    "always": {"target": "done", "guard": {"expr": "context.n >= 3"}},
                    "on": {"INC": {"actions": {"type": "assign", "assignment": {"n": {"expr": "context.n + 1"}}}}},
                },
                "done": {},
            },
        }
    )
    snap, _ = run(machine, "INC", "INC")
    assert snap.value == "counting"
    snap, _ = machine.transition(snap, "INC")
    assert snap.value == "done"
    assert snap.context == {"n": 3}


def test_always_runs_on_start() -> None:
    snap, log = run(load({"id": "m", "initial": "a", "states": {"a": {"always": "b"}, "b": {"entry": "enter_b"}}}))
    assert snap.value == "b"
    assert log[0] == ["enter_b"]


def test_always_loop_stops_with_infinite_loop_error() -> None:
    machine = Machine.from_dict(
        {
            "id": "loop",
            "initial": "idle",
            "context": {"n": 0},
            "states": {
                "idle": {"on": {"GO": "ping"}},
                "ping": {
                    "always": {
                        "target": "pong",
                        "actions": {"type": "assign", "assignment": {"n": {"expr": "context.n + 1"}}},
                    }
                },
                "pong": {"always": "ping"},
            },
        },
        max_microsteps=50,
    )
    snap, _ = machine.initial_transition()
    before = snap.to_dict()
    with pytest.raises(InfiniteLoopError) as info:
        machine.transition(snap, "GO")
    err = info.value
    assert isinstance(err, StepError)
    assert err.kind == "loop"
    assert err.event_type == "GO"
    assert err.bound == 50
    assert set(err.state_ids) == {"loop.ping", "loop.pong"}
    assert "#loop.ping" in str(err) and "#loop.pong" in str(err)
    assert snap.to_dict() == before
    assert snap.value == "idle" and snap.context == {"n": 0}


def test_targetless_always_with_assign_loop_is_caught() -> None:
    machine = Machine.from_dict(
        {
            "id": "spin",
            "initial": "a",
            "context": {"n": 0},
            "states": {
                "a": {
                    "on": {"GO": "b"},
                },
                "b": {"always": {"actions": {"type": "assign", "assignment": {"n": {"expr": "context.n + 1"}}}}},
            },
        },
        max_microsteps=30,
    )
    snap, _ = machine.initial_transition()
    with pytest.raises(InfiniteLoopError) as info:
        machine.transition(snap, "GO")
    assert "spin.b" in info.value.state_ids


def test_raise_loop_is_caught() -> None:
    machine = Machine.from_dict(
        {
            "id": "echo",
            "initial": "a",
            "states": {"a": {"on": {"PING": {"actions": {"type": "raise", "event": {"type": "PING"}}}}}},
        },
        max_microsteps=40,
    )
    snap, _ = machine.initial_transition()
    with pytest.raises(InfiniteLoopError):
        machine.transition(snap, "PING")


def test_loop_bound_from_options() -> None:
    definition = {
        "id": "m",
        "initial": "a",
        "options": {"max_microsteps": 7},
        "states": {"a": {"on": {"GO": "b"}}, "b": {"always": "c"}, "c": {"always": "b"}},
    }
    machine = Machine.from_dict(definition)
    snap, _ = machine.initial_transition()
    with pytest.raises(InfiniteLoopError) as info:
        machine.transition(snap, "GO")
    assert info.value.bound == 7


# ------------------------------------------------------------------------- raise


def test_raised_events_run_in_the_same_macrostep_in_order() -> None:
    machine = load(
        {
            "id": "m",
            "initial": "a",
            "states": {
                "a": {
                    "on": {
                        "GO": {
                            "target": "b",
                            "actions": [
                                {"type": "raise", "event": {"type": "FIRST"}},
                                {"type": "raise", "event": {"type": "SECOND", "v": 2}},
                                "t",
                            ],
                        }
                    }
                },
                "b": {"entry": "enter_b", "on": {"FIRST": {"target": "c", "actions": "got_first"}}},
                "c": {"entry": "enter_c", "on": {"SECOND": {"target": "d", "actions": "got_second"}}},
                "d": {"on": {"FIRST": "e"}},
                "e": {},
            },
        }
    )
    snap, effects = run(machine, "GO")
    assert snap.value == "d"
    assert effects[1] == ["t", "enter_b", "got_first", "enter_c", "got_second"]


def test_raise_is_processed_before_the_next_external_event() -> None:
    machine = load(
        {
            "id": "m",
            "initial": "a",
            "states": {
                "a": {
                    "on": {
                        "GO": {"target": "b", "actions": {"type": "raise", "event": {"type": "INTERNAL"}}},
                        "EXTERNAL": "wrong",
                    }
                },
                "b": {"on": {"INTERNAL": "c", "EXTERNAL": "wrong"}},
                "c": {"on": {"EXTERNAL": "right"}},
                "right": {},
                "wrong": {},
            },
        }
    )
    snap, _ = run(machine, "GO")
    assert snap.value == "c"
    snap, _ = machine.transition(snap, "EXTERNAL")
    assert snap.value == "right"


def test_eventless_transitions_run_before_raised_events() -> None:
    machine = load(
        {
            "id": "m",
            "initial": "a",
            "states": {
                "a": {"on": {"GO": {"target": "b", "actions": {"type": "raise", "event": {"type": "NEXT"}}}}},
                "b": {"always": "c", "on": {"NEXT": "wrong"}},
                "c": {"on": {"NEXT": "right"}},
                "right": {},
                "wrong": {},
            },
        }
    )
    snap, _ = run(machine, "GO")
    assert snap.value == "right"


def test_raise_with_expression_event() -> None:
    machine = load(
        {
            "id": "m",
            "initial": "a",
            "context": {"n": 41},
            "states": {
                "a": {
                    "on": {
                        "GO": {"actions": {"type": "raise", "event": {"type": "ECHO", "n": {"expr": "context.n + 1"}}}},
                        "ECHO": {"actions": "echo"},
                    }
                },
            },
        }
    )
    snap, _ = machine.initial_transition()
    _, effects = machine.transition(snap, "GO")
    assert [(e.type, e.event) for e in effects] == [("echo", {"type": "ECHO", "n": 42})]


# ------------------------------------------------------------------------- delayed transitions

AFTER = {
    "id": "m",
    "initial": "a",
    "states": {
        "a": {"after": {"100": "b", "50": {"target": "c", "guard": "nope"}}, "on": {"LEAVE": "d"}},
        "b": {"after": {"200": "d"}},
        "c": {},
        "d": {"on": {"BACK": "a"}},
    },
}


def test_after_arms_timers_named_like_xstate() -> None:
    machine = load(AFTER, guards={"nope": lambda c, e, p: False})
    snap, effects = machine.initial_transition(now=1000)
    assert [(t.id, t.event["type"], t.due) for t in snap.timers] == [
        ("xstate.after.100.m.a", "xstate.after.100.m.a", 1100),
        ("xstate.after.50.m.a", "xstate.after.50.m.a", 1050),
    ]
    assert [e.type for e in effects] == ["xstate.schedule", "xstate.schedule"]


def test_after_event_fires_and_rearms() -> None:
    machine = load(AFTER, guards={"nope": lambda c, e, p: False})
    snap, _ = machine.initial_transition()
    # the 50 ms timer fires but its guard fails: nothing changes except the timer is gone
    timer = snap.timers[1]
    snap, _ = machine.transition(snap, timer.event, timer=timer.id, now=50)
    assert snap.value == "a"
    assert [t.id for t in snap.timers] == ["xstate.after.100.m.a"]
    timer = snap.timers[0]
    snap, effects = machine.transition(snap, timer.event, timer=timer.id, now=100)
    assert snap.value == "b"
    assert [(t.id, t.due) for t in snap.timers] == [("xstate.after.200.m.b", 300)]
    assert [e.type for e in effects] == ["xstate.schedule"]


def test_leaving_a_state_cancels_its_timers() -> None:
    machine = load(AFTER, guards={"nope": lambda c, e, p: False})
    snap, _ = machine.initial_transition()
    snap, effects = machine.transition(snap, "LEAVE")
    assert snap.value == "d"
    assert snap.timers == ()
    assert sorted(e.params["id"] for e in effects if e.type == "xstate.cancel") == [
        "xstate.after.100.m.a",
        "xstate.after.50.m.a",
    ]
    snap, _ = machine.transition(snap, "BACK", now=500)
    assert sorted(t.due for t in snap.timers) == [550, 600]


def test_after_event_sent_by_hand_after_leaving_is_ignored() -> None:
    machine = load(AFTER, guards={"nope": lambda c, e, p: False})
    snap, _ = run(machine, "LEAVE")
    same, effects = machine.transition(snap, "xstate.after.100.m.a")
    assert same is snap and effects == []


def test_named_delay_from_provide() -> None:
    machine = load(
        {"id": "m", "initial": "a", "context": {"wait": 70}, "states": {"a": {"after": {"slow": "b"}}, "b": {}}},
        delays={"slow": lambda ctx, ev, params: ctx["wait"] * 2},
    )
    snap, _ = machine.initial_transition(now=10)
    assert [(t.id, t.due) for t in snap.timers] == [("xstate.after.slow.m.a", 150)]


def test_delayed_raise_and_cancel() -> None:
    machine = load(
        {
            "id": "m",
            "initial": "a",
            "states": {
                "a": {
                    "entry": {"type": "raise", "event": {"type": "PING"}, "delay": 30, "id": "ping"},
                    "on": {"STOP": {"actions": {"type": "cancel", "id": "ping"}}, "PING": "b"},
                },
                "b": {},
            },
        }
    )
    snap, _ = machine.initial_transition()
    assert [(t.id, t.event, t.due) for t in snap.timers] == [("ping", {"type": "PING"}, 30)]
    stopped, _ = machine.transition(snap, "STOP")
    assert stopped.timers == ()
    fired, _ = machine.transition(snap, snap.timers[0].event, timer="ping")
    assert fired.value == "b" and fired.timers == ()


# ------------------------------------------------------------------------- context and assign

ASSIGNING = {
    "id": "m",
    "initial": "a",
    "context": {"n": 1, "items": []},
    "states": {
        "a": {
            "on": {
                "JSON": {
                    "actions": [
                        {"type": "assign", "assignment": {"n": {"expr": "context.n + event.by"}, "label": "set"}},
                        "seen",
                    ]
                },
                "FN": {"actions": ["bump", "seen"]},
                "DICT": {"actions": ["push", "seen"]},
                "PARAMS": {"actions": [{"type": "bump", "params": {"by": 10}}, "seen"]},
                "LIST": {"actions": "combo"},
            }
        }
    },
}

ASSIGN_IMPLS = {
    "bump": fsm.assign(lambda ctx, ev, params: {"n": ctx["n"] + params.get("by", 1)}),
    "push": fsm.assign({"items": lambda ctx, ev, params: [*ctx["items"], ev.get("item")], "label": "pushed"}),
    "seen": lambda ctx, ev, params: None,
    "combo": [
        "bump",
        fsm.assign({"n": lambda ctx, ev, params: ctx["n"] * 100}),
        "seen",
        fsm.raise_event({"type": "JSON", "by": 7}),
    ],
}


@pytest.mark.parametrize(
    ("event", "context", "seen_n"),
    [
        ({"type": "JSON", "by": 5}, {"n": 6, "items": [], "label": "set"}, 6),
        ("FN", {"n": 2, "items": []}, 2),
        ({"type": "DICT", "item": "x"}, {"n": 1, "items": ["x"], "label": "pushed"}, 1),
        ("PARAMS", {"n": 11, "items": []}, 11),
    ],
)
def test_assign_forms(event: Any, context: dict[str, Any], seen_n: int) -> None:
    machine = load(ASSIGNING, actions=ASSIGN_IMPLS)
    snap, _ = machine.initial_transition()
    after, effects = machine.transition(snap, event)
    assert after.context == context
    # a later custom action sees the context as updated by the assign before it
    (seen,) = [e for e in effects if e.type == "seen"]
    assert seen.context["n"] == seen_n
    assert snap.context == {"n": 1, "items": []}  # the old snapshot is untouched


def test_an_implementation_may_be_a_list_of_actions() -> None:
    machine = load(ASSIGNING, actions=ASSIGN_IMPLS)
    snap, _ = machine.initial_transition()
    after, effects = machine.transition(snap, {"type": "LIST", "by": 3})
    # bump (1 + 1), then * 100, then seen, then the raised JSON event (+ 7) and its seen
    assert [(e.type, e.context["n"]) for e in effects] == [("seen", 200), ("seen", 207)]
    assert after.context == {"n": 207, "items": [], "label": "set"}


def test_user_implementation_overrides_builtin_name() -> None:
    # `setup({actions})` in XState: a provided implementation wins over the JSON form.
    machine = load(ASSIGNING, actions={**ASSIGN_IMPLS, "assign": lambda c, e, p: None})
    snap, _ = machine.initial_transition()
    after, effects = machine.transition(snap, {"type": "JSON", "by": 5})
    assert after.context == {"n": 1, "items": []}
    assert names(effects) == ["assign", "seen"]


def test_context_passed_at_start_merges_over_definition() -> None:
    snap, _ = load(ASSIGNING).initial_transition({"n": 9, "extra": True})
    assert snap.context == {"n": 9, "items": [], "extra": True}


def test_entry_assign_runs_before_later_entry_actions() -> None:
    machine = load(
        {
            "id": "m",
            "initial": "a",
            "context": {"n": 0},
            "states": {"a": {"entry": ["before", {"type": "assign", "assignment": {"n": 5}}, "after"]}},
        }
    )
    snap, effects = machine.initial_transition()
    assert [(e.type, e.context["n"]) for e in effects] == [("before", 0), ("after", 5)]
    assert snap.context == {"n": 5}


# ------------------------------------------------------------------------- errors


def test_guard_raising_is_a_step_error_and_nothing_changes() -> None:
    def boom(ctx: Any, ev: Any, params: Any) -> bool:
        raise ValueError("guard exploded")

    machine = load(GUARDED, guards={**GUARD_IMPLS, "below": boom})
    snap, _ = machine.initial_transition()
    before = snap.to_dict()
    with pytest.raises(StepError) as info:
        machine.transition(snap, "GO")
    err = info.value
    assert isinstance(err.cause, ValueError)
    assert err.event_type == "GO"
    assert err.state_id == "m.idle"
    assert "guard exploded" in str(err)
    assert "below" in str(err)
    assert snap.to_dict() == before


def test_assign_raising_is_a_step_error_and_nothing_changes() -> None:
    machine = load(
        {
            "id": "m",
            "initial": "a",
            "context": {"n": 0},
            "states": {
                "a": {
                    "on": {
                        "GO": {
                            "target": "b",
                            "actions": [{"type": "assign", "assignment": {"n": 1}}, "explode"],
                        }
                    }
                },
                "b": {},
            },
        },
        actions={"explode": fsm.assign(lambda c, e, p: 1 / 0)},
    )
    snap, _ = machine.initial_transition()
    before = snap.to_dict()
    with pytest.raises(StepError) as info:
        machine.transition(snap, "GO")
    assert isinstance(info.value.cause, ZeroDivisionError)
    assert "explode" in str(info.value)
    assert snap.to_dict() == before
    assert snap.value == "a" and snap.context == {"n": 0}


def test_assign_function_must_return_a_mapping() -> None:
    machine = load(
        {"id": "m", "initial": "a", "states": {"a": {"on": {"GO": {"actions": "bad"}}}}},
        actions={"bad": fsm.assign(lambda c, e, p: [1, 2])},
    )
    snap, _ = machine.initial_transition()
    with pytest.raises(StepError):
        machine.transition(snap, "GO")


def test_missing_guard_is_a_step_error() -> None:
    machine = load(GUARDED)
    snap, _ = machine.initial_transition()
    with pytest.raises(StepError) as info:
        machine.transition(snap, "GO")
    assert "below" in str(info.value)


def test_failing_initial_step_is_a_step_error() -> None:
    machine = load(
        {"id": "m", "initial": "a", "states": {"a": {"entry": "explode"}}},
        actions={"explode": fsm.assign(lambda c, e, p: {"x": 1 / 0})},
    )
    with pytest.raises(StepError) as info:
        machine.initial_transition()
    assert info.value.event_type == "xstate.init"


def test_unhandled_event_returns_the_same_snapshot() -> None:
    machine = load(NESTED)
    snap, _ = machine.initial_transition()
    for event in ("NOPE", {"type": "NOPE", "x": 1}, "xstate.after.1.m.a"):
        same, effects = machine.transition(snap, event)
        assert same is snap
        assert effects == []


def test_event_whose_guards_all_fail_returns_the_same_snapshot() -> None:
    machine = load(GUARDED, guards=GUARD_IMPLS)
    snap, _ = machine.initial_transition({"n": 100})
    same, effects = machine.transition(snap, "AND")
    assert same is snap and effects == []


def test_snapshot_of_another_machine_is_refused() -> None:
    a, b = load(NESTED), load(GUARDED)
    snap, _ = a.initial_transition()
    with pytest.raises(fsm.FsmError):
        b.transition(snap, "GO")


def test_provide_shares_the_model() -> None:
    machine = load(NESTED)
    snap, _ = machine.initial_transition()
    provided = machine.provide(actions={"t1": lambda c, e, p: None})
    after, _ = provided.transition(snap, "GO")
    assert after.value == {"b": {"b1": "c"}}


# ------------------------------------------------------------------------- event forms

ECHO = {"id": "m", "initial": "a", "states": {"a": {"on": {"PAY": {"actions": "paid"}}}}}


@pytest.mark.parametrize(
    ("event", "seen"),
    [
        ("PAY", {"type": "PAY"}),
        ({"type": "PAY"}, {"type": "PAY"}),
        ({"type": "PAY", "amount": 3}, {"type": "PAY", "amount": 3}),
        (
            {"specversion": "1.0", "type": "PAY", "source": "/shop", "id": "1", "data": {"amount": 3}},
            {"type": "PAY", "amount": 3},
        ),
        ({"specversion": "1.0", "type": "PAY", "source": "/shop", "id": "1"}, {"type": "PAY"}),
        ({"specversion": "1.0", "type": "PAY", "data": {"type": "IGNORED", "x": 1}}, {"type": "PAY", "x": 1}),
        ({"specversion": "1.0", "type": "PAY", "data": [1, 2]}, {"type": "PAY", "data": [1, 2]}),
    ],
)
def test_event_forms(event: Any, seen: dict[str, Any]) -> None:
    machine = load(ECHO)
    snap, _ = machine.initial_transition()
    _, effects = machine.transition(snap, event)
    assert [(e.type, e.event) for e in effects] == [("paid", seen)]


@pytest.mark.parametrize(
    "event",
    [
        "*",
        {"type": "*"},
        {"specversion": "1.0", "type": "*"},
        "",
        {"type": ""},
        {"type": 3},
        {},
        {"amount": 3},
        42,
        None,
        ["PAY"],
    ],
)
def test_bad_events_are_refused(event: Any) -> None:
    machine = load(ECHO)
    snap, _ = machine.initial_transition()
    with pytest.raises(EventError):
        machine.transition(snap, event)


def test_event_dict_is_not_mutated_or_kept() -> None:
    machine = load(ECHO)
    snap, _ = machine.initial_transition()
    event = {"type": "PAY", "amount": 3}
    _, effects = machine.transition(snap, event)
    event["amount"] = 4
    assert effects[0].event == {"type": "PAY", "amount": 3}


def test_effects_are_json_describable() -> None:
    machine = load(ECHO)
    snap, _ = machine.initial_transition()
    _, effects = machine.transition(snap, "PAY")
    assert json.loads(json.dumps([e.to_dict() for e in effects])) == [{"type": "paid", "params": None}]
