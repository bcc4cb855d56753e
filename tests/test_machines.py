"""The example machines in ``machines/``: each one loads, validates, and behaves as its
comments say, through the pure API, the actor API, and persisted snapshots.

Scenarios are data (the ``SCENARIOS`` table) run three ways: the pure step function
(``initial_transition`` / ``transition``, timers fired by hand), a live actor on a
``VirtualClock``, and both again resumed from a JSON round-trip of the snapshot at every
point of the scenario. Machine-specific behaviour (exact timings, history, services,
emitted events) has its own tests below the table.
"""

from __future__ import annotations

import importlib
import itertools
import json
import random
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import fsm
from fsm.testing.xstate_oracle import XStateOracle

ROOT = Path(__file__).resolve().parents[1]
MACHINES = ROOT / "machines"
MACHINE_FILES = sorted(p for p in MACHINES.iterdir() if p.suffix in (".json", ".yaml", ".yml"))


def impl(name: str) -> ModuleType:
    """``tests/impl/<name>.py``, imported as ``tests.impl.<name>`` (the name ``fsm run
    --impl`` uses from the repository root)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(f"tests.impl.{name}")


def load(name: str) -> fsm.Machine:
    return fsm.Machine.from_file(MACHINES / name)


def roundtrip(machine: fsm.Machine, snapshot: fsm.Snapshot) -> fsm.Snapshot:
    """Persist a snapshot as JSON text and load it back, as another process would."""
    return machine.snapshot_from_dict(json.loads(json.dumps(snapshot.to_dict())))


def call(name: str, params: Mapping[str, Any] | None) -> Any:
    """How a custom action call is recorded: its name, with its params when it has some."""
    return (name, dict(params)) if params else name


def action_names(machine: fsm.Machine) -> list[str]:
    return sorted(name for kind, name in machine.model.references if kind == "action")


def recording(machine: fsm.Machine, calls: list[Any]) -> fsm.Machine:
    """Provide every action the machine references (and nobody provided yet) as a
    recorder appending to ``calls``."""

    def recorder(name: str) -> Callable[..., None]:
        return lambda ctx, ev, params: calls.append(call(name, params))

    missing = [n for n in action_names(machine) if n not in machine.impl.actions]
    return machine.provide(actions={n: recorder(n) for n in missing})


def wait_for(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    """Poll until ``predicate()`` holds (services on a thread pool finish on their own
    time). The only place these tests sleep."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.002)


# -- driving a machine: the same steps through the pure API and through an actor ----------


@dataclass(frozen=True)
class Advance:
    """A scenario step: let ``ms`` milliseconds of (virtual) time pass."""

    ms: float


Step = str | dict[str, Any] | Advance


def ev(type_: str, **payload: Any) -> dict[str, Any]:
    return {"type": type_, **payload}


class PureRun:
    """Drives a machine with the pure step function only; fires due timers by hand."""

    def __init__(self, machine: fsm.Machine, context: Mapping[str, Any] | None = None) -> None:
        self.machine = machine
        self.now = 0.0
        self.actions: list[Any] = []
        self.snapshot, effects = machine.initial_transition(context)
        self._record(effects)

    @classmethod
    def resume(cls, machine: fsm.Machine, snapshot: fsm.Snapshot, now: float) -> PureRun:
        run = cls.__new__(cls)
        run.machine, run.snapshot, run.now, run.actions = machine, snapshot, now, []
        return run

    def _record(self, effects: Iterable[fsm.Effect]) -> None:
        self.actions.extend(call(e.type, e.params) for e in effects if not e.builtin)

    def send(self, event: Any) -> None:
        self.snapshot, effects = self.machine.transition(self.snapshot, event, now=self.now)
        self._record(effects)

    def advance(self, ms: float) -> None:
        end = self.now + ms
        while due := [t for t in self.snapshot.timers if t.to is None and t.due <= end]:
            timer = min(due, key=lambda t: (t.due, t.seq))
            self.now = timer.due
            self.snapshot, effects = self.machine.transition(
                self.snapshot, dict(timer.event), now=self.now, timer=timer
            )
            self._record(effects)
        self.now = end

    def step(self, step: Step) -> None:
        if isinstance(step, Advance):
            self.advance(step.ms)
        else:
            self.send(step)


class ActorRun:
    """Drives a live actor on a VirtualClock, recording custom actions as they run."""

    def __init__(
        self,
        machine: fsm.Machine,
        context: Mapping[str, Any] | None = None,
        *,
        restore: Mapping[str, Any] | None = None,
        now: float = 0.0,
        **options: Any,
    ) -> None:
        self.actions: list[Any] = []
        self.clock = fsm.VirtualClock(now)
        self.machine = recording(machine, self.actions)
        if restore is None:
            self.actor = self.machine.start(context, clock=self.clock, **options)
        else:
            self.actor = self.machine.restore(restore, clock=self.clock, **options)

    @property
    def snapshot(self) -> fsm.Snapshot:
        return self.actor.snapshot

    def step(self, step: Step) -> None:
        if isinstance(step, Advance):
            self.clock.advance(step.ms)
        else:
            self.actor.send(step)


def outcome(snapshot: fsm.Snapshot) -> dict[str, Any]:
    return {
        "value": snapshot.value,
        "context": snapshot.context,
        "status": snapshot.status,
        "output": snapshot.output,
    }


# -- the scenario table -------------------------------------------------------------------


@dataclass
class Scenario:
    id: str
    file: str
    steps: list[Step]
    value: Any
    status: str = "active"
    output: Any = None
    context: dict[str, Any] = field(default_factory=dict)  # expected subset of the context
    actions: list[Any] | None = None  # expected custom action calls, in order
    initial_context: dict[str, Any] | None = None


APPROVED = ["BUILD_SUCCEEDED", "TESTS_PASSED", ev("APPROVE", user="ada"), ev("APPROVE", user="grace")]

# ROLLBACK is declared once, on `pipeline`; it must work from every stage.
ROLLBACK_FROM = {
    "building": [],
    "testing": ["BUILD_SUCCEEDED"],
    "staging": ["BUILD_SUCCEEDED", "TESTS_PASSED"],
    "production": [*APPROVED, "PROMOTE"],
}

PED_CYCLE = 10_000 + 4_000 + 2_000  # walk, blink, stop

