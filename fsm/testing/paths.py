"""Event paths through a machine, replay, and coverage.

The counterpart of XState's graph utilities (``getShortestPaths`` / ``getSimplePaths``
in ``xstate/graph``): starting from the initial snapshot, the machine is driven with the
pure API only (``initial_transition`` / ``transition`` / ``advance``), never an actor,
so exploring is deterministic, needs no clock and runs no side effect. Guards are
evaluated against the context as it is at each step, so a state that a guard keeps out
of reach is not reached unless some sequence of events makes the guard pass.

What is tried at each step:

- every event type named in the machine's ``on`` descriptors (wildcards and
  ``xstate.*`` left out), as ``{"type": T}``, unless ``events`` gives samples for T
  (``events={"PAY": [{"type": "PAY", "amount": 5}]}``); types that only appear in
  ``events`` are tried too, so events matched by wildcards can be explored;
- with ``invocations=True`` (the default), the completion and the failure of each
  running invoked service (``xstate.done.actor.<id>`` / ``xstate.error.actor.<id>``)
  when the machine handles them, since a real service may end either way at any time;
- with ``timers=True``, letting time pass until the next pending timer is due
  (``after`` transitions and delayed events), as one step whose ``delay`` says by how
  many milliseconds the clock moved.

States and keys. The search tells snapshots apart by everything that decides their
future (value, context, history memory, pending timers relative to now, running
invocations), so a state reached only once a counter in the context has grown, or once
a timer has fired, is found. Results are grouped by ``key``: by default the state value
only (one shortest path per configuration, the question "how do I get to state X?");
``key="value+context"`` gives one path per distinct (value, context) pair, as XState's
default serialisation does; any callable ``snapshot -> hashable`` works too. Machines
whose context grows without bound (counters, lists) have infinitely many snapshots:
``max_states`` and ``max_depth`` bound the search, and :class:`Exploration` says when a
bound was hit.

Unlike XState v5, a path's ``steps`` do not start with a step for ``xstate.init``:
``path.start`` is the initial snapshot, and ``path.events`` is exactly what to send, in
order, to get from there to ``path.state``.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fsm.errors import FsmError
from fsm.machine import Machine
from fsm.model.nodes import StateNode, Transition
from fsm.semantics import events as event_names
from fsm.semantics.snapshot import ACTIVE, Snapshot
from fsm.testing.analysis import all_transitions, event_types

EventSample = str | Mapping[str, Any]
EventSamples = Mapping[str, Sequence[EventSample] | Callable[[Snapshot], Iterable[EventSample]]] | Sequence[EventSample]
Key = str | Callable[[Snapshot], Hashable]

DEFAULT_MAX_DEPTH = 30
DEFAULT_MAX_STATES = 5000
DEFAULT_MAX_PATHS = 1000


@dataclass(frozen=True)
class Step:
    """One step of a path: the event sent and the snapshot it led to.

    A timer step (``delay`` is not None) is not an event to send: it is time passing.
    ``delay`` milliseconds elapse, the pending timers due by then fire, and ``event`` is
    the first of them (``xstate.after.<delay>.<state id>`` for an ``after`` transition).
    """

    event: dict[str, Any]
    snapshot: Snapshot
    delay: float | None = None

    @property
    def is_timer(self) -> bool:
        return self.delay is not None

    def describe(self) -> str:
        """``PAY {"amount": 5}`` or ``after 5000 ms``: how a person would say the step."""
        if self.delay is not None:
            return f"after {self.delay:g} ms"
        payload = {k: v for k, v in self.event.items() if k != "type"}
        if not payload:
            return str(self.event["type"])
        return f"{self.event['type']} {json.dumps(payload, sort_keys=True, default=repr)}"


@dataclass
class Path:
    """A way to reach ``state`` from ``start`` (the initial snapshot): ``steps`` in order.

    ``path.events`` are the event dicts to send; for paths with timer steps, walk
    ``path.steps`` instead (or call :func:`replay`), since a timer step means "let
    ``step.delay`` ms pass".
    """

    state: Snapshot
    steps: list[Step]
    start: Snapshot

    @property
    def events(self) -> list[dict[str, Any]]:
        return [step.event for step in self.steps]

    @property
    def weight(self) -> int:
        """The number of steps (XState's ``weight``, every step weighing 1)."""
        return len(self.steps)

    @property
    def value(self) -> Any:
        return self.state.value

    def describe(self) -> str:
        """``cart --CHECKOUT--> checkout.shipping --after 5000 ms--> ...``"""
        parts = [state_label(self.start.value)]
        for step in self.steps:
            parts.append(f"--{step.describe()}--> {state_label(step.snapshot.value)}")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"<Path to {state_label(self.state.value)} in {self.weight} step(s)>"


@dataclass
class Exploration:
    """The result of a bounded search: ``paths`` (one per key, shortest first), and
    whether a bound cut the search short (``truncated``: some snapshots were left
    unexplored, so a state missing from ``paths`` may still be reachable). ``errors``
    lists the steps that raised (a guard or action failing on an event), each skipped.
    ``enabled_types``: the event types that changed some explored snapshot."""

    paths: list[Path]
    explored: int
    truncated: bool
    errors: list[str] = field(default_factory=list)
    enabled_types: list[str] = field(default_factory=list)


def state_label(value: Any) -> str:
    """A state value as text: ``"a"``, ``"a.b.c"``, or ``{a.x, b.y}`` for parallel states."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        parts = []
        for k, v in value.items():
            inner = state_label(v)
            parts.append(f"{k}.{inner}" if inner else str(k))
        if len(parts) == 1:
            return parts[0]
        return "{" + ", ".join(parts) + "}"
    return str(value)


# -- keys ------------------------------------------------------------------------------


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def key_function(key: Key) -> Callable[[Snapshot], Hashable]:
    """The grouping key: ``"value"``, ``"value+context"`` or a callable on snapshots."""
    if callable(key):
        return key
    if key == "value":
        return lambda snap: _canon(snap.value)
    if key in ("value+context", "context"):
        return lambda snap: (_canon(snap.value), _canon(snap.context))
    raise ValueError(f'key must be "value", "value+context" or a callable, not {key!r}')


def _search_key(snap: Snapshot, now: float) -> Hashable:
    """Everything that decides a snapshot's future; timers relative to now. Auto-named
    timers (``xstate.timer.<seq>``) are identified by their event, not their number."""
    timers = tuple(
        sorted(
            (
                "" if t.id.startswith("xstate.timer.") else t.id,
                _canon(dict(t.event)),
                t.due - now,
                t.to or "",
            )
            for t in snap.timers
        )
    )
    history = tuple(sorted((k, tuple(n.id for n in v)) for k, v in snap.history.items()))
    children = tuple(sorted((k, _canon(dict(v))) for k, v in snap.children.items()))
    return (_canon(snap.value), _canon(snap.context), snap.status, history, timers, children)


# -- the successor function ------------------------------------------------------------


def normalize_samples(events: EventSamples | None) -> dict[str, Any]:
    """``{type: [event dicts] | callable}`` from the forms users may give: a mapping
    of type to samples (events, or payloads without ``type``) or to a function of the
    snapshot returning samples, or a flat list of events."""
    if events is None:
        return {}
    if isinstance(events, Mapping):
        out: dict[str, Any] = {}
        for kind, samples in events.items():
            if callable(samples):
                out[kind] = samples
            else:
                out[kind] = [as_event(s, kind) for s in samples]
        return out
    grouped: dict[str, list[dict[str, Any]]] = {}
    for sample in events:
        ev = as_event(sample, None)
        grouped.setdefault(ev["type"], []).append(ev)
    return grouped


def as_event(sample: EventSample, kind: str | None) -> dict[str, Any]:
    """An event dict from a sample: ``"GO"``, a full event, or a payload of ``kind``."""
    if isinstance(sample, str):
        return {"type": sample}
    ev = dict(sample)
    if "type" not in ev:
        if kind is None:
            raise ValueError(f"event sample {sample!r} has no 'type'")
        ev["type"] = kind
    return ev


class _Explorer:
    """Generates the steps possible from a snapshot, for every search of this module."""

    def __init__(self, machine: Machine, events: EventSamples | None, timers: bool, invocations: bool) -> None:
        self.machine = machine
        self.samples = normalize_samples(events)
        self.types = list(dict.fromkeys([*event_types(machine), *self.samples]))
        self.timers = timers
        self.invocations = invocations
        self.errors: dict[str, None] = {}
        self.enabled: dict[str, None] = {}

    def events_for(self, snap: Snapshot, kind: str) -> list[dict[str, Any]]:
        samples = self.samples.get(kind)
        if samples is None:
            return [{"type": kind}]
        if callable(samples):
            return [as_event(s, kind) for s in samples(snap)]
        return list(samples)

    def candidate_events(self, snap: Snapshot) -> Iterator[dict[str, Any]]:
        nodes = snap.nodes
        for kind in self.types:
            if any(n.candidates(kind) for n in nodes):
                yield from self.events_for(snap, kind)
        if self.invocations:
            for child_id in snap.children:
                for ev in (event_names.done_actor(child_id), event_names.error_actor(child_id, "error")):
                    kind = ev["type"]
                    if kind in self.samples or not any(n.candidates(kind) for n in nodes):
                        continue
                    yield ev

    def successors(self, snap: Snapshot, now: float) -> Iterator[tuple[Step, float]]:
        if snap.status != ACTIVE:
            return
        for ev in self.candidate_events(snap):
            try:
                nxt, _ = self.machine.transition(snap, ev, now=now)
            except FsmError as exc:
                self.errors[f"{Step(ev, snap).describe()} in {state_label(snap.value)}: {exc}"] = None
                continue
            if nxt is not snap:
                self.enabled[ev["type"]] = None
                yield Step(ev, nxt), now
        if self.timers and snap.timers:
            first = min(snap.timers, key=lambda t: (t.due, t.seq))
            try:
                nxt, _ = self.machine.advance(snap, first.due)
            except FsmError as exc:
                self.errors[f"timer {first.event.get('type')!r} in {state_label(snap.value)}: {exc}"] = None
                return
            yield Step(dict(first.event), nxt, max(first.due - now, 0.0)), max(first.due, now)


def _start(machine: Machine, context: Mapping[str, Any] | None, input: Any) -> Snapshot:
    snap, _ = machine.initial_transition(context, input=input)
    return snap


def _matcher(to: Any) -> Callable[[Snapshot], bool] | None:
    if to is None:
        return None
    if callable(to):
        return lambda snap: bool(to(snap))
    return lambda snap: snap.matches(to)


# -- shortest paths --------------------------------------------------------------------


@dataclass
class _Node:
    snapshot: Snapshot
    now: float
    parent: _Node | None
    step: Step | None
    depth: int


def _path_of(node: _Node, start: Snapshot) -> Path:
    steps: list[Step] = []
    cur: _Node | None = node
    while cur is not None and cur.step is not None:
        steps.append(cur.step)
        cur = cur.parent
    steps.reverse()
    return Path(node.snapshot, steps, start)


def explore(
    machine: Machine,
    *,
    events: EventSamples | None = None,
    context: Mapping[str, Any] | None = None,
    input: Any = None,
    key: Key = "value",
    to: Any = None,
    timers: bool = False,
    invocations: bool = True,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_states: int = DEFAULT_MAX_STATES,
    stop_at_first: bool = False,
) -> Exploration:
    """Breadth-first search from the initial snapshot: the shortest path to each key.

    See :func:`shortest_paths` for the parameters; this variant also reports how much
    was explored and whether a bound was hit. ``stop_at_first`` ends the search at the
    first path matching ``to``.
    """
    key_of = key_function(key)
    wanted = _matcher(to)
    explorer = _Explorer(machine, events, timers, invocations)
    start = _start(machine, context, input)
    root = _Node(start, 0.0, None, None, 0)
    seen = {_search_key(start, 0.0)}
    found: dict[Hashable, _Node] = {key_of(start): root}
    queue = deque([root])
    truncated = False
    while queue:
        if stop_at_first and wanted is not None and any(wanted(n.snapshot) for n in found.values()):
            break
        node = queue.popleft()
        if node.depth >= max_depth:
            if node.snapshot.status == ACTIVE:
                truncated = True
            continue
        for step, now in explorer.successors(node.snapshot, node.now):
            snap = step.snapshot
            skey = _search_key(snap, now)
            if skey in seen:
                continue
            if len(seen) >= max_states:
                truncated = True
                queue.clear()
                break
            seen.add(skey)
            child = _Node(snap, now, node, step, node.depth + 1)
            found.setdefault(key_of(snap), child)
            queue.append(child)
    paths = [_path_of(n, start) for n in found.values()]
    if wanted is not None:
        paths = [p for p in paths if wanted(p.state)]
    paths.sort(key=lambda p: p.weight)
    return Exploration(paths, len(seen), truncated, list(explorer.errors), list(explorer.enabled))


def shortest_paths(
    machine: Machine,
    *,
    events: EventSamples | None = None,
    context: Mapping[str, Any] | None = None,
    input: Any = None,
    key: Key = "value",
    to: Any = None,
    timers: bool = False,
    invocations: bool = True,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_states: int = DEFAULT_MAX_STATES,
) -> list[Path]:
    """The shortest path to every reachable state, fewest steps first.

    - ``events``: samples with payloads per event type, a list, or per type a callable
      ``snapshot -> samples``: ``{"PAY": [{"type": "PAY", "amount": 5}]}``;
    - ``context`` / ``input``: how the machine starts (``initial_transition``);
    - ``key``: what makes two snapshots "the same state" in the result: ``"value"``
      (default), ``"value+context"``, or a callable;
    - ``to``: keep only the paths to states matching this (``"checkout.paid"``, a state
      value dict, or a predicate on snapshots);
    - ``timers``: also let time pass (``after`` transitions, delayed events);
    - ``invocations``: also let running invoked services finish or fail;
    - ``max_depth`` / ``max_states``: bounds of the search (see :func:`explore` to know
      whether they were hit).

    The first path is the empty path to the initial state.
    """
    return explore(
        machine,
        events=events,
        context=context,
        input=input,
        key=key,
        to=to,
        timers=timers,
        invocations=invocations,
        max_depth=max_depth,
        max_states=max_states,
    ).paths


def shortest_path(machine: Machine, to: Any, **options: Any) -> Path | None:
    """The shortest path to the first state matching ``to`` (None if the search finds
    none); the search stops as soon as it is found. Options as :func:`shortest_paths`."""
    result = explore(machine, to=to, stop_at_first=True, **options)
    return result.paths[0] if result.paths else None


# -- simple paths ----------------------------------------------------------------------


def simple_paths(
    machine: Machine,
    *,
    events: EventSamples | None = None,
    context: Mapping[str, Any] | None = None,
    input: Any = None,
    key: Key = "value",
    to: Any = None,
    timers: bool = False,
    invocations: bool = True,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_paths: int = DEFAULT_MAX_PATHS,
) -> list[Path]:
    """Every path that never comes back to a state it has been in, to every state.

    "The same state" is decided by ``key``, as in XState's ``getSimplePaths``: with the
    default ``"value"``, a step that leaves the value unchanged (a self-transition, an
    ``assign`` only) revisits the state and is not part of any simple path. Paths are
    grouped by the state they reach, in the order states are first reached. Depth-first,
    bounded by ``max_depth`` steps per path and ``max_paths`` paths in total. Other
    parameters as :func:`shortest_paths`.
    """
    key_of = key_function(key)
    wanted = _matcher(to)
    explorer = _Explorer(machine, events, timers, invocations)
    start = _start(machine, context, input)
    groups: dict[Hashable, list[Path]] = {}
    count = 0
    on_path: set[Hashable] = set()
    trail: list[Step] = []

    def visit(snap: Snapshot, now: float) -> None:
        nonlocal count
        if count >= max_paths:
            return
        k = key_of(snap)
        groups.setdefault(k, []).append(Path(snap, list(trail), start))
        count += 1
        if len(trail) >= max_depth:
            return
        on_path.add(k)
        for step, later in explorer.successors(snap, now):
            if key_of(step.snapshot) in on_path:
                continue
            trail.append(step)
            visit(step.snapshot, later)
            trail.pop()
            if count >= max_paths:
                break
        on_path.discard(k)

    visit(start, 0.0)
    paths = [p for group in groups.values() for p in group]
    if wanted is not None:
        paths = [p for p in paths if wanted(p.state)]
    return paths


# -- replay ----------------------------------------------------------------------------

RunItem = Step | str | Mapping[str, Any]
Run = Path | Sequence[RunItem]


class _Runner:
    """Applies steps to snapshots with the pure API, keeping the clock (``now``)."""

    def __init__(self, machine: Machine, on_microstep: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.machine = machine
        self.on_microstep = on_microstep
        self.now = 0.0

    def send(self, snap: Snapshot, event: Any) -> Snapshot:
        nxt, _ = self.machine.transition(snap, event, now=self.now, on_microstep=self.on_microstep)
        return nxt

    def advance(self, snap: Snapshot, ms: float) -> Snapshot:
        """``Machine.advance`` with the microstep callback (which ``advance`` does not
        take), so coverage sees what timers do."""
        until = self.now + ms
        for _ in range(100_000):
            due = [t for t in snap.timers if t.due <= until]
            if not due or snap.status != ACTIVE:
                break
            first = min(due, key=lambda t: (t.due, t.seq))
            self.now = max(self.now, first.due)
            if first.to is not None:
                snap, _ = self.machine.fire(snap, first)
            else:
                snap = self.fire(snap, first)
        else:
            raise FsmError(f"more than 100000 timers fired before t={until} ms")
        self.now = until
        return snap

    def fire(self, snap: Snapshot, timer: Any) -> Snapshot:
        nxt, _ = self.machine.transition(
            snap, dict(timer.event), now=timer.due, timer=timer, on_microstep=self.on_microstep
        )
        return nxt

    def apply(self, snap: Snapshot, item: RunItem) -> Snapshot:
        if isinstance(item, Step):
            if item.delay is not None:
                return self.advance(snap, item.delay)
            return self.send(snap, item.event)
        if isinstance(item, Mapping) and "type" not in item and "advance" in item:
            return self.advance(snap, float(item["advance"]))
        if isinstance(item, Mapping) and "type" not in item and "event" in item:
            return self.send(snap, item["event"])
        return self.send(snap, item)


def _split_run(run: Run) -> tuple[Snapshot | None, Sequence[RunItem]]:
    if isinstance(run, Path):
        return run.start, run.steps
    return None, run


def replay(
    machine: Machine,
    run: Run,
    *,
    context: Mapping[str, Any] | None = None,
    input: Any = None,
) -> Snapshot:
    """Run a path, or a list of steps, from the initial snapshot; return the last snapshot.

    Items are events (``"GO"``, ``{"type": "PAY", "amount": 5}``), :class:`Step` objects
    (timer steps let time pass), ``{"advance": ms}``, or ``{"event": event}`` (the step
    format of :func:`fsm.testing.strategies.steps_for`). A :class:`Path` starts from
    its own ``start`` snapshot, so ``replay(machine, path) == path.state``.
    """
    start, items = _split_run(run)
    snap = start if start is not None else _start(machine, context, input)
    runner = _Runner(machine)
    for item in items:
        snap = runner.apply(snap, item)
    return snap


# -- coverage --------------------------------------------------------------------------


def coverable_states(machine: Machine) -> list[StateNode]:
    """The states coverage counts: every state but the root and history pseudo-states."""
    return [n for n in machine.model.nodes if n.parent is not None and n.type != "history"]


def coverable_transitions(machine: Machine) -> list[Transition]:
    """The transitions coverage counts, in document order: ``on``, ``after``, ``always``,
    ``onDone`` and invoke done / error transitions (not initial transitions, which are
    part of entering a state)."""
    out = [t for n in machine.model.nodes for t in all_transitions(n)]
    out.sort(key=lambda t: t.index)
    return out


def transition_label(t: Transition) -> str:
    """``#order.cart CHECKOUT [guard] -> #shipping`` for reports."""
    if t.event == "":
        event = "always"
    elif t.delay is not None:
        event = f"after {t.delay:g}" if isinstance(t.delay, float) else f"after {t.delay}"
    elif t.event and t.event.startswith("xstate.done.state."):
        event = "onDone"
    elif t.event and t.event.startswith("xstate.done.actor."):
        event = f"done({t.event.removeprefix('xstate.done.actor.')})"
    elif t.event and t.event.startswith("xstate.error.actor."):
        event = f"error({t.event.removeprefix('xstate.error.actor.')})"
    else:
        event = str(t.event)
    guard = f" [{t.guard.label()}]" if t.guard is not None else ""
    targets = ", ".join(f"#{n.id}" for n in t.targets) if t.targets else "(no target)"
    return f"#{t.source.id} {event}{guard} -> {targets}"


@dataclass
class Coverage:
    """Which states were active and which transitions were taken, over some runs.

    ``states`` maps each coverable state id to the number of microsteps after which it
    was active (transient states, left within the same macrostep, count too);
    ``transitions`` maps each coverable :class:`Transition` to how often it was taken.
    """

    machine: Machine
    states: dict[str, int]
    transitions: dict[Transition, int]
    runs: int = 0

    @classmethod
    def empty(cls, machine: Machine) -> Coverage:
        return cls(
            machine,
            {n.id: 0 for n in coverable_states(machine)},
            dict.fromkeys(coverable_transitions(machine), 0),
        )

    @property
    def covered_states(self) -> list[str]:
        return [s for s, n in self.states.items() if n]

    @property
    def uncovered_states(self) -> list[str]:
        return [s for s, n in self.states.items() if not n]

    @property
    def covered_transitions(self) -> list[Transition]:
        return [t for t, n in self.transitions.items() if n]

    @property
    def uncovered_transitions(self) -> list[Transition]:
        return [t for t, n in self.transitions.items() if not n]

    @property
    def state_ratio(self) -> float:
        return len(self.covered_states) / len(self.states) if self.states else 1.0

    @property
    def transition_ratio(self) -> float:
        return len(self.covered_transitions) / len(self.transitions) if self.transitions else 1.0

    def record(
        self,
        run: Run,
        *,
        context: Mapping[str, Any] | None = None,
        input: Any = None,
    ) -> Snapshot:
        """Replay one run (as :func:`replay`) and count what it covers; returns the last
        snapshot. A :class:`Path` starts with the context of its ``start`` snapshot."""
        start, items = _split_run(run)
        if start is not None:
            context = start.context
        pending: list[dict[str, Any]] = []
        runner = _Runner(self.machine, pending.append)
        snap, _ = self.machine.initial_transition(context, input=input, on_microstep=pending.append)
        if pending:
            self._count(pending, [])
        else:
            self._count_states(n.id for n in snap.nodes)
        for item in items:
            enabled = self._enabled(snap, item)
            pending.clear()
            snap = runner.apply(snap, item)
            self._count(pending, enabled)
        self.runs += 1
        return snap

    def _enabled(self, snap: Snapshot, item: RunItem) -> list[Transition]:
        """The transitions the item's event selects, found before the step so the first
        microstep maps to Transition objects exactly (guards included)."""
        if isinstance(item, Step):
            event: Any = None if item.delay is not None else item.event
        elif isinstance(item, Mapping) and "type" not in item:
            event = item.get("event")
        else:
            event = item
        if event is None:
            return []
        try:
            return self.machine.enabled_transitions(snap, event)
        except FsmError:
            return []

    def _count_states(self, ids: Iterable[str]) -> None:
        for state_id in ids:
            if state_id in self.states:
                self.states[state_id] += 1

    def _count(self, microsteps: list[dict[str, Any]], enabled: list[Transition]) -> None:
        for i, micro in enumerate(microsteps):
            self._count_states(micro["configuration"])
            for info in micro["transitions"]:
                t = self._resolve(info, enabled if i == 0 else [])
                if t is not None and t in self.transitions:
                    self.transitions[t] += 1

    def _resolve(self, info: Mapping[str, Any], enabled: list[Transition]) -> Transition | None:
        """Map a microstep's ``{"source", "event", "targets"}`` back to its Transition.

        Exact for the transitions selected by a step's own event (``enabled``). For later
        microsteps (eventless, raised and done events) the source, descriptor and targets
        are compared; when a state lists two transitions for the same event with the
        same targets (differing in guard or actions only), the first one is counted.
        """
        targets = list(info["targets"])

        def same(t: Transition) -> bool:
            return (
                t.source.id == info["source"]
                and t.event == info["event"]
                and [n.id for n in t.targets or ()] == targets
            )

        for t in enabled:
            if same(t):
                return t
        node = self.machine.model.by_id.get(info["source"])
        if node is None or info["event"] is None:
            return None
        pool = node.always if info["event"] == "" else node.transitions.get(info["event"], ())
        return next((t for t in pool if same(t)), None)

    def merge(self, other: Coverage) -> Coverage:
        """The union of two coverages of the same machine (counts added)."""
        if other.machine.model is not self.machine.model:
            raise ValueError("cannot merge coverage of two different machines")
        return Coverage(
            self.machine,
            {k: v + other.states.get(k, 0) for k, v in self.states.items()},
            {t: n + other.transitions.get(t, 0) for t, n in self.transitions.items()},
            self.runs + other.runs,
        )

    def summary(self, *, show_uncovered: bool = True) -> str:
        """Readable text: the two ratios, then what was never covered."""
        lines = [
            f"coverage of machine {self.machine.id!r} over {self.runs} run(s):",
            f"  states:      {len(self.covered_states)}/{len(self.states)} ({self.state_ratio:.1%})",
            f"  transitions: {len(self.covered_transitions)}/{len(self.transitions)} ({self.transition_ratio:.1%})",
        ]
        if show_uncovered and self.uncovered_states:
            lines.append("  states never active:")
            lines += [f"    #{s}" for s in self.uncovered_states]
        if show_uncovered and self.uncovered_transitions:
            lines.append("  transitions never taken:")
            lines += [f"    {transition_label(t)}  ({t.path})" for t in self.uncovered_transitions]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def coverage(
    machine: Machine,
    runs: Iterable[Run],
    *,
    context: Mapping[str, Any] | None = None,
    input: Any = None,
) -> Coverage:
    """State and transition coverage of ``runs`` (paths, or lists of events and steps as
    :func:`replay` takes them), each replayed from the initial snapshot."""
    result = Coverage.empty(machine)
    for run in runs:
        result.record(run, context=context, input=input)
    return result


# -- output for the CLI ----------------------------------------------------------------


def format_paths(paths: Iterable[Path], *, show_context: bool = False) -> str:
    """Paths as text, one block per state (for ``fsm paths FILE``)."""
    lines: list[str] = []
    for path in paths:
        header = state_label(path.state.value)
        if show_context:
            header += f"  context={_canon(path.state.context)}"
        if path.state.status != ACTIVE:
            header += f"  ({path.state.status})"
        lines.append(header)
        if not path.steps:
            lines.append("    (initial state)")
        for i, step in enumerate(path.steps, 1):
            lines.append(f"    {i}. {step.describe()}  -> {state_label(step.snapshot.value)}")
    return "\n".join(lines)


def format_exploration(result: Exploration, *, show_context: bool = False) -> str:
    """:func:`format_paths` plus what the search could not do: a note when a bound cut it
    short (so a missing state may still be reachable) and the steps that raised."""
    lines = [format_paths(result.paths, show_context=show_context)]
    if result.truncated:
        lines.append(
            f"note: the search stopped at a bound after {result.explored} distinct snapshots; "
            "states not listed may still be reachable (raise max_depth / max_states)"
        )
    for error in result.errors:
        lines.append(f"note: skipped a step that failed: {error}")
    return "\n".join(lines)


def paths_to_json(paths: Iterable[Path], *, include_context: bool = True) -> list[dict[str, Any]]:
    """Plain JSON data for ``fsm paths --json``: per path the state value (and context),
    and the steps with the event, the delay of timer steps and the value reached."""
    out = []
    for path in paths:
        item: dict[str, Any] = {"state": path.state.value, "status": path.state.status}
        if include_context:
            item["context"] = path.state.context
        steps = []
        for step in path.steps:
            data: dict[str, Any] = {"event": step.event, "state": step.snapshot.value}
            if step.delay is not None:
                data["delay"] = step.delay
            steps.append(data)
        item["steps"] = steps
        out.append(item)
    return out
