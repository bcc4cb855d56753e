"""The diagram IR: what a picture of a machine shows, independent of any drawing tool.

The compiled model is shaped for the step function (candidate tables, synthetic timer
actions, ``xstate.*`` event names); a diagram needs something else: the state tree with
display names, the actions a reader cares about, and one edge per transition with its
trigger written the way a person reads it (``after 5s``, ``always``, ``onDone``). This
module makes that translation once, so the DOT and Mermaid renderers only decide how to
draw, never what a transition *means*. Everything here is plain frozen data in document
order, which is what makes the exports stable and diffable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from fsm import actions as builtins
from fsm.model.nodes import HISTORY, PARALLEL, ActionRef, Model, StateNode, Transition

if TYPE_CHECKING:
    from fsm.machine import Machine
    from fsm.semantics.snapshot import Snapshot

StateKind = Literal["atomic", "compound", "parallel", "final", "history"]
EdgeKind = Literal["event", "always", "after", "done", "history"]
LabelDetail = Literal["full", "events", "none"]

# The synthetic entry/exit actions the model adds for `after` timers: the diagram shows
# the `after` edge itself, so these are noise for a reader.
_TIMER_ACTIONS = frozenset({"xstate.raise", "xstate.cancel"})


@dataclass(frozen=True, slots=True)
class DiagramOptions:
    """How a diagram is drawn. One options object for every renderer, so a new knob is
    added once instead of as a keyword argument on each export function.

    ``rankdir``: layout direction, ``"LR"`` (left to right) or ``"TB"`` (top to bottom).
    ``labels``: edge labels: ``"full"`` (``EVENT [guard] / actions``), ``"events"``
    (trigger only) or ``"none"``.
    ``actions``: list entry/exit actions, invocations and targetless transitions inside
    the states.
    ``descriptions`` / ``tags``: show state descriptions and tags.
    ``wrap``: wrap action lists in edge labels after about this many characters.
    """

    rankdir: Literal["LR", "TB"] = "LR"
    labels: LabelDetail = "full"
    actions: bool = True
    descriptions: bool = False
    tags: bool = False
    font: str = "Helvetica"
    wrap: int = 40

    def __post_init__(self) -> None:
        if self.rankdir not in ("LR", "TB"):
            raise ValueError(f"rankdir must be 'LR' or 'TB', not {self.rankdir!r}")
        if self.labels not in ("full", "events", "none"):
            raise ValueError(f"labels must be 'full', 'events' or 'none', not {self.labels!r}")


@dataclass(frozen=True, slots=True)
class DiagramEdge:
    """One transition as drawn. ``targets`` is empty for a targetless transition (drawn
    inside its state); ``index`` is the model transition's index (-1 for the synthetic
    edge from a history state to its default)."""

    source: str
    targets: tuple[str, ...]
    kind: EdgeKind
    trigger: str
    guard: str | None = None
    actions: tuple[str, ...] = ()
    index: int = -1
    reenter: bool = False
    taken: bool = False

    def head(self, detail: LabelDetail = "full") -> str:
        """``EVENT [guard]``: the part that says when the transition is taken."""
        if detail == "none":
            return ""
        if detail == "events" or not self.guard:
            return self.trigger
        return f"{self.trigger} [{self.guard}]".strip()

    def action_text(self, detail: LabelDetail = "full") -> str:
        """``/ a, b``: what the transition does (empty when it does nothing)."""
        if detail != "full" or not self.actions:
            return ""
        return "/ " + ", ".join(self.actions)

    def text(self, detail: LabelDetail = "full") -> str:
        """The whole label on one line: ``EVENT [guard] / a, b``."""
        return " ".join(part for part in (self.head(detail), self.action_text(detail)) if part)


@dataclass(frozen=True, slots=True)
class DiagramState:
    """One state as drawn. ``children`` includes history states, in document order;
    ``initial`` is the id of the initial child of a compound state; ``region`` is true
    for the children of a parallel state."""

    id: str
    key: str
    kind: StateKind
    children: tuple[DiagramState, ...] = ()
    initial: str | None = None
    region: bool = False
    deep: bool = False
    entry: tuple[str, ...] = ()
    exit: tuple[str, ...] = ()
    invoke: tuple[str, ...] = ()
    internal: tuple[DiagramEdge, ...] = ()
    tags: tuple[str, ...] = ()
    description: str | None = None
    active: bool = False

    @property
    def is_cluster(self) -> bool:
        """Compound and parallel states are drawn as containers of their children."""
        return self.kind in ("compound", "parallel")

    def walk(self) -> Iterator[DiagramState]:
        """This state and all its descendants, in document order (pre-order)."""
        stack: list[DiagramState] = [self]
        while stack:
            state = stack.pop()
            yield state
            stack.extend(reversed(state.children))


@dataclass(frozen=True, slots=True)
class Diagram:
    """A whole machine as drawn: the state tree under ``root`` and the edges with targets
    (event, ``always``, ``after``, done and history-default edges), in document order."""

    id: str
    root: DiagramState
    edges: tuple[DiagramEdge, ...]
    description: str | None = None
    _by_id: dict[str, DiagramState] = field(default_factory=dict, compare=False, repr=False)

    def states(self) -> Iterator[DiagramState]:
        return self.root.walk()

    def state(self, state_id: str) -> DiagramState:
        if not self._by_id:
            self._by_id.update((s.id, s) for s in self.states())
        return self._by_id[state_id]

    def parents(self) -> dict[str, str]:
        """Parent id of every state but the root (renderers need ancestry for clusters)."""
        out: dict[str, str] = {}
        for state in self.states():
            for child in state.children:
                out[child.id] = state.id
        return out


# -- building the IR from a machine ------------------------------------------------------


def build_diagram(
    machine: Machine | Model,
    snapshot: Snapshot | None = None,
    taken: Iterable[Transition | Mapping[str, Any]] = (),
) -> Diagram:
    """Translate a machine (or its compiled model) into the diagram IR.

    ``snapshot`` marks its active states. ``taken`` marks the transitions of the last
    step: :class:`~fsm.model.nodes.Transition` objects, or the microstep records an
    actor's inspector (``@fsm.microstep``) or ``on_microstep`` receives, matched by
    source, event and targets (two transitions equal in all three are both marked).
    """
    model = machine if isinstance(machine, Model) else machine.model
    active = frozenset(n.id for n in snapshot.nodes) if snapshot is not None else frozenset()
    marked = _taken_indices(model, taken)
    edges: list[DiagramEdge] = []
    root = _state(model.root, active, marked, edges)
    return Diagram(model.id, root, tuple(edges), model.root.description)


def _state(node: StateNode, active: frozenset[str], marked: frozenset[int], edges: list[DiagramEdge]) -> DiagramState:
    internal: list[DiagramEdge] = []
    for transition in _transitions(node):
        edge = _edge(transition, marked)
        if edge.targets:
            edges.append(edge)
        else:
            internal.append(edge)
    if node.type == HISTORY:
        default = node.history_default
        # Only an explicit `target` is worth an edge: the implicit default (the parent's
        # initial state) is already drawn by the initial marker.
        if default is not None and default.source is node and default.targets:
            targets = tuple(t.id for t in default.targets if t is not node.parent)
            if targets:
                edges.append(DiagramEdge(node.id, targets, "history", ""))
    children = tuple(_state(child, active, marked, edges) for child in node.states.values())
    initial = node.initial.targets[0].id if node.initial is not None and node.initial.targets else None
    return DiagramState(
        id=node.id,
        key=node.key,
        kind=node.type,  # type: ignore[arg-type]
        children=children,
        initial=initial,
        region=node.parent is not None and node.parent.type == PARALLEL,
        deep=node.type == HISTORY and node.history == "deep",
        entry=_action_labels(node.entry),
        exit=_action_labels(node.exit),
        invoke=tuple(inv.src for inv in node.invoke),
        internal=tuple(internal),
        tags=node.tags,
        description=node.description,
        active=node.id in active,
    )


def _transitions(node: StateNode) -> Iterator[Transition]:
    """Every transition of a state in document order: ``on`` (including onDone, invoke
    and ``after`` handlers, in the order the model keeps them), then ``always``."""
    for transitions in node.transitions.values():
        yield from transitions
    yield from node.always


def _edge(t: Transition, marked: frozenset[int]) -> DiagramEdge:
    kind, trigger = _trigger(t)
    return DiagramEdge(
        source=t.source.id,
        targets=tuple(n.id for n in t.targets) if t.targets else (),
        kind=kind,
        trigger=trigger,
        guard=t.guard.label() if t.guard is not None else None,
        actions=_action_labels(t.actions),
        index=t.index,
        reenter=t.reenter,
        taken=t.index in marked,
    )


def _trigger(t: Transition) -> tuple[EdgeKind, str]:
    """How a person reads the event of a transition."""
    event = t.event or ""
    if t.delay is not None:
        return "after", f"after {format_delay(t.delay)}"
    if event == "":
        return "always", "always"
    source = t.source
    if event == f"xstate.done.state.{source.id}":
        return "done", "onDone"
    for prefix, name in (
        ("xstate.done.actor.", "onDone"),
        ("xstate.error.actor.", "onError"),
        ("xstate.snapshot.", "onSnapshot"),
    ):
        if event.startswith(prefix):
            invoke_id = event[len(prefix) :]
            # Generated invoke ids ("0.machine.state") say less than the service name.
            generated = {f"{i}.{source.id}": inv.src for i, inv in enumerate(source.invoke)}
            shown = generated.get(invoke_id, invoke_id)
            return "done", f"{name}({shown})"
    return "event", event


def format_delay(delay: Any) -> str:
    """``5000`` -> ``5s``, ``1500`` -> ``1.5s``, ``250`` -> ``250ms``, ``120000`` ->
    ``2min``; a named delay (``retryDelay``) is shown by name."""
    if isinstance(delay, str):
        return delay
    ms = float(delay)
    if not math.isfinite(ms):
        return str(delay)
    for unit, size in (("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms >= size and (ms / size) * 10 == int((ms / size) * 10):
            return f"{ms / size:g}{unit}"
    return f"{ms:g}ms"


def _action_labels(actions: tuple[ActionRef, ...]) -> tuple[str, ...]:
    return tuple(action_label(a) for a in actions if a.name not in _TIMER_ACTIONS)


def action_label(ref: ActionRef) -> str:
    """A short readable name for an action: its name for custom actions; for built-ins
    the kind plus what it acts on (``assign(total)``, ``raise TOTALS_CHANGED``,
    ``emit order.paid``), so a diagram says what happens without the expressions."""
    action = ref.builtin
    if action is None:
        return ref.name
    if isinstance(action, builtins.Assign):
        keys = [k for k, _ in action.per_key] if action.per_key is not None else []
        return f"assign({', '.join(keys)})" if keys else "assign"
    if isinstance(action, builtins.Raise):
        text = _join("raise", _event_name(action.event))
        return _join(text, f"after {_delay_text(action.delay)}" if action.delay is not None else "")
    if isinstance(action, builtins.SendTo):
        kind = "sendParent" if action.to == builtins.PARENT else f"sendTo({action.to})"
        text = _join(kind, _event_name(action.event))
        return _join(text, f"after {_delay_text(action.delay)}" if action.delay is not None else "")
    if isinstance(action, builtins.Emit):
        return _join("emit", _event_name(action.event))
    if isinstance(action, builtins.Log):
        return _join("log", action.label or "")
    if isinstance(action, (builtins.Cancel, builtins.StopChild)):
        value = action.id.constant
        return f"{ref.name}({value})" if isinstance(value, str) else ref.name
    return ref.name


def _join(a: str, b: str) -> str:
    return f"{a} {b}" if b else a


def _event_name(value: builtins.Value) -> str:
    constant = value.constant
    if isinstance(constant, Mapping) and isinstance(constant.get("type"), str):
        return str(constant["type"])
    return ""


def _delay_text(value: builtins.Value | None) -> str:
    if value is None:
        return ""
    constant = value.constant
    return format_delay(constant) if isinstance(constant, (int, float, str)) else "…"


def _taken_indices(model: Model, taken: Iterable[Transition | Mapping[str, Any]]) -> frozenset[int]:
    """Transition indices for the transitions of the last step, given as objects or as
    microstep records (``{"source", "event", "targets"}`` or ``{"transitions": [...]}``)."""
    wanted: set[int] = set()
    records: list[Mapping[str, Any]] = []
    for item in taken:
        if isinstance(item, Transition):
            wanted.add(item.index)
        elif "transitions" in item:
            records.extend(item["transitions"])
        else:
            records.append(item)
    if records:
        index: dict[tuple[str, str, tuple[str, ...]], list[int]] = {}
        for node in model.nodes:
            for t in _transitions(node):
                key = (node.id, t.event or "", tuple(n.id for n in t.targets or ()))
                index.setdefault(key, []).append(t.index)
        for record in records:
            key = (str(record.get("source")), record.get("event") or "", tuple(record.get("targets") or ()))
            wanted.update(index.get(key, ()))
    return frozenset(wanted)
