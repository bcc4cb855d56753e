"""Crash safety: SIGKILL a process driving durable instances, again and again.

tests/crash_child.py drives three instances in a loop (events, redelivered event ids,
timers), reporting each step right after its commit returns; this test kills it with
SIGKILL at random moments, restarts it after a short random pause, and after all the
kills checks that:

- the database is healthy (SQLite ``PRAGMA integrity_check``);
- every step the child reported as committed is in the journal;
- journal sequence numbers are contiguous and the snapshot's version is the last one;
- replaying each journal reproduces its stored snapshot;
- each instance can be resumed and driven on;
- every effect of every committed step ran at least once (the effects' idempotency keys,
  appended to a file by the effects themselves, cover every key in the outbox).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import fsm
from fsm.runtime.durable import replay
from tests import crash_child
from tests import test_store as stores
from tests.test_store import Backend

KILLS = 30  # per backend: 60 in all
CHILD = Path(__file__).with_name("crash_child.py")


@pytest.fixture(params=stores.BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from stores.make_backend(request.param, tmp_path)


class ForkServer:
    """The crash child's fork server, spoken to line by line."""

    def __init__(self, url: str, report: Path, effects: Path, stderr: Path) -> None:
        self._stderr_path = stderr
        self.driver: int | None = None
        self._stderr = stderr.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), url, str(report), str(effects)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
            cwd=CHILD.parents[1],
        )

    def _line(self) -> list[str]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"the crash child died:\n{self._stderr_path.read_text()}")
        return line.split()

    def run(self, seed: int) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"run {seed}\n")
        self.proc.stdin.flush()
        kind, pid = self._line()
        assert kind == "pid"
        self.driver = int(pid)
        return int(pid)

    def wait(self, pid: int) -> str:
        kind, reaped, *how = self._line()
        assert (kind, int(reaped)) == ("exit", pid)
        self.driver = None
        return " ".join(how)

    def close(self) -> None:
        if self.driver is not None:  # the test failed while a driver was running
            try:
                os.kill(self.driver, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None and self.proc.stdin is not None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._stderr.close()


def wait_for_growth(path: Path, size: int, timeout: float) -> None:
    """Until the file reaches ``size`` bytes (each report line is at least 5)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size >= size:
            return
        time.sleep(0.001)
    raise AssertionError(f"the crash child made no progress in {timeout} s")


def test_no_committed_step_is_lost_when_the_process_is_killed(backend: Backend, tmp_path: Path) -> None:
    report, effects = tmp_path / "committed.txt", tmp_path / "effects.txt"
    rng = random.Random()
    server = ForkServer(backend.url, report, effects, tmp_path / "child-stderr.txt")
    signals = []
    started = time.monotonic()
    try:
        for cycle in range(KILLS):
            size = report.stat().st_size if report.exists() else 0
            pid = server.run(seed=cycle)
            if rng.random() < 0.2:
                # early: while it opens the store, migrates, creates or resumes instances
                time.sleep(rng.uniform(0, 0.05))
            else:
                # once it is busy stepping: during a commit, an effect, a report...
                wait_for_growth(report, size + 5 * rng.randint(1, 12), timeout=10)
                time.sleep(rng.uniform(0, 0.01))
            os.kill(pid, signal.SIGKILL)
            signals.append(server.wait(pid))
            time.sleep(rng.uniform(0, 0.01))
    finally:
        server.close()
    elapsed = time.monotonic() - started
    assert signals == [f"signal {signal.SIGKILL}"] * KILLS, (
        f"the driver must only die of SIGKILL:\n{(tmp_path / 'child-stderr.txt').read_text()}"
    )

    committed: dict[str, set[int]] = {}
    for line in report.read_text().splitlines():
        instance_id, seq = line.split()
        committed.setdefault(instance_id, set()).add(int(seq))
    total = sum(len(s) for s in committed.values())
    assert total >= 50, f"only {total} steps committed in {KILLS} runs ({elapsed:.1f} s): the kills came too early"

    store = backend.open()
    assert store.integrity_check() == []
    machine = crash_child.machine(str(effects))
    for instance_id in crash_child.INSTANCES:
        if instance_id not in committed:  # killed before it was ever created
            assert not store.exists(instance_id)
            continue
        history = store.history(instance_id)
        journaled = [r.seq for r in history]
        assert journaled == list(range(len(history))), f"{instance_id}: journal not contiguous"
        assert committed[instance_id] <= set(journaled), (
            f"{instance_id}: lost {committed[instance_id] - set(journaled)}"
        )
        stored = store.load(instance_id)
        assert stored.version == journaled[-1]
        report_ = replay(machine, store, instance_id)
        assert report_.matches, f"{instance_id}: {report_.message} at step {report_.diverged_at}"
        event_ids = [r.event_id for r in history if r.event_id is not None]
        assert len(event_ids) == len(set(event_ids)), "a redelivered event id was applied twice"

        # resume (runs effects a kill left pending) and carry on
        actor = machine.resume(store, instance_id, clock=fsm.VirtualClock(start=history[-1].now))
        actor.run_pending_effects()
        assert store.pending_effects(instance_id) == []
        before = actor.snapshot.context["n"]
        actor.send("INC")
        assert actor.version == stored.version + 1
        assert actor.snapshot.context["n"] > before
        actor.stop()

    ran = set(effects.read_text().split())
    outbox = {f"{i}:{s}:{x}" for i, s, x in backend.sql("SELECT instance_id, seq, idx FROM fsm_outbox")}
    assert outbox, "the machine's steps have effects"
    assert outbox <= ran, f"effects of committed steps never ran: {sorted(outbox - ran)[:10]}"
