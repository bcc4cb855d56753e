"""The testing toolkit offered to users: paths, coverage, strategies, model-based tests,
static analysis (fsm.testing.paths / strategies / model_based / analysis).

Real machines from machines/ and small inline machines; each test checks behaviour
against an independent expectation (hand-counted, or a random walk for reachability).
"""

from __future__ import annotations

import json
import random
from pathlib import Path as FilePath
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fsm import Machine
from fsm.testing.analysis import (
    DEAD_END,
    NEVER_MATCHES,
    SHADOWED,
    UNHANDLED_EVENT,
    UNREACHABLE,
    analyze,
    event_types,
    findings_to_json,
    format_findings,
    handles,
    reachable_states,
)
from fsm.testing.model_based import ModelMismatch, model_test
from fsm.testing.paths import (
    Coverage,
    Step,
    coverage,
    explore,
    format_exploration,
    format_paths,
    paths_to_json,
    replay,
    shortest_path,
    shortest_paths,
    simple_paths,
    state_label,
)
from fsm.testing.strategies import events, from_schema

ROOT = FilePath(__file__).resolve().parents[1]
MACHINES = sorted((ROOT / "machines").glob("*.*"))
FAST = settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def load(name: str) -> Machine:
    machine = Machine.from_file(ROOT / "machines" / name)
    if name == "retry_backoff.yaml":
        # deterministic backoff, so replaying a path reproduces its timers exactly
        machine = machine.provide(delays={"retryDelay": lambda ctx, ev, params: 100 * 2 ** (ctx["attempt"] - 1)})
    return machine


# Payload samples that let the search through the guards of each real machine.
SAMPLES: dict[str, dict[str, Any]] = {
    "order.yaml": {
        "ADD_ITEM": [{"sku": "book", "price": 30}, {"sku": "ebook", "price": 5, "digital": True}],
        "SET_ADDRESS": [{"address": {"country": "FR"}}],
        "PAY": [{"amount": 10}, {"amount": 100}],
    },
    "deployment.yaml": {
        "APPROVE": [{"user": "ada"}, {"user": "grace"}],
        "BUILD_FAILED": [{"error": "boom"}],
        "TESTS_FAILED": [{"failed": 2}],
        "ROLLBACK": [{"reason": "oops"}],
    },
    "workflow.yaml": {"PROGRESS": [{"pct": 50}, {"pct": 100}], "FAIL": [{"reason": "x"}]},
    "xstate_workflow.json": {"START": [{"job": "j"}]},
    "retry_backoff.yaml": {"START": [{"request": {"failTimes": 1}}]},
}


def random_walk_values(machine: Machine, name: str, seed: int, steps: int = 40) -> set[str]:
    """Values visited by a random walk through the pure API (events, invocation results
    and time passing): an independent under-approximation of the reachable values."""
    rng = random.Random(seed)
    snap, _ = machine.initial_transition()
    now = 0.0
    seen = {state_label(snap.value)}
    types = event_types(machine)
    samples = SAMPLES.get(name, {})
    for _ in range(steps):
        if snap.status != "active":
            break
        options: list[Any] = []
        for kind in types:
            options.extend({"type": kind, **s} for s in samples.get(kind, [{}]))
        for child in snap.children:
            options += [{"type": f"xstate.done.actor.{child}"}, {"type": f"xstate.error.actor.{child}", "error": "e"}]
        if snap.timers:
            options.append("tick")
        choice = rng.choice(options)
        try:
            if choice == "tick":
                first = min(snap.timers, key=lambda t: (t.due, t.seq))
                now = max(now, first.due)
                snap, _ = machine.advance(snap, first.due)
            else:
                snap, _ = machine.transition(snap, choice, now=now)
        except Exception:
            continue
        seen.add(state_label(snap.value))
    return seen


# -- shortest paths --------------------------------------------------------------------


@pytest.mark.parametrize("path", MACHINES, ids=[p.name for p in MACHINES])
def test_shortest_paths_reach_every_value_a_random_walk_reaches_and_replay(path: FilePath) -> None:
    machine = load(path.name)
    result = explore(machine, events=SAMPLES.get(path.name), timers=True, max_states=3000)
    found = [state_label(p.state.value) for p in result.paths]
    assert len(found) == len(set(found)), "one path per state value"
    assert result.paths[0].steps == [] and result.paths[0].state.value == machine.initial_transition()[0].value
    walked: set[str] = set()
    for seed in range(30):
        walked |= random_walk_values(machine, path.name, seed)
    assert walked <= set(found), f"reachable but not found: {walked - set(found)}"
    weights = [p.weight for p in result.paths]
    assert weights == sorted(weights)
    for p in result.paths:
        assert replay(machine, p) == p.state
        assert len(p.events) == p.weight
        if p.steps:
            assert p.steps[-1].snapshot is p.state


