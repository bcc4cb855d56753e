"""DAG workflows compiled into machines: loading, validation, and proofs of equivalence.

The compiled machine is checked against references written here, independently of the
compiler:

- :class:`Simulation` replays Airflow's scheduling as docs/dag.md specifies it (a check
  of a task's trigger rule each time one of its upstreams settles, first-in first-out),
  with the flag / dep-met structure of Airflow 3's ``TriggerRuleDep`` transcribed in
  :func:`airflow_flag` and :func:`airflow_met`, and the deterministic mode's outcome
  table in :func:`final_outcome`;
- :func:`topological_result` evaluates a deterministic-mode DAG in one pass over a
  topological order (no scheduling at all): the machine must reach it whatever the
  completion order.

Runs are driven through the pure step function (``machine.transition``) by
:class:`PureRun`, which completes running tasks and fires timers in an order drawn by
hypothesis, so every interleaving is reachable; the same runs are also checked for
invariants (no task before its trigger rule allows it, ``max_parallel`` never exceeded,
inputs built from the right upstream outputs).
"""

from __future__ import annotations

import copy
import json
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fsm
from fsm.compile.dag import (
    Dag,
    Retry,
    compile_dag,
    is_dag_document,
    load_dag,
    parse_dag,
    retry_delay_ms,
)
from fsm.compile.dag_runner import (
    DagResult,
    LineProgress,
    LiveProgress,
    arun_dag,
    dag_machine,
    parse_param_args,
    rerun_dag,
    resume_dag,
    run_dag,
    start_dag,
)
from fsm.errors import DefinitionError
from fsm.semantics.events import error_actor
from fsm.store.sqlite import SQLiteStore
from fsm.testing.strategies import dag_documents

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "machines" / "dags"
SETTLED = ("succeeded", "failed", "skipped", "upstream_failed")
PROFILE_SCALE = 10 if os.environ.get("HYPOTHESIS_PROFILE") == "long" else 1


