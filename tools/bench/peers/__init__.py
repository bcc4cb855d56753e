"""The systems tools/bench/suite.py measures, one module each (imported only when selected,
so a missing peer library costs only its own column)."""

from __future__ import annotations

import importlib

from peers.system import System

# key -> (module, attribute), in table order; the Node systems run in one subprocess
PYTHON_SYSTEMS = {
    "raw": ("peers.raw", "RAW"),
    "raw+calls": ("peers.raw", "RAW_CALLS"),
    "raw+send": ("peers.raw", "RAW_SEND"),
    "fsm": ("peers.fsm_engine", "SYSTEM"),
    "transitions": ("peers.transitions_lib", "MACHINE"),
    "transitions-hsm": ("peers.transitions_lib", "HIERARCHICAL"),
    "python-statemachine": ("peers.statemachine_lib", "SYSTEM"),
    "sismic": ("peers.sismic_lib", "SYSTEM"),
    "xstate-statemachine": ("peers.xsm_lib", "SYSTEM"),
}
NODE_SYSTEMS = ("xstate", "js-raw")
ALL = (*PYTHON_SYSTEMS, *NODE_SYSTEMS)
ALIASES = {
    "psm": "python-statemachine",
    "statemachine": "python-statemachine",
    "xsm": "xstate-statemachine",
    "hsm": "transitions-hsm",
    "node": "xstate",
}
PIP_NAMES = {
    "transitions": "transitions",
    "transitions-hsm": "transitions",
    "python-statemachine": "python-statemachine",
    "sismic": "sismic",
    "xstate-statemachine": "xstate-statemachine",
}


def load(key: str) -> System | str:
    """The system, or why it cannot be loaded."""
    module, attribute = PYTHON_SYSTEMS[key]
    try:
        return getattr(importlib.import_module(module), attribute)
    except ImportError as exc:
        hint = f" (pip install {PIP_NAMES[key]})" if key in PIP_NAMES else ""
        return f"cannot import: {exc}{hint}"
