"""The process tests/test_crash.py kills: drives durable instances in a loop.

Run as ``python tests/crash_child.py STORE_URL REPORT_FILE EFFECTS_FILE``. To make each
of the many kill/restart cycles cheap, this process is a small fork server: it imports
everything once, then for every ``run SEED`` line on stdin it forks a driver, prints
``pid N``, waits for it and prints ``exit N signal S`` or ``exit N code C``. The driver
is the process the test kills with SIGKILL; it is a plain fork of this script (no
threads, no connection inherited: it opens its own store), so a kill lands wherever the
driver happens to be, including in the middle of a commit or of an effect. ``quit`` ends
the server.

The driver opens the store, starts or resumes the instances ``c0`` ... ``c2``, then
forever picks one and sends it an event (or advances its clock so a timer fires). Right
after each step returns, it appends ``<instance> <seq>`` to REPORT_FILE: that step is
committed. Every effect appends its idempotency key to EFFECTS_FILE. Both files are
written with single ``os.write`` calls in append mode, so a kill never leaves half a line.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from typing import Any

import fsm
from fsm.store import InstanceExists, SQLStore, open_store

INSTANCES = ["c0", "c1", "c2"]

DEFINITION: dict[str, Any] = {
    "id": "crashy",
    "initial": "left",
    "context": {"n": 0, "trips": 0},
    "states": {
        "left": {
            "entry": ["touch"],
            "on": {
                "INC": {"actions": [{"type": "assign", "assignment": {"n": {"expr": "context.n + 1"}}}, "touch"]},
                "SWITCH": {"target": "right", "actions": ["touch", "touch"]},
            },
        },
        "right": {
            "entry": ["touch"],
            "after": {"100": {"target": "left", "actions": ["touch"]}},
            "on": {
                "INC": {
                    "actions": [
                        {"type": "assign", "assignment": {"n": {"expr": "context.n + 10"}}},
                        "touch",
                    ]
                },
                "SWITCH": {
                    "target": "left",
                    "actions": {"type": "assign", "assignment": {"trips": {"expr": "context.trips + 1"}}},
                },
            },
        },
    },
}


def machine(effects_path: str) -> fsm.Machine:
    """The machine; ``touch`` appends its idempotency key to the effects file."""
    fd = os.open(effects_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def touch(ctx: Any, ev: Any, params: Any, *, effect: Any) -> None:
        os.write(fd, f"{effect.key}\n".encode())

    return fsm.Machine.from_dict(DEFINITION).provide(actions={"touch": touch})


def clock_for(store: SQLStore, instance_id: str) -> fsm.VirtualClock:
    """A virtual clock continuing from the instance's last step."""
    version = store.load(instance_id).version
    last = store.history(instance_id, after=version - 1)
    return fsm.VirtualClock(start=last[0].now if last else 0.0)


def drive(url: str, report_path: str, effects_path: str, seed: int) -> None:
    rng = random.Random(seed)
    report = os.open(report_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    store = open_store(url)
    m = machine(effects_path)
    actors: dict[str, Any] = {}
    clocks: dict[str, fsm.VirtualClock] = {}
    for instance_id in INSTANCES:
        if not store.exists(instance_id):
            clocks[instance_id] = fsm.VirtualClock()
            try:
                actors[instance_id] = m.start(store=store, instance_id=instance_id, clock=clocks[instance_id])
                os.write(report, f"{instance_id} 0\n".encode())
                continue
            except InstanceExists:
                pass
        clocks[instance_id] = clock_for(store, instance_id)
        actors[instance_id] = m.resume(store, instance_id, clock=clocks[instance_id])
    last_id: dict[str, str] = {}
    count = 0
    deadline = time.monotonic() + 60  # a safety net: the test kills drivers long before
    while time.monotonic() < deadline:
        instance_id = rng.choice(INSTANCES)
        actor = actors[instance_id]
        roll = rng.random()
        if roll < 0.15:
            clocks[instance_id].advance(rng.choice([50, 150]))
        elif roll < 0.25 and instance_id in last_id:
            actor.send("INC", event_id=last_id[instance_id])  # a redelivery: applied once
        else:
            count += 1
            event_id = f"{seed}-{count}"
            actor.send("SWITCH" if roll < 0.45 else "INC", event_id=event_id)
            last_id[instance_id] = event_id
        os.write(report, f"{instance_id} {actor.version}\n".encode())


def serve(url: str, report_path: str, effects_path: str) -> None:
    for line in sys.stdin:
        command = line.split()
        if not command:
            continue
        if command[0] == "quit":
            return
        if command[0] != "run":
            raise SystemExit(f"unknown command {line!r}")
        seed = int(command[1])
        pid = os.fork()
        if pid == 0:  # the driver
            code = 0
            try:
                drive(url, report_path, effects_path, seed)
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 1
            finally:
                sys.stderr.flush()
                os._exit(code)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            print(f"exit {pid} signal {os.WTERMSIG(status)}", flush=True)
        else:
            print(f"exit {pid} code {os.WEXITSTATUS(status)}", flush=True)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    serve(*sys.argv[1:4])
