"""The machine JSON Schema and `fsm.schema.validate`.

Good definitions give no problem; each kind of mistake gives a problem at the exact path
with a message a person can act on; nothing makes `validate` raise. The compiled checker
is compared with jsonschema, the reference implementation, on generated documents.
"""

from __future__ import annotations

import copy
import datetime
import inspect
import sys
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fsm.schema as schema_mod
from fsm.errors import Problem, format_path
from fsm.schema import MAX_DEPTH, SCHEMA_ID, SchemaValidator, load_schema, validate, validator

# ----------------------------------------------------------------------------- fixtures

# A realistic machine as exported by Stately / written for XState v5, plus fsm's
# extensions (built-in action objects, expressions, options).
CHECKOUT: dict[str, Any] = {
    "$schema": SCHEMA_ID,
    "id": "checkout",
    "version": "1.2.0",
    "description": "Checkout of an online shop",
    "types": {"context": {}, "events": {}},
    "schemas": {"context": {"items": {"type": "array"}}},
    "options": {"max_microsteps": 500},
    "context": {"items": [], "retries": 0, "total": 0, "receipt": None, "address": {"city": None}},
    "initial": "cart",
    "tags": "shop",
    "meta": {"owner": "team-checkout"},
    "states": {
        "cart": {
            "tags": ["editable", "visible"],
            "description": "The customer fills the cart",
            "on": {
                "ADD_ITEM": {
                    "actions": [
                        {"type": "assign", "assignment": {"items": {"expr": "context.items + [event.item]"}}},
                        "track",
                        {"type": "track", "params": {"what": "add"}},
                    ]
                },
                "CHECKOUT": [
                    {
                        "target": "details",
                        "guard": {"type": "and", "guards": ["hasItems", {"type": "not", "guard": "isBlocked"}]},
                        "description": "Proceed when the cart is not empty",
                    },
                    {"actions": {"type": "log", "message": "empty cart", "label": "cart"}},
                ],
                "order.*": {"actions": {"type": "emit", "event": {"type": "orderEvent", "at": {"expr": "event.at"}}}},
                "*": {"target": "", "actions": "unhandled"},
            },
        },
        "details": {
            "id": "details",
            "type": "parallel",
            "states": {
                "address": {
                    "initial": "editing",
                    "states": {
                        "editing": {"on": {"ADDRESS_OK": "valid"}},
                        "valid": {"type": "final"},
                    },
                },
                "payment": {
                    "initial": {"target": "choosing", "actions": ["resetPayment"]},
                    "states": {
                        "choosing": {"on": {"PAY_CARD": "card", "BACK": "#checkout.cart"}},
                        "card": {"type": "final", "output": {"method": "card"}},
                        "hist": {"type": "history", "history": "deep", "target": "choosing"},
                    },
                },
            },
            "onDone": {"target": "paying", "reenter": False},
            "after": {"600000": {"target": "#checkout.cart", "description": "abandoned"}},
            "exit": {"type": "log"},
        },
        "paying": {
            "entry": {
                "type": "raise",
                "event": {"type": "TICK", "n": {"expr": "context.retries"}},
                "delay": 1000,
                "id": "tick",
            },
            "exit": [{"type": "cancel", "id": "tick"}],
            "invoke": {
                "id": "charge",
                "src": "chargeCard",
                "systemId": "payments",
                "input": {"total": {"expr": "context.total"}, "currency": "EUR"},
                "onDone": {
                    "target": "paid",
                    "actions": {"type": "assign", "assignment": {"receipt": {"expr": "event.output"}}},
                },
                "onError": [
                    {
                        "target": "paying",
                        "guard": {"expr": "context.retries < 3"},
                        "reenter": True,
                        "actions": {"type": "assign", "assignment": {"retries": {"expr": "context.retries + 1"}}},
                    },
                    {"target": "failed"},
                ],
                "onSnapshot": {"actions": "recordProgress"},
            },
            "after": {"retryDelay": "failed", "2.5": {"target": "paying", "reenter": True}},
            "always": [{"target": ["#details.address", "#details.payment.hist"], "guard": "needsDetails"}],
            "on": {"CANCEL": {"target": "cart", "guard": {"type": "stateIn", "state": {"details": "address"}}}},
        },
        "paid": {
            "type": "final",
            "output": {"expr": "context.receipt"},
            "meta": {"color": "green"},
            "description": "Done",
        },
        "failed": {
            "type": "final",
            "entry": [
                {"type": "sendParent", "event": {"type": "FAILED"}},
                {"type": "sendTo", "to": "logger", "event": {"type": "LOG", "level": 3}, "delay": "logDelay"},
                {
                    "type": "sendTo",
                    "to": "logger",
                    "event": {"type": "LOG"},
                    "delay": {"expr": "context.retries * 100"},
                },
                {"type": "stopChild", "id": "charge"},
                {"type": "stateIn-like name", "params": {}},
            ],
            "output": {"ok": False, "reason": {"expr": "'retries exhausted'"}},
        },
    },
    "output": {"ok": True},
}