def test_the_expected_states_of_the_real_machines() -> None:
    order = shortest_paths(load("order.yaml"), events=SAMPLES["order.yaml"])
    assert {state_label(p.value) for p in order} == {
        "cart",
        "checkout.shipping",
        "checkout.payment.waiting",
        "paid",
        "cancelled",
    }
    player = shortest_paths(load("history_player.yaml"))
    assert len(player) == 7  # off, standby, stopped, playing.normal, forward, backward, paused
    # The deployment needs two approvals from two different people: bare APPROVE events
    # (the same "user" twice) never get it to production.
    bare = {state_label(p.value) for p in shortest_paths(load("deployment.yaml"))}
    assert "pipeline.production" not in bare and "released" not in bare
    full = {state_label(p.value) for p in shortest_paths(load("deployment.yaml"), events=SAMPLES["deployment.yaml"])}
    assert {"pipeline.production", "released"} <= full


def test_shortest_path_is_shortest_and_guards_use_the_context() -> None:
    machine = Machine.from_dict(
        {
            "id": "vault",
            "initial": "locked",
            "context": {"n": 0, "admin": False},
            "states": {
                "locked": {
                    "on": {
                        "DIGIT": {"actions": [{"type": "assign", "assignment": {"n": {"expr": "context.n + 1"}}}]},
                        "OPEN": {"guard": {"expr": "context.n >= 3"}, "target": "open"},
                        "OVERRIDE": {"guard": {"expr": "context.admin"}, "target": "secret"},
                    }
                },
                "open": {"on": {"CLOSE": "locked"}},
                "secret": {},
            },
        }
    )
    paths = {state_label(p.value): p for p in shortest_paths(machine)}
    assert set(paths) == {"locked", "open"}, "the admin-only state is out of reach"
    assert [e["type"] for e in paths["open"].events] == ["DIGIT", "DIGIT", "DIGIT", "OPEN"]
    admin = shortest_path(machine, "secret", context={"admin": True})
    assert admin is not None and admin.events == [{"type": "OVERRIDE"}]
    assert admin.start.context["admin"] is True
    assert shortest_path(machine, "secret") is None
    # one path per (value, context) with key="value+context"
    both = shortest_paths(machine, key="value+context", max_depth=5)
    assert {(state_label(p.value), p.state.context["n"]) for p in both} >= {("locked", 3), ("open", 3), ("open", 4)}


def test_timers_are_steps_when_asked() -> None:
    machine = load("traffic_light.yaml")
    without = {state_label(p.value) for p in shortest_paths(machine)}
    assert without == {"green", "flashing"}
    paths = {state_label(p.value): p for p in shortest_paths(machine, timers=True)}
    assert set(paths) == {"green", "yellow", "red.walk", "red.blink", "red.stop", "flashing"}
    yellow = paths["yellow"]
    assert yellow.weight == 2
    assert [s.describe() for s in yellow.steps] == ["PED_BUTTON", "after 10000 ms"]
    assert yellow.steps[1].is_timer and yellow.steps[1].event["type"] == "xstate.after.10000.trafficLight.green"
    assert paths["red.stop"].weight == 5
    assert replay(machine, paths["red.stop"]) == paths["red.stop"].state


def test_invocations_finish_or_fail_as_steps() -> None:
    machine = load("retry_backoff.yaml")
    paths = {state_label(p.value): p for p in shortest_paths(machine, timers=True)}
    assert set(paths) == {"idle", "attempting", "waiting", "succeeded", "failed"}
    assert [e["type"] for e in paths["succeeded"].events] == ["START", "xstate.done.actor.call"]
    # five attempts, four waits in between
    assert paths["failed"].weight == 1 + 5 + 4
    off = {state_label(p.value) for p in shortest_paths(machine, invocations=False)}
    assert off == {"idle", "attempting"}


def test_bounds_are_reported() -> None:
    machine = load("circuit_breaker.yaml")
    result = explore(machine, max_states=50, max_depth=1000)
    assert result.truncated and result.explored == 50
    assert {state_label(p.value) for p in result.paths} == {"closed", "open"}
    finite = explore(load("history_player.yaml"))
    assert not finite.truncated


def test_errors_of_steps_are_skipped_and_reported() -> None:
    result = explore(load("workflow.yaml"))
    assert any("PROGRESS" in e for e in result.errors), "PROGRESS without pct fails its guard"
    assert "PROGRESS" not in result.enabled_types
    good = explore(load("workflow.yaml"), events=SAMPLES["workflow.yaml"])
    assert not good.errors and "PROGRESS" in good.enabled_types