def examples(n: int) -> Any:
    """CI-sized example counts, scaled up by the ``long`` profile."""
    return settings(
        max_examples=n * PROFILE_SCALE,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


def problems_of(doc: Any) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        parse_dag(doc)
    return [str(p) for p in info.value.problems]


# ============================================================================ the references


def airflow_flag(rule: str, n: int, c: Mapping[str, int]) -> str | None:
    """Airflow 3 TriggerRuleDep._evaluate_direct_relatives, the ``flag_upstream_failed``
    block: the state a task is set to (or None)."""
    success, skipped, failed, upstream_failed = c["succeeded"], c["skipped"], c["failed"], c["upstream_failed"]
    done = success + skipped + failed + upstream_failed
    upstream_done = done >= n
    if rule == "all_success":
        if upstream_failed or failed:
            return "upstream_failed"
        if skipped:
            return "skipped"
    elif rule == "all_failed":
        if success or skipped:
            return "skipped"
    elif rule == "one_success":
        if upstream_done and done == skipped:
            return "skipped"
        if upstream_done and success <= 0:
            return "upstream_failed"
    elif rule == "one_failed":
        if upstream_done and not (failed or upstream_failed):
            return "skipped"
    elif rule == "one_done":
        if upstream_done and not (failed or success):
            return "skipped"
    elif rule == "none_failed":
        if upstream_failed or failed:
            return "upstream_failed"
    elif rule == "none_failed_min_one_success":
        if upstream_failed or failed:
            return "upstream_failed"
        if skipped == n:
            return "skipped"
    elif rule == "none_skipped":
        if skipped:
            return "skipped"
    elif rule == "all_skipped":  # noqa: SIM102 - kept as Airflow writes it
        if success or failed or upstream_failed:
            return "skipped"
    return None


def airflow_met(rule: str, n: int, c: Mapping[str, int]) -> bool:
    """The same method's "dep met" tests (no failing status yielded)."""
    success, skipped, failed, upstream_failed = c["succeeded"], c["skipped"], c["failed"], c["upstream_failed"]
    done = success + skipped + failed + upstream_failed
    if rule == "one_success":
        return success > 0
    if rule == "one_failed":
        return bool(failed or upstream_failed)
    if rule == "one_done":
        return success + failed > 0
    if rule == "all_success":
        return n - success <= 0
    if rule == "all_failed":
        return n - failed - upstream_failed <= 0
    if rule == "all_done":
        return done >= n
    if rule in ("none_failed", "none_failed_min_one_success"):
        return n - success - skipped <= 0
    if rule == "none_skipped":
        return done >= n and skipped == 0
    if rule == "all_skipped":
        return n - skipped <= 0
    raise AssertionError(rule)


def final_outcome(rule: str, states: list[str]) -> str:
    """The deterministic mode's table: the outcome once every upstream settled, a
    failure (failed or upstream_failed) dominating a skip."""
    n = len(states)
    s = states.count("succeeded")
    f = states.count("failed") + states.count("upstream_failed")
    k = states.count("skipped")
    if rule == "all_success":
        return "run" if s == n else ("upstream_failed" if f else "skipped")
    if rule == "all_failed":
        return "run" if f == n else "skipped"
    if rule == "all_done":
        return "run"
    if rule == "all_skipped":
        return "run" if k == n else "skipped"
    if rule == "one_success":
        return "run" if s else ("skipped" if k == n else "upstream_failed")
    if rule == "one_failed":
        return "run" if f else "skipped"
    if rule == "one_done":
        return "run" if s + states.count("failed") else "skipped"
    if rule == "none_failed":
        return "upstream_failed" if f else "run"
    if rule == "none_failed_min_one_success":
        return "upstream_failed" if f else ("run" if s else "skipped")
    if rule == "none_skipped":
        return "skipped" if k else "run"
    raise AssertionError(rule)


class Plan:
    """A DAG document read the way the references need it, plus the injected outcomes:
    per task and attempt ``ok`` / ``error`` / ``timeout``, and each branch's choice."""

    def __init__(self, doc: Mapping[str, Any], attempts: Mapping[str, list[str]], choices: Mapping[str, Any]) -> None:
        self.doc = doc
        self.mode = doc.get("mode", "deterministic")
        self.fail_fast = bool(doc.get("fail_fast"))
        self.params = {k: (v["default"] if isinstance(v, dict) else v) for k, v in (doc.get("params") or {}).items()}
        self.tasks = list(doc["tasks"])
        spec = doc["tasks"]
        self.needs = {t: list(spec[t].get("needs", [])) for t in self.tasks}
        self.down = {t: [d for d in self.tasks if t in self.needs[d]] for t in self.tasks}
        self.rule = {t: spec[t].get("trigger_rule", "all_success") for t in self.tasks}
        self.noop = {t: "service" not in spec[t] for t in self.tasks}
        self.branch = {t: bool(spec[t].get("branch")) for t in self.tasks}
        self.max_attempts = {t: (spec[t].get("retry") or {}).get("max_attempts", 1) for t in self.tasks}
        self.timeout = {t: spec[t].get("timeout") for t in self.tasks}
        self.attempts = attempts
        self.choices = choices

    def condition(self, t: str) -> bool:
        cond = self.doc["tasks"][t].get("if")
        if cond is None:
            return True
        if isinstance(cond, bool):
            return cond
        assert cond == {"expr": "params.go"}
        return bool(self.params["go"])

    def outcome(self, t: str, attempt: int) -> str:
        return self.attempts[t][attempt - 1]

    def output(self, t: str, attempt: int) -> Any:
        return self.choices[t] if self.branch[t] else f"{t}#{attempt}"

    def descendants(self, t: str) -> set[str]:
        out: set[str] = set()
        stack = list(self.down[t])
        while stack:
            d = stack.pop()
            if d not in out:
                out.add(d)
                stack.extend(self.down[d])
        return out

    def valid_choice(self, t: str) -> bool:
        choice = self.choices[t]
        if choice is None:
            return True
        if isinstance(choice, str):
            choice = [choice]
        return isinstance(choice, list) and all(c in self.down[t] for c in choice) and len(set(choice)) == len(choice)

    def chosen(self, b: str) -> list[str]:
        choice = self.choices[b]
        return [] if choice is None else ([choice] if isinstance(choice, str) else list(choice))

    def kept(self, t: str, b: str) -> bool:
        """Airflow's skip_all_except: the chosen tasks and everything downstream of them."""
        return any(c == t or t in self.descendants(c) for c in self.chosen(b))

    def input_for(self, t: str, outputs: Mapping[str, Any]) -> dict[str, Any]:
        raw = self.doc["tasks"][t]["input"]
        if self.noop[t]:
            return dict(raw)
        return {"task": t, "seen": {u: outputs[u] for u in raw["seen"]}}


class Simulation:
    """The scheduling spec of docs/dag.md, step by step: a settled task counts in each
    downstream task's upstream tally and queues a check of it; checks are handled first
    in, first out; ``airflow`` mode decides with Airflow's flags and dep-met tests at
    every check, ``deterministic`` mode once all upstreams settled."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.state = dict.fromkeys(plan.tasks, "waiting")
        self.attempt = dict.fromkeys(plan.tasks, 0)
        self.output: dict[str, Any] = dict.fromkeys(plan.tasks)
        self.inputs: dict[str, Any] = {}
        self.counts = {t: Counter({s: 0 for s in SETTLED}) for t in plan.tasks}
        self.failures = 0
        self.checks: deque[str] = deque(t for t in plan.tasks if not plan.needs[t] or plan.rule[t] == "always")
        self.drain()

    def drain(self) -> None:
        while self.checks:
            t = self.checks.popleft()
            if self.state[t] == "waiting":
                self.decide(t)

    def decide(self, t: str) -> None:
        plan, c = self.plan, self.counts[t]
        n = len(plan.needs[t])
        done = sum(c[s] for s in SETTLED)
        waits = plan.mode == "deterministic" and plan.rule[t] != "always"
        for b in plan.needs[t]:
            if plan.branch[b] and self.state[b] == "succeeded" and not plan.kept(t, b) and (done >= n or not waits):
                self.settle(t, "skipped")
                return
        if n == 0 or plan.rule[t] == "always":
            outcome: str | None = "run"
        elif plan.mode == "airflow":
            outcome = airflow_flag(plan.rule[t], n, c) or ("run" if airflow_met(plan.rule[t], n, c) else None)
        else:
            upstream = [self.state[u] for u in plan.needs[t]]
            outcome = final_outcome(plan.rule[t], upstream) if done >= n else None
        if outcome == "run":
            if not plan.condition(t):
                self.settle(t, "skipped")
            elif plan.noop[t]:
                self.output[t] = plan.input_for(t, self.output)
                self.settle(t, "succeeded")
            else:
                self.start(t)
        elif outcome is not None:
            self.settle(t, outcome)

    def start(self, t: str) -> None:
        self.state[t] = "running"
        self.attempt[t] += 1
        self.inputs[t] = self.plan.input_for(t, self.output)

    def settle(self, t: str, state: str) -> None:
        self.state[t] = state
        if state == "failed":
            self.failures += 1
            if self.plan.fail_fast:
                self.halt()
        for d in self.plan.down[t]:
            self.counts[d][state] += 1
            self.checks.append(d)

    def halt(self) -> None:
        """fail_fast: running tasks fail, every other unfinished task is skipped."""
        for u in self.plan.tasks:
            if self.state[u] in ("waiting", "retrying"):
                self.settle(u, "skipped")
            elif self.state[u] == "running":
                self.settle(u, "failed")

    # -- external events (the same ones PureRun sends to the machine) -------------

    def complete(self, t: str) -> None:
        plan = self.plan
        outcome = plan.outcome(t, self.attempt[t])
        if outcome == "ok":
            self.output[t] = plan.output(t, self.attempt[t])
            self.settle(t, "succeeded" if not plan.branch[t] or plan.valid_choice(t) else "failed")
        elif self.attempt[t] < plan.max_attempts[t]:
            self.state[t] = "retrying"
        else:
            self.settle(t, "failed")
        self.drain()

    def retry(self, t: str) -> None:
        self.start(t)
        self.drain()

    @property
    def status(self) -> str:
        if self.plan.mode == "deterministic":
            return "failed" if self.failures else "succeeded"
        leaves = [t for t in self.plan.tasks if not self.plan.down[t]]
        return "failed" if any(self.state[t] in ("failed", "upstream_failed") for t in leaves) else "succeeded"


def topological_result(plan: Plan) -> tuple[dict[str, str], dict[str, Any], str]:
    """A deterministic-mode run computed in one pass in topological order: the result
    every completion order must reach (no fail_fast: it is order dependent)."""
    assert plan.mode == "deterministic" and not plan.fail_fast
    state: dict[str, str] = {}
    output: dict[str, Any] = dict.fromkeys(plan.tasks)
    for t in plan.tasks:  # the documents list tasks in a topological order
        upstream = [state[u] for u in plan.needs[t]]
        always = plan.rule[t] == "always" or not plan.needs[t]
        skipped_by_branch = not always and any(
            plan.branch[b] and state[b] == "succeeded" and not plan.kept(t, b) for b in plan.needs[t]
        )
        if skipped_by_branch:
            state[t] = "skipped"
            continue
        outcome = "run" if always else final_outcome(plan.rule[t], upstream)
        if outcome != "run":
            state[t] = outcome
        elif not plan.condition(t):
            state[t] = "skipped"
        elif plan.noop[t]:
            state[t], output[t] = "succeeded", plan.input_for(t, output)
        else:
            for attempt in range(1, plan.max_attempts[t] + 1):
                if plan.outcome(t, attempt) == "ok":
                    output[t] = plan.output(t, attempt)
                    state[t] = "succeeded" if not plan.branch[t] or plan.valid_choice(t) else "failed"
                    break
            else:
                state[t] = "failed"
    status = "failed" if "failed" in state.values() else "succeeded"
    return state, output, status


# ============================================================================ driving machines


class PureRun:
    """Drives a compiled machine through the pure step function: completes running
    tasks (with the plan's outcome for that attempt) and fires timers, time moving
    forward; a task whose attempt is to time out gets no completion."""

    def __init__(self, machine: fsm.Machine, plan: Plan) -> None:
        self.machine = machine
        self.plan = plan
        self.now = 0.0
        self.snapshot, _ = machine.initial_transition({"params": plan.params}, now=0.0)
        self.events: list[tuple[str, str]] = []
        self.running_at: dict[str, list[float]] = {}
        self.policies = {t: spec.retry for t, spec in parse_dag(plan.doc).tasks.items()}
        self.failed_at: dict[str, float] = {}  # task -> when its last attempt failed

    def context(self) -> Mapping[str, Any]:
        return self.snapshot.context

    def running(self) -> list[str]:
        return sorted(self.snapshot.children)

    def _timeout_of(self, task: str) -> fsm.Timer | None:
        suffix = f".run.{task}.running"
        return next((t for t in self.snapshot.timers if t.event["type"].endswith(suffix)), None)

    def options(self) -> list[tuple[str, Any]]:
        ctx = self.context()
        opts: list[tuple[str, Any]] = []
        blockers: list[float] = []
        for task in self.running():
            if self.plan.outcome(task, ctx[task]["attempt"]) != "timeout":
                opts.append(("complete", task))
                timer = self._timeout_of(task)
                if timer is not None:
                    blockers.append(timer.due)
        if self.snapshot.timers:
            first = min(self.snapshot.timers, key=lambda t: (t.due, t.seq))
            if all(first.due < due for due in blockers):
                opts.append(("timer", first))
        return opts

    def apply(self, option: tuple[str, Any]) -> None:
        kind, what = option
        if kind == "complete":
            task = what
            attempt = self.context()[task]["attempt"]
            if self.plan.outcome(task, attempt) == "ok":
                event = {
                    "type": f"xstate.done.actor.{task}",
                    "output": self.plan.output(task, attempt),
                    "actorId": task,
                }
            else:
                event = error_actor(task, RuntimeError(f"{task} attempt {attempt}"))
                self.failed_at[task] = self.now
            self.snapshot, _ = self.machine.transition(self.snapshot, event, now=self.now)
            self.events.append(("complete", task))
        else:
            timer: fsm.Timer = what
            self.now = max(self.now, timer.due)
            if timer.id.startswith("dag.retry."):
                task = timer.id.removeprefix("dag.retry.")
                policy = self.policies[task]
                if not policy.jitter:  # the delay before retry k follows attempt k
                    delay = retry_delay_ms(policy, self.context()[task]["attempt"])
                    assert timer.due - self.failed_at[task] == pytest.approx(delay), (task, timer.due)
            elif str(timer.event["type"]).endswith(".running"):
                self.failed_at[_timed_out_task(timer)] = self.now
            self.snapshot, _ = self.machine.fire(self.snapshot, timer)
            self.events.append(("timer", timer.id))


def expected_input(plan: Plan, task: str, outputs: Mapping[str, Any]) -> Any:
    return plan.input_for(task, outputs)


def check_start_allowed(plan: Plan, task: str, ctx: Mapping[str, Any]) -> None:
    """No task starts before its needs are settled as its trigger rule requires."""
    rule = plan.rule[task]
    if rule == "always" or not plan.needs[task]:
        return
    states = [ctx[u]["state"] for u in plan.needs[task]]
    if plan.mode == "deterministic":
        assert all(s in SETTLED for s in states), (task, states)
        assert final_outcome(rule, states) == "run", (task, rule, states)
    else:
        counts = Counter({s: states.count(s) for s in SETTLED})
        assert airflow_met(rule, len(states), counts), (task, rule, states)
        assert airflow_flag(rule, len(states), counts) is None, (task, rule, states)


@st.composite
def plans(draw: st.DrawFn, max_tasks: int = 12, *, ok_weight: int = 2, **options: Any) -> Plan:
    doc = draw(dag_documents(max_tasks, **options))
    attempts: dict[str, list[str]] = {}
    choices: dict[str, Any] = {}
    for t, spec in doc["tasks"].items():
        tries = (spec.get("retry") or {}).get("max_attempts", 1)
        kinds = ["ok", "error", "timeout"] if "timeout" in spec else ["ok", "error"]
        weights = st.sampled_from(kinds + ["ok"] * ok_weight)
        attempts[t] = draw(st.lists(weights, min_size=tries, max_size=tries))
        if spec.get("branch"):
            down = [d for d, s in doc["tasks"].items() if t in s.get("needs", [])]
            choices[t] = draw(
                st.one_of(
                    st.none(),
                    st.sampled_from(down),
                    st.lists(st.sampled_from(down), unique=True),
                    st.sampled_from(["nope", 42, ["nope"]]),
                )
            )
    return Plan(doc, attempts, choices)


def machine_for(plan: Plan) -> fsm.Machine:
    return fsm.Machine.from_dict(compile_dag(parse_dag(plan.doc)))


def sizes(max_tasks: int) -> st.SearchStrategy[int]:
    """Mostly small DAGs (fast), sometimes large ones (up to ``max_tasks``)."""
    return st.one_of(st.integers(1, 10), st.integers(1, 10), st.integers(1, max_tasks))


# ============================================================================ loading


def test_examples_load_compile_and_pass_the_machine_schema() -> None:
    for path in sorted(DAGS.glob("*.yaml")):
        dag = load_dag(path)
        definition = compile_dag(dag)
        machine = fsm.Machine.from_dict(definition)
        assert machine.id == dag.id
        assert not machine.missing_implementations().get("actions")


def test_dag_files_are_not_where_the_machine_tests_look() -> None:
    machines = ROOT / "machines"
    assert not [p for p in machines.iterdir() if p.suffix in (".json", ".yaml", ".yml") and "dag" in p.stem]
    for path in DAGS.glob("*.yaml"):
        assert is_dag_document(fsm.loading.read_file(path))
    assert not is_dag_document(fsm.loading.read_file(machines / "order.yaml"))


def test_the_schema_is_draft_2020_12_and_checks_itself() -> None:
    import jsonschema

    from fsm.compile.dag import dag_schema

    schema = dag_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_a_cycle_is_refused_naming_it() -> None:
    found = problems_of({"tasks": {"a": {"needs": "c"}, "b": {"needs": "a"}, "c": {"needs": "b"}, "d": {}}})
    assert len(found) == 1
    assert found[0].startswith("tasks.")
    assert "cycle" in found[0]
    for name in ("a", "b", "c"):
        assert name in found[0].split(":", 1)[1]


def test_a_self_dependency_and_unknown_dependencies_are_refused_with_paths() -> None:
    found = problems_of({"tasks": {"a": {"needs": ["a"]}, "b": {"needs": ["fetch", "a"]}, "fetch_": {}}})
    assert "tasks.a.needs[0]: task 'a' needs itself" in found
    assert any(p.startswith("tasks.b.needs[0]: unknown task 'fetch'") and "fetch_" in p for p in found)


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    found = problems_of({"tasks": [{"id": "a"}, {"id": "b"}, {"id": "a", "needs": "b"}]})
    assert found == ["tasks[2].id: duplicate task id 'a' (also tasks[0])"]
    yaml_file = tmp_path / "dup.yaml"
    yaml_file.write_text("tasks:\n  a: {}\n  b: {needs: a}\n  a: {needs: b}\n")
    with pytest.raises(DefinitionError) as info:
        load_dag(yaml_file)
    assert [str(p) for p in info.value.problems] == ["tasks.a: duplicate task id 'a' (line 4)"]
    json_file = tmp_path / "dup.json"
    json_file.write_text('{"tasks": {"a": {}, "a": {}}}')
    with pytest.raises(DefinitionError) as info:
        load_dag(json_file)
    assert [str(p) for p in info.value.problems] == ["tasks.a: duplicate task id 'a'"]


def test_impossible_trigger_rules_are_refused() -> None:
    found = problems_of({"tasks": {"a": {"trigger_rule": "one_failed"}, "b": {"needs": "a"}}})
    assert found[0].startswith("tasks.a.trigger_rule: trigger_rule 'one_failed' counts upstream tasks")
    found = problems_of({"fail_fast": True, "tasks": {"a": {}, "b": {"needs": "a", "trigger_rule": "all_done"}}})
    assert found[0].startswith("tasks.b.trigger_rule: fail_fast stops the run")
    found = problems_of(
        {
            "tasks": {
                "a": {"service": "s"},
                "b": {"needs": "a", "trigger_rule": "always", "input": {"expr": "tasks.a.output"}},
            }
        }
    )
    assert found[0].startswith("tasks.b.trigger_rule: trigger_rule 'always' starts at once")
    # The same is fine in airflow mode, where 'always' means what Airflow means.
    parse_dag(
        {
            "mode": "airflow",
            "tasks": {
                "a": {"service": "s"},
                "b": {"needs": "a", "trigger_rule": "always", "input": {"expr": "tasks.a.output"}},
            },
        }
    )


def test_schema_problems_name_the_path_and_suggest() -> None:
    found = problems_of({"tasks": {"a": {"neds": ["b"], "trigger_rule": "all_sucess", "timeout": "5 minutes"}}})
    assert any(p.startswith("tasks.a.neds: unknown key 'neds' (did you mean 'needs'?)") for p in found)
    assert any(p.startswith('tasks.a.trigger_rule: "all_sucess" is not one of') for p in found)
    assert any(p.startswith("tasks.a.timeout: '5 minutes' is not valid here") for p in found)


def test_other_structural_problems() -> None:
    found = problems_of(
        {
            "tasks": {
                "params": {},
                "a": {"service": "s", "python": "m:f", "retry": {"max_attempts": 2, "retries": 1}},
                "b": {"branch": True, "service": "s"},
                "c": {"needs": "a", "input": {"expr": "tasks.d.output"}},
                "d": {"input": {"expr": "context.x"}},
                "e": {"input": {"expr": "tasks.a.output.__class__"}},
                "f": {"matrix": {"include": [1]}},
                "g": {"max_parallel": 2},
            }
        }
    )
    text = "\n".join(found)
    assert "tasks.params: the task id 'params' is reserved" in text
    assert "tasks.a: give the task's implementation as 'service' or as 'python', not both" in text
    assert "tasks.a.retry: give max_attempts" in text
    assert "tasks.b.branch: a branch task chooses among its downstream tasks" in text
    assert "tasks.c.input.expr: task 'c' reads tasks.d, which it does not (transitively) need" in text
    assert "tasks.d.input.expr: expression 'context.x': DAG expressions read params, tasks and matrix" in text
    assert "tasks.e.input.expr" in text and "'__class__'" in text
    assert "tasks.f.matrix.include: matrix 'include' is not supported" in text
    assert "tasks.g.max_parallel: max_parallel on a task applies to matrix instances" in text


def test_params_are_checked_when_a_run_starts() -> None:
    dag = parse_dag({"params": {"day": {"type": "string"}, "n": {"default": 3, "type": "integer"}}, "tasks": {"a": {}}})
    with pytest.raises(DefinitionError) as info:
        compile_dag(dag, {"n": "x", "dya": 1})
    found = [str(p) for p in info.value.problems]
    assert "params.dya: unknown param (did you mean 'day'?)" in found
    assert "params.day: this param has no default: give a value" in found
    assert "params.n: param 'n' must be integer, got a string" in found
    assert compile_dag(dag, {"day": "mon"})["context"]["params"] == {"day": "mon", "n": 3}
    assert parse_param_args(["day=mon", "n=4", 'tags=["a"]']) == {"day": "mon", "n": 4, "tags": ["a"]}


def test_durations_and_retry_counting() -> None:
    dag = parse_dag(
        {
            "defaults": {"retry": {"retries": 2, "initial_interval": "1.5s"}, "timeout": "1h30m"},
            "tasks": {
                "a": {},
                "b": {"retry": {"max_attempts": 2, "initial_interval": 0.2, "max_interval": "500ms"}},
            },
        }
    )
    assert dag.tasks["a"].retry.max_attempts == 3  # retries count retries...
    assert dag.tasks["b"].retry.max_attempts == 2  # ...max_attempts counts attempts
    assert dag.tasks["a"].timeout_ms == 5_400_000
    assert dag.tasks["a"].retry.cap_ms == 150_000  # Temporal's default: 100 x initial
    assert dag.tasks["b"].retry.initial_ms == 200 and dag.tasks["b"].retry.cap_ms == 500
    assert retry_delay_ms(Retry(5, 100, 3, 1000), 1) == 100
    assert retry_delay_ms(Retry(5, 100, 3, 1000), 3) == 900
    assert retry_delay_ms(Retry(5, 100, 3, 1000), 4) == 1000


# ============================================================================ the airflow rules, one by one


RULES = [
    "all_success",
    "all_failed",
    "all_done",
    "all_skipped",
    "one_success",
    "one_failed",
    "one_done",
    "none_failed",
    "none_failed_min_one_success",
    "none_skipped",
]


@pytest.mark.parametrize("mode", ["airflow", "deterministic"])
@pytest.mark.parametrize("rule", RULES)
def test_each_rule_against_every_upstream_sequence_of_two(rule: str, mode: str) -> None:
    """Two upstreams settle one after the other in every combination of states: the
    downstream task's state after each settle is exactly the reference's."""
    for first in SETTLED:
        for second in SETTLED:
            doc = upstream_pair_doc(rule, mode, first, second)
            machine = fsm.Machine.from_dict(compile_dag(parse_dag(doc)))
            snap, _ = machine.initial_transition()
            snap = settle_upstream(machine, snap, "u1", first)
            after_first = snap.context["j"]["state"]
            snap = settle_upstream(machine, snap, "u2", second)
            after_second = snap.context["j"]["state"]
            expected = reference_pair(rule, mode, first, second)
            assert (after_first, after_second) == expected, (rule, mode, first, second)


def upstream_pair_doc(rule: str, mode: str, first: str, second: str) -> dict[str, Any]:
    """u1 and u2 feed j; each upstream is driven into the wanted state by its own
    root: ``upstream_failed`` through a failed root, ``skipped`` through ``if: false``."""

    def upstream(state: str, root: str) -> dict[str, Any]:
        task: dict[str, Any] = {"service": "s"}
        if state == "upstream_failed":
            task["needs"] = root
        if state == "skipped":
            task["if"] = False
        return task

    return {
        "mode": mode,
        "tasks": {
            "r1": {"service": "s"},
            "r2": {"service": "s"},
            "u1": upstream(first, "r1"),
            "u2": upstream(second, "r2"),
            "j": {"needs": ["u1", "u2"], "trigger_rule": rule, "service": "s"},
        },
    }


def settle_upstream(machine: fsm.Machine, snap: fsm.Snapshot, task: str, state: str) -> fsm.Snapshot:
    root = "r1" if task == "u1" else "r2"
    if state == "upstream_failed":
        return machine.transition(snap, error_actor(root, RuntimeError("x")))[0]
    if state == "skipped":
        # u is skipped by its 'if' at the start; its check was already handled, so
        # deliver its settle now by replaying: the doc skips it at init. Nothing to do.
        return snap
    if state == "succeeded":
        return machine.transition(snap, {"type": f"xstate.done.actor.{task}", "output": 1})[0]
    return machine.transition(snap, error_actor(task, RuntimeError("x")))[0]


def reference_pair(rule: str, mode: str, first: str, second: str) -> tuple[str, str]:
    """The downstream state after each settle. Skipped upstreams settle at the start
    (their 'if' is false), so they count from the beginning."""
    pre = [s for s in (first, second) if s == "skipped"]
    order = [first, second]
    states: list[str] = list(pre)
    results: list[str] = []
    current = "waiting"

    def decide(settled: list[str]) -> str:
        if mode == "airflow":
            counts = Counter({s: settled.count(s) for s in SETTLED})
            flag = airflow_flag(rule, 2, counts)
            if flag:
                return flag
            return "running" if airflow_met(rule, 2, counts) else "waiting"
        if len(settled) < 2:
            return "waiting"
        outcome = final_outcome(rule, settled)
        return "running" if outcome == "run" else outcome

    if pre:
        for i in range(1, len(pre) + 1):
            if current == "waiting":
                current = decide(pre[:i])
    for state in order:
        if state != "skipped":
            states.append(state)
            if current == "waiting":
                current = decide(states)
        results.append(current)
    return results[0], results[1]


def test_airflow_order_dependence_and_the_deterministic_answer() -> None:
    """With A failed and B skipped, Airflow's all_success join ends upstream_failed or
    skipped depending on which settled first; the deterministic mode says
    upstream_failed either way."""

    def run(mode: str, order: list[str]) -> str:
        doc = {
            "mode": mode,
            "tasks": {
                "a": {"service": "s"},
                "gate": {"service": "s"},
                "b": {"needs": "gate", "trigger_rule": "one_failed", "service": "s"},
                "join": {"needs": ["a", "b"], "service": "s"},
            },
        }
        machine = fsm.Machine.from_dict(compile_dag(parse_dag(doc)))
        snap, _ = machine.initial_transition()
        for task in order:
            if task == "a":
                event = error_actor("a", RuntimeError("boom"))
            else:  # gate succeeds, so b (one_failed) is skipped
                event = {"type": "xstate.done.actor.gate", "output": 1}
            snap, _ = machine.transition(snap, event)
        assert snap.context["a"]["state"] == "failed" and snap.context["b"]["state"] == "skipped"
        return str(snap.context["join"]["state"])

    assert run("airflow", ["a", "gate"]) == "upstream_failed"
    assert run("airflow", ["gate", "a"]) == "skipped"
    assert run("deterministic", ["a", "gate"]) == "upstream_failed"
    assert run("deterministic", ["gate", "a"]) == "upstream_failed"


# ============================================================================ proofs of equivalence


@examples(45)
@given(plans(10) | plans(10) | plans(50), st.randoms(use_true_random=False))
def test_machine_matches_the_scheduling_reference_step_by_step(plan: Plan, rng: random.Random) -> None:
    """Random DAGs (up to 50 tasks), trigger rules, branches, retries, timeouts,
    fail_fast, in a random completion order: after every event the machine's task
    states, attempts and running set equal the reference's; the final states, outputs
    and run status too. Checked on the way: no task starts before its trigger rule
    allows it, and every task starts with the input built from its upstream outputs."""
    assume(plan.doc.get("max_parallel") is None)
    run = PureRun(machine_for(plan), plan)
    ref = Simulation(plan)
    started: set[str] = set()
    for _ in range(10_000):
        ctx = run.context()
        assert {t: ctx[t]["state"] for t in plan.tasks} == ref.state
        assert {t: ctx[t]["attempt"] for t in plan.tasks} == ref.attempt
        assert run.running() == sorted(t for t in plan.tasks if ref.state[t] == "running")
        for task in run.running():
            if task not in started:
                started.add(task)
                check_start_allowed(plan, task, ctx)
            assert run.snapshot.children[task]["input"] == ref.inputs[task]
        if run.snapshot.status != "active":
            break
        options = run.options()
        assert options, "a run that is not finished must have something to do"
        option = rng.choice(options)
        run.apply(option)
        if option[0] == "complete":
            ref.complete(option[1])
        else:
            ref.retry(option[1].id.removeprefix("dag.retry.")) if option[1].id.startswith("dag.retry.") else (
                ref.complete(_timed_out_task(option[1]))
            )
    assert run.snapshot.status == "done"
    assert run.snapshot.output["status"] == ref.status
    assert run.snapshot.output["states"] == ref.state
    assert run.snapshot.output["outputs"] == ref.output


def _timed_out_task(timer: fsm.Timer) -> str:
    event_type = str(timer.event["type"])
    return event_type.rsplit(".run.", 1)[1].removesuffix(".running")


@examples(35)
@given(
    plans(10, modes=("deterministic",), fail_fast=False)
    | plans(10, modes=("deterministic",), fail_fast=False)
    | plans(50, modes=("deterministic",), fail_fast=False),
    st.randoms(use_true_random=False),
)
def test_deterministic_mode_reaches_the_topological_result_in_any_order(plan: Plan, rng: random.Random) -> None:
    """Deterministic mode, any completion order, with or without max_parallel: the
    final configuration is the one computed in a single topological pass, and
    max_parallel is never exceeded on the way."""
    run = PureRun(machine_for(plan), plan)
    limit = plan.doc.get("max_parallel")
    while run.snapshot.status == "active":
        ctx = run.context()
        running = [t for t in plan.tasks if ctx[t]["state"] == "running"]
        assert running == sorted(run.snapshot.children, key=plan.tasks.index)
        if limit is not None:
            assert len(running) <= limit
            assert ctx["dag"]["running"] == len(running)
        for task in running:
            check_start_allowed(plan, task, ctx)
        options = run.options()
        assert options
        run.apply(rng.choice(options))
    states, outputs, status = topological_result(plan)
    assert run.snapshot.output["states"] == states
    assert run.snapshot.output["outputs"] == outputs
    assert run.snapshot.output["status"] == status
    # every task whose rule is satisfied ran
    for t in plan.tasks:
        upstream = [states[u] for u in plan.needs[t]]
        satisfied = plan.rule[t] == "always" or not upstream or final_outcome(plan.rule[t], upstream) == "run"
        branch_skip = any(plan.branch[b] and states[b] == "succeeded" and not plan.kept(t, b) for b in plan.needs[t])
        if satisfied and not branch_skip and plan.condition(t) and not plan.noop[t] and plan.rule[t] != "always":
            assert run.context()[t]["attempt"] >= 1, t


@examples(30)
@given(plans(12, modes=("airflow",), fail_fast=False), st.randoms(use_true_random=False))
def test_max_parallel_is_never_exceeded_and_every_runnable_task_runs(plan: Plan, rng: random.Random) -> None:
    """Airflow mode with a max_parallel queue: never more tasks running than allowed,
    never a deadlock, and tasks start in rule order (the rule held when they started)."""
    doc = dict(plan.doc)
    doc["max_parallel"] = rng.randint(1, 3)
    plan = Plan(doc, plan.attempts, plan.choices)
    run = PureRun(machine_for(plan), plan)
    while run.snapshot.status == "active":
        ctx = run.context()
        running = [t for t in plan.tasks if ctx[t]["state"] == "running"]
        assert len(running) <= doc["max_parallel"]
        queued = [t for t in plan.tasks if ctx[t]["state"] == "queued"]
        if queued:
            assert len(running) == doc["max_parallel"], "a queued task waits only for a slot"
        for task in running:
            check_start_allowed(plan, task, ctx)
        options = run.options()
        assert options
        run.apply(rng.choice(options))
    assert all(run.context()[t]["state"] in SETTLED for t in plan.tasks)


# ============================================================================ soundness and confluence


def explore(machine: fsm.Machine, plan: Plan, limit: int = 4000) -> tuple[int, list[fsm.Snapshot]]:
    """Every configuration reachable by any order of completions and timer firings.
    Checks that each one is final or has a successor, and that a final configuration
    is reachable from each one. Returns (states seen, final snapshots). The search must
    end within ``limit`` configurations (the sizes used here stay far below it)."""

    def key(snap: fsm.Snapshot) -> str:
        timers = sorted((t.id, t.due) for t in snap.timers)
        return json.dumps([snap.value, snap.context, timers, sorted(snap.children)], sort_keys=True, default=str)

    start = PureRun(machine, plan)
    # configuration -> (snapshot, time, when each task last failed: the retry delays count from it)
    seen: dict[str, tuple[fsm.Snapshot, float, dict[str, float]]] = {key(start.snapshot): (start.snapshot, 0.0, {})}
    edges: dict[str, list[str]] = {}
    frontier = [key(start.snapshot)]
    finals: list[fsm.Snapshot] = []
    while frontier:
        current = frontier.pop()
        snap, now, failed_at = seen[current]
        if snap.status != "active":
            assert snap.status == "done"
            finals.append(snap)
            edges[current] = []
            continue
        run = copy.copy(start)
        run.snapshot, run.now = snap, now
        options = run.options()
        assert options, f"deadlock in {snap.value}"
        edges[current] = []
        for option in options:
            run.snapshot, run.now, run.failed_at, run.events = snap, now, dict(failed_at), []
            run.apply(option)
            k = key(run.snapshot)
            edges[current].append(k)
            if k not in seen:
                assert len(seen) < limit, f"the search passed {limit} configurations: use a smaller DAG"
                seen[k] = (run.snapshot, run.now, run.failed_at)
                frontier.append(k)
    # a final configuration is reachable from every explored configuration
    can_finish = {k for k, (s, _, _) in seen.items() if s.status != "active"}
    changed = True
    while changed:
        changed = False
        for k, successors in edges.items():
            if k not in can_finish and any(s in can_finish for s in successors):
                can_finish.add(k)
                changed = True
    assert can_finish == set(seen), "some configuration cannot reach a final one"
    return len(seen), finals


def result_of(snap: fsm.Snapshot) -> str:
    return json.dumps(snap.output, sort_keys=True)


@examples(25)
@given(
    plans(6)
    | plans(6, min_tasks=4, conditions=False, roots=3, ok_weight=3, rules=("all_success", "all_done", "one_success"))
)
def test_soundness_exhaustively_for_small_dags(plan: Plan) -> None:
    """DAGs of up to 6 tasks, every reachable configuration: none is stuck, a final
    configuration is reachable from each. Deterministic mode without fail_fast is
    confluent: every completion order ends in the same configuration."""
    machine = machine_for(plan)
    _, finals = explore(machine, plan)
    assert finals
    if plan.mode == "deterministic" and not plan.fail_fast:
        assert len({result_of(s) for s in finals}) == 1
        states, outputs, status = topological_result(plan)
        assert finals[0].output == {"status": status, "states": states, "outputs": outputs}


@pytest.mark.parametrize("mode", ["deterministic", "airflow"])
def test_exhaustive_search_of_a_diamond_with_retries_and_a_branch(mode: str) -> None:
    """A fixed case explored completely (every order of completions and retries):
    every configuration can finish; the deterministic mode has one final
    configuration. Airflow's has two: d is upstream_failed when b's failure is seen
    before the branch skips d, skipped otherwise."""

    def task(name: str, **extra: Any) -> dict[str, Any]:
        return {"service": "work", "input": {"task": name, "seen": {}}, **extra}

    doc = {
        "mode": mode,
        "tasks": {
            "a": task("a", retry={"max_attempts": 2, "initial_interval": "1ms"}),
            "b": task("b"),
            "g": task("g"),
            "c": task("c", needs=["a"], branch=True),
            "d": task("d", needs=["c", "b"]),
            "e": task("e", needs=["c", "g"], retry={"max_attempts": 2, "initial_interval": "1ms"}),
            "f": {"needs": ["d", "e", "g"], "trigger_rule": "none_failed_min_one_success", "input": {"task": "f"}},
        },
    }
    outcomes = {"a": ["error", "ok"], "b": ["error"], "g": ["ok"], "c": ["ok"], "d": ["ok"], "e": ["error", "ok"]}
    plan = Plan(doc, {**outcomes, "f": []}, {"c": ["e"]})
    count, finals = explore(machine_for(plan), plan, limit=20_000)
    assert count > 20
    results = {result_of(s) for s in finals}
    if mode == "deterministic":
        assert len(results) == 1
        states, outputs, status = topological_result(plan)
        assert json.loads(results.pop()) == {"status": status, "states": states, "outputs": outputs}
    else:
        assert {json.loads(r)["states"]["d"] for r in results} == {"upstream_failed", "skipped"}


@examples(15)
@given(plans(14, modes=("deterministic",), fail_fast=False), st.randoms(use_true_random=False))
def test_soundness_and_confluence_by_sampling_larger_dags(plan: Plan, rng: random.Random) -> None:
    """Beyond exhaustive search: random walks from the start always finish, and in
    deterministic mode all of them finish in the same configuration."""
    machine = machine_for(plan)
    results = set()
    for _ in range(6):
        run = PureRun(machine, plan)
        steps = 0
        while run.snapshot.status == "active":
            options = run.options()
            assert options
            run.apply(rng.choice(options))
            steps += 1
            assert steps < 5000
        results.add(result_of(run.snapshot))
    assert len(results) == 1


# ============================================================================ retries and timeouts under a VirtualClock


class ManualExecutor(Executor):
    """Services wait here until the test runs them (or never, to time them out)."""

    def __init__(self) -> None:
        self.pending: list[tuple[Callable[..., Any], tuple[Any, ...], Future[Any]]] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self.pending.append((fn, args, future))
        return future

    def run(self, index: int = 0) -> None:
        fn, args, future = self.pending.pop(index)
        try:
            future.set_result(fn(*args))
        except BaseException as exc:
            future.set_exception(exc)


class FixedRandom:
    """A random source for jitter that returns the given fractions in turn."""

    def __init__(self, fractions: list[float]) -> None:
        self.fractions = list(fractions)
        self.calls: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.calls.append((a, b))
        return a + (b - a) * self.fractions.pop(0)


@examples(40)
@given(
    attempts=st.integers(1, 5),
    failures=st.integers(0, 6),
    initial=st.sampled_from([1, 100, 250]),
    coefficient=st.sampled_from([1, 1.5, 2, 3]),
    cap=st.sampled_from([None, 300, 1000]),
    jitter=st.lists(st.floats(0, 1), min_size=6, max_size=6) | st.none(),
)
def test_retries_respect_attempts_and_backoff(
    attempts: int, failures: int, initial: int, coefficient: float, cap: int | None, jitter: list[float] | None
) -> None:
    """A task failing ``failures`` times runs min(failures + 1, max_attempts) times;
    attempt k + 1 starts min(initial * coefficient ** (k - 1), max_interval) ms after
    attempt k failed (a uniform draw below that with jitter), on a VirtualClock."""
    assume(cap is None or cap >= initial)
    retry: dict[str, Any] = {"max_attempts": attempts, "initial_interval": f"{initial}ms"}
    retry["backoff_coefficient"] = coefficient
    if cap is not None:
        retry["max_interval"] = f"{cap}ms"
    if jitter is not None:
        retry["jitter"] = True
        assume(attempts > 1)
    dag = parse_dag({"tasks": {"t": {"service": "work", "retry": retry}}})
    clock = fsm.VirtualClock()
    calls: list[float] = []

    def work(input: Any) -> str:
        calls.append(clock.now())
        if len(calls) <= failures:
            raise ConnectionError(f"failure {len(calls)}")
        return "done"

    source = FixedRandom(jitter or [])
    result = run_dag(dag, services={"work": work}, clock=clock, executor="inline", random=source)
    assert len(calls) == min(failures + 1, attempts)
    assert result.states["t"] == ("succeeded" if failures < attempts else "failed")
    assert result.attempts["t"] == len(calls)
    policy = dag.tasks["t"].retry
    for k in range(1, len(calls)):
        delay = retry_delay_ms(policy, k)
        if jitter is not None:
            delay = delay * jitter[k - 1]
        assert calls[k] - calls[k - 1] == pytest.approx(delay)
    if jitter is not None:
        assert [b for _, b in source.calls] == pytest.approx([retry_delay_ms(policy, k) for k in range(1, len(calls))])


def test_timeouts_fail_an_attempt_and_are_retried() -> None:
    dag = parse_dag(
        {
            "tasks": {
                "slow": {
                    "service": "slow",
                    "timeout": "2s",
                    "retry": {"max_attempts": 3, "initial_interval": "1s", "backoff_coefficient": 2},
                }
            }
        }
    )
    clock = fsm.VirtualClock()
    executor = ManualExecutor()
    run = start_dag(dag, services={"slow": lambda i: "late"}, clock=clock, executor=executor)
    starts = []
    for _ in range(3):
        assert len(executor.pending) == 1
        starts.append(clock.now())
        executor.pending.clear()  # this attempt never answers
        clock.advance_to(clock.next_due() or 0)  # the timeout
        if clock.next_due() is not None:
            clock.advance_to(clock.next_due() or 0)  # the retry delay
    result = run.result()
    assert result.status == "failed"
    assert starts == [0, 3000, 7000]  # 2 s timeout + 1 s, then 2 s timeout + 2 s
    assert result.errors["slow"] == "Timeout: attempt exceeded 2s"
    assert result.attempts["slow"] == 3


def test_non_retryable_errors_are_matched_by_their_type_name() -> None:
    """As Temporal's non_retryable_error_types and Step Functions' ErrorEquals: the
    exception's class name, exactly (a base class name does not match)."""
    dag = parse_dag(
        {
            "tasks": {
                "a": {"service": "a", "retry": {"max_attempts": 4, "non_retryable": ["KeyError"]}},
                "b": {
                    "service": "b",
                    "retry": {"max_attempts": 3, "initial_interval": "1ms", "non_retryable": ["LookupError"]},
                },
            }
        }
    )
    counts: Counter[str] = Counter()

    def a(input: Any) -> None:
        counts["a"] += 1
        raise KeyError("missing")

    def b(input: Any) -> None:
        counts["b"] += 1
        raise KeyError("missing")

    result = run_dag(dag, services={"a": a, "b": b}, clock=fsm.VirtualClock(), executor="inline")
    assert counts == {"a": 1, "b": 3}
    assert result.errors["a"] == "KeyError: 'missing'"


# ============================================================================ persistence: stop, kill, resume


def drive_durable(run: Any, executor: ManualExecutor, clock: fsm.VirtualClock, rng: random.Random, steps: int) -> int:
    """Run up to ``steps`` pending services (or timers when none is pending)."""
    done = 0
    while done < steps and not run.finished:
        if executor.pending:
            executor.run(rng.randrange(len(executor.pending)))
        elif clock.next_due() is not None:
            clock.advance_to(clock.next_due() or 0)
        else:
            raise AssertionError("the run is stuck")
        done += 1
    return done


@examples(20)
@given(plans(10, modes=("deterministic",), fail_fast=False), st.randoms(use_true_random=False), st.integers(0, 12))
def test_a_stopped_run_resumes_to_the_same_result(
    tmp_path_factory: pytest.TempPathFactory, plan: Plan, rng: random.Random, stop_after: int
) -> None:
    """A durable run is stopped after some completions, resumed from the store by a
    new actor (running tasks are started again), and ends exactly as the
    uninterrupted run does."""
    dag = parse_dag(plan.doc)
    store = SQLiteStore(tmp_path_factory.mktemp("dag") / "runs.db", synchronous="OFF")
    clock = fsm.VirtualClock()
    holder: dict[str, Any] = {}

    def work(input: Any) -> Any:
        task = input["task"]
        attempt = holder["run"].actor.snapshot.context[task]["attempt"]
        if plan.outcome(task, attempt) != "ok":
            raise RuntimeError(f"{task} attempt {attempt}")
        return plan.output(task, attempt)

    executor = ManualExecutor()
    holder["run"] = start_dag(
        dag, plan.params, services={"work": work}, store=store, run_id="r1", clock=clock, executor=executor
    )
    drive_durable(holder["run"], executor, clock, rng, stop_after)
    holder["run"].stop()
    executor = ManualExecutor()
    holder["run"] = resume_dag(dag, store, "r1", services={"work": work}, clock=clock, executor=executor)
    drive_durable(holder["run"], executor, clock, rng, 100_000)
    result = holder["run"].result()
    states, outputs, status = topological_result(plan)
    assert (result.states, result.outputs, result.status) == (states, outputs, status)
    again = resume_dag(dag, store, "r1", services={"work": work}).result()  # finished: nothing runs
    assert again.states == states
    store.close()


KILLED_RUN = """
import sys, time
from fsm.compile.dag_runner import run_dag
from fsm.store.sqlite import SQLiteStore

def slow(input):
    time.sleep(float(input["sleep"]))
    return input["task"] + "!"

store = SQLiteStore(sys.argv[1])
run_dag(sys.argv[2], services={"work": slow}, store=store, run_id="killed", workers=4)
"""

KILLED_DAG = """
id: killed
tasks:
  a: {service: work, input: {task: a, sleep: 0.05}}
  b: {service: work, needs: a, input: {task: b, sleep: 0.05}}
  c: {service: work, needs: a, input: {task: c, sleep: 5}}
  d: {service: work, needs: [b, c], input: {task: d, sleep: 0.05, seen: {expr: "[tasks.b.output, tasks.c.output]"}}}
"""


def test_a_killed_process_resumes_from_the_store(tmp_path: Path) -> None:
    """A real process is SIGKILLed while task c runs; resuming in another process
    re-runs only what had not finished and ends like an uninterrupted run."""
    db = tmp_path / "runs.db"
    dag_file = tmp_path / "killed.yaml"
    dag_file.write_text(KILLED_DAG)
    script = tmp_path / "run.py"
    script.write_text(KILLED_RUN)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), str(db), str(dag_file)], env=env)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if db.exists():
                try:
                    ctx = SQLiteStore(db).load("killed").snapshot["context"]
                except Exception:
                    continue
                if ctx["b"]["state"] == "succeeded" and ctx["c"]["state"] == "running":
                    break
        else:
            raise AssertionError("the run did not get to the point to kill it")
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
    finally:
        if proc.poll() is None:
            proc.kill()
    calls: list[str] = []
    inputs: dict[str, Any] = {}

    def fast(input: Any) -> str:
        calls.append(input["task"])
        inputs[input["task"]] = input
        return input["task"] + "!"

    store = SQLiteStore(db)
    result = resume_dag(load_dag(dag_file), store, "killed", services={"work": fast}).wait(10)
    assert calls == ["c", "d"]  # only the unfinished tasks ran again
    assert inputs["d"]["seen"] == ["b!", "c!"]  # b's output came from the killed process
    uninterrupted = run_dag(load_dag(dag_file), services={"work": fast})
    assert result.status == uninterrupted.status == "succeeded"
    assert result.outputs == uninterrupted.outputs