GOOD: dict[str, Any] = {
    "empty": {},
    "minimal": {"initial": "a", "states": {"a": {}}},
    "checkout": CHECKOUT,
    "parallel root": {"type": "parallel", "states": {"r1": {}, "r2": {}}},
    "transition shorthands": {
        "initial": "a",
        "states": {"a": {"on": {"A": "b", "B": ["b", {"target": "a"}], "C": "", "D": [], "E": {}}}, "b": {}},
    },
    "targets": {"on": {"E": {"target": ["#m.a.b", ".child", "sibling", "a.b"]}}},
    "entry as one string": {"entry": "hello", "exit": []},
    "invoke list": {"invoke": [{"src": "a"}, {"src": "b", "id": "b"}]},
    "initial object": {"initial": {"target": "a", "description": "start", "meta": {}}, "states": {"a": {}}},
    "delay keys": {"after": {"0": "a", "1000": "a", "1.5": "a", "retry_delay": "a", "$fast": "a"}},
    "guards": {
        "on": {
            "E": [
                {"guard": "simple"},
                {"guard": {"type": "named", "params": {"max": 3}}},
                {"guard": {"type": "or", "guards": [{"expr": "x"}, {"type": "stateIn", "state": "#a"}]}},
            ]
        }
    },
    "log of any JSON": {"entry": [{"type": "log"}, {"type": "log", "message": {"any": ["json", 1, None]}}]},
    "options": {"options": {"max_microsteps": 10}, "version": "2"},
    "string tags": {"tags": "one"},
}


def messages(definition: object) -> list[str]:
    return [str(p) for p in validate(definition)]


# ----------------------------------------------------------------------------- the schema file


def test_schema_is_valid_draft_2020_12_with_the_published_id() -> None:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"] == SCHEMA_ID == "https://fsm.dev/schema/machine.schema.json"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_load_schema_returns_a_fresh_copy() -> None:
    first = load_schema()
    first["title"] = "changed"
    assert load_schema()["title"] != "changed"
    assert validator() is validator()


def _described(schema: dict[str, Any], node: Any) -> bool:
    while isinstance(node, dict):
        if "title" in node and "description" in node:
            return True
        if "$ref" not in node:
            return False
        node = SchemaValidator(schema)._resolve(node["$ref"])
    return False


def test_every_definition_and_property_has_a_title_and_description() -> None:
    schema = load_schema()
    missing: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                if not _described(schema, sub):
                    missing.append(f"{where}/properties/{name}")
            for key, sub in node.items():
                if key not in ("if", "not"):  # conditions, not documentation
                    walk(sub, f"{where}/{key}")
        elif isinstance(node, list):
            for index, sub in enumerate(node):
                walk(sub, f"{where}/{index}")

    for name, definition in schema["$defs"].items():
        if not _described(schema, definition):
            missing.append(f"#/$defs/{name}")
    assert _described(schema, schema)
    walk(schema, "#")
    assert missing == []


def test_the_root_allows_a_schema_key_for_editors() -> None:
    assert validate({"$schema": SCHEMA_ID}) == []
    assert messages({"$schema": 1}) == ["$schema: expected a string, got 1"]


def test_unsupported_keywords_are_refused_when_compiling() -> None:
    with pytest.raises(ValueError, match="unsupported JSON Schema keyword 'maxLength'"):
        SchemaValidator({"type": "string", "maxLength": 3})
    with pytest.raises(ValueError, match="only local"):
        SchemaValidator({"$ref": "https://example.com/x.json"})


# ----------------------------------------------------------------------------- good definitions


@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_definitions_have_no_problem(name: str) -> None:
    definition = GOOD[name]
    assert validate(definition) == []
    assert validator().is_valid(definition)
    assert jsonschema.Draft202012Validator(load_schema()).is_valid(definition)


def test_validate_does_not_modify_the_definition() -> None:
    definition = copy.deepcopy(CHECKOUT)
    definition["states"]["cart"]["on"]["ADD_ITEM"]["tagret"] = "x"
    before = copy.deepcopy(definition)
    assert validate(definition)
    assert definition == before


