"""Sagas (fsm/compile/saga.py): the format, its validation, the compiled machine, and the
proofs that the compiled machine keeps the saga promises.

Every service call in these tests goes through a :class:`World`: a plan says what each
call does (succeed, fail, fail with an unknown outcome, hang until the timeout, or crash
the process mid-call), the world records every call with its virtual time and
idempotency key, and :func:`expect` says what a saga must do under that plan (a
reference interpreter of the semantics in docs/saga.md, written without the compiler).
The properties then check the trace itself: Garcia-Molina & Salem's T1..Tj Cj..C1 with
retries collapsed, linear extensions for parallel groups, the pivot, exact compensations
after ``compensation_stuck``, backoff timing under ``fsm.VirtualClock``, idempotency keys,
and the same outcome after a kill and a resume from SQLite.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import fsm
from fsm.compile.saga import (
    ABANDON,
    RESUME_COMPENSATION,
    RESUME_FORWARD,
    Group,
    OutcomeUnknown,
    RetryPolicy,
    Saga,
    Step,
    compile_saga,
    is_saga_document,
    load_saga,
    parse_saga,
    saga_schema,
    saga_status,
)
from fsm.compile.saga_runner import resume_saga, run_saga, saga_machine
from fsm.runtime.durable import replay
from fsm.schema import validate
from fsm.semantics import events
from fsm.store import SQLiteStore
from fsm.testing.strategies import sagas

ROOT = Path(__file__).resolve().parents[1]
ORDER_SAGA = ROOT / "machines" / "sagas" / "order_saga.yaml"

# Heavier properties (each example compiles a machine and runs it) take a share of the
# active hypothesis profile's budget, so "ci" stays fast and "long" stays thorough.
BUDGET = settings().max_examples


def examples(share: float) -> settings:
    return settings(
        max_examples=max(10, int(BUDGET * share)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# -- the world: services whose outcomes come from a plan -----------------------------------

OK, FAIL, UNKNOWN, TIMEOUT, CRASH = "ok", "fail", "unknown", "timeout", "crash"
Key = tuple[str, str, int]  # (phase, step, attempt); phase is "action" or "compensate"


class Hang(Exception):
    """Raised by a service that never returns: the executor leaves its future pending."""


class PlanExecutor(Executor):
    """Runs services inline (deterministic), except that a call raising :class:`Hang`
    stays in flight forever: only the step's timeout (or a crash) ends it."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            result = fn(*args, **kwargs)
        except Hang:
            return future
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future


@dataclass(frozen=True)
class Call:
    time: float
    phase: str
    step: str
    attempt: int
    key: str
    outcome: str


@dataclass
class World:
    """Implements every service of a saga from a plan: ``plan[(phase, step, attempt)]``
    is that call's outcome (``ok`` when absent)."""

    saga: Saga
    plan: dict[Key, str]
    clock: fsm.VirtualClock = field(default_factory=fsm.VirtualClock)
    calls: list[Call] = field(default_factory=list)
    all_ok: bool = False  # after a "manual fix": every later call succeeds
    crashed: set[str] = field(default_factory=set)  # keys of calls that crashed mid-call

    def services(self) -> dict[str, Callable[..., Any]]:
        out: dict[str, Callable[..., Any]] = {}
        for step in self.saga.steps:
            out[step.action] = self._service("action", step.id)
            if step.compensate:
                out[step.compensate] = self._service("compensate", step.id)
        return out

    def _service(self, phase: str, step_id: str) -> Callable[..., Any]:
        def service(context: Any, event: Any, input: Mapping[str, Any]) -> Any:
            assert input["step"] == step_id
            attempt = input["attempt"]
            outcome = OK if self.all_ok else self.plan.get((phase, step_id, attempt), OK)
            if outcome == CRASH and input["idempotencyKey"] in self.crashed:
                outcome = OK  # the re-run of the crashed call (same key) finds it done
            self.calls.append(Call(self.clock.now(), phase, step_id, attempt, input["idempotencyKey"], outcome))
            if outcome == OK:
                return f"{phase}:{step_id}:{attempt}"
            if outcome == FAIL:
                raise RuntimeError(f"{phase} {step_id} attempt {attempt} failed")
            if outcome == UNKNOWN:
                raise OutcomeUnknown(f"{phase} {step_id} attempt {attempt}: no answer")
            if outcome == CRASH:
                self.crashed.add(input["idempotencyKey"])
            raise Hang

        return service

    def machine(self) -> fsm.Machine:
        return saga_machine(self.saga).provide(services=self.services())

    def start(self, run_id: str = "run1", **options: Any) -> fsm.Actor:
        return self.machine().start(
            {"runId": run_id, "input": {"order": 7}}, clock=self.clock, executor=PlanExecutor(), **options
        )


# -- the reference semantics ---------------------------------------------------------------


@dataclass
class Expected:
    status: str  # completed | compensated | compensation_stuck | forward_stuck
    completed: list[str]
    uncertain: set[str]
    failed: list[str]  # steps that used up their attempts (all of a failing group's)
    owed: list[str]  # compensations owed when compensation started, in order
    compensated: set[str]
    stuck_owed: list[str]  # what compensation_stuck keeps


def run_attempts(policy: RetryPolicy, plan: Mapping[Key, str], phase: str, step: str) -> tuple[bool, bool]:
    """One round of attempts: (succeeded, some attempt's outcome was unknown)."""
    attempt, unknown = 0, False
    while True:
        attempt += 1
        outcome = plan.get((phase, step, attempt), OK)
        if outcome in (OK, CRASH):
            return True, unknown
        unknown = unknown or outcome in (UNKNOWN, TIMEOUT)
        if not policy.retries_after(attempt):
            return False, unknown