def test_rerun_runs_again_only_what_did_not_succeed(tmp_path: Path) -> None:
    dag = load_dag(DAGS / "etl_dag.yaml")
    store = SQLiteStore(tmp_path / "runs.db")
    calls: list[str] = []
    broken = {"save_to_cache": True}

    def service(name: str) -> Callable[[Any], Any]:
        def fn(input: Any) -> Any:
            calls.append(name)
            if broken.get(name):
                raise OSError("cache down")
            return {"from": name}

        return fn

    services = {
        name: service(name)
        for name in ("fetch_orders", "validate_orders", "transform_orders", "save_to_db", "save_to_cache", "notify")
    }
    first = run_dag(dag, {"notify": False}, services=services, store=store, run_id="n1", clock=fsm.VirtualClock())
    assert first.status == "failed"
    assert first.states["save_cache"] == "failed" and first.states["notify"] == "skipped"
    assert run_dag(dag, services=services, store=store, run_id="n1").states == first.states  # finished: as stored
    calls.clear()
    broken.clear()
    second = rerun_dag(dag, store, "n1", services=services, clock=fsm.VirtualClock())
    assert second.run_id == "n1.rerun1"
    assert calls == ["save_to_cache"]  # notify is skipped again: params.notify is still false
    assert second.status == "succeeded"
    assert second.outputs["transform"] == first.outputs["transform"]
    assert second.states == {**first.states, "save_cache": "succeeded"}


