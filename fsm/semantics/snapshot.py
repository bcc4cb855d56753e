"""Immutable snapshots, effects and timers: the values the step function produces.

A :class:`Snapshot` is never changed in place; a step builds a new one. It keeps the
active configuration in XState's order (which decides the priority of eventless
transitions between parallel regions), the context, history memory, pending timers and
children, so that ``to_dict`` / ``Machine.snapshot_from_dict`` round-trip everything a
resumed instance needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from fsm.errors import SnapshotError
from fsm.model.nodes import COMPOUND, Model, StateNode

if TYPE_CHECKING:
    from fsm.model.nodes import Transition

ACTIVE = "active"
DONE = "done"
ERROR = "error"
STOPPED = "stopped"
STATUSES = (ACTIVE, DONE, ERROR, STOPPED)


@dataclass(frozen=True, slots=True)
class Timer:
    """A pending delayed event: ``after`` transitions and delayed ``raise`` / ``sendTo``.

    ``due`` is in the clock's milliseconds; ``seq`` orders timers armed at the same time.
    ``to`` is None for events to this machine, else a child id or the parent marker.
    """

    id: str
    event: Mapping[str, Any]
    due: float
    seq: int
    to: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "event": dict(self.event), "due": self.due, "seq": self.seq}
        if self.to is not None:
            data["to"] = self.to
        return data


class Effect(NamedTuple):
    """Something for the runtime to do after a step, in order.

    Custom actions have their own name as ``type`` and receive ``(context, event,
    params)`` with the context as it was at that point of the step. Built-in effects
    have XState's ``xstate.*`` types (``xstate.log``, ``xstate.emit``, ``xstate.sendTo``,
    ``xstate.spawnChild``, ``xstate.stopChild``, ``xstate.schedule``, ``xstate.cancel``).
    A tuple, because steps create many of them.
    """

    type: str
    params: Any
    context: Mapping[str, Any]
    event: Mapping[str, Any]
    builtin: bool = False
    fn: Any = None
    # Where ``fn`` sits when the implementation is a list of actions, so a runtime can
    # find it again by name after a restart (the outbox stores name + path).
    impl_path: tuple[int, ...] = ()

    @property
    def immediate(self) -> bool:
        """Custom actions and ``log`` run as the step proceeds in XState; the other
        built-ins (emit, send, spawn, timers) are deferred until the step has finished."""
        return not self.builtin or self.type == "xstate.log"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "params": self.params}


def state_value(root: StateNode, nodes: tuple[StateNode, ...]) -> Any:
    """XState's state value for a configuration, keys in configuration order."""
    children: dict[StateNode, list[StateNode]] = {}
    for node in nodes:
        parent = node.parent
        if parent is not None:
            children.setdefault(parent, []).append(node)

    def value_of(node: StateNode) -> Any:
        kids = children.get(node)
        if not kids:
            return {}
        if node.type == COMPOUND and kids[0].is_atomic:
            return kids[0].key
        return {k.key: value_of(k) for k in kids}

    return value_of(root)


def to_state_value(value: Any) -> Any:
    """``"a.b.c"`` -> ``{"a": {"b": "c"}}``; dicts pass through."""
    if not isinstance(value, str):
        return value
    parts = value.split(".")
    result: Any = parts[-1]
    for part in reversed(parts[:-1]):
        result = {part: result}
    return result


def matches_state(parent_value: Any, child_value: Any) -> bool:
    """XState's ``matchesState``: does the snapshot value ``child_value`` match the
    (possibly partial) ``parent_value``?"""
    parent_value = to_state_value(parent_value)
    child_value = to_state_value(child_value)
    if isinstance(child_value, str):
        return isinstance(parent_value, str) and parent_value == child_value
    if isinstance(parent_value, str):
        return parent_value in child_value
    return all(k in child_value and matches_state(v, child_value[k]) for k, v in parent_value.items())


