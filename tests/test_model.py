"""Compiling a definition into the model: structural checks, target resolution, ids, order.

Every structural problem is a :class:`fsm.DefinitionError` whose ``problems`` name the
exact JSON path of the mistake and say how to fix it; all problems are reported at once.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fsm import DefinitionError, Machine, Problem
from fsm.model.nodes import StateNode


def problems_of(definition: dict[str, Any]) -> list[Problem]:
    with pytest.raises(DefinitionError) as info:
        Machine.from_dict(definition)
    assert info.value.problems, "a DefinitionError must list its problems"
    for p in info.value.problems:
        assert str(p) in str(info.value)
    return info.value.problems


def machine(states: dict[str, Any], **root: Any) -> dict[str, Any]:
    return {"id": "m", "initial": next(iter(states)), "states": states, **root}


PAR = {
    "type": "parallel",
    "states": {
        "x": {"initial": "x1", "states": {"x1": {}, "x2": {}}},
        "y": {"initial": "y1", "states": {"y1": {}, "y2": {}}},
    },
}

# (definition, path of the problem, words the message must contain)
STRUCTURAL: list[Any] = [
    pytest.param(
        machine({"idle": {"on": {"GO": "runing"}}, "running": {}}),
        "states.idle.on.GO.target",
        ["'runing'", "did you mean 'running'"],
        id="unknown-sibling-did-you-mean",
    ),
    pytest.param(
        machine({"idle": {"on": {"GO": {"target": "nowhere"}}}, "running": {}}),
        "states.idle.on.GO.target",
        ["'nowhere'", "#m has no child"],
        id="unknown-sibling",
    ),
    pytest.param(
        machine({"idle": {"on": {"GO": "#m.runing"}}, "running": {}}),
        "states.idle.on.GO.target",
        ["did you mean 'running'"],
        id="unknown-id-path-did-you-mean",
    ),
    pytest.param(
        machine({"idle": {"id": "idle", "on": {"GO": "#idel"}}}),
        "states.idle.on.GO.target",
        ["no state has the id 'idel'", "did you mean 'idle'"],
        id="unknown-id-did-you-mean",
    ),
    pytest.param(
        machine({"idle": {"on": {"GO": ".child"}}}),
        "states.idle.on.GO.target",
        ["'child'", "#m.idle has no child states"],
        id="child-of-atomic",
    ),
    pytest.param(
        machine({"a": {"on": {"GO": [{"guard": "g", "target": "b"}, {"target": "zz"}]}}, "b": {}}),
        "states.a.on.GO[1].target",
        ["'zz'"],
        id="unknown-target-in-list",
    ),
    pytest.param(
        machine({"a": {"on": {"GO": {"target": ["#m.p.x.x2", "#m.p.y.yy2"]}}}, "p": PAR}),
        "states.a.on.GO.target[1]",
        ["'yy2'", "did you mean 'y2'"],
        id="unknown-target-in-multi-target",
    ),
    pytest.param(
        machine({"a": {"always": {"target": "zz"}}}),
        "states.a.always.target",
        ["'zz'"],
        id="unknown-always-target",
    ),
    pytest.param(
        machine({"a": {"after": {"100": "zz"}}}),
        "states.a.after.100.target",
        ["'zz'"],
        id="unknown-after-target",
    ),
    pytest.param(
        machine({"a": {"initial": "a1", "states": {"a1": {"type": "final"}}, "onDone": "zz"}}),
        "states.a.onDone.target",
        ["'zz'"],
        id="unknown-onDone-target",
    ),
    pytest.param(
        {"id": "m", "initial": "idle", "on": {"RESET": "idle"}, "states": {"idle": {}}},
        "on.RESET.target",
        ["not valid from the root", "'.idle'"],
        id="root-sibling-target",
    ),
    pytest.param(
        {"id": "m", "states": {"idle": {}, "busy": {}}},
        "",
        ["no `initial`", "'idle'"],
        id="initial-missing-root",
    ),
    pytest.param(
        machine({"a": {"states": {"a1": {}}}}),
        "states.a",
        ["#m.a", "no `initial`", "'a1'"],
        id="initial-missing-nested",
    ),
    pytest.param(
        {"id": "m", "initial": "idel", "states": {"idle": {}}},
        "initial",
        ["'idel'", "not a child of #m", "did you mean 'idle'"],
        id="initial-not-a-child",
    ),
    pytest.param(
        {"id": "m", "initial": {"target": "idel"}, "states": {"idle": {}}},
        "initial.target",
        ["'idel'", "not a child"],
        id="initial-object-not-a-child",
    ),
    pytest.param(
        machine({"a": {"initial": "a1", "states": {"a1": {"initial": "deep", "states": {"x": {}}}}}}),
        "states.a.states.a1.initial",
        ["'deep'", "#m.a.a1"],
        id="initial-not-a-child-nested",
    ),
    pytest.param(
        {"id": "m", "initial": "a", "states": {"a": {"initial": "a1", "states": {"a1": {"initial": "x"}}}}},
        "states.a.states.a1.initial",
        ["no child states"],
        id="initial-on-atomic",
    ),
    pytest.param(
        {"id": "m", "type": "parallel", "initial": "a", "states": {"a": {}, "b": {}}},
        "initial",
        ["parallel", "cannot have `initial`"],
        id="initial-on-parallel-root",
    ),
    pytest.param(
        machine({"p": {**PAR, "initial": "x"}}),
        "states.p.initial",
        ["parallel state #m.p", "cannot have `initial`"],
        id="initial-on-parallel",
    ),
    pytest.param(
        machine({"f": {"type": "final", "states": {"x": {}}}}),
        "states.f.states",
        ["final state #m.f", "cannot have child states"],
        id="final-with-children",
    ),
    pytest.param(
        machine({"a": {"type": "compound"}}),
        "states.a",
        ["compound", "needs child states"],
        id="compound-without-children",
    ),
    pytest.param(
        machine({"a": {"type": "parallel"}}),
        "states.a",
        ["parallel", "needs child states"],
        id="parallel-without-children",
    ),
    pytest.param(
        machine({"a": {"type": "atomic", "states": {"x": {}}}}),
        "states.a.type",
        ["atomic", "child states"],
        id="atomic-with-children",
    ),
    pytest.param(
        {"id": "m", "type": "history"},
        "",
        ["root", "history"],
        id="history-at-root",
    ),
    pytest.param(
        machine({"a": {}, "h": {"type": "history", "states": {"x": {}}}}),
        "states.h.states",
        ["history state #m.h", "`states`"],
        id="history-with-children",
    ),
    pytest.param(
        machine({"a": {}, "h": {"type": "history", "on": {"E": "a"}}}),
        "states.h.on",
        ["history state #m.h", "`on`"],
        id="history-with-transitions",
    ),
    pytest.param(
        machine({"a": {}, "h": {"type": "history", "entry": "x"}}),
        "states.h.entry",
        ["`entry`"],
        id="history-with-entry",
    ),
    pytest.param(
        machine({"p": {"initial": "a", "states": {"a": {}, "h": {"type": "history", "target": "#m.q"}}}, "q": {}}),
        "states.p.states.h.target",
        ["default of history state #m.p.h", "inside #m.p", "#m.q"],
        id="history-default-outside-parent",
    ),
    pytest.param(
        machine({"p": {"initial": "a", "states": {"a": {}, "h": {"type": "history", "target": "b"}}}}),
        "states.p.states.h.target",
        ["'b'"],
        id="history-default-unknown",
    ),
    pytest.param(
        machine({"a": {"target": "b"}, "b": {}}),
        "states.a.target",
        ["only allowed on history states"],
        id="target-on-plain-state",
    ),
    pytest.param(
        machine({"a": {"output": {"x": 1}}}),
        "states.a.output",
        ["only used on final states"],
        id="output-on-plain-state",
    ),
    pytest.param(
        machine({"a": {"id": "x"}, "b": {"id": "x"}}),
        "states.b.id",
        ["duplicate state id 'x'", "states.a"],
        id="duplicate-explicit-ids",
    ),
    pytest.param(
        machine({"a": {"id": "m.b"}, "b": {}}),
        "states.b",
        ["duplicate state id 'm.b'", "states.a"],
        id="explicit-id-clashes-with-generated",
    ),
    pytest.param(
        machine({"a": {"id": "m"}}),
        "states.a.id",
        ["duplicate state id 'm'", "<root>"],
        id="id-clashes-with-root",
    ),
    pytest.param(
        machine({"a": {"after": {"-5": "a"}}}),
        "states.a.after.-5",
        ["delay", "non-negative"],
        id="negative-delay",
    ),
    pytest.param(
        machine({"a": {"after": {"soon later": "a"}}}),
        'states.a.after["soon later"]',
        ["delay"],
        id="delay-name-with-space",
    ),
    pytest.param(
        machine({"a": {"after": {"NaN": "a"}}}),
        "states.a.after.NaN",
        ["delay"],
        id="nan-delay",
    ),
    pytest.param(
        machine({"a": {"after": {"1e400": "a"}}}),
        "states.a.after.1e400",
        ["delay"],
        id="infinite-delay",
    ),
    pytest.param(
        machine({"a": {"on": {"order*": "a"}}}),
        'states.a.on["order*"]',
        ["wildcard", "'order.*'"],
        id="wildcard-glued",
    ),
    pytest.param(
        machine({"a": {"on": {"*.paid": "a"}}}),
        'states.a.on["*.paid"]',
        ["wildcard"],
        id="wildcard-first",
    ),
    pytest.param(
        machine({"a": {"on": {"order.*.paid": "a"}}}),
        'states.a.on["order.*.paid"]',
        ["wildcard"],
        id="wildcard-infix",
    ),
    pytest.param(
        machine({"a": {"on": {"": "a"}}}),
        'states.a.on[""]',
        ["empty"],
        id="empty-descriptor",
    ),
    pytest.param(
        machine({"a": {"on": {"GO": {"target": ["b", "c"]}}}, "b": {}, "c": {}}),
        "states.a.on.GO.target",
        ["#m.b", "#m.c", "cannot be active at the same time", "#m is not a parallel state"],
        id="multi-target-siblings",
    ),
    pytest.param(
        machine({"a": {"on": {"GO": {"target": ["#m.p.x.x1", "#m.p.x.x2"]}}}, "p": PAR}),
        "states.a.on.GO.target",
        ["#m.p.x.x1", "#m.p.x.x2", "#m.p.x is not a parallel state"],
        id="multi-target-same-region",
    ),
    pytest.param(
        machine({"a": {"on": {"E": {"guard": {"type": "stateIn", "state": "#nope"}}}}}),
        "states.a.on.E.guard",
        ["stateIn", "'nope'"],
        id="stateIn-unknown-id",
    ),
    pytest.param(
        machine({"a.b": {}}),
        'states["a.b"]',
        ["'.'"],
        id="dot-in-state-key",
    ),
]


@pytest.mark.parametrize(("definition", "path", "words"), STRUCTURAL)
def test_structural_problem(definition: dict[str, Any], path: str, words: list[str]) -> None:
    problems = problems_of(definition)
    assert [p.path for p in problems] == [path], problems
    for word in words:
        assert word in problems[0].message, problems[0].message


def test_problem_pointer_matches_path() -> None:
    problems = problems_of(machine({"idle": {"on": {"GO": {"target": ["#m.p.x.x2", "#m.p.y.y9"]}}}, "p": PAR}))
    assert problems[0].pointer == ("states", "idle", "on", "GO", "target", 1)


def test_source_is_named() -> None:
    with pytest.raises(DefinitionError) as info:
        Machine.from_dict(machine({"a": {"on": {"GO": "zz"}}}), source="orders.yaml")
    assert info.value.source == "orders.yaml"
    assert "orders.yaml" in str(info.value)


def test_several_structural_problems_reported_at_once() -> None:
    definition = {
        "id": "m",
        "initial": "a",
        "states": {
            "a": {"id": "dup", "on": {"GO": "zz", "BACK": {"target": ["b", "c"]}}},
            "b": {"id": "dup", **copy.deepcopy(PAR), "initial": "x"},
            "c": {"initial": "nope", "states": {"c1": {}}},
            "h": {"type": "history", "target": "#m.a"},
        },
    }
    problems = problems_of(definition)
    paths = sorted(p.path for p in problems)
    assert paths == sorted(
        [
            "states.b.id",
            "states.b.initial",
            "states.a.on.GO.target",
            "states.a.on.BACK.target",
            "states.c.initial",
        ]
    )
    # The message counts them.
    with pytest.raises(DefinitionError) as info:
        Machine.from_dict(definition)
    assert "(5 problem(s))" in str(info.value)


def test_several_schema_problems_reported_at_once() -> None:
    definition = machine({"a": {"after": {"-1": "a"}, "on": {"a*": "a"}, "type": "bogus"}})
    problems = problems_of(definition)
    assert len(problems) >= 3
    assert {"states.a.after.-1", 'states.a.on["a*"]', "states.a.type"} <= {p.path for p in problems}


def test_schema_and_structural_problems_reported_together() -> None:
    definition = machine({"a": {"on": {"GO": "zz"}}, "c": {"after": {"-1": "a"}}})
    paths = {p.path for p in problems_of(definition)}
    assert paths == {"states.a.on.GO.target", "states.c.after.-1"}


@pytest.mark.parametrize(
    "states",
    [
        {"a": {"on": {"E": "h"}}, "h": {"type": "history", "target": "h"}},
        {
            "a": {"on": {"E": "h1"}},
            "h1": {"type": "history", "target": "h2"},
            "h2": {"type": "history", "target": "h1"},
        },
    ],
    ids=["self", "cycle"],
)
def test_history_default_cycle_is_refused(states: dict[str, Any]) -> None:
    # Accepting these would only lead to a RecursionError when the history is entered.
    problems = problems_of(machine(states))
    assert problems
    assert all("history" in p.message for p in problems)
    assert all(p.path.endswith(".target") for p in problems)


# ------------------------------------------------------------------------- valid shapes


def test_multi_targets_into_parallel_regions_are_accepted() -> None:
    m = Machine.from_dict(machine({"a": {"on": {"GO": {"target": ["#m.p.x.x2", "#m.p.y.y2"]}}}, "p": PAR}))
    (t,) = m.state("m.a").transitions["GO"]
    assert [n.id for n in t.targets] == ["m.p.x.x2", "m.p.y.y2"]


def test_multi_target_ancestor_and_descendant_accepted() -> None:
    m = Machine.from_dict(machine({"a": {"on": {"GO": {"target": ["#m.p", "#m.p.x.x2"]}}}, "p": PAR}))
    (t,) = m.state("m.a").transitions["GO"]
    assert [n.id for n in t.targets] == ["m.p", "m.p.x.x2"]


def test_list_of_strings_is_a_list_of_candidate_transitions() -> None:
    # As in XState, `GO: ["b", "c"]` is two transitions (the first wins), not two targets.
    m = Machine.from_dict(machine({"a": {"on": {"GO": ["b", "c"]}}, "b": {}, "c": {}}))
    transitions = m.state("m.a").transitions["GO"]
    assert [[n.id for n in t.targets] for t in transitions] == [["m.b"], ["m.c"]]


def test_history_in_parallel_state_is_allowed() -> None:
    par = copy.deepcopy(PAR)
    par["states"]["h"] = {"type": "history", "history": "deep"}
    m = Machine.from_dict(machine({"p": par}))
    assert m.state("m.p.h").type == "history"
    assert m.state("m.p.h").history == "deep"


def test_initial_may_be_a_history_state_with_a_default() -> None:
    # As in XState v5: before anything is remembered, the history's default is entered.
    m = Machine.from_dict(machine({"a": {}, "b": {}, "h": {"type": "history", "target": "b"}}, initial="h"))
    assert m.initial_transition()[0].value == "b"


def test_initial_history_state_without_a_default_is_refused() -> None:
    # Its default would be the parent's initial state, that is, itself.
    problems = problems_of(machine({"a": {}, "b": {}, "h": {"type": "history"}}, initial="h"))
    assert [p.path for p in problems] == ["initial"]
    assert "history" in problems[0].message and "'h'" in problems[0].message


# ------------------------------------------------------------------------- target resolution

RESOLVE = {
    "id": "m",
    "initial": "a",
    "on": {"TO_CHILD": ".b.b2", "TO_A": ".a", "TO_SELF_ID": "#m"},
    "states": {
        "a": {
            "initial": "a1",
            "on": {
                "SIBLING": "b",
                "CHILD": ".a2",
                "GRANDCHILD": ".a2.deep",
                "ID": "#bee",
                "ID_CHILD": "#bee.b1",
                "ID_GRANDCHILD": "#m.a.a2.deep",
                "PATH": "b.b2",
                "ROOT": "#m",
                "SELF": "a",
                "MULTI": {"target": ["#m.p.x.x2", "#pY.y2"]},
            },
            "states": {
                "a1": {"on": {"UP": "#m.a", "SIB": "a2", "COUSIN": "#bee.b2"}},
                "a2": {"initial": "deep", "states": {"deep": {}}},
            },
        },
        "b": {"id": "bee", "initial": "b1", "states": {"b1": {}, "b2": {"id": "beeTwo"}}},
        "p": {
            "type": "parallel",
            "states": {
                "x": {"initial": "x1", "states": {"x1": {}, "x2": {}}},
                "y": {"id": "pY", "initial": "y1", "states": {"y1": {}, "y2": {}}},
            },
        },
    },
}


@pytest.mark.parametrize(
    ("source", "event", "targets"),
    [
        ("m.a", "SIBLING", ["bee"]),
        ("m.a", "CHILD", ["m.a.a2"]),
        ("m.a", "GRANDCHILD", ["m.a.a2.deep"]),
        ("m.a", "ID", ["bee"]),
        ("m.a", "ID_CHILD", ["m.b.b1"]),
        ("m.a", "ID_GRANDCHILD", ["m.a.a2.deep"]),
        ("m.a", "PATH", ["beeTwo"]),
        ("m.a", "ROOT", ["m"]),
        ("m.a", "SELF", ["m.a"]),
        ("m.a", "MULTI", ["m.p.x.x2", "m.p.y.y2"]),
        ("m.a.a1", "UP", ["m.a"]),
        ("m.a.a1", "SIB", ["m.a.a2"]),
        ("m.a.a1", "COUSIN", ["beeTwo"]),
        ("m", "TO_CHILD", ["beeTwo"]),
        ("m", "TO_A", ["m.a"]),
        ("m", "TO_SELF_ID", ["m"]),
    ],
)
def test_target_resolution(source: str, event: str, targets: list[str]) -> None:
    m = Machine.from_dict(RESOLVE)
    (t,) = m.state(source).transitions[event]
    assert [n.id for n in t.targets] == targets
    assert t.source is m.state(source)
    assert t.event == event


def test_targetless_transition_has_no_targets() -> None:
    m = Machine.from_dict(machine({"a": {"on": {"E": {"actions": "x"}}}}))
    assert [t.targets for t in m.state("m.a").transitions["E"]] == [None]


def test_resolved_targets_take_effect() -> None:
    m = Machine.from_dict(RESOLVE)
    snap, _ = m.initial_transition()
    assert snap.value == {"a": "a1"}
    for event, value in [
        ("GRANDCHILD", {"a": {"a2": "deep"}}),
        ("ID_CHILD", {"b": "b1"}),
        ("TO_A", {"a": "a1"}),
        ("PATH", {"b": "b2"}),
        ("TO_A", {"a": "a1"}),
        ("MULTI", {"p": {"x": "x2", "y": "y2"}}),
    ]:
        snap, _ = m.transition(snap, event)
        assert snap.value == value, event


# ------------------------------------------------------------------------- ids, order, shape


def test_generated_ids_and_document_order() -> None:
    m = Machine.from_dict(RESOLVE)
    assert [n.id for n in m.model.nodes] == [
        "m",
        "m.a",
        "m.a.a1",
        "m.a.a2",
        "m.a.a2.deep",
        "bee",
        "m.b.b1",
        "beeTwo",
        "m.p",
        "m.p.x",
        "m.p.x.x1",
        "m.p.x.x2",
        "pY",
        "m.p.y.y1",
        "m.p.y.y2",
    ]
    assert [n.order for n in m.model.nodes] == list(range(len(m.model.nodes)))
    assert set(m.model.by_id) == {n.id for n in m.model.nodes}
    assert all(m.model.by_id[n.id] is n for n in m.model.nodes)


def test_generated_ids_use_the_key_path_not_the_nearest_explicit_id() -> None:
    m = Machine.from_dict(RESOLVE)
    # `b` has id "bee" but its children are still named from the root id and key path.
    assert m.state("#m.b.b1").key == "b1"
    assert m.state("bee").states["b1"].id == "m.b.b1"


def test_node_shape() -> None:
    m = Machine.from_dict(RESOLVE)
    deep = m.state("m.a.a2.deep")
    assert deep.key == "deep"
    assert deep.path == ("a", "a2", "deep")
    assert deep.depth == 3
    assert [a.id for a in deep.ancestors] == ["m.a.a2", "m.a", "m"]
    assert deep.json_path == "states.a.states.a2.states.deep"
    assert deep.type == "atomic" and deep.is_atomic
    assert m.state("m").type == "compound"
    assert m.state("m.p").type == "parallel"
    assert [c.key for c in m.state("m.p").children] == ["x", "y"]
    assert m.model.root is m.state("#m")
    assert m.model.root.parent is None


def test_state_lookup_unknown() -> None:
    m = Machine.from_dict(RESOLVE)
    with pytest.raises(KeyError):
        m.state("#nope")


def test_default_root_id() -> None:
    m = Machine.from_dict({"initial": "a", "states": {"a": {}}})
    assert m.id == "(machine)"
    assert [n.id for n in m.model.nodes] == ["(machine)", "(machine).a"]


def test_node_types_inferred() -> None:
    m = Machine.from_dict(
        machine(
            {
                "a": {},
                "b": {"initial": "b1", "states": {"b1": {}}},
                "c": {"type": "final"},
                "h": {"history": "deep"},
                "p": PAR,
            }
        )
    )
    assert {n.key: n.type for n in m.model.root.states.values()} == {
        "a": "atomic",
        "b": "compound",
        "c": "final",
        "h": "history",
        "p": "parallel",
    }
    assert m.state("m.h").history == "deep"
    assert [c.key for c in m.model.root.children] == ["a", "b", "c", "p"]
    assert [c.key for c in m.model.root.history_nodes] == ["h"]


def test_after_transitions_get_event_names_and_timers() -> None:
    m = Machine.from_dict(machine({"a": {"after": {"1000": "b", "0": "b", "1.5": "b", "slow": "b"}}, "b": {}}))
    a = m.state("m.a")
    assert [t.event for t in a.after] == [
        "xstate.after.1000.m.a",
        "xstate.after.0.m.a",
        "xstate.after.1.5.m.a",
        "xstate.after.slow.m.a",
    ]
    assert [t.delay for t in a.after] == [1000.0, 0.0, 1.5, "slow"]
    assert m.missing_implementations() == {"delays": {"slow": ["states.a.after.slow"]}}


def test_references_name_every_place() -> None:
    m = Machine.from_dict(
        machine(
            {
                "a": {
                    "entry": ["x", {"type": "y", "params": {"p": 1}}],
                    "on": {
                        "E": {"guard": {"type": "and", "guards": ["g", {"type": "not", "guard": "h"}]}, "actions": "x"}
                    },
                    "invoke": {"src": "svc"},
                }
            }
        )
    )
    assert m.missing_implementations() == {
        "actions": {"x": ["states.a.entry[0]", "states.a.on.E.actions"], "y": ["states.a.entry[1]"]},
        "guards": {"g": ["states.a.on.E.guard"], "h": ["states.a.on.E.guard"]},
        "services": {"svc": ["states.a.invoke.src"]},
    }
    provided = m.provide(actions={"x": print}, guards={"g": lambda c, e, p: True})
    assert provided.missing_implementations() == {
        "actions": {"y": ["states.a.entry[1]"]},
        "guards": {"h": ["states.a.on.E.guard"]},
        "services": {"svc": ["states.a.invoke.src"]},
    }
    # provide returns a new machine: the old one is unchanged
    assert sum(len(v) for v in m.missing_implementations().values()) == 5


def test_transitions_keep_document_order_indexes() -> None:
    m = Machine.from_dict(RESOLVE)
    indexes = [t.index for n in m.model.nodes for ts in n.transitions.values() for t in ts]
    assert indexes == sorted(indexes)
    assert len(set(indexes)) == len(indexes)


def test_machine_version_is_a_content_hash() -> None:
    a = Machine.from_dict(RESOLVE)
    b = Machine.from_dict(copy.deepcopy(RESOLVE))
    changed = copy.deepcopy(RESOLVE)
    changed["states"]["a"]["on"]["SIBLING"] = "#m.p"
    assert a.version == b.version
    assert Machine.from_dict(changed).version != a.version


def test_from_dict_does_not_keep_the_callers_dict() -> None:
    definition = copy.deepcopy(RESOLVE)
    m = Machine.from_dict(definition)
    definition["states"]["a"]["initial"] = "a2"
    assert m.definition["states"]["a"]["initial"] == "a1"


def test_state_node_identity() -> None:
    m = Machine.from_dict(RESOLVE)
    node: StateNode = m.state("bee")
    assert m.state("#bee") is node
    assert node.parent is m.model.root


def test_a_dotted_id_shadowed_by_a_path_is_reported_by_analysis() -> None:
    """``#x.y`` is the child ``y`` of ``#x`` (as in XState), even with a state whose id is
    ``x.y``: loaded as XState does, and reported as a probable mistake."""
    from fsm.testing.analysis import AMBIGUOUS_TARGET, analyze

    definition = {
        "id": "m",
        "initial": "a",
        "states": {
            "a": {"on": {"GO": "#x.y", "ESCAPED": "#x\\.y", "DEFAULT_ID": "#m.b"}},
            "b": {"id": "x.y", "on": {"BACK": "a"}},
            "c": {"id": "x", "initial": "y", "states": {"y": {"on": {"BACK": "#m.a"}}}},
        },
    }
    machine = Machine.from_dict(definition)
    snap, _ = machine.initial_transition()
    assert machine.transition(snap, "GO")[0].value == {"c": "y"}
    assert machine.transition(snap, "ESCAPED")[0].value == "b"
    found = [f for f in analyze(machine) if f.kind == AMBIGUOUS_TARGET]
    assert [(f.path, "#x\\\\.y" in f.message) for f in found] == [("states.a.on.GO.target", True)]
