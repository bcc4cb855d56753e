"""fsm: a declarative statechart interpreter that runs XState v5 JSON/YAML machines.

The public names live here; modules below are organised by stage of the data flow
(schema -> model -> semantics -> runtime), see docs/architecture.md.
"""

from typing import TYPE_CHECKING

from fsm.actions import assign, cancel, emit, log, raise_event, send_parent, send_to, stop_child
from fsm.errors import (
    DefinitionError,
    EventError,
    ExpressionError,
    FsmError,
    ImplementationError,
    InfiniteLoopError,
    LoadError,
    Problem,
    SnapshotError,
    StepError,
)
from fsm.guards import and_, not_, or_, state_in
from fsm.machine import Machine
from fsm.runtime.actor import Actor, Subscription
from fsm.runtime.clock import RealClock, VirtualClock
from fsm.semantics.snapshot import Effect, Snapshot, Timer

if TYPE_CHECKING:
    from fsm.runtime.aio import AsyncActor, LoopClock
    from fsm.runtime.services import InlineExecutor
    from fsm.store import PostgresStore, SQLiteStore, SQLStore, open_store

__version__ = "0.1.0"

# asyncio and the thread-pool machinery cost ~30 ms to import, and the stores bring
# sqlite3 (psycopg only when a PostgresStore is opened); programs that never touch them
# should not pay for them, so these names load on first access (PEP 562).
_LAZY = {
    "AsyncActor": "fsm.runtime.aio",
    "LoopClock": "fsm.runtime.aio",
    "InlineExecutor": "fsm.runtime.services",
    "PostgresStore": "fsm.store",
    "SQLStore": "fsm.store",
    "SQLiteStore": "fsm.store",
    "open_store": "fsm.store",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fsm' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Actor",
    "AsyncActor",
    "DefinitionError",
    "Effect",
    "EventError",
    "ExpressionError",
    "FsmError",
    "ImplementationError",
    "InfiniteLoopError",
    "InlineExecutor",
    "LoadError",
    "LoopClock",
    "Machine",
    "PostgresStore",
    "Problem",
    "RealClock",
    "SQLStore",
    "SQLiteStore",
    "Snapshot",
    "SnapshotError",
    "StepError",
    "Subscription",
    "Timer",
    "VirtualClock",
    "and_",
    "assign",
    "cancel",
    "emit",
    "log",
    "not_",
    "open_store",
    "or_",
    "raise_event",
    "send_parent",
    "send_to",
    "state_in",
    "stop_child",
]
