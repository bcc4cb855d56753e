"""The persistence commands of the CLI, on SQLite and PostgreSQL: ``fsm run --store``,
``fsm send``, ``fsm worker``, ``fsm instances list|show|history`` and ``fsm replay``.

Commands that must work "from any process" (``send``, ``worker``) run as real
subprocesses; the others run in-process through click's CliRunner, which is faster and
exercises the same code. The ``backend`` fixture comes from tests/test_store.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import fsm
from fsm.cli import main
from tests import test_store as stores
from tests.test_store import Backend

ROOT = Path(__file__).resolve().parents[1]

ORDER_YAML = """\
id: order
initial: cart
context: {items: 0}
states:
  cart:
    on:
      ADD:
        actions:
          - type: assign
            assignment: {items: {expr: "context.items + event.qty"}}
      CHECKOUT: {target: paying, guard: {expr: "context.items > 0"}}
  paying:
    after:
      300:
        target: reminded
        actions: [remind]
    on:
      PAID: shipped
  reminded:
    after:
      60000: cancelled
    on:
      PAID: shipped
  shipped: {type: final}
  cancelled: {type: final}
"""

IMPL = """\
import os

def remind(context, event, params, *, effect):
    with open(os.environ["FSM_TEST_REMINDERS"], "a") as f:
        f.write(effect.key + "\\n")

