"""The safe expression language used by pure-data machines.

Machines written as JSON/YAML sometimes need to compute: compare a counter, add one,
build an event payload. Instead of ``eval`` (which would let a machine file run any code),
expressions are parsed with :mod:`ast`, checked against a whitelist and compiled ONCE, at
load time, into a tree of Python closures. Anything outside the whitelist is refused at
load with the offending construct named; evaluation cannot import, call arbitrary
functions, reach dunder attributes, or do unbounded work (results of ``*`` and ``**`` are
size-checked before they are built).

The language is a small subset of Python expressions. Names: ``context``, ``event``,
``params`` (and ``input`` where a value is computed from invocation input). ``a.b`` reads
key ``b`` of mapping ``a`` (missing keys read as ``None``, like JavaScript's
``undefined``); ``a["b"]`` and ``a[0]`` work too. ``true``/``false``/``null`` are accepted
as aliases of ``True``/``False``/``None`` so JSON authors need not switch vocabulary.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

from fsm.errors import ExpressionError

Env = Mapping[str, Any]
Compiled = Callable[[Env], Any]

MAX_SOURCE = 2000
MAX_NODES = 400
MAX_SEQUENCE = 100_000
MAX_INT_BITS = 4096
MAX_EXPONENT = 1000

NAMES = frozenset({"context", "event", "params", "input"})
CONSTANTS: dict[str, Any] = {
    "True": True,
    "False": False,
    "None": None,
    "true": True,
    "false": False,
    "null": None,
}


class _Refused(ValueError):
    """Work the language refuses (too large, or not allowed), as opposed to an ordinary
    failure of the data (division by zero, a missing key)."""


def _check_size(value: Any) -> Any:
    if isinstance(value, (str, list, tuple)) and len(value) > MAX_SEQUENCE:
        raise _Refused(f"result longer than {MAX_SEQUENCE} items")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise _Refused(f"integer larger than {MAX_INT_BITS} bits")
    return value


def _weight(value: Any, limit: int = MAX_SEQUENCE) -> int:
    """How many items a value holds, counting every path to a shared list again (so
    ``[[0] * 1000] * 1000`` weighs a million); stops counting past ``limit``."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            total += len(item)
            stack.extend(x for x in item if isinstance(x, (list, tuple, dict)))
        elif isinstance(item, dict):
            total += len(item)
            stack.extend(x for x in item.values() if isinstance(x, (list, tuple, dict)))
        elif isinstance(item, str):
            total += len(item)
        if total > limit:
            return total
    return total


def _mul(a: Any, b: Any) -> Any:
    for seq, n in ((a, b), (b, a)):
        if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and _weight(seq) * max(n, 0) > MAX_SEQUENCE:
            raise _Refused(f"result longer than {MAX_SEQUENCE} items")
    return _check_size(a * b)


def _mod(a: Any, b: Any) -> Any:
    if isinstance(a, (str, bytes)):
        raise _Refused("string formatting with % is not allowed; build strings with +")
    return a % b


def _pow(a: Any, b: Any) -> Any:
    if isinstance(b, (int, float)) and abs(b) > MAX_EXPONENT:
        raise _Refused(f"exponent larger than {MAX_EXPONENT}")
    if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1 and a.bit_length() * b > MAX_INT_BITS:
        raise _Refused(f"integer larger than {MAX_INT_BITS} bits")
    return _check_size(a**b)


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and _weight(a) + _weight(b) > MAX_SEQUENCE:
        raise _Refused(f"result longer than {MAX_SEQUENCE} items")
    return _check_size(a + b)


def _div(a: Any, b: Any) -> Any:
    return a / b


BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: _add,
    ast.Sub: operator.sub,
    ast.Mult: _mul,
    ast.Div: _div,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: _mod,
    ast.Pow: _pow,
}

COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}


def _get(obj: Any, key: Any, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    if isinstance(obj, (list, tuple, str)) and isinstance(key, int) and not isinstance(key, bool):
        try:
            return obj[key]
        except IndexError:
            return default
    return default


def _round(x: Any, n: Any = None) -> Any:
    if n is None:
        return round(x)
    if not isinstance(n, int) or abs(n) > 1000:
        raise ValueError("round() takes at most 1000 digits")
    return round(x, n)


def _sum(items: Any, start: Any = 0) -> Any:
    values = list(items)
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in [*values, start]):
        raise ValueError("sum() adds numbers only; concatenate lists with +")
    return sum(values, start)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len,
    "min": min,
    "max": max,
    "abs": abs,
    "round": _round,
    "int": int,
    "float": float,
    "str": lambda x: _check_size(str(x)),
    "bool": bool,
    "sum": _sum,
    "any": any,
    "all": all,
    "sorted": sorted,
    "lower": lambda s: s.lower(),
    "upper": lambda s: s.upper(),
    "startswith": lambda s, p: s.startswith(p),
    "endswith": lambda s, p: s.endswith(p),
    "keys": lambda m: list(m.keys()),
    "values": lambda m: list(m.values()),
    "get": _get,
    "floor": math.floor,
    "ceil": math.ceil,
}


