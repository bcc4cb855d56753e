"""fsm's benchmark suite: fsm side by side with the floors and its peers, in one run.

    python tools/bench/suite.py                  # everything (several minutes)
    python tools/bench/suite.py --quick          # fewer events and repetitions (< 2 min)
    python tools/bench/suite.py --only fsm,xstate --workloads W1,W2
    python tools/bench/suite.py --json out.json  # also write every sample as JSON
    python tools/bench/suite.py --profile        # where fsm's time goes on W1-W3

Systems: raw, raw+calls, raw+send (CPython floors), fsm, transitions (Machine and
HierarchicalMachine), python-statemachine, sismic, xstate-statemachine, and, in Node,
XState v5 and a raw JS loop. Workloads: W1-W6, L1 (compile a 1,000-state machine), L2
(import time), M1 (memory of an idle instance); see peers/workloads.py and
docs/performance.md. Every cell is checked for correctness before it is timed.

The peers are optional: pip install -e '.[bench]' installs them (a missing one shows as ERR
in its column). XState is pinned in
tools/bench/xstate/package-lock.json and installed with `npm ci` on first use.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers
from peers import durable, hotspots, report, startup, xstate_node
from peers import workloads as w
from peers.system import System
from peers.timing import Cell, measure, measure_memory, measure_once

WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "L1", "L2", "M1")
ROW_KEYS = {"W5": ("W5a", "W5b"), "W6": durable.VARIANTS}
UNITS = {"W5a": "instances/s", "W5b": "restores/s"}


def machine_load() -> dict[str, Any]:
    try:
        loadavg = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        loadavg = []
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"loadavg": loadavg, "cpu_count": os.cpu_count(), "usable_cpus": affinity}


def fsm_revision() -> str:
    """The commit fsm was measured at (``+dirty`` when the work tree has changes)."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "fsm"], cwd=root, capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if head.returncode == 0 else "unknown"


def parse_list(text: str | None, known: tuple[str, ...], aliases: dict[str, str], what: str) -> list[str]:
    if not text:
        return list(known)
    chosen = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        key = aliases.get(item.lower(), item)
        match = next((k for k in known if k.lower() == key.lower()), None)
        if match is None:
            raise SystemExit(f"unknown {what} {item!r}: choose from {', '.join(known)}")
        chosen.append(match)
    return [k for k in known if k in chosen]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure_cell(system: System, key: str, sizes: w.Sizes) -> Cell | None:
    """One Python system on one row, or None when it has no bench for it."""
    if key in system.na:
        return Cell(na=system.na[key], unit="ms" if key == "L1" else UNITS.get(key, "events/s"))
    bench = system.benches.get(key)
    if bench is None:
        return None
    if key in w.EVENT_WORKLOADS:
        return measure(lambda n: bench(w.events_for(key, n)), key, sizes.events, sizes)
    if key in ("W5a", "W5b"):
        return measure(bench, key, sizes.instances, sizes, UNITS[key])
    if key == "L1":
        return measure_once(bench, sizes.reps)
    factory, check = bench  # M1
    return measure_memory(factory, sizes.memory_instances, check)


def run(systems: list[str], workloads: list[str], sizes: w.Sizes) -> dict[str, Any]:
    """Row by row: every system measures a row before the next row starts, so the
    figures a ratio compares are taken minutes apart at most (the load drifts)."""
    results: report.Results = {s: {} for s in systems}
    labels: dict[str, str] = {}
    versions: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    notes: list[str] = []
    load_before = machine_load()
    rows = [k for wl in workloads if wl not in ("W6", "L2") for k in ROW_KEYS.get(wl, (wl,))]

    loaded: dict[str, System] = {}
    for key in systems:
        if key in peers.NODE_SYSTEMS:
            labels[key], descriptions[key] = xstate_node.LABELS[key], xstate_node.DESCRIPTIONS[key]
            continue
        system = peers.load(key)
        if isinstance(system, str):
            labels[key], versions[key] = key, "not installed"
            results[key] = {row: Cell(error=system) for row in rows}
            continue
        loaded[key] = system
        labels[key], versions[key], descriptions[key] = system.label, system.version(), system.description
    node = [s for s in systems if s in peers.NODE_SYSTEMS]

    for row in rows:
        for key, system in loaded.items():
            started = time.perf_counter()
            cell = measure_cell(system, row, sizes)
            if cell is not None:
                results[key][row] = cell
                log(f"{row} {system.label}: {report.fmt(cell, 'cpu')} ({time.perf_counter() - started:.1f} s)")
        if node:
            started = time.perf_counter()
            cells, node_versions = xstate_node.run(node, [row], sizes)
            for key in node:
                results[key].update(cells.get(key, {}))
                versions[key] = node_versions.get(key, versions.get(key, "unavailable"))
            log(f"{row} Node: {', '.join(node)} ({time.perf_counter() - started:.1f} s)")

    if "W6" in workloads:
        log("W6 durable")
        cells, more = durable.run(systems, sizes)
        notes += [*more, f"W6 rows: fsm and raw only; {durable.NO_STORE}"]
        for key, by_variant in cells.items():
            results.setdefault(key, {}).update(by_variant)

    fsm_import: dict[str, Any] = {}
    if "L2" in workloads:
        log("L2 import times")
        for key, cell in startup.import_times(systems, sizes.import_runs).items():
            results.setdefault(key, {})["L2"] = cell
        notes.append("L2 row: the floors import nothing; XState is `import 'xstate'` in Node")
        if "fsm" in systems:
            fsm_import = startup.fsm_import_profile(sizes.import_runs)

    return {
        "results": results,
        "labels": labels,
        "versions": versions,
        "descriptions": descriptions,
        "notes": notes,
        "fsm_import": fsm_import,
        "load": {"before": load_before, "after": machine_load()},
    }


