"""The published JSON Schema of machine definitions, and validation against it.

``machine.schema.json`` (packaged beside this module) describes the XState v5 JSON
machine config that fsm runs. :func:`validate` checks a definition against it and returns
*every* problem, each located by its JSON path and worded for a person:

>>> from fsm.schema import validate
>>> for problem in validate({"initial": "a", "states": {"a": {"on": {"GO": {"tagret": "b"}}}}}):
...     print(problem)
states.a.on.GO.tagret: unknown key 'tagret' (did you mean 'target'?)

How it works, and why:

- The schema file is standard JSON Schema 2020-12, so editors and other tools use it as
  it is; ``jsonschema`` checks the file itself (``check_schema``) and is the reference
  implementation the tests compare against.
- Validation runs on :class:`SchemaValidator`, which compiles the schema's keywords into
  Python closures once. For a 1,000-state machine of 430 KB (guards, built-in actions,
  expressions on every state) jsonschema needs about two seconds, the compiled form about
  25 ms. It supports exactly the keywords the schema uses and refuses to compile any
  other, so a schema edit cannot silently be ignored.
- jsonschema-style errors (one per failed keyword, alternatives of ``anyOf`` kept as
  context) are turned into problems: for ``anyOf`` the alternative the author meant is
  picked (one that does not fail on the JSON type alone), unknown keys are reported by
  name with a suggestion, and the custom messages of the schema (``patternErrorMessage``,
  ``deprecationMessage``, which editors show too) are used.
- :func:`validate` never raises: non-JSON values, non-string keys and nesting deeper than
  :data:`MAX_DEPTH` are found first by a walk without recursion, and reported.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib import resources
from typing import Any

from fsm.errors import Problem, format_path

__all__ = [
    "MAX_DEPTH",
    "MAX_PROBLEMS",
    "SCHEMA_ID",
    "SchemaValidator",
    "load_schema",
    "validate",
    "validator",
]

SCHEMA_ID = "https://fsm.dev/schema/machine.schema.json"
"""The ``$id`` of the machine schema (use it as ``"$schema"`` in machine files)."""

MAX_DEPTH = 100
"""Deepest nesting of objects and arrays that :func:`validate` accepts.

