"""Turning cells into the printed table, the ratio rows and the PASS/FAIL targets."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from peers.timing import Cell

Results = dict[str, dict[str, Cell]]  # system key -> row key -> cell

ROWS = {
    "W1": "W1 flat",
    "W2": "W2 guard+context",
    "W3": "W3 hierarchy",
    "W4": "W4 parallel",
    "W5a": "W5a create+start",
    "W5b": "W5b snapshot+restore",
    "W6 SQLite FULL": "W6 SQLite FULL",
    "W6 SQLite NORMAL": "W6 SQLite NORMAL",
    "W6 PostgreSQL": "W6 PostgreSQL",
    "L1": "L1 compile 1,000 (ms)",
    "L2": "L2 import (ms)",
    "M1": "M1 idle W3 (bytes)",
}
PYTHON_PEERS = ("transitions", "transitions-hsm", "python-statemachine", "sismic", "xstate-statemachine")
FLOORS = ("raw+calls", "raw+send")
LOWER_IS_BETTER = ("ms", "bytes")
EMPTY_CONTEXT_BYTES = sys.getsizeof({})  # W3 has no context: each instance holds an empty dict


def fmt(cell: Cell | None, clock: str) -> str:
    if cell is None:
        return ""
    if cell.na is not None:
        return "n/a"
    if cell.error is not None:
        return "ERR"
    value = cell.value(clock)
    assert value is not None
    if cell.unit == "ms":
        return f"{value:.1f}" if value < 100 else f"{value:,.0f}"
    if cell.unit == "bytes":
        return f"{value:,.0f}"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e4:
        return f"{value / 1e3:.0f}k"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    return f"{value:.0f}"


def table(results: Results, systems: list[str], labels: dict[str, str], clock: str) -> str:
    rows = [key for key in ROWS if any(key in results.get(s, {}) for s in systems)]
    header = ["", *(labels[s] for s in systems)]
    body = [[ROWS[key], *(fmt(results.get(s, {}).get(key), clock) for s in systems)] for key in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first, *rest = cells
        return "| " + " | ".join([first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:]))]) + " |"

    separator = "|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), separator, *(line(cells) for cells in body)])


def advantage(fsm: Cell | None, other: Cell | None, clock: str) -> float | None:
    """How many times better fsm is than ``other`` (> 1: fsm is faster / smaller)."""
    if fsm is None or other is None or not fsm.ok or not other.ok:
        return None
    a, b = fsm.value(clock), other.value(clock)
    if not a or not b:
        return None
    return b / a if fsm.unit in LOWER_IS_BETTER else a / b


def best_peer(results: Results, key: str, clock: str) -> tuple[str, Cell] | None:
    candidates = [(s, results[s][key]) for s in PYTHON_PEERS if key in results.get(s, {}) and results[s][key].ok]
    if not candidates:
        return None
    unit = candidates[0][1].unit
    pick = min if unit in LOWER_IS_BETTER else max
    return pick(candidates, key=lambda item: item[1].value(clock) or 0.0)


@dataclass
class Ratios:
    vs_xstate: float | None
    vs_peer: float | None
    peer: str | None
    floor_calls: float | None  # raw+calls rate / fsm rate: how far above the floor fsm is
    floor_send: float | None


def ratios(results: Results, key: str, clock: str) -> Ratios:
    fsm = results.get("fsm", {}).get(key)
    best = best_peer(results, key, clock)
    floors = [advantage(results.get(f, {}).get(key), fsm, clock) for f in FLOORS]
    return Ratios(
        vs_xstate=advantage(fsm, results.get("xstate", {}).get(key), clock),
        vs_peer=advantage(fsm, best[1], clock) if best else None,
        peer=best[0] if best else None,
        floor_calls=floors[0],
        floor_send=floors[1],
    )


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def ratio_table(results: Results, labels: dict[str, str], clock: str) -> str:
    lines = [
        "| workload | fsm vs XState | fsm vs best Python peer | raw+calls floor / fsm | raw+send floor / fsm |",
        "|---|---:|---:|---:|---:|",
    ]
    for key in ("W1", "W2", "W3", "W4", "W5a", "W5b", "L1", "M1"):
        if key not in results.get("fsm", {}):
            continue
        r = ratios(results, key, clock)
        peer = f"{_x(r.vs_peer)} ({labels.get(r.peer or '', r.peer)})" if r.peer else "-"
        lines.append(f"| {ROWS[key]} | {_x(r.vs_xstate)} | {peer} | {_x(r.floor_calls)} | {_x(r.floor_send)} |")
    return "\n".join(lines)


@dataclass
class Target:
    name: str
    workload: str
    ok: bool | None  # None: not measured in this run
    detail: str

    def line(self) -> str:
        verdict = {True: "PASS", False: "FAIL", None: "SKIP"}[self.ok]
        return f"{verdict}  {self.name} [{self.workload}]: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return {"target": self.name, "workload": self.workload, "ok": self.ok, "detail": self.detail}


def targets(results: Results, clock: str) -> list[Target]:
    found: list[Target] = []
    fsm = results.get("fsm", {})
    for key in ("W1", "W2", "W3", "W4", "W5a", "W5b"):
        r = ratios(results, key, clock)
        ok = None if r.vs_xstate is None else r.vs_xstate > 1
        found.append(Target("faster than XState v5 (Node)", key, ok, f"fsm/XState = {_x(r.vs_xstate)} (need > 1x)"))
    for key in ("W1", "W2", "W3", "W4"):
        r = ratios(results, key, clock)
        ok = None if r.vs_peer is None else r.vs_peer >= 10
        found.append(
            Target("10x the best Python peer", key, ok, f"fsm/{r.peer or 'peer'} = {_x(r.vs_peer)} (need >= 10x)")
        )
    for key in ("W1", "W2", "W3", "W4"):
        r = ratios(results, key, clock)
        ok = None if r.floor_calls is None else r.floor_calls <= 5
        found.append(
            Target("within 5x of the raw+calls floor", key, ok, f"floor/fsm = {_x(r.floor_calls)} (need <= 5x)")
        )
    memory = fsm.get("M1")
    if memory is not None and memory.ok:
        net = (memory.value() or 0) - EMPTY_CONTEXT_BYTES
        found.append(
            Target(
                "idle started W3 instance < 2 KB beyond its context",
                "M1",
                net < 2048,
                f"{net:,.0f} B ({memory.value():,.0f} B traced per instance - {EMPTY_CONTEXT_BYTES} B empty context)",
            )
        )
    else:
        found.append(Target("idle started W3 instance < 2 KB beyond its context", "M1", None, "not measured"))
    for key, name, limit in (("L1", "compile a 1,000-state machine < 100 ms", 100), ("L2", "import fsm < 50 ms", 50)):
        cell = fsm.get(key)
        if cell is None or not cell.ok:
            found.append(Target(name, key, None, "not measured"))
            continue
        value, other = cell.value(clock) or 0.0, cell.value("wall" if clock == "cpu" else "cpu") or 0.0
        other_name = "wall" if clock == "cpu" else "CPU"
        found.append(Target(name, key, value < limit, f"{value:.1f} ms {clock} ({other:.1f} ms {other_name})"))
    return found


def footnotes(results: Results, labels: dict[str, str]) -> list[str]:
    """n/a reasons and errors, one line each (repeated reasons merged)."""
    merged: dict[str, list[str]] = {}
    for system, by_row in results.items():
        for key, cell in by_row.items():
            text = None
            if cell.na is not None:
                text = f"n/a: {cell.na}"
            elif cell.error is not None:
                text = f"ERR: {cell.error}"
            if text:
                merged.setdefault(text, []).append(f"{labels.get(system, system)} {key}")
    return [f"- {', '.join(where)}: {text}" for text, where in merged.items()]


def shortened(results: Results, labels: dict[str, str]) -> list[str]:
    """Cells that ran fewer operations per repetition than nominal (slow systems, so one
    repetition stays within the time budget): one line per system."""
    lines = []
    for system, by_row in results.items():
        cut = [f"{key} {cell.n:,}" for key, cell in by_row.items() if cell.ok and cell.note]
        if cut:
            lines.append(f"- {labels.get(system, system)}: {', '.join(cut)}")
    return lines