def test_simple_paths_like_xstate_graph() -> None:
    machine = Machine.from_dict(
        {
            "initial": "a",
            "states": {"a": {"on": {"NEXT": "b", "SKIP": "c"}}, "b": {"on": {"NEXT": "c"}}, "c": {"type": "final"}},
        }
    )
    found = sorted((state_label(p.value), tuple(e["type"] for e in p.events)) for p in simple_paths(machine))
    assert found == [("a", ()), ("b", ("NEXT",)), ("c", ("NEXT", "NEXT")), ("c", ("SKIP",))]
    assert [p.events for p in simple_paths(machine, to="c")] == [
        [{"type": "NEXT"}, {"type": "NEXT"}],
        [{"type": "SKIP"}],
    ]
    shortest = {state_label(p.value): p.events for p in shortest_paths(machine)}
    assert shortest["c"] == [{"type": "SKIP"}]


def test_simple_paths_never_revisit_a_state_and_replay() -> None:
    machine = load("history_player.yaml")
    paths = simple_paths(machine, max_paths=500)
    assert len(paths) == 500 or len(paths) > 7
    for p in paths[:100]:
        values = [state_label(p.start.value)] + [state_label(s.snapshot.value) for s in p.steps]
        assert len(values) == len(set(values))
        assert replay(machine, p) == p.state


def test_formatting_for_the_cli() -> None:
    machine = load("traffic_light.yaml")
    paths = shortest_paths(machine, timers=True, to="yellow")
    text = format_paths(paths)
    assert text.splitlines() == ["yellow", "    1. PED_BUTTON  -> green", "    2. after 10000 ms  -> yellow"]
    data = paths_to_json(paths)
    assert json.loads(json.dumps(data)) == data
    assert data[0]["steps"][1]["delay"] == 10000
    assert paths[0].describe() == "green --PED_BUTTON--> green --after 10000 ms--> yellow"
    assert state_label({"bold": "off", "list": {"a": "b"}}) == "{bold.off, list.a.b}"
    result = explore(load("workflow.yaml"), max_depth=2)
    report = format_exploration(result).splitlines()
    assert report[:2] == ["idle", "    (initial state)"]
    assert any(line.startswith("note: the search stopped at a bound") for line in report)
    assert any(line.startswith("note: skipped a step that failed: PROGRESS in running") for line in report)


# -- coverage --------------------------------------------------------------------------

COVERED = {
    "id": "cov",
    "initial": "idle",
    "context": {"ok": False},
    "states": {
        "idle": {
            "on": {
                "GO": [
                    {"guard": {"expr": "context.ok"}, "target": "busy", "actions": [{"type": "log"}]},
                    {"target": "busy"},
                ],
                "ARM": {"actions": [{"type": "assign", "assignment": {"ok": True}}]},
            }
        },
        "busy": {
            "after": {"100": "check"},
            "on": {"STOP": "idle"},
        },
        "check": {"always": [{"guard": {"expr": "context.ok"}, "target": "done"}, {"target": "idle"}]},
        "done": {"type": "final"},
    },
}


def test_coverage_numbers_are_exact() -> None:
    machine = Machine.from_dict(COVERED)
    transitions = {t.path: t for t in Coverage.empty(machine).transitions}
    assert len(transitions) == 7
    cov = coverage(machine, [["GO", "STOP"]])
    assert cov.covered_states == ["cov.idle", "cov.busy"]
    assert [t.path for t in cov.covered_transitions] == ["states.idle.on.GO[1]", "states.busy.on.STOP"]
    # the guarded GO (same target as the fallback) is told apart by evaluating the guard
    cov = coverage(machine, [["ARM", "GO", {"advance": 100}]])
    assert cov.transitions[transitions["states.idle.on.GO[0]"]] == 1
    assert cov.transitions[transitions["states.idle.on.GO[1]"]] == 0
    assert set(cov.covered_states) == {"cov.idle", "cov.busy", "cov.check", "cov.done"}
    assert cov.transitions[transitions["states.check.always[0]"]] == 1
    assert cov.transitions[transitions["states.busy.after.100"]] == 1
    assert len(cov.covered_transitions) == 4 and cov.transition_ratio == pytest.approx(4 / 7)
    both = coverage(machine, [["GO", "STOP"], ["ARM", "GO", {"advance": 100}]])
    assert both.runs == 2 and len(both.covered_transitions) == 6 and both.state_ratio == 1.0
    # the same runs again (the machine now replays recorded steps) count the same
    again = coverage(machine, [["GO", "STOP"], ["ARM", "GO", {"advance": 100}]])
    assert again.states == both.states and again.transitions == both.transitions
    fresh = coverage(Machine.from_dict(COVERED), [["GO", "STOP"]])
    assert fresh.states == {"cov.idle": 2, "cov.busy": 1, "cov.check": 0, "cov.done": 0}
    merged = coverage(machine, [["GO", "STOP"]]).merge(coverage(machine, [["GO", {"advance": 100}]]))
    assert merged.transitions[transitions["states.check.always[1]"]] == 1
    assert merged.states["cov.idle"] > 0
    summary = both.summary()
    assert "states:      4/4 (100.0%)" in summary
    assert "transitions: 6/7 (85.7%)" in summary
    assert "#cov.busy STOP -> #cov.idle" not in summary
    assert "#cov.check always -> #cov.idle  (states.check.always[1])" in summary