Schema validation recurses, with a few Python frames per level (up to about six, for
nested ``and``/``not`` guards), so an absurdly deep document would exhaust Python's
recursion limit (1000 by default). The depth is checked first, without recursion.
100 levels allow about 45 levels of nested states (each costs two: ``states`` and the
child key); real machines use a handful.
"""

MAX_PROBLEMS = 1000
"""At most this many problems are reported; a last problem says that more were cut."""

_MAX_ERRORS = 20 * MAX_PROBLEMS  # failed keywords collected before giving up

_SCHEMA_FILE = "machine.schema.json"

# Keys of XState v4 (and earlier) that XState v5 renamed or removed. Unknown keys with
# these names get the explanation instead of a plain "unknown key". ('cond' and 'internal'
# are declared in the schema itself, with a deprecationMessage that editors show too.)
_V4_KEYS = {
    "onEntry": "XState v4 'onEntry' is 'entry' in XState v5",
    "onExit": "XState v4 'onExit' is 'exit' in XState v5",
    "data": "XState v4 'data' is 'output' in XState v5 (and an invoke's 'data' is 'input')",
    "activities": "activities were removed in XState v5: invoke a service instead",
    "parallel": 'write "type": "parallel" instead',
    "strict": "XState v4 'strict' was removed in XState v5",
    "predictableActionArguments": "XState v4 option; XState v5 always behaves so: remove it",
    "preserveActionOrder": "XState v4 option; XState v5 always behaves so: remove it",
    "tsTypes": "XState v4 typegen data; remove it",
    "schema": "XState v4 'schema' is 'types' (or 'schemas') in XState v5",
    "in": 'XState v4 \'in\' is the guard {"type": "stateIn", "state": ...} in XState v5',
}

# Keys that are right elsewhere, and so probably misplaced where they are unknown.
_MISPLACED = {
    "reenter": "'reenter' belongs to a transition, not to a state",
    "guard": "'guard' belongs to a transition",
    "actions": "'actions' belongs to a transition; a state runs actions with 'entry' and 'exit'",
    "history": "'history' belongs to a history state ('type': 'history')",
    "src": "'src' belongs to an 'invoke'",
}

_TYPE_WORDS = {
    "string": "a string",
    "object": "an object",
    "array": "an array",
    "number": "a number",
    "integer": "an integer",
    "boolean": "a boolean",
    "null": "null",
}

_JSON_SCALARS = (str, int, float, bool, type(None))
_EXPR_SHAPE = '{"expr": "..."}'


# ----------------------------------------------------------------------------- the schema


@functools.cache
def _schema_text() -> str:
    return resources.files(__name__).joinpath(_SCHEMA_FILE).read_text(encoding="utf-8")


def load_schema() -> dict[str, Any]:
    """Return the machine JSON Schema as a dict.

    The file is read once; each call returns a fresh copy, so callers may modify it.

    >>> load_schema()["$id"] == SCHEMA_ID
    True
    """
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


@functools.cache
def validator() -> SchemaValidator:
    """Return the compiled machine-schema validator (built once, then cached).

    ``validator().is_valid(definition)`` is the fastest yes/no check. It recurses, so give
    it only documents of sane depth; :func:`validate` is the safe, friendly entry point.

    >>> validator().is_valid({"initial": "a", "states": {"a": {}}})
    True
    """
    return SchemaValidator(load_schema())


# ----------------------------------------------------------------------------- the checker

# A path is built as a linked list while descending, ``(parent, key)`` with ``()`` for
# the root, so that descending costs one small tuple; it is turned into a pointer tuple
# only for errors.
_Path = tuple[Any, ...]
# A compiled schema: check(instance, path, out). With out=None it answers valid or not and
# stops at the first failure; with a list it appends every error found to it.
_Check = Callable[[Any, _Path, "list[SchemaError] | None"], bool]

_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$defs",
        "$comment",
        "title",
        "description",
        "examples",
        "default",
        "deprecated",
        "deprecationMessage",
        "patternErrorMessage",
        "errorMessage",
        "doNotSuggest",
        "markdownDescription",
    }
)


class SchemaError:
    """One failed keyword, as jsonschema reports it (``validator`` = the keyword).

    ``branches`` holds, for a failed ``anyOf``, the errors of each alternative. ``key`` is
    true when the failing instance is a property name (``propertyNames``); ``path`` then
    leads to the object holding it.
    """

    __slots__ = ("branches", "instance", "key", "path", "schema", "validator", "value")

    def __init__(
        self,
        validator: str,
        value: Any,
        instance: Any,
        schema: Mapping[str, Any],
        path: _Path,
        branches: list[list[SchemaError]] | None = None,
    ) -> None:
        self.validator = validator
        self.value = value
        self.instance = instance
        self.schema = schema
        self.path = path
        self.branches = [] if branches is None else branches
        self.key = False

    @property
    def pointer(self) -> tuple[str | int, ...]:
        return _unlink(self.path)

    def __repr__(self) -> str:
        return f"SchemaError({self.validator!r}, {format_path(self.pointer)!r})"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


_TYPE_TESTS: dict[str, Callable[[object], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "number": _is_number,
    "integer": _is_integer,
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


_CLASSES: dict[str, type] = {"object": dict, "array": list, "string": str, "null": type(None)}


def _json_equal(a: object, b: object) -> bool:
    """Equality as JSON Schema means it: true is not 1, 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    return a == b


class _TooManyErrors(Exception):
    pass


class _Errors(list[SchemaError]):
    """An error list that stops the check (``_TooManyErrors``) once a shared budget,
    counted across the lists of all anyOf alternatives, is spent."""

    __slots__ = ("room",)

    def __init__(self, room: list[int]) -> None:
        super().__init__()
        self.room = room

    def append(self, error: SchemaError) -> None:
        self.room[0] -= 1
        if self.room[0] < 0:
            raise _TooManyErrors
        super().append(error)


def _fork(out: list[SchemaError]) -> list[SchemaError]:
    """A fresh list for errors of a part, sharing the budget of ``out``."""
    return _Errors(out.room) if isinstance(out, _Errors) else []