def test_a_yaml_definition_validates() -> None:
    yaml = pytest.importorskip("yaml")
    text = """
    id: light
    initial: green
    states:
      green:
        "on": {TIMER: yellow}
        after: {1000: yellow}
      yellow:
        "on":
          TIMER: {target: red, actions: [{type: log, label: light}]}
      red:
        type: final
    """
    definition = yaml.safe_load(text)
    definition["states"]["green"]["after"] = {str(k): v for k, v in definition["states"]["green"]["after"].items()}
    assert validate(definition) == []


# ----------------------------------------------------------------------------- bad definitions

BAD: list[tuple[str, object, str, str]] = [
    # (case, definition, path, message)
    ("wrong type", {"id": 42}, "id", "expected a string, got 42"),
    ("wrong type bool", {"description": True}, "description", "expected a string, got true"),
    ("context not object", {"context": []}, "context", "expected an object, got an empty array"),
    ("meta not object", {"meta": "x"}, "meta", 'expected an object, got "x"'),
    (
        "unknown key with suggestion",
        {"states": {"a": {"on": {"GO": {"tagret": "b"}}}}},
        "states.a.on.GO.tagret",
        "unknown key 'tagret' (did you mean 'target'?)",
    ),
    ("unknown state key", {"intial": "a"}, "intial", "unknown key 'intial' (did you mean 'initial'?)"),
    (
        "unknown key case",
        {"states": {"a": {"onDONE": "x"}}},
        "states.a.onDONE",
        "unknown key 'onDONE' (did you mean 'onDone'?)",
    ),
    (
        "unknown key without suggestion lists the keys",
        {"options": {"zzz": 1}},
        "options.zzz",
        "unknown key 'zzz'; expected one of: 'max_microsteps'",
    ),
    (
        "cond renamed to guard",
        {"on": {"E": {"target": "a", "cond": "ok"}}},
        "on.E.cond",
        "'cond' was renamed to 'guard' in XState v5",
    ),
    (
        "cond in a list",
        {"on": {"E": ["a", {"target": "a", "cond": "ok"}]}},
        "on.E[1].cond",
        "'cond' was renamed to 'guard' in XState v5",
    ),
    (
        "internal replaced by reenter",
        {"always": {"target": "a", "internal": False}},
        "always.internal",
        "'internal' was replaced by 'reenter' in XState v5, with the opposite meaning: "
        "'internal: false' is 'reenter: true', and 'internal: true' is the default (omit it)",
    ),
    ("v4 onEntry", {"onEntry": "a"}, "onEntry", "unknown key 'onEntry': XState v4 'onEntry' is 'entry' in XState v5"),
    (
        "v4 data",
        {"states": {"f": {"type": "final", "data": {}}}},
        "states.f.data",
        "unknown key 'data': XState v4 'data' is 'output' in XState v5 (and an invoke's 'data' is 'input')",
    ),
    (
        "reenter is not a state key",
        {"reenter": True},
        "reenter",
        "unknown key 'reenter': 'reenter' belongs to a transition, not to a state",
    ),
    (
        "bad history value",
        {"states": {"h": {"type": "history", "history": "deeep"}}},
        "states.h.history",
        "expected one of 'shallow', 'deep', got \"deeep\" (did you mean 'deep'?)",
    ),
    (
        "bad type",
        {"states": {"a": {"type": "paralel"}}},
        "states.a.type",
        "expected one of 'atomic', 'compound', 'parallel', 'final', 'history', "
        "got \"paralel\" (did you mean 'parallel'?)",
    ),
    (
        "type not a string",
        {"type": 3},
        "type",
        "expected one of 'atomic', 'compound', 'parallel', 'final', 'history', got 3",
    ),
    ("empty event descriptor", {"on": {"": "a"}}, 'on[""]', "an event descriptor must not be empty"),
    (
        "misplaced wildcard",
        {"on": {"order*": "a"}},
        'on["order*"]',
        "a wildcard '*' is allowed only alone ('*') or as the last part after a dot ('order.*')",
    ),
    ("empty state key", {"states": {"": {}}}, 'states[""]', "a state key must not be empty"),
    (
        "dot in state key",
        {"states": {"a.b": {}}},
        'states["a.b"]',
        "a state key must not contain '.': '.' separates the parts of a target path ('a.b' is child 'b' of "
        "state 'a'); rename the state",
    ),
    (
        "negative delay key",
        {"after": {"-100": "a"}},
        "after.-100",
        "a delay is milliseconds written as a non-negative number ('1000') or the name of a delay provided to the "
        "machine ('retryDelay')",
    ),
    ("empty delay key", {"after": {"": "a"}}, 'after[""]', "a delay must not be empty"),
    (
        "negative delay",
        {"entry": {"type": "raise", "event": {"type": "E"}, "delay": -1}},
        "entry.delay",
        "must be >= 0, got -1",
    ),
    (
        "delay of a wrong type",
        {"entry": {"type": "raise", "event": {"type": "E"}, "delay": True}},
        "entry.delay",
        "expected a number, a string or an object, got true",
    ),
    (
        "transition neither string nor object",
        {"on": {"E": 42}},
        "on.E",
        "expected a string, an object or an array, got 42",
    ),
    ("target of a wrong type", {"on": {"E": {"target": 5}}}, "on.E.target", "expected a string or an array, got 5"),
    ("empty target list", {"on": {"E": {"target": []}}}, "on.E.target", "must not be an empty list"),
    ("empty target in a list", {"on": {"E": {"target": ["a", ""]}}}, "on.E.target[1]", "must not be empty"),
    ("reenter not boolean", {"on": {"E": {"reenter": "yes"}}}, "on.E.reenter", 'expected a boolean, got "yes"'),
    ("action of a wrong type", {"entry": [42]}, "entry[0]", "expected a string or an object, got 42"),
    ("empty action name", {"entry": ""}, "entry", "must not be empty"),
    ("action without type", {"entry": {"params": {}}}, "entry", "missing required key 'type'"),
    (
        "named action extra key",
        {"exit": {"type": "x", "prams": {}}},
        "exit.prams",
        "unknown key 'prams' (did you mean 'params'?)",
    ),
    ("params not an object", {"exit": {"type": "x", "params": [1]}}, "exit.params", "expected an object, got an array"),
    ("assign without assignment", {"entry": [{"type": "assign"}]}, "entry[0]", "missing required key 'assignment'"),
    (
        "assign with a typo",
        {"entry": [{"type": "assign", "assigment": {}}]},
        "entry[0].assigment",
        "unknown key 'assigment' (did you mean 'assignment'?)",
    ),
    (
        "raise with a string event",
        {"entry": {"type": "raise", "event": "GO"}},
        "entry.event",
        'expected an object, got "GO"',
    ),
    (
        "event without type",
        {"entry": {"type": "emit", "event": {"n": 1}}},
        "entry.event",
        "missing required key 'type'",
    ),
    ("sendTo without to", {"entry": {"type": "sendTo", "event": {"type": "E"}}}, "entry", "missing required key 'to'"),
    ("cancel without id", {"entry": {"type": "cancel"}}, "entry", "missing required key 'id'"),
    ("stopChild id type", {"entry": {"type": "stopChild", "id": 1}}, "entry.id", "expected a string, got 1"),
    ("log label type", {"entry": {"type": "log", "label": 1}}, "entry.label", "expected a string, got 1"),
    (
        "builtin with params",
        {"entry": {"type": "emit", "event": {"type": "E"}, "params": {}}},
        "entry.params",
        "unknown key 'params'; expected one of: 'type', 'event'",
    ),
    (
        "malformed expression",
        {"entry": {"type": "assign", "assignment": {"n": {"expr": 1}}}},
        "entry.assignment.n.expr",
        "expected a string, got 1",
    ),
    (
        "expression with another key",
        {"output": {"result": {"expr": "x", "lang": "py"}}},
        "output.result.lang",
        "unknown key 'lang': an object with an 'expr' key is an expression, exactly {\"expr\": \"...\"}",
    ),
    ("guard of a wrong type", {"on": {"E": {"guard": 1}}}, "on.E.guard", "expected a string or an object, got 1"),
    ("not without guard", {"on": {"E": {"guard": {"type": "not"}}}}, "on.E.guard", "missing required key 'guard'"),
    (
        "and without guards",
        {"on": {"E": {"guard": {"type": "and", "guards": []}}}},
        "on.E.guard.guards",
        "must not be an empty list",
    ),
    (
        "nested guard typo",
        {"on": {"E": {"guard": {"type": "or", "guards": ["a", {"type": "x", "parms": {}}]}}}},
        "on.E.guard.guards[1].parms",
        "unknown key 'parms' (did you mean 'params'?)",
    ),
    (
        "stateIn without state",
        {"on": {"E": {"guard": {"type": "stateIn"}}}},
        "on.E.guard",
        "missing required key 'state'",
    ),
    ("invoke without src", {"invoke": {"id": "x"}}, "invoke", "missing required key 'src'"),
    (
        "invoke in a list",
        {"invoke": [{"src": "a", "onDone": {"target": 1}}]},
        "invoke[0].onDone.target",
        "expected a string or an array, got 1",
    ),
    (
        "invoke typo",
        {"invoke": {"src": "a", "onErorr": "x"}},
        "invoke.onErorr",
        "unknown key 'onErorr' (did you mean 'onError'?)",
    ),
    ("initial of a wrong type", {"initial": 1}, "initial", "expected a string or an object, got 1"),
    ("initial object without target", {"initial": {"actions": []}}, "initial", "missing required key 'target'"),
    (
        "empty YAML state",
        {"states": {"idle": None}},
        "states.idle",
        "expected an object, got null (in YAML, a key with nothing after it is null: write {} for an empty object)",
    ),
    ("tags of a wrong type", {"tags": [1]}, "tags[0]", "expected a string, got 1"),
    ("max_microsteps too small", {"options": {"max_microsteps": 0}}, "options.max_microsteps", "must be >= 1, got 0"),
    (
        "max_microsteps not integer",
        {"options": {"max_microsteps": 1.5}},
        "options.max_microsteps",
        "expected an integer, got 1.5",
    ),
    (
        "history at the root",
        {"history": "deep"},
        "history",
        "unknown key 'history': 'history' belongs to a history state ('type': 'history')",
    ),
    (
        "infinite number",
        {"entry": {"type": "raise", "event": {"type": "E"}, "delay": float("inf")}},
        "entry.delay",
        "expected a finite number, got inf",
    ),
    ("nan", {"context": {"x": float("nan")}}, "context.x", "expected a finite number, got nan"),
]