def render(run_data: dict[str, Any], systems: list[str], meta: dict[str, Any], clock: str) -> str:
    results, labels = run_data["results"], run_data["labels"]
    shown = [s for s in systems if s in results]
    load = run_data["load"]
    out = [
        f"fsm benchmark suite — {meta['date']} — {meta['command']} — fsm at {meta['fsm_revision']}",
        f"{meta['platform']}; {load['before']['cpu_count']} CPUs ({load['before']['usable_cpus']} usable); "
        f"load average {' '.join(load['before']['loadavg'])} before, {' '.join(load['after']['loadavg'])} after",
        "",
        "Versions: " + "; ".join(f"{labels[s]} {run_data['versions'].get(s, '?')}" for s in shown),
        "",
    ]
    for name, which in (("CPU time", "cpu"), ("wall time", "wall")):
        out += [
            f"Throughput by {name} (events/s; W5 instances/s; L1/L2 ms; M1 bytes per instance):",
            report.table(results, shown, labels, which),
            "",
        ]
    if any(k in results.get("fsm", {}) for k in ("W1", "W2", "W3", "W4", "W5a", "W5b", "L1", "M1")):
        out += [f"Ratios ({clock} time):", report.ratio_table(results, labels, clock), ""]
    out += [f"Targets ({clock} time):", *(t.line() for t in report.targets(results, clock)), ""]
    notes = report.footnotes(results, labels)
    if notes:
        out += ["Notes:", *notes, *(f"- {n}" for n in run_data["notes"]), ""]
    cut = report.shortened(results, labels)
    if cut:
        out += ["Operations per repetition where a slow system ran fewer than nominal (time budget):", *cut, ""]
    profile = run_data["fsm_import"]
    if profile:
        top = ", ".join(f"{name} {own} ms" for name, own, _ in profile["top_self_ms"][:6])
        out += [
            f"import fsm: -X importtime cumulative {profile['importtime_ms']} ms; top self times: {top}; "
            f"optional extras imported: {', '.join(profile['optional_extras_imported']) or 'none'}",
            "",
        ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer events and repetitions (under 2 minutes)")
    parser.add_argument("--json", metavar="PATH", help="write all samples, ratios and targets as JSON")
    parser.add_argument("--only", metavar="SYSTEMS", help=f"comma-separated: {', '.join(peers.ALL)}")
    parser.add_argument("--workloads", metavar="LIST", help=f"comma-separated: {', '.join(WORKLOADS)}")
    parser.add_argument("--profile", action="store_true", help="profile fsm on W1-W3 instead (py-spy or cProfile)")
    parser.add_argument(
        "--clock", choices=("cpu", "wall"), default="cpu", help="which time the ratios and targets use (default: cpu)"
    )
    args = parser.parse_args(argv)

    systems = parse_list(args.only, peers.ALL, peers.ALIASES, "system")
    workloads = parse_list(args.workloads, WORKLOADS, {}, "workload")
    sizes = w.QUICK if args.quick else w.FULL
    if args.profile:
        print(hotspots.profile([k for k in workloads if k in ("W1", "W2", "W3")]))
        return 0
    command = "python tools/bench/suite.py" + (f" {' '.join(sys.argv[1:])}" if argv is None and sys.argv[1:] else "")
    meta: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "platform": f"{platform.system()} {platform.machine()}, CPython {platform.python_version()}",
        "fsm_revision": fsm_revision(),
        "sizes": vars(sizes),
    }
    started = time.perf_counter()
    data = run(systems, workloads, sizes)
    meta["duration_s"] = round(time.perf_counter() - started, 1)
    print(render(data, systems, meta, args.clock))
    print(f"({meta['duration_s']} s)")

    if args.json:
        results = data["results"]
        keys = [k for k in report.ROWS if k in results.get("fsm", {})]
        document = {
            "meta": meta,
            "load": data["load"],
            "versions": data["versions"],
            "systems": {
                s: {"label": data["labels"][s], "description": data["descriptions"].get(s, "")} for s in results
            },
            "cells": {s: {k: c.to_json() for k, c in by_row.items()} for s, by_row in results.items()},
            "ratios": {clock: {k: vars(report.ratios(results, k, clock)) for k in keys} for clock in ("cpu", "wall")},
            "targets": {clock: [t.to_json() for t in report.targets(results, clock)] for clock in ("cpu", "wall")},
            "fsm_import": data["fsm_import"],
            "notes": data["notes"],
        }
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
