"""fsm: a declarative statechart interpreter that runs XState v5 JSON/YAML machines.

The public names live here; modules below are organised by stage of the data flow
(schema -> model -> semantics -> runtime), see docs/architecture.md.
"""

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
from fsm.runtime.aio import AsyncActor, LoopClock
from fsm.runtime.clock import RealClock, VirtualClock
from fsm.runtime.services import InlineExecutor
from fsm.semantics.snapshot import Effect, Snapshot, Timer

__version__ = "0.1.0"

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
    "Problem",
    "RealClock",
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
    "or_",
    "raise_event",
    "send_parent",
    "send_to",
    "state_in",
    "stop_child",
]
