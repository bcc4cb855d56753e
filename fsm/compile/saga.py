"""Sagas compiled to ordinary fsm machines.

A saga (Garcia-Molina & Salem, 1987) is a sequence of steps T1..Tn, each with a
compensation Ci that semantically undoes it. Either every step completes, or the steps
that completed (T1..Tj) are undone in reverse order (Cj..C1). This module reads a saga
file (YAML or JSON, checked against ``saga.schema.json``), validates it, and compiles it
into a plain machine definition that :meth:`fsm.Machine.from_dict` accepts: the saga is
not a second engine, so persistence, diagrams and the runtime serve it unchanged.

The format and the semantics are documented in docs/saga.md; the decisions that shape
the compiled machine, and why:

- **Every attempt is a state.** A step is a compound state ``attempt -> wait -> attempt
  ... -> ok | failed``. The attempt invokes the action (a named service) with an input
  that carries the idempotency key ``<runId>:<step>:<attempt>``; a timeout is an
  ``after`` on the attempt (leaving the state stops the call); the wait is a delayed
  ``raise`` whose delay is an expression of the attempt counter, so the exponential
  backoff needs no Python. Attempt counters live in the context, which makes them
  survive persistence and makes idempotency keys stable across a crash: a resumed
  instance re-invokes the running attempt with the very same input.
- **Unknown outcomes count as done.** A timed-out attempt, or one whose service raised
  :class:`OutcomeUnknown`, may have taken effect: the step is added to the compensations
  owed as soon as that happens. Compensations must therefore be idempotent and accept
  "nothing to undo".
- **What is owed is data.** ``context.owed`` always lists the compensations owed if the
  saga had to roll back now, in the order they would run (reverse step order). A failure
  just enters the compensation chain, which runs each stage whose steps are owed and skips
  the rest; a compensation that keeps failing parks the saga in ``compensation_stuck``
  with ``owed`` intact, and ``RESUME_COMPENSATION`` re-enters the same chain, which
  therefore carries on exactly where it stopped.
- **Retry rounds.** A retry policy allows N attempts per *round*: an attempt may retry
  while ``attempt % N != 0``. Resuming a stuck saga starts a fresh round without any
  extra bookkeeping, and attempt numbers (hence idempotency keys) never repeat.
- **Parallel groups settle.** The steps of a group are the regions of a parallel state;
  when one fails the others still run to their end (success or failure), so every
  member's outcome is known before compensation starts. A group is compensated as a
  group (its members' compensations run concurrently), after every later step and
  before every earlier one.
- **The pivot commits.** Once the pivot step succeeds ``owed`` is emptied for good; later
  steps cannot be compensated (validation refuses ``compensate`` on them) and a step
  that exhausts its retries parks the saga in ``forward_stuck`` until ``RESUME_FORWARD``.

The expression language has no comprehensions or ``**``, so context updates of one key
of a dict (``attempts``, ``outputs``) or removals from ``owed`` are spelled out over the
saga's (known) step ids; an expression is limited to 2,000 characters, which bounds a
saga to a few dozen steps (:func:`compile_saga` says so clearly when exceeded).
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsm import loading
from fsm.errors import DefinitionError, Problem, format_path
from fsm.schema import SchemaError, SchemaValidator

__all__ = [
    "ABANDON",
    "RESUME_COMPENSATION",
    "RESUME_FORWARD",
    "SAGA_SCHEMA_ID",
    "Group",
    "OutcomeUnknown",
    "RetryPolicy",
    "Saga",
    "Step",
    "compile_saga",
    "is_saga_document",
    "load_saga",
    "parse_saga",
    "saga_context",
    "saga_schema",
    "saga_status",
]

SAGA_SCHEMA_ID = "https://fsm.dev/schema/saga.schema.json"

RESUME_COMPENSATION = "RESUME_COMPENSATION"
"""Sent to a saga in ``compensation_stuck`` (after fixing the cause) to retry what is owed."""
RESUME_FORWARD = "RESUME_FORWARD"
"""Sent to a saga in ``forward_stuck`` to retry the steps after the pivot that are left."""
ABANDON = "ABANDON"
"""Sent to a stuck saga to give up: it ends in ``compensation_failed`` / ``forward_failed``
with what is still owed in the output."""

FINAL_STATES = ("completed", "compensated", "compensation_failed", "forward_failed", "rejected")
STUCK_STATES = ("compensation_stuck", "forward_stuck")

MAX_EXPRESSION = 2000  # fsm.expressions refuses longer expressions
MAX_EXPONENT = 1000  # fsm.expressions refuses larger exponents

_ERROR_TEXT = "(event.error.message if event.error.message != None else str(event.error))"
# An error is an unknown outcome when the service raised OutcomeUnknown: live, the
# exception reads as a mapping; in a journal being replayed it is {"type", "message"}.
_UNKNOWN = "(event.error.outcome == 'unknown' or event.error.type == 'OutcomeUnknown')"


class OutcomeUnknown(Exception, Mapping[str, Any]):
    """Raise from a step's action when you cannot tell whether it took effect.

    For example, a payment gateway that timed out after the request was sent: the
    charge may or may not exist. The saga treats the step as possibly done, so its
    compensation will run if the saga rolls back (compensations must be idempotent and
    accept "nothing to undo"). Any other exception means "this attempt did not take
    effect"; a timeout (the step's ``timeout``) is an unknown outcome too.

    The exception also reads as a mapping (``type``, ``message``, ``outcome``) because
    machine expressions can only look into mappings: that is how the compiled machine,
    which is pure data, tells it apart from other errors.
    """

    __hash__ = Exception.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other

    def _fields(self) -> dict[str, Any]:
        return {"type": "OutcomeUnknown", "message": str(self), "outcome": "unknown"}

    def __getitem__(self, key: str) -> Any:
        return self._fields()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields())

    def __len__(self) -> int:
        return 3


# -- the saga model --------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and exponential backoff (Temporal's parameters, same defaults except
    ``attempts``). ``attempts=0`` means unlimited; ``max_interval=None`` means 100 x
    ``initial_interval``."""

    attempts: int = 3
    initial_interval: float = 1000
    backoff_coefficient: float = 2.0
    max_interval: float | None = None

    @property
    def ceiling(self) -> float:
        return self.max_interval if self.max_interval is not None else 100 * self.initial_interval

    @property
    def exponent_cap(self) -> int:
        """The exponent past which the wait is at the ceiling anyway. Capping it keeps
        the expression's power small (fsm refuses exponents above 1,000) no matter how
        many attempts an unlimited policy makes."""
        c, i = self.backoff_coefficient, self.initial_interval
        if c <= 1 or i <= 0 or self.ceiling <= i:
            return 0
        return min(MAX_EXPONENT, math.ceil(math.log(self.ceiling / i) / math.log(c)))

    def delay_after(self, attempt: int) -> float:
        """The wait (ms) after failed attempt number ``attempt`` (1-based) before the
        next one; the compiled machine computes the same value from the context."""
        n = attempt - 1 if self.attempts == 0 else (attempt - 1) % self.attempts
        exponent = min(n, self.exponent_cap)
        return float(min(self.initial_interval * self.backoff_coefficient**exponent, self.ceiling))

    def retries_after(self, attempt: int) -> bool:
        """Whether failed attempt ``attempt`` is followed by another in the same round."""
        return self.attempts == 0 or attempt % self.attempts != 0

    def merged(self, data: Mapping[str, Any] | None) -> RetryPolicy:
        if not data:
            return self
        return RetryPolicy(
            int(data.get("attempts", self.attempts)),
            data.get("initialInterval", self.initial_interval),
            data.get("backoffCoefficient", self.backoff_coefficient),
            data.get("maxInterval", self.max_interval),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "initialInterval": self.initial_interval,
            "backoffCoefficient": self.backoff_coefficient,
            "maxInterval": self.ceiling,
        }


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class Step:
    """One step: an action and, unless it cannot (or need not) be undone, a compensation."""

    id: str
    action: str
    compensate: str | None = None
    retry: RetryPolicy = DEFAULT_RETRY
    timeout: float | None = None
    compensation_retry: RetryPolicy = DEFAULT_RETRY
    compensation_timeout: float | None = None
    description: str | None = None
    path: tuple[str | int, ...] = ()