class Expression:
    """A compiled expression: call it with an environment mapping to evaluate."""

    __slots__ = ("_fn", "names", "path", "source")

    names: frozenset[str]

    def __init__(self, source: str, path: str = "") -> None:
        self.source = source
        self.path = path
        self._fn, self.names = _compiled(source, path)

    def __call__(self, env: Env) -> Any:
        try:
            return self._fn(env)
        except ExpressionError:
            raise
        except Exception as exc:  # the user's data did not fit the expression
            raise ExpressionError(f"{type(exc).__name__}: {exc}", self.source, self.path) from exc

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


_CACHE: dict[str, tuple[Compiled, frozenset[str]]] = {}


def _compiled(source: str, path: str) -> tuple[Compiled, frozenset[str]]:
    """Compile once per distinct source: machines (compiled sagas, DAGs) repeat the same
    expression many times, and a compiled expression does not depend on where it is."""
    if isinstance(source, str):
        found = _CACHE.get(source)
        if found is not None:
            return found
    names: set[str] = set()
    fn = _compile(source, path, names)
    result = (fn, frozenset(names))
    if len(_CACHE) < 10_000:
        _CACHE[source] = result
    return result


def _compile(source: str, path: str, names: set[str]) -> Compiled:
    if not isinstance(source, str):
        raise ExpressionError("an expression must be a string", repr(source), path)
    if len(source) > MAX_SOURCE:
        raise ExpressionError(f"longer than {MAX_SOURCE} characters", source[:40] + "...", path)
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error: {exc.msg}", source, path) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError("too deeply nested", source, path) from None
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise ExpressionError(f"too complex ({count} syntax nodes, at most {MAX_NODES})", source, path)
    return _Compiler(source, path, names).visit(tree.body)


_VARIABLE = object()  # fold(): not a constant