class Configuration:
    """A set of active states in XState's order, interned per model.

    Every snapshot with the same active states (in the same order) shares one
    Configuration, so what depends only on the states (the state value, the set for
    membership tests, the tags) is computed once, and a configuration can key caches.
    """

    __slots__ = ("__weakref__", "_tags", "_value", "key", "node_set", "nodes", "root")

    def __init__(self, root: StateNode, nodes: tuple[StateNode, ...]) -> None:
        self.root = root
        self.nodes = nodes
        self.key = tuple(n.order for n in nodes)
        self.node_set = frozenset(nodes)
        self._value: Any = None
        self._tags: frozenset[str] | None = None

    @property
    def value(self) -> Any:
        if self._value is None:
            self._value = state_value(self.root, self.nodes)
        return self._value

    @property
    def tags(self) -> frozenset[str]:
        if self._tags is None:
            self._tags = frozenset(t for n in self.nodes for t in n.tags)
        return self._tags

    def __repr__(self) -> str:
        return f"<Configuration {self.value!r}>"


def intern_configuration(model: Model, nodes: tuple[StateNode, ...]) -> Configuration:
    """The shared Configuration for these active states (created on first use)."""
    key = tuple(n.order for n in nodes)
    table = model.configurations
    found: Configuration | None = table.get(key)
    if found is None:
        found = Configuration(model.root, nodes)
        if len(table) < 100_000:
            table[key] = found
    return found


_new_tuple = tuple.__new__


class Snapshot(tuple):
    """The state of one machine instance at rest, between two events.

    An immutable value (a tuple underneath, so it is cheap to create and cannot be
    changed in place); :meth:`replace` makes a changed copy.
    """

    __slots__ = ()

    def __new__(
        cls,
        machine: Any,
        nodes: tuple[StateNode, ...] | Configuration,
        context: dict[str, Any],
        status: str = ACTIVE,
        output: Any = None,
        error: Any = None,
        history: Mapping[str, tuple[StateNode, ...]] | None = None,
        timers: tuple[Timer, ...] = (),
        children: Mapping[str, Mapping[str, Any]] | None = None,
        timer_seq: int = 0,
    ) -> Snapshot:
        config = nodes if isinstance(nodes, Configuration) else intern_configuration(machine.model, tuple(nodes))
        return _new_tuple(
            cls, (machine, config, context, status, output, error, history or {}, timers, children or {}, timer_seq)
        )

    @classmethod
    def make(
        cls,
        machine: Any,
        config: Configuration,
        context: dict[str, Any],
        status: str,
        output: Any,
        error: Any,
        history: Mapping[str, tuple[StateNode, ...]],
        timers: tuple[Timer, ...],
        children: Mapping[str, Mapping[str, Any]],
        timer_seq: int,
    ) -> Snapshot:
        """The step's constructor: every field given, the configuration interned."""
        return _new_tuple(cls, (machine, config, context, status, output, error, history, timers, children, timer_seq))

    machine: Any = property(itemgetter(0))
    config: Configuration = property(itemgetter(1))  # type: ignore[assignment]
    context: dict[str, Any] = property(itemgetter(2))  # type: ignore[assignment]
    status: str = property(itemgetter(3))  # type: ignore[assignment]
    output: Any = property(itemgetter(4))
    error: Any = property(itemgetter(5))
    history: Mapping[str, tuple[StateNode, ...]] = property(itemgetter(6))  # type: ignore[assignment]
    timers: tuple[Timer, ...] = property(itemgetter(7))  # type: ignore[assignment]
    # Running invocations: id -> {"src": service name, "input": resolved input}, so a
    # resumed instance restarts them with the same input.
    children: Mapping[str, Mapping[str, Any]] = property(itemgetter(8))  # type: ignore[assignment]
    # Numbers timers in arming order (and names timers that have no id).
    timer_seq: int = property(itemgetter(9))  # type: ignore[assignment]

    FIELDS = ("machine", "nodes", "context", "status", "output", "error", "history", "timers", "children", "timer_seq")

    def replace(self, **changes: Any) -> Snapshot:
        """A copy with some fields changed (snapshots are values, never mutated)."""
        fields = {name: getattr(self, name) for name in Snapshot.FIELDS}
        fields["nodes"] = self.config
        fields.update(changes)
        return Snapshot(**fields)

    @property
    def nodes(self) -> tuple[StateNode, ...]:
        """The active states, in configuration order."""
        return self[1].nodes

    @property
    def model(self) -> Model:
        model: Model = self[0].model
        return model

    @property
    def value(self) -> Any:
        """The state value: ``"idle"``, ``{"a": {"b": "c"}}``, or a dict of regions."""
        return self[1].value

    @property
    def node_set(self) -> frozenset[StateNode]:
        return self[1].node_set

    @property
    def state_ids(self) -> list[str]:
        """Ids of the active states, in configuration order."""
        return [n.id for n in self.nodes]

    @property
    def tags(self) -> set[str]:
        return set(self[1].tags)

    def matches(self, value: Any) -> bool:
        """``snapshot.matches("checkout.paid")`` or ``matches({"checkout": "paid"})``."""
        return matches_state(value, self.value)

    def has_tag(self, tag: str) -> bool:
        return tag in self[1].tags

    def in_state(self, state_id: str) -> bool:
        """Is the state with this id (``"#id"`` or ``"id"``) active?"""
        node = self.model.by_id.get(state_id.removeprefix("#"))
        return node is not None and node in self.node_set

    @property
    def meta(self) -> dict[str, Any]:
        return {n.id: n.meta for n in self.nodes if n.meta is not None}

    @property
    def next_events(self) -> list[str]:
        """Event descriptors handled by some active state (guards not evaluated),
        excluding XState's internal ``xstate.*`` events."""
        seen: dict[str, None] = {}
        for node in self.nodes:
            for descriptor, transitions in node.transitions.items():
                if descriptor.startswith("xstate."):
                    continue
                if any(t.targets is not None or t.actions or t.reenter for t in transitions):
                    seen[descriptor] = None
        return list(seen)

    def can(self, event: Any) -> bool:
        """Would this event cause a transition now (guards evaluated)? Like XState's
        ``snapshot.can``: a transition counts when it has a target or actions."""
        transitions: list[Transition] = self.machine.enabled_transitions(self, event)
        return any(t.targets is not None or t.actions for t in transitions)

    # -- persistence -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form holding everything needed to resume."""
        data: dict[str, Any] = {
            "machine": self.model.id,
            "value": self.value,
            "configuration": [n.id for n in self.nodes],
            "context": self.context,
            "status": self.status,
            "output": self.output,
            "error": _error_to_json(self.error),
            "history": {k: [n.id for n in v] for k, v in self.history.items()},
            "timers": [t.to_dict() for t in self.timers],
            "children": {k: dict(v) for k, v in self.children.items()},
            "timer_seq": self.timer_seq,
        }
        return data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Snapshot):
            return NotImplemented
        return self.model is other.model and self.to_dict() == other.to_dict()

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self) -> int:
        return hash(self[1].key)

    def __repr__(self) -> str:
        return f"<Snapshot {self.status} value={self.value!r} context={self.context!r}>"

    def __reduce__(self) -> Any:
        return (_rebuild, (self.machine, self.config.nodes, *tuple.__getitem__(self, slice(2, None))))