def expect(saga: Saga, plan: Mapping[Key, str]) -> Expected:
    """What the saga must do under ``plan``, straight from the definition of sagas."""
    completed: list[str] = []
    uncertain: set[str] = set()
    pivot = saga.pivot_index
    for index, stage in enumerate(saga.stages):
        members = stage.steps if isinstance(stage, Group) else (stage,)
        failed = []
        for step in members:
            ok, unknown = run_attempts(step.retry, plan, "action", step.id)
            if ok:
                completed.append(step.id)
            else:
                failed.append(step.id)
            if unknown:
                uncertain.add(step.id)
        if failed:
            if pivot is not None and index > pivot:
                return Expected("forward_stuck", completed, uncertain, failed, [], set(), [])
            break
    else:
        return Expected("completed", completed, uncertain, [], [], set(), [])
    owed = [s.id for s in saga.compensable() if s.id in completed or s.id in uncertain]
    compensated: set[str] = set()
    for stage in saga.stages[::-1]:
        members = stage.steps if isinstance(stage, Group) else (stage,)
        stuck = False
        for step in members:
            if step.id not in owed:
                continue
            ok, _ = run_attempts(step.compensation_retry, plan, "compensate", step.id)
            if ok:
                compensated.add(step.id)
            else:
                stuck = True
        if stuck:
            remaining = [s for s in owed if s not in compensated]
            return Expected("compensation_stuck", completed, uncertain, failed, owed, compensated, remaining)
    return Expected("compensated", completed, uncertain, failed, owed, compensated, [])


# -- strategies ------------------------------------------------------------------------------


@st.composite
def plans(draw: st.DrawFn, saga: Saga, crash: bool = False) -> dict[Key, str]:
    """Outcomes for every attempt a round can make; unknown outcomes and timeouts only
    where they can happen (timeouts need a timeout)."""
    plan: dict[Key, str] = {}
    for step in saga.steps:
        choices = [OK, FAIL, FAIL, UNKNOWN] + ([TIMEOUT] if step.timeout else [])
        for attempt in range(1, (step.retry.attempts or 3) + 1):
            plan[("action", step.id, attempt)] = draw(st.sampled_from(choices))
        if step.compensate:
            comp = [OK, OK, FAIL] + ([TIMEOUT] if step.compensation_timeout else [])
            for attempt in range(1, step.compensation_retry.attempts + 1):
                plan[("compensate", step.id, attempt)] = draw(st.sampled_from(comp))
    if crash:
        key = draw(st.sampled_from(sorted(plan)))
        plan[key] = CRASH
    return plan


def run_to_rest(world: World, actor: fsm.Actor) -> None:
    world.clock.run_until_idle()
    assert actor.snapshot.status in ("done", "active")


# -- the trace properties ------------------------------------------------------------------


def first_calls(calls: list[Call], phase: str) -> list[str]:
    """Steps in the order of their first call in ``phase``: retries collapsed."""
    return list(dict.fromkeys(c.step for c in calls if c.phase == phase))


def check_trace(saga: Saga, exp: Expected, calls: list[Call]) -> None:
    forward, comps = first_calls(calls, "action"), first_calls(calls, "compensate")
    stage_of = saga.stage_index
    # Every action call comes before every compensation call.
    phases = [c.phase for c in calls]
    if "compensate" in phases:
        assert "action" not in phases[phases.index("compensate") :]
    # Steps start in stage order; compensations run in reverse stage order, and a
    # later stage's compensations all end before an earlier stage's begin: a linear
    # extension of the reversed completion order.
    assert [stage_of(s) for s in forward] == sorted(stage_of(s) for s in forward)
    for a in comps:
        for b in comps:
            if stage_of(a) < stage_of(b):
                last_b = max(i for i, c in enumerate(calls) if c.phase == "compensate" and c.step == b)
                first_a = min(i for i, c in enumerate(calls) if c.phase == "compensate" and c.step == a)
                assert last_b < first_a, f"{b} (later stage) is still being compensated when {a} starts"
    # Nothing is compensated that never started, and only what completed or may have.
    for s in comps:
        assert s in forward
        assert s in exp.completed or s in exp.uncertain
    # After the pivot nothing is compensated.
    if saga.pivot is not None and saga.pivot in exp.completed:
        assert comps == []
    # Each compensation succeeds at most once and is never called again afterwards.
    for s in comps:
        outcomes = [c.outcome for c in calls if c.phase == "compensate" and c.step == s]
        assert outcomes.count(OK) <= 1
        if OK in outcomes:
            assert outcomes[-1] == OK
    # Without parallel groups the trace is exactly T1..Tj followed by Cj..C1 (owed ones).
    if not any(isinstance(stage, Group) for stage in saga.stages):
        ids = [s.id for s in saga.steps]
        assert forward == ids[: len(forward)]
        assert comps == [s for s in reversed(forward) if s in exp.owed][: len(comps)]


def check_keys_and_timing(saga: Saga, run_id: str, calls: list[Call]) -> None:
    """Idempotency keys are run + step + attempt, attempts count 1, 2, 3 ..., and the
    wait between attempts is the policy's backoff, to the millisecond of virtual time."""
    for step in saga.steps:
        for phase, policy, timeout in (
            ("action", step.retry, step.timeout),
            ("compensate", step.compensation_retry, step.compensation_timeout),
        ):
            mine = [c for c in calls if c.phase == phase and c.step == step.id]
            assert [c.attempt for c in mine] == list(range(1, len(mine) + 1))
            for c in mine:
                middle = ":compensate:" if phase == "compensate" else ":"
                assert c.key == f"{run_id}:{step.id}{middle}{c.attempt}"
            for before, after in itertools.pairwise(mine):
                if not policy.retries_after(before.attempt):
                    continue  # a new round after a resume: no fixed wait
                ended = before.time + ((timeout or 0) if before.outcome == TIMEOUT else 0)
                assert after.time == pytest.approx(ended + policy.delay_after(before.attempt)), (phase, step.id)


