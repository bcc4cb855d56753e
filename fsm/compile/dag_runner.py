"""Running compiled DAGs: services, concurrency, persistence, progress, resume.

The runner adds no scheduling of its own. It compiles the DAG (:mod:`fsm.compile.dag`),
provides the task implementations as services, and starts an ordinary actor: the
machine decides what runs when, the actor runs invoked services on a thread pool (or
as asyncio tasks with :func:`arun_dag`), and with a store every step is committed
before its effects run (docs/persistence.md), so a killed run resumes where it was.

Task implementations are called as ``fn(input)`` (a plain function or a coroutine
function); what they return is the task's output, what they raise fails the attempt.
Names given as ``python: "package.module:function"`` are imported here, by the runner
— the engine never imports names found in definitions.

Three ways to continue a run kept in a store (docs/dag.md, "Resuming"):

- :func:`resume_dag` carries on an interrupted run: pending timers are re-armed and
  the tasks that were running are started again (at least once);
- :func:`rerun_dag` starts a NEW run of a finished, failed run in which the tasks that
  succeeded are restored with their outputs and everything else runs again (Airflow's
  "clear failed tasks");
- :func:`run_dag` with the id of an existing run resumes it if it is still active and
  returns its result if it is finished.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fsm.compile.dag import Dag, compile_dag, implementations, load_dag, parse_dag, resolve_params
from fsm.errors import FsmError, ImplementationError
from fsm.machine import Machine
from fsm.runtime.actor import Actor
from fsm.runtime.aio import AsyncActor
from fsm.runtime.clock import Clock, VirtualClock
from fsm.runtime.durable import DurableActor
from fsm.semantics.snapshot import Snapshot
from fsm.store.base import InstanceNotFound, SQLStore

__all__ = [
    "DagResult",
    "DagRun",
    "LineProgress",
    "LiveProgress",
    "ProgressView",
    "arun_dag",
    "compile_file",
    "dag_machine",
    "parse_param_args",
    "rerun_dag",
    "resolve_services",
    "resume_dag",
    "run_dag",
    "run_file",
    "start_dag",
]

TaskFn = Callable[[Any], Any]
DagLike = Dag | Mapping[str, Any] | str | Path


# ------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class DagResult:
    """How a run ended (or stands): ``status`` is ``succeeded``, ``failed``, ``error``
    (the machine itself failed, e.g. an expression raised), ``stopped`` or ``running``."""

    run_id: str | None
    status: str
    states: dict[str, str]
    outputs: dict[str, Any]
    errors: dict[str, str]
    attempts: dict[str, int]
    error: str | None = None
    snapshot: Snapshot | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot, run_id: str | None = None) -> DagResult:
        tasks = list((snapshot.machine.definition.get("meta") or {}).get("tasks") or ())
        ctx = snapshot.context
        if snapshot.status == "done":
            status = str((snapshot.output or {}).get("status"))
        elif snapshot.status == "error":
            status = "error"
        elif snapshot.status == "stopped":
            status = "stopped"
        else:
            status = "running"
        error = None if snapshot.error is None else str(snapshot.error)
        return cls(
            run_id,
            status,
            {t: ctx[t]["state"] for t in tasks},
            {t: ctx[t]["output"] for t in tasks},
            {t: ctx[t]["error"] for t in tasks if ctx[t].get("error")},
            {t: ctx[t]["attempt"] for t in tasks},
            error,
            snapshot,
        )


# ------------------------------------------------------------------------------ services


def _import(reference: str) -> Any:
    module_name, _, attribute = reference.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise FsmError(f"cannot import {module_name!r} for python: {reference!r}: {exc}") from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise FsmError(f"{reference!r}: {module_name!r} has no attribute {attribute!r}") from None
    if not callable(target):
        raise FsmError(f"{reference!r} is not callable")
    return target


def _as_service(fn: TaskFn) -> Any:
    """A task function ``fn(input)`` as an fsm service ``f(context, event, input)``
    (what it raises reaches the machine as ``event.error``: ``{"type", "message"}``)."""
    if inspect.iscoroutinefunction(fn):

        async def call_async(context: Any, event: Any, input: Any) -> Any:
            return await fn(input)

        return call_async

    def call(context: Any, event: Any, input: Any) -> Any:
        return fn(input)

    return call


def resolve_services(dag: Dag, services: Mapping[str, TaskFn] | None = None, module: Any = None) -> dict[str, Any]:
    """The services of the compiled machine, by ``src``: named services from
    ``services`` (or attributes of ``module``), ``python:`` references imported.
    Every missing name is reported at once."""
    services = dict(services or {})
    out: dict[str, Any] = {}
    missing: dict[str, list[str]] = {}
    for spec in dag.tasks.values():
        src = spec.src
        if src is None or src in out:
            continue
        if spec.python is not None and src not in services:
            out[src] = _as_service(_import(spec.python))
            continue
        fn = services.get(src)
        if fn is None and module is not None:
            fn = getattr(module, src, None)
        if fn is None:
            missing.setdefault(src, []).append(f"tasks.{spec.id}")
            continue
        out[src] = _as_service(fn)
    if missing:
        raise ImplementationError({"services": missing}, dag.id)
    return out


def dag_machine(
    dag: Dag,
    params: Mapping[str, Any] | None = None,
    *,
    services: Mapping[str, TaskFn] | None = None,
    module: Any = None,
    random: Any = None,
    restored: Mapping[str, Any] | None = None,
    definition: Mapping[str, Any] | None = None,
) -> Machine:
    """The compiled machine with everything it references provided."""
    compiled = dict(definition) if definition is not None else compile_dag(dag, params, restored=restored)
    machine = Machine.from_dict(compiled, source=dag.source)
    instances = list((compiled.get("meta") or {}).get("tasks") or ())
    impl = implementations(dag, random, instances=instances)
    return machine.provide(services=resolve_services(dag, services, module), delays=impl["delays"])


def _as_dag(dag: DagLike) -> Dag:
    if isinstance(dag, Dag):
        return dag
    if isinstance(dag, (str, Path)):
        return load_dag(dag)
    return parse_dag(dag)


def parse_param_args(items: Sequence[str]) -> dict[str, Any]:
    """``["date=2024-06-01", "limit=10", "tags=[\\"a\\"]"]`` -> params: each value is
    read as JSON when it parses, else kept as a string (for the CLI's ``--params``)."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise FsmError(f"a param is written name=value, got {item!r}")
        try:
            out[name] = json.loads(text)
        except json.JSONDecodeError:
            out[name] = text
    return out


# ------------------------------------------------------------------------------ running


class DagRun:
    """A started run: ``wait()`` for its result, ``stop()`` to detach from it (a
    durable run stays in the store, to be resumed)."""

    def __init__(self, actor: Actor, run_id: str | None, clock: Clock | None, view: ProgressView | None) -> None:
        self.actor = actor
        self.run_id = run_id
        self.clock = clock
        self.view = view
        self._done = threading.Event()
        self._sub = actor.subscribe(self._on_snapshot, error=lambda exc: self._done.set(), complete=self._done.set)
        if actor._snapshot is not None:  # already started (resumed): show where it stands
            self._on_snapshot(actor.snapshot)

    def _on_snapshot(self, snapshot: Snapshot) -> None:
        if self.view is not None:
            self.view.update(snapshot)
        if snapshot.status != "active":
            self._done.set()

    @property
    def finished(self) -> bool:
        return self.actor.snapshot.status != "active"

    def result(self) -> DagResult:
        return DagResult.from_snapshot(self.actor.snapshot, self.run_id)

    def wait(self, timeout: float | None = None) -> DagResult:
        """Block until the run ends (or ``timeout`` seconds pass). With a
        :class:`~fsm.VirtualClock`, time jumps to the next timer whenever no task is
        running, so retries and timeouts cost no real time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        virtual = isinstance(self.clock, VirtualClock)
        try:
            while not self._done.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if virtual and not self.actor.snapshot.children:
                    assert isinstance(self.clock, VirtualClock)
                    due = self.clock.next_due()
                    if due is not None:
                        self.clock.advance_to(max(due, self.clock.now()))
                        continue
                self._done.wait(0.005 if virtual else 0.05)
        except KeyboardInterrupt:
            self.stop()
            raise
        result = self.result()
        if result.status != "running":
            self.close()
        return result

    def stop(self) -> None:
        """Stop here. A durable run is only detached: the store keeps it as it was,
        for :func:`resume_dag`."""
        self.actor.stop()
        self.close()

    def close(self) -> None:
        self._sub.unsubscribe()
        if self.view is not None:
            self.view.close(self.actor.snapshot)
            self.view = None


def start_dag(
    dag: DagLike,
    params: Mapping[str, Any] | None = None,
    *,
    services: Mapping[str, TaskFn] | None = None,
    module: Any = None,
    store: SQLStore | None = None,
    run_id: str | None = None,
    progress: bool | ProgressView | None = None,
    workers: int | None = None,
    executor: Executor | str | None = None,
    clock: Clock | None = None,
    random: Any = None,
) -> DagRun:
    """Start a run and return its handle (see :func:`run_dag` for the arguments).
    With a store and the id of an existing run: an active run is resumed, a finished
    one is returned as it is."""
    dag = _as_dag(dag)
    if store is not None:
        run_id = run_id or f"{dag.id}-{uuid.uuid4().hex[:12]}"
        if store.exists(run_id):
            return resume_dag(
                dag,
                store,
                run_id,
                services=services,
                module=module,
                progress=progress,
                workers=workers,
                executor=executor,
                clock=clock,
                random=random,
            )
    values = resolve_params(dag, params)
    machine = dag_machine(dag, values, services=services, module=module, random=random)
    return _launch(dag, machine, store, run_id, values, progress, workers, executor, clock, resume=False)


def _launch(
    dag: Dag,
    machine: Machine,
    store: SQLStore | None,
    run_id: str | None,
    params: Mapping[str, Any] | None,
    progress: bool | ProgressView | None,
    workers: int | None,
    executor: Executor | str | None,
    clock: Clock | None,
    *,
    resume: bool,
) -> DagRun:
    if executor is None:
        tasks = len((machine.definition.get("meta") or {}).get("tasks") or ()) or 1
        size = workers or dag.max_parallel or min(32, tasks)
        executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"dag-{dag.id}")
    view = _view(progress, dag)
    if resume:
        assert store is not None and run_id is not None
        return DagRun(machine.resume(store, run_id, clock=clock, executor=executor), run_id, clock, view)
    machine.check_implementations()
    context = {"params": dict(params or {})}
    actor: Actor
    if store is not None:
        assert run_id is not None
        actor = DurableActor(machine, store, run_id, context=context, clock=clock, executor=executor)
    else:
        actor = Actor(machine, context=context, clock=clock, executor=executor, id=run_id)
    run = DagRun(actor, run_id, clock, view)  # subscribed before the first step
    actor.start()
    run._on_snapshot(actor.snapshot)
    return run


def run_dag(
    dag: DagLike,
    params: Mapping[str, Any] | None = None,
    *,
    services: Mapping[str, TaskFn] | None = None,
    module: Any = None,
    store: SQLStore | None = None,
    run_id: str | None = None,
    progress: bool | ProgressView | None = None,
    workers: int | None = None,
    executor: Executor | str | None = None,
    clock: Clock | None = None,
    random: Any = None,
    timeout: float | None = None,
) -> DagResult:
    """Run a DAG to the end and return its :class:`DagResult`.

    ``dag``: a :class:`~fsm.compile.dag.Dag`, a path, or a parsed document. ``params``
    override the defaults. ``services`` maps service names to task functions
    ``fn(input)`` (plain or ``async def``); ``module`` is searched for names not in
    ``services``. ``store`` (with ``run_id``) makes the run durable: every step is
    committed, and calling again with the same ``run_id`` resumes it. ``progress``:
    ``True`` shows a live per-task view on a terminal (plain lines when stderr is not a
    terminal), or pass a view. ``workers``: threads for plain functions (default:
    ``max_parallel``, else up to 32). ``executor``: run services elsewhere (``"inline"``
    runs them in the calling thread, for deterministic tests). ``clock``: a
    :class:`~fsm.VirtualClock` for tests (time jumps to the next timer when nothing
    runs). ``random``: the source of retry jitter (a :class:`random.Random`).
    """
    run = start_dag(
        dag,
        params,
        services=services,
        module=module,
        store=store,
        run_id=run_id,
        progress=progress,
        workers=workers,
        executor=executor,
        clock=clock,
        random=random,
    )
    return run.wait(timeout)


def resume_dag(
    dag: DagLike,
    store: SQLStore,
    run_id: str,
    *,
    services: Mapping[str, TaskFn] | None = None,
    module: Any = None,
    progress: bool | ProgressView | None = None,
    workers: int | None = None,
    executor: Executor | str | None = None,
    clock: Clock | None = None,
    random: Any = None,
) -> DagRun:
    """Carry on a run kept in ``store``: with the definition it started with (as
    stored), its timers re-armed and its running tasks started again."""
    dag = _as_dag(dag)
    stored = store.load(run_id)
    definition = store.machine_definition(stored.machine_id, stored.machine_version)
    if definition is None:
        raise InstanceNotFound(run_id)
    machine = dag_machine(dag, services=services, module=module, random=random, definition=definition)
    if stored.status != "active":
        snapshot = machine.snapshot_from_dict(stored.snapshot)
        actor = _Finished(machine, snapshot)
        return DagRun(actor, run_id, clock, _view(progress, dag))
    return _launch(dag, machine, store, run_id, None, progress, workers, executor, clock, resume=True)


class _Finished(Actor):
    """A finished stored run seen through the actor interface (nothing runs)."""

    def __init__(self, machine: Machine, snapshot: Snapshot) -> None:
        super().__init__(machine, snapshot=snapshot, clock=VirtualClock())
        self._started = True


def rerun_dag(
    dag: DagLike,
    store: SQLStore,
    run_id: str,
    *,
    new_run_id: str | None = None,
    services: Mapping[str, TaskFn] | None = None,
    module: Any = None,
    progress: bool | ProgressView | None = None,
    workers: int | None = None,
    executor: Executor | str | None = None,
    clock: Clock | None = None,
    random: Any = None,
    timeout: float | None = None,
) -> DagResult:
    """Run again what did not succeed in a finished run: a new run (``new_run_id``,
    by default ``<run_id>.rerun<k>``) with the same params, whose succeeded tasks are
    restored with their outputs; every other task is decided and run afresh."""
    dag = _as_dag(dag)
    stored = store.load(run_id)
    if stored.status == "active":
        raise FsmError(f"run {run_id!r} is still active: resume it (resume_dag) instead of re-running it")
    context = stored.snapshot.get("context") or {}
    definition = store.machine_definition(stored.machine_id, stored.machine_version) or {}
    tasks = list((definition.get("meta") or {}).get("tasks") or ())
    params = context.get("params") or {}
    instances = {n.id for n in dag.expand(params)}
    restored = {
        t: context[t].get("output")
        for t in tasks
        if t in instances and isinstance(context.get(t), Mapping) and context[t].get("state") == "succeeded"
    }
    if new_run_id is None:
        k = 1
        while store.exists(f"{run_id}.rerun{k}"):
            k += 1
        new_run_id = f"{run_id}.rerun{k}"
    machine = dag_machine(dag, params, services=services, module=module, random=random, restored=restored)
    run = _launch(dag, machine, store, new_run_id, params, progress, workers, executor, clock, resume=False)
    return run.wait(timeout)


async def arun_dag(
    dag: DagLike,
    params: Mapping[str, Any] | None = None,
    *,
    services: Mapping[str, TaskFn] | None = None,
    module: Any = None,
    progress: bool | ProgressView | None = None,
    clock: Any = None,
    random: Any = None,
) -> DagResult:
    """Run a DAG on the running asyncio loop (:class:`~fsm.AsyncActor`): coroutine
    tasks run as asyncio tasks, plain functions in the loop's default executor. Not
    durable (the durable actor is synchronous: use :func:`run_dag` with a store)."""
    dag = _as_dag(dag)
    values = resolve_params(dag, params)
    machine = dag_machine(dag, values, services=services, module=module, random=random)
    view = _view(progress, dag)
    finished = asyncio.Event()
    actor = AsyncActor(machine, context={"params": values}, clock=clock)

    def on_snapshot(snapshot: Snapshot) -> None:
        if view is not None:
            view.update(snapshot)
        if snapshot.status != "active":
            finished.set()

    sub = actor.subscribe(on_snapshot, error=lambda exc: finished.set(), complete=finished.set)
    try:
        await actor.start()
        if actor.snapshot.status == "active":
            if isinstance(clock, VirtualClock):
                while not finished.is_set():
                    await asyncio.sleep(0)
                    if not actor.snapshot.children and (due := clock.next_due()) is not None:
                        await clock.advance_async(max(0.0, due - clock.now()))
                    elif actor.snapshot.children:
                        await asyncio.sleep(0.001)
            else:
                await finished.wait()
    finally:
        sub.unsubscribe()
        if view is not None:
            view.close(actor.snapshot)
    return DagResult.from_snapshot(actor.snapshot)


# ------------------------------------------------------------------------------ the CLI's entry points


def compile_file(path: str | Path, params: Sequence[str] | Mapping[str, Any] = ()) -> dict[str, Any]:
    """``fsm compile dag FILE [--params k=v ...]``: the compiled machine definition."""
    values = parse_param_args(params) if not isinstance(params, Mapping) else dict(params)
    return compile_dag(load_dag(path), values)


def run_file(
    path: str | Path,
    params: Sequence[str] | Mapping[str, Any] = (),
    *,
    impl_module: str | None = None,
    store_url: str | None = None,
    run_id: str | None = None,
    rerun: bool = False,
    progress: bool | ProgressView | None = True,
) -> DagResult:
    """``fsm run dag.yaml [--params k=v ...] [--impl module] [--store URL] [--id ID]
    [--rerun]``: run a DAG file. The implementations come from ``impl_module`` (its
    ``services`` dict, else attributes named after the services) or from ``python:``
    references. With a store: an existing active run is resumed, a finished one shown;
    ``rerun`` re-runs what did not succeed in the finished run ``run_id``."""
    dag = load_dag(path)
    values = parse_param_args(params) if not isinstance(params, Mapping) else dict(params)
    module = None
    if impl_module:
        sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(impl_module)
        except ImportError as exc:
            raise FsmError(f"cannot import {impl_module!r}: {exc}") from None
        finally:
            sys.path.pop(0)
    services = dict(getattr(module, "services", None) or {}) if module is not None else None
    store = None
    if store_url:
        from fsm.store import open_store

        store = open_store(store_url)
    if rerun:
        if store is None or run_id is None:
            raise FsmError("--rerun needs --store and the --id of a finished run")
        return rerun_dag(dag, store, run_id, services=services, module=module, progress=progress)
    return run_dag(dag, values, services=services, module=module, store=store, run_id=run_id, progress=progress)


# ------------------------------------------------------------------------------ progress


class ProgressView:
    """Receives every snapshot of a run; subclasses draw it."""

    def __init__(self, dag_id: str, stream: IO[str] | None = None) -> None:
        self.dag_id = dag_id
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.monotonic()
        self.began: dict[str, float] = {}
        self.ended: dict[str, float] = {}

    def tasks(self, snapshot: Snapshot) -> list[tuple[str, Mapping[str, Any]]]:
        ids = (snapshot.machine.definition.get("meta") or {}).get("tasks") or ()
        return [(t, snapshot.context[t]) for t in ids]

    def _clock(self, snapshot: Snapshot) -> None:
        now = time.monotonic()
        for tid, record in self.tasks(snapshot):
            state = record["state"]
            if state in ("running", "queued", "retrying") and tid not in self.began:
                self.began[tid] = now
            if state in ("succeeded", "failed", "skipped", "upstream_failed") and tid not in self.ended:
                self.ended[tid] = now

    def elapsed(self, tid: str) -> float | None:
        if tid not in self.began:
            return None
        return self.ended.get(tid, time.monotonic()) - self.began[tid]

    def update(self, snapshot: Snapshot) -> None:
        self._clock(snapshot)

    def close(self, snapshot: Snapshot) -> None:
        self._clock(snapshot)


_MARKS = {
    "waiting": ".",
    "queued": "~",
    "running": ">",
    "retrying": "R",
    "succeeded": "+",
    "failed": "X",
    "skipped": "-",
    "upstream_failed": "^",
}


def _summary(dag_id: str, snapshot: Snapshot, records: list[tuple[str, Mapping[str, Any]]], seconds: float) -> str:
    counts: dict[str, int] = {}
    for _, record in records:
        counts[record["state"]] = counts.get(record["state"], 0) + 1
    settled = sum(counts.get(s, 0) for s in ("succeeded", "failed", "skipped", "upstream_failed"))
    width = 24
    filled = round(width * settled / max(1, len(records)))
    bar = "#" * filled + "." * (width - filled)
    status = snapshot.status if snapshot.status != "done" else str((snapshot.output or {}).get("status"))
    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return f"{dag_id} [{bar}] {settled}/{len(records)} settled  {status}  {seconds:6.1f}s  ({parts})"


class LiveProgress(ProgressView):
    """A per-task status table redrawn in place on a terminal (at most 10 times a
    second). Large DAGs show the summary, the running and the failed tasks."""

    MAX_ROWS = 20

    def __init__(self, dag_id: str, stream: IO[str] | None = None) -> None:
        super().__init__(dag_id, stream)
        self._lines = 0
        self._last = 0.0
        self._lock = threading.Lock()

    def update(self, snapshot: Snapshot) -> None:
        super().update(snapshot)
        now = time.monotonic()
        if now - self._last >= 0.1:
            self._draw(snapshot)

    def close(self, snapshot: Snapshot) -> None:
        super().close(snapshot)
        self._draw(snapshot)

    def _rows(self, snapshot: Snapshot) -> list[str]:
        records = self.tasks(snapshot)
        rows = [_summary(self.dag_id, snapshot, records, time.monotonic() - self.started)]
        shown = records
        if len(records) > self.MAX_ROWS:
            shown = [(t, r) for t, r in records if r["state"] in ("running", "retrying", "failed")][: self.MAX_ROWS]
        width = max((len(t) for t, _ in shown), default=4)
        for tid, record in shown:
            state = record["state"]
            extra = []
            if record.get("attempt", 0) > 1 or state == "retrying":
                extra.append(f"attempt {record['attempt']}")
            took = self.elapsed(tid)
            if took is not None:
                extra.append(f"{took:.1f}s")
            if record.get("error") and state in ("failed", "retrying"):
                extra.append(str(record["error"])[:60])
            rows.append(f"  {_MARKS.get(state, '?')} {tid:<{width}}  {state:<15} {'  '.join(extra)}".rstrip())
        return rows

    def _draw(self, snapshot: Snapshot) -> None:
        with self._lock:
            rows = self._rows(snapshot)
            out = []
            if self._lines:
                out.append(f"\x1b[{self._lines}F\x1b[J")
            out.append("\n".join(rows) + "\n")
            self.stream.write("".join(out))
            self.stream.flush()
            self._lines = len(rows)
            self._last = time.monotonic()


class LineProgress(ProgressView):
    """One line per task state change, for logs and pipes (no terminal control)."""

    def __init__(self, dag_id: str, stream: IO[str] | None = None) -> None:
        super().__init__(dag_id, stream)
        self._seen: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()

    def update(self, snapshot: Snapshot) -> None:
        super().update(snapshot)
        with self._lock:
            for tid, record in self.tasks(snapshot):
                key = (record["state"], record.get("attempt", 0))
                if self._seen.get(tid) == key:
                    continue
                if tid not in self._seen and record["state"] == "waiting":
                    self._seen[tid] = key
                    continue
                self._seen[tid] = key
                line = f"[{time.monotonic() - self.started:7.2f}s] {tid}: {record['state']}"
                if record["state"] in ("running", "retrying") and record.get("attempt", 0) > 1:
                    line += f" (attempt {record['attempt']})"
                if record.get("error") and record["state"] in ("failed", "retrying"):
                    line += f" - {record['error']}"
                self.stream.write(line + "\n")
            self.stream.flush()

    def close(self, snapshot: Snapshot) -> None:
        super().close(snapshot)
        with self._lock:
            self.stream.write(_summary(self.dag_id, snapshot, self.tasks(snapshot), time.monotonic() - self.started))
            self.stream.write("\n")
            self.stream.flush()


def _view(progress: bool | ProgressView | None, dag: Dag) -> ProgressView | None:
    if isinstance(progress, ProgressView):
        return progress
    if not progress:
        return None
    stream = sys.stderr
    if stream.isatty() and os.environ.get("TERM") != "dumb":
        return LiveProgress(dag.id, stream)
    return LineProgress(dag.id, stream)
