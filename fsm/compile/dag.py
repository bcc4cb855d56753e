"""DAG workflows (Airflow / GitHub Actions ``needs:`` style) compiled into statecharts.

A DAG file lists tasks with their dependencies, trigger rules, retries and timeouts.
:func:`load_dag` reads and validates it (JSON Schema first, then structure: unknown or
cyclic dependencies, duplicate ids, impossible trigger rules, expressions), reporting
every problem with its JSON path. :func:`compile_dag` turns it into a plain machine
definition that passes fsm's own schema, so one engine, one store and one diagram
exporter serve DAGs too — there is no second scheduler.

The compiled machine (docs/dag.md draws one):

- one parallel region per task instance, with the states a person expects from Airflow:
  ``waiting -> [queued ->] running -> succeeded | failed``, ``running -> retrying ->
  running``, and ``skipped`` / ``upstream_failed`` decided from ``waiting``;
- the context holds ``params``, one record per task under its id (``state``,
  ``attempt``, ``output`` — Airflow's XCom —, ``error``), and with ``max_parallel``
  ``dag``: the queue (tasks running, tickets given and served);
- a task that settles raises ``dag.check.<task>`` to each downstream task, so a rule is
  evaluated only when one of the task's upstreams changed (an event per edge, not a
  guard per task per step); the rule's guards count the upstream states as Airflow's
  TriggerRuleDep counts them (from the upstream records, or from counters
  ``<task>:up`` kept up to date for tasks with many upstreams);
- ``max_parallel`` is a first-come first-served queue: ``queued`` takes a ticket,
  ``dag.dispatch`` starts the head of the queue when ``dag.running`` has room;
- retries are a delayed ``raise`` whose delay is an expression of the attempt number
  (or a named delay when jitter draws from the runner's random source); timeouts are
  ``after`` transitions of ``running``;
- the machine ends in ``succeeded`` or ``failed`` with an output listing every task's
  state and output.

Everything is pure data (built-in ``assign``/``raise``/``cancel`` and expression
guards) except the services and, for retries with jitter, named delays.

Two evaluation modes (``mode:``) are documented in docs/dag.md: ``deterministic`` (the
default; every completion order gives the same result) and ``airflow`` (Airflow 3's
TriggerRuleDep counting, including its order dependence).

This module imports nothing from the runtime: it emits definitions. The runner is
:mod:`fsm.compile.dag_runner`.
"""

from __future__ import annotations

import ast
import copy
import difflib
import functools
import importlib
import itertools
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from fsm import loading
from fsm.errors import DefinitionError, ExpressionError, FsmError, Problem, format_path
from fsm.expressions import Expression

__all__ = [
    "MODES",
    "SETTLED",
    "TRIGGER_RULES",
    "Dag",
    "Node",
    "Retry",
    "TaskSpec",
    "compile_dag",
    "dag_schema",
    "implementations",
    "is_dag_document",
    "load_dag",
    "parse_dag",
    "resolve_params",
    "retry_delay_ms",
]

Pointer = tuple[str | int, ...]

TRIGGER_RULES = (
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
    "always",
)
MODES = ("deterministic", "airflow")

#: The final states of a task region, as they appear in ``context[task].state``.
SETTLED = ("succeeded", "failed", "skipped", "upstream_failed")
#: The upstream counters kept in ``context[task].up`` (``done`` is their sum).
COUNTERS = ("success", "failed", "skipped", "upstream_failed", "done")
_COUNTER_OF = {"succeeded": "success", "failed": "failed", "skipped": "skipped", "upstream_failed": "upstream_failed"}