# ============================================================================ the runner


def test_max_parallel_with_real_threads() -> None:
    import threading

    dag = parse_dag({"max_parallel": 3, "tasks": {f"t{i}": {"service": "work"} for i in range(12)}})
    lock = threading.Lock()
    now = {"running": 0, "peak": 0}

    def work(input: Any) -> None:
        with lock:
            now["running"] += 1
            now["peak"] = max(now["peak"], now["running"])
        time.sleep(0.01)
        with lock:
            now["running"] -= 1

    result = run_dag(dag, services={"work": work}, workers=8, timeout=20)
    assert result.ok
    assert now["peak"] == 3


def test_matrix_fan_out_with_lanes_and_fail_fast() -> None:
    """fanout_dag.yaml: five shards in lanes of ``max_parallel: 2``, on real threads (more
    workers than that): never more than two shards at once, and two at once."""
    import threading

    dag = load_dag(DAGS / "fanout_dag.yaml")
    seen: list[Any] = []
    lock = threading.Lock()
    now = {"running": 0, "peak": 0}

    def shard(input: Any) -> int:
        with lock:
            seen.append(input)
            now["running"] += 1
            now["peak"] = max(now["peak"], now["running"])
        time.sleep(0.02)
        with lock:
            now["running"] -= 1
        return int(input["shard"]) * 10

    result = run_dag(
        dag,
        {"shards": [1, 2, 3, 4, 5]},
        services={"process_shard": shard, "merge": sum_outputs, "split": lambda i: i},
        workers=8,
        timeout=20,
    )
    assert result.ok, result
    assert result.outputs["merge"] == 150
    assert [k for k in result.states if k.startswith("process")] == [f"process[{i}]" for i in range(5)]
    assert sorted(i["shard"] for i in seen) == [1, 2, 3, 4, 5]
    assert now["peak"] == 2