# -- the proofs ------------------------------------------------------------------------------


@examples(0.5)
@given(st.data())
def test_random_sagas_keep_the_saga_promises(data: st.DataObject) -> None:
    saga = parse_saga(data.draw(sagas(), label="saga"))
    plan = data.draw(plans(saga), label="plan")
    exp = expect(saga, plan)
    note(f"expected: {exp}")
    world = World(saga, plan)
    actor = world.start()
    run_to_rest(world, actor)
    snap = actor.snapshot
    check_trace(saga, exp, world.calls)
    check_keys_and_timing(saga, "run1", world.calls)
    assert sorted(snap.context["completed"]) == sorted(exp.completed)
    assert set(snap.context["uncertain"]) == exp.uncertain

    if exp.status == "completed":
        assert snap.status == "done" and snap.output["status"] == "completed"
        assert snap.output["outputs"] == {
            s.id: f"action:{s.id}:{_attempts(world, 'action', s.id)}" if s.id in exp.completed else None
            for s in saga.steps
        }
        return
    if exp.status == "forward_stuck":
        assert snap.matches("forward_stuck")
        assert snap.context["forwardError"]["step"] in exp.failed
        assert first_calls(world.calls, "compensate") == []
        world.all_ok = True
        actor.send(RESUME_FORWARD)
        run_to_rest(world, actor)
        assert snap_status(actor) == "completed"
        assert first_calls(world.calls, "compensate") == []
        return
    assert snap.context["failure"]["step"] in exp.failed
    if exp.status == "compensated":
        assert snap.status == "done" and snap.output["status"] == "compensated"
        assert snap.output["failure"]["step"] in exp.failed
        assert set(snap.output["compensated"]) == set(exp.owed) == exp.compensated
        assert snap.context["owed"] == []
        return
    # compensation_stuck keeps exactly what is owed, in order; resuming finishes it.
    assert exp.status == "compensation_stuck"
    assert snap.status == "active" and snap.matches("compensation_stuck")
    assert snap.context["owed"] == exp.stuck_owed
    assert set(snap.context["compensated"]) == exp.compensated
    assert snap.context["compensationError"]["step"] in exp.stuck_owed
    if data.draw(st.booleans(), label="abandon instead of resuming"):
        actor.send(ABANDON)
        out = actor.snapshot.output
        assert out["status"] == "compensation_failed"
        assert out["owed"] == exp.stuck_owed
        assert out["compensationError"] == snap.context["compensationError"]
        assert out["failure"]["step"] in exp.failed
        return
    before = len(world.calls)
    world.all_ok = True
    actor.send(RESUME_COMPENSATION)
    run_to_rest(world, actor)
    assert snap_status(actor) == "compensated"
    resumed = first_calls(world.calls[before:], "compensate")
    assert first_calls(world.calls[before:], "action") == []
    assert resumed == [s for s in exp.stuck_owed]
    assert set(actor.snapshot.output["compensated"]) == set(exp.owed)
    check_trace(saga, exp, world.calls)


def _attempts(world: World, phase: str, step: str) -> int:
    return max(c.attempt for c in world.calls if c.phase == phase and c.step == step)


def snap_status(actor: fsm.Actor) -> str:
    status: str = saga_status(actor.snapshot)["status"]
    return status


# -- soundness: a final configuration stays reachable ----------------------------------------

SOUNDNESS_SAGAS: dict[str, dict[str, Any]] = {
    "two steps, retries and timeouts": {
        "id": "two",
        "retry": {"attempts": 2, "initialInterval": 10},
        "timeout": 100,
        "compensation": {"retry": {"attempts": 2, "initialInterval": 10}, "timeout": 100},
        "steps": [
            {"id": "a", "action": "doA", "compensate": "undoA"},
            {"id": "b", "action": "doB", "compensate": "undoB"},
        ],
    },
    "a parallel group, then a step": {
        "id": "grouped",
        "retry": {"attempts": 2, "initialInterval": 10},
        "compensation": {"retry": {"attempts": 2, "initialInterval": 10}, "timeout": 50},
        "steps": [
            {
                "parallel": [
                    {"id": "a", "action": "doA", "compensate": "undoA", "timeout": 50},
                    {
                        "id": "b",
                        "action": "doB",
                        "compensate": "undoB",
                        "retry": {"attempts": 1},
                        "compensation": {"retry": {"attempts": 1}},
                    },
                ]
            },
            {"id": "c", "action": "doC", "compensate": "undoC", "retry": {"attempts": 1}},
        ],
    },
    "a pivot, steps retried forward": {
        "id": "pivoted",
        "retry": {"attempts": 2, "initialInterval": 10},
        "pivot": "b",
        "steps": [
            {"id": "a", "action": "doA", "compensate": "undoA", "timeout": 50},
            {"id": "b", "action": "doB", "timeout": 50},
            {"parallel": [{"id": "c", "action": "doC"}, {"id": "d", "action": "doD", "retry": {"attempts": 1}}]},
        ],
    },
}


def _search_key(snap: fsm.Snapshot, now: float, resumes: int) -> str:
    timers = sorted((t.id, t.due - now) for t in snap.timers)
    return json.dumps([snap.value, snap.context, timers, sorted(snap.children), snap.status, resumes], sort_keys=True)