@pytest.mark.parametrize(("case", "definition", "path", "message"), BAD, ids=[case for case, *_ in BAD])
def test_each_mistake_is_reported_at_its_path(case: str, definition: object, path: str, message: str) -> None:
    problems = validate(definition)
    assert [(p.path, p.message) for p in problems] == [(path, message)]
    (problem,) = problems
    assert format_path(problem.pointer) == problem.path


def test_a_transition_object_reports_its_real_problem_not_the_string_alternative() -> None:
    problems = validate(
        {"on": {"E": [{"tagret": "x"}, {"target": "y", "guard": {"type": "and", "guards": [{"tpye": "b"}]}}]}}
    )
    assert [str(p) for p in problems] == [
        "on.E[0].tagret: unknown key 'tagret' (did you mean 'target'?)",
        "on.E[1].guard.guards[0].tpye: unknown key 'tpye' (did you mean 'type'?)",
    ]
    assert problems[0].pointer == ("on", "E", 0, "tagret")


def test_several_problems_are_reported_at_once_in_document_order() -> None:
    definition = {
        "id": 1,
        "initial": "a",
        "states": {
            "b": {"type": "paralel", "on": {"GO": {"cond": "x"}}},
            "a": {"entry": [{"type": "raise"}, 7], "invoke": {}},
        },
        "versoin": "1",
    }
    assert messages(definition) == [
        "id: expected a string, got 1",
        "states.b.type: expected one of 'atomic', 'compound', 'parallel', 'final', 'history', got \"paralel\" "
        "(did you mean 'parallel'?)",
        "states.b.on.GO.cond: 'cond' was renamed to 'guard' in XState v5",
        "states.a.entry[0]: missing required key 'event'",
        "states.a.entry[1]: expected a string or an object, got 7",
        "states.a.invoke: missing required key 'src'",
        "versoin: unknown key 'versoin' (did you mean 'version'?)",
    ]