class _Compiler:
    def __init__(self, source: str, path: str, names: set[str]) -> None:
        self.source = source
        self.path = path
        self.names = names

    def refuse(self, what: str) -> ExpressionError:
        return ExpressionError(f"{what} is not allowed in expressions", self.source, self.path)

    def visit(self, node: ast.AST) -> Compiled:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise self.refuse(_describe(node))
        result: Compiled = method(node)
        return result

    def visit_Constant(self, node: ast.Constant) -> Compiled:
        value = node.value
        if not isinstance(value, (int, float, str, bool, type(None))):
            raise self.refuse(f"the constant {value!r}")
        return lambda env: value

    def visit_Name(self, node: ast.Name) -> Compiled:
        name = node.id
        if name in CONSTANTS:
            value = CONSTANTS[name]
            return lambda env: value
        if name in NAMES:
            self.names.add(name)
            return lambda env: env.get(name)
        if name in FUNCTIONS:
            raise self.refuse(f"using the function {name!r} without calling it")
        raise ExpressionError(
            f"unknown name {name!r}; use one of {', '.join(sorted(NAMES))} or a literal",
            self.source,
            self.path,
        )

    def visit_Attribute(self, node: ast.Attribute) -> Compiled:
        if node.attr.startswith("_"):
            raise self.refuse(f"the attribute {node.attr!r} (names starting with '_')")
        base = self.visit(node.value)
        key = node.attr
        return lambda env: _get(base(env), key)

    def visit_Subscript(self, node: ast.Subscript) -> Compiled:
        if isinstance(node.slice, ast.Slice):
            raise self.refuse("slicing")
        base = self.visit(node.value)
        index = self.visit(node.slice)

        def subscript(env: Env) -> Any:
            key = index(env)
            if isinstance(key, str) and key.startswith("__"):
                raise ValueError(f"the key {key!r} is not allowed")
            return _get(base(env), key)

        return subscript

    def fold(self, node: ast.AST) -> Any:
        """The value of arithmetic over literals (``10 ** 9``, ``'a' * 3``, ``-1``),
        computed once, here, under the same limits as evaluation: work over the limits
        that no data can change is refused at load, not at the first step that reaches
        it. ``_VARIABLE`` when the value depends on the context, the event or a function
        call, or when computing it fails in an ordinary way (left to evaluation)."""
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
            return node.value
        try:
            if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
                value = self.fold(node.operand)
                if value is _VARIABLE:
                    return value
                return -value if isinstance(node.op, ast.USub) else +value
            if isinstance(node, ast.BinOp) and type(node.op) in BINOPS:
                left = self.fold(node.left)
                right = self.fold(node.right) if left is not _VARIABLE else _VARIABLE
                if right is _VARIABLE:
                    return _VARIABLE
                return BINOPS[type(node.op)](left, right)
        except _Refused as exc:
            raise ExpressionError(f"it cannot be computed: {exc}", self.source, self.path) from None
        except Exception:
            # an ordinary failure (1 / 0): raised when evaluated, if ever (`x and 1 / 0`)
            return _VARIABLE
        return _VARIABLE

    def visit_BinOp(self, node: ast.BinOp) -> Compiled:
        op = BINOPS.get(type(node.op))
        if op is None:
            raise self.refuse(f"the operator {type(node.op).__name__}")
        left, right = self.visit(node.left), self.visit(node.right)
        value = self.fold(node)
        if value is not _VARIABLE:
            return lambda env: value
        return lambda env: op(left(env), right(env))

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Compiled:
        value = self.fold(node)
        if value is not _VARIABLE:
            self.visit(node.operand)
            return lambda env: value
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda env: not operand(env)
        if isinstance(node.op, ast.USub):
            return lambda env: -operand(env)
        if isinstance(node.op, ast.UAdd):
            return lambda env: +operand(env)
        raise self.refuse(f"the operator {type(node.op).__name__}")

    def visit_BoolOp(self, node: ast.BoolOp) -> Compiled:
        parts = [self.visit(v) for v in node.values]
        if isinstance(node.op, ast.And):

            def and_(env: Env) -> Any:
                value: Any = True
                for part in parts:
                    value = part(env)
                    if not value:
                        return value
                return value

            return and_

        def or_(env: Env) -> Any:
            value: Any = False
            for part in parts:
                value = part(env)
                if value:
                    return value
            return value

        return or_

    def visit_Compare(self, node: ast.Compare) -> Compiled:
        first = self.visit(node.left)
        ops = []
        for op, comparator in zip(node.ops, node.comparators):
            fn = COMPARE.get(type(op))
            if fn is None:
                raise self.refuse(f"the comparison {type(op).__name__}")
            ops.append((fn, self.visit(comparator)))

        def compare(env: Env) -> bool:
            left = first(env)
            for fn, right_fn in ops:
                right = right_fn(env)
                if not fn(left, right):
                    return False
                left = right
            return True

        return compare

    def visit_IfExp(self, node: ast.IfExp) -> Compiled:
        test, body, orelse = self.visit(node.test), self.visit(node.body), self.visit(node.orelse)
        return lambda env: body(env) if test(env) else orelse(env)

    def visit_List(self, node: ast.List) -> Compiled:
        items = [self.visit(e) for e in node.elts]
        return lambda env: [item(env) for item in items]

    visit_Tuple = visit_List

    def visit_Dict(self, node: ast.Dict) -> Compiled:
        if any(k is None for k in node.keys):
            raise self.refuse("dictionary unpacking (**)")
        keys = [self.visit(k) for k in node.keys if k is not None]
        values = [self.visit(v) for v in node.values]
        return lambda env: {k(env): v(env) for k, v in zip(keys, values)}

    def visit_Call(self, node: ast.Call) -> Compiled:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            what = node.func.id if isinstance(node.func, ast.Name) else _describe(node.func)
            allowed = ", ".join(sorted(FUNCTIONS))
            raise ExpressionError(
                f"calling {what!r} is not allowed; the functions available are {allowed}",
                self.source,
                self.path,
            )
        if node.keywords:
            raise self.refuse("keyword arguments")
        fn = FUNCTIONS[node.func.id]
        args = [self.visit(a) for a in node.args]
        return lambda env: _check_size(fn(*[a(env) for a in args]))


def _describe(node: ast.AST) -> str:
    names = {
        "Lambda": "lambda",
        "ListComp": "a comprehension",
        "SetComp": "a comprehension",
        "DictComp": "a comprehension",
        "GeneratorExp": "a generator",
        "NamedExpr": "assignment (:=)",
        "Await": "await",
        "Yield": "yield",
        "YieldFrom": "yield",
        "JoinedStr": "an f-string",
        "Starred": "unpacking (*)",
        "Set": "a set literal",
    }
    return names.get(type(node).__name__, f"the construct {type(node).__name__}")


def is_expr(value: Any) -> bool:
    """True for the ``{"expr": "..."}`` form that marks a computed value in a definition."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("expr"), str)


def compile_value(value: Any, path: str = "") -> Compiled | None:
    """Compile a JSON value that may contain ``{"expr": ...}`` parts anywhere inside.

    Returns None when the value is constant, so callers can keep the constant itself and
    skip evaluation on the hot path.
    """
    if is_expr(value):
        return Expression(value["expr"], path)
    if isinstance(value, dict):
        parts = {k: compile_value(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
        if all(p is None for p in parts.values()):
            return None
        items = [(k, parts[k] or _const(v)) for k, v in value.items()]
        return lambda env: {k: fn(env) for k, fn in items}
    if isinstance(value, list):
        list_parts = [compile_value(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if all(p is None for p in list_parts):
            return None
        fns = [p or _const(v) for p, v in zip(list_parts, value)]
        return lambda env: [fn(env) for fn in fns]
    return None


def _const(value: Any) -> Compiled:
    return lambda env: value