def explore(machine: fsm.Machine, limit: int = 50_000) -> tuple[dict[str, set[str]], set[str], dict[str, Any]]:
    """Every configuration reachable through any order of service outcomes (success,
    failure, unknown outcome, in the JSON form a journal replays) and timer firings, with
    at most one resume per run. Returns the graph, the finished nodes, and the nodes."""
    snap, _ = machine.initial_transition({"runId": "r", "input": None})
    start = (snap, 0.0, 0)
    nodes: dict[str, Any] = {_search_key(*start): start}
    edges: dict[str, set[str]] = {}
    done: set[str] = set()
    queue = [_search_key(*start)]
    while queue:
        key = queue.pop()
        snap, now, resumes = nodes[key]
        edges[key] = set()
        if snap.status != "active":
            done.add(key)
            continue
        successors: list[tuple[fsm.Snapshot, float, int]] = []
        for child in snap.children:
            outcomes = [
                events.done_actor(child, "output"),
                events.error_actor(child, {"type": "RuntimeError", "message": "no"}),
            ]
            if child.startswith("action_"):  # a compensation's unknown outcome is just a failure
                outcomes.append(events.error_actor(child, {"type": "OutcomeUnknown", "message": "no"}))
            for event in outcomes:
                successors.append((machine.transition(snap, event, now=now)[0], now, resumes))
        if snap.timers:
            timer = min(snap.timers, key=lambda t: (t.due, t.seq))
            successors.append((machine.fire(snap, timer)[0], timer.due, resumes))
        for stuck, resume in (("compensation_stuck", RESUME_COMPENSATION), ("forward_stuck", RESUME_FORWARD)):
            if snap.matches(stuck):
                successors.append((machine.transition(snap, ABANDON, now=now)[0], now, resumes))
                if resumes < 1:
                    successors.append((machine.transition(snap, resume, now=now)[0], now, resumes + 1))
        for nxt in successors:
            nkey = _search_key(*nxt)
            edges[key].add(nkey)
            if nkey not in nodes:
                nodes[nkey] = nxt
                queue.append(nkey)
                assert len(nodes) <= limit, "the bounded search grew past its limit"
    return edges, done, nodes


def check_invariants(saga: Saga, snap: fsm.Snapshot) -> None:
    ctx = snap.context
    order = [s.id for s in saga.compensable()]
    assert ctx["owed"] == [s for s in order if s in ctx["owed"]], "owed is in compensation order"
    assert set(ctx["owed"]) <= set(ctx["completed"]) | set(ctx["uncertain"]), "only started steps are owed"
    if ctx["committed"]:
        assert ctx["owed"] == [] and ctx["compensated"] == []


@pytest.mark.parametrize("name", sorted(SOUNDNESS_SAGAS))
def test_a_final_configuration_is_reachable_from_every_reachable_one(name: str) -> None:
    saga = parse_saga(SOUNDNESS_SAGAS[name])
    edges, done, nodes = explore(saga_machine(saga))
    good = set(done)
    reverse: dict[str, set[str]] = {}
    for src, dsts in edges.items():
        for dst in dsts:
            reverse.setdefault(dst, set()).add(src)
    frontier = list(done)
    while frontier:
        for src in reverse.get(frontier.pop(), ()):
            if src not in good:
                good.add(src)
                frontier.append(src)
    stranded = [nodes[k][0] for k in edges if k not in good]
    assert not stranded, f"{len(stranded)} configuration(s) cannot finish, e.g. {stranded[0].value}"
    for snap, _, _ in nodes.values():
        check_invariants(saga, snap)
    outcomes = {nodes[k][0].output["status"] for k in done}
    assert "completed" in outcomes and len(nodes) > 20


@examples(0.1)
@given(sagas(max_stages=2, max_group=2, timeouts=False))
def test_random_small_sagas_are_sound(definition: dict[str, Any]) -> None:
    for stage in definition["steps"]:  # keep the exhaustive search small: retries outside groups
        group = "parallel" in stage
        for step in stage.get("parallel", [stage]):
            step["retry"] = {"attempts": 1 if group else min(2, step.get("retry", {}).get("attempts", 2))}
            step["compensation"] = {"retry": {"attempts": 1 if group else 2}}
    saga = parse_saga(definition)
    edges, done, nodes = explore(saga_machine(saga))
    good = set(done)
    changed = True
    while changed:
        changed = False
        for src, dsts in edges.items():
            if src not in good and dsts & good:
                good.add(src)
                changed = True
    assert set(edges) == good
    for snap, _, _ in nodes.values():
        check_invariants(saga, snap)


# -- persisted runs: kill, resume, same result -----------------------------------------------


def result_of(actor: fsm.Actor) -> dict[str, Any]:
    return saga_status(actor.snapshot)


def comparable(saga: Saga, result: dict[str, Any]) -> dict[str, Any]:
    """Members of a parallel group may finish in another order once a crashed call is
    re-run after the resume; the order of those lists is then not part of the result."""
    if any(isinstance(stage, Group) for stage in saga.stages):
        return {k: sorted(v) if k in ("completed", "compensated") else v for k, v in result.items()}
    return result


