"""Properties of the step function and the actor, over generated statecharts.

Machines come from :func:`fsm.testing.strategies.statecharts` (nesting, parallel regions,
history, final states, ``always``, ``after``, ``raise``, wildcards, guards...) and are
driven by :func:`fsm.testing.strategies.steps_for` (events and clock advances), with the
implementations of :mod:`fsm.testing.convention`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

from hypothesis import event, given, note
from hypothesis import strategies as st

import fsm.machine
from fsm import Actor, EventError, InfiniteLoopError, Machine, StepError, VirtualClock
from fsm.model.nodes import COMPOUND, HISTORY, PARALLEL, Model
from fsm.semantics import plans
from fsm.semantics.snapshot import Snapshot, check_configuration
from fsm.testing.convention import GUARDS, Recorder, provide
from fsm.testing.strategies import statecharts, steps_for

MAX_MICROSTEPS = 60


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    definition = draw(statecharts())
    return {"machine": definition, "steps": draw(steps_for(definition)), "maxIterations": MAX_MICROSTEPS}


def build(case: dict[str, Any], recorder: Recorder | None = None) -> Machine:
    machine = Machine.from_dict(case["machine"], max_microsteps=MAX_MICROSTEPS)
    return provide(machine, recorder or Recorder())


def assert_legal(model: Model, snap: Snapshot) -> None:
    """The configuration is legal, checked by fsm and independently here."""
    check_configuration(model, snap.nodes)
    active = set(snap.nodes)
    assert model.root in active
    assert len(active) == len(snap.nodes), "a state is listed twice"
    for node in snap.nodes:
        assert node.type != HISTORY, f"history state #{node.id} is active"
        for ancestor in node.ancestors:
            assert ancestor in active, f"#{node.id} is active but its ancestor #{ancestor.id} is not"
        children = [c for c in node.children if c in active]
        if node.type == COMPOUND:
            assert len(children) == 1, f"#{node.id} has {len(children)} active children"
        elif node.type == PARALLEL:
            assert children == list(node.children), f"parallel #{node.id} is missing regions"
        else:
            assert children == [], f"atomic #{node.id} has active children"
    assert snap.matches(snap.value)


def assert_round_trip(machine: Machine, snap: Snapshot) -> None:
    data = json.loads(json.dumps(snap.to_dict()))
    restored = machine.snapshot_from_dict(data)
    assert restored == snap
    assert restored.to_dict() == snap.to_dict()
    assert restored.value == snap.value


def drive(case: dict[str, Any]) -> Iterator[tuple[Machine, Actor, Recorder]]:
    """Run the case through an actor on a VirtualClock; yield after start and each step."""
    recorder = Recorder()
    machine = build(case, recorder)
    clock = VirtualClock()
    actor = Actor(machine, clock=clock, executor="inline", logger=lambda *a: None)
    actor.on("*", recorder.emitted.append)
    actor.subscribe(None, lambda err: None)
    actor.start()
    yield machine, actor, recorder
    for step in case["steps"]:
        if actor.snapshot.status != "active":
            break
        if "event" in step:
            ev = step["event"]
            # a bare type goes as a string, the form send's static fast path takes
            actor.send(ev["type"] if ev.keys() == {"type"} else ev)
        else:
            clock.advance(float(step["advance"]), max_fires=10_000)
        yield machine, actor, recorder


def apply(machine: Machine, snap: Snapshot, step: dict[str, Any], now: float) -> tuple[Snapshot, float]:
    """One step through the pure API, firing due timers as the clock would: deadline by
    deadline, ties in arming order. A failed step keeps the snapshot, with status error."""
    if "event" in step:
        try:
            snap, _ = machine.transition(snap, step["event"], now=now)
        except StepError:
            snap = snap.replace(status="error")
        return snap, now
    end = now + float(step["advance"])
    while snap.status == "active":
        due = [t for t in snap.timers if t.due <= end and t.to is None]
        if not due:
            break
        timer = min(due, key=lambda t: (t.due, t.seq))
        now = max(now, timer.due)
        try:
            snap, _ = machine.transition(snap, dict(timer.event), now=now, timer=timer.id)
        except StepError:
            snap = snap.replace(status="error")
    return snap, end


def fold(machine: Machine, steps: list[dict[str, Any]]) -> Iterator[tuple[Snapshot, float]]:
    """The initial snapshot, then the snapshot (and clock time) after each step."""
    now = 0.0
    try:
        snap, _ = machine.initial_transition(now=now)
    except StepError as exc:
        snap = machine.error_snapshot(None, exc)
    yield snap, now
    for step in steps:
        if snap.status != "active":
            break
        snap, now = apply(machine, snap, step, now)
        yield snap, now


# ------------------------------------------------------------------------- properties
#
# Drawing a statechart costs far more than running it, so each test below checks several
# properties of the same drawn case.


def record_actor_run(case: dict[str, Any]) -> list[tuple[dict[str, Any], list[Any], list[Any]]]:
    """Drive the case through an actor; after start and each step check that the
    configuration is legal and that the snapshot survives a JSON round trip; return the
    persisted snapshots with the actions run and the events emitted at each step."""
    out = []
    for machine, actor, recorder in drive(case):
        snap = actor.snapshot
        note(f"value={snap.value!r} status={snap.status}")
        assert_legal(machine.model, snap)
        assert_round_trip(machine, snap)
        actions, emitted = recorder.take()
        out.append((snap.to_dict(), actions, json.loads(json.dumps(emitted))))
    return out


@given(cases())
def test_actor_runs_are_legal_persistable_and_deterministic(case: dict[str, Any]) -> None:
    """Through the actor: every configuration is legal, every snapshot round-trips
    through JSON, and running the same case again gives the same trace (snapshots,
    actions run, events emitted)."""
    first = record_actor_run(case)
    second = record_actor_run(case)
    assert second == first
    event(f"final status {first[-1][0]['status']}")


@given(cases())
def test_pure_api_is_legal_restorable_and_agrees_with_the_actor(case: dict[str, Any]) -> None:
    """Folding the steps through ``machine.transition`` alone: every configuration is
    legal; persisting after any step and resuming from the stored JSON changes nothing;
    and the snapshots are those the actor produces."""
    machine = build(case)
    run = list(fold(machine, case["steps"]))
    for snap, _ in run:
        assert_legal(machine.model, snap)
    for (snap, now), (expected, _), step in zip(run, run[1:], case["steps"]):
        restored = machine.snapshot_from_dict(json.loads(json.dumps(snap.to_dict())))
        resumed, _ = apply(machine, restored, step, now)
        assert resumed.to_dict() == expected.to_dict()

    driven = [actor.snapshot.to_dict() for _, actor, _ in drive(case)]
    assert len(driven) == len(run)
    for a, (folded, _) in zip(driven, run):
        b = folded.to_dict()
        if a["status"] == "error" or b["status"] == "error":
            # the same failure; the error objects themselves differ
            assert a["status"] == b["status"] == "error"
            a, b = dict(a, error=None), dict(b, error=None)
        assert a == b


@given(cases())
def test_recorded_plans_replay_exactly_what_the_slow_path_does(case: dict[str, Any]) -> None:
    """The fast path (recorded plans, lean replays without a Step) against the full
    algorithm alone: the steps are repeated so that most of them are replays, and the
    trace (snapshots, actions run, events emitted) must be the same as with recording
    switched off."""
    case = {**case, "steps": case["steps"] * 3}
    lean = fsm.machine.replay_lean
    replays = [0]

    def counted(*args: Any) -> Any:
        replays[0] += 1
        return lean(*args)

    with mock.patch.object(fsm.machine, "replay_lean", counted):
        fast = record_actor_run(case)
    with mock.patch.object(plans, "ENABLED", False):
        slow = record_actor_run(case)
    assert fast == slow
    event(f"lean replays: {min(replays[0], 3)}{'+' if replays[0] >= 3 else ''}")


def _without(keys: tuple[str, ...], node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without(keys, v) for k, v in node.items() if k not in keys}
    if isinstance(node, list):
        return [_without(keys, v) for v in node]
    return node


@given(cases())
def test_rejected_and_unhandled_events_change_nothing(case: dict[str, Any]) -> None:
    """At every point of a run: an event nothing handles returns the very same snapshot
    and no effects, and a malformed event is refused with EventError, the snapshot
    untouched. Wildcard transitions are removed, so that nothing handles ``UNKNOWN``, and so
    are ``always`` transitions: as in XState, they are re-checked after every event, even
    an unhandled one, and their guards may read it (docs/semantics.md, Events)."""
    case = {**case, "machine": _without(("*", "always"), case["machine"])}
    machine = build(case)
    for snap, _ in fold(machine, case["steps"]):
        if snap.status != "active":
            break
        before = snap.to_dict()
        after, effects = machine.transition(snap, "UNKNOWN")
        assert after is snap and effects == []
        for bad in ({"type": ""}, {"type": 7}, {"no": "type"}, "*"):
            try:
                machine.transition(snap, bad)
            except EventError:
                pass
            else:
                raise AssertionError(f"{bad!r} was accepted")
        assert snap.to_dict() == before


class GuardBoom(Exception):
    pass


@given(cases(), st.sampled_from(["A", "B", "C", "D.x", "D.y"]))
def test_failing_step_leaves_the_snapshot_unchanged(case: dict[str, Any], bad: str) -> None:
    def exploding(name: str) -> Any:
        real = GUARDS[name]

        def guard(ctx: Any, ev: Any, params: Any) -> Any:
            if ev.get("type") == bad:
                raise GuardBoom(f"guard {name} refuses {bad}")
            return real(ctx, ev, params)

        return guard

    machine = Machine.from_dict(case["machine"], max_microsteps=MAX_MICROSTEPS)
    machine = provide(machine, Recorder()).provide(guards={name: exploding(name) for name in GUARDS})
    try:
        snap, _ = machine.initial_transition()
    except StepError:
        return
    failures = 0
    for step in case["steps"] + [{"event": {"type": bad}}]:
        if "event" not in step or snap.status != "active":
            continue
        before = snap.to_dict()
        try:
            after, _ = machine.transition(snap, step["event"])
        except StepError as exc:
            failures += 1
            assert snap.to_dict() == before
            assert isinstance(exc, InfiniteLoopError) or isinstance(exc.cause, GuardBoom) or _caused_by(exc, GuardBoom)
            continue
        assert snap.to_dict() == before  # a successful step never touches its input either
        assert_legal(machine.model, after)
        snap = after
    event(f"failures {min(failures, 2)}")


def _caused_by(exc: BaseException | None, kind: type[BaseException]) -> bool:
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, kind):
            return True
        exc = getattr(exc, "cause", None) or exc.__cause__
        seen += 1
    return False


def test_failing_guard_example() -> None:
    """A fixed case of the property above, so the failure path is always exercised."""
    definition = {
        "id": "m",
        "initial": "a",
        "context": {"n": 0},
        "states": {
            "a": {"on": {"A": {"target": "b", "guard": {"type": "ctxLt", "params": {"key": "n", "value": 3}}}}},
            "b": {},
        },
    }

    def boom(ctx: Any, ev: Any, params: Any) -> bool:
        raise GuardBoom("no")

    machine = provide(Machine.from_dict(definition), Recorder()).provide(guards={"ctxLt": boom})
    snap, _ = machine.initial_transition()
    before = snap.to_dict()
    try:
        machine.transition(snap, "A")
    except StepError as exc:
        assert isinstance(exc.cause, GuardBoom)
    else:  # pragma: no cover
        raise AssertionError("the guard did not raise")
    assert snap.to_dict() == before
