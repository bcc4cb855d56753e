"""Rewrite a machine's fsm expressions as the conformance convention, where that is exact.

XState cannot evaluate fsm's expression language (``{"expr": "context.n + 1"}``), so an
example machine can only run on both engines once its expressions are replaced by the
convention's named actions and guards (docs/conformance.md). This module does that
rewrite, and refuses it, with the reason, wherever the replacement would not behave
exactly like the expression for every reachable context and every event:

- the structure of the machine is kept; only ``assign`` actions and guards change;
- ``assign`` becomes one convention action per key (``inc``, ``set``, ``setFromEvent``).
  fsm evaluates every value of an assignment against the context before it, and the
  split actions run one after the other; that is the same because a mapped value reads
  at most its own key (``context.K + N``);
- a guard becomes ``ctxLt`` / ``ctxGe`` / ``ctxEq`` / ``eventEq`` and the boolean
  combinators. Whether that is exact depends on what a context key can hold: ``ctxLt``
  reads a missing key as 0 where Python would fail on ``None < 3``, and JavaScript's
  ``===`` is not Python's ``==`` between booleans and numbers (``1 == True``). So the
  kinds of value each key can hold are computed first (its initial value, and every
  value assigned to it anywhere), and a rewrite is made only where the kinds make the
  two sides agree;
- a context key that no action ever assigns is a constant (its initial value), so
  ``context.indent < context.maxIndent`` is ``ctxLt indent 3`` when ``maxIndent`` is 3
  and never assigned. That holds for runs that start from the machine's own context
  (or from the context the mapping was made for: ``map_machine(definition, context)``).

Anything else (services, named delays, expressions in emitted events or outputs, a
comparison no convention guard expresses) blocks the machine; ``Mapped.blockers`` says
what and where.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fsm.expressions import is_expr
from fsm.testing.convention import GUARDS

# What a context key can hold: the JSON kind of each value it may take.
NUMBER, BOOL, STRING, NULL, OBJECT = "number", "bool", "string", "null", "object"
UNDEFINED = "undefined"  # the key is absent: fsm reads None, the convention `?? null` / `?? 0`
ANY = "any"  # a value taken from an event: anything at all

_FALSY = {NUMBER: 0, BOOL: False, STRING: "", NULL: None, UNDEFINED: None}
_NO_LITERAL = object()
_LITERAL_NAMES = {"True": True, "False": False, "None": None, "true": True, "false": False, "null": None}
_FLIP = {ast.Lt: ast.Gt, ast.Gt: ast.Lt, ast.LtE: ast.GtE, ast.GtE: ast.LtE, ast.Eq: ast.Eq, ast.NotEq: ast.NotEq}
_PYTHON_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_SYMBOL = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
_CONVENTION_BUILTINS = ("raise", "cancel", "emit")
_OTHER_BUILTINS = ("sendTo", "sendParent", "log", "stopChild")


class Unmappable(ValueError):
    """One part of a machine has no exact equivalent in the convention."""


@dataclass
class Mapped:
    """The result of :func:`map_machine`."""

    definition: dict[str, Any]  # the rewritten machine (meaningful only without blockers)
    blockers: list[str] = field(default_factory=list)  # "where: why", one per problem
    event_fields: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    """Per event type, the fields the machine reads and the literals they are compared
    with (to draw payloads that take every branch)."""

    @property
    def ok(self) -> bool:
        return not self.blockers

    def reason(self) -> str:
        return "not mappable to the conformance convention: " + "; ".join(self.blockers)


def map_machine(definition: dict[str, Any], context: dict[str, Any] | None = None) -> Mapped:
    """The machine with its expressions rewritten as the convention, or why it cannot be.

    ``context`` is merged over the definition's context, as fsm does when an actor is
    started with one: the rewrite is exact for runs that start from that context.
    """
    return _Mapper(definition, context).run()


# -- reading expressions --------------------------------------------------------------------


def _parse(source: str) -> ast.expr:
    try:
        return ast.parse(source.strip(), mode="eval").body
    except SyntaxError as exc:
        raise Unmappable(f"not an expression ({exc.msg})") from None


def _ref(node: ast.expr, name: str) -> str | None:
    """``K`` for ``name.K`` or ``name["K"]``."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == name:
        return node.attr
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id == name
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, str)
    ):
        return node.slice.value
    return None