def test_problems_are_problem_values() -> None:
    (problem,) = validate({"states": {"a": {"on": {"order.*": 1}}}})
    assert problem == Problem(
        path='states.a.on["order.*"]',
        message="expected a string, an object or an array, got 1",
        pointer=("states", "a", "on", "order.*"),
    )


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ([], "<root>: expected an object (a machine definition), got an empty array"),
        ([1], "<root>: expected an object (a machine definition), got an array"),
        ("machine", '<root>: expected an object (a machine definition), got "machine"'),
        (
            None,
            "<root>: expected an object (a machine definition), got null "
            "(in YAML, a key with nothing after it is null: write {} for an empty object)",
        ),
        (3.5, "<root>: expected an object (a machine definition), got 3.5"),
    ],
)
def test_a_root_that_is_not_an_object(definition: object, message: str) -> None:
    assert messages(definition) == [message]


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        (
            {"context": {"when": datetime.date(2024, 1, 2)}},
            "context.when: expected a JSON value, got a Python "
            "datetime.date (YAML reads an unquoted date or time so: quote it)",
        ),
        ({"context": {"pair": (1, 2)}}, "context.pair: expected a JSON value, got a Python tuple (use a list)"),
        ({"states": {1: {}}}, "states: keys must be strings, got 1"),
        (
            {True: {"E": "a"}},
            "<root>: keys must be strings, got true (YAML 1.1 reads an unquoted on/off/yes/no "
            "as a boolean: quote the key)",
        ),
        ({"context": {"x": object}}, "context.x: expected a JSON value, got a Python type"),
    ],
)
def test_values_that_are_not_json(definition: object, message: str) -> None:
    assert messages(definition) == [message]


