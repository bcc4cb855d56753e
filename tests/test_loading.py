"""Reading machine definitions from JSON and YAML text and files.

Every failure to read or parse is a :class:`fsm.LoadError` (a DefinitionError) naming the
line, never a parser traceback or a RecursionError; hostile documents (deep nesting, YAML
alias bombs) are refused quickly; YAML 1.1 traps (``on:`` -> True) are avoided.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

import fsm
from fsm import DefinitionError, LoadError, Machine

TOGGLE: dict[str, Any] = {
    "id": "toggle",
    "initial": "off",
    "states": {"off": {"on": {"FLIP": "on"}}, "on": {"on": {"FLIP": "off"}}},
}

TOGGLE_YAML = """\
id: toggle
initial: "off"
states:
  "off":
    on:
      FLIP: "on"
  "on":
    on:
      FLIP: "off"
"""


def flip_twice(machine: Machine) -> list[Any]:
    snap, _ = machine.initial_transition()
    values = [snap.value]
    for _ in range(2):
        snap, _ = machine.transition(snap, "FLIP")
        values.append(snap.value)
    return values


def assert_no_recursion(exc: BaseException) -> None:
    """The error chain holds no RecursionError (it was turned into a clean fsm error)."""
    seen: BaseException | None = exc
    while seen is not None:
        assert not isinstance(seen, RecursionError)
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)


# ------------------------------------------------------------------------- happy paths


def test_load_error_is_a_definition_error() -> None:
    assert issubclass(LoadError, DefinitionError)
    assert issubclass(DefinitionError, fsm.FsmError)


@pytest.mark.parametrize(
    "load",
    [
        pytest.param(lambda: Machine.from_dict(TOGGLE), id="dict"),
        pytest.param(lambda: Machine.from_json(json.dumps(TOGGLE)), id="json"),
        pytest.param(lambda: Machine.from_yaml(TOGGLE_YAML), id="yaml"),
    ],
)
def test_every_loader_gives_the_same_machine(load: Any) -> None:
    machine = load()
    assert machine.id == "toggle"
    assert machine.definition == TOGGLE
    assert flip_twice(machine) == ["off", "on", "off"]


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml", ".JSON", ".YML"])
def test_from_file_by_suffix(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"toggle{suffix}"
    text = json.dumps(TOGGLE) if suffix.lower() == ".json" else TOGGLE_YAML
    path.write_text(text, encoding="utf-8")
    machine = Machine.from_file(path)
    assert machine.definition == TOGGLE
    assert machine.source == str(path)
    assert flip_twice(machine) == ["off", "on", "off"]
    # a str path works too
    assert Machine.from_file(str(path)).definition == TOGGLE


def test_from_file_json_text_in_a_yaml_file(tmp_path: Path) -> None:
    # JSON is (nearly) YAML: a .yaml file holding JSON loads.
    path = tmp_path / "m.yaml"
    path.write_text(json.dumps(TOGGLE), encoding="utf-8")
    assert Machine.from_file(path).definition == TOGGLE


def test_from_file_unknown_suffix(tmp_path: Path) -> None:
    path = tmp_path / "toggle.toml"
    path.write_text(json.dumps(TOGGLE), encoding="utf-8")
    with pytest.raises(LoadError) as info:
        Machine.from_file(path)
    message = str(info.value)
    assert "'.toml'" in message
    assert ".json" in message and ".yaml" in message
    assert str(path) in message
    assert info.value.source == str(path)


def test_from_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(LoadError) as info:
        Machine.from_file(path)
    assert "not found" in str(info.value)
    assert str(path) in str(info.value)


def test_from_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(b'{"id": "\xff\xfe"}')
    with pytest.raises(LoadError):
        Machine.from_file(path)


def test_from_file_directory(tmp_path: Path) -> None:
    path = tmp_path / "dir.json"
    path.mkdir()
    with pytest.raises(LoadError):
        Machine.from_file(path)


# ------------------------------------------------------------------------- syntax errors


@pytest.mark.parametrize(
    ("loader", "text", "line"),
    [
        pytest.param(Machine.from_json, '{\n  "id": "m",\n  "initial": \n}\n', 4, id="json-missing-value"),
        pytest.param(Machine.from_json, '{\n  "id": "m"\n  "initial": "a"\n}', 3, id="json-missing-comma"),
        pytest.param(Machine.from_json, '{"id": "m",\n\n\n "x": [1, 2,]}', 4, id="json-trailing-comma"),
        pytest.param(Machine.from_json, "", 1, id="json-empty"),
        pytest.param(
            Machine.from_yaml, "id: m\ninitial: a\nstates:\n  a: [1, 2\n  b: {}\n", 5, id="yaml-unclosed-flow"
        ),
        pytest.param(Machine.from_yaml, "id: m\nstates:\n  a:\n    on: {\n", 5, id="yaml-unclosed-map"),
        pytest.param(Machine.from_yaml, "id: m\n  bad: indentation\n", 2, id="yaml-bad-indent"),
        pytest.param(Machine.from_yaml, "id: m\nx: *undefined_alias\n", 2, id="yaml-unknown-alias"),
    ],
)
def test_syntax_errors_name_the_line(loader: Any, text: str, line: int) -> None:
    with pytest.raises(LoadError) as info:
        loader(text, source="machine.txt")
    err = info.value
    assert isinstance(err, DefinitionError)
    assert len(err.problems) == 1
    assert err.problems[0].path == f"line {line}"
    assert f"line {line}" in str(err)
    assert "machine.txt" in str(err)
    assert err.source == "machine.txt"


def test_json_syntax_error_in_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "id": "m",\n  "states": {\n    "a": {,}\n  }\n}\n', encoding="utf-8")
    with pytest.raises(LoadError) as info:
        Machine.from_file(path)
    assert str(path) in str(info.value)
    assert info.value.problems[0].path == "line 4"


def test_yaml_syntax_error_in_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text("id: m\ninitial: a\nstates:\n  a:\n    on: [\n", encoding="utf-8")
    with pytest.raises(LoadError) as info:
        Machine.from_file(path)
    assert str(path) in str(info.value)
    assert info.value.problems[0].path == "line 6"


@pytest.mark.parametrize(
    ("loader", "text"),
    [
        (Machine.from_json, "[1, 2]"),
        (Machine.from_json, '"a string"'),
        (Machine.from_json, "null"),
        (Machine.from_yaml, "- 1\n- 2\n"),
        (Machine.from_yaml, "just text"),
        (Machine.from_yaml, ""),
    ],
)
def test_document_must_be_a_mapping(loader: Any, text: str) -> None:
    with pytest.raises(DefinitionError) as info:
        loader(text)
    assert "expected an object" in str(info.value)


# ------------------------------------------------------------------------- hostile input

DEPTH = 10_000


@pytest.mark.parametrize(
    ("loader", "text"),
    [
        pytest.param(Machine.from_json, "[" * DEPTH + "]" * DEPTH, id="json-lists"),
        pytest.param(Machine.from_json, '{"a": ' * DEPTH + "1" + "}" * DEPTH, id="json-maps"),
        pytest.param(Machine.from_json, '{"id": "m", "context": ' + "[" * DEPTH + "]" * DEPTH + "}", id="json-inside"),
        pytest.param(Machine.from_yaml, "[" * DEPTH + "]" * DEPTH, id="yaml-flow-lists"),
        pytest.param(Machine.from_yaml, "{a: " * DEPTH + "1" + "}" * DEPTH, id="yaml-flow-maps"),
        pytest.param(Machine.from_yaml, "".join("  " * i + "a:\n" for i in range(3000)), id="yaml-block-maps"),
        pytest.param(Machine.from_yaml, "".join("  " * i + "-\n" for i in range(3000)), id="yaml-block-lists"),
    ],
)
def test_deeply_nested_documents_give_a_clean_error(loader: Any, text: str) -> None:
    start = time.process_time()
    with pytest.raises(LoadError) as info:
        loader(text)
    assert time.process_time() - start < 2.0
    assert_no_recursion(info.value)
    assert "nest" in str(info.value) or "deep" in str(info.value)


def _nested_states(depth: int) -> dict[str, Any]:
    """A machine whose states are nested ``depth`` levels deep, built without recursion."""
    root: dict[str, Any] = {"id": "deep"}
    node = root
    for _ in range(depth):
        child: dict[str, Any] = {}
        node["initial"] = "s"
        node["states"] = {"s": child}
        node = child
    return root


@pytest.mark.parametrize("depth", [DEPTH, 1_000, 200])
def test_deeply_nested_states_give_a_definition_error(depth: int) -> None:
    definition = _nested_states(depth)
    start = time.process_time()
    with pytest.raises(DefinitionError) as info:
        Machine.from_dict(definition)
    assert time.process_time() - start < 2.0
    assert_no_recursion(info.value)
    assert "deep" in str(info.value) or "nest" in str(info.value)


def test_deeply_nested_states_from_json_and_yaml() -> None:
    text = json.dumps(_nested_states(300))  # json.dumps copes with this depth
    with pytest.raises(DefinitionError) as info:
        Machine.from_json(text)
    assert_no_recursion(info.value)
    with pytest.raises(DefinitionError) as info:
        Machine.from_yaml(text)
    assert_no_recursion(info.value)


def test_moderately_nested_states_work() -> None:
    # Well inside the limits: the whole pipeline (schema, model, step, snapshot) copes.
    machine = Machine.from_dict(_nested_states(20))
    snap, _ = machine.initial_transition()
    assert len(snap.nodes) == 21
    assert snap.matches(".".join(["s"] * 20))
    restored = machine.snapshot_from_dict(json.loads(json.dumps(snap.to_dict())))
    assert restored == snap


def _alias_bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("levels", "via_file"), [(9, False), (30, True)])
def test_yaml_alias_bomb_is_refused_quickly(tmp_path: Path, levels: int, via_file: bool) -> None:
    # 9 levels: 9**9 (387 million) strings once expanded; 30 levels: 9**30.
    text = _alias_bomb(levels)
    start = time.process_time()
    with pytest.raises(LoadError) as info:
        if via_file:
            path = tmp_path / "bomb.yaml"
            path.write_text(text, encoding="utf-8")
            Machine.from_file(path)
        else:
            Machine.from_yaml(text, source="bomb.yaml")
    assert time.process_time() - start < 5.0
    assert "too large" in str(info.value)
    assert "bomb.yaml" in str(info.value)


def test_modest_yaml_aliases_are_fine() -> None:
    text = """\