def test_coverage_of_shortest_paths_visits_every_state_they_reach() -> None:
    machine = load("history_player.yaml")
    cov = coverage(machine, shortest_paths(machine))
    assert cov.state_ratio == 1.0
    assert cov.runs == 7
    simple = coverage(machine, simple_paths(machine, max_paths=300))
    assert simple.transition_ratio >= cov.transition_ratio


def test_coverage_accepts_steps_and_paths() -> None:
    machine = load("traffic_light.yaml")
    path = shortest_path(machine, "red.walk", timers=True)
    assert path is not None
    cov = coverage(machine, [path])
    steps = coverage(machine, [path.steps])
    assert cov.states == steps.states
    timed = coverage(machine, [[{"advance": 30000}, {"event": {"type": "FAULT"}}]])
    assert timed.states["trafficLight.yellow"] == 1 and timed.states["trafficLight.flashing"] == 1


# -- strategies ------------------------------------------------------------------------

PAY = {
    "type": "object",
    "properties": {"amount": {"type": "integer", "minimum": 1, "maximum": 500}},
    "required": ["amount"],
}
ORDER_PAYLOADS = {
    "ADD_ITEM": {
        "type": "object",
        "properties": {
            "sku": {"type": "string", "minLength": 1, "maxLength": 8},
            "price": {"type": "integer", "minimum": 0, "maximum": 100},
            "digital": {"type": "boolean"},
        },
        "required": ["sku", "price"],
    },
    "PAY": PAY,
    "SET_ADDRESS": {
        "type": "object",
        "properties": {
            "address": {
                "type": "object",
                "properties": {"country": {"enum": ["FR", "DE"]}},
                "required": ["country"],
            }
        },
        "required": ["address"],
    },
}


@pytest.mark.parametrize("name", ["order.yaml", "parallel_editor.json", "history_player.yaml"])
@FAST
@given(data=st.data())
def test_events_strategy_only_yields_handled_events(name: str, data: st.DataObject) -> None:
    machine = load(name)
    payloads = ORDER_PAYLOADS if name == "order.yaml" else None
    drawn = data.draw(events(machine, payloads))
    reachable = reachable_states(machine)
    for ev in drawn:
        assert handles(machine, ev["type"])
        assert any(n.candidates(ev["type"]) for n in reachable)
        if payloads and ev["type"] in payloads:
            jsonschema.validate({k: v for k, v in ev.items() if k != "type"}, payloads[ev["type"]])
    # and they drive the machine without error
    snap, _ = machine.initial_transition()
    for ev in drawn:
        snap, _ = machine.transition(snap, ev)


SCHEMAS = [
    PAY,
    {"type": "string", "minLength": 2, "maxLength": 4},
    {"type": "string", "pattern": "^[A-Z]{3}$"},
    {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1, "maxItems": 3, "uniqueItems": True},
    {"type": ["integer", "null"], "exclusiveMinimum": 0, "exclusiveMaximum": 5},
    {"type": "number", "minimum": 0.5, "maximum": 1.5},
    {"enum": ["a", 1, None]},
    {"const": {"k": 1}},
    {"anyOf": [{"type": "boolean"}, {"type": "string", "maxLength": 1}]},
    {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False},
    {"type": "integer", "multipleOf": 5, "minimum": 0, "maximum": 100},
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=[json.dumps(s)[:40] for s in SCHEMAS])
@FAST
@given(data=st.data())
def test_from_schema_draws_valid_instances(schema: dict[str, Any], data: st.DataObject) -> None:
    value = data.draw(from_schema(schema))
    jsonschema.validate(value, schema)


def test_events_strategy_refuses_payloads_for_unknown_events() -> None:
    with pytest.raises(ValueError, match="PAYY"):
        events(load("order.yaml"), {"PAYY": PAY})


def test_events_strategy_prefers_events_that_do_something() -> None:
    machine = load("deployment.yaml")
    counts: dict[str, int] = {}

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(events(machine, min_size=1, max_size=1))
    def collect(evs: list[dict[str, Any]]) -> None:
        counts[evs[0]["type"]] = counts.get(evs[0]["type"], 0) + 1

    collect()
    assert set(counts) == set(event_types(machine))
    # Without two distinct approvers PROMOTE never passes its guard, so production (and
    # HEALTHY) is out of reach: both are handled, but drawn less often.
    assert max(counts["PROMOTE"], counts["HEALTHY"]) < min(counts["APPROVE"], counts["ROLLBACK"])