@pytest.mark.parametrize(
    "definition",
    [
        {"tags": [1] * 100_000},
        {"entry": [1] * 50_000},
        {"on": {f"E{i}": {"tagret": "x"} for i in range(30_000)}},
        {"states": {f"s{i}": {"type": "x"} for i in range(30_000)}},
    ],
    ids=["tags", "actions", "transitions", "states"],
)
def test_huge_broken_documents_give_a_bounded_list(definition: object) -> None:
    problems = validate(definition)
    assert len(problems) == schema_mod.MAX_PROBLEMS + 1
    assert str(problems[-1]) == "<root>: too many problems: only the first ones are shown"
    assert problems[0].path in ("tags[0]", "entry[0]", "on.E0.tagret", "states.s0.type")


# ----------------------------------------------------------------------------- depth


def _nested_states(levels: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(levels):
        child: dict[str, Any] = {}
        node["states"] = {"s": child}
        node = child
    return root


def _nested_guards(levels: int, leaf: object) -> dict[str, Any]:
    guard = leaf
    for i in range(levels):
        guard = {"type": "not", "guard": guard} if i % 2 else {"type": "and", "guards": [guard]}
    return {"on": {"E": {"guard": guard}}}


def _depth(value: object) -> int:
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        children = list(node.values()) if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is not None:
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def test_ten_thousand_nested_states_give_one_clean_problem() -> None:
    problems = validate(_nested_states(10_000))
    assert len(problems) == 1
    (problem,) = problems
    assert problem.message == f"nesting deeper than {MAX_DEPTH} levels"
    assert len(problem.pointer) == MAX_DEPTH
    assert problem.pointer[:4] == ("states", "s", "states", "s")


def test_deep_lists_and_guards_do_not_recurse() -> None:
    deep_list: object = "x"
    for _ in range(50_000):
        deep_list = [deep_list]
    assert [p.message for p in validate({"context": {"x": deep_list}})] == [f"nesting deeper than {MAX_DEPTH} levels"]
    assert [p.message for p in validate(_nested_guards(20_000, "g"))] == [f"nesting deeper than {MAX_DEPTH} levels"]


def _at_stack_depth(frames: int, fn: Any) -> Any:
    return fn() if frames <= 0 else _at_stack_depth(frames - 1, fn)


def test_the_deepest_allowed_document_validates_even_from_a_deep_call_stack() -> None:
    # the costliest nesting for the checker is guards; the bottom one is bad
    levels = 0
    while _depth(_nested_guards(levels + 1, {"tpye": "g"})) <= MAX_DEPTH:
        levels += 1
    definition = _nested_guards(levels, {"tpye": "g"})
    assert _depth(definition) == MAX_DEPTH
    states = _nested_states(MAX_DEPTH // 2 - 1)
    assert _depth(states) <= MAX_DEPTH
    depth_now = len(inspect.stack(0))
    spare = sys.getrecursionlimit() - depth_now - 700
    for document in (definition, states):
        problems = _at_stack_depth(spare, lambda document=document: validate(document))
        assert all("nesting" not in p.message and "internal" not in p.message for p in problems), problems
    messages_ = [p.message for p in _at_stack_depth(spare, lambda: validate(definition))]
    assert messages_ == ["unknown key 'tpye' (did you mean 'type'?)"]


# ----------------------------------------------------------------------------- properties

SCHEMA_WORDS = sorted(
    {key for definition in load_schema()["$defs"].values() for key in definition.get("properties", {})}
    | set(load_schema()["properties"])
)
VALUE_WORDS = [
    "assign",
    "raise",
    "sendTo",
    "sendParent",
    "cancel",
    "log",
    "emit",
    "stopChild",
    "and",
    "or",
    "not",
    "stateIn",
    "parallel",
    "final",
    "history",
    "deep",
    "shallow",
    "compound",
    "atomic",
    "",
    "a.b",
    "order.*",
    "*",
    "1000",
    "-5",
    "#id",
    ".child",
    "x",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from(VALUE_WORDS)
)
keys = st.sampled_from(SCHEMA_WORDS) | st.sampled_from(VALUE_WORDS) | st.text(max_size=6)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=40,
)


def _pointers(value: object, pointer: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    found = [pointer]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _pointers(item, (*pointer, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _pointers(item, (*pointer, index))
    return found


CHECKOUT_POINTERS = _pointers(CHECKOUT)


@st.composite
def mutated_checkouts(draw: st.DrawFn) -> dict[str, Any]:
    """The realistic machine with a few places replaced or extended by random values."""
    document = copy.deepcopy(CHECKOUT)
    for _ in range(draw(st.integers(1, 3))):
        pointer = draw(st.sampled_from(CHECKOUT_POINTERS[1:]))
        parent: Any = document
        try:
            for part in pointer[:-1]:
                parent = parent[part]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent[draw(keys)] = draw(json_values)
            else:
                parent[pointer[-1]] = draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this place
    return document


SCHEMA = load_schema()
RESOLVE = SchemaValidator(SCHEMA)._resolve
KEY_WORDS = ["a", "b", "idle", "s1", "GO", "order.*", "*", "1000", "0", "2.5", "retryDelay", "a.b", "", "-1", "x*"]
NAME_WORDS = ["a", "b", "#m", "#m.a", ".child", "a.b", "notify", "", "1000", "x"]


@st.composite
def conforming(draw: st.DrawFn, node: Any, depth: int = 0) -> Any:
    """A value shaped by a schema node: mostly valid, with a random slip now and then,
    so that documents reach deep into the schema (random JSON rarely gets past the root)."""
    if depth > 12 or draw(st.integers(0, 29)) == 0:
        return draw(scalars if depth > 12 else json_values)
    if node is True or node == {}:
        return draw(json_values)
    if "$ref" in node:
        return draw(conforming(RESOLVE(node["$ref"]), depth))
    if "anyOf" in node:
        return draw(conforming(draw(st.sampled_from(node["anyOf"])), depth))
    if "allOf" in node and "type" not in node:
        return draw(conforming(draw(st.sampled_from(node["allOf"])), depth))
    if "if" in node and "type" not in node:
        options = [node[k] for k in ("then", "else") if k in node] or [True]
        return draw(conforming(draw(st.sampled_from(options)), depth))
    if "enum" in node:
        return draw(st.sampled_from(node["enum"]))
    if "const" in node:
        return node["const"]
    types = node.get("type")
    if types is None:
        return draw(json_values)
    kind = draw(st.sampled_from([types] if isinstance(types, str) else types))
    if kind == "string":
        return draw(st.sampled_from(NAME_WORDS + node.get("examples", [])))
    if kind in ("number", "integer"):
        return draw(st.sampled_from([0, 1, 1000, -1, 2.5, 0.0]))
    if kind == "boolean":
        return draw(st.booleans())
    if kind == "array":
        return draw(st.lists(conforming(node.get("items", True), depth + 1), max_size=3))
    if "allOf" in node or "if" in node:  # a dispatched object: take one alternative's shape
        shapes = [
            item.get(branch)
            for item in [node, *node.get("allOf", [])]
            for branch in ("then", "else")
            if isinstance(item.get(branch), dict)
        ]
        if shapes:
            return draw(conforming(draw(st.sampled_from(shapes)), depth))
    properties = node.get("properties", {})
    required = list(node.get("required", []))
    optional = [k for k in properties if k not in required and (k not in ("cond", "internal") or draw(st.booleans()))]
    chosen = required + draw(st.lists(st.sampled_from(optional), max_size=4, unique=True) if optional else st.just([]))
    result = {key: draw(conforming(properties[key], depth + 1)) for key in chosen}
    extra = node.get("additionalProperties", True)
    if isinstance(extra, dict):
        for key in draw(st.lists(st.sampled_from(KEY_WORDS), max_size=3, unique=True)):
            result[key] = draw(conforming(extra, depth + 1))
    elif draw(st.integers(0, 9)) == 0:
        result[draw(keys)] = draw(scalars)
    return result


def _from_jsonschema(error: jsonschema.ValidationError) -> schema_mod.SchemaError:
    """jsonschema's error in the form fsm's checker produces, to compare the two."""
    path: tuple[Any, ...] = ()
    for part in error.absolute_path:
        path = (path, part)
    groups: dict[Any, list[schema_mod.SchemaError]] = {}
    for sub in error.context or ():
        groups.setdefault(sub.relative_schema_path[0], []).append(_from_jsonschema(sub))
    converted = schema_mod.SchemaError(
        str(error.validator) if error.validator is not None else "false",
        error.validator_value,
        error.instance,
        error.schema if isinstance(error.schema, dict) else {},
        path,
        list(groups.values()),
    )
    converted.key = "propertyNames" in error.relative_schema_path
    return converted


REFERENCE = jsonschema.Draft202012Validator(load_schema())


def _reference_problems(document: object) -> list[Problem]:
    problems: list[Problem] = []
    for error in REFERENCE.iter_errors(document):
        problems.extend(schema_mod._problems(_from_jsonschema(error)))
    return schema_mod._finish(document, problems)


def _check_against_reference(document: object) -> None:
    problems = validate(document)
    assert isinstance(problems, list)
    assert all(isinstance(p, Problem) and format_path(p.pointer) == p.path for p in problems)
    fatal, _ = schema_mod._precheck(document)
    if fatal:
        return
    assert validator().is_valid(document) == REFERENCE.is_valid(document)
    non_finite = [p for p in problems if p.message.startswith("expected a finite number")]
    assert sorted(problems, key=str) == sorted(non_finite + _reference_problems(document), key=str)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_validate_never_raises_and_agrees_with_jsonschema(document: object) -> None:
    _check_against_reference(document)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, json_values, max_size=6))
def test_random_machines_agree_with_jsonschema(document: dict[str, Any]) -> None:
    _check_against_reference(document)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conforming(SCHEMA))
def test_schema_shaped_machines_agree_with_jsonschema(document: object) -> None:
    _check_against_reference(document)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_checkouts())