# Rules that count upstream states and so mean nothing on a task without needs.
_NEEDS_UPSTREAM = {"all_failed", "all_skipped", "one_success", "one_failed", "one_done", "none_failed_min_one_success"}
_RESERVED_IDS = {"params", "dag"}
#: Up to this many upstreams, rule guards count upstream states from the task records;
#: beyond, a task keeps counters (``<task>:up``) so guards stay small expressions.
INLINE_FAN_IN = 6
_DEFAULT_INITIAL_MS = 1000.0
_UNITS_MS = {"ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0, "d": 86_400_000.0}
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_DAG_NAMES = frozenset({"params", "tasks", "matrix"})
_RECORD_VIEW = ("state", "attempt", "output", "error")


# ------------------------------------------------------------------------------ the model


@dataclass(frozen=True)
class Retry:
    """A retry policy. ``max_attempts`` counts ATTEMPTS, the first one included."""

    max_attempts: int = 1
    initial_ms: float = _DEFAULT_INITIAL_MS
    coefficient: float = 2.0
    max_ms: float | None = None
    jitter: bool = False
    non_retryable: tuple[str, ...] = ()

    @property
    def cap_ms(self) -> float:
        """The largest delay: ``max_interval``, by default 100 x the initial interval
        (Temporal's default)."""
        return self.max_ms if self.max_ms is not None else 100.0 * self.initial_ms


def retry_delay_ms(retry: Retry, k: int) -> float:
    """The delay before retry ``k`` (1 = the first retry), before jitter:
    ``min(initial * coefficient ** (k - 1), max_interval)``."""
    return min(retry.initial_ms * retry.coefficient ** (k - 1), retry.cap_ms)


@dataclass(frozen=True)
class TaskSpec:
    """A task as written (a matrix task is ONE spec; :meth:`Dag.expand` makes instances)."""

    id: str
    needs: tuple[str, ...] = ()
    service: str | None = None
    python: str | None = None
    input: Any = None
    retry: Retry = field(default_factory=Retry)
    timeout_ms: float | None = None
    trigger_rule: str = "all_success"
    condition: Any = None  # None (no `if`), a bool, or {"expr": ...}
    branch: bool = False
    matrix: Mapping[str, Any] | None = None
    max_parallel: int | None = None
    fail_fast: bool = False
    description: str | None = None
    pointer: Pointer = ()
    fields: Mapping[str, Pointer] = field(default_factory=dict)
    needs_listed: bool = True  # written as a list (paths then take an index)

    @property
    def src(self) -> str | None:
        """The service name the compiled machine invokes (None for a no-op task)."""
        if self.service is not None:
            return self.service
        if self.python is not None:
            return f"python:{self.python}"
        return None

    def where(self, name: str) -> Pointer:
        """The JSON pointer of one of this task's fields in the source document."""
        return self.fields.get(name, (*self.pointer, name))


@dataclass(frozen=True)
class Node:
    """One task instance: a region of the compiled machine."""

    id: str
    spec: TaskSpec
    needs: tuple[str, ...]
    matrix: Mapping[str, Any] | None = None
    lane_after: str | None = None

    @property
    def rule(self) -> str:
        return self.spec.trigger_rule


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any = None
    required: bool = False
    type: str | None = None
    enum: tuple[Any, ...] | None = None
    description: str | None = None


@dataclass(frozen=True)
class Dag:
    """A validated DAG workflow (tasks in a topological order)."""

    id: str
    tasks: Mapping[str, TaskSpec]
    mode: str = "deterministic"
    params: Mapping[str, ParamSpec] = field(default_factory=dict)
    max_parallel: int | None = None
    fail_fast: bool = False
    description: str | None = None
    source: str | None = None

    @property
    def default_params(self) -> dict[str, Any]:
        return {name: copy.deepcopy(p.default) for name, p in self.params.items() if not p.required}

    def downstream(self, task_id: str) -> list[str]:
        return [t.id for t in self.tasks.values() if task_id in t.needs]

    def ancestors(self, task_id: str) -> set[str]:
        seen: set[str] = set()
        stack = list(self.tasks[task_id].needs)
        while stack:
            current = stack.pop()
            if current not in seen and current in self.tasks:
                seen.add(current)
                stack.extend(self.tasks[current].needs)
        return seen

    def descendants(self, task_id: str) -> set[str]:
        down: dict[str, list[str]] = {t: [] for t in self.tasks}
        for t in self.tasks.values():
            for n in t.needs:
                if n in down:
                    down[n].append(t.id)
        seen: set[str] = set()
        stack = list(down[task_id])
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(down[current])
        return seen

    def expand(self, params: Mapping[str, Any] | None = None) -> list[Node]:
        """The task instances for a run with these params (matrix tasks fanned out;
        matrix values given as expressions are evaluated over the params)."""
        values = resolve_params(self, params)
        instances: dict[str, list[str]] = {}
        nodes: list[Node] = []
        problems: list[Problem] = []
        for spec in self.tasks.values():
            if spec.matrix is None:
                instances[spec.id] = [spec.id]
                needs = tuple(i for n in spec.needs for i in instances[n])
                nodes.append(Node(spec.id, spec, needs))
                continue
            combos = _matrix_combinations(spec, values, problems)
            ids = [f"{spec.id}[{i}]" for i in range(len(combos))]
            instances[spec.id] = ids
            needs = tuple(i for n in spec.needs for i in instances[n])
            for i, combo in enumerate(combos):
                lane = ids[i - spec.max_parallel] if spec.max_parallel and i >= spec.max_parallel else None
                nodes.append(Node(ids[i], spec, needs, combo, lane))
        if problems:
            raise DefinitionError(problems, self.source)
        return nodes


# ------------------------------------------------------------------------------ loading


@functools.cache
def dag_schema() -> dict[str, Any]:
    """The published JSON Schema (draft 2020-12) of DAG files."""
    text = resources.files("fsm.compile").joinpath("dag_schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def is_dag_document(data: Any) -> bool:
    """Whether a parsed document is a DAG (``tasks`` or ``jobs``) rather than a machine
    (``states``): how ``fsm run`` tells the two apart."""
    return isinstance(data, Mapping) and "states" not in data and ("tasks" in data or "jobs" in data)


def load_dag(path: str | Path) -> Dag:
    """Read and validate a DAG file (``.yaml``, ``.yml`` or ``.json``).

    Raises :class:`~fsm.errors.DefinitionError` listing every problem with its JSON
    path (duplicate keys included, which a YAML or JSON parser would silently merge).
    """
    p = Path(path)
    source = str(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DefinitionError([Problem("", "file not found")], source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError([Problem("", f"cannot read the file: {exc}")], source) from None
    if p.suffix.lower() == ".json":
        data = loading.parse_json(text, source)
        duplicates = _json_duplicates(text)
    elif p.suffix.lower() in (".yaml", ".yml"):
        data = loading.parse_yaml(text, source)
        duplicates = _yaml_duplicates(text)
    else:
        raise DefinitionError([Problem("", f"unknown file type {p.suffix!r}: use .yaml, .yml or .json")], source)
    return parse_dag(data, source=source, default_id=_default_id(p.stem), extra_problems=duplicates)


def parse_dag(
    data: Any,
    *,
    source: str | None = None,
    default_id: str = "dag",
    extra_problems: Sequence[Problem] = (),
) -> Dag:
    """Validate a parsed DAG document (either spelling) and build the :class:`Dag`."""
    problems = list(extra_problems) + _schema_problems(data)
    if problems:
        raise DefinitionError(problems, source)
    assert isinstance(data, Mapping)
    builder = _Builder(source)
    if "jobs" in data:
        dag = builder.from_gha(data, default_id)
    else:
        dag = builder.from_native(data, default_id)
    if builder.problems:
        raise DefinitionError(builder.problems, source)
    assert dag is not None
    return dag


def _default_id(stem: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", stem) or "dag"
    return cleaned if re.match(r"[A-Za-z_]", cleaned) else f"dag_{cleaned}"


@functools.cache
def _validator() -> Any:
    jsonschema: Any = importlib.import_module("jsonschema")  # the reference validator (no stubs needed)
    return jsonschema.Draft202012Validator(dag_schema())


def _schema_problems(data: Any) -> list[Problem]:
    if not isinstance(data, Mapping):
        return [Problem("", f"a DAG document is an object with 'tasks' (or 'jobs'), not {type(data).__name__}")]
    validator = _validator()
    out: dict[str, Problem] = {}
    for error in validator.iter_errors(data):
        for problem in _explain(error):
            out.setdefault(f"{problem.path}|{problem.message}", problem)
    return sorted(out.values(), key=lambda p: p.path)


def _explain(error: Any) -> Iterator[Problem]:
    """jsonschema errors worded for a person: unknown keys by name (with a suggestion),
    the alternative of an ``anyOf`` that fits the value's JSON type."""
    pointer: Pointer = tuple(error.absolute_path)
    if error.validator in ("anyOf", "oneOf") and error.context:
        # The alternative the author meant: one whose errors are not a JSON type
        # mismatch of the value itself; all of its errors are reported.
        branches: dict[Any, list[Any]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        depth = len(error.absolute_path)
        fitting = [
            errs
            for errs in branches.values()
            if not any(e.validator == "type" and len(e.absolute_path) == depth for e in errs)
        ]
        if fitting:
            for sub in min(fitting, key=len):
                yield from _explain(sub)
            return
        kinds = sorted({str(t) for e in error.context for t in _as_list(e.validator_value) if e.validator == "type"})
        yield Problem(format_path(pointer), f"expected {' or '.join(kinds)}, got {_kind(error.instance)}", pointer)
        return
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = list(error.schema.get("properties", {}))
        for key in error.instance:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                message = f"unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                if allowed:
                    message += f"; allowed: {', '.join(allowed)}"
                yield Problem(format_path((*pointer, key)), message, (*pointer, key))
        return
    if error.validator == "enum":
        options = ", ".join(json.dumps(v) for v in error.validator_value)
        yield Problem(format_path(pointer), f"{json.dumps(error.instance)} is not one of {options}", pointer)
        return
    if error.validator == "type":
        expected = " or ".join(_as_list(error.validator_value))
        yield Problem(format_path(pointer), f"expected {expected}, got {_kind(error.instance)}", pointer)
        return
    if error.validator == "pattern" and len(pointer) >= 1:
        yield Problem(format_path(pointer), f"{error.instance!r} is not valid here: {_pattern_hint(error)}", pointer)
        return
    yield Problem(format_path(pointer), error.message, pointer)


def _pattern_hint(error: Any) -> str:
    description = error.schema.get("description")
    return str(description) if description else f"it must match {error.validator_value}"


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _yaml_duplicates(text: str) -> list[Problem]:
    """Duplicate mapping keys (YAML keeps the last one silently) with their paths."""
    try:
        root = yaml.compose(text, Loader=loading._loader())
    except yaml.YAMLError:
        return []  # parse_yaml has reported it
    problems: list[Problem] = []
    stack: list[tuple[Any, Pointer]] = [(root, ())]
    while stack:
        node, pointer = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in seen:
                    what = "task id" if pointer in (("tasks",), ("jobs",)) else "key"
                    line = key_node.start_mark.line + 1
                    problems.append(
                        Problem(
                            format_path((*pointer, key)), f"duplicate {what} {key!r} (line {line})", (*pointer, key)
                        )
                    )
                seen.add(key)
                stack.append((value_node, (*pointer, key)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*pointer, i)) for i, item in enumerate(node.value))
    return problems


class _Pairs(list[Any]):
    """JSON object kept as its key/value pairs, to find duplicate keys."""


def _json_duplicates(text: str) -> list[Problem]:
    try:
        tree = json.loads(text, object_pairs_hook=_Pairs)
    except (json.JSONDecodeError, RecursionError):
        return []
    problems: list[Problem] = []
    stack: list[tuple[Any, Pointer]] = [(tree, ())]
    while stack:
        node, pointer = stack.pop()
        if isinstance(node, _Pairs):
            seen: set[str] = set()
            for key, value in node:
                if key in seen:
                    what = "task id" if pointer in (("tasks",), ("jobs",)) else "key"
                    problems.append(Problem(format_path((*pointer, key)), f"duplicate {what} {key!r}", (*pointer, key)))
                seen.add(key)
                stack.append((value, (*pointer, key)))
        elif isinstance(node, list):
            stack.extend((item, (*pointer, i)) for i, item in enumerate(node))
    return problems


def parse_duration(value: Any) -> float:
    """Milliseconds from a duration: seconds as a number, or ``"1h30m"``-style text."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s'")
    if isinstance(value, (int, float)):
        return float(value) * 1000.0
    text = str(value)
    if not text or _DURATION.sub("", text):
        raise ValueError(f"{value!r} is not a duration (use seconds, or '500ms', '30s', '5m', '1h')")
    return sum(float(n) * _UNITS_MS[unit] for n, unit in _DURATION.findall(text))


# ------------------------------------------------------------------------------ building


class _Builder:
    """Turns a schema-valid document into a :class:`Dag`, collecting every problem."""

    def __init__(self, source: str | None) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def problem(self, pointer: Pointer, message: str) -> None:
        self.problems.append(Problem(format_path(pointer), message, pointer))

    # -- native spelling -------------------------------------------------------------

    def from_native(self, data: Mapping[str, Any], default_id: str) -> Dag | None:
        defaults = data.get("defaults") or {}
        raw_tasks = data["tasks"]
        entries: list[tuple[str, Mapping[str, Any], Pointer]] = []
        if isinstance(raw_tasks, list):
            seen: dict[str, int] = {}
            for i, item in enumerate(raw_tasks):
                tid = item["id"]
                if tid in seen:
                    self.problem(("tasks", i, "id"), f"duplicate task id {tid!r} (also tasks[{seen[tid]}])")
                    continue
                seen[tid] = i
                entries.append((tid, item, ("tasks", i)))
        else:
            entries = [(tid, item, ("tasks", tid)) for tid, item in raw_tasks.items()]
        specs = [self.task(tid, item, pointer, defaults) for tid, item, pointer in entries]
        params = self.params(data.get("params") or {}, ("params",))
        return self.finish(
            data.get("id") or default_id,
            [s for s in specs if s is not None],
            mode=data.get("mode", "deterministic"),
            params=params,
            max_parallel=data.get("max_parallel"),
            fail_fast=bool(data.get("fail_fast", False)),
            description=data.get("description"),
        )

    def task(self, tid: str, item: Mapping[str, Any], pointer: Pointer, defaults: Mapping[str, Any]) -> TaskSpec | None:
        if tid in _RESERVED_IDS:
            self.problem(pointer, f"the task id {tid!r} is reserved (the context has a {tid!r} key); rename the task")
        if "service" in item and "python" in item:
            self.problem(pointer, "give the task's implementation as 'service' or as 'python', not both")
        retry_data = item.get("retry", defaults.get("retry"))
        retry_at = (*pointer, "retry") if "retry" in item else ("defaults", "retry")
        timeout = item.get("timeout", defaults.get("timeout"))
        timeout_at = (*pointer, "timeout") if "timeout" in item else ("defaults", "timeout")
        needs = item.get("needs", [])
        return TaskSpec(
            id=tid,
            needs=tuple([needs] if isinstance(needs, str) else needs),
            service=item.get("service"),
            python=item.get("python"),
            input=copy.deepcopy(item.get("input")),
            retry=self.retry(retry_data, retry_at),
            timeout_ms=self.duration(timeout, timeout_at),
            trigger_rule=item.get("trigger_rule", defaults.get("trigger_rule", "all_success")),
            condition=item.get("if"),
            branch=bool(item.get("branch", False)),
            matrix=copy.deepcopy(item.get("matrix")),
            max_parallel=item.get("max_parallel"),
            fail_fast=bool(item.get("fail_fast", False)),
            description=item.get("description"),
            pointer=pointer,
            needs_listed=not isinstance(needs, str),
        )

    def retry(self, data: Mapping[str, Any] | None, pointer: Pointer) -> Retry:
        if not data:
            return Retry()
        if "max_attempts" in data and "retries" in data:
            self.problem(
                pointer,
                "give max_attempts (attempts, the first included) or retries (retries after the first), not both",
            )
        attempts = data["max_attempts"] if "max_attempts" in data else data.get("retries", 0) + 1
        initial = self.duration(data.get("initial_interval"), (*pointer, "initial_interval"))
        cap = self.duration(data.get("max_interval"), (*pointer, "max_interval"))
        initial = _DEFAULT_INITIAL_MS if initial is None else initial
        if cap is not None and cap < initial:
            self.problem((*pointer, "max_interval"), "max_interval is shorter than initial_interval")
        return Retry(
            max_attempts=attempts,
            initial_ms=initial,
            coefficient=float(data.get("backoff_coefficient", 2.0)),
            max_ms=cap,
            jitter=bool(data.get("jitter", False)),
            non_retryable=tuple(data.get("non_retryable", ())),
        )

    def duration(self, value: Any, pointer: Pointer) -> float | None:
        if value is None:
            return None
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.problem(pointer, str(exc))
            return None

    def params(self, data: Mapping[str, Any], pointer: Pointer) -> dict[str, ParamSpec]:
        out: dict[str, ParamSpec] = {}
        for name, value in data.items():
            if isinstance(value, Mapping):
                enum = value.get("enum")
                spec = ParamSpec(
                    name,
                    copy.deepcopy(value.get("default")),
                    "default" not in value,
                    value.get("type"),
                    tuple(enum) if enum is not None else None,
                    value.get("description"),
                )
                if "default" in value:
                    problem = _param_problem(spec, spec.default)
                    if problem:
                        self.problem((*pointer, name, "default"), problem)
            else:
                spec = ParamSpec(name, copy.deepcopy(value))
            out[name] = spec
        return out

    # -- GitHub Actions spelling ------------------------------------------------------

    def from_gha(self, data: Mapping[str, Any], default_id: str) -> Dag | None:
        specs: list[TaskSpec] = []
        for jid, job in data["jobs"].items():
            spec = self.job(jid, job)
            if spec is not None:
                specs.append(spec)
        params: dict[str, ParamSpec] = {}
        on = data.get("on")
        dispatch = on.get("workflow_dispatch") if isinstance(on, Mapping) else None
        inputs = dispatch.get("inputs") if isinstance(dispatch, Mapping) else None
        for name, spec in (inputs or {}).items():
            kind = {"string": "string", "number": "number", "boolean": "boolean", "choice": "string"}.get(
                spec.get("type", "string")
            )
            options = spec.get("options")
            has_default = "default" in spec
            params[name] = ParamSpec(
                name,
                copy.deepcopy(spec.get("default")),
                bool(spec.get("required")) and not has_default,
                kind,
                tuple(options) if options else None,
                spec.get("description"),
            )
        dag_id = data.get("id") or _default_id(str(data.get("name") or default_id))
        return self.finish(
            dag_id,
            specs,
            mode=data.get("mode", "deterministic"),
            params=params,
            max_parallel=data.get("max_parallel"),
            fail_fast=bool(data.get("fail_fast", False)),
            description=data.get("name"),
        )

    def job(self, jid: str, job: Mapping[str, Any]) -> TaskSpec | None:
        pointer: Pointer = ("jobs", jid)
        if jid in _RESERVED_IDS:
            self.problem(pointer, f"the job id {jid!r} is reserved (the context has a {jid!r} key); rename the job")
        fields: dict[str, Pointer] = {
            "service": (*pointer, "uses"),
            "input": (*pointer, "with"),
            "timeout": (*pointer, "timeout-minutes"),
            "matrix": (*pointer, "strategy", "matrix"),
            "max_parallel": (*pointer, "strategy", "max-parallel"),
            "fail_fast": (*pointer, "strategy", "fail-fast"),
        }
        rule = job.get("trigger_rule")
        condition: Any = None
        if "if" in job:
            parsed = self.gha_condition(job["if"], (*pointer, "if"))
            if parsed is not None:
                status_rule, condition = parsed
                if rule is not None and status_rule is not None and status_rule != rule:
                    self.problem((*pointer, "if"), f"the status function says {status_rule}, trigger_rule says {rule}")
                rule = rule or status_rule
        strategy = job.get("strategy") or {}
        matrix = copy.deepcopy(strategy.get("matrix"))
        if matrix is not None:
            matrix = {k: _gha_value(v, (*fields["matrix"], k), self) for k, v in matrix.items()}
        needs = job.get("needs", [])
        timeout = job.get("timeout-minutes")
        return TaskSpec(
            id=jid,
            needs=tuple([needs] if isinstance(needs, str) else needs),
            service=job.get("uses"),
            python=job.get("python"),
            input=_gha_value(copy.deepcopy(job.get("with")), fields["input"], self),
            retry=self.retry(job.get("retry"), (*pointer, "retry")),
            timeout_ms=None if timeout is None else float(timeout) * 60_000.0,
            trigger_rule=rule or "all_success",
            condition=condition,
            branch=bool(job.get("branch", False)),
            matrix=matrix,
            max_parallel=strategy.get("max-parallel"),
            fail_fast=bool(strategy.get("fail-fast", True)) if matrix is not None else False,
            description=job.get("name"),
            pointer=pointer,
            fields=fields,
            needs_listed=not isinstance(needs, str),
        )

    def gha_condition(self, value: Any, pointer: Pointer) -> tuple[str | None, Any] | None:
        """``if:`` of a job: the status function gives the trigger rule, the rest is a
        condition. ``success()`` (GitHub's implicit default) is ``all_success``,
        ``always()`` and ``!cancelled()`` are ``all_done``, ``failure()`` is ``one_failed``."""
        if isinstance(value, (bool, Mapping)):
            return None, value
        text = _strip_braces(str(value))
        statuses = {
            "always()": "all_done",
            "!cancelled()": "all_done",
            "success()": "all_success",
            "failure()": "one_failed",
        }
        parts = [p.strip() for p in _split_top(text, "&&")]
        rule: str | None = None
        rest: list[str] = []
        for part in parts:
            compact = part.replace(" ", "")
            if compact in statuses:
                if rule is not None:
                    self.problem(pointer, "use one status function (always(), success(), failure()) per condition")
                    return None
                rule = statuses[compact]
            elif re.search(r"\b(always|success|failure|cancelled)\s*\(", part):
                self.problem(
                    pointer,
                    "status functions are supported alone or joined with && to the rest of the condition "
                    "(for example 'always() && inputs.notify')",
                )
                return None
            else:
                rest.append(part)
        if not rest:
            return rule, None
        return rule, {"expr": _gha_expr(" && ".join(rest))}

    # -- the whole workflow ----------------------------------------------------------

    def finish(
        self,
        dag_id: str,
        specs: list[TaskSpec],
        *,
        mode: str,
        params: dict[str, ParamSpec],
        max_parallel: int | None,
        fail_fast: bool,
        description: str | None,
    ) -> Dag | None:
        by_id = {s.id: s for s in specs}
        for spec in specs:
            for i, need in enumerate(spec.needs):
                at = (*spec.where("needs"), i) if spec.needs_listed else spec.where("needs")
                if need not in by_id:
                    hint = difflib.get_close_matches(need, list(by_id), n=1)
                    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                    self.problem(at, f"unknown task {need!r}{suggestion}")
                elif need == spec.id:
                    self.problem(at, f"task {spec.id!r} needs itself")
            if len(set(spec.needs)) != len(spec.needs):
                self.problem(spec.where("needs"), "a task is listed twice in needs")
        order = self.topological(specs, by_id)
        if order is None:
            return None
        ordered = {tid: by_id[tid] for tid in order}
        dag = Dag(dag_id, ordered, mode, params, max_parallel, fail_fast, description, self.source)
        for spec in ordered.values():
            self.check_task(dag, spec)
        return dag

    def topological(self, specs: list[TaskSpec], by_id: Mapping[str, TaskSpec]) -> list[str] | None:
        """Kahn's algorithm, stable in definition order; a cycle is reported with its
        members in order."""
        needs = {s.id: [n for n in s.needs if n in by_id and n != s.id] for s in specs}
        remaining = {tid: len(ns) for tid, ns in needs.items()}
        down: dict[str, list[str]] = {tid: [] for tid in needs}
        for tid, ns in needs.items():
            for n in ns:
                down[n].append(tid)
        ready = [s.id for s in specs if remaining[s.id] == 0]
        position = {s.id: i for i, s in enumerate(specs)}
        order: list[str] = []
        while ready:
            ready.sort(key=position.__getitem__)
            current = ready.pop(0)
            order.append(current)
            for d in down[current]:
                remaining[d] -= 1
                if remaining[d] == 0:
                    ready.append(d)
        if len(order) == len(specs):
            return order
        for cycle in _cycles(needs, [s.id for s in specs if s.id not in order]):
            first = cycle[0]
            self.problem(
                by_id[first].where("needs"), "the tasks form a cycle: " + " -> ".join([*cycle, first]) + " -> ..."
            )
        return None

    def check_task(self, dag: Dag, spec: TaskSpec) -> None:
        rule = spec.trigger_rule
        rule_at = spec.where("trigger_rule") if spec.fields.get("trigger_rule") or "jobs" not in spec.pointer else None
        rule_at = rule_at or spec.where("if")
        if not spec.needs and rule in _NEEDS_UPSTREAM:
            self.problem(
                rule_at,
                f"trigger_rule {rule!r} counts upstream tasks, but {spec.id!r} has no needs: it could never be "
                "decided as written; add needs or use all_success",
            )
        if dag.fail_fast and rule != "all_success":
            self.problem(
                rule_at,
                f"fail_fast stops the run at the first failure, so trigger_rule {rule!r} could not react to it; "
                "a fail_fast workflow takes only all_success tasks (as Airflow refuses them too)",
            )
        if spec.branch:
            if spec.matrix is not None:
                self.problem(spec.where("branch"), "a branch task cannot have a matrix")
            if not dag.downstream(spec.id):
                self.problem(
                    spec.where("branch"), "a branch task chooses among its downstream tasks, but none needs it"
                )
            if spec.src is None:
                self.problem(spec.where("branch"), "a branch task needs a service (its output is the choice)")
        if spec.matrix is not None:
            for key in spec.matrix:
                if key == "include":
                    self.problem((*spec.where("matrix"), key), "matrix 'include' is not supported; list the values")
            excluded = spec.matrix.get("exclude")
            if excluded is not None and any(not isinstance(e, Mapping) for e in excluded):
                self.problem((*spec.where("matrix"), "exclude"), "each exclude entry is an object of matrix values")
        elif spec.max_parallel is not None:
            self.problem(spec.where("max_parallel"), "max_parallel on a task applies to matrix instances: add a matrix")
        if spec.retry.jitter and spec.retry.max_attempts == 1:
            self.problem(spec.where("retry"), "jitter is set but max_attempts is 1: nothing is ever retried")
        ancestors = dag.ancestors(spec.id)
        matrix_keys = _matrix_keys(spec)
        reads_upstream = False
        for name, value in (("input", spec.input), ("if", spec.condition)):
            for expr_at, source in _expressions(value, spec.where(name)):
                try:
                    _, referenced = rewrite(source, dag, dict.fromkeys(matrix_keys) if matrix_keys else None, spec.id)
                except ExpressionError as exc:
                    self.problem(expr_at, str(exc))
                    continue
                for ref in referenced:
                    reads_upstream = True
                    if ref not in ancestors:
                        self.problem(
                            expr_at,
                            f"task {spec.id!r} reads tasks.{ref}, which it does not (transitively) need: "
                            f"its output might not exist yet; add {ref!r} to needs",
                        )
        if spec.matrix is not None:
            for key, values in spec.matrix.items():
                if key == "exclude":
                    continue
                for expr_at, source in _expressions(values, (*spec.where("matrix"), key)):
                    try:
                        _, referenced = rewrite(source, dag, None, spec.id)
                    except ExpressionError as exc:
                        self.problem(expr_at, str(exc))
                        continue
                    if referenced:
                        self.problem(expr_at, "matrix values are computed from params only, when the run starts")
        if dag.mode == "deterministic" and rule == "always" and spec.needs and reads_upstream:
            self.problem(
                rule_at,
                "trigger_rule 'always' starts at once, without waiting for its needs, so reading their "
                "outputs would depend on timing; in deterministic mode use all_done",
            )


def _cycles(needs: Mapping[str, list[str]], stuck: list[str]) -> list[list[str]]:
    """One cycle through the stuck tasks (iterative DFS): enough to name the problem."""
    stuck_set = set(stuck)
    for start in stuck:
        path = [start]
        index = {start: 0}
        iters = [iter([n for n in needs[start] if n in stuck_set])]
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                iters.pop()
                index.pop(path.pop(), None)
                continue
            if nxt in index:
                cycle = path[index[nxt] :]
                return [list(reversed(cycle))]
            index[nxt] = len(path)
            path.append(nxt)
            iters.append(iter([n for n in needs[nxt] if n in stuck_set]))
    return [stuck]


def _param_problem(spec: ParamSpec, value: Any) -> str | None:
    checks: dict[str, Callable[[Any], bool]] = {
        "string": lambda v: isinstance(v, str),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, Mapping),
    }
    if spec.type is not None and not checks[spec.type](value):
        return f"param {spec.name!r} must be {spec.type}, got {_kind(value)}"
    if spec.enum is not None and value not in spec.enum:
        return f"param {spec.name!r} must be one of {', '.join(json.dumps(v) for v in spec.enum)}, got {value!r}"
    return None


def resolve_params(dag: Dag, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The params of a run: defaults overridden by ``given``; unknown names, missing
    required params and wrong types are refused, all at once."""
    given = dict(given or {})
    problems: list[Problem] = []
    for name in given:
        if name not in dag.params:
            hint = difflib.get_close_matches(name, list(dag.params), n=1)
            problems.append(
                Problem(f"params.{name}", "unknown param" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
            )
    values: dict[str, Any] = {}
    for name, spec in dag.params.items():
        if name in given:
            value = given[name]
        elif spec.required:
            problems.append(Problem(f"params.{name}", "this param has no default: give a value"))
            continue
        else:
            value = copy.deepcopy(spec.default)
        message = _param_problem(spec, value)
        if message:
            problems.append(Problem(f"params.{name}", message))
        values[name] = value
    if problems:
        raise DefinitionError(problems, dag.source)
    return values


# ------------------------------------------------------------------------------ expressions


def _expressions(value: Any, pointer: Pointer) -> Iterator[tuple[Pointer, str]]:
    """Every ``{"expr": ...}`` inside a JSON value, with its pointer."""
    if isinstance(value, Mapping):
        if len(value) == 1 and isinstance(value.get("expr"), str):
            yield (*pointer, "expr"), value["expr"]
            return
        for k, v in value.items():
            yield from _expressions(v, (*pointer, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _expressions(v, (*pointer, i))


def _matrix_keys(spec: TaskSpec) -> list[str]:
    return [k for k in (spec.matrix or {}) if k != "exclude"]


def rewrite(
    source: str,
    dag: Dag,
    matrix: Mapping[str, Any] | None,
    task_id: str,
    instances: Mapping[str, list[str]] | None = None,
) -> tuple[str, set[str]]:
    """Translate a DAG expression (names ``params``, ``tasks``, ``matrix``) into an fsm
    expression over the compiled machine's context. Returns the new source and the
    task ids it reads. The result is compiled by fsm's own safe expression compiler,
    which refuses anything outside the whitelist."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error: {exc.msg}", source) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError("too deeply nested", source) from None
    referenced: set[str] = set()

    def record(tid: str) -> ast.expr:
        if tid not in dag.tasks:
            hint = difflib.get_close_matches(tid, list(dag.tasks), n=1)
            raise ExpressionError(f"no task {tid!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""), source)
        referenced.add(tid)
        ids = (instances or {}).get(tid, [tid])
        if dag.tasks[tid].matrix is None:
            return _ctx(ids[0])
        # A matrix task reads as the list of its instances' values.
        return ast.Dict(
            keys=[ast.Constant(k) for k in _RECORD_VIEW],
            values=[
                ast.List(elts=[ast.Attribute(_ctx(i), k, ast.Load()) for i in ids], ctx=ast.Load())
                for k in _RECORD_VIEW
            ],
        )

    class Rewriter(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            if node.id == "params":
                return ast.Attribute(ast.Name("context", ast.Load()), "params", ast.Load())
            if node.id == "matrix":
                if matrix is None:
                    raise ExpressionError(f"'matrix' is only defined in a matrix task ({task_id!r} has none)", source)
                return ast.parse(repr(dict(matrix)), mode="eval").body
            if node.id == "tasks":
                raise ExpressionError("read a task as tasks.<id> (for example tasks.fetch.output)", source)
            if node.id in ("context", "event", "input"):
                raise ExpressionError(f"DAG expressions read params, tasks and matrix, not {node.id!r}", source)
            return node

        def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
            if isinstance(node.value, ast.Name) and node.value.id == "tasks":
                return record(node.attr)
            return self.generic_visit(node)

        def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
            if isinstance(node.value, ast.Name) and node.value.id == "tasks":
                key = node.slice
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    return record(key.value)
                raise ExpressionError("tasks[...] takes a task id written as a string", source)
            return self.generic_visit(node)

    new = Rewriter().visit(tree)
    text = ast.unparse(ast.fix_missing_locations(new))
    Expression(text)  # refuse what fsm's expression language refuses, now
    return text, referenced


def _ctx(task_id: str) -> ast.expr:
    return ast.Subscript(ast.Name("context", ast.Load()), ast.Constant(task_id), ast.Load())


def _rewrite_value(value: Any, dag: Dag, node: Node, instances: Mapping[str, list[str]]) -> Any:
    """A JSON value with DAG expressions rewritten for one instance."""
    if isinstance(value, Mapping):
        if len(value) == 1 and isinstance(value.get("expr"), str):
            return {"expr": rewrite(value["expr"], dag, node.matrix, node.spec.id, instances)[0]}
        return {k: _rewrite_value(v, dag, node, instances) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite_value(v, dag, node, instances) for v in value]
    return value


def _condition_source(value: Any, dag: Dag, node: Node, instances: Mapping[str, list[str]]) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "True" if value else "False"
    return rewrite(value["expr"], dag, node.matrix, node.spec.id, instances)[0]


def _matrix_combinations(spec: TaskSpec, params: Mapping[str, Any], problems: list[Problem]) -> list[dict[str, Any]]:
    assert spec.matrix is not None
    axes: list[tuple[str, list[Any]]] = []
    for key, values in spec.matrix.items():
        if key == "exclude":
            continue
        if isinstance(values, Mapping):
            at = (*spec.where("matrix"), key)
            try:
                text = rewrite(values["expr"], _EMPTY_DAG, None, spec.id)[0]
                values = Expression(text)({"context": {"params": params}})
            except ExpressionError as exc:
                problems.append(Problem(format_path(at), str(exc), at))
                return []
            if not isinstance(values, list) or not values:
                problems.append(
                    Problem(format_path(at), f"the matrix values must be a non-empty list, got {values!r}", at)
                )
                return []
        axes.append((key, list(values)))
    excluded = spec.matrix.get("exclude") or []
    combos = []
    for combination in itertools.product(*(values for _, values in axes)):
        combo = dict(zip((k for k, _ in axes), combination))
        if any(all(combo.get(k) == v for k, v in ex.items()) for ex in excluded):
            continue
        combos.append(combo)
    if not combos:
        at = spec.where("matrix")
        problems.append(Problem(format_path(at), "the matrix has no combination left", at))
    return combos


_EMPTY_DAG = Dag("empty", {})


# GitHub Actions expressions: ${{ }} strings, && || !, needs.<job>.outputs, inputs.<name>.


def _strip_braces(text: str) -> str:
    text = text.strip()
    match = re.fullmatch(r"\$\{\{(.*)\}\}", text, re.S)
    return match.group(1).strip() if match else text


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quotes and parentheses."""
    parts, depth, quote, start, i = [], 0, "", 0, 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif depth == 0 and text.startswith(sep, i):
            parts.append(text[start:i])
            i += len(sep)
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return parts


def _gha_expr(text: str) -> str:
    """A GitHub Actions expression in DAG vocabulary: ``&&``/``||``/``!`` become
    ``and``/``or``/``not``; ``needs.X.outputs`` is ``tasks.X.output``, ``needs.X.result``
    is ``tasks.X.state``; ``inputs.x`` and ``github.event.inputs.x`` are ``params.x``."""
    out, quote, i = [], "", 0
    while i < len(text):
        c = text[i]
        if quote:
            out.append(c)
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
            out.append(c)
        elif text.startswith("&&", i):
            out.append(" and ")
            i += 2
            continue
        elif text.startswith("||", i):
            out.append(" or ")
            i += 2
            continue
        elif c == "!" and not text.startswith("!=", i):
            out.append(" not ")
        else:
            out.append(c)
        i += 1
    result = "".join(out)
    result = re.sub(r"\bgithub\.event\.inputs\.", "params.", result)
    result = re.sub(r"\binputs\.", "params.", result)
    result = re.sub(r"\bneeds\.([A-Za-z_][A-Za-z0-9_-]*)\.outputs\b", r"tasks.\1.output", result)
    result = re.sub(r"\bneeds\.([A-Za-z_][A-Za-z0-9_-]*)\.result\b", r"tasks.\1.state", result)
    return re.sub(r"\s+", " ", result).strip()


def _gha_value(value: Any, pointer: Pointer, builder: _Builder) -> Any:
    """``with:`` values: a string that is one ``${{ e }}`` becomes ``{"expr": e}``;
    text around ``${{ }}`` parts becomes a string concatenation."""
    if isinstance(value, Mapping):
        if len(value) == 1 and isinstance(value.get("expr"), str):
            return {"expr": value["expr"]}
        return {k: _gha_value(v, (*pointer, k), builder) for k, v in value.items()}
    if isinstance(value, list):
        return [_gha_value(v, (*pointer, i), builder) for i, v in enumerate(value)]
    if isinstance(value, str) and "${{" in value:
        pieces = re.split(r"(\$\{\{.*?\}\})", value)
        terms = []
        for piece in pieces:
            if not piece:
                continue
            if piece.startswith("${{"):
                terms.append(f"str({_gha_expr(_strip_braces(piece))})")
            else:
                terms.append(repr(piece))
        if len(pieces) == 3 and not pieces[0] and not pieces[2]:
            return {"expr": _gha_expr(_strip_braces(value))}
        return {"expr": " + ".join(terms)}
    return value


# ------------------------------------------------------------------------------ compiling


def _q(text: str) -> str:
    """A string literal for expressions (single quotes: no escaping inside JSON)."""
    return repr(str(text))


def _rec(task_id: str) -> str:
    return f"context[{_q(task_id)}]"


def _up_key(task_id: str) -> str:
    """The context key of a task's upstream counters (':' never appears in task ids)."""
    return f"{task_id}:up"


def _up(task_id: str) -> str:
    return f"context[{_q(_up_key(task_id))}]"


def _assign(assignment: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "assign", "assignment": dict(assignment)}


def _raise(event_type: str, **extra: Any) -> dict[str, Any]:
    return {"type": "raise", "event": {"type": event_type}, **extra}


class _Compiler:
    """Builds the machine definition for one run's task instances."""

    def __init__(self, dag: Dag, nodes: list[Node], params: Mapping[str, Any], restored: Mapping[str, Any]) -> None:
        self.dag = dag
        self.nodes = nodes
        self.params = dict(params)
        self.restored = restored
        self.by_id = {n.id: n for n in nodes}
        self.instances: dict[str, list[str]] = {}
        for n in nodes:
            self.instances.setdefault(n.spec.id, []).append(n.id)
        self.down: dict[str, list[str]] = {n.id: [] for n in nodes}
        self.lane_next: dict[str, list[str]] = {n.id: [] for n in nodes}
        for n in nodes:
            for u in n.needs:
                self.down[u].append(n.id)
            if n.lane_after is not None:
                self.lane_next[n.lane_after].append(n.id)
        self.queue = dag.max_parallel is not None

    # -- the context ---------------------------------------------------------------

    def fields(self, node: Node) -> list[str]:
        out = ["state", "attempt", "output", "error"]
        if node.spec.branch:
            out.extend(("choice", "chosen"))
        if self.queue and node.spec.src is not None:
            out.append("ticket")
        if node.matrix is not None:
            out.append("matrix")
        return out

    def initial_record(self, node: Node) -> dict[str, Any]:
        record: dict[str, Any] = {"state": "waiting", "attempt": 0, "output": None, "error": None}
        if node.spec.branch:
            record["choice"] = None
            record["chosen"] = 0
        if self.queue and node.spec.src is not None:
            record["ticket"] = None
        if node.matrix is not None:
            record["matrix"] = dict(node.matrix)
        if node.id in self.restored:
            record["state"] = "succeeded"
            record["output"] = copy.deepcopy(self.restored[node.id])
        return record

    def dag_fields(self) -> dict[str, Any]:
        """The max_parallel queue: tasks running, tickets given and served."""
        return {"running": 0, "next_ticket": 0, "serving": 0} if self.queue else {}

    def counted(self, node: Node) -> bool:
        """Whether the task keeps upstream counters (``<task>:up``), updated as its
        upstreams settle; with few upstreams the guards count their states directly."""
        return len(node.needs) > INLINE_FAN_IN

    def update(self, node: Node, changes: Mapping[str, Any]) -> dict[str, Any]:
        """``assign`` one task record: the changed fields, the others copied (one
        expression, so the compiled definition stays small and readable)."""
        rec = _rec(node.id)
        value = {name: changes.get(name, {"expr": f"{rec}.{name}"}) for name in self.fields(node)}
        return _assign({node.id: _as_one_expr(value)})

    def count(self, node: Node, counter: str) -> dict[str, Any]:
        """``assign``: one more upstream of ``node`` settled as ``counter``."""
        up = _up(node.id)
        value = {c: {"expr": f"{up}.{c} + 1" if c in (counter, "done") else f"{up}.{c}"} for c in COUNTERS}
        return _assign({_up_key(node.id): _as_one_expr(value)})

    def update_dag(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        value = {name: changes.get(name, {"expr": f"context.dag.{name}"}) for name in self.dag_fields()}
        return _assign({"dag": _as_one_expr(value)})

    # -- the machine ---------------------------------------------------------------

    def machine(self) -> dict[str, Any]:
        regions = {n.id: self.region(n) for n in self.nodes}
        context: dict[str, Any] = {"params": self.params}
        if self.queue:
            context["dag"] = self.dag_fields()
        for n in self.nodes:
            context[n.id] = self.initial_record(n)
            if self.counted(n):
                context[_up_key(n.id)] = dict.fromkeys(COUNTERS, 0)
        # The verdict, read from the task records once every region is final: any task
        # failed (deterministic), or a leaf task failed or upstream_failed (Airflow).
        if self.dag.mode == "deterministic":
            terms = [f"{_rec(n.id)}.state == 'failed'" for n in self.nodes]
        else:
            terms = [f"{_rec(n.id)}.state in ['failed', 'upstream_failed']" for n in self.nodes if not self.down[n.id]]
        failed_when = _g_or(*(_g(f"any([{t}])") for t in _chunked(terms, ", ")))
        output = {
            "status": {"expr": "event.output"},
            "states": {n.id: {"expr": f"{_rec(n.id)}.state"} for n in self.nodes},
            "outputs": {n.id: {"expr": f"{_rec(n.id)}.output"} for n in self.nodes},
        }
        description = self.dag.description or f"DAG {self.dag.id!r} compiled by fsm.compile.dag"
        return {
            "id": self.dag.id,
            "description": description,
            "initial": "start",
            "context": context,
            "options": {
                "max_microsteps": max(10_000, 50 * len(self.nodes) + 50 * sum(len(n.needs) for n in self.nodes))
            },
            "meta": {"compiled_from": "dag", "mode": self.dag.mode, "tasks": [n.id for n in self.nodes]},
            "states": {
                # Entering `run` by a transition rather than as the initial configuration:
                # the engine's initial step grows with the cube of the number of regions,
                # a transition's entry with its square (docs/dag.md, "Performance").
                "start": {"always": "run", "description": "enter one region per task"},
                "run": {
                    "type": "parallel",
                    "states": regions,
                    "onDone": [
                        {"target": "failed", "guard": failed_when, "description": "a task failed"},
                        {"target": "succeeded"},
                    ],
                },
                "succeeded": {"type": "final", "output": "succeeded"},
                "failed": {"type": "final", "output": "failed"},
            },
            "output": output,
        }

    def region(self, node: Node) -> dict[str, Any]:
        spec = node.spec
        states: dict[str, Any] = {"waiting": self.waiting(node)}
        if spec.src is not None:
            if self.queue:
                states["queued"] = self.queued(node)
            states["running"] = self.running(node)
            if spec.branch:
                states["choosing"] = self.choosing(node)
            if spec.retry.max_attempts > 1:
                states["retrying"] = self.retrying(node)
        states["succeeded"] = self.settled(node, "succeeded")
        states["failed"] = self.settled(node, "failed")
        states["skipped"] = self.settled(node, "skipped")
        states["upstream_failed"] = self.settled(node, "upstream_failed")
        if spec.src is None:
            del states["failed"]  # a no-op task cannot fail
        region: dict[str, Any] = {
            "initial": "succeeded" if node.id in self.restored else "waiting",
            "states": states,
        }
        if spec.description:
            region["description"] = spec.description
        meta: dict[str, Any] = {"task": spec.id, "trigger_rule": spec.trigger_rule}
        if spec.src is not None:
            meta["service"] = spec.src
        if node.matrix is not None:
            meta["matrix"] = dict(node.matrix)
        region["meta"] = meta
        return region

    def halt_events(self, node: Node) -> list[str]:
        out = []
        if self.dag.fail_fast:
            out.append("dag.halt")
        if node.spec.fail_fast and node.matrix is not None:
            out.append(f"dag.halt.{node.spec.id}")
        return out

    def waiting(self, node: Node) -> dict[str, Any]:
        on: dict[str, Any] = {f"dag.check.{node.id}": self.decisions(node)}
        for event in self.halt_events(node):
            on[event] = {"target": "skipped"}
        state: dict[str, Any] = {"on": on}
        if not node.needs or node.rule == "always":
            state["entry"] = _raise(f"dag.check.{node.id}")
        return state

    def run_target(self, node: Node) -> dict[str, Any]:
        if node.spec.src is None:
            value = _rewrite_value(node.spec.input, self.dag, node, self.instances)
            return {"target": "succeeded", "actions": self.update(node, {"output": value})}
        return {"target": "queued" if self.queue else "running"}

    def decisions(self, node: Node) -> list[dict[str, Any]]:
        """The guarded transitions of ``dag.check.<task>``: the branch skip first, then
        the rule's outcomes (which exclude each other), the ``if`` splitting ``run``."""
        counters = _up(node.id) if self.counted(node) else None
        outcomes = _rule_outcomes(node.rule, node.needs, self.dag.mode, counters)
        out: list[dict[str, Any]] = []
        branch = self.branch_skip(node)
        if branch is not None:
            if self.dag.mode == "deterministic" and node.rule != "always":
                branch = _g_and(_g(_atom(_DONE, node.needs, counters)), branch)
            out.append({"target": "skipped", "guard": branch, "description": "not chosen by a branch"})
        condition = _condition_source(node.spec.condition, self.dag, node, self.instances)
        lane = None
        if node.lane_after is not None:
            lane = _g(f"{_rec(node.lane_after)}.state in {list(SETTLED)!r}")
        # The outcomes of a rule exclude each other, so a run outcome that waits (for
        # its matrix lane) never lets another outcome through.
        for outcome, cond in outcomes:
            guard = _g(cond)
            if outcome == "run":
                if condition is not None:
                    out.append(
                        {
                            "target": "skipped",
                            "guard": _g_and(guard, _g(f"not ({condition})")),
                            "description": "the 'if' condition is false",
                        }
                    )
                target = self.run_target(node)
                run_guard = _g_and(guard, lane, _g(condition))
                if run_guard is not None:
                    target["guard"] = run_guard
                target["description"] = f"{node.rule} satisfied"
                out.append(target)
            else:
                out.append({"target": outcome, "guard": guard, "description": f"{node.rule}: {outcome}"})
        return out

    def branch_skip(self, node: Node) -> dict[str, Any] | None:
        """Skipped by a branch upstream that chose neither this task nor a task it
        descends from (Airflow's skip_all_except)."""
        parts = []
        for upstream_id in node.spec.needs:
            upstream = self.dag.tasks[upstream_id]
            if not upstream.branch:
                continue
            downstream = self.dag.downstream(upstream_id)
            keepers = [c for c in downstream if c == node.spec.id or node.spec.id in self.dag.descendants(c)]
            rec = _rec(upstream_id)
            not_kept = [f"not ({_q(k)} in {rec}.choice)" for k in keepers]
            chunks = [_g(text) for text in _chunked(not_kept, " and ")]
            parts.append(_g_and(_g(f"{rec}.state == 'succeeded'"), *chunks))
        return _g_or(*parts)

    def queued(self, node: Node) -> dict[str, Any]:
        limit = self.dag.max_parallel
        rec = _rec(node.id)
        on: dict[str, Any] = {
            "dag.dispatch": {
                "target": "running",
                "guard": {"expr": f"context.dag.running < {limit} and {rec}.ticket == context.dag.serving"},
                "actions": self.update_dag({"serving": {"expr": "context.dag.serving + 1"}}),
                "description": f"a slot is free (max_parallel {limit})",
            }
        }
        for event in self.halt_events(node):
            on[event] = {"target": "skipped"}
        return {
            "entry": [
                self.update(node, {"state": "queued", "ticket": {"expr": "context.dag.next_ticket"}}),
                self.update_dag({"next_ticket": {"expr": "context.dag.next_ticket + 1"}}),
                _raise("dag.dispatch"),
            ],
            "on": on,
        }

    def running(self, node: Node) -> dict[str, Any]:
        spec = node.spec
        rec = _rec(node.id)
        entry: list[dict[str, Any]] = [
            self.update(node, {"state": "running", "attempt": {"expr": f"{rec}.attempt + 1"}}),
        ]
        exit_: list[dict[str, Any]] = []
        if self.queue:
            entry += [self.update_dag({"running": {"expr": "context.dag.running + 1"}}), _raise("dag.dispatch")]
            exit_ += [self.update_dag({"running": {"expr": "context.dag.running - 1"}}), _raise("dag.dispatch")]
        invoke: dict[str, Any] = {
            "id": node.id,
            "src": spec.src,
            "onDone": self.on_done(node),
            "onError": self.failure(node, {"expr": _ERROR_TEXT}, retryable_check=True),
        }
        if spec.input is not None:
            invoke["input"] = _rewrite_value(spec.input, self.dag, node, self.instances)
        state: dict[str, Any] = {"entry": entry, "invoke": invoke}
        if exit_:
            state["exit"] = exit_
        if spec.timeout_ms is not None:
            message = f"Timeout: attempt exceeded {_seconds(spec.timeout_ms)}"
            retry_on_timeout = "Timeout" not in spec.retry.non_retryable
            state["after"] = {_ms_key(spec.timeout_ms): self.failure(node, message, retry=retry_on_timeout)}
        halts = self.halt_events(node)
        if halts:
            state["on"] = {
                event: {
                    "target": "failed",
                    "actions": self.update(node, {"error": "stopped: fail_fast after another task failed"}),
                }
                for event in halts
            }
        return state

    def on_done(self, node: Node) -> Any:
        if not node.spec.branch:
            return {"target": "succeeded", "actions": self.update(node, {"output": {"expr": "event.output"}})}
        # The choice is normalised to a list (None when it is not a list or a string),
        # then the valid ids in it are counted in chunks (expressions have a size limit).
        rec = _rec(node.id)
        allowed = self.dag.downstream(node.spec.id)
        actions = [self.update(node, {"output": {"expr": "event.output"}, "choice": {"expr": _CHOICE}, "chosen": 0})]
        terms = [f"({_q(a)} in ({rec}.choice or []))" for a in allowed]
        for chunk in _chunked(terms, " + ", size=25):
            actions.append(self.update(node, {"chosen": {"expr": f"{rec}.chosen + {chunk}"}}))
        return {"target": "choosing", "actions": actions}

    def choosing(self, node: Node) -> dict[str, Any]:
        rec = _rec(node.id)
        allowed = self.dag.downstream(node.spec.id)
        message = _q(f"BranchError: the choice must be null, one of {', '.join(allowed)}, or a list of them; got ")
        return {
            "description": "check the branch's choice",
            "always": [
                {
                    "target": "succeeded",
                    "guard": _g(f"{rec}.choice is not None and len({rec}.choice) == {rec}.chosen"),
                    "description": "a valid choice",
                },
                {
                    "target": "failed",
                    "actions": self.update(node, {"error": {"expr": f"{message} + str({rec}.output)"}}),
                    "description": "an invalid choice",
                },
            ],
        }

    def failure(
        self, node: Node, error: Any, *, retry: bool = True, retryable_check: bool = False
    ) -> list[dict[str, Any]] | dict[str, Any]:
        """Transitions for a failed attempt: retry while attempts remain (and the error
        is retryable), else fail."""
        spec = node.spec
        record_error = self.update(node, {"error": error})
        fail = {"target": "failed", "actions": record_error}
        if spec.retry.max_attempts <= 1 or not retry:
            return fail
        guard: Any = {"expr": f"{_rec(node.id)}.attempt < {spec.retry.max_attempts}"}
        if retryable_check and spec.retry.non_retryable:
            blocked = list(spec.retry.non_retryable)
            guard = {"expr": f"{guard['expr']} and event.error.type not in {blocked!r}"}
        return [
            {"target": "retrying", "guard": guard, "actions": record_error, "description": "attempts remain"},
            fail,
        ]

    def retrying(self, node: Node) -> dict[str, Any]:
        spec = node.spec
        retry = spec.retry
        rec = _rec(node.id)
        if retry.jitter:
            delay: Any = f"dag.retryDelay.{node.id}"
        else:
            delay = {
                "expr": f"min({_num(retry.initial_ms)} * {_num(retry.coefficient)} ** ({rec}.attempt - 1), "
                f"{_num(retry.cap_ms)})"
            }
        on: dict[str, Any] = {f"dag.retry.{node.id}": {"target": "queued" if self.queue else "running"}}
        for event in self.halt_events(node):
            on[event] = {"target": "skipped"}
        return {
            "entry": [
                self.update(node, {"state": "retrying"}),
                _raise(f"dag.retry.{node.id}", delay=delay, id=f"dag.retry.{node.id}"),
            ],
            "exit": {"type": "cancel", "id": f"dag.retry.{node.id}"},
            "on": on,
        }

    def settled(self, node: Node, state: str) -> dict[str, Any]:
        """A final state: record it, count it in each downstream task's ``up``, and
        ask those tasks (and the next instance of a matrix lane) to check their rule."""
        entry: list[dict[str, Any]] = [self.update(node, {"state": state})]
        if state == "failed":
            # Stop the others before anything reacts to the failure (Airflow stops the
            # remaining tasks while handling the failure, before the scheduler looks).
            entry.extend(_raise(event) for event in self.halt_events(node))
        counter = _COUNTER_OF[state]
        entry.extend(self.count(self.by_id[d], counter) for d in self.down[node.id] if self.counted(self.by_id[d]))
        notify = [*self.down[node.id], *(n for n in self.lane_next[node.id] if n not in self.down[node.id])]
        entry.extend(_raise(f"dag.check.{d}") for d in notify)
        return {"type": "final", "entry": entry}


# The text of a failed attempt's error (``event.error`` is ``{"type", "message"}``).
_ERROR_TEXT = "str(event.error.type) + ': ' + str(event.error.message)"

_CHOICE = (
    "([] if event.output is None else ([event.output] if str(event.output) == event.output else "
    "(event.output if str(event.output)[0] == '[' else None)))"
)


_SIMPLE = re.compile(r"[A-Za-z_][\w.]*(?:\['[^']*'\][\w.]*)*")


def _source(value: Any) -> str:
    """Python-expression source of a JSON value whose parts may be ``{"expr": ...}``."""
    if isinstance(value, Mapping):
        if len(value) == 1 and isinstance(value.get("expr"), str):
            text = value["expr"]
            return text if _SIMPLE.fullmatch(text) else f"({text})"
        return "{" + ", ".join(f"{_q(str(k))}: {_source(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_source(v) for v in value) + "]"
    if value is None or isinstance(value, (bool, str)):
        return repr(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("not JSON")
    return json.dumps(value)


_TOKEN = re.compile(r"'[^']*'|\w+|[^\w\s]")


def _as_one_expr(value: Mapping[str, Any]) -> Any:
    """The value as one expression when it is well within fsm's expression limits
    (2,000 characters, 400 syntax nodes; estimated from the tokens, as parsing each
    generated expression twice would double the compile time), else as a mapping of
    smaller expressions."""
    try:
        text = _source(value)
    except ValueError:
        return dict(value)
    if len(text) > 1800 or 2 * len(_TOKEN.findall(text)) > 380:
        return dict(value)
    return {"expr": text}


def _g(expr: str | None) -> dict[str, Any] | None:
    """An expression guard (None for an always-true one)."""
    return None if expr is None or expr == "True" else {"expr": expr}


def _g_and(*guards: dict[str, Any] | None) -> dict[str, Any] | None:
    """A conjunction of guards, as fsm's ``and`` combinator when there are several
    (each stays a small expression, whatever the number of terms)."""
    parts = [g for g in guards if g is not None]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"type": "and", "guards": parts}


def _g_or(*guards: dict[str, Any] | None) -> dict[str, Any] | None:
    parts = [g for g in guards if g is not None]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"type": "or", "guards": parts}


def _chunked(terms: list[str], joiner: str, size: int = 20) -> list[str]:
    """Terms joined into expressions of at most ``size`` terms each."""
    return [joiner.join(terms[i : i + size]) for i in range(0, len(terms), size)]


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _ms_key(ms: float) -> str:
    return str(int(ms)) if float(ms).is_integer() else f"{ms:.3f}".rstrip("0").rstrip(".")


def _seconds(ms: float) -> str:
    s = ms / 1000.0
    return f"{_num(s)}s"


# A condition on the upstream states: (counters summed, comparison, value); a rule
# outcome holds when all its atoms hold. "n" stands for the number of upstreams.
Atom = tuple[tuple[str, ...], str, "int | str"]
_S, _F, _SK, _UF, _D = ("success",), ("failed",), ("skipped",), ("upstream_failed",), ("done",)
_FAIL = ("failed", "upstream_failed")
_DONE: Atom = (_D, ">=", "n")

#: Airflow 3, TriggerRuleDep._evaluate_direct_relatives: the flag_upstream_failed
#: outcomes, then the "dep met" test, per rule. Written so that the outcomes of a rule
#: exclude each other (each edge of the diagram reads on its own); the flags that
#: Airflow tests first are kept first.
AIRFLOW_RULES: dict[str, list[tuple[str, list[Atom]]]] = {
    "all_success": [
        ("upstream_failed", [(_FAIL, ">", 0)]),
        ("skipped", [(_SK, ">", 0), (_FAIL, "==", 0)]),
        ("run", [(_S, ">=", "n")]),
    ],
    "all_failed": [("skipped", [(("success", "skipped"), ">", 0)]), ("run", [(_FAIL, ">=", "n")])],
    "all_done": [("run", [_DONE])],
    "all_skipped": [("skipped", [(("success", *_FAIL), ">", 0)]), ("run", [(_SK, ">=", "n")])],
    "one_success": [
        ("skipped", [_DONE, (("success", *_FAIL), "==", 0)]),
        ("upstream_failed", [_DONE, (_S, "==", 0), (_FAIL, ">", 0)]),
        ("run", [(_S, ">", 0)]),
    ],
    "one_failed": [("skipped", [_DONE, (_FAIL, "==", 0)]), ("run", [(_FAIL, ">", 0)])],
    "one_done": [("skipped", [_DONE, (("success", "failed"), "==", 0)]), ("run", [(("success", "failed"), ">", 0)])],
    "none_failed": [("upstream_failed", [(_FAIL, ">", 0)]), ("run", [(("success", "skipped"), ">=", "n")])],
    "none_failed_min_one_success": [
        ("upstream_failed", [(_FAIL, ">", 0)]),
        ("skipped", [(_SK, ">=", "n")]),
        ("run", [(("success", "skipped"), ">=", "n"), (_S, ">", 0)]),
    ],
    "none_skipped": [("skipped", [(_SK, ">", 0)]), ("run", [_DONE, (_SK, "==", 0)])],
}

#: The deterministic mode: decided once every upstream settled, a failure
#: (failed or upstream_failed) dominating a skip. Outcomes exclude each other.
DETERMINISTIC_RULES: dict[str, list[tuple[str, list[Atom]]]] = {
    "all_success": [
        ("run", [(_S, ">=", "n")]),
        ("upstream_failed", [_DONE, (_FAIL, ">", 0)]),
        ("skipped", [_DONE, (_FAIL, "==", 0), (_SK, ">", 0)]),
    ],
    "all_failed": [("run", [(_FAIL, ">=", "n")]), ("skipped", [_DONE, (("success", "skipped"), ">", 0)])],
    "all_done": [("run", [_DONE])],
    "all_skipped": [("run", [(_SK, ">=", "n")]), ("skipped", [_DONE, (("success", *_FAIL), ">", 0)])],
    "one_success": [
        ("run", [_DONE, (_S, ">", 0)]),
        ("skipped", [(_SK, ">=", "n")]),
        ("upstream_failed", [_DONE, (_S, "==", 0), (_FAIL, ">", 0)]),
    ],
    "one_failed": [("run", [_DONE, (_FAIL, ">", 0)]), ("skipped", [_DONE, (_FAIL, "==", 0)])],
    "one_done": [
        ("run", [_DONE, (("success", "failed"), ">", 0)]),
        ("skipped", [_DONE, (("success", "failed"), "==", 0)]),
    ],
    "none_failed": [("upstream_failed", [_DONE, (_FAIL, ">", 0)]), ("run", [_DONE, (_FAIL, "==", 0)])],
    "none_failed_min_one_success": [
        ("upstream_failed", [_DONE, (_FAIL, ">", 0)]),
        ("run", [_DONE, (_FAIL, "==", 0), (_S, ">", 0)]),
        ("skipped", [(_SK, ">=", "n")]),
    ],
    "none_skipped": [("skipped", [_DONE, (_SK, ">", 0)]), ("run", [_DONE, (_SK, "==", 0)])],
}

_STATES_OF = {"success": "succeeded", "failed": "failed", "skipped": "skipped", "upstream_failed": "upstream_failed"}


def _rule_outcomes(rule: str, upstream: Sequence[str], mode: str, counters: str | None) -> list[tuple[str, str]]:
    """The (outcome, condition) list of a trigger rule; outcomes are ``run``,
    ``skipped`` and ``upstream_failed``. Conditions read the upstream task records
    (``counters`` None) or, for wide fan-ins, the counters at ``counters``."""
    if not upstream or rule == "always":
        return [("run", "True")]
    table = AIRFLOW_RULES if mode == "airflow" else DETERMINISTIC_RULES
    out = []
    for outcome, atoms in table[rule]:
        if counters is None and len(upstream) == 1:
            out.append((outcome, _one_upstream(atoms, upstream[0])))
            continue
        if any(op == ">=" and value == "n" for _, op, value in atoms if _ != _D):
            atoms = [a for a in atoms if a != _DONE]  # "all upstreams in ..." implies done
        out.append((outcome, " and ".join(_atom(atom, upstream, counters) for atom in atoms)))
    return out


def _one_upstream(atoms: list[Atom], upstream: str) -> str:
    """With one upstream every atom tests its state: the conjunction is one test."""
    allowed = set(SETTLED)
    for names, op, value in atoms:
        states = set(SETTLED) if names == _D else {_STATES_OF[c] for c in names}
        positive = (op, value) in ((">=", "n"), (">", 0), (">=", 1), ("==", "n"))
        allowed = allowed & states if positive else allowed - states
    ordered = [state for state in SETTLED if state in allowed]
    if len(ordered) == 1:
        return f"{_rec(upstream)}.state == {ordered[0]!r}"
    return f"{_rec(upstream)}.state in {ordered!r}"


def _atom(atom: Atom, upstream: Sequence[str], counters: str | None) -> str:
    names, op, value = atom
    n = len(upstream)
    bound = n if value == "n" else int(value)
    if counters is not None:
        return f"{' + '.join(f'{counters}.{c}' for c in names)} {op} {bound}"
    states = list(SETTLED) if names == _D else [_STATES_OF[c] for c in names]
    if len(states) == 1:
        tests = [f"{_rec(u)}.state == {states[0]!r}" for u in upstream]
    else:
        tests = [f"{_rec(u)}.state in {states!r}" for u in upstream]
    # sum >= n: all; sum > 0: any; sum == 0: none (the only comparisons the tables use)
    if (op, bound) in ((">=", n), ("==", n)):
        return tests[0] if n == 1 else f"all([{', '.join(tests)}])"
    if (op, bound) in ((">", 0), (">=", 1)):
        return tests[0] if n == 1 else f"any([{', '.join(tests)}])"
    if (op, bound) in (("==", 0), ("<=", 0)):
        return f"not ({tests[0]})" if n == 1 else f"not any([{', '.join(tests)}])"
    return f"({' + '.join(f'({t})' for t in tests)}) {op} {bound}"


def compile_dag(
    dag: Dag | Mapping[str, Any] | str | Path,
    params: Mapping[str, Any] | None = None,
    *,
    restored: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The machine definition (a plain dict that passes fsm's machine schema) running
    this DAG with these params (defaults when omitted).

    ``restored`` maps task instance ids to outputs of a previous run: those tasks start
    ``succeeded`` with that output (docs/dag.md, "Re-running a failed run").
    """
    if not isinstance(dag, Dag):
        dag = load_dag(dag) if isinstance(dag, (str, Path)) else parse_dag(dag)
    values = resolve_params(dag, params)
    nodes = dag.expand(values)
    unknown = sorted(set(restored or {}) - {n.id for n in nodes})
    if unknown:
        raise FsmError(f"restored tasks {unknown} are not tasks of DAG {dag.id!r}")
    return _Compiler(dag, nodes, values, restored or {}).machine()


def implementations(
    dag: Dag, random: Any = None, *, instances: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The named implementations a compiled machine may reference besides its services:
    the delays ``dag.retryDelay.<task>`` of tasks whose retries have jitter, drawing from
    ``random`` (an object with ``uniform(a, b)``, such as :class:`random.Random`). Pass
    them to ``machine.provide(delays=...)``.

    ``instances`` lists the task instance ids of the compiled machine (its
    ``meta.tasks``); by default those of a run with the default params.
    """
    delays: dict[str, Any] = {}
    if any(t.retry.jitter for t in dag.tasks.values()):
        if random is None:
            import random as random_module

            random = random_module.Random()
        if instances is None:
            instances = [n.id for n in dag.expand()]
        for instance in instances:
            spec = dag.tasks.get(instance.split("[", 1)[0])
            if spec is not None and spec.retry.jitter:
                delays[f"dag.retryDelay.{instance}"] = _jitter_delay(instance, spec.retry, random)
    return {"delays": delays}


def _jitter_delay(task_id: str, retry: Retry, random: Any) -> Callable[[Any, Any, Any], float]:
    def delay(context: Any, event: Any, params: Any) -> float:
        attempt = int(context[task_id]["attempt"])
        return float(random.uniform(0.0, retry_delay_ms(retry, attempt)))

    delay.__name__ = f"retry_delay_{re.sub(r'[^A-Za-z0-9_]', '_', task_id)}"
    return delay