@dataclass(frozen=True)
class Group:
    """Steps that run concurrently; the saga moves on when all of them have ended."""

    id: str
    steps: tuple[Step, ...]
    description: str | None = None
    path: tuple[str | int, ...] = ()


Stage = Step | Group


@dataclass(frozen=True)
class Saga:
    """A validated saga definition (build it with :func:`parse_saga` / :func:`load_saga`)."""

    id: str
    stages: tuple[Stage, ...]
    pivot: str | None = None
    description: str | None = None
    source: str | None = None
    definition: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def steps(self) -> list[Step]:
        """Every step, in document order."""
        out: list[Step] = []
        for stage in self.stages:
            out.extend(stage.steps if isinstance(stage, Group) else (stage,))
        return out

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    @property
    def pivot_index(self) -> int | None:
        """The index of the pivot's stage, or None without a pivot."""
        if self.pivot is None:
            return None
        return next(i for i, s in enumerate(self.stages) if isinstance(s, Step) and s.id == self.pivot)

    def stage_index(self, step_id: str) -> int:
        for i, stage in enumerate(self.stages):
            members = stage.steps if isinstance(stage, Group) else (stage,)
            if any(s.id == step_id for s in members):
                return i
        raise KeyError(step_id)

    def compensable(self) -> list[Step]:
        """Steps that can be compensated (they have a compensation and do not come
        after the pivot), in the order their compensations run: reverse stage order,
        document order within a group."""
        last = len(self.stages) - 1 if self.pivot_index is None else self.pivot_index
        out: list[Step] = []
        for stage in reversed(self.stages[: last + 1]):
            members = stage.steps if isinstance(stage, Group) else (stage,)
            out.extend(s for s in members if s.compensate)
        return out