def test_mutated_realistic_machines_agree_with_jsonschema(document: dict[str, Any]) -> None:
    _check_against_reference(document)


STATELY_EXPORT = {
    # The shape Stately Studio and XState's toJSON produce: ids and state names with
    # spaces, description / meta / tags / version everywhere, actions and guards as
    # {"type", "params"} objects, single objects where lists are allowed.
    "id": "Checkout flow",
    "version": "1.0.0",
    "description": "Exported from Stately Studio",
    "initial": "Cart",
    "context": {"items": []},
    "states": {
        "Cart": {
            "description": "The user reviews the cart",
            "tags": ["editable"],
            "meta": {"layout": {"x": 10, "y": 20}},
            "on": {
                "checkout": [
                    {
                        "target": "Payment",
                        "guard": {"type": "hasItems"},
                        "actions": [{"type": "track", "params": {"step": "checkout"}}],
                        "description": "Go pay",
                        "meta": {},
                    }
                ]
            },
        },
        "Payment": {
            "initial": "Entering card",
            "entry": [{"type": "startTimer"}],
            "exit": {"type": "stopTimer"},
            "invoke": {
                "src": "paymentService",
                "id": "payment",
                "input": {"mode": "card"},
                "onDone": {"target": "#Checkout flow.Done"},
                "onError": [{"target": ".Entering card", "actions": {"type": "showError"}}],
            },
            "after": {"30000": {"target": "Cart", "reenter": False}},
            "states": {"Entering card": {"on": {"submit": {"target": "Submitting"}}}, "Submitting": {}},
            "on": {"cancel": {"target": "Cart"}},
        },
        "Done": {"type": "final", "output": {"ok": True}},
    },
}