def sum_outputs(input: Any) -> int:
    return sum(input["values"])


def test_matrix_fail_fast_stops_the_other_instances() -> None:
    dag = parse_dag(
        {
            "tasks": {
                "m": {
                    "service": "work",
                    "matrix": {"n": [1, 2, 3, 4]},
                    "max_parallel": 2,
                    "fail_fast": True,
                    "input": {"n": {"expr": "matrix.n"}},
                },
                "after": {"needs": "m", "trigger_rule": "all_done", "service": "work", "input": {"n": 0}},
            }
        }
    )

    def work(input: Any) -> int:
        if input["n"] == 2:
            raise ValueError("two")
        return int(input["n"])

    result = run_dag(dag, services={"work": work}, executor="inline")
    assert result.states["m[1]"] == "failed" and result.errors["m[1]"] == "ValueError: two"
    assert result.states["m[3]"] == "skipped"  # its lane (after m[1]) never opened
    for task in ("m[0]", "m[2]"):  # finished before the failure, or stopped by it
        assert result.states[task] == "succeeded" or result.errors[task].startswith("stopped: fail_fast")
    assert result.states["after"] == "succeeded"


def test_branch_example_follows_the_choice() -> None:
    dag = load_dag(DAGS / "branch_dag.yaml")
    services = {
        "inspect": lambda i: i["size"],
        "choose": lambda i: "full_load" if i["rows"] > 1000 else "incremental_load",
        "load": lambda i: i["kind"],
        "report": lambda i: i,
    }
    small = run_dag(dag, {"size": 10}, services=services, executor="inline")
    assert small.states["full_load"] == "skipped" and small.states["incremental_load"] == "succeeded"
    assert small.states["report"] == "succeeded"
    big = run_dag(dag, {"size": 5000}, services=services, executor="inline")
    assert big.states["full_load"] == "succeeded" and big.states["incremental_load"] == "skipped"
    bad = run_dag(dag, {"size": 5000}, services={**services, "choose": lambda i: "nowhere"}, executor="inline")
    assert bad.states["choose"] == "failed" and "BranchError" in bad.errors["choose"]