# -- loading and validation ------------------------------------------------------------


@functools.cache
def _schema_text() -> str:
    return (Path(__file__).parent / "saga.schema.json").read_text(encoding="utf-8")


def saga_schema() -> dict[str, Any]:
    """The saga JSON Schema (a fresh copy)."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


@functools.cache
def _validator() -> SchemaValidator:
    """fsm's compiled schema checker (the one machines use), built once."""
    return SchemaValidator(saga_schema())


def is_saga_document(data: Any) -> bool:
    """Whether parsed data is a saga (``steps``) rather than a machine (``states``):
    lets a CLI accept both kinds of file."""
    return isinstance(data, Mapping) and "steps" in data and "states" not in data


def load_saga(path: str | Path) -> Saga:
    """Read and validate a saga file (``.yaml``, ``.yml`` or ``.json``)."""
    return parse_saga(loading.read_file(path), source=str(path))


def parse_saga(data: Any, source: str | None = None) -> Saga:
    """Validate saga data (schema, then meaning) and build the :class:`Saga`.

    Raises :class:`~fsm.errors.DefinitionError` listing every problem, each with its
    JSON path (``steps[1].parallel[0].id: duplicate id ...``).
    """
    if isinstance(data, Saga):
        return data
    problems = _schema_problems(data)
    if problems:
        raise DefinitionError(problems, source)
    saga, problems = _build(data, source)
    if problems:
        raise DefinitionError(problems, source)
    return saga


def _schema_problems(data: Any) -> list[Problem]:
    if not isinstance(data, Mapping):
        return [Problem("", f"a saga is a mapping with `id` and `steps`, got {type(data).__name__}")]
    errors, _ = _validator().errors(data, limit=1000)
    problems = list(dict.fromkeys(_describe(error) for error in errors if error.validator not in ("if", "then")))
    problems.sort(key=lambda p: [str(x) for x in p.pointer])
    return problems


def _describe(error: SchemaError) -> Problem:
    """One failed schema keyword as a sentence naming what was expected and found."""
    kind, value, instance, schema = error.validator, error.value, error.instance, error.schema
    if kind == "additionalProperties":
        known = list(schema.get("properties", {}))
        parts = []
        for key in (k for k in instance if k not in known):
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; expected one of {', '.join(known)}"
            parts.append(f"unknown key {key!r}{hint}")
        message = "; ".join(parts)
    elif kind == "required":
        missing = [k for k in value if k not in instance]
        message = "missing required key " + ", ".join(repr(k) for k in missing)
    elif kind == "pattern":
        message = f"{instance!r} " + schema.get("patternErrorMessage", f"must match {value}")
    elif kind == "type":
        message = f"expected {value if isinstance(value, str) else ' or '.join(value)}, got {json.dumps(instance)}"
    elif kind == "minimum":
        message = f"must be at least {value}, got {instance}"
    elif kind == "minItems":
        message = f"must have at least {value} item(s)"
    elif kind == "minLength":
        message = "must not be empty"
    else:
        message = f"fails the schema keyword {kind!r} ({value!r})"
    return Problem(format_path(error.pointer), message, error.pointer)