id: m
initial: a
context:
  defaults: &defaults {retries: 3, timeout: 10}
  copy: *defaults
states:
  a: {}
"""
    machine = Machine.from_yaml(text)
    assert machine.definition["context"] == {
        "defaults": {"retries": 3, "timeout": 10},
        "copy": {"retries": 3, "timeout": 10},
    }


def test_yaml_python_tags_are_refused() -> None:
    with pytest.raises(LoadError):
        Machine.from_yaml("id: !!python/object/apply:os.system ['true']\n")


# ------------------------------------------------------------------------- YAML 1.2 scalars


def test_yaml_on_key_stays_a_string() -> None:
    machine = Machine.from_yaml(
        """\
id: m
initial: idle
states:
  idle:
    on:
      GO: busy
  busy:
    on:
      STOP: idle
"""
    )
    idle = machine.definition["states"]["idle"]
    assert "on" in idle
    assert True not in idle
    snap, _ = machine.initial_transition()
    snap, _ = machine.transition(snap, "GO")
    assert snap.value == "busy"


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "y", "n", "Yes", "NO", "On", "OFF"])
def test_yaml_1_1_booleans_stay_strings(word: str) -> None:
    machine = Machine.from_yaml(
        f"""\
id: m
initial: {word}
context:
  flag: {word}
  list: [{word}]