def _rebuild(*args: Any) -> Snapshot:
    return Snapshot(*args)


def _error_to_json(error: Any) -> Any:
    if error is None or isinstance(error, (str, int, float, bool, dict, list)):
        return error
    if isinstance(error, BaseException):
        return {"type": type(error).__name__, "message": str(error)}
    return repr(error)


def snapshot_from_dict(machine: Any, data: Mapping[str, Any]) -> Snapshot:
    """Rebuild a snapshot from :meth:`Snapshot.to_dict`, checking it fits the machine."""
    model: Model = machine.model
    if not isinstance(data, Mapping):
        raise SnapshotError(f"a persisted snapshot must be a dict, got {type(data).__name__}")
    if data.get("machine") not in (None, model.id):
        raise SnapshotError(f"snapshot belongs to machine {data.get('machine')!r}, not {model.id!r}")

    def node(ident: Any, where: str) -> StateNode:
        found = model.by_id.get(ident) if isinstance(ident, str) else None
        if found is None:
            raise SnapshotError(f"{where}: state id {ident!r} does not exist in machine {model.id!r}")
        return found

    ids = data.get("configuration")
    if not isinstance(ids, list) or not ids:
        raise SnapshotError("snapshot has no 'configuration' list of state ids")
    config = model.configurations_by_ids.get(tuple(ids)) if all(type(i) is str for i in ids) else None
    if config is None:
        nodes = tuple(node(i, "configuration") for i in ids)
        check_configuration(model, nodes)
        config = intern_configuration(model, nodes)
        if len(model.configurations_by_ids) < 100_000:
            model.configurations_by_ids[tuple(ids)] = config  # validated: the next restore is a lookup
    status = data.get("status", ACTIVE)
    if status not in STATUSES:
        raise SnapshotError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
    context = data.get("context") or {}
    if not isinstance(context, dict):
        raise SnapshotError("snapshot context must be a dict")
    history_data = data.get("history") or {}
    if not isinstance(history_data, Mapping):
        raise SnapshotError("snapshot 'history' must be a dict of history state id -> list of state ids")
    history = {}
    for hid, members in history_data.items():
        owner = node(hid, "history")
        if owner.type != "history" or owner.parent is None:
            raise SnapshotError(f"history: #{hid} is not a history state")
        if not isinstance(members, list):
            raise SnapshotError(f"history[{hid!r}] must be a list of state ids")
        remembered = tuple(node(m, f"history[{hid!r}]") for m in members)
        for member in remembered:
            if owner.parent not in member.ancestors:
                raise SnapshotError(f"history[{hid!r}]: #{member.id} is not inside #{owner.parent.id}")
        history[hid] = remembered
    timers = _timers_from_json(data.get("timers"))
    timer_seq = data.get("timer_seq", 0)
    if isinstance(timer_seq, bool) or not isinstance(timer_seq, int):
        raise SnapshotError(f"snapshot 'timer_seq' must be an integer, got {timer_seq!r}")
    snap = Snapshot(
        machine,
        config,
        context,
        status,
        data.get("output"),
        data.get("error"),
        history,
        timers,
        _children_from_json(data.get("children")),
        timer_seq,
    )
    if "value" in data and data["value"] != snap.value:
        raise SnapshotError(f"snapshot value {data['value']!r} does not match its configuration {snap.value!r}")
    return snap