actions = {"remind": remind}
"""


@pytest.fixture(params=stores.BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from stores.make_backend(request.param, tmp_path)


@pytest.fixture
def order_file(tmp_path: Path) -> Path:
    path = tmp_path / "order.yaml"
    path.write_text(ORDER_YAML)
    (tmp_path / "order_impl.py").write_text(IMPL)
    return path


def order_machine(reminders: list[str] | None = None) -> fsm.Machine:
    sink = reminders if reminders is not None else []
    return fsm.Machine.from_yaml(ORDER_YAML).provide(
        actions={"remind": lambda ctx, ev, params, *, effect: sink.append(effect.key)}
    )


def cli(*args: str) -> Result:
    """Run ``fsm ARGS`` in this process."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def fsm_process(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``fsm ARGS`` in another process."""
    import os

    return subprocess.run(
        [sys.executable, "-m", "fsm.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=60,
    )


def json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# -- run, then query ---------------------------------------------------------------------------


def test_run_with_a_store_then_list_show_and_history(backend: Backend, order_file: Path) -> None:
    url = backend.url
    run = ["run", str(order_file), "--store", url, "--impl", str(order_file.with_name("order_impl.py"))]
    result = cli(*run, "--id", "o-1", "-e", 'ADD:{"qty": 2}', "-e", "ADD:{}")
    assert result.exit_code == 3, "the second ADD has no qty: the machine fails"  # and that is journaled too
    assert "o-1" in result.output
    result = cli(*run, "--id", "o-2", "-e", 'ADD:{"qty": 2}', "-e", "CHECKOUT")
    assert result.exit_code == 0, result.output
    assert "instance o-2 in" in result.output and 'final: "paying" (active)' in result.output
    # the same id again resumes the stored instance
    result = cli(*run, "--id", "o-2", "-e", "PAID")
    assert result.exit_code == 0, result.output
    assert 'final: "shipped" (done)' in result.output

    listed = cli("instances", "list", "--store", url)
    assert listed.exit_code == 0
    assert listed.output.splitlines()[0].split() == ["ID", "MACHINE", "STATUS", "STEPS", "STATE"]
    rows = {line.split()[0]: line.split()[1:] for line in listed.output.splitlines()[1:]}
    assert rows["o-2"] == ["order", "done", "3", '"shipped"']
    assert rows["o-1"][:2] == ["order", "error"]

    as_json = json_lines(cli("instances", "list", "--store", url, "--json").output)
    assert {r["id"]: (r["status"], r["value"], r["version"]) for r in as_json} == {
        "o-1": ("error", "cart", 2),
        "o-2": ("done", "shipped", 3),
    }
    only_done = json_lines(cli("instances", "list", "--store", url, "--json", "--status", "done").output)
    assert [r["id"] for r in only_done] == ["o-2"]
    assert cli("instances", "list", "--store", url, "--machine", "nope").output.strip() == "no instances"

    shown = json.loads(cli("instances", "show", "--store", url, "o-2", "--json").output)
    assert (shown["id"], shown["machine"], shown["version"], shown["status"]) == ("o-2", "order", 3, "done")
    assert shown["snapshot"]["value"] == "shipped" and shown["snapshot"]["context"] == {"items": 2}
    assert shown["pending_effects"] == [] and shown["created_at"] <= shown["updated_at"]

    text = cli("instances", "history", "--store", url, "o-2").output.splitlines()
    assert [line.split()[:2] for line in text] == [["0", "xstate.init"], ["1", "ADD"], ["2", "CHECKOUT"], ["3", "PAID"]]
    assert text[2].rstrip().endswith("(active)") and '"paying"' in text[2]
    records = json_lines(cli("instances", "history", "--store", url, "o-2", "--json").output)
    assert [r["seq"] for r in records] == [0, 1, 2, 3]
    assert records[1]["event"] == {"type": "ADD", "qty": 2} and records[1]["event_id"]
    assert records[3]["value"] == "shipped" and records[3]["status"] == "done"
    assert all(r["recorded_at"] > 0 for r in records)

    missing = cli("instances", "history", "--store", url, "ghost")
    assert (missing.exit_code, missing.output.strip()) == (1, "error: no instance 'ghost' in the store")
    missing = cli("instances", "show", "--store", url, "ghost")
    assert (missing.exit_code, missing.output.strip()) == (1, "error: no instance 'ghost' in the store")


def test_instances_show_is_readable_by_default(backend: Backend) -> None:
    store = backend.open()
    machine = order_machine()
    clock = fsm.VirtualClock(start=1_700_000_000_000)  # 2023-11-14T22:13:20Z
    actor = machine.start(store=store, instance_id="o", clock=clock)
    actor.send("ADD", qty=2)
    actor.send("CHECKOUT")  # arms the 300 ms reminder
    actor.stop()
    backend.sql(
        "INSERT INTO fsm_outbox (instance_id, seq, idx, effect, attempts, last_error, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        ("o", 2, 0, '{"type": "remind"}', 2, "ConnectionError: down", 0.0),
    )
    stored = store.load("o")
    result = cli("instances", "show", "--store", backend.url, "o")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    rows = [(line[:9].strip(), line[10:]) for line in lines]
    assert rows[:6] == [
        ("instance", "o"),
        ("machine", f"order (version {machine.version})"),
        ("status", "active"),
        ("steps", "2"),
        ("state", '"paying"'),
        ("context", '{"items": 2}'),
    ]
    assert rows[6:8] == [
        ("timer", "xstate.after.300.order.paying due 2023-11-14T22:13:20.300Z"),
        ("effect", "o:2:0 remind pending (2 attempts, last error: ConnectionError: down)"),
    ]
    assert [label for label, _ in rows[8:]] == ["created", "updated"]
    assert rows[8][1].endswith("Z") and rows[8][1][:4] == time.strftime("%Y", time.gmtime(stored.created_at))
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.output)
    shown = json.loads(cli("instances", "show", "--store", backend.url, "o", "--json").output)
    assert shown["pending_effects"] == [
        {"key": "o:2:0", "type": "remind", "attempts": 2, "last_error": "ConnectionError: down"}
    ]
    assert shown["snapshot"] == stored.snapshot


# -- a stored run needs every implementation ------------------------------------------------------


