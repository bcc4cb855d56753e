"""XState v5 in Node (and a raw JS loop): runs tools/bench/xstate/bench.mjs once for all
workloads, handing it the same definitions and sizes as the Python side, and reads its
cells back. ``npm ci`` installs the pinned xstate the first time."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from peers import workloads as w
from peers.timing import Cell

HERE = Path(__file__).resolve().parent.parent / "xstate"
SYSTEMS = ("xstate", "js-raw")
NODE_MEMORY_FACTOR = 10  # V8's heap counters are coarse: measure 10x as many instances
LABELS = {"xstate": "XState", "js-raw": "js-raw"}
DESCRIPTIONS = {
    "xstate": "XState v5 in Node (createActor/send)",
    "js-raw": "JS table loop with one call per guard/action/entry/exit (the JIT floor)",
}


def unavailable() -> str | None:
    """Why Node cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (HERE / "node_modules" / "xstate").is_dir():
        if shutil.which("npm") is None:
            return "npm is not installed (needed once for `npm ci`)"
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True)
        if done.returncode != 0:
            return f"npm ci failed: {done.stderr.strip()[-300:]}"
    return None


def run(systems: list[str], workloads: list[str], sizes: w.Sizes) -> tuple[dict[str, dict[str, Cell]], dict[str, str]]:
    """Cells by system and workload, and the versions measured. M1 (memory) runs in a
    process of its own: V8's heap figures after the other workloads are too noisy."""
    why = unavailable()
    if why is not None:
        return {s: {k: Cell(error=why) for k in workloads} for s in systems}, {}
    cells: dict[str, dict[str, Cell]] = {s: {} for s in systems}
    versions: dict[str, str] = {}
    batches = [[k for k in workloads if k != "M1"], [k for k in workloads if k == "M1"]]
    for batch in (b for b in batches if b):
        more, versions = _run_node(systems, batch, sizes)
        for system, by_workload in more.items():
            cells[system].update(by_workload)
    return cells, versions


def _run_node(
    systems: list[str], workloads: list[str], sizes: w.Sizes
) -> tuple[dict[str, dict[str, Cell]], dict[str, str]]:
    request: dict[str, Any] = {
        "systems": systems,
        "workloads": workloads,
        "sizes": {
            "events": sizes.events,
            "instances": sizes.instances,
            "memory_instances": sizes.memory_instances * NODE_MEMORY_FACTOR,
            "reps": sizes.reps,
            "budget_s": sizes.budget_s,
            "warmup_s": sizes.warmup_s,
        },
        "definitions": {
            "W1": w.W1,
            "W2": w.w2_definition(0),
            "W3": w.W3,
            "W4": w.W4,
            "big": w.big_definition(),
        },
        "cycles": w.CYCLES,
    }
    done = subprocess.run(
        ["node", "--expose-gc", "bench.mjs"],
        cwd=HERE,
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        message = f"node failed: {done.stderr.strip()[-300:]}"
        return {s: {k: Cell(error=message) for k in workloads} for s in systems}, {}
    answer = json.loads(done.stdout)
    cells = {
        system: {workload: Cell.from_json(cell) for workload, cell in by_workload.items()}
        for system, by_workload in answer["cells"].items()
    }
    versions = answer["versions"]
    return cells, {
        "xstate": f"{versions['xstate']} (Node {versions['node']}, V8 {versions['v8']})",
        "js-raw": f"Node {versions['node']}",
    }