states:
  {word}:
    tags: [{word}]
    on:
      {word}: {word}
"""
    )
    definition = machine.definition
    assert definition["initial"] == word
    assert definition["context"] == {"flag": word, "list": [word]}
    state = definition["states"][word]
    assert state["tags"] == [word]
    assert state["on"] == {word: word}
    snap, _ = machine.initial_transition()
    assert snap.value == word
    assert snap.has_tag(word)


@pytest.mark.parametrize(("text", "value"), [("true", True), ("false", False), ("True", True), ("FALSE", False)])
def test_yaml_true_false_are_booleans(text: str, value: bool) -> None:
    machine = Machine.from_yaml(f"id: m\ninitial: a\ncontext:\n  flag: {text}\nstates:\n  a: {{}}\n")
    assert machine.definition["context"]["flag"] is value


def test_yaml_dates_stay_strings() -> None:
    machine = Machine.from_yaml("id: m\ninitial: a\ncontext:\n  day: 2024-01-02\nstates:\n  a: {}\n")
    assert machine.definition["context"]["day"] == "2024-01-02"
    json.dumps(machine.definition)  # JSON data only


@pytest.mark.parametrize("key", ["1000", "1000.0", "'1000'"])
def test_yaml_after_with_int_keys(key: str) -> None:
    machine = Machine.from_yaml(
        f"""\
id: m
initial: a
states:
  a:
    after:
      {key}: b
  b: {{}}
"""
    )
    assert list(machine.definition["states"]["a"]["after"]) == ["1000"]
    snap, _ = machine.initial_transition()
    assert [t.id for t in snap.timers] == ["xstate.after.1000.m.a"]
    assert snap.timers[0].due == 1000
    snap, _ = machine.transition(snap, snap.timers[0].event, timer=snap.timers[0].id)
    assert snap.value == "b"
    assert snap.timers == ()


def test_yaml_other_non_string_keys_become_strings() -> None:
    machine = Machine.from_yaml(
        "id: m\ninitial: a\ncontext:\n  1: one\n  null: nothing\n  2.5: half\nstates:\n  a: {}\n"
    )
    assert machine.definition["context"] == {"1": "one", "null": "nothing", "2.5": "half"}


def test_yaml_keys_1_and_true_stay_distinct() -> None:
    # js-yaml (and so XState users) gets two keys, "1" and "true".
    machine = Machine.from_yaml("id: m\ninitial: a\ncontext:\n  1: one\n  true: yes\nstates:\n  a: {}\n")
    assert machine.definition["context"] == {"1": "one", "true": "yes"}


def test_loaded_definition_is_plain_json(tmp_path: Path) -> None:
    machine = Machine.from_yaml(TOGGLE_YAML)
    assert json.loads(json.dumps(machine.definition)) == machine.definition