@examples(0.2)
@given(st.data())
def test_killing_and_resuming_a_persisted_run_gives_the_same_result(tmp_path_factory: Any, data: st.DataObject) -> None:
    saga = parse_saga(data.draw(sagas(max_stages=3), label="saga"))
    plan = data.draw(plans(saga, crash=data.draw(st.booleans(), label="crash mid-call")), label="plan")
    kill_after = data.draw(st.integers(0, 6), label="timer firings before the kill")

    reference = World(saga, {k: (OK if v == CRASH else v) for k, v in plan.items()})
    ref_actor = reference.start()
    run_to_rest(reference, ref_actor)

    path = tmp_path_factory.mktemp("saga") / "runs.db"
    world = World(saga, plan)
    store = SQLiteStore(path)
    actor: fsm.Actor = world.machine().start(
        {"runId": "run1", "input": {"order": 7}},
        store=store,
        instance_id="run1",
        clock=world.clock,
        executor=PlanExecutor(),
    )
    fired, kills, crashes_seen = 0, 0, 0
    while True:
        # The process dies when a call crashes mid-call, and once after `kill_after`
        # timer firings: the live actor is dropped, only the store survives.
        if len(world.crashed) > crashes_seen or (fired == kill_after and kills == 0):
            crashes_seen = len(world.crashed)
            kills += 1
            actor.stop()
            store.close()
            store = SQLiteStore(path)
            actor = resume_saga(saga, world.services(), store, "run1", clock=world.clock, executor=PlanExecutor())
            continue
        due = world.clock.next_due()
        if due is None:
            break
        world.clock.advance_to(due)
        fired += 1
    resumed = actor
    assert comparable(saga, result_of(resumed)) == comparable(saga, result_of(ref_actor))
    # The call in flight at the crash was run again with the same idempotency key.
    for key in world.crashed:
        assert [c.outcome for c in world.calls if c.key == key] == [CRASH, OK]
    assert replay(resumed.machine, store, "run1").matches
    store.close()


CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    import fsm
    from fsm.compile.saga_runner import run_saga
    from fsm.store import SQLiteStore

    db, log = sys.argv[1], sys.argv[2]

    def service(name, crash=False):
        def call(ctx, ev, input):
            with open(log, "a") as f:
                f.write(json.dumps([name, input["idempotencyKey"]]) + "\\n")
            if crash:
                os.kill(os.getpid(), signal.SIGKILL)   # dies mid-call, before answering
            return name
        return call

    names = ["reserveInventory", "releaseInventory", "processPayment", "refundPayment", "cancelShipment"]
    services = {n: service(n) for n in names}
    services["createShipment"] = service("createShipment", crash=True)
    run_saga(sys.argv[3], services, input={"order": 7}, store=SQLiteStore(db), instance_id="order-1",
             clock=fsm.VirtualClock(), executor="inline")
    print("not killed")
    """
)


def order_services(log: list[tuple[str, str]], fail: str | None = None) -> dict[str, Any]:
    def service(name: str) -> Callable[..., Any]:
        def call(ctx: Any, ev: Any, input: Mapping[str, Any]) -> Any:
            log.append((name, input["idempotencyKey"]))
            if name == fail:
                raise RuntimeError(f"{name} is down")
            return name

        return call

    names = ["reserveInventory", "releaseInventory", "processPayment", "refundPayment"]
    return {n: service(n) for n in [*names, "createShipment", "cancelShipment"]}


@pytest.mark.parametrize("fail", [None, "createShipment"])
def test_a_saga_killed_by_sigkill_mid_call_resumes_to_the_same_result(tmp_path: Path, fail: str | None) -> None:
    db, log = tmp_path / "runs.db", tmp_path / "calls.jsonl"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(db), str(log), str(ORDER_SAGA)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr + child.stdout
    before = [tuple(json.loads(line)) for line in log.read_text().splitlines()]
    assert before[-1] == ("createShipment", "order-1:create_shipment:1")

    store = SQLiteStore(db)
    assert store.integrity_check() == []
    after: list[tuple[str, str]] = []
    clock = fsm.VirtualClock()
    actor = resume_saga(ORDER_SAGA, order_services(after, fail), store, "order-1", clock=clock, executor="inline")
    clock.run_until_idle()
    # The call the process died in is made again, with the same idempotency key.
    assert after[0] == ("createShipment", "order-1:create_shipment:1")

    uninterrupted: list[tuple[str, str]] = []
    clock = fsm.VirtualClock()
    reference = run_saga(
        ORDER_SAGA,
        order_services(uninterrupted, fail),
        input={"order": 7},
        run_id="order-1",
        clock=clock,
        executor="inline",
    )
    clock.run_until_idle()
    assert result_of(actor) == result_of(reference)
    assert result_of(actor)["status"] == ("completed" if fail is None else "compensated")
    assert before[:-1] + after == uninterrupted
    assert replay(actor.machine, store, "order-1").matches
    store.close()


# -- the order saga: one test per failure point ----------------------------------------------

ORDER_STEPS = ["reserve_inventory", "process_payment", "create_shipment"]


@pytest.fixture(scope="module")
def order_saga() -> Saga:
    return load_saga(ORDER_SAGA)


def run_order(saga: Saga, plan: dict[Key, str]) -> tuple[World, fsm.Actor]:
    world = World(saga, plan)
    actor = world.start("order-1")
    run_to_rest(world, actor)
    return world, actor


def trace(world: World) -> list[str]:
    """Calls with retries collapsed: ``T:step`` / ``C:step``."""
    out: list[str] = []
    for c in world.calls:
        item = ("T:" if c.phase == "action" else "C:") + c.step
        if not out or out[-1] != item:
            out.append(item)
    return out


def test_order_saga_completes(order_saga: Saga) -> None:
    world, actor = run_order(order_saga, {})
    assert trace(world) == ["T:reserve_inventory", "T:process_payment", "T:create_shipment"]
    assert actor.snapshot.output == {
        "status": "completed",
        "runId": "order-1",
        "outputs": {s: f"action:{s}:1" for s in ORDER_STEPS},
        "completed": ORDER_STEPS,
        "compensated": [],
    }


def _always_fails(step: str, attempts: int = 3) -> dict[Key, str]:
    return {("action", step, a): FAIL for a in range(1, attempts + 1)}


@pytest.mark.parametrize(
    ("step", "attempts", "expected"),
    [
        ("reserve_inventory", 3, ["T:reserve_inventory"]),
        ("process_payment", 2, ["T:reserve_inventory", "T:process_payment", "C:reserve_inventory"]),
        (
            "create_shipment",
            3,
            [
                "T:reserve_inventory",
                "T:process_payment",
                "T:create_shipment",
                "C:process_payment",
                "C:reserve_inventory",
            ],
        ),
    ],
)
def test_order_saga_failure_points(order_saga: Saga, step: str, attempts: int, expected: list[str]) -> None:
    world, actor = run_order(order_saga, _always_fails(step, attempts))
    assert trace(world) == expected
    out = actor.snapshot.output
    assert out["status"] == "compensated"
    assert out["failure"] == {
        "step": step,
        "error": f"action {step} attempt {attempts} failed",
        "attempts": attempts,
        "outcome": "failed",
    }
    assert out["compensated"] == [s[2:] for s in expected if s.startswith("C:")]
    assert len([c for c in world.calls if c.step == step]) == attempts


def test_order_saga_retries_with_backoff(order_saga: Saga) -> None:
    world, actor = run_order(
        order_saga, {("action", "create_shipment", 1): FAIL, ("action", "create_shipment", 2): FAIL}
    )
    times = [c.time for c in world.calls if c.step == "create_shipment"]
    assert times == [0, 1000, 3000]  # 1 s, then 2 s (backoffCoefficient 2)
    assert actor.snapshot.output["status"] == "completed"


def test_a_timed_out_payment_may_have_happened_so_it_is_refunded(order_saga: Saga) -> None:
    plan = {("action", "process_payment", 1): TIMEOUT, ("action", "process_payment", 2): FAIL}
    world, actor = run_order(order_saga, plan)
    assert trace(world) == ["T:reserve_inventory", "T:process_payment", "C:process_payment", "C:reserve_inventory"]
    assert [c.time for c in world.calls if c.step == "process_payment" and c.phase == "action"] == [0, 11000]
    out = actor.snapshot.output
    assert out["failure"]["step"] == "process_payment"
    assert out["compensated"] == ["process_payment", "reserve_inventory"]
    refund = next(c for c in world.calls if c.phase == "compensate" and c.step == "process_payment")
    assert refund.key == "order-1:process_payment:compensate:1"


def test_an_unknown_outcome_is_compensated_a_definite_failure_is_not(order_saga: Saga) -> None:
    unknown = {("action", "create_shipment", a): UNKNOWN for a in (1, 2, 3)}
    _, actor = run_order(order_saga, unknown)
    assert actor.snapshot.output["compensated"] == ORDER_STEPS[::-1]
    assert actor.snapshot.output["failure"]["outcome"] == "unknown"
    _, actor = run_order(order_saga, _always_fails("create_shipment"))
    assert actor.snapshot.output["compensated"] == ORDER_STEPS[1::-1]


def test_compensation_inputs_carry_what_the_undo_needs(order_saga: Saga) -> None:
    seen: list[dict[str, Any]] = []
    world = World(order_saga, _always_fails("create_shipment"))
    services = world.services()
    inner = services["refundPayment"]

    def refund(ctx: Any, ev: Any, input: Mapping[str, Any]) -> Any:
        seen.append(dict(input))
        return inner(ctx, ev, input)

    services["refundPayment"] = refund
    machine = saga_machine(order_saga).provide(services=services)
    machine.start({"runId": "order-1", "input": {"order": 7}}, clock=world.clock, executor="inline")
    world.clock.run_until_idle()
    assert seen == [
        {
            "idempotencyKey": "order-1:process_payment:compensate:1",
            "runId": "order-1",
            "step": "process_payment",
            "attempt": 1,
            "stepKey": "order-1:process_payment",
            "actionAttempts": 1,
            "outcome": "completed",
            "output": "action:process_payment:1",
            "input": {"order": 7},
        }
    ]


def test_order_saga_compensation_stuck_then_resumed(order_saga: Saga) -> None:
    plan = _always_fails("create_shipment")
    plan.update({("compensate", "process_payment", a): FAIL for a in range(1, 6)})
    world, actor = run_order(order_saga, plan)
    snap = actor.snapshot
    assert snap.matches("compensation_stuck") and snap.status == "active"
    assert snap.context["owed"] == ["process_payment", "reserve_inventory"]
    assert snap.context["compensationError"] == {
        "step": "process_payment",
        "error": "compensate process_payment attempt 5 failed",
        "attempts": 5,
    }
    refunds = [c.time for c in world.calls if c.phase == "compensate"]
    assert refunds == [3000, 5000, 9000, 17000, 33000]  # 2 s, 4 s, 8 s, 16 s
    assert saga_status(snap)["status"] == "compensation_stuck"
    world.all_ok = True
    actor.send(RESUME_COMPENSATION)
    world.clock.run_until_idle()
    assert actor.snapshot.output["status"] == "compensated"
    assert actor.snapshot.output["compensated"] == ["process_payment", "reserve_inventory"]
    assert [c.key for c in world.calls if c.phase == "compensate"][-2:] == [
        "order-1:process_payment:compensate:6",
        "order-1:reserve_inventory:compensate:1",
    ]


def test_a_saga_started_without_a_run_id_is_rejected(order_saga: Saga) -> None:
    actor = saga_machine(order_saga).provide(services=World(order_saga, {}).services()).start()
    assert actor.snapshot.output["status"] == "rejected"


def test_run_saga_on_a_thread_pool_and_durably(order_saga: Saga, tmp_path: Path) -> None:
    log: list[tuple[str, str]] = []
    actor = run_saga(order_saga, order_services(log), run_id="r9", input={"order": 1})
    deadline = time.monotonic() + 5
    while actor.snapshot.status == "active" and time.monotonic() < deadline:
        time.sleep(0.005)
    assert actor.snapshot.output["status"] == "completed"
    store = SQLiteStore(tmp_path / "s.db")
    actor = run_saga(
        order_saga,
        order_services(log, "processPayment"),
        store=store,
        instance_id="o-2",
        clock=fsm.VirtualClock(),
        executor="inline",
    )
    assert actor.snapshot.context["runId"] == "o-2"
    again = run_saga(
        order_saga,
        order_services(log, "processPayment"),
        store=store,
        instance_id="o-2",
        clock=fsm.VirtualClock(),
        executor="inline",
    )
    assert again.snapshot.context["attempts"] == actor.snapshot.context["attempts"]
    store.close()


# -- the pivot ---------------------------------------------------------------------------------

PIVOTED: dict[str, Any] = {
    "id": "pivoted",
    "retry": {"attempts": 2, "initialInterval": 100},
    "pivot": "charge",
    "steps": [
        {"id": "reserve", "action": "doReserve", "compensate": "undoReserve"},
        {"id": "charge", "action": "doCharge", "compensate": "undoCharge", "timeout": 500},
        {"parallel": [{"id": "ship", "action": "doShip"}, {"id": "email", "action": "doEmail"}]},
    ],
}


def test_after_the_pivot_steps_are_retried_forward_and_can_be_resumed() -> None:
    saga = parse_saga(PIVOTED)
    plan = {("action", "ship", 1): FAIL, ("action", "ship", 2): FAIL}
    world = World(saga, plan)
    actor = world.start()
    world.clock.run_until_idle()
    snap = actor.snapshot
    assert snap.matches("forward_stuck")
    assert snap.context["committed"] and snap.context["owed"] == []
    assert snap.context["forwardError"]["step"] == "ship"
    assert [c for c in world.calls if c.phase == "compensate"] == []
    world.all_ok = True
    actor.send(RESUME_FORWARD)
    world.clock.run_until_idle()
    assert actor.snapshot.output["status"] == "completed"
    assert [(c.step, c.attempt) for c in world.calls if c.step in ("ship", "email")] == [
        ("ship", 1),
        ("email", 1),
        ("ship", 2),
        ("ship", 3),
    ]


def test_the_pivot_itself_is_compensated_when_its_outcome_is_unknown() -> None:
    saga = parse_saga(PIVOTED)
    world = World(saga, {("action", "charge", 1): TIMEOUT, ("action", "charge", 2): FAIL})
    actor = world.start()
    world.clock.run_until_idle()
    assert actor.snapshot.output["compensated"] == ["charge", "reserve"]


def test_forward_stuck_can_be_abandoned() -> None:
    saga = parse_saga(PIVOTED)
    world = World(saga, {("action", "email", 1): FAIL, ("action", "email", 2): FAIL})
    actor = world.start()
    world.clock.run_until_idle()
    actor.send(ABANDON)
    out = actor.snapshot.output
    assert out["status"] == "forward_failed" and out["forwardError"]["step"] == "email"


# -- parallel groups ---------------------------------------------------------------------------


def test_a_failing_group_member_lets_its_siblings_finish_then_compensates_the_group() -> None:
    saga = parse_saga(
        {
            "id": "grouped",
            "retry": {"attempts": 1},
            "steps": [
                {"id": "first", "action": "doFirst", "compensate": "undoFirst"},
                {
                    "id": "fanout",
                    "parallel": [
                        {"id": "a", "action": "doA", "compensate": "undoA"},
                        {"id": "b", "action": "doB", "compensate": "undoB", "retry": {"attempts": 3}},
                        {"id": "c", "action": "doC", "compensate": "undoC"},
                    ],
                },
                {"id": "last", "action": "doLast", "compensate": "undoLast"},
            ],
        }
    )
    world = World(saga, {("action", "a", 1): FAIL, ("action", "b", 1): FAIL})
    actor = world.start()
    world.clock.run_until_idle()
    out = actor.snapshot.output
    assert out["failure"]["step"] == "a"
    assert sorted(out["completed"]) == ["b", "c", "first"]
    comps = first_calls(world.calls, "compensate")
    assert sorted(comps[:2]) == ["b", "c"] and comps[2:] == ["first"]
    assert "last" not in first_calls(world.calls, "action")


# -- the format and its validation -----------------------------------------------------------


def test_the_compiled_machine_passes_the_machine_schema(order_saga: Saga) -> None:
    compiled = compile_saga(order_saga)
    assert validate(compiled) == []
    assert json.loads(json.dumps(compiled)) == compiled
    machine = fsm.Machine.from_dict(compiled)
    assert sorted(name for kind, name in machine.model.references if kind == "service") == sorted(
        ["reserveInventory", "releaseInventory", "processPayment", "refundPayment", "createShipment", "cancelShipment"]
    )
    assert compile_saga(order_saga) == compiled  # deterministic


def test_the_saga_schema_is_valid_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(saga_schema())
    assert is_saga_document({"id": "x", "steps": []})
    assert not is_saga_document({"id": "x", "states": {}})


def problems_of(definition: Any) -> list[str]:
    with pytest.raises(fsm.DefinitionError) as info:
        parse_saga(definition)
    return [str(p) for p in info.value.problems]


def test_schema_problems_name_their_paths() -> None:
    assert problems_of({"id": "s", "steps": [{"id": "a", "acton": "x"}], "pivto": "a"}) == [
        "<root>: unknown key 'pivto' (did you mean 'pivot'?)",
        "steps[0]: missing required key 'action'",
        "steps[0]: unknown key 'acton' (did you mean 'action'?)",
    ]
    assert problems_of({"id": "s", "steps": [{"id": "a.b", "action": "x", "retry": {"attempts": -1}}]}) == [
        "steps[0].id: 'a.b' must be a name: letters, digits, '_' or '-', starting with a letter or '_', at most 64 "
        "characters",
        "steps[0].retry.attempts: must be at least 0, got -1",
    ]
    assert problems_of([1]) == ["<root>: a saga is a mapping with `id` and `steps`, got list"]
    assert problems_of({"id": "s", "steps": []}) == ["steps: must have at least 1 item(s)"]


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        (
            {"id": "s", "steps": [{"id": "a", "action": "x"}, {"parallel": [{"id": "a", "action": "y"}]}]},
            ["steps[1].parallel[0].id: duplicate id 'a' (also at steps[0].id)"],
        ),
        (
            {"id": "s", "pivot": "nope", "steps": [{"id": "a", "action": "x"}]},
            ["pivot: unknown step 'nope'; the steps are a"],
        ),
        (
            {"id": "s", "pivot": "b", "steps": [{"id": "g", "parallel": [{"id": "b", "action": "x"}]}]},
            [
                "pivot: the pivot 'b' is inside the parallel group 'g' (steps[0].parallel[0]): its siblings may "
                "still fail after it committed; put the pivot after the group, as a step of its own"
            ],
        ),
        (
            {"id": "s", "pivot": "g", "steps": [{"id": "g", "parallel": [{"id": "b", "action": "x"}]}]},
            [
                "pivot: 'g' is a parallel group; the pivot must be a single step (the point of no return is one "
                "action that either happened or not); make the group's last step a step of its own"
            ],
        ),
        (
            {
                "id": "s",
                "pivot": "a",
                "steps": [{"id": "a", "action": "x"}, {"parallel": [{"id": "b", "action": "y", "compensate": "z"}]}],
            },
            [
                "steps[1].parallel[0].compensate: step 'b' comes after the pivot 'a': steps after the pivot are "
                "retried forward and never compensated; remove `compensate` or move the pivot"
            ],
        ),
        (
            {"id": "s", "steps": [{"id": "a", "action": "x", "retry": {"initialInterval": 500, "maxInterval": 10}}]},
            [
                "steps[0].retry: maxInterval (10) is below initialInterval (500): the wait could never reach its "
                "initial value"
            ],
        ),
        (
            {"id": "s", "steps": [{"id": "parallel_2", "action": "x"}, {"parallel": [{"id": "b", "action": "y"}]}]},
            ["steps[1]: give this group an `id`: its default id 'parallel_2' is taken"],
        ),
    ],
)
def test_definition_problems(definition: dict[str, Any], expected: list[str]) -> None:
    assert problems_of(definition) == expected


def test_a_saga_too_large_for_the_expression_language_is_refused_clearly() -> None:
    steps = [{"id": f"a_rather_long_step_name_{i}", "action": "x", "compensate": "y"} for i in range(60)]
    [problem] = problems_of({"id": "big", "steps": steps})
    assert problem.startswith("steps: too many steps (60) for one compiled machine")


def test_retry_policy_reference() -> None:
    policy = RetryPolicy(attempts=4, initial_interval=100, backoff_coefficient=3, max_interval=1000)
    assert [policy.delay_after(a) for a in (1, 2, 3)] == [100, 300, 900]
    assert [policy.retries_after(a) for a in (1, 2, 3, 4, 5)] == [True, True, True, False, True]
    unlimited = RetryPolicy(attempts=0, initial_interval=1, backoff_coefficient=2, max_interval=10**9)
    assert unlimited.exponent_cap == 30 and unlimited.delay_after(5000) == 10**9
    assert RetryPolicy().to_dict() == {
        "attempts": 3,
        "initialInterval": 1000,
        "backoffCoefficient": 2.0,
        "maxInterval": 100000,
    }


def test_unlimited_attempts_back_off_up_to_the_ceiling() -> None:
    saga = parse_saga(
        {
            "id": "u",
            "steps": [{"id": "a", "action": "doA", "retry": {"attempts": 0, "initialInterval": 10, "maxInterval": 50}}],
        }
    )
    world = World(saga, {("action", "a", n): FAIL for n in range(1, 8)})
    actor = world.start()
    world.clock.run_until_idle()
    assert [c.time for c in world.calls] == [0, 10, 30, 70, 120, 170, 220, 270]
    assert actor.snapshot.output["status"] == "completed"


def test_loads_the_example_files() -> None:
    for path in sorted((ROOT / "machines" / "sagas").glob("*.yaml")):
        saga = load_saga(path)
        assert isinstance(saga.stages[0], (Step, Group))
        saga_machine(path)


def test_the_docs_examples_exist() -> None:
    text = (ROOT / "docs" / "saga.md").read_text(encoding="utf-8")
    for heading in ("## The format", "## Semantics", "## The compiled machine", "## Compared with"):
        assert heading in text


def iter_states(node: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    for key, child in (node.get("states") or {}).items():
        yield f"{path}.{key}" if path else key, child
        yield from iter_states(child, f"{path}.{key}" if path else key)


def test_compiled_shape(order_saga: Saga) -> None:
    compiled = compile_saga(order_saga)
    top = list(compiled["states"])
    assert top == [
        "start",
        "steps",
        "compensating",
        "compensation_stuck",
        "compensation_failed",
        "completed",
        "compensated",
        "rejected",
    ]
    assert list(compiled["states"]["compensating"]["states"]) == ORDER_STEPS[::-1]
    task = compiled["states"]["steps"]["states"]["process_payment"]
    assert list(task["states"]) == ["attempt", "wait", "ok", "failed"]
    assert task["states"]["attempt"]["after"].keys() == {"10000"}
    metas = [child["meta"]["saga"] for _, child in iter_states(compiled) if "meta" in child]
    assert {"step": "process_payment", "phase": "compensate"} in metas