def test_a_stately_export_loads_unchanged_and_runs_once_implemented() -> None:
    import fsm

    machine = fsm.Machine.from_dict(STATELY_EXPORT)
    assert machine.missing_implementations() == {
        "actions": {
            "track": ["states.Cart.on.checkout[0].actions[0]"],
            "startTimer": ["states.Payment.entry[0]"],
            "stopTimer": ["states.Payment.exit"],
            "showError": ["states.Payment.invoke.onError[0].actions"],
        },
        "guards": {"hasItems": ["states.Cart.on.checkout[0].guard"]},
        "services": {"paymentService": ["states.Payment.invoke.src"]},
    }
    ran: list[str] = []
    record = lambda name: lambda ctx, ev, params: ran.append(name)  # noqa: E731
    machine = machine.provide(
        actions={name: record(name) for name in ("track", "startTimer", "stopTimer", "showError")},
        guards={"hasItems": lambda ctx, ev, params: True},
        services={"paymentService": lambda ctx, ev, input_: {"paid": input_["mode"]}},
    )
    actor = machine.start(clock=fsm.VirtualClock(), executor="inline")
    assert actor.snapshot.value == "Cart" and actor.snapshot.has_tag("editable")
    actor.send("checkout")
    # a final state's output is its done event's; the machine has no root output (XState v5)
    assert actor.snapshot.status == "done" and actor.snapshot.output is None
    assert ran == ["track", "startTimer", "stopTimer"]
