"""The compiled machine: state nodes and transitions with everything static resolved.

Built once by :mod:`fsm.model.build` and never mutated afterwards; the step function
reads it on every event, so each node carries what the algorithm asks for repeatedly
(document order, ancestors, resolved targets, candidates per event) instead of
recomputing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fsm.actions import BuiltinAction
from fsm.errors import Problem
from fsm.guards import Guard

ATOMIC = "atomic"
COMPOUND = "compound"
PARALLEL = "parallel"
FINAL = "final"
HISTORY = "history"


@dataclass(frozen=True, slots=True)
class ActionRef:
    """One action in a list: a named implementation, or a built-in given in the definition.

    ``builtin`` is set for the JSON built-in forms; a user implementation with the same
    name still wins, as with XState's ``setup({actions})``.
    """

    name: str
    params: Any = None
    builtin: BuiltinAction | None = None
    path: str = ""


@dataclass(frozen=True, slots=True)
class InvokeDef:
    id: str
    src: str
    input: Any = None
    input_fn: Any = None
    path: str = ""


class Transition:
    """A transition with resolved targets. ``targets`` is None for targetless ones."""

    __slots__ = (
        "actions",
        "delay",
        "description",
        "event",
        "guard",
        "index",
        "meta",
        "path",
        "reenter",
        "source",
        "targets",
    )

    def __init__(
        self,
        source: StateNode,
        event: str | None,
        targets: tuple[StateNode, ...] | None,
        guard: Guard | None,
        actions: tuple[ActionRef, ...],
        reenter: bool,
        path: str,
        delay: Any = None,
        description: str | None = None,
        meta: Any = None,
    ) -> None:
        self.source = source
        self.event = event
        self.targets = targets
        self.guard = guard
        self.actions = actions
        self.reenter = reenter
        self.path = path
        self.delay = delay
        self.description = description
        self.meta = meta
        self.index = -1

    def __repr__(self) -> str:
        tgt = ",".join(t.id for t in self.targets) if self.targets else "-"
        return f"<Transition #{self.source.id} {self.event!r} -> {tgt}>"


class StateNode:
    """A state of the machine. Identity is the node object; ``id`` is unique per machine."""

    __slots__ = (
        "__weakref__",
        "_candidates",
        "after",
        "always",
        "ancestors",
        "children",
        "depth",
        "description",
        "entry",
        "exit",
        "history",
        "history_default",
        "history_nodes",
        "id",
        "initial",
        "invoke",
        "json_path",
        "key",
        "meta",
        "order",
        "output",
        "output_fn",
        "parent",
        "path",
        "states",
        "subtree_events",
        "subtree_partial",
        "tags",
        "transitions",
        "type",
    )

    def __init__(self, key: str, node_id: str, parent: StateNode | None, order: int, json_path: str) -> None:
        self.key = key
        self.id = node_id
        self.parent = parent
        self.order = order
        self.json_path = json_path
        self.path: tuple[str, ...] = (*parent.path, key) if parent is not None else ()
        self.depth: int = parent.depth + 1 if parent is not None else 0
        self.type = ATOMIC
        self.states: dict[str, StateNode] = {}
        self.children: tuple[StateNode, ...] = ()
        self.history_nodes: tuple[StateNode, ...] = ()
        self.history: str | None = None
        self.history_default: Transition | None = None
        self.initial: Transition | None = None
        self.entry: tuple[ActionRef, ...] = ()
        self.exit: tuple[ActionRef, ...] = ()
        self.transitions: dict[str, list[Transition]] = {}
        self.always: tuple[Transition, ...] = ()
        self.invoke: tuple[InvokeDef, ...] = ()
        self.after: tuple[Transition, ...] = ()
        self.output: Any = None
        self.output_fn: Any = None
        self.tags: tuple[str, ...] = ()
        self.meta: Any = None
        self.description: str | None = None
        self.ancestors: tuple[StateNode, ...] = ()
        self._candidates: dict[str, tuple[Transition, ...]] = {}
        # Event types handled by this state or a descendant, and whether any of them uses
        # a wildcard: selection skips a subtree that cannot handle the event at all.
        self.subtree_events: frozenset[str] = frozenset()
        self.subtree_partial = False

    @property
    def is_atomic(self) -> bool:
        return self.type == ATOMIC or self.type == FINAL

    def candidates(self, event_type: str) -> tuple[Transition, ...]:
        """Transitions that may handle ``event_type``, in XState's priority order: the exact
        descriptor first, then wildcard descriptors, longest first."""
        found = self._candidates.get(event_type)
        if found is None:
            if not self.subtree_partial:  # no wildcard here: the exact list is the answer
                found = tuple(self.transitions.get(event_type, ()))
                if len(self._candidates) < 4096:
                    self._candidates[event_type] = found
                return found
            exact = self.transitions.get(event_type, [])
            partial = sorted(
                (d for d in self.transitions if d != event_type and matches_descriptor(event_type, d)),
                key=len,
                reverse=True,
            )
            found = tuple(exact) + tuple(t for d in partial for t in self.transitions[d])
            if len(self._candidates) < 4096:
                self._candidates[event_type] = found
        return found

    def is_descendant_of(self, other: StateNode | None) -> bool:
        """Proper descendant. Every node counts as a descendant of ``None`` (XState's
        behaviour when a reentering root transition has no domain)."""
        if other is None:
            return True
        return other in self.ancestors

    def __repr__(self) -> str:
        return f"<StateNode #{self.id} {self.type}>"


def matches_descriptor(event_type: str, descriptor: str) -> bool:
    """XState's event descriptor match: exact, ``*``, or a trailing ``.*`` partial."""
    if descriptor == event_type or descriptor == "*":
        return True
    if not descriptor.endswith(".*"):
        return False
    prefix = descriptor[:-2].split(".")
    tokens = event_type.split(".")
    return tokens[: len(prefix)] == prefix


@dataclass
class Model:
    """The compiled machine definition."""

    root: StateNode
    nodes: list[StateNode]
    by_id: dict[str, StateNode]
    definition: dict[str, Any]
    context: dict[str, Any]
    max_microsteps: int
    references: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # Legal but probably unintended spellings (fsm.testing.analysis reports them).
    warnings: list[Problem] = field(default_factory=list)
    # Interned configurations (see fsm.semantics.snapshot.Configuration), by state orders.
    configurations: dict[tuple[int, ...], Any] = field(default_factory=dict)
    # Validated configurations by their persisted list of state ids (restores).
    configurations_by_ids: dict[tuple[str, ...], Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.root.id

    def __post_init__(self) -> None:
        # Whether history memory can change what a step does (it keys recorded steps).
        self.has_history = any(n.type == HISTORY for n in self.nodes)