SCENARIOS = [
    # deployment.yaml
    Scenario(
        "deploy-released",
        "deployment.yaml",
        [
            "BUILD_SUCCEEDED",
            "TESTS_PASSED",
            ev("APPROVE", user="ada"),
            ev("APPROVE", user="ada"),  # same person twice: ignored
            "PROMOTE",  # one approval is not enough: ignored
            ev("APPROVE", user="grace"),
            "PROMOTE",
            "HEALTHY",
            "ROLLBACK",  # the machine is done: ignored
        ],
        "released",
        "done",
        {"status": "released", "version": "1.4.0", "approvers": ["ada", "grace"]},
        {"approvals": 2, "stage": "production"},
        [
            ("startBuild", {"target": "release"}),
            "runTests",
            ("deploy", {"env": "staging"}),
            ("deploy", {"env": "production"}),
            "notifyReleased",
        ],
        {"version": "1.4.0"},
    ),
    *(
        Scenario(
            f"deploy-rollback-from-{stage}",
            "deployment.yaml",
            [*before, ev("ROLLBACK", reason="error rate 12%")],
            "rolled_back",
            "done",
            {"status": "rolled_back", "stage": stage, "reason": "error rate 12%"},
        )
        for stage, before in ROLLBACK_FROM.items()
    ),
    Scenario(
        "deploy-build-failed",
        "deployment.yaml",
        [ev("BUILD_FAILED", error="compiler crashed"), "BUILD_SUCCEEDED"],
        "failed",
        "done",
        {"status": "failed", "stage": "building", "reason": "build: compiler crashed"},
        actions=[("startBuild", {"target": "release"})],
    ),
    Scenario(
        "deploy-tests-failed",
        "deployment.yaml",
        ["BUILD_SUCCEEDED", ev("TESTS_FAILED", failed=3)],
        "failed",
        "done",
        {"status": "failed", "stage": "testing", "reason": "tests: 3 failing"},
    ),
    Scenario(
        "deploy-rollback-default-reason",
        "deployment.yaml",
        ["BUILD_SUCCEEDED", "ROLLBACK"],
        "rolled_back",
        "done",
        {"status": "rolled_back", "stage": "testing", "reason": "manual rollback"},
        actions=[("startBuild", {"target": "release"}), "runTests", ("rollback", {"to": "previous"})],
    ),
    # traffic_light.yaml
    Scenario("light-green-lasts-30s", "traffic_light.yaml", [Advance(29_999)], "green"),
    Scenario("light-yellow", "traffic_light.yaml", [Advance(30_000)], "yellow"),
    Scenario("light-red-walk", "traffic_light.yaml", [Advance(35_000)], {"red": "walk"}),
    Scenario(
        "light-full-cycle",
        "traffic_light.yaml",
        [Advance(35_000 + PED_CYCLE)],
        "green",
        context={"cycles": 1},
    ),
    Scenario(
        "light-pedestrian-button",
        "traffic_light.yaml",
        [Advance(3_000), "PED_BUTTON", Advance(7_000)],
        "yellow",
        context={"pedestrianWaiting": True},
    ),
    Scenario(
        "light-fault-stops-timers",
        "traffic_light.yaml",
        [Advance(40_000), "FAULT", Advance(1_000_000)],
        "flashing",
        context={"cycles": 1},
    ),
    Scenario(
        "light-reset",
        "traffic_light.yaml",
        [Advance(40_000), "FAULT", "RESET", Advance(30_000)],
        "yellow",
    ),
    # parallel_editor.json
    Scenario(
        "editor-regions",
        "parallel_editor.json",
        ["TOGGLE_BOLD", "TOGGLE_ITALIC", "NUMBERS", "TOGGLE_BOLD"],
        {"bold": "off", "italic": "on", "list": "numbers", "block": "paragraph"},
    ),
    Scenario(
        "editor-clear-format-in-three-regions",
        "parallel_editor.json",
        ["TOGGLE_BOLD", "TOGGLE_ITALIC", "BULLETS", "INDENT", "INDENT", "CLEAR_FORMAT"],
        {"bold": "off", "italic": "off", "list": "none", "block": "paragraph"},
        context={"indent": 0},
    ),
    Scenario(
        "editor-code-block-clears-and-blocks",
        "parallel_editor.json",
        ["TOGGLE_BOLD", "BULLETS", "INDENT", "CODE_BLOCK", "TOGGLE_BOLD", "TOGGLE_ITALIC", "BULLETS", "INDENT"],
        {"bold": "off", "italic": "off", "list": "none", "block": "code"},
        context={"indent": 0},
    ),
    Scenario(
        "editor-back-to-paragraph",
        "parallel_editor.json",
        ["CODE_BLOCK", "CODE_BLOCK", "TOGGLE_BOLD", "BULLETS"],
        {"bold": "on", "italic": "off", "list": "bullets", "block": "paragraph"},
    ),
    Scenario(
        "editor-indent-bounds",
        "parallel_editor.json",
        ["INDENT", "BULLETS", "INDENT", "INDENT", "INDENT", "INDENT", "INDENT", "OUTDENT"],
        {"bold": "off", "italic": "off", "list": "bullets", "block": "paragraph"},
        context={"indent": 2},
    ),
    # history_player.yaml
    Scenario(
        "player-first-power-on",
        "history_player.yaml",
        ["POWER"],
        {"on": "stopped"},
        actions=["amplifierOn"],
    ),
    Scenario(
        "player-shallow-history",
        "history_player.yaml",
        ["POWER", "PLAY", "SEEK", "REVERSE", "POWER", "POWER"],
        {"on": {"playing": "normal"}},
        actions=["amplifierOn", "amplifierOff", "amplifierOn"],
    ),
    Scenario(
        "player-shallow-history-paused",
        "history_player.yaml",
        ["POWER", "PLAY", "PAUSE", "POWER", "POWER"],
        {"on": "paused"},
    ),
    Scenario(
        "player-deep-history",
        "history_player.yaml",
        ["POWER", "PLAY", "SEEK", "REVERSE", "STANDBY", "WAKE"],
        {"on": {"playing": {"seeking": "backward"}}},
        actions=["amplifierOn", "amplifierOff", "amplifierOn"],
    ),
    Scenario(
        "player-standby-then-power-cycle",
        "history_player.yaml",
        ["POWER", "PLAY", "SEEK", "STANDBY", "POWER", "POWER"],
        {"on": {"playing": "normal"}},
    ),
    Scenario(
        "player-stop-is-remembered-too",
        "history_player.yaml",
        ["POWER", "PLAY", "SEEK", "STOP", "STANDBY", "WAKE", "PLAY"],
        {"on": {"playing": "normal"}},
    ),
    # circuit_breaker.yaml
    Scenario(
        "breaker-trips",
        "circuit_breaker.yaml",
        ["FAILURE", "FAILURE", "FAILURE"],
        "open",
        context={"failures": 3, "trips": 1},
    ),
    Scenario(
        "breaker-success-resets-count",
        "circuit_breaker.yaml",
        ["FAILURE", "FAILURE", "SUCCESS", "FAILURE", "FAILURE"],
        "closed",
        context={"failures": 2, "trips": 0},
    ),
    Scenario(
        "breaker-half-open-success",
        "circuit_breaker.yaml",
        ["FAILURE"] * 3 + ["REQUEST", "REQUEST", Advance(5_000), "SUCCESS"],
        "closed",
        context={"failures": 0, "trips": 1, "rejected": 2},
    ),
    Scenario(
        "breaker-half-open-failure",
        "circuit_breaker.yaml",
        ["FAILURE"] * 3 + [Advance(5_000), "FAILURE", Advance(4_999)],
        "open",
        context={"trips": 2},
    ),
    Scenario(
        "breaker-threshold-from-context",
        "circuit_breaker.yaml",
        ["FAILURE", "FAILURE", "FAILURE", "FAILURE"],
        "closed",
        context={"failures": 4},
        initial_context={"threshold": 5},
    ),
    # order.yaml
    Scenario(
        "order-partial-then-full-payment",
        "order.yaml",
        [
            ev("ADD_ITEM", sku="book", price=30),
            "CHECKOUT",
            ev("SET_ADDRESS", address={"city": "Lyon", "country": "FR"}),
            "NEXT",
            ev("PAY", amount=20),
            ev("PAY", amount=15),
        ],
        "paid",
        "done",
        {"items": ["book"], "total": 35, "change": 0},
    ),
    Scenario(
        "order-free-shipping",
        "order.yaml",
        [
            ev("ADD_ITEM", sku="lamp", price=60),
            "CHECKOUT",
            ev("SET_ADDRESS", address={"city": "Boston", "country": "US"}),
            "NEXT",
            ev("PAY", amount=70),
        ],
        "paid",
        "done",
        {"items": ["lamp"], "total": 60, "change": 10},
    ),
    Scenario(
        "order-digital-skips-shipping",
        "order.yaml",
        [ev("ADD_ITEM", sku="ebook", price=12, digital=True), "CHECKOUT"],
        {"checkout": {"payment": "waiting"}},
        context={"needsShipping": False, "total": 12},
    ),
    Scenario("order-empty-cart-cannot-checkout", "order.yaml", ["CHECKOUT"], "cart"),
    Scenario(
        "order-needs-an-address",
        "order.yaml",
        [ev("ADD_ITEM", sku="book", price=30), "CHECKOUT", "NEXT"],
        {"checkout": "shipping"},
    ),
    Scenario(
        "order-edit-cart",
        "order.yaml",
        [
            ev("ADD_ITEM", sku="ebook", price=12, digital=True),
            "CHECKOUT",
            "EDIT_CART",
            ev("ADD_ITEM", sku="mug", price=9),
            "CHECKOUT",
        ],
        {"checkout": "shipping"},
        context={"items": ["ebook", "mug"], "subtotal": 21, "total": 21, "needsShipping": True},
    ),
    Scenario(
        "order-cancel-refunds",
        "order.yaml",
        [
            ev("ADD_ITEM", sku="book", price=30),
            "CHECKOUT",
            ev("SET_ADDRESS", address={"city": "Oslo", "country": "NO"}),
            "NEXT",
            ev("PAY", amount=10),
            "CANCEL",
        ],
        "cancelled",
        "done",
        {"refund": 10},
    ),
    # workflow.yaml
    Scenario(
        "workflow-readme",
        "workflow.yaml",
        ["START", "PAUSE", "RESUME", ev("PROGRESS", pct=40), ev("PROGRESS", pct=100)],
        "completed",
        "done",
        {"progress": 100},
        actions=["notifyStarted", "notifyStarted"],
    ),
    Scenario(
        "workflow-fail-and-retry",
        "workflow.yaml",
        [
            "START",
            ev("FAIL", reason="disk full"),
            "RETRY",
            "RETRY",  # already running: ignored
            ev("FAIL", reason="again"),
            "RETRY",
            ev("FAIL", reason="for good"),
            "RETRY",  # three attempts used: refused by the guard
        ],
        "failed",
        context={"attempts": 3, "error": "for good"},
    ),
]


