"""Differential conformance: machines run through fsm and through XState v5.

The traces (state value, context, custom actions, emitted events, status, output) must be
identical after every step. On a disagreement hypothesis shrinks the case and the failure
message shows the machine, the steps and both traces from the first differing step.

- Generated machines: 200 by default (CI), the hypothesis profile's count when larger
  (``HYPOTHESIS_PROFILE=long`` runs 5,000), or ``FSM_CONFORMANCE_EXAMPLES=N``.
- The example machines in ``machines/`` (and the DAGs and sagas there, compiled): each one
  whose expressions rewrite exactly into the convention (``tests/conformance_mapping.py``)
  runs ``tests/test_machines.py``'s scenarios, a sweep of its events and 25 drawn step
  sequences; fsm runs the original machine, XState the rewritten one. The others are
  listed, with what blocks them, by a test that pins which machines are covered.
- The rewrite itself: a table of exact and refused rewrites, and a machine that uses
  every rule, run with drawn events and payloads.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsm.compile import compile_dag, compile_saga, load_dag, load_saga
from fsm.loading import read_file
from fsm.machine import Machine
from fsm.testing import strategies
from fsm.testing.convention import run_case
from fsm.testing.strategies import conformance_cases
from fsm.testing.xstate_oracle import XStateOracle
from tests.conformance_mapping import Mapped, map_machine
from tests.test_machines import SCENARIOS, Advance

MACHINES = Path(__file__).resolve().parents[1] / "machines"
EXAMPLES = int(os.environ.get("FSM_CONFORMANCE_EXAMPLES", "0")) or max(200, settings.default.max_examples)


@pytest.fixture(scope="module")
def oracle(xstate_oracle: XStateOracle) -> XStateOracle:
    return xstate_oracle


def describe_disagreement(
    case: dict[str, Any],
    ref: dict[str, Any],
    mine: dict[str, Any],
    title: str = "fsm and XState disagree",
    labels: tuple[str, str] = ("xstate", "fsm"),
) -> str:
    """The case and both traces from the first step where they differ (``ref`` is shown
    under the first label, ``mine`` under the second)."""
    lines = [
        title,
        "machine: " + json.dumps(case["machine"]),
        "steps: " + json.dumps(case["steps"]),
    ]
    if "fatal" in ref or "fatal" in mine:
        lines.append(f"{labels[0]}: {ref.get('fatal', 'ran')}; {labels[1]}: {mine.get('fatal', 'ran')}")
        return "\n".join(lines)
    for index, (a, b) in enumerate(zip(ref["trace"], mine["trace"])):
        if a != b:
            step = "start" if index == 0 else json.dumps(case["steps"][index - 1])
            lines.append(f"first difference after step {index} ({step}):")
            width = max(map(len, labels)) + 1
            lines.append(f"  {labels[0] + ':':<{width}} " + json.dumps(a))
            lines.append(f"  {labels[1] + ':':<{width}} " + json.dumps(b))
            break
    return "\n".join(lines)


def assert_same(oracle: XStateOracle, case: dict[str, Any]) -> None:
    ref = oracle.run([case])[0]
    ref.pop("errorMessage", None)
    mine = run_case(case)
    same = ("fatal" in ref) == ("fatal" in mine) and ref.get("trace") == mine.get("trace")
    assert same, describe_disagreement(case, ref, mine)


@settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(case=conformance_cases())
def test_generated_machines_agree_with_xstate(oracle: XStateOracle, case: dict[str, Any]) -> None:
    assert_same(oracle, case)


# -- the example machines --------------------------------------------------------------
#
# An example machine runs on both engines once its fsm expressions are rewritten as the
# convention (tests/conformance_mapping.py; exact rewrites only; a machine with anything
# else is left out, with what blocks it). Every run is made three times: fsm on the ORIGINAL machine
# (its expressions, fsm's real semantics), fsm on the rewritten machine, and XState on the
# rewritten machine. All three traces must be the same; which two differ tells whether
# the engines disagree or the rewrite is not exact.


def _example_definitions() -> list[tuple[str, dict[str, Any] | None, str | None]]:
    """(name, definition, why it could not be built) for machines/, and for the DAGs and
    sagas there compiled to machines."""
    out: list[tuple[str, dict[str, Any] | None, str | None]] = []
    for path in sorted(MACHINES.glob("*.*")):
        if path.suffix in (".json", ".yaml", ".yml"):
            out.append((path.name, read_file(path), None))
    compilers: list[tuple[str, Any]] = [
        ("dags", lambda p: compile_dag(load_dag(p))),
        ("sagas", lambda p: compile_saga(load_saga(p))),
    ]
    for folder, compile_ in compilers:
        for path in sorted((MACHINES / folder).glob("*.yaml")):
            try:
                out.append((f"{folder}/{path.name}", compile_(path), None))
            except Exception as exc:  # reported by the test of that machine, not at collection
                out.append((f"{folder}/{path.name}", None, f"cannot compile {path}: {exc}"))
    return out


@dataclass(frozen=True)
class Example:
    name: str
    definition: dict[str, Any]
    mapped: Mapped
    error: str | None = None


EXAMPLE_MACHINES = {
    name: Example(name, definition or {}, map_machine(definition or {}), error)
    for name, definition, error in _example_definitions()
}
DRAWN_PER_MACHINE = 25  # hypothesis-drawn step sequences per example machine


def _skip_reason(example: Example) -> str:
    """What blocks the machine: services first (counted), then the first other problems."""
    services = [b for b in example.mapped.blockers if b.endswith("invokes a service (the convention has no services)")]
    others = [b if len(b) <= 200 else b[:200] + "..." for b in example.mapped.blockers if b not in services]
    shown = [f"invokes services in {len(services)} state(s), first {services[0].split(':')[0]}"] if services else []
    shown += others[:5]
    more = f"; and {len(others) - 5} more" if len(others) > 5 else ""
    return f"{example.name} is not mappable to the conformance convention: " + "; ".join(shown) + more


# Only mappable machines are parametrized: the others are not skipped tests but machines
# outside the convention, listed (with what blocks each) by the classification test below.
EXAMPLE_PARAMS = [
    pytest.param(name, id=name)
    for name, example in EXAMPLE_MACHINES.items()
    if example.error is None and example.mapped.ok
]
COVERED = {"history_player.yaml", "parallel_editor.json", "traffic_light.yaml"}


def test_the_expected_example_machines_are_checked_against_xstate() -> None:
    """Which example machines run on both engines is pinned: a machine that stops mapping
    (or starts to) must be noticed, and every one left out says why."""
    broken = {name: example.error for name, example in EXAMPLE_MACHINES.items() if example.error}
    assert broken == {}, broken
    covered = {name for name, example in EXAMPLE_MACHINES.items() if example.mapped.ok}
    assert covered == COVERED, "update COVERED (and docs/conformance.md) to the machines that now map"
    for name, example in EXAMPLE_MACHINES.items():
        if name not in covered:
            assert example.mapped.blockers, f"{name} is left out without a reason"
            assert _skip_reason(example).startswith(f"{name} is not mappable")


def _case(definition: dict[str, Any], steps: list[dict[str, Any]], context: dict[str, Any] | None) -> dict[str, Any]:
    case: dict[str, Any] = {"machine": definition, "steps": steps, "maxIterations": 1000}
    if context is not None:
        case["context"] = context
    return case


def _differ(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return ("fatal" in a) != ("fatal" in b) or a.get("trace") != b.get("trace")


def assert_three_way(oracle: XStateOracle, runs: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
    """For each (label, original case, mapped case): XState on the mapped machine, fsm on
    the mapped machine and fsm on the original machine give one trace."""
    refs = oracle.run([mapped for _, _, mapped in runs])
    for (label, original, mapped), ref in zip(runs, refs):
        ref.pop("errorMessage", None)
        ours = run_case(mapped)
        if _differ(ref, ours):
            raise AssertionError(f"{label}: " + describe_disagreement(mapped, ref, ours))
        direct = run_case(original)
        if _differ(ours, direct):
            title = "fsm on the original machine and on the rewritten one disagree: the rewrite is not exact"
            raise AssertionError(
                f"{label}: " + describe_disagreement(original, ours, direct, title, ("rewritten", "original"))
            )


def _scenario_steps(steps: list[Any]) -> list[dict[str, Any]]:
    """tests/test_machines.py's scenario steps in the oracle's form."""
    out: list[dict[str, Any]] = []
    for step in steps:
        if isinstance(step, Advance):
            out.append({"advance": step.ms})
        else:
            out.append({"event": {"type": step} if isinstance(step, str) else dict(step)})
    return out


def _state_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in (node.get("states") or {}).values():
        if isinstance(child, dict):
            yield from _state_nodes(child)


def _events_of(definition: dict[str, Any]) -> list[str]:
    """The event types some state handles by name (wildcards aside)."""
    found = {e for n in _state_nodes(definition) if isinstance(n.get("on"), dict) for e in n["on"] if "*" not in e}
    return sorted(found)


def _delays(definition: dict[str, Any]) -> list[int | float]:
    """Every fixed delay in the machine (``after`` keys, delayed ``raise``), in ms."""
    found: set[float] = set()
    for node in _state_nodes(definition):
        after = node.get("after")
        for key in after if isinstance(after, dict) else {}:
            try:
                found.add(float(key))
            except ValueError:
                pass  # a named delay: the machine is not mappable anyway
    stack: list[Any] = [definition]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("type") == "raise" and isinstance(item.get("delay"), (int, float)):
                found.add(float(item["delay"]))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return sorted(int(d) if d.is_integer() else d for d in found)


def _sweep(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """Every handled event in turn, three times, with growing clock advances in between."""
    steps: list[dict[str, Any]] = []
    for round_ in range(3):
        steps.extend({"event": {"type": event}} for event in _events_of(definition))
        steps.append({"advance": 1000 * (round_ + 1)})
    return steps


def _example(name: str) -> Example:
    example = EXAMPLE_MACHINES[name]
    if example.error:
        pytest.fail(example.error)
    return example


@pytest.mark.parametrize("name", EXAMPLE_PARAMS)
def test_example_machine_scenarios_agree_with_xstate(oracle: XStateOracle, name: str) -> None:
    """tests/test_machines.py's scenarios for the machine, and a sweep of its events."""
    example = _example(name)
    sweep = _sweep(example.definition)
    runs = [("sweep", _case(example.definition, sweep, None), _case(example.mapped.definition, sweep, None))]
    for scenario in SCENARIOS:
        if scenario.file != name:
            continue
        steps, context, mapped = _scenario_steps(scenario.steps), None, example.mapped
        if scenario.initial_context is not None:
            # fsm merges a given context over the machine's, the oracle replaces it: give both the merge
            context = {**example.definition.get("context", {}), **scenario.initial_context}
            mapped = map_machine(example.definition, context)
            assert mapped.ok, f"scenario {scenario.id}: {mapped.reason()}"
        runs.append((scenario.id, _case(example.definition, steps, context), _case(mapped.definition, steps, context)))
    assert_three_way(oracle, runs)


