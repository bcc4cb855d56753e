"""The benchmark suite (tools/bench/suite.py) still runs and checks what it times.

Timings are never asserted (they belong to docs/performance.md, not to tests): this runs
a small subset of the suite, whose every cell is checked for correctness before it is
timed, and requires that each produced a figure rather than an error. The peers are
optional and not installed in CI, so only fsm and the CPython floors run here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "tools" / "bench" / "suite.py"


def test_suite_runs_fsm_and_the_floors_and_reports_targets(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    systems = "raw,raw+calls,raw+send,fsm"
    workloads = "W1,W2,W3,W4,W5,L1,M1"
    done = subprocess.run(
        [sys.executable, str(SUITE), "--quick", "--only", systems, "--workloads", workloads, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(out.read_text())
    for system in systems.split(","):
        for row in ("W1", "W2", "W3", "W4", "W5a", "W5b", "M1"):
            cell = data["cells"][system][row]
            assert "error" not in cell or not cell["error"], f"{system} {row}: {cell.get('error')}"
            assert cell["value_cpu"] > 0, f"{system} {row} has no figure"
    assert data["cells"]["fsm"]["L1"]["value_cpu"] > 0
    reported = {(t["target"], t["workload"]) for t in data["targets"]["cpu"] if t["ok"] is not None}
    assert ("within 5x of the raw+calls floor", "W1") in reported
    assert any(workload == "M1" for _, workload in reported)
    assert "Targets (cpu time):" in done.stdout


def test_documented_suite_commands_use_real_options() -> None:
    help_text = subprocess.run(
        [sys.executable, str(SUITE), "--help"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    doc = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    commands = re.findall(r"^python tools/bench/suite.py(.*?)(?:#.*)?$", doc, flags=re.MULTILINE)
    assert commands, "docs/performance.md shows no suite command"
    for command in commands:
        for option in re.findall(r"--[a-z-]+", command):
            assert option in help_text, f"docs/performance.md uses {option}, which suite.py does not accept"