def _build(data: Mapping[str, Any], source: str | None) -> tuple[Saga, list[Problem]]:
    problems: list[Problem] = []

    def problem(pointer: tuple[str | int, ...], message: str) -> None:
        problems.append(Problem(format_path(pointer), message, pointer))

    base_retry = _policy(DEFAULT_RETRY, data.get("retry"), ("retry",), problem)
    base_timeout = data.get("timeout")
    comp = data.get("compensation") or {}
    base_comp_retry = _policy(DEFAULT_RETRY, comp.get("retry"), ("compensation", "retry"), problem)
    base_comp_timeout = comp.get("timeout")

    seen: dict[str, tuple[str | int, ...]] = {}

    def claim(name: str, pointer: tuple[str | int, ...]) -> None:
        if name in seen:
            problem(pointer, f"duplicate id {name!r} (also at {format_path(seen[name])})")
        else:
            seen[name] = pointer

    def make_step(item: Mapping[str, Any], pointer: tuple[str | int, ...]) -> Step:
        claim(item["id"], (*pointer, "id"))
        own_comp = item.get("compensation") or {}
        return Step(
            id=item["id"],
            action=item["action"],
            compensate=item.get("compensate"),
            retry=_policy(base_retry, item.get("retry"), (*pointer, "retry"), problem),
            timeout=item.get("timeout", base_timeout),
            compensation_retry=_policy(
                base_comp_retry, own_comp.get("retry"), (*pointer, "compensation", "retry"), problem
            ),
            compensation_timeout=own_comp.get("timeout", base_comp_timeout),
            description=item.get("description"),
            path=pointer,
        )

    stages: list[Stage] = []
    for index, item in enumerate(data["steps"]):
        pointer: tuple[str | int, ...] = ("steps", index)
        if "parallel" in item:
            members = tuple(make_step(s, (*pointer, "parallel", j)) for j, s in enumerate(item["parallel"]))
            if "id" in item:
                claim(item["id"], (*pointer, "id"))
                group_id = item["id"]
            else:
                group_id = f"parallel_{index + 1}"
                if group_id in seen or any(s.get("id") == group_id for s in data["steps"]):
                    problem(pointer, f"give this group an `id`: its default id {group_id!r} is taken")
                else:
                    claim(group_id, pointer)
            stages.append(Group(group_id, members, item.get("description"), pointer))
        else:
            stages.append(make_step(item, pointer))

    saga = Saga(
        data["id"], tuple(stages), data.get("pivot"), data.get("description"), source, copy.deepcopy(dict(data))
    )
    if saga.pivot is not None:
        _check_pivot(saga, problem)
    if not problems:
        _check_size(saga, problem)
    return saga, problems


def _policy(base: RetryPolicy, data: Any, pointer: tuple[str | int, ...], problem: Any) -> RetryPolicy:
    policy = base.merged(data)
    if data and "maxInterval" in data and data["maxInterval"] < data.get("initialInterval", 0):
        problem(
            pointer,
            f"maxInterval ({data['maxInterval']}) is below initialInterval ({data['initialInterval']}): "
            "the wait could never reach its initial value",
        )
    return policy


def _check_pivot(saga: Saga, problem: Any) -> None:
    pivot = saga.pivot
    for index, stage in enumerate(saga.stages):
        if isinstance(stage, Group):
            if stage.id == pivot:
                problem(
                    ("pivot",),
                    f"{pivot!r} is a parallel group; the pivot must be a single step (the point of no return "
                    "is one action that either happened or not); make the group's last step a step of its own",
                )
                return
            for member in stage.steps:
                if member.id == pivot:
                    problem(
                        ("pivot",),
                        f"the pivot {pivot!r} is inside the parallel group {stage.id!r} "
                        f"({format_path(member.path)}): its siblings may still fail after it committed; "
                        "put the pivot after the group, as a step of its own",
                    )
                    return
        elif stage.id == pivot:
            for later in saga.stages[index + 1 :]:
                for member in later.steps if isinstance(later, Group) else (later,):
                    if member.compensate:
                        problem(
                            (*member.path, "compensate"),
                            f"step {member.id!r} comes after the pivot {pivot!r}: steps after the pivot are "
                            "retried forward and never compensated; remove `compensate` or move the pivot",
                        )
            return
    names = ", ".join(s.id for s in saga.steps)
    problem(("pivot",), f"unknown step {pivot!r}; the steps are {names}")


def _check_size(saga: Saga, problem: Any) -> None:
    """Refuse, with the reason, a saga whose compiled expressions would exceed what the
    expression language accepts (they grow with the number of steps)."""
    longest = 0
    for expr in _expressions(_compile(saga)):
        longest = max(longest, len(expr))
    if longest > MAX_EXPRESSION:
        problem(
            ("steps",),
            f"too many steps ({len(saga.steps)}) for one compiled machine: an expression of "
            f"{longest} characters would be needed, fsm accepts {MAX_EXPRESSION}; use shorter step ids "
            "or split the saga into sagas invoked one from another",
        )


