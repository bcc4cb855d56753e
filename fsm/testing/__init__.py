"""Tools for testing machines and code that uses them: hypothesis strategies, event paths
and coverage, model-based tests, static analysis, and the XState oracle.

The public helpers can be imported from here (``from fsm.testing import events,
model_test, shortest_paths``) as well as from their modules. They are loaded on first
use (PEP 562 ``__getattr__``) rather than imported here, because hypothesis is an
optional dependency (``pip install 'fsm[testing]'``): ``import fsm.testing`` must work
without it, and only asking for ``events``, ``from_schema``, ``model_test`` or the like
imports it. Each name is resolved from a fixed table, never from caller input.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fsm.testing.analysis import Finding, analyze, findings_to_json, format_findings
    from fsm.testing.model_based import ModelMismatch, ModelTest, model_test
    from fsm.testing.paths import (
        Coverage,
        Exploration,
        Path,
        Step,
        coverage,
        explore,
        format_exploration,
        format_paths,
        paths_to_json,
        replay,
        shortest_path,
        shortest_paths,
        simple_paths,
    )
    from fsm.testing.strategies import event_of, events, from_schema

# name -> the submodule of fsm.testing that defines it
_EXPORTS = {
    "Finding": "analysis",
    "analyze": "analysis",
    "findings_to_json": "analysis",
    "format_findings": "analysis",
    "ModelMismatch": "model_based",
    "ModelTest": "model_based",
    "model_test": "model_based",
    "Coverage": "paths",
    "Exploration": "paths",
    "Path": "paths",
    "Step": "paths",
    "coverage": "paths",
    "explore": "paths",
    "format_exploration": "paths",
    "format_paths": "paths",
    "paths_to_json": "paths",
    "replay": "paths",
    "shortest_path": "paths",
    "shortest_paths": "paths",
    "simple_paths": "paths",
    "event_of": "strategies",
    "events": "strategies",
    "from_schema": "strategies",
}

__all__ = [
    "Coverage",
    "Exploration",
    "Finding",
    "ModelMismatch",
    "ModelTest",
    "Path",
    "Step",
    "analyze",
    "coverage",
    "event_of",
    "events",
    "explore",
    "findings_to_json",
    "format_exploration",
    "format_findings",
    "format_paths",
    "from_schema",
    "model_test",
    "paths_to_json",
    "replay",
    "shortest_path",
    "shortest_paths",
    "simple_paths",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
