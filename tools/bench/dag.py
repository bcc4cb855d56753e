"""Benchmark of DAG scheduling overhead: compiled machines against a plain thread pool.

    python tools/bench/dag.py              # 1,000 tasks, both shapes, with and without a store
    python tools/bench/dag.py --quick      # 200 tasks
    python tools/bench/dag.py --tasks 500 --no-store --json

Two DAG shapes of no-op tasks (each task's function returns None at once):

- ``layered``: N tasks, each needing up to 3 tasks among the 20 before it (a random
  graph with a fixed seed: long paths and moderate fan-in);
- ``fanout``: one root, N - 2 tasks needing it, one join needing them all.

For each shape, in one run:

- ``compile``: ``compile_dag`` (DAG -> machine definition) and ``load``
  (``Machine.from_dict``: schema, model, every expression compiled); ``start``: the
  machine's initial step alone (entering one region per task), which ``run`` includes;
- ``run``: ``run_dag`` in memory (thread pool of 8): compile, load and run, as a
  one-off run does; ``warm``: the same machine run again (a long-lived worker: the
  engine's caches are warm); with ``--store``, ``durable``: ``run_dag`` on SQLite
  (``synchronous=NORMAL``, every step committed);
- ``pool``: the same callables submitted to a plain ``ThreadPoolExecutor(8)`` all at
  once (no dependencies: the floor), and ``pool+deps``: a minimal dict-based scheduler
  submitting each task when its needs are done (what a hand-written runner costs).

``overhead/task`` is (run - pool+deps) / N: what the machine adds per task;
``after start`` leaves the initial step out; ``warm/task`` is (warm - pool+deps) / N.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import fsm
from fsm.compile.dag import compile_dag, parse_dag
from fsm.compile.dag_runner import DagRun, dag_machine, run_dag
from fsm.store.sqlite import SQLiteStore

WORKERS = 8


def noop(input: Any) -> None:
    return None


def layered(n: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    tasks: dict[str, Any] = {}
    for i in range(n):
        task: dict[str, Any] = {"service": "noop"}
        if i:
            window = list(range(max(0, i - 20), i))
            task["needs"] = [f"t{j}" for j in sorted(rng.sample(window, min(len(window), rng.randint(1, 3))))]
        tasks[f"t{i}"] = task
    return {"id": "layered", "tasks": tasks}


def fanout(n: int) -> dict[str, Any]:
    middle = [f"m{i}" for i in range(n - 2)]
    tasks: dict[str, Any] = {"root": {"service": "noop"}}
    tasks.update({m: {"service": "noop", "needs": ["root"]} for m in middle})
    tasks["join"] = {"service": "noop", "needs": middle}
    return {"id": "fanout", "tasks": tasks}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def pool_all(n: int) -> float:
    with ThreadPoolExecutor(WORKERS) as pool:
        start = time.perf_counter()
        futures = [pool.submit(noop, None) for _ in range(n)]
        for f in futures:
            f.result()
        return time.perf_counter() - start


def pool_with_deps(doc: dict[str, Any]) -> float:
    """Submit each task when its needs are done: a minimal hand-written scheduler."""
    needs = {t: set(spec.get("needs", ())) for t, spec in doc["tasks"].items()}
    down: dict[str, list[str]] = {t: [] for t in needs}
    for t, ns in needs.items():
        for u in ns:
            down[u].append(t)
    waiting = {t: len(ns) for t, ns in needs.items()}
    finished = threading.Event()
    lock = threading.Lock()
    left = [len(needs)]
    with ThreadPoolExecutor(WORKERS) as pool:

        def submit(task: str) -> None:
            future = pool.submit(noop, None)
            future.add_done_callback(lambda f, task=task: done(task, f))

        def done(task: str, future: Future[Any]) -> None:
            ready = []
            with lock:
                left[0] -= 1
                for d in down[task]:
                    waiting[d] -= 1
                    if waiting[d] == 0:
                        ready.append(d)
                if left[0] == 0:
                    finished.set()
            for d in ready:
                submit(d)

        start = time.perf_counter()
        for t, count in list(waiting.items()):
            if count == 0:
                submit(t)
        finished.wait()
        return time.perf_counter() - start


def run_machine(machine: fsm.Machine) -> float:
    """One run of an already built machine on a fresh thread pool (what a long-lived
    worker does for its second and later runs: the engine's caches are warm)."""
    with ThreadPoolExecutor(WORKERS) as pool:
        start = time.perf_counter()
        actor = machine.start({"params": {}}, executor=pool)
        result = DagRun(actor, None, None, None).wait()
        elapsed = time.perf_counter() - start
    assert result.ok, result.status
    return elapsed


def measure(doc: dict[str, Any], store_dir: Path | None) -> dict[str, Any]:
    n = len(doc["tasks"])
    dag = parse_dag(doc)
    compile_s, definition = timed(lambda: compile_dag(dag))
    load_s, machine = timed(lambda: fsm.Machine.from_dict(definition))
    start_s, _ = timed(lambda: machine.initial_transition())
    run_s, result = timed(lambda: run_dag(dag, services={"noop": noop}, workers=WORKERS))
    assert result.ok, result.status
    machine = dag_machine(dag, services={"noop": noop})
    run_machine(machine)
    warm_s = run_machine(machine)
    out: dict[str, Any] = {
        "shape": doc["id"],
        "tasks": n,
        "edges": sum(len(t.get("needs", ())) for t in doc["tasks"].values()),
        "definition_kb": round(len(json.dumps(definition)) / 1024),
        "compile_s": compile_s,
        "load_s": load_s,
        "start_s": start_s,
        "run_s": run_s,
        "warm_s": warm_s,
        "pool_s": min(pool_all(n) for _ in range(3)),
        "pool_deps_s": statistics.median(pool_with_deps(doc) for _ in range(3)),
    }
    out["overhead_ms_per_task"] = 1000 * (run_s - out["pool_deps_s"]) / n
    out["after_start_ms_per_task"] = 1000 * (run_s - start_s - out["pool_deps_s"]) / n
    out["warm_ms_per_task"] = 1000 * (warm_s - out["pool_deps_s"]) / n
    if store_dir is not None:
        store = SQLiteStore(store_dir / f"{doc['id']}.db", synchronous="NORMAL")
        durable_s, result = timed(
            lambda: run_dag(dag, services={"noop": noop}, workers=WORKERS, store=store, run_id="bench")
        )
        assert result.ok, result.status
        out["durable_s"] = durable_s
        out["steps"] = len(store.history("bench"))
        out["durable_overhead_ms_per_task"] = 1000 * (durable_s - out["pool_deps_s"]) / n
        store.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="200 tasks")
    parser.add_argument("--no-store", action="store_true", help="skip the durable (SQLite) runs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    n = 200 if args.quick else args.tasks
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for doc in (layered(n), fanout(n)):
            rows.append(measure(doc, None if args.no_store else Path(tmp)))
    if args.json:
        print(json.dumps({"python": platform.python_version(), "rows": rows}, indent=2))
        return 0
    print(f"python {platform.python_version()} on {platform.machine()}, {WORKERS} worker threads")
    header = (
        f"{'shape':<8} {'tasks':>5} {'edges':>5} {'def KB':>6} {'compile':>8} {'load':>7} {'start':>7} {'run':>7} "
        f"{'warm':>7} {'durable':>8} {'pool':>7} {'pool+deps':>9} {'overhead/task':>14} {'after start':>12} "
        f"{'warm/task':>10} {'durable/task':>13}"
    )
    print(header)
    for r in rows:
        durable = f"{r['durable_s']:7.2f}s" if "durable_s" in r else "       -"
        per_durable = f"{r['durable_overhead_ms_per_task']:10.2f} ms" if "durable_s" in r else "            -"
        print(
            f"{r['shape']:<8} {r['tasks']:>5} {r['edges']:>5} {r['definition_kb']:>6} {r['compile_s']:7.2f}s "
            f"{r['load_s']:6.2f}s {r['start_s']:6.2f}s {r['run_s']:6.2f}s {r['warm_s']:6.2f}s {durable} "
            f"{r['pool_s']:6.3f}s {r['pool_deps_s']:8.3f}s {r['overhead_ms_per_task']:11.2f} ms "
            f"{r['after_start_ms_per_task']:9.2f} ms {r['warm_ms_per_task']:7.2f} ms {per_durable}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