def test_run_with_a_store_refuses_missing_actions_and_stores_nothing(
    backend: Backend, order_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reminders = tmp_path / "reminders.txt"
    monkeypatch.setenv("FSM_TEST_REMINDERS", str(reminders))
    monkeypatch.chdir(tmp_path)  # where --impl modules are imported from
    events = ["-e", 'ADD:{"qty": 1}', "-e", "CHECKOUT", "--advance", "300"]
    refused = cli("run", str(order_file), "--store", backend.url, "--id", "o", *events)
    assert refused.exit_code == 1
    first, *rest = refused.output.splitlines()
    assert first == "error: machine 'order' references implementations that were not provided:"
    assert rest[0] == "  - action 'remind' (used at states.paying.after.300.actions[0])"
    assert "durable effects" in rest[1] and "--impl MODULE" in rest[2] and "Traceback" not in refused.output
    if backend.name == "sqlite":
        assert backend.path is not None and not backend.path.exists(), "refused before the store was opened"
    else:
        assert not backend.open().exists("o")

    # without --store the run is an exploration: the action is printed, not run
    explored = cli("run", str(order_file), *events)
    assert explored.exit_code == 0, explored.output
    assert "[remind]" in explored.output and not reminders.exists()

    # with its implementation the stored run executes the effect and marks it done
    done = cli("run", str(order_file), "--store", backend.url, "--id", "o", "--impl", "order_impl", *events)
    assert done.exit_code == 0, done.output
    assert reminders.read_text().split() == ["o:3:0"]
    store = backend.open()
    assert store.pending_effects("o") == [] and store.load("o").snapshot["value"] == "reminded"

    # resuming an existing instance without --impl is refused too, and changes nothing
    again = cli("run", str(order_file), "--store", backend.url, "--id", "o", "-e", "PAID")
    assert again.exit_code == 1 and "action 'remind'" in again.output
    assert store.load("o").version == 3


# -- send and worker, from other processes ------------------------------------------------------


def test_send_from_another_process_changes_the_instance(backend: Backend, order_file: Path) -> None:
    store = backend.open()
    order_machine().start(store=store, instance_id="o", clock=fsm.VirtualClock()).stop()
    here = order_file.parent
    add = ["send", "--store", backend.url, "o", "ADD", '{"qty": 3}', "--event-id", "add-1", "--impl", "order_impl"]
    done = fsm_process(*add, cwd=here)
    assert done.returncode == 0, done.stderr
    assert "ADD" in done.stdout and '"cart"' in done.stdout
    again = fsm_process(*add, cwd=here)
    assert again.returncode == 0, again.stderr
    stored = store.load("o")
    assert (stored.version, stored.snapshot["context"]) == (1, {"items": 3}), "the redelivered event id was ignored"
    [_, record] = store.history("o")
    assert (record.event, record.event_id) == ({"type": "ADD", "qty": 3}, "add-1")

    # the machine's actions need their implementations (--impl), even for an event that
    # runs none: `fsm send` refuses cleanly rather than completing effects with no-ops
    refused = fsm_process("send", "--store", backend.url, "o", "CHECKOUT", cwd=here)
    assert refused.returncode == 1 and "action 'remind'" in refused.stderr and "Traceback" not in refused.stderr
    assert store.load("o").version == 1


def test_send_to_a_missing_instance_fails_cleanly(backend: Backend) -> None:
    backend.open()  # the schema exists; the instance does not
    done = fsm_process("send", "--store", backend.url, "ghost", "PAID", cwd=ROOT)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: no instance 'ghost' in the store"
    assert done.stdout == ""


def test_worker_once_fires_timers_that_came_due_while_no_process_ran(
    backend: Backend, order_file: Path, tmp_path: Path
) -> None:
    store = backend.open()
    machine = order_machine()
    for instance_id in ("due", "not-due"):
        actor = machine.start(store=store, instance_id=instance_id, clock=fsm.RealClock())
        actor.send("ADD", qty=1)
        if instance_id == "due":
            actor.send("CHECKOUT")  # arms the 300 ms reminder
        actor.stop()  # detached: nothing in this process will fire the timer
    assert store.load("due").snapshot["timers"], "the pending timer is stored"
    time.sleep(0.35)

    reminders = tmp_path / "reminders.txt"
    env = {"FSM_TEST_REMINDERS": str(reminders)}
    done = fsm_process("worker", "--store", backend.url, "--once", "--impl", "order_impl", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == 'due: "reminded" (active)'
    assert reminders.read_text().split() == ["due:3:0"], "the timer's action ran in the worker"
    stored = store.load("due")
    assert (stored.version, stored.snapshot["value"]) == (3, "reminded")
    last = store.history("due")[-1]
    assert last.event["type"] == "xstate.after.300.order.paying" and last.timer is not None
    assert store.pending_effects("due") == []
    assert store.load("not-due").version == 1

    # the next timer is a minute away: another pass does nothing
    done = fsm_process("worker", "--store", backend.url, "--once", "--impl", "order_impl", cwd=tmp_path, env=env)
    assert (done.returncode, done.stdout) == (0, "")
    assert store.load("due").version == 3


def test_worker_without_the_implementations_reports_the_instance_and_goes_on(
    backend: Backend, order_file: Path
) -> None:
    store = backend.open()
    machine = order_machine()
    past = time.time() * 1000 - 10_000
    actor = machine.start(store=store, instance_id="o", clock=fsm.VirtualClock(start=past))
    actor.send("ADD", qty=1)
    actor.send("CHECKOUT")
    actor.stop()
    result = cli("worker", "--store", backend.url, "--once")
    assert result.exit_code == 0
    assert store.load("o").snapshot["value"] == "paying", "nothing fired without `remind`"


def test_worker_json_prints_one_line_per_instance_handled(
    backend: Backend, order_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FSM_TEST_REMINDERS", str(tmp_path / "reminders.txt"))
    monkeypatch.chdir(tmp_path)
    store = backend.open()
    past = fsm.VirtualClock(start=time.time() * 1000 - 10_000)
    actor = order_machine().start(store=store, instance_id="due", clock=past)
    actor.send("ADD", qty=1)
    actor.send("CHECKOUT")  # its 300 ms reminder is long due
    actor.stop()
    # another machine, whose action the worker's --impl does not provide
    bill = fsm.Machine.from_dict(
        {"id": "bill", "initial": "a", "states": {"a": {"after": {"5": {"target": "b", "actions": "bill"}}}, "b": {}}}
    ).provide(actions={"bill": lambda ctx, ev, params: None})
    bill.start(store=store, instance_id="unbillable", clock=fsm.VirtualClock(start=time.time() * 1000)).stop()
    time.sleep(0.01)

    result = cli("worker", "--store", backend.url, "--once", "--impl", "order_impl", "--json")
    assert result.exit_code == 0, result.output
    lines = {line["instance"]: line for line in json_lines(result.stdout)}
    assert lines["due"] == {"instance": "due", "value": "reminded", "status": "active"}
    assert set(lines["unbillable"]) == {"instance", "error"} and "action 'bill'" in lines["unbillable"]["error"]
    assert len(result.stdout.splitlines()) == 2
    assert store.load("due").snapshot["value"] == "reminded"
    assert store.load("unbillable").snapshot["value"] == "a"


def test_timers_of_fsm_run_with_a_store_are_not_fired_early(backend: Backend, order_file: Path) -> None:
    store = backend.open()
    impl = str(order_file.with_name("order_impl.py"))
    args = ["run", str(order_file), "--store", backend.url, "--id", "o", "--impl", impl, "-e", 'ADD:{"qty": 1}']
    assert cli(*args, "-e", "CHECKOUT").exit_code == 0
    machine = order_machine()
    # 300 ms have not passed: a worker must find nothing due
    from fsm.runtime.worker import Worker

    Worker(store, machine, executor="inline").run_once()
    assert store.load("o").snapshot["value"] == "paying"


# -- replay -------------------------------------------------------------------------------------


def test_replay_exits_0_when_the_journal_matches_and_4_when_tampered(
    backend: Backend, order_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(order_file.parent)  # where --impl modules are imported from
    store = backend.open()
    clock = fsm.VirtualClock()
    actor = order_machine().start(store=store, instance_id="o", clock=clock)
    actor.send("ADD", qty=2)
    actor.send("CHECKOUT")
    clock.advance(300)
    actor.stop()
    result = cli("replay", "--store", backend.url, "o", "--impl", "order_impl")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "o: 4 records replayed; the snapshot matches"
    as_json = cli("replay", "--store", backend.url, "o", "--impl", "order_impl", "--json")
    assert as_json.exit_code == 0
    assert json.loads(as_json.output) == {
        "instance": "o",
        "records": 4,
        "matches": True,
        "diverged_at": None,
        "message": "",
    }
    # the definition kept in the store is used unless --machine is given
    assert cli("replay", "--store", backend.url, "o", "--machine", str(order_file)).exit_code == 0

    backend.sql("UPDATE fsm_journal SET value = ? WHERE instance_id = ? AND seq = ?", ('"shipped"', "o", 2))
    result = cli("replay", "--store", backend.url, "o")
    assert result.exit_code == 4
    assert result.output.startswith("o: replay differs at step 2")
    assert "stored:" in result.output and "replayed:" in result.output

    report = json.loads(cli("replay", "--store", backend.url, "o", "--json").output)
    assert {k: report[k] for k in ("instance", "records", "matches", "diverged_at")} == {
        "instance": "o",
        "records": 4,
        "matches": False,
        "diverged_at": 2,
    }
    assert report["message"] == "step 2 gives 'paying'", "the tampered record says shipped"
    assert report["stored"] == store.get_snapshot("o") and report["replayed"]["value"] == "paying"
    assert cli("replay", "--store", backend.url, "o", "--json").exit_code == 4

    missing = cli("replay", "--store", backend.url, "ghost")
    assert (missing.exit_code, missing.output.strip()) == (1, "error: no instance 'ghost' in the store")