# -- model-based testing ---------------------------------------------------------------

TURNSTILE = {
    "id": "turnstile",
    "initial": "locked",
    "context": {"coins": 0},
    "states": {
        "locked": {
            "on": {"COIN": {"target": "unlocked", "actions": "count"}, "PUSH": {"guard": "alarmed", "target": "alarm"}}
        },
        "unlocked": {"on": {"PUSH": "locked", "COIN": {"actions": "count"}}, "after": {"5000": "locked"}},
        "alarm": {"on": {"RESET": "locked"}},
    },
}


class Turnstile:
    """A small system under test; ``bug`` plants one of several mistakes."""

    def __init__(self, bug: str | None = None) -> None:
        self.locked = True
        self.coins = 0
        self.alarm = False
        self.unlocked_for = 0.0
        self.bug = bug

    def coin(self) -> None:
        self.coins += 1
        if self.bug == "third-coin-keeps-it-locked" and self.coins == 3:
            return
        if self.locked or self.bug == "coin-restarts-the-timeout":
            self.unlocked_for = 0.0
        self.locked = False

    def push(self) -> None:
        self.locked = True

    def tick(self, ms: float) -> None:
        if not self.locked:
            self.unlocked_for += ms
            limit = 6000 if self.bug == "slow-timeout" else 5000
            if self.unlocked_for >= limit:
                self.locked = True


def turnstile_test(bug: str | None, **options: Any) -> Any:
    machine = Machine.from_dict(TURNSTILE).provide(
        actions={"count": __import__("fsm").assign(lambda ctx, ev, params: {"coins": ctx["coins"] + 1})},
        guards={"alarmed": lambda ctx, ev, params: False},
    )
    return model_test(
        machine,
        system_factory=lambda: Turnstile(bug),
        drivers={"COIN": lambda t, ev: t.coin(), "PUSH": lambda t, ev: t.push()},
        event_types=["COIN", "PUSH"],
        states={"locked": lambda t, snap: t.locked, "unlocked": lambda t, snap: not t.locked},
        check=lambda t, snap: t.coins == snap.context["coins"],
        settings=settings(
            max_examples=60,
            stateful_step_count=12,
            deadline=None,
            database=None,
            derandomize=True,
        ),
        **options,
    )


def test_model_based_test_passes_a_correct_implementation() -> None:
    test = turnstile_test(None, advance=lambda t, ms: t.tick(ms))
    test.run()
    test.TestCase().runTest()
    assert test.coverage.runs > 0
    assert test.coverage.states["turnstile.unlocked"] > 0
    assert set(test.coverage.uncovered_states) == {"turnstile.alarm"}  # the guard never lets PUSH alarm


@pytest.mark.parametrize("bug", ["third-coin-keeps-it-locked", "slow-timeout", "coin-restarts-the-timeout"])
def test_model_based_test_catches_a_buggy_implementation(bug: str) -> None:
    test = turnstile_test(bug, advance=lambda t, ms: t.tick(ms))
    with pytest.raises(ModelMismatch) as caught:
        test.run()
    message = str(caught.value)
    assert "model state: " in message and "steps so far:" in message
    if bug == "slow-timeout":
        assert "after 5000 ms passed" in message
    if bug == "coin-restarts-the-timeout":
        assert "steps so far: COIN, after 1 ms, COIN, after 4999 ms" in message
    with pytest.raises(ModelMismatch):
        test.TestCase().runTest()


def test_timer_bugs_go_unseen_without_advance() -> None:
    turnstile_test("slow-timeout").run()


def test_the_explain_phase_is_left_out_unless_asked_for() -> None:
    assert Phase.explain not in turnstile_test(None).settings.phases
    assert Phase.shrink in turnstile_test(None).settings.phases
    assert Phase.explain in turnstile_test(None, explain=True).settings.phases
    assert turnstile_test(None).settings.max_examples == 60
    assert turnstile_test(None).TestCase.settings.max_examples == 60


class Checkout:
    """The cart part of machines/order.yaml, hand-written (``lenient``: the bug of
    letting an empty cart check out)."""

    def __init__(self, lenient: bool = False) -> None:
        self.items: list[str] = []
        self.stage = "cart"
        self.lenient = lenient

    def handle(self, event: dict[str, Any]) -> None:
        if event["type"] == "ADD_ITEM" and self.stage == "cart":
            self.items.append(event["sku"])
        elif event["type"] == "CHECKOUT" and self.stage == "cart" and (self.items or self.lenient):
            self.stage = "checkout"
        elif event["type"] == "EDIT_CART" and self.stage == "checkout":
            self.stage = "cart"


