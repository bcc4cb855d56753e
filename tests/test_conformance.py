"""Differential conformance: generated machines run through fsm and through XState v5.

The traces (state value, context, custom actions, emitted events, status, output) must be
identical after every step. On a disagreement hypothesis shrinks the case and the failure
message shows the machine, the steps and both traces from the first differing step.

Example counts: 200 by default (CI), the hypothesis profile's count when larger
(``HYPOTHESIS_PROFILE=long`` runs 5,000), or ``FSM_CONFORMANCE_EXAMPLES=N``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from fsm.loading import read_file
from fsm.testing.convention import GUARDS, run_case
from fsm.testing.strategies import conformance_cases
from fsm.testing.xstate_oracle import XStateOracle

MACHINES = Path(__file__).resolve().parents[1] / "machines"
EXAMPLES = int(os.environ.get("FSM_CONFORMANCE_EXAMPLES", "0")) or max(200, settings.default.max_examples)


@pytest.fixture(scope="module")
def oracle(xstate_oracle: XStateOracle) -> XStateOracle:
    return xstate_oracle


def describe_disagreement(case: dict[str, Any], ref: dict[str, Any], mine: dict[str, Any]) -> str:
    lines = [
        "fsm and XState disagree",
        "machine: " + json.dumps(case["machine"]),
        "steps: " + json.dumps(case["steps"]),
    ]
    if "fatal" in ref or "fatal" in mine:
        lines.append(f"xstate: {ref.get('fatal', 'ran')}; fsm: {mine.get('fatal', 'ran')}")
        return "\n".join(lines)
    for index, (a, b) in enumerate(zip(ref["trace"], mine["trace"])):
        if a != b:
            step = "start" if index == 0 else json.dumps(case["steps"][index - 1])
            lines.append(f"first difference after step {index} ({step}):")
            lines.append("  xstate: " + json.dumps(a))
            lines.append("  fsm:    " + json.dumps(b))
            break
    return "\n".join(lines)


def assert_same(oracle: XStateOracle, case: dict[str, Any]) -> None:
    ref = oracle.run([case])[0]
    ref.pop("errorMessage", None)
    mine = run_case(case)
    same = ("fatal" in ref) == ("fatal" in mine) and ref.get("trace") == mine.get("trace")
    assert same, describe_disagreement(case, ref, mine)


@settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(case=conformance_cases())
def test_generated_machines_agree_with_xstate(oracle: XStateOracle, case: dict[str, Any]) -> None:
    assert_same(oracle, case)


# -- the example machines --------------------------------------------------------------


def _unmappable(definition: Any) -> str | None:
    """Why a machine cannot run on both sides under the convention (None if it can)."""
    stack = [definition]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "expr" in node and isinstance(node["expr"], str):
                return "uses the fsm expression language"
            if "invoke" in node:
                return "invokes services"
            guard = node.get("guard")
            for name in _guard_names(guard):
                if name not in GUARDS:
                    return f"uses the guard {name!r}"
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


def _guard_names(guard: Any) -> list[str]:
    if guard is None:
        return []
    if isinstance(guard, str):
        return [guard]
    if not isinstance(guard, dict):
        return []
    kind = guard.get("type")
    if kind in ("and", "or"):
        return [n for g in guard.get("guards", []) for n in _guard_names(g)]
    if kind == "not":
        return _guard_names(guard.get("guard"))
    if kind == "stateIn" or "expr" in guard:
        return []
    return [kind] if isinstance(kind, str) else []


def _events_of(definition: Any) -> list[str]:
    found: dict[str, None] = {}
    stack = [definition]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in (node.get("on") or {}) if isinstance(node.get("on"), dict) else {}:
                if "*" not in key:
                    found[key] = None
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return sorted(found)


def _example_machines() -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for path in sorted(MACHINES.glob("*.*")):
        if path.suffix not in (".json", ".yaml", ".yml"):
            continue
        definition = read_file(path)
        if _unmappable(definition) is None:
            out.append((path, definition))
    return out


MAPPABLE = _example_machines()


def test_some_example_machines_are_checked_against_xstate() -> None:
    assert MAPPABLE, "no machine in machines/ can run under the conformance convention"


@pytest.mark.parametrize(("path", "definition"), MAPPABLE, ids=[p.name for p, _ in MAPPABLE])
def test_example_machine_agrees_with_xstate(oracle: XStateOracle, path: Path, definition: dict[str, Any]) -> None:
    events = _events_of(definition)
    steps: list[dict[str, Any]] = []
    for round_ in range(3):
        for event in events:
            steps.append({"event": {"type": event}})
        steps.append({"advance": 1000 * (round_ + 1)})
    assert_same(oracle, {"machine": definition, "steps": steps, "maxIterations": 1000})