_PAYLOAD_FILLERS = ["x", 0, 1, True, False, None]


def _distinct(values: list[Any]) -> list[Any]:
    """Without repeats, telling ``1`` from ``True`` (which Python's ``in`` does not)."""
    return list({json.dumps(v): v for v in values}.values())


def _payloads(mapped: Mapped) -> dict[str, Any]:
    """A payload schema per event type: each field the machine reads takes the literals it
    is compared with, or a filler of another kind (or is missing)."""
    return {
        event: {
            "type": "object",
            "properties": {f: {"enum": _distinct([*values, *_PAYLOAD_FILLERS])} for f, values in fields.items()},
        }
        for event, fields in mapped.event_fields.items()
    }


def _steps(
    events: st.SearchStrategy[dict[str, Any]], advances: st.SearchStrategy[int | float] | None
) -> st.SearchStrategy[dict[str, Any]]:
    """One step: an event three times in four, else a clock advance (if there are timers)."""
    as_event = events.map(lambda e: {"event": e})
    if advances is None:
        return as_event
    as_advance = advances.map(lambda ms: {"advance": ms})
    return st.integers(0, 3).flatmap(lambda i: as_advance if i == 0 else as_event)


@functools.cache
def _random_steps(name: str) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Events the machine handles (the shared strategy, with payloads for the fields the
    machine reads), interleaved with clock advances around its delays."""
    example = EXAMPLE_MACHINES[name]
    payloads = _payloads(example.mapped)
    machine = Machine.from_dict(example.definition)
    delays = _delays(example.definition)
    advances = st.sampled_from(delays) | st.integers(0, int(2 * max(delays))) if delays else None
    return st.lists(_steps(strategies.event(machine, payloads), advances), min_size=1, max_size=20)


@pytest.mark.parametrize("name", EXAMPLE_PARAMS)
@settings(max_examples=DRAWN_PER_MACHINE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_example_machine_random_steps_agree_with_xstate(oracle: XStateOracle, name: str, data: st.DataObject) -> None:
    example = _example(name)
    steps = data.draw(_random_steps(name), label="steps")
    original = _case(example.definition, steps, None)
    assert_three_way(oracle, [("drawn steps", original, _case(example.mapped.definition, steps, None))])


# -- the rewrite itself ----------------------------------------------------------------


def _rewrite_guard(context: dict[str, Any], source: str, writes: dict[str, Any] | None = None) -> Mapped:
    """A one-state machine guarded by ``source``; ``writes`` is assigned on another event
    (so those keys are not constants)."""
    on: dict[str, Any] = {"E": {"guard": {"expr": source}, "actions": ["ok"]}}
    if writes:
        on["W"] = {"actions": [{"type": "assign", "assignment": writes}]}
    return map_machine({"id": "m", "context": context, "initial": "s", "states": {"s": {"on": on}}})


def _eq(key: str, value: Any) -> dict[str, Any]:
    return {"type": "ctxEq", "params": {"key": key, "value": value}}


@pytest.mark.parametrize(
    ("context", "source", "writes", "expected"),
    [
        (
            {"n": 0},
            "context.n < 3",
            {"n": {"expr": "context.n + 1"}},
            {"type": "ctxLt", "params": {"key": "n", "value": 3}},
        ),
        (
            {"n": 0},
            "3 > context.n",
            {"n": {"expr": "context.n - 1"}},
            {"type": "ctxLt", "params": {"key": "n", "value": 3}},
        ),
        (
            {"n": 0, "max": 3},
            "context.n >= context.max",
            {"n": 1},
            {"type": "ctxGe", "params": {"key": "n", "value": 3}},
        ),
        (
            {"n": 0},
            "context.n <= 1.5",
            {"n": 2},
            {"type": "or", "guards": [{"type": "ctxLt", "params": {"key": "n", "value": 1.5}}, _eq("n", 1.5)]},
        ),
        ({"b": False}, "context.b", {"b": True}, _eq("b", True)),
        ({"n": 0}, "context.n", {"n": {"expr": "context.n + 1"}}, {"type": "not", "guard": _eq("n", 0)}),
        (
            {"n": 0},
            "context.n",
            {"n": False},
            {
                "type": "and",
                "guards": [{"type": "not", "guard": _eq("n", False)}, {"type": "not", "guard": _eq("n", 0)}],
            },
        ),
        ({"s": "a"}, "not context.s", {"s": ""}, {"type": "not", "guard": {"type": "not", "guard": _eq("s", "")}}),
        ({"v": None}, "context.v == 'x'", {"v": {"expr": "event.v"}}, _eq("v", "x")),
        (
            {},
            "event.kind != 'a'",
            None,
            {"type": "not", "guard": {"type": "eventEq", "params": {"field": "kind", "value": "a"}}},
        ),
        ({"limit": 2}, "context.limit > 1", None, "yes"),
    ],
)
def test_exact_rewrites(context: dict[str, Any], source: str, writes: dict[str, Any] | None, expected: Any) -> None:
    mapped = _rewrite_guard(context, source, writes)
    assert mapped.ok, mapped.reason()
    assert mapped.definition["states"]["s"]["on"]["E"]["guard"] == expected


@pytest.mark.parametrize(
    ("context", "source", "writes", "why"),
    [
        ({"n": None}, "context.n < 3", {"n": {"expr": "context.n + 1"}}, "may hold"),  # null: ctxLt reads 0
        ({"n": 0}, "context.n < 3", {"n": {"expr": "event.n"}}, "any or number"),  # from an event: anything
        ({"n": 0}, "context.n == True", {"n": 1}, "booleans and numbers"),  # Python: 1 == True
        ({"b": False}, "context.b != 0", {"b": True}, "booleans and numbers"),
        ({}, "event.k == 1", None, "string literal"),  # Python: True == 1; JS: undefined !== null
        ({}, "event.k == None", None, "string literal"),
        ({}, "event.k >= 1", None, "orders"),
        ({"n": 0, "m": 0}, "context.n < context.m", {"n": 1, "m": 1}, "literal or a constant"),
        ({"items": []}, "context.items", {"items": [1]}, "truth"),  # [] is falsy in Python, [] === x never
        ({"n": 0}, "context.n in [1, 2]", {"n": 1}, "In"),
        ({"n": 0}, "len(context.n) > 0", {"n": 1}, "something other"),
    ],
)
def test_inexact_rewrites_are_refused(
    context: dict[str, Any], source: str, writes: dict[str, Any] | None, why: str
) -> None:
    mapped = _rewrite_guard(context, source, writes)
    assert not mapped.ok
    assert why in mapped.reason(), mapped.reason()


@pytest.mark.parametrize(
    ("context", "value", "expected"),
    [
        ({"n": 0}, {"expr": "context.n + 2"}, {"type": "inc", "params": {"key": "n", "by": 2}}),
        ({"n": 0}, {"expr": "1 + context.n"}, {"type": "inc", "params": {"key": "n", "by": 1}}),
        ({"n": 0}, {"expr": "context.n - 1"}, {"type": "inc", "params": {"key": "n", "by": -1}}),
        ({"n": 0}, {"expr": "-4"}, {"type": "set", "params": {"key": "n", "value": -4}}),
        ({"n": 0}, {"a": [1]}, {"type": "set", "params": {"key": "n", "value": {"a": [1]}}}),
        ({"n": 0}, {"expr": "event.x"}, {"type": "setFromEvent", "params": {"key": "n", "field": "x"}}),
        ({"n": None}, {"expr": "context.n + 1"}, "may hold"),
        ({"n": 0, "m": 0}, {"expr": "context.m + 1"}, "is not `context.n + N`"),
        ({"n": 0}, {"expr": "context.n * 2"}, "is not `context.n + N`"),
        ({"n": 0}, {"a": {"expr": "context.n"}}, "built from expressions"),
    ],
)
def test_assignment_rewrites(context: dict[str, Any], value: Any, expected: Any) -> None:
    action = {"type": "assign", "assignment": {"n": value}}
    mapped = map_machine({"id": "m", "context": context, "initial": "s", "states": {"s": {"entry": [action]}}})
    if isinstance(expected, str):
        assert expected in mapped.reason()
    else:
        assert mapped.ok, mapped.reason()
        assert mapped.definition["states"]["s"]["entry"] == [expected]


def _assign(**values: Any) -> dict[str, Any]:
    return {"type": "assign", "assignment": values}


def _checks(*sources: str) -> dict[str, Any]:
    """``CHECK<i>``: record ``yes<i>`` when guard ``i`` holds, else ``no<i>``."""
    return {
        f"CHECK{i}": [{"guard": {"expr": source}, "actions": [f"yes{i}"]}, {"actions": [f"no{i}"]}]
        for i, source in enumerate(sources)
    }


# Every rewrite rule at once, run with drawn events and payloads: fsm evaluating the
# expressions must agree with XState running the rewrite (and fsm running it).
RULES_MACHINE: dict[str, Any] = {
    "id": "rules",
    "initial": "s",
    "context": {"n": 0, "limit": 2, "floor": -2, "flag": False, "name": "a", "last": None, "label": "x", "mix": 0},
    "states": {
        "s": {
            "always": {"guard": {"expr": "context.n == context.floor"}, "target": "t", "actions": ["floored"]},
            "on": {
                "UP": {
                    "guard": {"expr": "context.n < context.limit"},
                    "actions": [_assign(n={"expr": "context.n + 1"}, flag=True)],
                },
                "DOWN": {
                    "guard": {"expr": "context.n > context.floor"},
                    "actions": [_assign(n={"expr": "context.n - 1"})],
                },
                "TAKE": {"actions": [_assign(last={"expr": "event.value"}, label={"expr": "'y'"})]},
                "NAME": [
                    {"guard": {"expr": "event.name == 'b'"}, "actions": [_assign(name="b")]},
                    {"guard": {"expr": "'c' != event.name"}, "actions": [_assign(name={"expr": "event.name"})]},
                ],
                # one event per guard, each with a fallback, so every guard's value shows
                **_checks(
                    "context.n <= 0 and not context.flag",
                    "context.n >= 2 or context.name == 'b'",
                    "0 < context.n < 2",
                    "context.last == null or context.last != 'x'",
                    "context.last == 'x'",
                    "context.n and context.label",
                    "context.mix",
                    "not context.mix or context.n",
                ),
                "MIX_FALSE": {"actions": [_assign(mix=False)]},
                "MIX_ONE": {"actions": [_assign(mix=1)]},
                "MIX_TRUE": {"actions": [_assign(mix={"expr": "true"})]},
                "FLAG": {
                    "guard": {"expr": "context.flag"},
                    "target": "t",
                    "actions": [{"type": "emit", "event": {"type": "flagged"}}],
                },
                "RESET": {"actions": [_assign(n=0, flag={"expr": "false"})]},
            },
        },
        "t": {
            "entry": ["entered"],
            "on": {"BACK": {"target": "s", "actions": [_assign(n=0)]}},
            "after": {"100": {"guard": {"expr": "context.flag == false"}, "target": "s", "actions": ["timeout"]}},
        },
    },
}


def test_the_rules_machine_rewrites_exactly() -> None:
    assert map_machine(RULES_MACHINE).ok, map_machine(RULES_MACHINE).reason()


def _rules_steps() -> st.SearchStrategy[list[dict[str, Any]]]:
    events = strategies.event(Machine.from_dict(RULES_MACHINE), _payloads(map_machine(RULES_MACHINE)))
    return st.lists(_steps(events, st.sampled_from([50, 100])), min_size=1, max_size=25)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.deferred(_rules_steps))
def test_the_rules_machine_agrees_with_xstate(oracle: XStateOracle, steps: list[dict[str, Any]]) -> None:
    mapped = map_machine(RULES_MACHINE).definition
    assert_three_way(oracle, [("drawn steps", _case(RULES_MACHINE, steps, None), _case(mapped, steps, None))])