@pytest.mark.parametrize("lenient", [False, True])
def test_model_based_test_with_payloads_and_a_real_machine(lenient: bool) -> None:
    def in_checkout(system: Checkout, snap: Any) -> None:
        assert system.stage == "checkout", f"the system is in {system.stage}"

    test = model_test(
        load("order.yaml"),
        system_factory=lambda: Checkout(lenient),
        drive=lambda system, event: system.handle(event),
        payloads={"ADD_ITEM": ORDER_PAYLOADS["ADD_ITEM"]},
        event_types=["ADD_ITEM", "CHECKOUT", "EDIT_CART"],
        check=lambda system, snap: system.items == snap.context["items"],
        # a state value dict cannot be a dict key: (pattern, check) pairs
        states=[("cart", lambda system, snap: system.stage == "cart"), ({"checkout": "shipping"}, in_checkout)],
        settings=settings(max_examples=30, stateful_step_count=8, deadline=None, database=None, derandomize=True),
    )
    if not lenient:
        test.run()
        assert test.coverage.states["shipping"] > 0  # the state has an explicit id
        assert test.coverage.states["order.checkout.payment.waiting"] > 0  # digital goods skip shipping
        return
    with pytest.raises(ModelMismatch, match=r"after CHECKOUT: states\['cart'\] failed"):
        test.run()


def test_model_test_refuses_what_it_cannot_run() -> None:
    machine = Machine.from_dict(TURNSTILE)
    with pytest.raises(ValueError, match="'RESET'"):
        model_test(machine, system_factory=Turnstile, drivers={"COIN": print, "PUSH": print}, check=lambda s, n: True)
    with pytest.raises(ValueError, match="nothing would be checked"):
        model_test(machine, system_factory=Turnstile, drive=print)


# -- static analysis -------------------------------------------------------------------


@pytest.mark.parametrize("path", MACHINES, ids=[p.name for p in MACHINES])
def test_analysis_finds_nothing_in_the_real_machines(path: FilePath) -> None:
    findings = analyze(Machine.from_file(path))
    assert findings == [], format_findings(findings)


def kinds(definition: dict[str, Any], **options: Any) -> list[tuple[str, str | None]]:
    return [(f.kind, f.state_id) for f in analyze(Machine.from_dict(definition), **options)]


def test_unreachable_states() -> None:
    found = kinds(
        {
            "id": "m",
            "initial": "a",
            "states": {
                "a": {"on": {"GO": "b"}},
                "b": {"on": {"BACK": "a"}},
                "island": {"initial": "x", "states": {"x": {"on": {"GO": "y"}}, "y": {"on": {"GO": "#m.a"}}}},
                "p": {
                    "type": "parallel",
                    "states": {
                        "r1": {"initial": "i", "states": {"i": {"on": {"E": "#m.a"}}}},
                        "r2": {"initial": "i", "states": {"i": {"on": {"E": "#m.a"}}, "deep": {"on": {"E": "i"}}}},
                    },
                },
                "h": {"type": "history"},
            },
        }
    )
    assert (UNREACHABLE, "m.island") in found
    assert (UNREACHABLE, "m.island.x") not in found, "reported once, with its ancestor"
    assert (UNREACHABLE, "m.p") in found
    assert [k for k in found if k[0] == UNREACHABLE] == [(UNREACHABLE, "m.island"), (UNREACHABLE, "m.p")]


def test_reachability_follows_regions_history_defaults_and_done() -> None:
    definition = {
        "id": "m",
        "initial": "a",
        "states": {
            "a": {"on": {"GO": "p.r1.deep", "BACK": "c.hist"}},
            "p": {
                "type": "parallel",
                "states": {
                    "r1": {"initial": "i", "states": {"i": {}, "deep": {"on": {"E": "#m.a"}}}},
                    "r2": {"initial": "j", "states": {"j": {"on": {"E": "#m.a"}}}},
                },
            },
            "c": {
                "initial": "c1",
                "onDone": "after_done",
                "states": {
                    "hist": {"type": "history", "target": "c2"},
                    "c1": {},
                    "c2": {"on": {"E": "end"}},
                    "end": {"type": "final"},
                },
            },
            "after_done": {"on": {"E": "a"}},
        },
    }
    reached = {n.id for n in reachable_states(Machine.from_dict(definition))}
    assert {"m.p", "m.p.r1.deep", "m.p.r2.j", "m.c.c2", "m.c.end", "m.after_done"} <= reached
    assert "m.p.r1.i" not in reached, "only entered when p is entered by default"
    assert "m.c.c1" not in reached, "the history default skips the initial state"
    assert (UNREACHABLE, "m.p.r1.i") in kinds(definition)


