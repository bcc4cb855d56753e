"""Running compiled sagas: the runtime side of :mod:`fsm.compile.saga`.

The compiler itself emits plain machine definitions and imports nothing from the
runtime; this module starts and resumes them (in memory or in a store).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from fsm.compile.saga import Saga, compile_saga, load_saga, parse_saga, saga_context
from fsm.machine import Machine
from fsm.runtime.actor import Actor
from fsm.runtime.clock import Clock
from fsm.store.base import SQLStore

__all__ = ["resume_saga", "run_saga", "saga_machine"]


def saga_machine(saga: Saga | Mapping[str, Any] | str | Path) -> Machine:
    """The compiled :class:`fsm.Machine` of a saga (a :class:`Saga`, saga data, or a file)."""
    if isinstance(saga, (str, Path)):
        saga = load_saga(saga)
    parsed = parse_saga(saga)
    return Machine.from_dict(compile_saga(parsed), source=parsed.source)


def run_saga(
    saga: Saga | Mapping[str, Any] | str | Path,
    services: Mapping[str, Any],
    *,
    input: Any = None,
    run_id: str | None = None,
    clock: Clock | None = None,
    executor: Executor | str | None = None,
    store: SQLStore | None = None,
    instance_id: str | None = None,
    inspect: Any = None,
) -> Actor:
    """Start a saga run and return its actor.

    ``services`` implements every ``action`` and ``compensate`` name, each called as
    ``f(context, event, input)`` where ``input`` holds ``idempotencyKey``, ``runId``,
    ``step``, ``attempt`` and the saga ``input`` (see docs/saga.md). ``run_id`` defaults
    to ``instance_id`` when the run is durable (``store``), else a fresh uuid. With
    ``store``, an ``instance_id`` already in the store is resumed instead of started.
    """
    machine = saga_machine(saga).provide(services=services)
    options: dict[str, Any] = {"clock": clock, "executor": executor, "inspect": inspect}
    if store is not None:
        instance_id = instance_id or run_id or uuid.uuid4().hex
        if store.exists(instance_id):
            return machine.resume(store, instance_id, **options)
        context = saga_context(run_id or instance_id, input)
        return machine.start(context, store=store, instance_id=instance_id, **options)
    return machine.start(saga_context(run_id or uuid.uuid4().hex, input), **options)


def resume_saga(
    saga: Saga | Mapping[str, Any] | str | Path,
    services: Mapping[str, Any],
    store: SQLStore,
    instance_id: str,
    *,
    clock: Clock | None = None,
    executor: Executor | str | None = None,
    inspect: Any = None,
) -> Actor:
    """Resume a durable saga run (after a crash, or in another process): timers are
    re-armed and the running attempts re-invoked with the same idempotency keys."""
    machine = saga_machine(saga).provide(services=services)
    return machine.resume(store, instance_id, clock=clock, executor=executor, inspect=inspect)
