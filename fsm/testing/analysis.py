"""Static analysis of a machine: problems visible in its structure, before it ever runs.

A definition can be valid (it loads, every target resolves) and still be wrong: a state
nobody can enter, a state nobody can leave, an event that is raised but handled nowhere,
an ``onDone`` that waits for a final state that does not exist, a transition that an
earlier unguarded one always wins over. :func:`analyze` finds these by looking at the
compiled model only. Guards are ignored (any guard may pass), so every finding is a
certainty about the structure, never a guess about the data: an unreachable state is
unreachable whatever the context, which is what makes the findings safe to turn into
errors (``fsm validate --strict``).

Findings are warnings, not definition errors: XState loads all of these machines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fsm.actions import BuiltinAction, Raise
from fsm.machine import Machine
from fsm.model.nodes import (
    ATOMIC,
    COMPOUND,
    FINAL,
    HISTORY,
    PARALLEL,
    ActionRef,
    StateNode,
    Transition,
    matches_descriptor,
)

UNREACHABLE = "unreachable"
DEAD_END = "dead_end"
UNHANDLED_EVENT = "unhandled_event"
NEVER_MATCHES = "never_matches"
SHADOWED = "shadowed"
AMBIGUOUS_TARGET = "ambiguous_target"
KINDS = (UNREACHABLE, DEAD_END, UNHANDLED_EVENT, NEVER_MATCHES, SHADOWED, AMBIGUOUS_TARGET)

INTERNAL_PREFIX = "xstate."


@dataclass(frozen=True)
class Finding:
    """One problem: its ``kind`` (one of :data:`KINDS`), the state it is about (None for
    machine-wide findings), a message that says what to fix, and the JSON path of the
    definition part concerned (``states.a.on.GO[1]``; ``""`` is the root)."""

    kind: str
    state_id: str | None
    message: str
    path: str

    def __str__(self) -> str:
        return f"{self.path or '<root>'}: {self.message} [{self.kind}]"


# -- helpers shared with paths, strategies and model-based testing -----------------------


def event_types(machine: Machine) -> list[str]:
    """The event types a machine names in its ``on`` descriptors, in document order.

    Wildcards (``*``, ``order.*``) and XState's internal ``xstate.*`` events are left
    out: they are not events a caller sends by name. This is the default event alphabet
    of path generation, the ``events`` strategy and model-based tests.
    """
    seen: dict[str, None] = {}
    for node in machine.model.nodes:
        for descriptor in node.transitions:
            if "*" in descriptor or descriptor.startswith(INTERNAL_PREFIX):
                continue
            seen[descriptor] = None
    return list(seen)


def handles(machine: Machine, event_type: str) -> bool:
    """Does some state of the machine have a transition for this event type (wildcards
    included, guards ignored)?"""
    return any(node.candidates(event_type) for node in machine.model.nodes)


def all_transitions(node: StateNode) -> list[Transition]:
    """Every transition leaving ``node`` that an event can take: ``on``, ``after``,
    ``onDone``, invoke ``onDone`` / ``onError`` and ``always`` (not ``initial``, which is
    part of entering the state, nor history defaults)."""
    out = [t for ts in node.transitions.values() for t in ts]
    out.extend(node.always)
    return out


def reachable_states(machine: Machine) -> set[StateNode]:
    """States that some sequence of transitions can make active, guards ignored.

    Starts from the initial configuration and follows every transition target, the
    default entry of compound states, every region of a parallel state, the default of a
    history state, and the done transitions of states that are reached. A history state
    that remembers a configuration only restores states that were active before, so it
    adds nothing here.
    """
    reached: set[StateNode] = set()
    work: list[StateNode] = []

    def enter(node: StateNode) -> None:
        if node.type == HISTORY:
            default = node.history_default
            parent = node.parent
            if default is not None and default.targets:
                for target in default.targets:
                    enter(target)
            elif parent is not None:
                enter(parent)
            return
        if node in reached:
            return
        reached.add(node)
        work.append(node)
        for anc in node.ancestors:
            if anc not in reached:
                reached.add(anc)
                work.append(anc)
            if anc.type == PARALLEL:
                for region in anc.children:
                    if region is not node and region not in node.ancestors:
                        enter(region)
        if node.type == COMPOUND and node.initial is not None and node.initial.targets:
            enter(node.initial.targets[0])
        elif node.type == PARALLEL:
            for region in node.children:
                enter(region)

    enter(machine.model.root)
    while work:
        node = work.pop()
        for t in all_transitions(node):
            for target in t.targets or ():
                enter(target)
    return reached


def _can_complete(node: StateNode) -> bool:
    """Can this state ever be "done" (its ``onDone`` raised)? A compound state needs a
    final child; a parallel state needs every region to be able to complete."""
    if node.type == FINAL:
        return True
    if node.type == COMPOUND:
        return any(c.type == FINAL for c in node.children)
    if node.type == PARALLEL:
        return all(_can_complete(c) for c in node.children)
    return False


def _action_refs(node: StateNode) -> Iterator[ActionRef]:
    yield from node.entry
    yield from node.exit
    if node.initial is not None:
        yield from node.initial.actions
    for t in all_transitions(node):
        yield from t.actions


def _constant_event_type(action: Any) -> str | None:
    """The event type a ``raise`` always raises, when it is a constant (not computed)."""
    if not isinstance(action, Raise):
        return None
    value = action.event
    if value.fn is not None or value.expr is not None:
        return None
    event = value.constant
    kind = event.get("type") if isinstance(event, dict) else None
    return kind if isinstance(kind, str) else None


def raised_events(machine: Machine) -> list[tuple[str, StateNode | None, str]]:
    """``(event type, state, JSON path)`` of every constant event the machine raises to
    itself: ``raise`` actions in the definition and ``fsm.raise_event(...)`` given with
    ``provide`` (state None, path naming the implementation). The raises fsm generates
    for ``after`` are not included."""
    out: list[tuple[str, StateNode | None, str]] = []
    for node in machine.model.nodes:
        for ref in _action_refs(node):
            if ref.name == "xstate.raise":
                continue  # the builder's own timer for `after`
            impl = machine.impl.actions.get(ref.name)
            if impl is None:
                kind = _constant_event_type(ref.builtin)
                if kind is not None:
                    out.append((kind, node, ref.path))
    for name, impl in machine.impl.actions.items():
        items = impl if isinstance(impl, (list, tuple)) else [impl]
        for item in items:
            if isinstance(item, BuiltinAction):
                kind = _constant_event_type(item)
                if kind is not None:
                    out.append((kind, None, f"implementation {name!r}"))
    return out


def _internal_events(machine: Machine) -> set[str]:
    """The ``xstate.*`` events this machine can generate for itself."""
    out: set[str] = set()
    for node in machine.model.nodes:
        if node.type in (COMPOUND, PARALLEL) and _can_complete(node):
            out.add(f"xstate.done.state.{node.id}")
        for inv in node.invoke:
            out.update((f"xstate.done.actor.{inv.id}", f"xstate.error.actor.{inv.id}", f"xstate.snapshot.{inv.id}"))
        for t in node.after:
            if t.event is not None:
                out.add(t.event)
    return out


# -- the analysis -----------------------------------------------------------------------


def analyze(machine: Machine, *, events: Iterable[str] | None = None) -> list[Finding]:
    """Every structural problem of ``machine``, as warnings.

    ``events``: the event types your program sends to the machine, when you know them
    all. Each one that no state handles is reported, and then so is every ``on``
    descriptor that none of them (nor any event the machine raises itself) can match.

    Kinds of finding:

    - ``unreachable``: no sequence of transitions enters the state (guards ignored);
      only the outermost unreachable state of a subtree is reported;
    - ``dead_end``: a reachable, non-final atomic state that neither it nor any ancestor
      has a transition out of (no ``on`` target, ``after``, ``always``, done or error
      transition), so the machine, or that parallel region, is stuck there forever;
    - ``unhandled_event``: an event raised by the machine (or listed in ``events``)
      that no state handles, not even with a wildcard;
    - ``never_matches``: a descriptor no event can match: an ``onDone`` of a state with
      no final child, an ``xstate.*`` event the machine never generates, or (with
      ``events``) a descriptor matching none of the listed or raised events;
    - ``shadowed``: a transition listed after an unguarded one for the same event in
      the same state; the unguarded one is always taken first;
    - ``ambiguous_target``: a target ``#a.b`` that, as in XState, means the child ``b``
      of the state with id ``a``, while another state has the id ``a.b``.
    """
    known = list(events) if events is not None else None
    findings: list[Finding] = []
    findings.extend(_unreachable(machine))
    findings.extend(_dead_ends(machine))
    findings.extend(_unhandled(machine, known))
    findings.extend(_never_matching(machine, known))
    findings.extend(_shadowed(machine))
    findings.extend(Finding(AMBIGUOUS_TARGET, None, w.message, w.path) for w in machine.model.warnings)
    order = {node.id: node.order for node in machine.model.nodes}
    findings.sort(key=lambda f: (order.get(f.state_id or "", -1), KINDS.index(f.kind)))
    return findings


def _unreachable(machine: Machine) -> list[Finding]:
    reached = reachable_states(machine)
    out = []
    for node in machine.model.nodes:
        if node.type == HISTORY or node in reached:
            continue
        if node.parent is not None and node.parent not in reached:
            continue  # reported with its ancestor
        inside = sum(1 for n in machine.model.nodes if node in n.ancestors and n.type != HISTORY)
        also = f" (nor its {inside} descendant state(s))" if inside else ""
        out.append(
            Finding(
                UNREACHABLE,
                node.id,
                f"state #{node.id}{also} can never be entered: no transition, initial state or history "
                "default leads to it from the initial state; add a transition to it, or remove it",
                node.json_path,
            )
        )
    return out


def _dead_ends(machine: Machine) -> list[Finding]:
    reached = reachable_states(machine)
    out = []
    for node in machine.model.nodes:
        if node.type != ATOMIC or node not in reached:
            continue
        if any(_leaves(t, node) for owner in (node, *node.ancestors) for t in all_transitions(owner)):
            continue
        where = ""
        region = next((a for a in node.ancestors if a.parent is not None and a.parent.type == PARALLEL), None)
        if region is not None:
            where = f" (its region #{region.id} is stuck, so #{region.parent.id} never completes)"  # type: ignore[union-attr]
        out.append(
            Finding(
                DEAD_END,
                node.id,
                f"state #{node.id} has no way out and is not final{where}; add a transition out of it "
                'or mark it "type": "final"',
                node.json_path,
            )
        )
    return out


def _leaves(t: Transition, node: StateNode) -> bool:
    return any(target is not node for target in t.targets or ())


def _unhandled(machine: Machine, known: list[str] | None) -> list[Finding]:
    out = []
    reported: set[str] = set()
    for kind, node, path in raised_events(machine):
        if kind in reported or handles(machine, kind):
            continue
        reported.add(kind)
        where = f"in #{node.id}" if node is not None else f"by {path}"
        out.append(
            Finding(
                UNHANDLED_EVENT,
                node.id if node is not None else None,
                f"event {kind!r} is raised {where} but no state handles it, so it is silently dropped; "
                "add a transition for it or fix the event name",
                path if node is not None else "",
            )
        )
    for kind in known or ():
        if kind in reported or handles(machine, kind):
            continue
        reported.add(kind)
        out.append(
            Finding(
                UNHANDLED_EVENT,
                None,
                f"event {kind!r} is sent by the program but no state handles it, so it is always ignored",
                "",
            )
        )
    return out


def _never_matching(machine: Machine, known: list[str] | None) -> list[Finding]:
    internal = _internal_events(machine)
    raised = {kind for kind, _, _ in raised_events(machine)}
    possible = internal | raised | set(known or ())
    out = []
    for node in machine.model.nodes:
        for descriptor, transitions in node.transitions.items():
            if not transitions:
                continue
            path = transitions[0].path
            if descriptor == f"xstate.done.state.{node.id}":
                if not _can_complete(node):
                    reason = (
                        "it has no final child state"
                        if node.type == COMPOUND
                        else "not every region can reach a final state"
                        if node.type == PARALLEL
                        else "it has no child states"
                    )
                    out.append(
                        Finding(
                            NEVER_MATCHES,
                            node.id,
                            f"onDone of #{node.id} can never be taken: {reason}",
                            _descriptor_path(path),
                        )
                    )
                continue
            if descriptor.startswith(INTERNAL_PREFIX) or descriptor == "xstate.*":
                if not any(matches_descriptor(e, descriptor) for e in internal | raised):
                    out.append(
                        Finding(
                            NEVER_MATCHES,
                            node.id,
                            f"descriptor {descriptor!r} in #{node.id} matches no event this machine generates "
                            "(xstate.* events are internal: done, error and timer events of existing states, "
                            "invocations and delays)",
                            _descriptor_path(path),
                        )
                    )
                continue
            if known is not None and descriptor != "*" and not any(matches_descriptor(e, descriptor) for e in possible):
                out.append(
                    Finding(
                        NEVER_MATCHES,
                        node.id,
                        f"descriptor {descriptor!r} in #{node.id} matches none of the events the program "
                        "sends or the machine raises",
                        _descriptor_path(path),
                    )
                )
    return out


def _descriptor_path(transition_path: str) -> str:
    """``states.a.on.GO[1]`` -> ``states.a.on.GO`` (the descriptor, not one transition)."""
    return re.sub(r"\[\d+\]$", "", transition_path)


def _shadowed(machine: Machine) -> list[Finding]:
    out = []
    for node in machine.model.nodes:
        lists: list[tuple[str, list[Transition]]] = list(node.transitions.items())
        if node.always:
            lists.append(("always", list(node.always)))
        for descriptor, transitions in lists:
            winner = next((t for t in transitions if t.guard is None), None)
            if winner is None:
                continue
            label = "eventless (always)" if descriptor == "always" else repr(descriptor)
            for t in transitions[transitions.index(winner) + 1 :]:
                out.append(
                    Finding(
                        SHADOWED,
                        node.id,
                        f"the {label} transition at {t.path} in #{node.id} can never be taken: the unguarded "
                        f"transition before it ({winner.path}) always wins; reorder them or add a guard",
                        t.path,
                    )
                )
    return out


def format_findings(findings: Iterable[Finding], source: str | None = None) -> str:
    """The findings as readable text, one warning per line (for ``fsm validate --strict``)."""
    items = list(findings)
    prefix = f"{source}: " if source else ""
    if not items:
        return f"{prefix}no problems found"
    lines = [f"{prefix}warning: {f}" for f in items]
    lines.append(f"{prefix}{len(items)} warning(s)")
    return "\n".join(lines)


def findings_to_json(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    """Plain JSON data for ``--json`` output."""
    return [{"kind": f.kind, "state": f.state_id, "message": f.message, "path": f.path} for f in findings]