def test_dead_ends() -> None:
    found = kinds(
        {
            "id": "m",
            "initial": "a",
            "on": {"ANY": {"actions": "x"}},
            "states": {
                "a": {"on": {"GO": "stuck", "WAIT": "timed", "SELF": "self"}},
                "stuck": {"on": {"POKE": {"actions": "x"}}},
                "self": {"on": {"AGAIN": "self"}},
                "timed": {"after": {"10": "a"}},
                "nested": {"initial": "leaf", "on": {"OUT": "a"}, "states": {"leaf": {}}},
                "end": {"type": "final"},
            },
        }
    )
    assert [k for k in found if k[0] == DEAD_END] == [(DEAD_END, "m.stuck"), (DEAD_END, "m.self")]


def test_unhandled_and_never_matching_events() -> None:
    definition = {
        "id": "m",
        "initial": "a",
        "states": {
            "a": {
                "entry": [{"type": "raise", "event": {"type": "READY"}}, {"type": "raise", "event": {"type": "TYPO"}}],
                "on": {
                    "READY": "b",
                    "xstate.done.actor.nobody": "b",
                    "xstate.init": "b",
                    "LEGACY": "b",
                    "order.*": "b",
                },
            },
            "b": {"initial": "x", "onDone": "a", "states": {"x": {"on": {"GO": "#m.a"}}}},
        },
    }
    found = analyze(Machine.from_dict(definition))
    assert [(f.kind, f.state_id) for f in found if f.kind == UNHANDLED_EVENT] == [(UNHANDLED_EVENT, "m.a")]
    assert "'TYPO'" in next(f.message for f in found if f.kind == UNHANDLED_EVENT)
    never = [(f.state_id, f.path) for f in found if f.kind == NEVER_MATCHES]
    assert never == [
        ("m.a", 'states.a.on["xstate.done.actor.nobody"]'),
        ("m.a", 'states.a.on["xstate.init"]'),
        ("m.b", "states.b.onDone"),
    ]
    # with the program's events known, unknown descriptors and unsent events show up too
    closed = analyze(Machine.from_dict(definition), events=["GO", "order.placed", "PING"])
    assert ("m.a", "states.a.on.LEGACY") in [(f.state_id, f.path) for f in closed if f.kind == NEVER_MATCHES]
    assert 'states.a.on["order.*"]' not in [f.path for f in closed if f.kind == NEVER_MATCHES]
    assert [f.message for f in closed if f.kind == UNHANDLED_EVENT and f.state_id is None] == [
        "event 'PING' is sent by the program but no state handles it, so it is always ignored"
    ]


def test_raises_given_as_implementations_are_checked_too() -> None:
    import fsm

    machine = Machine.from_dict(
        {"initial": "a", "states": {"a": {"entry": "announce", "on": {"HELLO": "b"}}, "b": {"type": "final"}}}
    )
    assert analyze(machine.provide(actions={"announce": fsm.raise_event("HELLO")})) == [
        f for f in analyze(machine.provide(actions={"announce": fsm.raise_event("HELLO")})) if f.kind != UNHANDLED_EVENT
    ]
    found = analyze(machine.provide(actions={"announce": [fsm.raise_event("HELO")]}))
    assert [f.kind for f in found] == [UNHANDLED_EVENT]
    assert "implementation 'announce'" in found[0].message


def test_shadowed_transitions() -> None:
    found = analyze(
        Machine.from_dict(
            {
                "id": "m",
                "initial": "a",
                "states": {
                    "a": {
                        "on": {
                            "GO": [{"target": "b"}, {"guard": "never", "target": "c"}],
                            "OK": [{"guard": "g", "target": "b"}, "c"],
                        },
                        "always": [{"target": "b"}, {"target": "c"}],
                    },
                    "b": {"after": {"10": [{"target": "a"}, {"target": "c"}]}},
                    "c": {"type": "final"},
                },
            }
        )
    )
    shadowed = [f.path for f in found if f.kind == SHADOWED]
    assert shadowed == ["states.a.on.GO[1]", "states.a.always[1]", "states.b.after.10[1]"]


def test_format_findings() -> None:
    machine = Machine.from_dict({"id": "m", "initial": "a", "states": {"a": {}, "b": {}}})
    findings = analyze(machine)
    text = format_findings(findings, "m.yaml")
    assert text.splitlines()[0].startswith("m.yaml: warning: states.a: state #m.a has no way out")
    assert text.splitlines()[-1] == "m.yaml: 2 warning(s)"
    assert format_findings([]) == "no problems found"
    assert findings_to_json(findings)[1]["kind"] == UNREACHABLE
    assert str(findings[1]).endswith("[unreachable]")


def test_step_is_a_plain_value() -> None:
    machine = load("workflow.yaml")
    snap, _ = machine.initial_transition()
    step = Step({"type": "PROGRESS", "pct": 5}, snap)
    assert step.describe() == 'PROGRESS {"pct": 5}' and not step.is_timer
    assert Step({"type": "xstate.after.5.x"}, snap, 5.0).describe() == "after 5 ms"