@pytest.fixture(params=SCENARIOS, ids=lambda s: s.id)
def scenario(request: pytest.FixtureRequest) -> Scenario:
    return request.param


def check(scenario: Scenario, snapshot: fsm.Snapshot) -> None:
    assert snapshot.value == scenario.value
    assert snapshot.status == scenario.status
    assert snapshot.output == scenario.output
    assert scenario.context.items() <= snapshot.context.items()
    # the state value can always be matched back
    assert snapshot.matches(scenario.value)


def test_scenario_pure(scenario: Scenario) -> None:
    run = PureRun(load(scenario.file), scenario.initial_context)
    for step in scenario.steps:
        run.step(step)
    check(scenario, run.snapshot)
    if scenario.actions is not None:
        assert run.actions == scenario.actions


def test_scenario_actor(scenario: Scenario) -> None:
    machine = load(scenario.file)
    pure = PureRun(machine, scenario.initial_context)
    run = ActorRun(machine, scenario.initial_context)
    for step in scenario.steps:
        pure.step(step)
        run.step(step)
        # the actor sees exactly what the pure step function computes, step by step
        assert outcome(run.snapshot) == outcome(pure.snapshot)
    check(scenario, run.snapshot)
    assert run.actor.status == scenario.status
    assert run.actions == pure.actions
    if scenario.actions is not None:
        assert run.actions == scenario.actions


def test_scenario_resumes_from_json_anywhere(scenario: Scenario) -> None:
    """Persist at every point, reload from JSON text, continue: same result as never
    stopping, with the pure API and with a restored actor."""
    machine = load(scenario.file)
    reference = PureRun(machine, scenario.initial_context)
    for step in scenario.steps:
        reference.step(step)

    for cut in range(len(scenario.steps) + 1):
        before = PureRun(machine, scenario.initial_context)
        for step in scenario.steps[:cut]:
            before.step(step)
        restored = roundtrip(machine, before.snapshot)
        assert restored == before.snapshot

        pure = PureRun.resume(machine, restored, before.now)
        actor = ActorRun(machine, restore=json.loads(json.dumps(restored.to_dict())), now=before.now)
        assert outcome(actor.snapshot) == outcome(restored)
        for step in scenario.steps[cut:]:
            pure.step(step)
            actor.step(step)
        assert pure.snapshot == reference.snapshot, f"resumed after step {cut}"  # compares to_dict()
        assert outcome(actor.snapshot) == outcome(reference.snapshot), f"actor resumed after step {cut}"
        assert actor.actions == pure.actions == reference.actions[len(before.actions) :]


