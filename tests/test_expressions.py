"""The safe expression language (``{"expr": "..."}`` in guards, assignments, outputs...).

What it computes, what it refuses at load (with the JSON path of the offending
expression), and that evaluation cannot do unbounded work.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

import fsm
from fsm import DefinitionError, ExpressionError, Machine, StepError
from fsm.expressions import Expression

CONTEXT: dict[str, Any] = {
    "n": 3,
    "s": "Hello",
    "items": [1, 2, 3],
    "user": {"name": "ada", "address": {"city": "London"}, "tags": ["a", "b"]},
    "empty": [],
    "flag": False,
    "none": None,
}
EVENT: dict[str, Any] = {"type": "PAY", "amount": 5, "k": 1}
PARAMS: dict[str, Any] = {"max": 4}


def evaluate(source: str, context: Any = None, event: Any = None, params: Any = None) -> Any:
    env = {
        "context": CONTEXT if context is None else context,
        "event": EVENT if event is None else event,
        "params": PARAMS if params is None else params,
    }
    return Expression(source, "test")(env)


# ------------------------------------------------------------------------- what it computes


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # arithmetic
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 - 10", -3),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("-7 // 2", -4),
        ("7 % 3", 1),
        ("2 ** 10", 1024),
        ("-2 ** 2", -4),
        ("-context.n", -3),
        ("+context.n", 3),
        ("context.n * 2 + event.amount", 11),
        ("1.5 + 1", 2.5),
        ("'ab' + 'cd'", "abcd"),
        ("'ab' * 3", "ababab"),
        ("context.items + [4]", [1, 2, 3, 4]),
        ("[0] * 3", [0, 0, 0]),
        # comparisons
        ("context.n == 3", True),
        ("context.n != 3", False),
        ("context.n < 4", True),
        ("context.n <= 3", True),
        ("context.n > 3", False),
        ("context.n >= 3", True),
        ("1 < context.n < 5", True),
        ("1 < context.n < 2", False),
        ("context.none is None", True),
        ("context.none is not null", False),
        ("context.s == 'Hello'", True),
        # boolean operators (short-circuit, value-returning like Python)
        ("context.n > 2 and event.amount > 4", True),
        ("context.n > 2 and event.amount > 5", False),
        ("context.flag or context.n", 3),
        ("context.flag and 1 / 0", False),
        ("context.n or 1 / 0", 3),
        ("not context.flag", True),
        ("not context.items", False),
        ("not context.empty", True),
        # membership
        ("2 in context.items", True),
        ("5 in context.items", False),
        ("5 not in context.items", True),
        ("'ell' in context.s", True),
        ("'name' in context.user", True),
        ("'b' in context.user.tags", True),
        # conditional expression
        ("'big' if context.n > 2 else 'small'", "big"),
        ("'big' if context.n > 5 else 'small'", "small"),
        ("1 if context.missing else 2", 2),
        # literals
        ("{'a': 1, 'b': [context.n, event.amount]}", {"a": 1, "b": [3, 5]}),
        ("[1, 'two', null, true]", [1, "two", None, True]),
        ("(1, 2)", [1, 2]),
        ("[]", []),
        ("{}", {}),
        ("'it''s'", "its"),
        # aliases
        ("true", True),
        ("false", False),
        ("null", None),
        ("True and not False", True),
        ("None", None),
        # reading data
        ("context.user.name", "ada"),
        ("context.user.address.city", "London"),
        ("context['user']['address']['city']", "London"),
        ("context.items[0]", 1),
        ("context.items[-1]", 3),
        ("context.user.tags[1]", "b"),
        ("event.type", "PAY"),
        ("event['amount']", 5),
        ("params.max", 4),
        # missing keys read None, never raise
        ("context.missing", None),
        ("context.missing.deeper.still", None),
        ("context.user.phone", None),
        ("context.items[10]", None),
        ("context.n.x", None),
        ("context['missing']", None),
        ("event.nothing", None),
        ("input", None),
        ("context.missing == null", True),
        # whitelisted functions
        ("len(context.items)", 3),
        ("len(context.s)", 5),
        ("min(context.items)", 1),
        ("max(4, context.n, 9)", 9),
        ("abs(-3)", 3),
        ("round(2.567, 2)", 2.57),
        ("round(2.5)", 2),
        ("int('12') + 1", 13),
        ("int(3.9)", 3),
        ("float('1.5')", 1.5),
        ("str(12) + 'x'", "12x"),
        ("bool(context.empty)", False),
        ("sum(context.items)", 6),
        ("any([false, true])", True),
        ("all([true, false])", False),
        ("sorted([3, 1, 2])", [1, 2, 3]),
        ("lower(context.s)", "hello"),
        ("upper(context.s)", "HELLO"),
        ("startswith(context.s, 'He')", True),
        ("endswith(context.s, 'x')", False),
        ("keys(context.user.address)", ["city"]),
        ("values(context.user.address)", ["London"]),
        ("get(context.user, 'name')", "ada"),
        ("get(context.user, 'phone', 'n/a')", "n/a"),
        ("get(context.items, 1)", 2),
        ("floor(2.7)", 2),
        ("ceil(2.1)", 3),
        ("len(keys(context)) > 3", True),
    ],
)
def test_evaluation(source: str, expected: Any) -> None:
    result = evaluate(source)
    assert result == expected
    assert type(result) is type(expected)


def test_expression_keeps_source_and_names() -> None:
    expr = Expression("context.n + event.amount", "states.a.guard")
    assert expr.source == "context.n + event.amount"
    assert expr.path == "states.a.guard"
    assert expr.names == {"context", "event"}


def test_evaluation_does_not_mutate_data() -> None:
    context = json.loads(json.dumps(CONTEXT))
    evaluate("context.items + [4]", context=context)
    evaluate("sorted(context.items)", context=context)
    assert context == CONTEXT


@pytest.mark.parametrize(
    "source",
    [
        "1 / 0",
        "context.s + 1",
        "context.missing + 1",
        "len(context.n)",
        "int('abc')",
        "context.items < 'a'",
        "sorted([1, 'a'])",
        "float(10 ** 400)",
        "context['__class__']",
    ],
)
def test_runtime_errors_are_expression_errors(source: str) -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate(source)
    assert info.value.expression == source
    assert info.value.path == "test"
    assert source in str(info.value)


# ------------------------------------------------------------------------- inside machines


def counter(guard_expr: str, assign_expr: str) -> Machine:
    return Machine.from_dict(
        {
            "id": "counter",
            "initial": "counting",
            "context": {"n": 0, "log": []},
            "states": {
                "counting": {
                    "on": {
                        "ADD": [
                            {
                                "guard": {"expr": guard_expr},
                                "actions": {
                                    "type": "assign",
                                    "assignment": {
                                        "n": {"expr": assign_expr},
                                        "log": {"expr": "context.log + [event.by]"},
                                    },
                                },
                            },
                            {"target": "full"},
                        ]
                    }
                },
                "full": {
                    "type": "final",
                    "output": {"total": {"expr": "context.n"}, "fixed": 1},
                },
            },
            "output": {"expr": "event.output"},
        }
    )


def test_expressions_drive_a_machine() -> None:
    machine = counter("context.n < 10", "context.n + event.by")
    snap, _ = machine.initial_transition()
    for by in (3, 4, 5):
        snap, _ = machine.transition(snap, {"type": "ADD", "by": by})
    assert snap.context == {"n": 12, "log": [3, 4, 5]}
    assert snap.value == "counting"
    snap, _ = machine.transition(snap, {"type": "ADD", "by": 1})
    assert snap.status == "done"
    assert snap.value == "full"
    assert snap.output == {"total": 12, "fixed": 1}


def test_expression_guard_sees_params_from_the_definition() -> None:
    machine = Machine.from_dict(
        {
            "id": "m",
            "initial": "a",
            "states": {
                "a": {"on": {"GO": {"target": "b", "guard": {"expr": "event.k == 1"}}}},
                "b": {},
            },
        }
    )
    snap, _ = machine.initial_transition()
    same, effects = machine.transition(snap, {"type": "GO", "k": 0})
    assert same is snap
    assert effects == []
    moved, _ = machine.transition(snap, {"type": "GO", "k": 1})
    assert moved.value == "b"


def test_failing_expression_in_a_step_is_a_step_error() -> None:
    machine = counter("true", "context.n + event.by")
    snap, _ = machine.initial_transition()
    before = snap.to_dict()
    with pytest.raises(StepError) as info:
        machine.transition(snap, {"type": "ADD", "by": "x"})
    assert isinstance(info.value.cause, ExpressionError)
    assert "context.n + event.by" in str(info.value)
    assert snap.to_dict() == before


# ------------------------------------------------------------------------- refused at load

HOSTILE = [
    "context.__class__",
    "().__class__.__bases__",
    "context.__class__.__mro__[1].__subclasses__()",
    "context._private",
    "event.__dict__",
    "__import__('os')",
    "__builtins__",
    "import os",
    "lambda: 1",
    "(lambda x: x)(1)",
    "[x for x in context.items]",
    "{x: 1 for x in [1]}",
    "{x for x in [1]}",
    "(x for x in [1])",
    "open('/etc/passwd')",
    "eval('1')",
    "exec('1')",
    "compile('1', 'f', 'eval')",
    "getattr(context, 'items')",
    "setattr(context, 'a', 1)",
    "globals()",
    "type(context)",
    "print(1)",
    "f'{context}'",
    "f'x'",
    "(y := 1)",
    "context.items.append(1)",
    "''.join(['a'])",
    "'{}'.format(1)",
    "len(x=1)",
    "len(*context.items)",
    "context.items[1:2]",
    "{**context}",
    "{1, 2}",
    "1 << 2",
    "1 & 2",
    "~1",
    "context @ context",
    "b'bytes'",
    "1j",
    "...",
    "unknown_name",
    "len",
    "await x",
    "1 if",
    "yield 1",
    "x = 1",
    "1 +" * 400 + "1",
]


def _with_guard(expr: str) -> dict[str, Any]:
    return {
        "id": "m",
        "initial": "a",
        "states": {"a": {"on": {"GO": {"target": "a", "guard": {"expr": expr}}}}},
    }


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_expressions_are_refused_at_load(source: str) -> None:
    start = time.process_time()
    with pytest.raises(DefinitionError) as info:
        Machine.from_dict(_with_guard(source))
    assert time.process_time() - start < 1.0
    problems = info.value.problems
    assert len(problems) == 1
    assert problems[0].path == "states.a.on.GO.guard"
    assert "states.a.on.GO.guard" in str(info.value)
    assert "expression" in problems[0].message


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("context.__class__", ["'__class__'", "not allowed"]),
        ("open('x')", ["'open'", "not allowed", "len"]),
        ("eval('1')", ["'eval'", "not allowed"]),
        ("getattr(context, 'a')", ["'getattr'", "not allowed"]),
        ("lambda: 1", ["lambda"]),
        ("[x for x in context.items]", ["comprehension"]),
        ("f'{context}'", ["f-string"]),
        ("(y := 1)", [":="]),
        ("import os", ["syntax"]),
        ("nope + 1", ["'nope'", "context"]),
    ],
)
def test_refusals_explain_themselves(source: str, words: list[str]) -> None:
    with pytest.raises(DefinitionError) as info:
        Machine.from_dict(_with_guard(source))
    message = info.value.problems[0].message
    for word in words:
        assert word in message


def _machine_with(where: str, expr: str) -> tuple[dict[str, Any], str]:
    """A definition with ``expr`` placed at ``where``, and the path the error must name."""
    value = {"expr": expr}
    state: dict[str, Any] = {}
    root: dict[str, Any] = {"id": "m", "initial": "a", "states": {"a": state, "done": {"type": "final"}}}
    if where == "assign":
        state["entry"] = [{"type": "log"}, {"type": "assign", "assignment": {"x": value}}]
        return root, "states.a.entry[1].assignment.x"
    if where == "raise":
        state["on"] = {"GO": {"actions": {"type": "raise", "event": {"type": "E", "v": value}}}}
        return root, "states.a.on.GO.actions.event.v"
    if where == "final-output":
        root["states"]["done"]["output"] = {"deep": [1, value]}
        return root, "states.done.output.deep[1]"
    if where == "root-output":
        root["output"] = value
        return root, "output"
    if where == "nested-guard":
        state["on"] = {"GO": {"guard": {"type": "and", "guards": ["ok", {"type": "not", "guard": value}]}}}
        return root, "states.a.on.GO.guard.guards[1].guard"
    if where == "always-guard":
        state["always"] = [{"target": "done", "guard": value}]
        return root, "states.a.always[0].guard"
    if where == "log":
        state["exit"] = {"type": "log", "message": value}
        return root, "states.a.exit.message"
    if where == "invoke-input":
        state["invoke"] = {"src": "svc", "input": {"v": value}}
        return root, "states.a.invoke.input.v"
    raise AssertionError(where)


@pytest.mark.parametrize(
    "where",
    ["assign", "raise", "final-output", "root-output", "nested-guard", "always-guard", "log", "invoke-input"],
)
@pytest.mark.parametrize("expr", ["context.__class__", "open('/etc/passwd')", "lambda: 0"])
def test_refused_everywhere_with_the_json_path(where: str, expr: str) -> None:
    definition, path = _machine_with(where, expr)
    with pytest.raises(DefinitionError) as info:
        Machine.from_dict(definition)
    assert len(info.value.problems) == 1
    assert path in str(info.value), str(info.value)


def test_several_hostile_expressions_all_reported() -> None:
    definition = {
        "id": "m",
        "initial": "a",
        "states": {
            "a": {
                "entry": {"type": "assign", "assignment": {"x": {"expr": "open('f')"}}},
                "on": {"GO": {"guard": {"expr": "context.__class__"}}},
            },
            "b": {"type": "final", "output": {"expr": "lambda: 1"}},
        },
    }
    with pytest.raises(DefinitionError) as info:
        Machine.from_dict(definition)
    text = str(info.value)
    assert len(info.value.problems) == 3
    for where in ("states.a.entry", "states.a.on.GO.guard", "states.b.output"):
        assert where in text


def test_valid_machine_with_expressions_everywhere_loads() -> None:
    for where in ("assign", "raise", "final-output", "root-output", "nested-guard", "always-guard", "log"):
        definition, _ = _machine_with(where, "context.n + 1 if context.n else 0")
        Machine.from_dict(definition)


# ------------------------------------------------------------------------- unbounded work

UNBOUNDED = [
    "'a' * 10**9",
    "10**9 * 'a'",
    "[0] * 10**9",
    "context.items * 10**8",
    "10 ** 10 ** 10",
    "2 ** 100000",
    "9 ** 9 ** 9",
    "(10 ** 1000) ** 1000",
    "(10 ** 1000) * (10 ** 1000) * (10 ** 1000) * (10 ** 1000) * (10 ** 1000)",
    "'a' * 99999 + 'b' * 99999",
    "str(10 ** 1000) * 1000",
    "int('9' * 5000)",
]


@pytest.mark.parametrize("source", UNBOUNDED)
def test_unbounded_work_is_refused_quickly(source: str) -> None:
    start = time.process_time()
    with pytest.raises(ExpressionError) as info:
        evaluate(source)
    assert time.process_time() - start < 1.0
    assert info.value.expression == source


@pytest.mark.parametrize("source", ["'a' * 10**9 == ''", "2 ** 100000 > 0", "-(10 ** 10 ** 10) < 0", "'%s' % 1"])
def test_unbounded_work_over_literals_is_refused_at_load(source: str) -> None:
    """No data can change these: they are refused when the machine loads, with the path."""
    with pytest.raises(DefinitionError) as info:
        Machine.from_dict(_with_guard(source))
    [problem] = info.value.problems
    assert problem.path == "states.a.on.GO.guard"
    assert source in problem.message


@pytest.mark.parametrize("source", ["'a' * context.big == ''", "2 ** context.huge > 0", "len([0] * 10**9) > 0"])
def test_unbounded_work_in_a_guard_is_a_step_error(source: str) -> None:
    machine = Machine.from_dict({**_with_guard(source), "context": {"big": 10**9, "huge": 100000}})
    snap, _ = machine.initial_transition()
    before = snap.to_dict()
    start = time.process_time()
    with pytest.raises(StepError) as info:
        machine.transition(snap, "GO")
    assert time.process_time() - start < 1.0
    assert isinstance(info.value.cause, ExpressionError)
    assert snap.to_dict() == before


def test_unbounded_work_in_an_actor_puts_it_in_error() -> None:
    machine = Machine.from_dict({**_with_guard("'a' * context.big == ''"), "context": {"big": 10**9}})
    actor = machine.start(clock=fsm.VirtualClock())
    errors: list[BaseException] = []
    actor.subscribe(None, errors.append)
    actor.send("GO")
    assert actor.snapshot.status == "error"
    assert actor.snapshot.value == "a"
    assert len(errors) == 1 and isinstance(errors[0], StepError)


# Some hostile expressions could hang the test process or exhaust its memory if the
# evaluator let them through, so they run in child processes (all at once, to keep the
# suite fast) with a memory cap and a CPU-time cap. Each child reports how it ended and
# the CPU time the evaluation took (CPU time, so a busy test machine does not matter).

CPU_LIMIT = 1.0  # seconds of CPU an evaluation may take
_CHILD_CPU_CAP = 1  # the child (import included) is killed by SIGXCPU after this many CPU seconds

_CHILD = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
resource.setrlimit(resource.RLIMIT_CPU, (CAP, CAP + 1))
from fsm.expressions import Expression
from fsm.errors import ExpressionError
source = sys.argv[1]
start = time.process_time()
try:
    result = Expression(source, "p")({"context": {}, "event": {}, "params": {}})
    outcome = {"refused": False}
except ExpressionError as exc:
    cause = exc.__cause__
    outcome = {"refused": True, "cause": type(cause).__name__ if cause else None}
except MemoryError:
    outcome = {"refused": False, "cause": "MemoryError"}
outcome["seconds"] = time.process_time() - start
print(json.dumps(outcome))
""".replace("CAP", str(_CHILD_CPU_CAP))