def _timers_from_json(data: Any) -> tuple[Timer, ...]:
    if not data:
        return ()
    if not isinstance(data, list):
        raise SnapshotError("snapshot 'timers' must be a list")
    timers = []
    for i, t in enumerate(data):
        where = f"timers[{i}]"
        if not isinstance(t, Mapping):
            raise SnapshotError(f"{where} must be a dict")
        missing = [k for k in ("id", "event", "due", "seq") if k not in t]
        if missing:
            raise SnapshotError(f"{where} lacks {', '.join(missing)}")
        event = t["event"]
        if not isinstance(event, Mapping) or not isinstance(event.get("type"), str):
            raise SnapshotError(f"{where}.event must be an event dict with a string 'type'")
        due, seq = t["due"], t["seq"]
        if (
            isinstance(due, bool)
            or not isinstance(due, (int, float))
            or isinstance(seq, bool)
            or not isinstance(seq, int)
        ):
            raise SnapshotError(f"{where}: 'due' must be a number and 'seq' an integer")
        to = t.get("to")
        if to is not None and not isinstance(to, str):
            raise SnapshotError(f"{where}.to must be a string")
        timers.append(Timer(str(t["id"]), dict(event), float(due), seq, to))
    return tuple(timers)


def _children_from_json(data: Any) -> dict[str, Mapping[str, Any]]:
    if not data:
        return {}
    if not isinstance(data, Mapping):
        raise SnapshotError("snapshot 'children' must be a dict of invoke id -> {src, input}")
    out: dict[str, Mapping[str, Any]] = {}
    for child_id, info in data.items():
        if not isinstance(info, Mapping) or not isinstance(info.get("src"), str):
            raise SnapshotError(f"snapshot child {child_id!r} must be {{'src': name, 'input': ...}}")
        out[child_id] = dict(info)
    return out


def check_configuration(model: Model, nodes: tuple[StateNode, ...]) -> None:
    """A legal configuration: the root, every ancestor of an active state, exactly one
    child of each active compound state and every region of each active parallel state."""
    active = set(nodes)
    if model.root not in active:
        raise SnapshotError("configuration does not contain the root state")
    if len(active) != len(nodes):
        raise SnapshotError("configuration lists a state twice")
    for n in nodes:
        if n.type == "history":
            raise SnapshotError(f"history state #{n.id} cannot be active")
        if n.parent is not None and n.parent not in active:
            raise SnapshotError(f"#{n.id} is active but its parent #{n.parent.id} is not")
        kids = [c for c in n.children if c in active]
        if n.type == COMPOUND and len(kids) != 1:
            raise SnapshotError(f"compound state #{n.id} must have exactly one active child, has {len(kids)}")
        if n.type == "parallel" and len(kids) != len(n.children):
            raise SnapshotError(f"parallel state #{n.id} must have all its regions active")