def test_every_machine_has_scenarios_or_dedicated_tests() -> None:
    dedicated = {"xstate_workflow.json", "retry_backoff.yaml"}
    covered = {s.file for s in SCENARIOS} | dedicated
    assert covered == {p.name for p in MACHINE_FILES}


# -- loading and the command line ---------------------------------------------------------


@pytest.mark.parametrize("path", MACHINE_FILES, ids=lambda p: p.name)
def test_machine_file_loads_and_validates(path: Path) -> None:
    machine = fsm.Machine.from_file(path)
    assert machine.id
    assert machine.source == str(path)
    result = subprocess.run(
        [sys.executable, "-m", "fsm.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("states)")
    assert ": ok (" in result.stdout


def test_validate_all_machines_at_once_as_json() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fsm.cli", "validate", "--json", *map(str, MACHINE_FILES)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["valid"] for r in reports] == [True] * len(MACHINE_FILES)


def fsm_command() -> list[str]:
    """The installed ``fsm`` console script next to this interpreter, else ``python -m fsm.cli``."""
    script = shutil.which("fsm", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "fsm.cli"]


def shell(command_line: str) -> subprocess.CompletedProcess[str]:
    """Run a documented ``fsm ...`` command line, split as a POSIX shell would."""
    argv = shlex.split(command_line)
    assert argv[0] == "fsm"
    return subprocess.run([*fsm_command(), *argv[1:]], capture_output=True, text=True, cwd=ROOT, timeout=60)


def fsm_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*fsm_command(), "run", *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


def readme_command() -> str:
    """The ``fsm run ...`` part of README's first set-up command, exactly as written."""
    first_block = (ROOT / "README.md").read_text().split("```sh\n", 1)[1].split("```", 1)[0]
    return "fsm run " + first_block.strip().split("&& fsm run ", 1)[1]


def test_workflow_readme_command_line(tmp_path: Path) -> None:
    """The exact command the README shows (its SQLite file redirected to a temp dir)."""
    command = readme_command()
    assert "machines/workflow.yaml" in command
    result = shell(command.replace("sqlite:///fsm.db", f"sqlite:///{tmp_path}/fsm.db"))
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last == 'final: "completed" (done) output {"progress": 100}'
    assert '"completed"' in last


def documented_commands() -> list[tuple[str, str]]:
    """(file name, command) for each ``fsm run`` command in a machine's header comment,
    joining lines continued with a backslash."""
    found = []
    for path in MACHINE_FILES:
        lines = [line.lstrip("#").strip() for line in path.read_text().splitlines() if line.startswith("#")]
        for i, line in enumerate(lines):
            if "fsm run machines/" not in line:
                continue
            command = line[line.index("fsm run machines/") :]
            while command.endswith("\\"):
                i += 1
                command = command[:-1] + " " + lines[i]
            found.append((path.name, command))
    return found


@pytest.mark.parametrize("command", [pytest.param(c, id=name) for name, c in documented_commands()])
def test_documented_run_commands_work(command: str) -> None:
    result = shell(command)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("final: ")


@pytest.mark.parametrize(
    ("file", "module"), [("xstate_workflow.json", "xstate_workflow"), ("retry_backoff.yaml", "retry_backoff")]
)
def test_impl_modules_provide_what_their_machine_needs(file: str, module: str) -> None:
    mod = impl(module)
    machine = load(file).provide(**{kind: getattr(mod, kind) for kind in ("actions", "guards", "services", "delays")})
    assert machine.missing_implementations() == {}


def test_cli_runs_a_machine_with_python_implementations() -> None:
    result = fsm_run(
        "machines/xstate_workflow.json",
        "--impl",
        "tests.impl.xstate_workflow",
        "-e",
        'START:{"job": {"items": [1, 2, 3], "failTimes": 1}}',
        "-e",
        "RETRY",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last == 'final: "success" (done) output {"result": {"total": 6, "attempt": 2}, "attempts": 2}'


def test_cli_runs_retry_backoff_with_named_delay() -> None:
    result = fsm_run(
        "machines/retry_backoff.yaml",
        "--impl",
        "tests.impl.retry_backoff",
        "--json",
        "-e",
        'START:{"request": {"failTimes": 2}}',
        "--advance",
        "10000",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["value"] for r in records].count("attempting") == 3
    assert records[-1]["status"] == "done"
    assert records[-1]["output"] == {"result": {"status": 200, "attempt": 3}, "attempts": 3}


# -- deployment.yaml ----------------------------------------------------------------------


def test_deployment_promote_needs_two_distinct_approvals() -> None:
    machine = load("deployment.yaml")
    snap, _ = machine.initial_transition({"version": "2.0.0"})
    for event in ["BUILD_SUCCEEDED", "TESTS_PASSED"]:
        snap, _ = machine.transition(snap, event)
    assert snap.matches("pipeline.staging")
    assert not snap.can("PROMOTE")
    snap, _ = machine.transition(snap, ev("APPROVE", user="ada"))
    assert snap.can(ev("APPROVE", user="linus"))
    assert not snap.can(ev("APPROVE", user="ada"))
    assert not snap.can("PROMOTE")
    unchanged, effects = machine.transition(snap, "PROMOTE")
    assert unchanged is snap and effects == []
    snap, _ = machine.transition(snap, ev("APPROVE", user="linus"))
    assert snap.can("PROMOTE")
    assert "ROLLBACK" in snap.next_events
    snap, effects = machine.transition(snap, "PROMOTE")
    assert snap.value == {"pipeline": "production"}
    assert [call(e.type, e.params) for e in effects if not e.builtin] == [("deploy", {"env": "production"})]


@pytest.mark.parametrize("stage", list(ROLLBACK_FROM))
def test_deployment_rollback_actor_runs_rollback_action(stage: str) -> None:
    run = ActorRun(load("deployment.yaml"), {"version": "3.1.0"})
    for step in ROLLBACK_FROM[stage]:
        run.step(step)
    assert run.snapshot.matches(f"pipeline.{stage}")
    run.actor.send("ROLLBACK", reason="pager")
    assert run.snapshot.value == "rolled_back"
    assert run.actions[-1] == ("rollback", {"to": "previous"})
    assert run.actor.status == "done"
    assert run.snapshot.output == {"status": "rolled_back", "stage": stage, "reason": "pager"}


# -- traffic_light.yaml -------------------------------------------------------------------


def record_changes(run: ActorRun) -> list[tuple[float, Any]]:
    """(virtual time, state value) each time the value changes."""
    seen: list[tuple[float, Any]] = [(run.clock.now(), run.snapshot.value)]

    def listener(snapshot: fsm.Snapshot) -> None:
        if snapshot.value != seen[-1][1]:
            seen.append((run.clock.now(), snapshot.value))

    run.actor.subscribe(listener)
    return seen


def test_traffic_light_exact_sequence() -> None:
    run = ActorRun(load("traffic_light.yaml"))
    seen = record_changes(run)
    run.clock.advance(3_000)
    run.actor.send("PED_BUTTON")  # someone waits: green ends at 10 s instead of 30 s
    run.clock.advance(100_000 - 3_000)
    assert seen == [
        (0, "green"),
        (10_000, "yellow"),
        (15_000, {"red": "walk"}),
        (25_000, {"red": "blink"}),
        (29_000, {"red": "stop"}),
        (31_000, "green"),
        (61_000, "yellow"),  # nobody pressed this time: the full 30 s
        (66_000, {"red": "walk"}),
        (76_000, {"red": "blink"}),
        (80_000, {"red": "stop"}),
        (82_000, "green"),
    ]
    assert run.snapshot.context == {"cycles": 2, "pedestrianWaiting": False}
    # green was entered at 82 s: its guarded 10 s timer fired at 92 s (nobody waiting,
    # so nothing happened) and the 30 s one is still pending
    assert [t.due for t in run.snapshot.timers] == [112_000]


def test_traffic_light_fault_cancels_pending_timers() -> None:
    run = ActorRun(load("traffic_light.yaml"))
    run.clock.advance(36_000)
    assert run.snapshot.matches("red.walk")
    assert run.clock.pending == 1
    run.actor.send("FAULT")
    assert run.snapshot.value == "flashing"
    assert run.snapshot.timers == ()
    assert run.clock.pending == 0
    assert run.clock.advance(1_000_000) == 0


def test_traffic_light_restored_mid_crossing_keeps_its_deadlines() -> None:
    machine = load("traffic_light.yaml")
    first = ActorRun(machine)
    first.clock.advance(40_000)  # red.walk since 35 s, blink due at 45 s
    data = json.loads(json.dumps(first.snapshot.to_dict()))
    first.actor.stop()
    assert first.actor.status == "stopped"

    second = ActorRun(machine, restore=data, now=40_000)
    seen = record_changes(second)
    second.clock.advance(20_000)
    assert seen == [
        (40_000, {"red": "walk"}),
        (45_000, {"red": "blink"}),
        (49_000, {"red": "stop"}),
        (51_000, "green"),
    ]


def test_traffic_light_pure_timers() -> None:
    machine = load("traffic_light.yaml")
    snap, effects = machine.initial_transition(now=1_000)
    assert [(t.event["type"], t.due) for t in snap.timers] == [
        ("xstate.after.10000.trafficLight.green", 11_000),
        ("xstate.after.30000.trafficLight.green", 31_000),
    ]
    assert [e.type for e in effects] == ["xstate.schedule", "xstate.schedule"]
    # the guarded 10 s timer fires, but nobody pressed the button: nothing happens
    ten = snap.timers[0]
    snap, _ = machine.transition(snap, dict(ten.event), now=ten.due, timer=ten)
    assert snap.value == "green"
    assert [t.due for t in snap.timers] == [31_000]


# -- parallel_editor.json -----------------------------------------------------------------


def test_editor_state_in_guards() -> None:
    machine = load("parallel_editor.json")
    snap, _ = machine.initial_transition()
    assert snap.matches({"bold": "off", "block": "paragraph"})
    assert not snap.can("INDENT")  # stateIn #editor.list.none blocks it
    snap, _ = machine.transition(snap, "CODE_BLOCK")
    assert snap.in_state("#editor.block.code")
    for blocked in ("TOGGLE_BOLD", "TOGGLE_ITALIC", "BULLETS", "NUMBERS"):
        assert not snap.can(blocked), blocked
        assert machine.transition(snap, blocked)[0] is snap
    snap, _ = machine.transition(snap, "CODE_BLOCK")
    assert snap.can("TOGGLE_BOLD") and snap.can("BULLETS")


def test_editor_one_event_in_three_regions() -> None:
    run = ActorRun(load("parallel_editor.json"))
    values: list[Any] = []
    run.actor.subscribe(lambda s: values.append(s.value))
    for event in ("TOGGLE_BOLD", "TOGGLE_ITALIC", "NUMBERS", "INDENT"):
        run.actor.send(event)
    assert run.snapshot.matches("bold.on") and run.snapshot.matches("italic.on")
    assert run.snapshot.matches("list.numbers")
    values.clear()
    # CODE_BLOCK raises CLEAR_FORMAT: handled by bold, italic and list in the same step,
    # so listeners see a single new snapshot with everything cleared
    run.actor.send("CODE_BLOCK")
    assert values == [{"bold": "off", "italic": "off", "list": "none", "block": "code"}]
    assert run.snapshot.context["indent"] == 0


# -- history_player.yaml ------------------------------------------------------------------


def test_player_history_memory_is_persisted() -> None:
    machine = load("history_player.yaml")
    run = PureRun(machine)
    for event in ("POWER", "PLAY", "SEEK", "REVERSE", "STANDBY"):
        run.send(event)
    data = run.snapshot.to_dict()
    assert data["history"] == {
        "player.on.resume": ["player.on.playing"],
        "player.on.restore": ["player.on.playing.seeking.backward"],
    }
    # another process, another actor: WAKE restores the deep configuration...
    woken = ActorRun(machine, restore=json.loads(json.dumps(data)))
    woken.actor.send("WAKE")
    assert woken.snapshot.value == {"on": {"playing": {"seeking": "backward"}}}
    assert woken.actions == ["amplifierOn"]
    # ...and a power cycle from there restores only the top level
    woken.actor.send("POWER")
    woken.actor.send("POWER")
    assert woken.snapshot.value == {"on": {"playing": "normal"}}
    assert woken.snapshot.matches("on.playing.normal")


def test_player_shallow_and_deep_differ_from_the_same_place() -> None:
    machine = load("history_player.yaml")
    run = PureRun(machine)
    for event in ("POWER", "PLAY", "SEEK", "REVERSE"):
        run.send(event)
    leaving = run.snapshot

    power_cycled, _ = machine.transition(machine.transition(leaving, "POWER")[0], "POWER")
    woken, _ = machine.transition(machine.transition(leaving, "STANDBY")[0], "WAKE")
    assert power_cycled.value == {"on": {"playing": "normal"}}
    assert woken.value == {"on": {"playing": {"seeking": "backward"}}}
    assert leaving.value == woken.value


@pytest.fixture(scope="module")
def xstate(xstate_oracle: XStateOracle) -> XStateOracle:
    return xstate_oracle


@pytest.mark.parametrize("scenario", [pytest.param(s, id=s.id) for s in SCENARIOS if s.file == "history_player.yaml"])
def test_player_history_agrees_with_xstate(xstate: XStateOracle, scenario: Scenario) -> None:
    """history_player.yaml has no expressions, so real XState v5 can run it unchanged:
    every step's state value and custom actions must be the same."""
    machine = load(scenario.file)
    steps = [{"event": ev(s) if isinstance(s, str) else s} for s in scenario.steps]
    trace = xstate.run_one(machine.definition, steps)

    run = PureRun(machine)
    ours = [(run.snapshot.value, list(run.actions))]
    for step in scenario.steps:
        run.actions.clear()
        run.step(step)
        ours.append((run.snapshot.value, list(run.actions)))
    theirs = [(t["value"], [call(a["type"], a["params"]) for a in t["actions"]]) for t in trace]
    assert ours == theirs


# -- circuit_breaker.yaml -----------------------------------------------------------------


class CircuitOpenError(RuntimeError):
    pass


def guarded_call(actor: fsm.Actor, fn: Callable[[], Any]) -> Any:
    """How a program uses the breaker: ask, call, report."""
    if not actor.snapshot.has_tag("accepting"):
        actor.send("REQUEST")
        raise CircuitOpenError("circuit open")
    try:
        result = fn()
    except Exception:
        actor.send("FAILURE")
        raise
    actor.send("SUCCESS")
    return result


def test_circuit_breaker_timeline() -> None:
    run = ActorRun(load("circuit_breaker.yaml"))
    emitted: list[dict[str, Any]] = []
    run.actor.on("*", emitted.append)
    seen = record_changes(run)

    def broken() -> None:
        raise ConnectionError("down")

    for _ in range(3):
        with pytest.raises(ConnectionError):
            guarded_call(run.actor, broken)
    run.clock.advance(1_000)
    with pytest.raises(CircuitOpenError):
        guarded_call(run.actor, lambda: "never called")
    run.clock.advance(4_000)  # t = 5 s: reset timeout over
    with pytest.raises(ConnectionError):
        guarded_call(run.actor, broken)  # the trial call fails: open again, timer restarts
    run.clock.advance(4_999)
    assert run.snapshot.value == "open"
    run.clock.advance(1)
    assert guarded_call(run.actor, lambda: "pong") == "pong"

    assert seen == [
        (0, "closed"),
        (0, "open"),
        (5_000, "half_open"),
        (5_000, "open"),
        (10_000, "half_open"),
        (10_000, "closed"),
    ]
    assert emitted == [
        {"type": "breaker.opened", "trips": 1},
        {"type": "breaker.opened", "trips": 2},
        {"type": "breaker.closed"},
    ]
    assert run.snapshot.context == {"failures": 0, "threshold": 3, "trips": 2, "rejected": 1}


def test_circuit_breaker_restored_while_open() -> None:
    machine = load("circuit_breaker.yaml")
    run = ActorRun(machine)
    for _ in range(3):
        run.actor.send("FAILURE")
    run.clock.advance(2_500)
    data = json.loads(json.dumps(run.snapshot.to_dict()))
    assert [t["due"] for t in data["timers"]] == [5_000]

    restored = ActorRun(machine, restore=data, now=2_500)
    restored.clock.advance(2_499)
    assert restored.snapshot.value == "open"
    restored.clock.advance(1)
    assert restored.snapshot.value == "half_open"
    assert restored.snapshot.has_tag("accepting")


def test_circuit_breaker_stale_timer_redelivery_is_ignored() -> None:
    """A worker that fires timers through the pure API may deliver one twice (crash
    after the step, before acknowledging). The second delivery must not fire the
    reset timeout of a later visit to `open` early."""
    machine = load("circuit_breaker.yaml")
    snap, _ = machine.initial_transition()
    for _ in range(3):
        snap, _ = machine.transition(snap, "FAILURE", now=0)
    (first,) = snap.timers  # open since 0: half_open at 5 s
    snap, _ = machine.transition(snap, dict(first.event), now=first.due, timer=first)
    snap, _ = machine.transition(snap, "FAILURE", now=5_000)  # open again: half_open at 10 s
    (second,) = snap.timers
    assert (second.id, second.due) == (first.id, 10_000)
    redelivered, _ = machine.transition(snap, dict(first.event), now=5_001, timer=first)
    assert redelivered.value == "open"
    assert redelivered.timers == (second,)


# -- order.yaml ---------------------------------------------------------------------------


def test_order_emits_to_listeners() -> None:
    run = ActorRun(load("order.yaml"))
    everything: list[dict[str, Any]] = []
    paid: list[dict[str, Any]] = []
    run.actor.on("*", everything.append)
    run.actor.on("order.paid", paid.append)
    partial_sub = run.actor.on("payment.partial", lambda e: None)
    partial_sub.unsubscribe()

    run.actor.send("ADD_ITEM", sku="book", price=30)
    # `raise` is handled within the same step: the total is already up to date
    assert run.snapshot.context["total"] == 30
    run.actor.send("CHECKOUT")
    run.actor.send("SET_ADDRESS", address={"city": "Lyon", "country": "FR"})
    run.actor.send("NEXT")
    assert run.snapshot.matches("checkout.payment.waiting")
    run.actor.send({"type": "PAY", "amount": 20})
    run.actor.send("PAY", amount=15)

    assert everything == [
        {"type": "totals.changed", "total": 30},
        {"type": "totals.changed", "total": 35},
        {"type": "payment.partial", "remaining": 15},
        {"type": "order.paid", "total": 35},
    ]
    assert paid == [{"type": "order.paid", "total": 35}]
    assert run.actor.status == "done"
    assert run.snapshot.output == {"items": ["book"], "total": 35, "change": 0}


def test_order_always_settles_in_one_step() -> None:
    machine = load("order.yaml")
    run = PureRun(machine)
    run.send(ev("ADD_ITEM", sku="ebook", price=12, digital=True))
    run.send("CHECKOUT")  # cart -> shipping -> (always) payment, in one macrostep
    assert run.snapshot.value == {"checkout": {"payment": "waiting"}}
    snap, effects = machine.transition(run.snapshot, ev("PAY", amount=5))
    assert snap.value == {"checkout": {"payment": "waiting"}}  # checking -> waiting
    assert [e.params for e in effects if e.type == "xstate.emit"] == [
        {"event": {"type": "payment.partial", "remaining": 7}}
    ]


# -- xstate_workflow.json: invoked services -------------------------------------------------


def workflow_machine(service: Any | None = None) -> tuple[fsm.Machine, list[Any]]:
    """The workflow machine with tests/impl's implementations, recording each call of
    ``initialize`` and each service input."""
    module = impl("xstate_workflow")
    calls: list[Any] = []
    target = service or module.run_workflow

    def traced_service(context: Any, event: Any, input: Any) -> Any:
        calls.append(("runWorkflow", dict(input)))
        return target(context, event, input)

    machine = load("xstate_workflow.json").provide(
        actions={**module.actions, "initialize": lambda c, e, p: calls.append("initialize")},
        services={"runWorkflow": traced_service},
    )
    return machine, calls


@pytest.fixture(params=["inline", "thread-pool"])
def executor(request: pytest.FixtureRequest) -> Any:
    """How services run: inline right after the step, or on the default thread pool."""
    return "inline" if request.param == "inline" else None


def settle(actor: fsm.Actor) -> fsm.Snapshot:
    """Wait until no service is running (immediate for the inline executor)."""
    wait_for(lambda: not actor.snapshot.matches("running"))
    return actor.snapshot


def test_workflow_service_succeeds(executor: Any) -> None:
    machine, calls = workflow_machine()
    actor = machine.start(clock=fsm.VirtualClock(), executor=executor)
    assert actor.snapshot.value == "idle"
    actor.send("START", job={"items": [1, 2, 3, 4]})
    snap = settle(actor)
    assert snap.value == "success"
    assert snap.status == "done"
    assert snap.context["result"] == {"total": 10, "attempt": 1}
    assert snap.output == {"result": {"total": 10, "attempt": 1}, "attempts": 1}
    assert calls == ["initialize", ("runWorkflow", {"job": {"items": [1, 2, 3, 4]}, "attempt": 1})]


def test_workflow_service_fails_then_retry_succeeds(executor: Any) -> None:
    machine, calls = workflow_machine()
    actor = machine.start(clock=fsm.VirtualClock(), executor=executor)
    actor.send("START", job={"items": [5], "failTimes": 1})
    snap = settle(actor)
    assert snap.value == "failure"
    assert snap.status == "active"
    assert snap.context["error"] == "attempt 1 failed"
    assert snap.can("RETRY")
    actor.send("RETRY")
    snap = settle(actor)
    assert snap.value == "success"
    assert snap.context["error"] is None  # cleared on entering `running`
    assert snap.output == {"result": {"total": 5, "attempt": 2}, "attempts": 2}
    assert [c for c in calls if c != "initialize"] == [
        ("runWorkflow", {"job": {"items": [5], "failTimes": 1}, "attempt": 1}),
        ("runWorkflow", {"job": {"items": [5], "failTimes": 1}, "attempt": 2}),
    ]
    assert calls.count("initialize") == 2


def test_workflow_retries_are_bounded(executor: Any) -> None:
    machine, calls = workflow_machine()
    actor = machine.start({"maxAttempts": 2}, clock=fsm.VirtualClock(), executor=executor)
    actor.send("START", job={"failTimes": 99})
    settle(actor)
    actor.send("RETRY")
    snap = settle(actor)
    assert snap.value == "failure"
    assert snap.context["attempts"] == 2
    assert not snap.can("RETRY")
    actor.send("RETRY")  # refused by the guard
    assert actor.snapshot.value == "failure"
    assert len([c for c in calls if c != "initialize"]) == 2


def test_workflow_async_service(executor: Any) -> None:
    async def run_async(context: Any, event: Any, input: Any) -> dict[str, Any]:
        return {"total": sum(input["job"]["items"]) * 2}

    machine, _ = workflow_machine(run_async)
    actor = machine.start(clock=fsm.VirtualClock(), executor=executor)
    actor.send("START", job={"items": [1, 2]})
    assert settle(actor).output == {"result": {"total": 6}, "attempts": 1}


def test_workflow_async_service_that_raises() -> None:
    async def broken(context: Any, event: Any, input: Any) -> None:
        raise ValueError("bad input")

    machine, _ = workflow_machine(broken)
    actor = machine.start(clock=fsm.VirtualClock())
    actor.send("START", job={})
    snap = settle(actor)
    assert snap.value == "failure"
    assert snap.context["error"] == "bad input"


def test_workflow_service_on_a_custom_executor() -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        machine, _ = workflow_machine()
        actor = machine.start(clock=fsm.VirtualClock(), executor=pool)
        actor.send("START", job={"items": [2]})
        assert settle(actor).value == "success"


def test_workflow_pure_api_with_service_events() -> None:
    """Without a runtime, the invocation is an effect; its result is just an event."""
    machine = load("xstate_workflow.json").provide(actions=impl("xstate_workflow").actions)
    snap, _ = machine.initial_transition()
    snap, effects = machine.transition(snap, ev("START", job={"items": [7]}))
    assert snap.value == "running"
    assert snap.children == {"workflow": {"src": "runWorkflow", "input": {"job": {"items": [7]}, "attempt": 1}}}
    spawn = [e for e in effects if e.type == "xstate.spawnChild"]
    assert [e.params for e in spawn] == [
        {"id": "workflow", "src": "runWorkflow", "input": {"job": {"items": [7]}, "attempt": 1}}
    ]
    assert [e.type for e in effects if not e.builtin] == ["initialize"]

    # persisted while the service runs, then completed in "another process"
    restored = roundtrip(machine, snap)
    for base in (snap, restored):
        failed, _ = machine.transition(base, {"type": "xstate.error.actor.workflow", "error": "timeout"})
        assert failed.value == "failure"
        assert failed.context["error"] == "timeout"
        assert failed.children == {}
        done, _ = machine.transition(base, {"type": "xstate.done.actor.workflow", "output": 7})
        assert done.status == "done"
        assert done.output == {"result": 7, "attempts": 1}
    assert done == machine.transition(snap, {"type": "xstate.done.actor.workflow", "output": 7})[0]


def test_workflow_restored_while_running_restarts_its_service() -> None:
    machine, calls = workflow_machine()
    snap, _ = machine.initial_transition()
    snap, _ = machine.transition(snap, ev("START", job={"items": [4, 4]}))
    data = json.loads(json.dumps(snap.to_dict()))
    actor = machine.restore(data, clock=fsm.VirtualClock(), executor="inline")
    assert actor.snapshot.value == "success"
    assert actor.snapshot.output == {"result": {"total": 8, "attempt": 1}, "attempts": 1}
    # entry actions are not run again on restore; only the invocation is restarted
    assert calls == [("runWorkflow", {"job": {"items": [4, 4]}, "attempt": 1})]


# -- retry_backoff.yaml -------------------------------------------------------------------

BASE, MULTIPLIER, JITTER, SEED = 100.0, 2.0, 50.0, 7


def expected_attempt_times(attempts: int, seed: int = SEED) -> list[float]:
    """When each call should happen: the first at t=0, then after each backoff delay."""
    rng = random.Random(seed)
    times = [0.0]
    for attempt in range(1, attempts):
        times.append(times[-1] + (BASE * MULTIPLIER ** (attempt - 1) + rng.uniform(0, JITTER)))
    return times


def retry_machine(clock: fsm.VirtualClock, rng: random.Random) -> tuple[fsm.Machine, list[tuple[float, int]]]:
    """retry_backoff.yaml with tests/impl's service (traced with the virtual time of each
    call) and a seeded backoff."""
    module = impl("retry_backoff")
    calls: list[tuple[float, int]] = []

    def traced(context: Any, event: Any, input: Any) -> Any:
        calls.append((clock.now(), input["attempt"]))
        return module.call_service(context, event, input)

    machine = load("retry_backoff.yaml").provide(
        services={"callService": traced},
        delays={"retryDelay": module.backoff(rng, BASE, MULTIPLIER, JITTER)},
    )
    return machine, calls


def test_retry_backoff_attempt_times() -> None:
    clock = fsm.VirtualClock()
    machine, calls = retry_machine(clock, random.Random(SEED))
    actor = machine.start(clock=clock, executor="inline")
    actor.send("START", request={"failTimes": 3})
    clock.run_until_idle()
    times = expected_attempt_times(4)
    assert calls == [(t, n) for n, t in enumerate(times, 1)]
    # the delays really are exponential: 100, 200, 400 ms plus up to 50 ms of jitter
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert [int(g // 100) * 100 for g in gaps] == [100, 200, 400]
    assert actor.status == "done"
    assert actor.snapshot.output == {"result": {"status": 200, "attempt": 4}, "attempts": 4}
    assert actor.snapshot.context["errors"] == [f"503 on attempt {n}" for n in (1, 2, 3)]


def test_retry_backoff_gives_up_after_max_attempts() -> None:
    clock = fsm.VirtualClock()
    machine, calls = retry_machine(clock, random.Random(SEED))
    actor = machine.start({"maxAttempts": 5}, clock=clock, executor="inline")
    actor.send("START", request={"failTimes": 99})
    clock.run_until_idle()
    assert calls == [(t, n) for n, t in enumerate(expected_attempt_times(5), 1)]
    assert actor.snapshot.value == "failed"
    assert actor.snapshot.output == {"attempts": 5, "errors": [f"503 on attempt {n}" for n in range(1, 6)]}
    assert clock.pending == 0


def test_retry_backoff_retry_now_cancels_the_timer() -> None:
    clock = fsm.VirtualClock()
    machine, calls = retry_machine(clock, random.Random(SEED))
    actor = machine.start(clock=clock, executor="inline")
    actor.send("START", request={"failTimes": 1})
    assert actor.snapshot.value == "waiting"
    clock.advance(10)
    actor.send("RETRY_NOW")
    assert calls == [(0.0, 1), (10.0, 2)]
    assert actor.snapshot.value == "succeeded"
    assert clock.pending == 0


def test_retry_backoff_restored_while_waiting() -> None:
    """Stop during a backoff, resume from JSON in a new actor: same call times."""
    clock = fsm.VirtualClock()
    rng = random.Random(SEED)
    machine, calls = retry_machine(clock, rng)
    actor = machine.start(clock=clock, executor="inline")
    actor.send("START", request={"failTimes": 2})
    clock.advance(50)
    data = json.loads(json.dumps(actor.snapshot.to_dict()))
    actor.stop()
    assert data["value"] == "waiting"
    assert clock.advance(10_000) == 0  # the stopped actor's timer was cancelled

    clock2 = fsm.VirtualClock(50)
    machine2, calls2 = retry_machine(clock2, rng)  # the same random stream continues
    resumed = machine2.restore(data, clock=clock2, executor="inline")
    clock2.run_until_idle()
    assert calls + calls2 == [(t, n) for n, t in enumerate(expected_attempt_times(3), 1)]
    assert resumed.snapshot.output == {"result": {"status": 200, "attempt": 3}, "attempts": 3}


def test_retry_backoff_pure_api_schedules_named_delay() -> None:
    clock = fsm.VirtualClock()
    machine, _ = retry_machine(clock, random.Random(SEED))
    snap, _ = machine.initial_transition()
    snap, effects = machine.transition(snap, ev("START", request={}), now=1_000)
    assert [e.params["input"] for e in effects if e.type == "xstate.spawnChild"] == [{"request": {}, "attempt": 1}]
    snap, effects = machine.transition(snap, {"type": "xstate.error.actor.call", "error": "boom"}, now=1_020)
    assert snap.value == "waiting"
    assert snap.context["errors"] == ["boom"]
    (timer,) = snap.timers
    first_delay = BASE + random.Random(SEED).uniform(0, JITTER)
    assert timer.event == {"type": "xstate.after.retryDelay.retry.waiting"}
    assert timer.due == 1_020 + first_delay
    snap, effects = machine.transition(snap, dict(timer.event), now=timer.due, timer=timer.id)
    assert snap.value == "attempting"
    assert snap.timers == ()
    assert [e.params["input"]["attempt"] for e in effects if e.type == "xstate.spawnChild"] == [2]