ISOLATED = [
    # controls: the harness sees the refusals that already work
    "'a' * 10**9",
    "2 ** 100000",
    # each of these once escaped the size checks (shared nested lists, % formatting,
    # quadratic sum of lists, a huge ndigits)
    "'%0999999999d' % 0",
    "str([[[0] * 100000] * 100000] * 100000)",
    "sum([[0] * 100000] * 100000, [])",
    "[[[0] * 100000] * 100000] * 100000 == [[[0] * 100000] * 100000] * 100000",
    "round(1, -10 ** 1000)",
]


@pytest.fixture(scope="module")
def isolated_outcomes() -> dict[str, dict[str, Any]]:
    sources = [p if isinstance(p, str) else p.values[0] for p in ISOLATED]
    procs = {
        src: subprocess.Popen(
            [sys.executable, "-c", _CHILD, src], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for src in sources
    }
    deadline = time.monotonic() + 120  # wall clock: only a safety net, the CPU cap ends hung children
    outcomes: dict[str, dict[str, Any]] = {}
    for src, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            outcomes[src] = {"refused": False, "timeout": True}
            continue
        if proc.returncode == 0:
            outcomes[src] = json.loads(out)
        elif proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            outcomes[src] = {"refused": False, "timeout": True}
        else:
            outcomes[src] = {"refused": False, "crash": err[-500:]}
    return outcomes


@pytest.mark.skipif(sys.platform == "win32", reason="uses the resource module")
@pytest.mark.parametrize("source", ISOLATED)
def test_hostile_work_is_refused_quickly_and_without_memory_blowup(
    isolated_outcomes: dict[str, dict[str, Any]], source: str
) -> None:
    outcome = isolated_outcomes[source]
    assert outcome.get("timeout") is not True, "evaluation did not finish"
    assert outcome["refused"], outcome
    assert outcome["cause"] != "MemoryError", outcome
    assert outcome["seconds"] < CPU_LIMIT, outcome


def test_source_length_and_complexity_are_bounded() -> None:
    with pytest.raises(DefinitionError) as info:
        Machine.from_dict(_with_guard("1 + " * 1000 + "1"))
    assert "states.a.on.GO.guard" in str(info.value)
    with pytest.raises(DefinitionError):
        Machine.from_dict(_with_guard("(" * 200 + "1" + ")" * 200 + " + 1" * 300))
    nested = "[" * 500 + "]" * 500
    start = time.process_time()
    with pytest.raises(DefinitionError) as info:
        Machine.from_dict(_with_guard(nested))
    assert time.process_time() - start < 1.0