# -- the package namespace ---------------------------------------------------------------

PACKAGE_NAMES = {
    "analysis": ["Finding", "analyze", "findings_to_json", "format_findings"],
    "model_based": ["ModelMismatch", "ModelTest", "model_test"],
    "paths": [
        "Coverage",
        "Exploration",
        "Path",
        "Step",
        "coverage",
        "explore",
        "format_exploration",
        "format_paths",
        "paths_to_json",
        "replay",
        "shortest_path",
        "shortest_paths",
        "simple_paths",
    ],
    "strategies": ["event_of", "events", "from_schema"],
}


def test_helpers_are_importable_from_the_package() -> None:
    import importlib

    import fsm.testing

    for module_name, names in PACKAGE_NAMES.items():
        module = importlib.import_module(f"fsm.testing.{module_name}")
        for name in names:
            assert getattr(fsm.testing, name) is getattr(module, name), f"fsm.testing.{name}"
    assert sorted(fsm.testing.__all__) == sorted(n for names in PACKAGE_NAMES.values() for n in names)
    assert set(fsm.testing.__all__) <= set(dir(fsm.testing))
    from fsm.testing import events as package_events
    from fsm.testing import model_test as package_model_test

    assert package_events is events and package_model_test is model_test
    with pytest.raises(AttributeError, match="no_such_helper"):
        fsm.testing.no_such_helper  # noqa: B018


def test_importing_the_package_does_not_import_hypothesis() -> None:
    """hypothesis is optional: only the helpers built on it may import it, on first use."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import fsm.testing\n"
        "assert 'hypothesis' not in sys.modules, 'import fsm.testing imported hypothesis'\n"
        "from fsm.testing import analyze, shortest_paths\n"
        "assert 'hypothesis' not in sys.modules, 'the path and analysis helpers imported hypothesis'\n"
        "from fsm.testing import events\n"
        "assert 'hypothesis' in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr


# -- what the conformance generator covers ----------------------------------------------

COVERED_FEATURES = (
    "depth >= 4",
    "parallel",
    "shallow history",
    "deep history",
    "history default target",
    "final",
    "onDone",
    "always",
    "after",
    "raise",
    "delayed raise with id",
    "cancel",
    "reenter",
    "targetless",
    "wildcard",
    "stateIn",
    "several guarded transitions for one event",
    "entry",
    "exit",
)


def _features(definition: dict[str, Any]) -> set[str]:
    found: set[str] = set()

    def walk(node: Any, depth: int) -> None:
        if isinstance(node, dict):
            if depth >= 4 and "states" not in node:
                found.add("depth >= 4")
            kind = node.get("type")
            if kind == "parallel":
                found.add("parallel")
            if kind == "final":
                found.add("final")
            if kind == "history":
                found.add(f"{node.get('history', 'shallow')} history")
                if "target" in node:
                    found.add("history default target")
            if kind == "raise":
                found.add("delayed raise with id" if "delay" in node and "id" in node else "raise")
            if kind == "cancel":
                found.add("cancel")
            if kind == "stateIn":
                found.add("stateIn")
            if node.get("reenter"):
                found.add("reenter")
            for key in ("onDone", "always", "after", "entry", "exit"):
                if key in node:
                    found.add(key)
            for descriptor, spec in (node.get("on") or {}).items():
                if "*" in descriptor:
                    found.add("wildcard")
                items = spec if isinstance(spec, list) else [spec]
                if sum(1 for t in items if isinstance(t, dict) and "guard" in t) >= 2:
                    found.add("several guarded transitions for one event")
                if any(t is None or (isinstance(t, dict) and "target" not in t) for t in items):
                    found.add("targetless")
            for key, value in node.items():
                walk(value, depth + 1 if key == "states" else depth)
        elif isinstance(node, list):
            for item in node:
                walk(item, depth)

    walk(definition, 0)
    return found


def test_the_conformance_generator_draws_every_feature_it_claims() -> None:
    """The differential test is only as good as what it draws: over a few hundred drawn
    machines, every feature the conformance issue lists must appear."""
    from hypothesis import find
    from hypothesis.errors import NoSuchExample

    from fsm.testing.strategies import conformance_cases

    seen: set[str] = set()

    def covers_everything(case: dict[str, Any]) -> bool:
        seen.update(_features(case["machine"]))
        return seen >= set(COVERED_FEATURES)

    settings_ = settings(max_examples=2000, database=None, phases=[Phase.generate], deadline=None)
    try:
        find(conformance_cases(), covers_everything, settings=settings_)
    except NoSuchExample:
        pass  # reported below, by name
    assert set(COVERED_FEATURES) - seen == set()