def _valid(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
    return True


def _all_of(checks: list[_Check]) -> _Check:
    """One check that runs several: stops at the first failure unless collecting."""
    if not checks:
        return _valid
    if len(checks) == 1:
        return checks[0]
    checks_ = tuple(checks)

    def check(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
        if out is None:
            for each in checks_:  # noqa: SIM110 - a plain loop is faster than all() here
                if not each(instance, path, None):
                    return False
            return True
        ok = True
        for each in checks_:
            if not each(instance, path, out):
                ok = False
        return ok

    return check


def _kinds(instance: object) -> frozenset[str]:
    """The JSON Schema types an instance satisfies."""
    kinds = _KINDS.get(instance.__class__)
    if kinds is not None:
        if kinds is _FLOAT and isinstance(instance, float) and instance.is_integer():
            return _INTEGRAL_FLOAT
        return kinds
    return frozenset(name for name, test in _TYPE_TESTS.items() if test(instance))


_FUSABLE = frozenset({"type", "properties", "additionalProperties", "required", "propertyNames"})
_FLOAT = frozenset({"number"})
_INTEGRAL_FLOAT = frozenset({"number", "integer"})
_KINDS: dict[type, frozenset[str]] = {
    dict: frozenset({"object"}),
    list: frozenset({"array"}),
    str: frozenset({"string"}),
    bool: frozenset({"boolean"}),
    type(None): frozenset({"null"}),
    int: frozenset({"integer", "number"}),
    float: _FLOAT,
}


class SchemaValidator:
    """A JSON Schema compiled into Python closures, for the keywords the schema uses.

    Supported: ``type enum const minLength pattern minItems minimum properties required
    additionalProperties propertyNames items allOf anyOf not if/then/else $ref`` (local
    ``#/...`` references) and annotations. Any other keyword raises ``ValueError`` when
    compiling, so the schema cannot use a keyword this class would silently ignore. The
    results agree with jsonschema's ``Draft202012Validator`` (a property test checks it).
    """

    def __init__(self, schema: Mapping[str, Any] | bool) -> None:
        self.schema = schema
        self._compiled: dict[int, _Check] = {}
        self._keep: list[object] = []  # keeps compiled schemas alive, so ids stay unique
        self._check = self._compile(schema)

    def is_valid(self, instance: Any) -> bool:
        """True when ``instance`` satisfies the schema."""
        return self._check(instance, (), None)

    def iter_errors(self, instance: Any) -> Iterator[SchemaError]:
        """Every failed keyword, like jsonschema's ``iter_errors`` (not lazily)."""
        return iter(self.errors(instance)[0])

    def errors(self, instance: Any, limit: int | None = None) -> tuple[list[SchemaError], bool]:
        """``(errors, complete)``: the failed keywords, at most about ``limit`` of them
        (so that a huge broken document cannot exhaust memory), and whether that is all."""
        if self._check(instance, (), None):
            return [], True
        out: list[SchemaError] = [] if limit is None else _Errors([limit])
        try:
            self._check(instance, (), out)
        except _TooManyErrors:
            return out, False
        return out, True

    # -- compiling

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref are supported, got {ref!r}")
        node: Any = self.schema
        for part in ref[1:].split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def _compile(self, schema: Any) -> _Check:
        if schema is True:
            return _valid
        if schema is False:
            return _false_check
        if not isinstance(schema, dict):
            raise ValueError(f"a schema must be an object or a boolean, got {schema!r}")
        known = self._compiled.get(id(schema))
        if known is not None:
            return known
        # References met while compiling this schema (recursion) go through a forwarder;
        # everything compiled later gets the final function itself.
        cell: list[_Check] = []

        def forward(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
            return cell[0](instance, path, out)

        self._compiled[id(schema)] = forward
        self._keep.append(schema)
        checks: list[_Check] = []
        for keyword, value in schema.items():
            if keyword in _ANNOTATIONS or keyword in ("then", "else"):
                continue
            make = getattr(self, "_kw_" + keyword.lstrip("$"), None)
            if make is None:
                raise ValueError(f"unsupported JSON Schema keyword {keyword!r}")
            checks.append(make(value, schema))
        compiled = _all_of(checks)
        fused = self._fuse_object(schema, compiled)
        if fused is not None:
            compiled = fused
        cell.append(compiled)
        self._compiled[id(schema)] = compiled
        return compiled

    def _fuse_object(self, schema: Mapping[str, Any], generic: _Check) -> _Check | None:
        """A faster yes/no check for the commonest shape, a closed or open object with
        declared properties; collecting errors still goes through the generic checks."""
        keywords = {k for k in schema if k not in _ANNOTATIONS}
        if schema.get("type") != "object" or not keywords <= _FUSABLE:
            return None
        declared = {name: self._compile(sub) for name, sub in schema.get("properties", {}).items()}
        required = tuple(schema.get("required", ()))
        extra = schema.get("additionalProperties", True)
        closed = extra is False
        additional = None if extra is True or closed else self._compile(extra)
        names = self._compile(schema["propertyNames"]) if "propertyNames" in schema else None
        lookup = declared.get

        def check(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
            if out is not None:
                return generic(instance, path, out)
            if not isinstance(instance, dict):
                return False
            for name in required:
                if name not in instance:
                    return False
            for name, item in instance.items():
                sub = lookup(name)
                if sub is not None:
                    if not sub(item, (), None):
                        return False
                elif closed or (additional is not None and not additional(item, (), None)):
                    return False
                if names is not None and not names(name, (), None):
                    return False
            return True

        return check

    def _kw_ref(self, ref: str, schema: Mapping[str, Any]) -> _Check:
        return self._compile(self._resolve(ref))

    def _kw_type(self, value: str | list[str], schema: Mapping[str, Any]) -> _Check:
        names = [value] if isinstance(value, str) else value
        if {"number", "integer", "boolean"}.isdisjoint(names):
            # no bool-is-an-int subtleties: one isinstance call
            classes = tuple(_CLASSES[name] for name in names)

            def check_classes(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
                if isinstance(instance, classes):
                    return True
                if out is not None:
                    out.append(SchemaError("type", value, instance, schema, path))
                return False

            return check_classes
        tests = tuple(_TYPE_TESTS[name] for name in names)

        def check(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
            for test in tests:
                if test(instance):
                    return True
            if out is not None:
                out.append(SchemaError("type", value, instance, schema, path))
            return False

        return check

    def _kw_enum(self, value: list[Any], schema: Mapping[str, Any]) -> _Check:
        if all(isinstance(option, str) for option in value):
            options = frozenset(value)

            def check_strings(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
                if isinstance(instance, str) and instance in options:
                    return True
                if out is not None:
                    out.append(SchemaError("enum", value, instance, schema, path))
                return False

            return check_strings

        def check(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
            for option in value:
                if _json_equal(instance, option):
                    return True
            if out is not None:
                out.append(SchemaError("enum", value, instance, schema, path))
            return False

        return check

    def _kw_const(self, value: Any, schema: Mapping[str, Any]) -> _Check:
        def check(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
            if instance == value and _json_equal(instance, value):
                return True
            if out is not None:
                out.append(SchemaError("const", value, instance, schema, path))
            return False

        return check

    def _kw_minLength(self, value: int, schema: Mapping[str, Any]) -> _Check:
        def check(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
            if not isinstance(instance, str) or len(instance) >= value:
                return True
            if out is not None:
                out.append(SchemaError("minLength", value, instance, schema, path))
            return False

        return check

    def _kw_pattern(self, value: str, schema: Mapping[str, Any]) -> _Check:
        search = re.compile(value).search

        def check(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
            if not isinstance(instance, str) or search(instance):
                return True
            if out is not None:
                out.append(SchemaError("pattern", value, instance, schema, path))
            return False

        return check

    def _kw_minItems(self, value: int, schema: Mapping[str, Any]) -> _Check:
        def check(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
            if not isinstance(instance, list) or len(instance) >= value:
                return True
            if out is not None:
                out.append(SchemaError("minItems", value, instance, schema, path))
            return False

        return check

    def _kw_minimum(self, value: float, schema: Mapping[str, Any]) -> _Check:
        def check(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
            if not _is_number(instance) or not instance < value:
                return True
            if out is not None:
                out.append(SchemaError("minimum", value, instance, schema, path))
            return False

        return check

    def _kw_required(self, value: list[str], schema: Mapping[str, Any]) -> _Check:
        def check(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
            if not isinstance(instance, dict):
                return True
            for name in value:
                if name not in instance:
                    if out is not None:
                        out.append(SchemaError("required", value, instance, schema, path))
                    return False
            return True

        return check

    def _kw_properties(self, value: Mapping[str, Any], schema: Mapping[str, Any]) -> _Check:
        declared = [(name, self._compile(sub)) for name, sub in value.items()]

        def check(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
            if not isinstance(instance, dict):
                return True
            ok = True
            for name, sub in declared:
                if name in instance and not sub(instance[name], (path, name), out):
                    if out is None:
                        return False
                    ok = False
            return ok

        return check

    def _kw_additionalProperties(self, value: Any, schema: Mapping[str, Any]) -> _Check:
        if "patternProperties" in schema:
            raise ValueError("patternProperties is not supported")
        declared = frozenset(schema.get("properties", ()))
        if value is False:

            def refuse(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
                if not isinstance(instance, dict) or declared.issuperset(instance):
                    return True
                if out is not None:
                    out.append(SchemaError("additionalProperties", False, instance, schema, path))
                return False

            return refuse
        sub = self._compile(value)

        def check(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
            if not isinstance(instance, dict):
                return True
            ok = True
            for name, item in instance.items():
                if name not in declared and not sub(item, (path, name), out):
                    if out is None:
                        return False
                    ok = False
            return ok

        return check

    def _kw_propertyNames(self, value: Any, schema: Mapping[str, Any]) -> _Check:
        sub = self._compile(value)

        def check(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
            if not isinstance(instance, dict):
                return True
            ok = True
            for name in instance:
                if out is None:
                    if not sub(name, path, None):
                        return False
                    continue
                found = _fork(out)
                try:
                    if not sub(name, path, found):
                        ok = False
                finally:  # also when the error budget runs out: keep what was found
                    for error in found:
                        error.key = True
                    out.extend(found)
            return ok

        return check

    def _kw_items(self, value: Any, schema: Mapping[str, Any]) -> _Check:
        if "prefixItems" in schema:
            raise ValueError("prefixItems is not supported")
        sub = self._compile(value)

        def check(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
            if not isinstance(instance, list):
                return True
            ok = True
            for index, item in enumerate(instance):
                if not sub(item, (path, index), out):
                    if out is None:
                        return False
                    ok = False
            return ok

        return check

    def _kw_allOf(self, value: list[Any], schema: Mapping[str, Any]) -> _Check:
        dispatch = self._dispatch(value)
        if dispatch is not None:
            return dispatch
        return _all_of([self._compile(each) for each in value])

    def _dispatch(self, value: list[Any]) -> _Check | None:
        """An allOf of if/then/else items whose conditions all test the same property
        against strings (``{"if": {"properties": {"type": {"const": "raise"}}, "required":
        ["type"]}, "then": ...}``) becomes one dictionary lookup."""
        tests: list[tuple[str, frozenset[str]]] = []
        for item in value:
            if not isinstance(item, dict) or not set(item) <= {"if", "then", "else"}:
                return None
            test = _discriminator_test(item.get("if"))
            if test is None:
                return None
            tests.append(test)
        names = {name for name, _ in tests}
        if len(names) != 1:
            return None
        (name,) = names
        thens = [self._compile(item.get("then", True)) for item in value]
        elses = [self._compile(item.get("else", True)) for item in value]
        options = frozenset().union(*(options for _, options in tests))
        by_value = {
            option: _all_of(
                [then if option in opts else else_ for (_, opts), then, else_ in zip(tests, thens, elses, strict=True)]
            )
            for option in options
        }
        absent = _all_of(elses)  # the property is missing or not one of the strings
        not_object = _all_of(thens)  # 'properties' and 'required' ignore non-objects

        def check(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
            if not isinstance(instance, dict):
                return not_object(instance, path, out)
            key = instance.get(name)
            chosen = by_value.get(key, absent) if isinstance(key, str) else absent
            return chosen(instance, path, out)

        return check

    def _kw_anyOf(self, value: list[Any], schema: Mapping[str, Any]) -> _Check:
        subs = [self._compile(each) for each in value]
        # An alternative whose top-level 'type' the instance does not have is skipped
        # without calling it (a cheap discriminator for string | object | array unions).
        typed = [(self._static_types(each), sub) for each, sub in zip(value, subs, strict=True)]

        def check(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
            kinds = _kinds(instance)
            for types, sub in typed:
                if (types is None or not types.isdisjoint(kinds)) and sub(instance, path, None):
                    return True
            if out is not None:
                branches: list[list[SchemaError]] = []
                error = SchemaError("anyOf", value, instance, schema, path, branches)
                try:
                    for sub in subs:
                        found = _fork(out)
                        branches.append(found)
                        sub(instance, path, found)
                except _TooManyErrors:
                    list.append(out, error)  # keep what was found, then stop
                    raise
                out.append(error)
            return False

        return check

    def _static_types(self, schema: Any, seen: frozenset[int] = frozenset()) -> frozenset[str] | None:
        """The JSON types a schema can possibly accept, when its top level says so."""
        if not isinstance(schema, dict) or id(schema) in seen:
            return None
        seen = seen | {id(schema)}
        found: frozenset[str] | None = None
        if "type" in schema:
            value = schema["type"]
            found = frozenset([value] if isinstance(value, str) else value)
        if "$ref" in schema:
            target = self._static_types(self._resolve(schema["$ref"]), seen)
            if target is not None:
                found = target if found is None else found & target
        if "anyOf" in schema:
            parts = [self._static_types(each, seen) for each in schema["anyOf"]]
            if all(part is not None for part in parts):
                union = frozenset().union(*(part for part in parts if part is not None))
                found = union if found is None else found & union
        if found is not None and "number" in found:
            found = found | {"integer"}
        return found

    def _kw_not(self, value: Any, schema: Mapping[str, Any]) -> _Check:
        sub = self._compile(value)

        def check(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
            if not sub(instance, path, None):
                return True
            if out is not None:
                out.append(SchemaError("not", value, instance, schema, path))
            return False

        return check

    def _kw_if(self, value: Any, schema: Mapping[str, Any]) -> _Check:
        condition = _discriminator(value) or self._compile(value)
        then = self._compile(schema.get("then", True))
        else_ = self._compile(schema.get("else", True))

        def check(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
            if condition(instance, path, None):
                return then(instance, path, out)
            return else_(instance, path, out)

        return check


def _discriminator_test(schema: Any) -> tuple[str, frozenset[str]] | None:
    """``(name, strings)`` for the condition ``{"properties": {name: {"const": s}},
    "required": [name]}`` (or ``enum`` of strings); None for any other schema."""
    if not isinstance(schema, dict) or set(schema) != {"properties", "required"}:
        return None
    properties, required = schema["properties"], schema["required"]
    if not isinstance(properties, dict) or len(properties) != 1 or list(properties) != required:
        return None
    ((name, sub),) = properties.items()
    if not isinstance(sub, dict) or len(sub) != 1:
        return None
    if "const" in sub and isinstance(sub["const"], str):
        return name, frozenset([sub["const"]])
    if "enum" in sub and all(isinstance(each, str) for each in sub["enum"]):
        return name, frozenset(sub["enum"])
    return None


def _discriminator(schema: Any) -> _Check | None:
    """A fast form of a :func:`_discriminator_test` condition."""
    test = _discriminator_test(schema)
    if test is None:
        return None
    name, options = test

    def condition(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
        if not isinstance(instance, dict):
            return True  # 'properties' and 'required' ignore non-objects
        value = instance.get(name)
        return isinstance(value, str) and value in options and name in instance

    return condition


def _false_check(instance: Any, path: _Path, out: list[SchemaError] | None) -> bool:
    if out is not None:
        out.append(SchemaError("false", False, instance, {}, path))
    return False


# ----------------------------------------------------------------------------- validation


def validate(definition: object) -> list[Problem]:
    """Check a machine definition against the schema; return every problem found.

    Problems are sorted by their position in the document. An empty list means the
    definition is valid as far as the schema can tell (targets, ids and implementations
    are checked when the model is built). Never raises.

    >>> validate({"id": "m", "initial": "idle", "states": {"idle": {}}})
    []
    >>> for problem in validate({"states": {"a": {"type": "paralel", "entry": 42}}}):
    ...     print(problem)
    states.a.type: expected one of 'atomic', 'compound', 'parallel', 'final', 'history', \
got "paralel" (did you mean 'parallel'?)
    states.a.entry: expected a string, an object or an array, got 42
    """
    try:
        fatal, problems = _precheck(definition)
        complete = True
        if not fatal:
            errors, complete = validator().errors(definition, limit=_MAX_ERRORS)
            for error in errors:
                problems.extend(_problems(error))
        return _finish(definition, problems, complete)
    except RecursionError:
        return [Problem("", f"nesting too deep to validate (more than {MAX_DEPTH} levels?)")]
    except Exception as exc:  # validate() promises never to raise
        return [Problem("", f"internal error while validating ({exc!r}); please report it")]


def _finish(document: object, problems: list[Problem], complete: bool = True) -> list[Problem]:
    unique = _drop_explained(list(dict.fromkeys(problems)))
    positions = _Positions(document)
    unique.sort(key=lambda p: positions.of(p.pointer))
    if len(unique) > MAX_PROBLEMS or not complete:
        unique = unique[:MAX_PROBLEMS]
        unique.append(Problem("", "too many problems: only the first ones are shown"))
    return unique


_MISSING = re.compile(r"missing required key ('.*')")
_DID_YOU_MEAN = re.compile(r"^unknown key .* \(did you mean ('.*')\?\)$")


def _drop_explained(problems: list[Problem]) -> list[Problem]:
    """Drop "missing required key 'type'" when the same object has an unknown key
    'tpye' whose suggestion is 'type': the typo is the one thing to fix."""
    suggested: set[tuple[tuple[str | int, ...], str]] = set()
    for problem in problems:
        match = _DID_YOU_MEAN.match(problem.message)
        if match and problem.pointer:
            suggested.add((problem.pointer[:-1], match.group(1)))
    if not suggested:
        return problems
    kept = []
    for problem in problems:
        match = _MISSING.fullmatch(problem.message)
        if match and (problem.pointer, match.group(1)) in suggested:
            continue
        kept.append(problem)
    return kept


def _precheck(document: object) -> tuple[bool, list[Problem]]:
    """Walk the document without recursion.

    Returns ``(fatal, problems)``. Fatal problems (too deep, not JSON) mean the document
    must not be given to the schema checker; non-finite numbers are reported, not fatal.
    """
    problems: list[Problem] = []
    fatal = False
    # (container, path, depth): the path is linked, (parent, key); depth counts the
    # containers enclosing the container
    stack: list[tuple[object, _Path, int]] = [(document, (), 0)]
    while stack and len(problems) <= MAX_PROBLEMS:
        value, path, depth = stack.pop()
        if isinstance(value, (dict, list)) and depth >= MAX_DEPTH:
            problems.append(_problem(_unlink(path), f"nesting deeper than {MAX_DEPTH} levels"))
            fatal = True
        elif isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    message = f"keys must be strings, got {_describe(key)}"
                    if isinstance(key, bool):
                        message += " (YAML 1.1 reads an unquoted on/off/yes/no as a boolean: quote the key)"
                    problems.append(_problem(_unlink(path), message))
                    fatal = True
                elif item.__class__ not in _PLAIN_SCALARS:
                    stack.append((item, (path, key), depth + 1))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if item.__class__ not in _PLAIN_SCALARS:
                    stack.append((item, (path, index), depth + 1))
        elif isinstance(value, float):
            if not math.isfinite(value):
                problems.append(_problem(_unlink(path), f"expected a finite number, got {value}"))
        elif not isinstance(value, _JSON_SCALARS):
            problems.append(_problem(_unlink(path), _not_json(value)))
            fatal = True
    return fatal, problems


_PLAIN_SCALARS = frozenset({str, int, bool, type(None)})


def _unlink(path: _Path) -> tuple[str | int, ...]:
    parts: list[str | int] = []
    while path:
        path, part = path
        parts.append(part)
    parts.reverse()
    return tuple(parts)


def _not_json(value: object) -> str:
    kind = type(value)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    hint = ""
    if name in ("datetime.date", "datetime.datetime", "datetime.time"):
        hint = " (YAML reads an unquoted date or time so: quote it)"
    elif isinstance(value, (tuple, set, frozenset)):
        hint = " (use a list)"
    return f"expected a JSON value, got a Python {name}{hint}"


def _problem(pointer: tuple[str | int, ...], message: str) -> Problem:
    return Problem(path=format_path(pointer), message=message, pointer=pointer)


# ----------------------------------------------------------------------------- messages


def _problems(error: SchemaError) -> Iterator[Problem]:
    """Turn one failed keyword into the problems a person should read."""
    if error.validator in ("anyOf", "oneOf") and error.branches:
        branch = _best_branch(error)
        if branch is None:
            types = _expected_types(error)
            if types:  # (none when the error budget ran out while checking the first one)
                yield _problem(error.pointer, _type_message(types, error.instance, error.pointer))
        else:
            for sub in branch:
                yield from _problems(sub)
        return
    yield from _leaf_problems(error)


def _is_mismatch(errors: Iterable[SchemaError], depth: int) -> bool:
    """True when an alternative failed only because the value has another JSON type."""
    for sub in errors:
        if len(sub.pointer) != depth or sub.key:
            return False
        if sub.validator == "type":
            continue
        nested = sub.validator in ("anyOf", "oneOf") and sub.branches
        if nested and all(_is_mismatch(branch, depth) for branch in sub.branches):
            continue
        return False
    return True


def _best_branch(error: SchemaError) -> list[SchemaError] | None:
    """The alternative of a failed anyOf that the author most likely meant.

    Alternatives that fail only on the JSON type are dropped (a transition written as an
    object is not meant to be a string); of the rest, the one whose errors lie deepest in
    the value (it matched the most), then the one with the fewest errors, then the first.
    """
    depth = len(error.pointer)
    candidates = [b for b in error.branches if b and not _is_mismatch(b, depth)]
    if not candidates:
        return None
    return min(candidates, key=lambda b: (-max(len(e.pointer) for e in b), len(b)))


def _expected_types(error: SchemaError) -> list[str]:
    types: list[str] = []
    for branch in error.branches:
        for sub in branch:
            if sub.validator == "type":
                value = sub.value
                names = [value] if isinstance(value, str) else list(value)
            elif sub.validator in ("anyOf", "oneOf"):
                names = _expected_types(sub)
            else:
                names = []
            types.extend(name for name in names if name not in types)
    return types


def _leaf_problems(error: SchemaError) -> Iterator[Problem]:
    pointer = error.pointer
    keyword = error.validator
    schema = error.schema
    instance = error.instance
    value = error.value

    if error.key and isinstance(instance, str):
        pointer = (*pointer, instance)
        what = _a(str(schema.get("title", "key")))
        if keyword == "minLength":
            yield _problem(pointer, f"{what} must not be empty")
            return
        if keyword == "pattern":
            if instance or not schema.get("minLength"):  # "" is reported as empty
                yield _problem(pointer, str(schema.get("patternErrorMessage", f"invalid {what}")))
            return

    if keyword == "additionalProperties" and value is False and isinstance(instance, dict):
        declared = schema.get("properties", {})
        allowed = [k for k, v in declared.items() if not (isinstance(v, dict) and v.get("deprecated"))]
        for key in instance:
            if key not in declared:
                message = _unknown_key(str(key), allowed)
                if allowed == ["expr"]:
                    message = (
                        f"unknown key {key!r}: an object with an 'expr' key is an expression, exactly {_EXPR_SHAPE}"
                    )
                yield _problem((*pointer, key), message)
        return
    if keyword == "required" and isinstance(instance, dict):
        for key in value:
            if key not in instance:
                yield _problem(pointer, f"missing required key {key!r}")
        return
    if keyword == "type":
        types = [value] if isinstance(value, str) else list(value)
        yield _problem(pointer, _type_message(types, instance, pointer))
        return
    yield _problem(pointer, _message(keyword, value, instance, schema))


def _message(keyword: str, value: Any, instance: Any, schema: Mapping[str, Any]) -> str:
    if keyword == "enum":
        options = ", ".join(repr(v) for v in value)
        message = f"expected one of {options}, got {_describe(instance)}"
        return message + _suggest(instance, [v for v in value if isinstance(v, str)])
    if keyword == "const":
        return f"expected {value!r}, got {_describe(instance)}"
    if keyword == "minLength":
        return "must not be empty" if value == 1 else f"must be at least {value} characters long"
    if keyword == "minItems":
        return "must not be an empty list" if value == 1 else f"must have at least {value} items"
    if keyword == "minimum":
        return f"must be >= {value}, got {_describe(instance)}"
    if keyword == "pattern":
        custom = schema.get("patternErrorMessage") or schema.get("errorMessage")
        return str(custom) if custom else f"must match the pattern {value!r}"
    if keyword == "not":
        custom = schema.get("deprecationMessage") or schema.get("errorMessage")
        return str(custom) if custom else "is not allowed here"
    if keyword == "false":
        return "is not allowed here"
    return f"does not satisfy the schema keyword {keyword!r}"


def _type_message(types: list[str], instance: object, pointer: tuple[str | int, ...]) -> str:
    words = [_TYPE_WORDS.get(t, t) for t in types]
    if "a number" in words and "an integer" in words:
        words.remove("an integer")
    expected = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
    if not pointer:
        expected += " (a machine definition)"
    message = f"expected {expected}, got {_describe(instance)}"
    if instance is None and "object" in types:
        message += " (in YAML, a key with nothing after it is null: write {} for an empty object)"
    return message


def _unknown_key(key: str, allowed: list[str]) -> str:
    message = f"unknown key {key!r}"
    if key in _V4_KEYS:
        return f"{message}: {_V4_KEYS[key]}"
    if key in _MISPLACED:
        return f"{message}: {_MISPLACED[key]}"
    suggestion = _suggest(key, allowed)
    if suggestion:
        return message + suggestion
    if allowed and len(allowed) <= 8:
        return f"{message}; expected one of: {', '.join(repr(k) for k in allowed)}"
    return message


def _suggest(word: object, options: list[str]) -> str:
    if not isinstance(word, str) or not options:
        return ""
    lowered = {option.lower(): option for option in options}
    if word.lower() in lowered:
        return f" (did you mean {lowered[word.lower()]!r}?)"
    matches = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def _describe(value: object) -> str:
    """A short rendering of a value for messages: ``42``, ``"GO"``, ``an object``."""
    if isinstance(value, dict):
        return "an empty object" if not value else "an object"
    if isinstance(value, list):
        return "an empty array" if not value else "an array"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return json.dumps(text, ensure_ascii=False)
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, (bool, type(None), int, float)):
        return json.dumps(value)
    return repr(value)[:40]


def _a(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


class _Positions:
    """Document-order sort keys for pointers: keys in the order written, then indexes."""

    def __init__(self, document: object) -> None:
        self._document = document
        self._indexes: dict[int, dict[str, int]] = {}

    def of(self, pointer: tuple[str | int, ...]) -> tuple[int, ...]:
        node: object = self._document
        key: list[int] = []
        for part in pointer:
            if isinstance(node, dict) and isinstance(part, str):
                indexes = self._indexes.get(id(node))
                if indexes is None:
                    indexes = {k: i for i, k in enumerate(node) if isinstance(k, str)}
                    self._indexes[id(node)] = indexes
                key.append(indexes.get(part, len(indexes)))
                node = node.get(part)
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                key.append(part)
                node = node[part]
            else:
                key.append(0)
                node = None
        return tuple(key)
