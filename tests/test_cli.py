"""The command line, driven as a subprocess, and its documentation."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from fsm.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


def fsm(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fsm.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=60)


def command_names(group: click.Group = main, prefix: str = "") -> list[str]:
    names = []
    for name, command in sorted(group.commands.items()):
        full = f"{prefix}{name}"
        if isinstance(command, click.Group):
            names.extend(command_names(command, full + " "))
        else:
            names.append(full)
    return names


@pytest.mark.parametrize("name", command_names())
def test_every_command_is_documented(name: str) -> None:
    assert f"fsm {name}" in DOC, f"`fsm {name}` is not documented in docs/cli.md"


@pytest.mark.parametrize("name", command_names())
def test_every_command_has_help(name: str) -> None:
    result = fsm(*name.split(), "--help")
    assert result.returncode == 0
    assert "Usage:" in result.stdout


BROKEN = {"initial": "nowhere", "states": {"a": {"on": {"GO": "b"}}}}


def test_validate_reports_every_problem_with_exit_code_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(BROKEN))
    result = fsm("validate", str(bad), "machines/workflow.yaml")
    assert result.returncode == 1
    assert "initial state 'nowhere'" in result.stdout
    assert "states.a.on.GO" in result.stdout
    assert "machines/workflow.yaml: ok" in result.stdout


def test_validate_strict_reports_warnings(tmp_path: Path) -> None:
    path = tmp_path / "stuck.json"
    path.write_text(json.dumps({"initial": "a", "states": {"a": {"on": {"GO": "b"}}, "b": {}, "lost": {}}}))
    result = fsm("validate", "--strict", "--json", str(path))
    assert result.returncode == 1
    report = json.loads(result.stdout)
    kinds = {w["kind"] for w in report["warnings"]}
    assert {"unreachable", "dead_end"} <= kinds
    assert fsm("validate", str(path)).returncode == 0  # not an error without --strict


def test_schema_prints_the_json_schema() -> None:
    result = fsm("schema")
    schema = json.loads(result.stdout)
    assert schema["$id"].endswith("machine.schema.json")


def test_run_prints_json_lines() -> None:
    result = fsm("run", "machines/workflow.yaml", "-e", "START", "-e", 'PROGRESS:{"pct": 100}', "--json")
    assert result.returncode == 0, result.stderr
    steps = [json.loads(line) for line in result.stdout.splitlines()]
    assert [s["value"] for s in steps] == ["idle", "running", "completed"]
    assert steps[1]["actions"] == [{"type": "notifyStarted", "params": None}]
    assert steps[-1]["status"] == "done" and steps[-1]["output"] == {"progress": 100}


def test_run_refuses_bad_event_json_cleanly() -> None:
    result = fsm("run", "machines/workflow.yaml", "-e", "START:{oops")
    assert result.returncode == 1
    assert result.stderr.startswith("error: invalid JSON")
    assert "Traceback" not in result.stderr


def test_run_reports_a_failing_machine_with_exit_code_3(tmp_path: Path) -> None:
    path = tmp_path / "boom.json"
    path.write_text(
        json.dumps(
            {
                "initial": "a",
                "context": {"n": 1},
                "states": {
                    "a": {"on": {"GO": {"actions": {"type": "assign", "assignment": {"n": {"expr": "1 / 0"}}}}}}
                },
            }
        )
    )
    result = fsm("run", str(path), "-e", "GO")
    assert result.returncode == 3
    assert "ZeroDivisionError" in result.stderr or "division" in result.stderr


def test_run_reads_events_from_a_json_lines_file(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(
        "# started by hand, then paused and resumed\n"
        '{"type": "START"}\n'
        "\n"
        "  # an indented comment\n"
        "PAUSE\n"
        "RESUME\n"
        'PROGRESS:{"pct": 40}\n'
    )
    result = fsm("run", "machines/workflow.yaml", "--events", str(events), "--json")
    assert result.returncode == 0, result.stderr
    steps = [json.loads(line) for line in result.stdout.splitlines()]
    assert [s["value"] for s in steps] == ["idle", "running", "paused", "running", "running"]
    assert steps[-1]["context"] == {"progress": 40, "attempts": 1}


def test_run_names_the_line_of_a_bad_event_in_the_file(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("# comment\nSTART\nPROGRESS:{oops\n")
    result = fsm("run", "machines/workflow.yaml", "--events", str(events))
    assert result.returncode == 1, "invalid input, like a bad -e, not a usage error"
    assert f"{events}:3:" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_merges_context_over_the_definitions() -> None:
    result = fsm(
        "run", "machines/workflow.yaml", "--context", '{"attempts": 2, "owner": "ops"}', "-e", "START", "--json"
    )
    assert result.returncode == 0, result.stderr
    steps = [json.loads(line) for line in result.stdout.splitlines()]
    assert steps[0]["context"] == {"progress": 0, "attempts": 2, "owner": "ops"}
    assert steps[1]["context"]["attempts"] == 3  # the machine's own assign ran on the given context


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed (apt-get install graphviz)")
def test_diagram_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "light.png"
    result = fsm("diagram", "machines/traffic_light.yaml", "-o", str(out))
    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 1000  # an image, not just a header


@pytest.mark.parametrize(("fmt", "marker"), [("dot", "digraph"), ("mermaid", "stateDiagram-v2"), ("svg", "<svg")])
def test_diagram_formats(tmp_path: Path, fmt: str, marker: str) -> None:
    out = tmp_path / f"order.{ {'dot': 'dot', 'mermaid': 'mmd', 'svg': 'svg'}[fmt] }"
    result = fsm("diagram", "machines/order.yaml", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert marker in out.read_text()
    printed = fsm("diagram", "machines/order.yaml", "--format", fmt)
    assert marker in printed.stdout


def test_diagram_png_needs_a_file() -> None:
    result = fsm("diagram", "machines/order.yaml", "--format", "png")
    assert result.returncode == 1
    assert "give -o" in result.stderr


def test_paths_reach_every_state() -> None:
    result = fsm("paths", "machines/workflow.yaml", "--json")
    assert result.returncode == 0, result.stderr
    reached = {json.dumps(p["state"]) for p in json.loads(result.stdout)}
    assert {'"idle"', '"running"', '"paused"'} <= reached


def documented_dag_runs() -> list[str]:
    out = []
    for path in sorted((ROOT / "machines" / "dags").glob("*.yaml")):
        for line in path.read_text().splitlines():
            if line.startswith("#") and "fsm run machines/dags/" in line:
                out.append(line.split("fsm run ", 1)[1].strip())
    return out


@pytest.mark.parametrize("args", documented_dag_runs())
def test_documented_dag_runs_succeed(args: str) -> None:
    import shlex

    result = fsm("run", *shlex.split(args))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["status"] == "succeeded"


@pytest.mark.parametrize(
    ("kind", "file"), [("dag", "machines/dags/etl_dag.yaml"), ("saga", "machines/sagas/order_saga.yaml")]
)
def test_compile_produces_a_machine_that_loads(tmp_path: Path, kind: str, file: str) -> None:
    out = tmp_path / "machine.json"
    result = fsm("compile", kind, file, "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert fsm("validate", str(out)).returncode == 0
    assert fsm("validate", file).returncode == 0  # the DAG / saga file itself validates too
    assert "digraph" in fsm("diagram", file, "--format", "dot").stdout


def test_compile_refuses_a_broken_dag(tmp_path: Path) -> None:
    path = tmp_path / "cycle.yaml"
    path.write_text("tasks:\n  a: {needs: b, service: x}\n  b: {needs: a, service: x}\n")
    result = fsm("compile", "dag", str(path))
    assert result.returncode == 1
    assert "cycle" in result.stderr


def test_missing_file_is_a_clean_error() -> None:
    result = fsm("run", "no/such/file.yaml")
    assert result.returncode == 1
    assert "file not found" in result.stderr