def test_gha_spelling_means_the_same_as_the_native_one() -> None:
    gha = load_dag(DAGS / "gha_dag.yaml")
    assert gha.tasks["test"].matrix == {"python": ["3.11", "3.12"], "os": ["linux", "macos"]}
    assert gha.tasks["test"].fail_fast is True and gha.tasks["test"].max_parallel == 2
    assert gha.tasks["report"].trigger_rule == "all_done"
    assert gha.tasks["deploy"].trigger_rule == "all_success"
    assert gha.tasks["deploy"].condition == {"expr": "params.deploy and tasks.build.output.ok"}
    assert gha.tasks["build"].timeout_ms == 600_000
    calls: list[Any] = []

    def job(name: str) -> Callable[[Any], Any]:
        def fn(input: Any) -> Any:
            calls.append((name, input))
            return {"ok": True, "job": name}

        return fn

    services = {n: job(n) for n in ("compile", "pytest", "publish", "summarize")}
    result = run_dag(gha, {"deploy": True}, services=services, executor="inline")
    assert result.ok
    assert ("compile", {"ref": "main", "label": "build main"}) in calls
    assert sum(1 for name, _ in calls if name == "pytest") == 4
    assert ("pytest", {"python": "3.12", "os": "macos", "artifact": {"ok": True, "job": "compile"}}) in calls


