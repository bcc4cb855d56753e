"""Reading definitions from JSON and YAML text, safely.

Parsers are the first place hostile or broken input arrives, so this module turns every
parser failure (syntax errors, documents nested thousands of levels deep, YAML alias
bombs) into a :class:`~fsm.errors.LoadError` naming the file and line, never a
RecursionError or a traceback from inside a parser.

YAML is read with YAML 1.2 booleans: only ``true``/``false`` are booleans, so the XState
key ``on:`` stays the string ``"on"`` instead of becoming ``True`` as YAML 1.1 would have
it (the same trap GitHub Actions files fall into).
"""

from __future__ import annotations

import functools
import json
import os
import re
from typing import Any

from fsm.errors import LoadError, Problem

MAX_NODES = 2_000_000
MAX_DEPTH = 2_000


def _construct_map(loader: Any, node: Any) -> Any:
    """Mappings with string keys, as in JSON: ``1000:`` becomes ``"1000"``. Converting
    while constructing (not afterwards) keeps ``1:`` and ``true:`` distinct."""
    data: dict[str, Any] = {}
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=False)
        data[_key_text(key)] = loader.construct_object(value_node, deep=False)


@functools.cache
def _loader() -> type:
    """The YAML loader, built on first use: PyYAML costs ~20 ms to import, which every
    ``import fsm`` would otherwise pay even when it only ever reads JSON."""
    import yaml

    base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):
        """SafeLoader with YAML 1.2 scalars: ``on``/``off``/``yes``/``no`` and dates stay strings."""

    # YAML 1.1 booleans (yes/no/on/off) and timestamps are not JSON; keep them as strings.
    dropped = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in dropped]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )
    return Loader


def _fail(source: str | None, message: str, line: int | None = None) -> LoadError:
    where = f"line {line}" if line else ""
    return LoadError([Problem(where, message)], source)


def parse_json(text: str, source: str | None = None) -> Any:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(source, f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", exc.lineno) from None
    except RecursionError:
        raise _fail(source, "the JSON document is nested too deeply") from None
    return check_document(data, source)


def parse_yaml(text: str, source: str | None = None) -> Any:
    import yaml

    try:
        data = yaml.load(text, Loader=_loader())
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise _fail(source, f"invalid YAML: {exc.problem or exc}", line) from None
    except yaml.YAMLError as exc:
        raise _fail(source, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise _fail(source, "the YAML document is nested too deeply") from None
    return check_document(data, source)


def read_file(path: str | os.PathLike[str]) -> Any:
    """Parse a .json, .yaml or .yml file into plain data."""
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise _fail(source, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(source, f"cannot read the file: {exc}") from None
    suffix = os.path.splitext(source)[1].lower()
    if suffix == ".json":
        return parse_json(text, source)
    if suffix in (".yaml", ".yml"):
        return parse_yaml(text, source)
    raise _fail(source, f"unknown file type {suffix!r}: use .json, .yaml or .yml")


def check_document(data: Any, source: str | None) -> Any:
    """Refuse documents too large or too deep to process safely (iteratively, so the
    check itself cannot overflow the stack). Shared YAML aliases count every time they
    are reached, which is what defuses alias bombs."""
    seen = 0
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise _fail(source, f"the document is too large (more than {MAX_NODES} values, counting YAML aliases)")
        if depth > MAX_DEPTH:
            raise _fail(source, f"the document is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return data


def _key_text(key: Any) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return str(key)