def _literal(node: ast.expr) -> Any:
    """The value of a JSON scalar literal (``3``, ``-1``, ``'a'``, ``true``), else _NO_LITERAL."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
        return node.value
    if isinstance(node, ast.Name) and node.id in _LITERAL_NAMES:
        return _LITERAL_NAMES[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand)
        if _is_number(value):
            return -value if isinstance(node.op, ast.USub) else value
    return _NO_LITERAL


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOL
    if _is_number(value):
        return NUMBER
    if isinstance(value, str):
        return STRING
    return OBJECT


def _has_expr(value: Any) -> bool:
    if is_expr(value):
        return True
    if isinstance(value, dict):
        return any(_has_expr(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_expr(v) for v in value)
    return False


def _exprs(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every ``{"expr": ...}`` left in a value, with its path."""
    if is_expr(value):
        yield path, value["expr"]
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _exprs(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _exprs(item, f"{path}[{index}]")


def _ctx_guard(kind: str, key: str, value: Any) -> dict[str, Any]:
    return {"type": kind, "params": {"key": key, "value": value}}


def _not(guard: Any) -> dict[str, Any]:
    return {"type": "not", "guard": guard}


def _all(guards: list[Any]) -> Any:
    return guards[0] if len(guards) == 1 else {"type": "and", "guards": guards}


# -- the rewrite ------------------------------------------------------------------------------


class _Mapper:
    def __init__(self, definition: dict[str, Any], context: dict[str, Any] | None) -> None:
        self.definition = definition
        self.blockers: list[str] = []
        self.blocked_paths: list[str] = []  # where a blocker was reported (no second report inside)
        self.event_fields: dict[str, dict[str, list[Any]]] = {}
        initial = definition.get("context") or {}
        if not isinstance(initial, dict) or _has_expr(initial):
            self._block("context", "the initial context is computed (an expression)")
            initial = {}
        self.initial: dict[str, Any] = {**initial, **(context or {})}
        self.kinds: dict[str, set[str]] = {}
        self.constants: dict[str, Any] = {}

    def run(self) -> Mapped:
        written = {key for assignment in self._assignments(self.definition) for key in assignment}
        self.constants = {k: v for k, v in self.initial.items() if k not in written}
        self.kinds = {k: {_kind(v)} for k, v in self.initial.items()}
        for assignment in self._assignments(self.definition):
            for key, value in assignment.items():
                self.kinds.setdefault(key, {UNDEFINED}).add(self._written_kind(key, value))
        mapped = self._node(self.definition, "")
        for path, source in _exprs(mapped, ""):
            if not any(path == p or path.startswith((p + ".", p + "[")) for p in self.blocked_paths):
                self._block(path, f"`{source}` has no convention equivalent")
        return Mapped(mapped, list(dict.fromkeys(self.blockers)), self.event_fields)

    def _block(self, path: str, why: str) -> None:
        self.blockers.append(f"{path or 'the root'}: {why}")
        self.blocked_paths.append(path)

    # - context kinds -

    def _assignments(self, node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            if node.get("type") == "assign" and isinstance(node.get("assignment"), dict):
                yield node["assignment"]
            for value in node.values():
                yield from self._assignments(value)
        elif isinstance(node, list):
            for item in node:
                yield from self._assignments(item)

    def _written_kind(self, key: str, value: Any) -> str:
        try:
            action = self._assign_value(key, value, check=False)
        except Unmappable:
            return ANY  # blocked anyway; reported where the action is rewritten
        if action["type"] == "inc":
            return NUMBER
        if action["type"] == "set":
            return _kind(action["params"]["value"])
        return ANY  # setFromEvent

    def _kinds(self, key: str) -> set[str]:
        return self.kinds.get(key, {UNDEFINED})

    # - structure -

    def _node(self, node: Any, path: str) -> Any:
        if not isinstance(node, dict):
            return node
        out = dict(node)
        for key in ("entry", "exit"):
            if key in node:
                out[key] = self._actions(node[key], f"{path}.{key}" if path else key, event=None)
        if isinstance(node.get("on"), dict):
            out["on"] = {
                descriptor: self._transitions(t, f"{path}.on.{descriptor}" if path else f"on.{descriptor}", descriptor)
                for descriptor, t in node["on"].items()
            }
        if "always" in node:
            out["always"] = self._transitions(node["always"], f"{path}.always" if path else "always", None)
        if isinstance(node.get("after"), dict):
            after = {}
            for delay, t in node["after"].items():
                where = f"{path}.after.{delay}" if path else f"after.{delay}"
                if not _is_delay(delay):
                    self._block(where, f"the named delay {delay!r} needs an implementation")
                after[delay] = self._transitions(t, where, None)
            out["after"] = after
        if "onDone" in node:
            out["onDone"] = self._transitions(node["onDone"], f"{path}.onDone" if path else "onDone", None)
        if isinstance(node.get("initial"), dict):
            out["initial"] = self._transition(node["initial"], f"{path}.initial" if path else "initial", None)
        if "invoke" in node:
            self._block(f"{path}.invoke" if path else "invoke", "invokes a service (the convention has no services)")
        if "delays" in node:
            self._block(f"{path}.delays" if path else "delays", "defines named delays")
        if isinstance(node.get("states"), dict):
            out["states"] = {
                name: self._node(child, f"{path}.states.{name}" if path else f"states.{name}")
                for name, child in node["states"].items()
            }
        return out

    def _transitions(self, value: Any, path: str, event: str | None) -> Any:
        if isinstance(value, list):
            return [self._transition(t, f"{path}[{i}]", event) for i, t in enumerate(value)]
        return self._transition(value, path, event)

    def _transition(self, value: Any, path: str, event: str | None) -> Any:
        if not isinstance(value, dict):
            return value
        out = dict(value)
        if "guard" in value:
            out["guard"] = self._guard(value["guard"], f"{path}.guard", event)
        if "actions" in value:
            out["actions"] = self._actions(value["actions"], f"{path}.actions", event)
        return out

    # - actions -

    def _actions(self, value: Any, path: str, event: str | None) -> Any:
        if not isinstance(value, list):
            mapped = self._action(value, path, event)
            return mapped[0] if len(mapped) == 1 else mapped
        return [m for i, a in enumerate(value) for m in self._action(a, f"{path}[{i}]", event)]

    def _action(self, action: Any, path: str, event: str | None) -> list[Any]:
        if not isinstance(action, dict):
            return [action]  # a custom action by name: it records itself on both sides
        kind = action.get("type")
        if kind == "assign":
            assignment = action.get("assignment")
            if not isinstance(assignment, dict) or is_expr(assignment):
                self._block(path, "the assignment is computed as a whole")
                return [action]
            out, failed = [], False
            for key, value in assignment.items():
                try:
                    out.append(self._assign_value(key, value, event))
                except Unmappable as exc:
                    self._block(f"{path}.assignment.{key}", str(exc))
                    failed = True
            if failed:
                self.blocked_paths.append(path)
                return [action]
            return out
        if kind in _OTHER_BUILTINS:
            self._block(path, f"the built-in action {kind!r} is not in the convention")
        elif kind == "raise" and "delay" in action and not _is_delay(action["delay"]):
            self._block(path, f"the named delay {action['delay']!r} needs an implementation")
        return [action]  # raise / cancel / emit / a custom action with params; exprs left in are reported

    def _assign_value(self, key: str, value: Any, event: str | None = None, check: bool = True) -> dict[str, Any]:
        """One assigned value as ``inc`` / ``set`` / ``setFromEvent``. ``check=False``
        skips the check that ``inc`` only ever meets a number (while the kinds of the
        context are still being computed)."""
        if not is_expr(value):
            if _has_expr(value):
                raise Unmappable("a structure built from expressions")
            return {"type": "set", "params": {"key": key, "value": value}}
        source = value["expr"]
        node = _parse(source)
        literal = self._operand_literal(node)
        if literal is not _NO_LITERAL:
            return {"type": "set", "params": {"key": key, "value": literal}}
        field_name = _ref(node, "event")
        if field_name is not None:
            self._note_field(event, field_name, None)
            return {"type": "setFromEvent", "params": {"key": key, "field": field_name}}
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            right, left = _literal(node.right), _literal(node.left)
            if _ref(node.left, "context") == key and _is_number(right):
                by = right if isinstance(node.op, ast.Add) else -right
            elif isinstance(node.op, ast.Add) and _ref(node.right, "context") == key and _is_number(left):
                by = left  # N + context.K
            else:
                raise Unmappable(f"`{source}` is not `context.{key} + N`, `context.{key} - N`, a literal or `event.F`")
            if check and self._kinds(key) != {NUMBER}:
                raise Unmappable(
                    f"`{source}`: context.{key} may hold {_show(self._kinds(key))}, but `inc` reads a missing "
                    "key as 0 and adds with JavaScript's +"
                )
            return {"type": "inc", "params": {"key": key, "by": by}}
        raise Unmappable(f"`{source}` is not `context.{key} + N`, `context.{key} - N`, a literal or `event.F`")

    # - guards -

    def _guard(self, guard: Any, path: str, event: str | None) -> Any:
        if isinstance(guard, str):
            if guard not in GUARDS:
                self._block(path, f"the guard {guard!r} is not in the convention")
            return guard
        if not isinstance(guard, dict):
            return guard
        if is_expr(guard):
            try:
                return self._guard_expr(_parse(guard["expr"]), event)
            except Unmappable as exc:
                self._block(path, f"`{guard['expr']}`: {exc}")
                return guard
        kind = guard.get("type")
        if kind in ("and", "or"):
            parts = guard.get("guards", [])
            return {**guard, "guards": [self._guard(g, f"{path}.guards[{i}]", event) for i, g in enumerate(parts)]}
        if kind == "not":
            return {**guard, "guard": self._guard(guard.get("guard"), f"{path}.guard", event)}
        if kind != "stateIn" and kind not in GUARDS:
            self._block(path, f"the guard {kind!r} is not in the convention")
        return guard

    def _guard_expr(self, node: ast.expr, event: str | None) -> Any:
        if isinstance(node, ast.BoolOp):
            parts = [self._guard_expr(v, event) for v in node.values]
            return {"type": "and" if isinstance(node.op, ast.And) else "or", "guards": parts}
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return _not(self._guard_expr(node.operand, event))
        if isinstance(node, ast.Compare):
            left, pairs = node.left, []
            for op, right in zip(node.ops, node.comparators):
                pairs.append(self._compare(left, op, right, event))
                left = right
            return _all(pairs)
        literal = self._operand_literal(node)
        if literal is not _NO_LITERAL:
            return "yes" if literal else "no"
        key = _ref(node, "context")
        if key is not None:
            return self._truthy(key)
        raise Unmappable("no convention guard for this expression")

    def _operand_literal(self, node: ast.expr) -> Any:
        """A literal, or a context key no action assigns (a constant)."""
        key = _ref(node, "context")
        if key is not None and key in self.constants and _kind(self.constants[key]) != OBJECT:
            return self.constants[key]
        return _literal(node)

    def _truthy(self, key: str) -> Any:
        """``context.K`` as a guard: K is not any of the falsy values of its kinds."""
        kinds = self._kinds(key)
        if not kinds <= set(_FALSY):
            raise Unmappable(f"the truth of context.{key}, which may hold {_show(kinds)}")
        if kinds == {BOOL}:
            return _ctx_guard("ctxEq", key, True)
        # one falsy value per kind (not deduplicated by ==, which takes 0 for False)
        falsy = [_FALSY[k] for k in sorted(kinds - {UNDEFINED} if NULL in kinds else kinds)]
        return _all([_not(_ctx_guard("ctxEq", key, value)) for value in falsy])

    def _compare(self, left: ast.expr, op: ast.cmpop, right: ast.expr, event: str | None) -> Any:
        kind: type[ast.cmpop] = type(op)
        if kind not in _PYTHON_COMPARE:
            raise Unmappable(f"the comparison {type(op).__name__} has no convention guard")
        a, b = self._operand_literal(left), self._operand_literal(right)
        if a is not _NO_LITERAL and b is not _NO_LITERAL:
            try:
                return "yes" if _PYTHON_COMPARE[kind](a, b) else "no"
            except TypeError as exc:
                raise Unmappable(f"fsm fails on it ({exc})") from None
        if a is not _NO_LITERAL:  # literal OP ref -> ref FLIPPED-OP literal
            left, right, b, kind = right, left, a, _FLIP[kind]
        if b is _NO_LITERAL:
            raise Unmappable("one side of a comparison must be a literal or a constant context key")
        key = _ref(left, "context")
        if key is not None:
            return self._compare_context(key, kind, b)
        field_name = _ref(left, "event")
        if field_name is not None:
            return self._compare_event(field_name, kind, b, event)
        raise Unmappable("a comparison of something other than context.K or event.F")

    def _compare_context(self, key: str, kind: type[ast.cmpop], value: Any) -> Any:
        kinds = self._kinds(key)
        symbol = _SYMBOL[kind]
        if kind in (ast.Eq, ast.NotEq):
            if not _same_equality(kinds, value):
                raise Unmappable(
                    f"context.{key} (which may hold {_show(kinds)}) {symbol} {value!r}: Python == and "
                    "JavaScript === differ between booleans and numbers"
                )
            guard = _ctx_guard("ctxEq", key, value)
            return guard if kind is ast.Eq else _not(guard)
        if kinds != {NUMBER} or not _is_number(value):
            raise Unmappable(
                f"context.{key} {symbol} {value!r} with context.{key} holding {_show(kinds)}: ctxLt / ctxGe "
                "compare numbers and read a missing key as 0"
            )
        lt, ge, eq = (_ctx_guard(k, key, value) for k in ("ctxLt", "ctxGe", "ctxEq"))
        if kind is ast.Lt:
            return lt
        if kind is ast.GtE:
            return ge
        if kind is ast.LtE:  # K <= N  is  K < N or K == N (no NaN in JSON)
            return {"type": "or", "guards": [lt, eq]}
        return {"type": "and", "guards": [ge, _not(eq)]}  # K > N  is  K >= N and not K == N

    def _compare_event(self, field_name: str, kind: type[ast.cmpop], value: Any, event: str | None) -> Any:
        self._note_field(event, field_name, value)
        if kind not in (ast.Eq, ast.NotEq):
            raise Unmappable(f"no convention guard orders event.{field_name}")
        if not isinstance(value, str):
            raise Unmappable(
                f"event.{field_name} == {value!r}: eventEq is JavaScript === (a missing field is undefined, "
                "booleans are not numbers); only a string literal compares the same way on both sides"
            )
        guard = {"type": "eventEq", "params": {"field": field_name, "value": value}}
        return guard if kind is ast.Eq else _not(guard)

    def _note_field(self, event: str | None, field_name: str, value: Any) -> None:
        if event is None or "*" in event:
            return
        values = self.event_fields.setdefault(event, {}).setdefault(field_name, [])
        if value is not None and value not in values:
            values.append(value)


def _same_equality(kinds: set[str], value: Any) -> bool:
    """Python ``x == value`` and JavaScript ``(x ?? null) === value`` agree for every x of
    these kinds: they differ only between a boolean and a number, and for objects."""
    if isinstance(value, (dict, list)):
        return False
    if isinstance(value, bool):
        return not kinds & {NUMBER, ANY}
    if _is_number(value):
        return not kinds & {BOOL, ANY}
    return True  # a string or None


def _is_delay(value: Any) -> bool:
    if _is_number(value):
        return True
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def _show(kinds: set[str]) -> str:
    return " or ".join(sorted(kinds))