def test_python_references_are_imported_by_the_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "dagtasks_for_test.py"
    module.write_text("def double(input):\n    return input['x'] * 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    dag = parse_dag({"tasks": {"a": {"python": "dagtasks_for_test:double", "input": {"x": 21}}}})
    assert run_dag(dag, executor="inline").outputs == {"a": 42}
    with pytest.raises(fsm.ImplementationError) as info:
        run_dag(parse_dag({"tasks": {"a": {"service": "nope"}}}))
    assert "nope" in str(info.value)


def test_async_tasks_run_on_the_event_loop() -> None:
    import asyncio

    async def fetch(input: Any) -> int:
        await asyncio.sleep(0.001)
        return 2

    async def fail(input: Any) -> int:
        raise ValueError("bad")

    dag = parse_dag(
        {
            "tasks": {
                "a": {"service": "fetch"},
                "b": {"service": "fetch"},
                "c": {"needs": ["a", "b"], "service": "double", "input": {"expr": "tasks.a.output + tasks.b.output"}},
                "d": {"needs": "c", "service": "fail", "retry": {"max_attempts": 2, "initial_interval": "1ms"}},
            }
        }
    )
    result = asyncio.run(arun_dag(dag, services={"fetch": fetch, "double": lambda i: i * 2, "fail": fail}))
    assert result.outputs["c"] == 8
    assert result.states["d"] == "failed" and result.attempts["d"] == 2
    sync_result = run_dag(dag, services={"fetch": fetch, "double": lambda i: i * 2, "fail": fail}, timeout=10)
    assert sync_result.states == result.states


def test_progress_views() -> None:
    import io

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    dag = load_dag(DAGS / "etl_dag.yaml")
    services = {
        n: (lambda i: [1])
        for n in ("fetch_orders", "validate_orders", "transform_orders", "save_to_db", "save_to_cache", "notify")
    }
    lines = io.StringIO()
    run_dag(dag, services=services, executor="inline", progress=LineProgress(dag.id, lines))
    text = lines.getvalue()
    assert "fetch: running" in text and "notify: succeeded" in text
    assert "6/6 settled  succeeded" in text.splitlines()[-1]
    live = Tty()
    run_dag(dag, services=services, executor="inline", progress=LiveProgress(dag.id, live))
    screen = live.getvalue()
    assert "\x1b[" in screen and "+ notify" in screen


def test_result_of_a_machine_error() -> None:
    dag = parse_dag({"tasks": {"a": {"service": "s", "input": {"expr": "params.missing + 1"}}}})
    result = run_dag(dag, services={"s": lambda i: i}, executor="inline")
    assert isinstance(result, DagResult)
    assert result.status == "error"
    assert "context.params.missing + 1" in (result.error or "")


def test_dag_machine_provides_everything_the_definition_references() -> None:
    dag = load_dag(DAGS / "etl_dag.yaml")
    services = {
        n: (lambda i: 1)
        for n in ("fetch_orders", "validate_orders", "transform_orders", "save_to_db", "save_to_cache", "notify")
    }
    machine = dag_machine(dag, services=services, random=random.Random(0))
    assert machine.missing_implementations() == {}
    compiled = compile_dag(dag)
    bare = fsm.Machine.from_dict(compiled)
    assert set(bare.missing_implementations()) == {"services", "delays"}  # jitter needs the runner's random
    assert isinstance(dag, Dag)


# ============================================================================ the command line and tools


def fsm_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fsm.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def documented_runs() -> list[list[str]]:
    """The arguments of every ``fsm run`` command in docs/dag.md's ```sh blocks."""
    text = (ROOT / "docs" / "dag.md").read_text(encoding="utf-8")
    runs = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words[:2] == ["fsm", "run"]:
                runs.append(words[2:])
    return runs


def test_docs_show_how_to_run_a_dag() -> None:
    assert documented_runs(), "docs/dag.md shows no `fsm run` command any more"


@pytest.mark.parametrize("args", documented_runs(), ids=" ".join)
def test_documented_fsm_run_commands_succeed(args: list[str]) -> None:
    """Run from the repository root, as a reader of docs/dag.md would."""
    result = fsm_cli("run", *args)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1])["status"] == "succeeded"


