"""L2: import time, each in a fresh subprocess.

A system's figure is the median over runs of (importing it) minus (starting the same
interpreter and importing nothing), measured both as wall time and as the child's CPU time
(``resource.getrusage(RUSAGE_CHILDREN)``), runs alternating so that load drifts hit both
sides alike. For fsm, ``python -X importtime`` also gives the cumulative import time of the
``fsm`` package itself and the modules that cost most, and a probe lists which optional
extras (graphviz, psycopg, ...) a bare ``import fsm`` pulls in.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

from peers.timing import Cell
from peers.xstate_node import HERE as NODE_DIR

PYTHON_IMPORTS = {
    "fsm": "import fsm",
    "transitions": "from transitions import Machine",
    "transitions-hsm": "from transitions.extensions import HierarchicalMachine",
    "python-statemachine": "from statemachine import StateMachine",
    "sismic": "from sismic.interpreter import Interpreter; from sismic.io import import_from_yaml",
    "xstate-statemachine": "from xstate_statemachine import SyncInterpreter, create_machine",
}
NODE_IMPORTS = {"xstate": "import 'xstate';"}
# Users import from compiled bytecode; an inherited PYTHONDONTWRITEBYTECODE would make every
# run recompile every module from source and measure the compiler instead of the import.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
OPTIONAL_EXTRAS = ("graphviz", "psycopg", "opentelemetry", "hypothesis", "transitions", "pytest")


def _child(command: list[str], cwd: str) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, env=CHILD_ENV)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _import_cell(command: list[str], baseline: list[str], runs: int, cwd: str) -> Cell:
    cell = Cell(unit="ms", n=1)
    try:
        _child(command, cwd)  # warm the OS file cache
        for _ in range(runs):
            wall, cpu = _child(command, cwd)
            base_wall, base_cpu = _child(baseline, cwd)
            cell.wall.append(max(0.0, wall - base_wall))
            cell.cpu.append(max(0.0, cpu - base_cpu))
    except (OSError, subprocess.CalledProcessError) as exc:
        return Cell(unit="ms", error=f"{type(exc).__name__}: {exc}")
    return cell


def import_times(systems: list[str], runs: int) -> dict[str, Cell]:
    cells: dict[str, Cell] = {}
    cwd = tempfile.gettempdir()  # not the repository: import what is installed
    for system in systems:
        if system in PYTHON_IMPORTS:
            command = [sys.executable, "-c", PYTHON_IMPORTS[system]]
            cells[system] = _import_cell(command, [sys.executable, "-c", "pass"], runs, cwd)
        elif system in NODE_IMPORTS:
            command = ["node", "--input-type=module", "-e", NODE_IMPORTS[system]]
            baseline = ["node", "--input-type=module", "-e", ""]
            cells[system] = _import_cell(command, baseline, runs, str(NODE_DIR))
    return cells


def fsm_import_profile(runs: int) -> dict[str, Any]:
    """``-X importtime`` for fsm: the package's cumulative time (median, ms), its most
    expensive modules by self time (from the median run), and the optional extras that
    ``import fsm`` loads."""
    cwd = tempfile.gettempdir()
    samples: list[tuple[float, list[tuple[float, float, str]]]] = []
    for _ in range(max(3, runs)):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import fsm"],
            cwd=cwd,
            capture_output=True,
            text=True,
            env=CHILD_ENV,
        )
        rows = []
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            own, cumulative, name = line[len("import time:") :].split("|")
            rows.append((int(own) / 1e3, int(cumulative) / 1e3, name.rstrip()))
        total = next((cum for _, cum, name in rows if name.strip() == "fsm"), 0.0)
        samples.append((total, rows))
    samples.sort(key=lambda sample: sample[0])
    total, rows = samples[len(samples) // 2]
    top = sorted(rows, reverse=True)[:10]
    extras = _loaded_by_fsm(OPTIONAL_EXTRAS, cwd)
    notable = _loaded_by_fsm(("yaml", "jsonschema", "asyncio", "sqlite3", "concurrent", "difflib"), cwd)
    return {
        "importtime_ms": round(total, 1),
        "importtime_runs_ms": [round(t, 1) for t, _ in samples],
        "top_self_ms": [(name.strip(), round(own, 1), round(cum, 1)) for own, cum, name in top],
        "optional_extras_imported": extras,
        "other_notable_imports": notable,
    }


def _loaded_by_fsm(packages: tuple[str, ...], cwd: str) -> list[str]:
    """Which of these top-level packages a bare ``import fsm`` loads."""
    probe = "import sys, fsm; print(*sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:])))"
    done = subprocess.run([sys.executable, "-c", probe, *packages], cwd=cwd, capture_output=True, text=True)
    return done.stdout.split()