def _expressions(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        if set(node) == {"expr"} and isinstance(node["expr"], str):
            yield node["expr"]
            return
        for value in node.values():
            yield from _expressions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _expressions(value)


# -- compiling -------------------------------------------------------------------------


def compile_saga(saga: Saga | Mapping[str, Any], source: str | None = None) -> dict[str, Any]:
    """The machine definition (plain JSON data) that runs this saga.

    Start it with ``context={"runId": ..., "input": ...}``: ``runId`` is the prefix of
    every idempotency key (a machine started without one ends at once in ``rejected``).
    """
    return _compile(parse_saga(saga, source))


def _q(text: str) -> str:
    """A step id as an expression string literal (ids are restricted to safe characters)."""
    return "'" + text + "'"


def _num(value: float) -> Any:
    return int(value) if float(value).is_integer() else value


def _ms_key(value: float) -> str:
    return str(_num(value))


class _Compiler:
    def __init__(self, saga: Saga) -> None:
        self.saga = saga
        self.root = saga.id
        self.step_ids = [s.id for s in saga.steps]
        self.comp_order = [s.id for s in saga.compensable()]
        self.pivot_index = saga.pivot_index

    def ref(self, *keys: str) -> str:
        return "#" + ".".join((self.root, *keys))

    # -- context expressions -----------------------------------------------------------

    def rebuild(self, key: str, ids: Sequence[str], step: str, value: str) -> str:
        """``context.<key>`` with the entry of ``step`` replaced by ``value``."""
        parts = [f"{_q(i)}: {value if i == step else f'context.{key}[{_q(i)}]'}" for i in ids]
        return "{" + ", ".join(parts) + "}"

    def owed_with(self, step: str) -> str:
        """``owed`` with ``step`` added, kept in the order compensations run. Steps of
        later stages cannot be owed while ``step`` runs, so they are left out."""
        terms = [
            f"[{_q(i)}]" if i == step else f"([{_q(i)}] if {_q(i)} in context.owed else [])"
            for i in self.owed_scope(step)
        ]
        return " + ".join(terms) if terms else "[]"

    def owed_without(self, step: str) -> str:
        """``owed`` without ``step``. Its compensation runs only once every later stage's
        compensations are done, so only its own stage and earlier ones can be owed."""
        terms = [f"([{_q(i)}] if {_q(i)} in context.owed else [])" for i in self.owed_scope(step) if i != step]
        return " + ".join(terms) if terms else "[]"

    def owed_scope(self, step: str) -> list[str]:
        stage = self.saga.stage_index(step)
        return [i for i in self.comp_order if self.saga.stage_index(i) <= stage]

    # -- the machine -------------------------------------------------------------------

    def machine(self) -> dict[str, Any]:
        saga = self.saga
        first_comp = self.comp_stage_ids()
        definition: dict[str, Any] = {
            "id": self.root,
            "initial": "start",
            "context": {
                "runId": None,
                "input": None,
                "attempts": dict.fromkeys(self.step_ids, 0),
                "compensationAttempts": dict.fromkeys(self.comp_order, 0),
                "outputs": dict.fromkeys(self.step_ids),
                "completed": [],
                "uncertain": [],
                "owed": [],
                "compensated": [],
                "committed": False,
                "failure": None,
                "compensationError": None,
                "forwardError": None,
            },
            "meta": {"saga": {"id": saga.id, "pivot": saga.pivot, "steps": self.step_ids}},
            "states": {
                "start": {
                    "description": "Checks that the run has an id (the prefix of every idempotency key).",
                    "always": [
                        {"guard": {"expr": "not context.runId"}, "target": "rejected"},
                        {"target": "steps"},
                    ],
                },
                "steps": {
                    "description": "The steps, in order.",
                    "initial": saga.stages[0].id,
                    "states": {stage.id: self.forward_stage(i) for i, stage in enumerate(saga.stages)},
                },
            },
            "output": {"expr": "event.output"},
        }
        if saga.description:
            definition["description"] = saga.description
        states = definition["states"]
        if first_comp:
            states["compensating"] = {
                "description": "Compensations of the steps that completed (or may have), latest first.",
                "initial": first_comp[0],
                "states": {
                    stage_id: self.comp_stage(stage_id, first_comp[k + 1] if k + 1 < len(first_comp) else None)
                    for k, stage_id in enumerate(first_comp)
                },
            }
            states["compensation_stuck"] = {
                "description": "A compensation failed after its retries; `owed` lists what is still owed.",
                "tags": ["stuck"],
                "on": {
                    RESUME_COMPENSATION: {
                        "target": "compensating",
                        "actions": {"type": "assign", "assignment": {"compensationError": None}},
                    },
                    ABANDON: "compensation_failed",
                },
            }
            states["compensation_failed"] = {
                "type": "final",
                "output": {"expr": self.output("compensation_failed", "failure", "compensationError", "owed")},
            }
        if self.pivot_index is not None and self.pivot_index + 1 < len(saga.stages):
            states["forward_stuck"] = {
                "description": "A step after the pivot failed after its retries; it must be completed, not undone.",
                "tags": ["stuck"],
                "on": {
                    RESUME_FORWARD: {
                        "target": "steps." + saga.stages[self.pivot_index + 1].id,
                        "actions": {"type": "assign", "assignment": {"forwardError": None}},
                    },
                    ABANDON: "forward_failed",
                },
            }
            states["forward_failed"] = {
                "type": "final",
                "output": {"expr": self.output("forward_failed", "forwardError", "outputs")},
            }
        states["completed"] = {"type": "final", "output": {"expr": self.output("completed", "outputs")}}
        states["compensated"] = {"type": "final", "output": {"expr": self.output("compensated", "failure")}}
        states["rejected"] = {
            "type": "final",
            "output": {
                "status": "rejected",
                "error": "no runId: start the saga with context={'runId': ..., 'input': ...}",
            },
        }
        return definition

    def output(self, status: str, *keys: str) -> str:
        fields = [f"'status': {_q(status)}", "'runId': context.runId"]
        fields += [f"{_q(k)}: context.{k}" for k in keys]
        fields += ["'completed': context.completed", "'compensated': context.compensated"]
        return "{" + ", ".join(fields) + "}"

    # -- forward -------------------------------------------------------------------------

    def after_pivot(self, index: int) -> bool:
        return self.pivot_index is not None and index > self.pivot_index

    def forward_stage(self, index: int) -> dict[str, Any]:
        stage = self.saga.stages[index]
        nxt = self.saga.stages[index + 1].id if index + 1 < len(self.saga.stages) else None
        forward_target = self.ref("steps", nxt) if nxt else self.ref("completed")
        if self.after_pivot(index):
            on_done = [
                {"guard": {"expr": "context.forwardError != None"}, "target": self.ref("forward_stuck")},
                {"target": forward_target},
            ]
        else:
            comp = self.comp_stage_ids()
            on_fail = self.ref("compensating") if comp else self.ref("compensated")
            on_done = [{"guard": {"expr": "context.failure != None"}, "target": on_fail}, {"target": forward_target}]
        if isinstance(stage, Group):
            node: dict[str, Any] = {
                "type": "parallel",
                "states": {s.id: self.forward_task(s, index) for s in stage.steps},
                "onDone": on_done,
            }
            if stage.description:
                node["description"] = stage.description
            node["meta"] = {"saga": {"group": stage.id, "phase": "action"}}
            return node
        node = self.forward_task(stage, index)
        node["onDone"] = on_done
        return node

    def forward_task(self, step: Step, index: int) -> dict[str, Any]:
        sid = _q(step.id)
        counter = f"context.attempts[{sid}]"
        post = self.after_pivot(index)
        is_pivot = step.id == self.saga.pivot
        may_owe = bool(step.compensate) and not post
        success: dict[str, Any] = {
            "outputs": {"expr": self.rebuild("outputs", self.step_ids, step.id, "event.output")},
            "completed": {"expr": f"context.completed + [{sid}]"},
        }
        if may_owe:
            success["owed"] = {"expr": self.owed_with(step.id)}
        if is_pivot:
            success["owed"] = []
            success["committed"] = True
        uncertain: dict[str, Any] = {
            "uncertain": {"expr": f"context.uncertain if {sid} in context.uncertain else context.uncertain + [{sid}]"}
        }
        if may_owe:
            uncertain["owed"] = {"expr": self.owed_with(step.id)}
        failure_key = "forwardError" if post else "failure"

        def failed(error: str, outcome: str) -> dict[str, Any]:
            record = f"{{'step': {sid}, 'error': {error}, 'attempts': {counter}, 'outcome': {_q(outcome)}}}"
            return {failure_key: {"expr": f"context.{failure_key} if context.{failure_key} != None else {record}"}}

        input_expr = (
            "{"
            f"'idempotencyKey': str(context.runId) + ':' + {sid} + ':' + str({counter}), "
            f"'runId': context.runId, 'step': {sid}, 'attempt': {counter}, "
            "'input': context.input, 'outputs': context.outputs"
            "}"
        )
        timeout_error = _q(f"timed out after {_ms_key(step.timeout)} ms") if step.timeout else ""
        node = self.task(
            step=step,
            phase="action",
            counter_key="attempts",
            counter_ids=self.step_ids,
            service=step.action,
            policy=step.retry,
            timeout=step.timeout,
            input_expr=input_expr,
            on_success=success,
            on_unknown=uncertain,
            on_exhausted=lambda unknown: failed(timeout_error if unknown == "timeout" else _ERROR_TEXT, unknown),
            skip_guard=f"{sid} in context.completed" if post else None,
        )
        node["meta"] = {"saga": {"step": step.id, "phase": "action", "pivot": is_pivot, "afterPivot": post}}
        if step.description:
            node["description"] = step.description
        return node

    # -- compensation ----------------------------------------------------------------

    @functools.cached_property
    def _comp_stages(self) -> list[str]:
        owed = set(self.comp_order)
        out: list[str] = []
        last = len(self.saga.stages) - 1 if self.pivot_index is None else self.pivot_index
        for stage in reversed(self.saga.stages[: last + 1]):
            members = stage.steps if isinstance(stage, Group) else (stage,)
            if any(m.id in owed for m in members):
                out.append(stage.id)
        return out

    def comp_stage_ids(self) -> list[str]:
        """Ids of the stages with something to compensate, in compensation order."""
        return self._comp_stages

    def comp_stage(self, stage_id: str, nxt: str | None) -> dict[str, Any]:
        stage = next(s for s in self.saga.stages if s.id == stage_id)
        on_done = [
            {"guard": {"expr": "context.compensationError != None"}, "target": self.ref("compensation_stuck")},
            {"target": self.ref("compensating", nxt) if nxt else self.ref("compensated")},
        ]
        if isinstance(stage, Group):
            return {
                "type": "parallel",
                "states": {s.id: self.comp_task(s) for s in stage.steps if s.compensate},
                "onDone": on_done,
                "meta": {"saga": {"group": stage.id, "phase": "compensate"}},
            }
        node = self.comp_task(stage)
        node["onDone"] = on_done
        return node

    def comp_task(self, step: Step) -> dict[str, Any]:
        assert step.compensate is not None
        sid = _q(step.id)
        counter = f"context.compensationAttempts[{sid}]"
        input_expr = (
            "{"
            f"'idempotencyKey': str(context.runId) + ':' + {sid} + ':compensate:' + str({counter}), "
            f"'runId': context.runId, 'step': {sid}, 'attempt': {counter}, "
            f"'stepKey': str(context.runId) + ':' + {sid}, 'actionAttempts': context.attempts[{sid}], "
            f"'outcome': 'completed' if {sid} in context.completed else 'unknown', "
            f"'output': context.outputs[{sid}], 'input': context.input"
            "}"
        )
        timeout_error = (
            _q(f"timed out after {_ms_key(step.compensation_timeout)} ms") if step.compensation_timeout else ""
        )

        def stuck(unknown: str) -> dict[str, Any]:
            error = timeout_error if unknown == "timeout" else _ERROR_TEXT
            record = f"{{'step': {sid}, 'error': {error}, 'attempts': {counter}}}"
            return {
                "compensationError": {
                    "expr": f"context.compensationError if context.compensationError != None else {record}"
                }
            }

        node = self.task(
            step=step,
            phase="compensate",
            counter_key="compensationAttempts",
            counter_ids=self.comp_order,
            service=step.compensate,
            policy=step.compensation_retry,
            timeout=step.compensation_timeout,
            input_expr=input_expr,
            on_success={
                "owed": {"expr": self.owed_without(step.id)},
                "compensated": {"expr": f"context.compensated + [{sid}]"},
            },
            on_unknown=None,
            on_exhausted=stuck,
            skip_guard=f"not ({sid} in context.owed)",
        )
        node["meta"] = {"saga": {"step": step.id, "phase": "compensate"}}
        return node

    # -- one retried call ----------------------------------------------------------------

    def task(
        self,
        *,
        step: Step,
        phase: str,
        counter_key: str,
        counter_ids: Sequence[str],
        service: str,
        policy: RetryPolicy,
        timeout: float | None,
        input_expr: str,
        on_success: dict[str, Any],
        on_unknown: dict[str, Any] | None,
        on_exhausted: Any,
        skip_guard: str | None,
    ) -> dict[str, Any]:
        """A compound state that calls ``service`` until it succeeds or the policy's
        round of attempts is used up, ending in the final child ``ok`` or ``failed``.

        ``on_unknown`` are context updates for an attempt whose outcome is unknown
        (timeout, :class:`OutcomeUnknown`); ``on_exhausted(kind)`` those for the last
        failed attempt of a round (``kind`` is ``failed``, ``unknown`` or ``timeout``).
        ``skip_guard``: when it holds on entry, the task ends at once in ``ok``.
        """
        sid = _q(step.id)
        counter = f"context.{counter_key}[{sid}]"
        invoke_id = f"{phase}_{step.id}"
        retry_event = f"saga.retry.{phase}.{step.id}"
        retries = policy.attempts != 1
        left = None if policy.attempts == 0 else f"{counter} % {policy.attempts} != 0"

        def assign(updates: Mapping[str, Any]) -> list[dict[str, Any]]:
            return [{"type": "assign", "assignment": dict(updates)}] if updates else []

        def outcome(kind: str, unknown_updates: Mapping[str, Any] | None) -> list[dict[str, Any]]:
            """Transitions for a failed attempt: retry while the round lasts, else fail."""
            base = dict(unknown_updates or {})
            out: list[dict[str, Any]] = []
            if retries:
                retry: dict[str, Any] = {} if left is None else {"guard": {"expr": left}}
                retry["target"] = "wait"
                if base:
                    retry["actions"] = assign(base)
                out.append(retry)
            if left is not None or not retries:
                out.append({"target": "failed", "actions": assign({**base, **on_exhausted(kind)})})
            return out

        errors: list[dict[str, Any]] = []
        if on_unknown is not None:
            for transition in outcome("unknown", on_unknown):
                guard = transition.pop("guard", {}).get("expr")
                errors.append({"guard": {"expr": f"{_UNKNOWN} and {guard}" if guard else _UNKNOWN}, **transition})
        errors.extend(outcome("failed", None))
        attempt: dict[str, Any] = {
            "entry": {
                "type": "assign",
                "assignment": {
                    counter_key: {"expr": self.rebuild(counter_key, counter_ids, step.id, f"{counter} + 1")}
                },
            },
            "invoke": {
                "id": invoke_id,
                "src": service,
                "input": {"expr": input_expr},
                "onDone": {"target": "ok", "actions": assign(on_success)},
                "onError": errors,
            },
        }
        if timeout is not None:
            attempt["after"] = {_ms_key(timeout): outcome("timeout", on_unknown)}
        states: dict[str, Any] = {}
        if skip_guard is not None:
            states["check"] = {"always": [{"guard": {"expr": skip_guard}, "target": "ok"}, {"target": "attempt"}]}
        states["attempt"] = attempt
        if retries:
            states["wait"] = {
                "entry": {
                    "type": "raise",
                    "event": {"type": retry_event},
                    "id": retry_event,
                    "delay": self.delay(policy, counter),
                },
                "exit": {"type": "cancel", "id": retry_event},
                "on": {retry_event: "attempt"},
            }
        states["ok"] = {"type": "final"}
        states["failed"] = {"type": "final"}
        return {"initial": "check" if skip_guard is not None else "attempt", "states": states}

    def delay(self, policy: RetryPolicy, counter: str) -> Any:
        """The backoff as a number, or as an expression of the attempt counter."""
        cap = policy.exponent_cap
        if cap == 0:
            return _num(min(policy.initial_interval, policy.ceiling))
        n = f"{counter} - 1" if policy.attempts == 0 else f"({counter} - 1) % {policy.attempts}"
        i, c, m = (repr(_num(v)) for v in (policy.initial_interval, policy.backoff_coefficient, policy.ceiling))
        return {"expr": f"min({i} * {c} ** min({n}, {cap}), {m})"}


def _compile(saga: Saga) -> dict[str, Any]:
    return _Compiler(saga).machine()


def saga_context(run_id: str, input: Any = None) -> dict[str, Any]:
    """The context to start a compiled saga with."""
    return {"runId": run_id, "input": input}


def saga_status(snapshot: Any) -> dict[str, Any]:
    """Where a saga run stands, as a dict with ``status``: the output of a finished run,
    or for a running / stuck one the step states and what is owed."""
    if snapshot.status == "done":
        result: dict[str, Any] = dict(snapshot.output)
        return result
    ctx = snapshot.context
    status = "running" if snapshot.status == "active" else snapshot.status  # "error" / "stopped"
    for name in STUCK_STATES:
        if snapshot.matches(name):
            status = name
    if snapshot.matches("compensating"):
        status = "compensating"
    return {
        "status": status,
        "runId": ctx.get("runId"),
        "completed": ctx.get("completed"),
        "owed": ctx.get("owed"),
        "compensated": ctx.get("compensated"),
        "failure": ctx.get("failure"),
        "compensationError": ctx.get("compensationError"),
        "forwardError": ctx.get("forwardError"),
    }