FLAKY_DAG = """
id: flaky
tasks:
  extract: {service: extract}
  load: {service: load, needs: extract, input: {rows: {expr: tasks.extract.output}}}
"""

FLAKY_IMPL = """
from pathlib import Path


def _called(name):
    with open("calls.txt", "a") as f:
        f.write(name + "\\n")


def extract(input):
    _called("extract")
    return 3


def load(input):
    _called("load")
    if not Path("fixed").exists():
        raise OSError("database down")
    return input["rows"] * 2
"""


def test_cli_stores_a_dag_run_and_reruns_what_failed(tmp_path: Path) -> None:
    (tmp_path / "flaky.yaml").write_text(FLAKY_DAG)
    (tmp_path / "flaky_impl.py").write_text(FLAKY_IMPL)
    db = tmp_path / "x.db"
    run = ("run", "flaky.yaml", "--impl", "flaky_impl", "--store", f"sqlite:///{db}", "--id", "R1")

    def last_line(result: subprocess.CompletedProcess[str]) -> Any:
        return json.loads(result.stdout.splitlines()[-1])

    first = fsm_cli(*run, cwd=tmp_path)
    assert first.returncode == 3, first.stderr  # the run failed
    assert last_line(first) == {"run": "R1", "status": "failed", "states": {"extract": "succeeded", "load": "failed"}}
    assert "database down" in first.stderr
    (tmp_path / "fixed").touch()
    shown = fsm_cli(*run, cwd=tmp_path)  # finished: shown as stored, nothing runs
    assert (shown.returncode, last_line(shown)) == (3, last_line(first))
    assert (tmp_path / "calls.txt").read_text().split() == ["extract", "load"]
    second = fsm_cli(*run, "--rerun", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert last_line(second) == {
        "run": "R1.rerun1",
        "status": "succeeded",
        "states": {"extract": "succeeded", "load": "succeeded"},
    }
    assert (tmp_path / "calls.txt").read_text().split() == ["extract", "load", "load"]  # extract restored
    store = SQLiteStore(db)
    try:
        assert store.load("R1.rerun1").snapshot["context"]["load"]["output"] == 6
    finally:
        store.close()


def test_the_dag_benchmark_runs() -> None:
    result = subprocess.run(
        [sys.executable, "tools/bench/dag.py", "--tasks", "20", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout)["rows"]
    assert [(r["shape"], r["tasks"]) for r in rows] == [("layered", 20), ("fanout", 20)]
    assert all(r["steps"] > 0 for r in rows)  # the durable run was journaled
