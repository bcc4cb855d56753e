"""The statechart step: https://www.w3.org/TR/scxml/#AlgorithmforSCXMLInterpretation

Functions are named after the SCXML procedures they implement. Where XState v5 deviates
from SCXML, XState is followed (docs/semantics.md lists each case):

- transitions are selected by walking the active configuration from the root: a state's
  own transitions are considered only when none of its active descendants handles the
  event (XState ``transitionNode``), not per atomic state as in SCXML;
- the transition domain is the least common ancestor, compound or parallel
  (``getTransitionDomain``), and ``reenter: false`` is the default;
- entering a state runs its entry actions, then starts its invocations, then runs its
  initial transition's actions;
- the configuration keeps XState's insertion order, which decides the priority of
  eventless transitions across parallel regions;
- reaching a top-level final state runs the exit actions of every active state.

The step is pure: user guards and assignments are called, but side-effecting actions are
returned as :class:`Effect` values for a runtime to execute. An exception anywhere leaves
the input snapshot untouched (all work happens on copies).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fsm import guards as g
from fsm.actions import Assign, BuiltinAction
from fsm.errors import ExpressionError, InfiniteLoopError, StepError
from fsm.model.nodes import COMPOUND, FINAL, HISTORY, PARALLEL, ActionRef, InvokeDef, Model, StateNode, Transition
from fsm.semantics import events
from fsm.semantics.plans import (
    OP_ACTIONS,
    OP_DONE,
    OP_DONE_PARALLEL,
    OP_ERROR,
    OP_FINISH,
    OP_GUARD,
    OP_HISTORY,
    OP_MICRO,
    OP_POP,
    OP_SPAWN,
    OP_STOP,
    OP_STOP_ALL,
)
from fsm.semantics.snapshot import (
    ACTIVE,
    DONE,
    ERROR,
    Configuration,
    Effect,
    Snapshot,
    Timer,
    intern_configuration,
    matches_state,
    state_value,
)


class PlanMismatch(Exception):
    """A recorded plan does not cover this step; the slow path takes over."""


class Implementations:
    """The user-provided implementations a step may need (guards, assigns, delays)."""

    __slots__ = ("actions", "delays", "guards", "plain", "services")

    def __init__(
        self,
        actions: Mapping[str, Any] | None = None,
        guards: Mapping[str, Any] | None = None,
        delays: Mapping[str, Any] | None = None,
        services: Mapping[str, Any] | None = None,
    ) -> None:
        self.actions: Mapping[str, Any] = actions or {}
        self.guards: Mapping[str, Any] = guards or {}
        self.delays: Mapping[str, Any] = delays or {}
        self.services: Mapping[str, Any] = services or {}
        # Plain callables among the actions: the common case the step handles directly.
        self.plain: frozenset[str] = frozenset(
            name for name, impl in self.actions.items() if callable(impl) and not isinstance(impl, BuiltinAction)
        )


class Step:
    """The working state of one macrostep. Built from a snapshot, discarded afterwards.

    Timers and children are shared with the input snapshot until changed (copy on
    write), so an unchanged timer tuple stays the same object and the runtime can skip
    re-arming it.
    """

    __slots__ = (
        "cacheable",
        "children",
        "context",
        "covered",
        "domains",
        "effects",
        "error",
        "event",
        "history",
        "impl",
        "known",
        "microsteps",
        "model",
        "mutated",
        "nodes",
        "now",
        "on_microstep",
        "output",
        "queue",
        "rec",
        "recent",
        "replaying",
        "status",
        "timer_seq",
        "timers",
    )

    def __init__(
        self, model: Model, impl: Implementations, snapshot: Snapshot | None, now: float, *, replay: bool = False
    ) -> None:
        self.model = model
        self.impl = impl
        self.now = now
        # Recording (slow path) or replaying (fast path) a Plan: see fsm.semantics.plans.
        self.rec: list[tuple[Any, ...]] | None = None
        self.cacheable = True
        self.replaying = replay
        self.nodes: dict[StateNode, None]
        self.context: dict[str, Any]
        self.history: Mapping[str, tuple[StateNode, ...]]
        self.timers: tuple[Timer, ...] | list[Timer]
        self.children: Mapping[str, Mapping[str, Any]]
        self.output: Any
        self.error: Any
        if snapshot is None:
            self.nodes = {model.root: None}
            self.context = {}
            self.history = {}
            self.timers = ()
            self.children = {}
            self.timer_seq = 0
            self.status = ACTIVE
            self.output = None
            self.error = None
        else:
            self.context = snapshot[2]
            self.status = snapshot[3]
            self.output = snapshot[4]
            self.error = snapshot[5]
            self.history = snapshot[6]
            self.timers = snapshot[7]
            self.children = snapshot[8]
            self.timer_seq = snapshot[9]
            self.nodes = {} if replay else dict.fromkeys(snapshot.nodes)
        self.effects: list[Effect] = []
        self.queue: deque[dict[str, Any]] = deque()
        self.mutated = False
        self.microsteps = 0
        self.on_microstep: Callable[[dict[str, Any]], None] | None = None
        self.domains: dict[Transition, StateNode | None] = {}
        self.covered: set[StateNode] = set()
        # Guard outcomes already decided for this event (by a replay that ran out of
        # recording): the slow path takes them in order instead of calling guards twice.
        self.known: deque[tuple[g.Guard, bool]] = deque()
        self.event: Mapping[str, Any] = {}
        self.recent: deque[StateNode] | None = None if replay else deque(maxlen=16)

    # -- guards ------------------------------------------------------------------------

    def evaluate(self, guard: g.Guard, event: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> bool:
        if isinstance(guard, g.Named):
            impl = self.impl.guards.get(guard.name)
            if impl is None:
                raise StepError(f"guard {guard.name!r} is not provided; pass it with machine.provide(guards=...)")
            if isinstance(impl, g.Guard):
                return self.evaluate(impl, event, guard.params)
            return bool(impl(self.context, event, guard.params))
        if isinstance(guard, g.And):
            return all(self.evaluate(x, event, params) for x in guard.guards)
        if isinstance(guard, g.Or):
            return any(self.evaluate(x, event, params) for x in guard.guards)
        if isinstance(guard, g.Not):
            return not self.evaluate(guard.guard, event, params)
        if isinstance(guard, g.StateIn):
            # Depends on the configuration mid-step, which a replay does not track.
            if self.replaying:
                raise PlanMismatch("stateIn is decided by the slow path")
            self.cacheable = False
            state = guard.state
            if isinstance(state, str) and state.startswith("#"):
                node = self.model.by_id.get(state[1:])
                return node is not None and node in self.nodes
            return matches_state(state, state_value(self.model.root, tuple(self.nodes)))
        if isinstance(guard, g.Expr):
            return bool(guard.expression({"context": self.context, "event": event, "params": params or {}}))
        if isinstance(guard, g.Inline):
            return bool(guard.fn(self.context, event, params or {}))
        raise StepError(f"unknown guard {guard!r}")

    def decided(self, guard: g.Guard, event: Mapping[str, Any]) -> bool:
        """A top-level guard's outcome: known from the replay that preceded this slow
        path, else evaluated now."""
        known = self.known
        if known:
            first, outcome = known.popleft()
            if first is guard:
                return outcome
            known.clear()  # out of step (cannot happen for a deterministic step): evaluate
        return self.evaluate(guard, event)

    def first_enabled(self, node: StateNode, event: Mapping[str, Any]) -> list[Transition]:
        """XState ``StateNode.next``: the first candidate whose guard passes."""
        for t in node.candidates(event["type"]):
            guard = t.guard
            if guard is None:
                return [t]
            try:
                ok = self.decided(guard, event)
            except Exception as exc:
                raise StepError(
                    f"guard {guard.label()!r} failed in the transition for event {event['type']!r} "
                    f"in state #{node.id} ({t.path}): {exc}",
                    state_id=node.id,
                    event_type=event["type"],
                    cause=exc,
                ) from exc
            if self.rec is not None:
                self.rec.append((OP_GUARD, guard, ok, node, t))
            if ok:
                return [t]
        return []

    # -- selection ---------------------------------------------------------------------

    def select_transitions(self, event: Mapping[str, Any]) -> list[Transition]:
        """Walk the configuration from the root; a state's own transitions apply only when
        none of its active descendants handles the event."""
        etype = event["type"]
        root = self.model.root
        if etype not in root.subtree_events and not root.subtree_partial:
            return []  # nothing in the machine handles this event
        children: dict[StateNode, list[StateNode]] = {}
        for node in self.nodes:
            if node.parent is not None:
                children.setdefault(node.parent, []).append(node)

        def visit(node: StateNode) -> list[Transition]:
            if etype not in node.subtree_events and not node.subtree_partial:
                return []
            kids = children.get(node)
            if not kids:
                return self.first_enabled(node, event)
            inner: list[Transition] = []
            for kid in kids:
                inner.extend(visit(kid))
            return inner or self.first_enabled(node, event)

        return visit(self.model.root)

    def select_eventless_transitions(self, event: Mapping[str, Any]) -> list[Transition]:
        enabled: dict[Transition, None] = {}
        for atomic in [n for n in self.nodes if n.is_atomic]:
            for state in (atomic, *atomic.ancestors):
                if not state.always:
                    continue
                found = None
                for t in state.always:
                    if t.guard is None:
                        found = t
                        break
                    ok = self.decided(t.guard, event)
                    if self.rec is not None:
                        self.rec.append((OP_GUARD, t.guard, ok, None, t))
                    if ok:
                        found = t
                        break
                if found is not None:
                    enabled[found] = None
                    break
        return self.remove_conflicting_transitions(list(enabled))

    # -- SCXML procedures --------------------------------------------------------------

    def remove_conflicting_transitions(self, transitions: list[Transition]) -> list[Transition]:
        """SCXML removeConflictingTransitions: of two transitions whose exit sets
        intersect, the one from the descendant source wins, else the earlier one."""
        if len(transitions) < 2:
            return transitions
        exits = {t: set(self.exit_set([t])) for t in transitions}
        filtered: dict[Transition, None] = {}
        for t1 in transitions:
            preempted = False
            to_remove: list[Transition] = []
            for t2 in filtered:
                if exits[t1] & exits[t2]:
                    if t1.source.is_descendant_of(t2.source):
                        to_remove.append(t2)
                    else:
                        preempted = True
                        break
            if not preempted:
                for t in to_remove:
                    del filtered[t]
                filtered[t1] = None
        return list(filtered)

    def effective_targets(self, t: Transition) -> list[StateNode]:
        """Targets with history states replaced by what they remember (or their default)."""
        if not t.targets:
            return []
        out: dict[StateNode, None] = {}
        for node in t.targets:
            if node.type == HISTORY:
                remembered = self.history.get(node.id)
                if remembered is not None:
                    out.update(dict.fromkeys(remembered))
                elif node.history_default is not None:
                    out.update(dict.fromkeys(self.effective_targets(node.history_default)))
            else:
                out[node] = None
        return list(out)

    def transition_domain(self, t: Transition) -> StateNode | None:
        """SCXML getTransitionDomain with XState's rule: the least common ancestor
        (compound or parallel); the source itself for non-reentering transitions that
        stay inside it; None for a reentering transition with no common ancestor."""
        targets = self.effective_targets(t)
        source = t.source
        if not t.reenter and all(x is source or source in x.ancestors for x in targets):
            return source
        lca = find_lca([*targets, source])
        if lca is not None:
            return lca
        if t.reenter:
            return None
        return self.model.root

    def exit_set(self, transitions: Iterable[Transition]) -> list[StateNode]:
        out: dict[StateNode, None] = {}
        for t in transitions:
            if t.targets:
                domain = self.transition_domain(t)
                if t.reenter and t.source is domain and domain is not None:
                    out[domain] = None
                for node in self.nodes:
                    if node.is_descendant_of(domain):
                        out[node] = None
        return list(out)

    def entry_set(self, transitions: list[Transition]) -> tuple[dict[StateNode, None], set[StateNode]]:
        to_enter: dict[StateNode, None] = {}
        default_entry: set[StateNode] = set()
        self.covered = set()
        for t in transitions:
            domain = self.domains[t] if t in self.domains else self.transition_domain(t)
            for s in t.targets or ():
                if s.type != HISTORY and (t.source is not s or t.source is not domain or t.reenter):
                    self.enter(s, to_enter)
                    default_entry.add(s)
                self.add_descendant_states_to_enter(s, to_enter, default_entry)
            for s in self.effective_targets(t):
                ancestors = proper_ancestors(s, domain)
                if domain is not None and domain.type == PARALLEL:
                    ancestors.append(domain)
                reentrancy = None if (t.source.parent is None and t.reenter) else domain
                self.add_ancestor_states_to_enter(to_enter, default_entry, ancestors, reentrancy)
        return to_enter, default_entry

    def enter(self, state: StateNode, to_enter: dict[StateNode, None]) -> None:
        """Add to the entry set, remembering the state's ancestors as covered: "does the
        entry set hold a descendant of this region?" is then one set lookup."""
        to_enter[state] = None
        self.covered.update(state.ancestors)

    def add_descendant_states_to_enter(
        self, node: StateNode, to_enter: dict[StateNode, None], default_entry: set[StateNode]
    ) -> None:
        if node.type == HISTORY:
            parent = node.parent
            assert parent is not None
            remembered = self.history.get(node.id)
            if remembered is not None:
                for s in remembered:
                    self.enter(s, to_enter)
                    self.add_descendant_states_to_enter(s, to_enter, default_entry)
                for s in remembered:
                    self.add_ancestor_states_to_enter(to_enter, default_entry, proper_ancestors(s, parent), None)
            elif node.history_default is not None:
                default = node.history_default
                for s in default.targets or ():
                    self.enter(s, to_enter)
                    if default is parent.initial:
                        default_entry.add(parent)
                    self.add_descendant_states_to_enter(s, to_enter, default_entry)
                for s in default.targets or ():
                    self.add_ancestor_states_to_enter(to_enter, default_entry, proper_ancestors(s, parent), None)
        elif node.type == COMPOUND:
            assert node.initial is not None and node.initial.targets
            initial = node.initial.targets[0]
            if initial.type != HISTORY:
                self.enter(initial, to_enter)
                default_entry.add(initial)
            self.add_descendant_states_to_enter(initial, to_enter, default_entry)
            self.add_ancestor_states_to_enter(to_enter, default_entry, proper_ancestors(initial, node), None)
        elif node.type == PARALLEL:
            for child in node.children:
                if child not in self.covered:
                    self.enter(child, to_enter)
                    default_entry.add(child)
                    self.add_descendant_states_to_enter(child, to_enter, default_entry)

    def complete_entry_set(self, to_enter: dict[StateNode, None], default_entry: set[StateNode]) -> None:
        """Enter the ancestors an entered state would otherwise lack.

        When one transition of a microstep re-enters a state through history (its domain
        being that state itself) while another transition exits that state's ancestors,
        XState enters the state alone and leaves its ancestors out of its active states
        (docs/semantics.md, "Deviations"). fsm enters them again, completing parallel
        regions by default, so the configuration stays legal.
        """
        pending = list(to_enter)
        while pending:
            state = pending.pop()
            for anc in state.ancestors:
                if anc in self.nodes or anc in to_enter:
                    continue
                self.enter(anc, to_enter)
                pending.append(anc)
                if anc.type == PARALLEL:
                    for child in anc.children:
                        if child not in self.nodes and child not in self.covered and child not in to_enter:
                            self.enter(child, to_enter)
                            self.add_descendant_states_to_enter(child, to_enter, default_entry)

    def add_ancestor_states_to_enter(
        self,
        to_enter: dict[StateNode, None],
        default_entry: set[StateNode],
        ancestors: list[StateNode],
        reentrancy_domain: StateNode | None,
    ) -> None:
        for anc in ancestors:
            if anc.is_descendant_of(reentrancy_domain):
                self.enter(anc, to_enter)
            if anc.type == PARALLEL:
                for child in anc.children:
                    if child not in self.covered:
                        self.enter(child, to_enter)
                        self.add_descendant_states_to_enter(child, to_enter, default_entry)

    def exit_states(self, transitions: list[Transition], event: Mapping[str, Any]) -> None:
        to_exit = sorted(self.exit_set(transitions), key=_order, reverse=True)
        changed: dict[str, tuple[StateNode, ...]] | None = None
        for state in to_exit:
            for h in state.history_nodes:
                if h.history == "deep":
                    remembered = tuple(n for n in self.nodes if n.is_atomic and n.is_descendant_of(state))
                else:
                    remembered = tuple(n for n in self.nodes if n.parent is state)
                if changed is None:
                    changed = dict(self.history)
                changed[h.id] = remembered
        for state in to_exit:
            self.run_actions(state.exit, event, state)
            for inv in state.invoke:
                if self.rec is not None:
                    self.rec.append((OP_STOP, inv.id))
                self.stop_child(inv.id, event)
            del self.nodes[state]
        if changed is not None:
            if self.rec is not None:
                self.rec.append((OP_HISTORY, {k: v for k, v in changed.items() if self.history.get(k) is not v}))
            self.history = changed

    def enter_states(self, transitions: list[Transition], event: Mapping[str, Any], initial: bool) -> None:
        to_enter, default_entry = self.entry_set(transitions)
        self.complete_entry_set(to_enter, default_entry)
        if initial:
            default_entry.add(self.model.root)
        completed: set[StateNode] = set()
        for state in sorted(to_enter, key=_order):
            self.nodes[state] = None
            self.run_actions(state.entry, event, state)
            for inv in state.invoke:
                if self.rec is not None:
                    self.rec.append((OP_SPAWN, inv))
                self.spawn(inv, event)
            if state in default_entry and state.initial is not None:
                self.run_actions(state.initial.actions, event, state)
            if state.type != FINAL:
                continue
            parent = state.parent
            marker = parent if parent is not None and parent.type == PARALLEL else (parent.parent if parent else None)
            completion = marker or state
            if parent is not None and parent.type == COMPOUND:
                if self.rec is not None:
                    self.rec.append((OP_DONE, state, parent.id))
                output = self.resolve_output(state, event) if state.output is not None else None
                self.queue.append(events.done_state(parent.id, output))
            while (
                marker is not None
                and marker.type == PARALLEL
                and marker not in completed
                and self.in_final_state(marker)
            ):
                completed.add(marker)
                if self.rec is not None:
                    self.rec.append((OP_DONE_PARALLEL, marker.id))
                self.queue.append(events.done_state(marker.id))
                completion = marker
                marker = marker.parent
            if marker is not None:
                continue
            if self.rec is not None:
                self.rec.append((OP_FINISH, completion))
            self.status = DONE
            self.output = self.machine_output(event, completion)

    def in_final_state(self, node: StateNode) -> bool:
        if node.type == COMPOUND:
            return any(c.type == FINAL and c in self.nodes for c in node.children)
        if node.type == PARALLEL:
            return all(self.in_final_state(c) for c in node.children)
        return node.type == FINAL

    def resolve_output(self, node: StateNode, event: Mapping[str, Any]) -> Any:
        if node.output_fn is not None:
            return node.output_fn({"context": self.context, "event": event})
        return node.output

    def machine_output(self, event: Mapping[str, Any], completion: StateNode) -> Any:
        root = self.model.root
        if root.output is None:
            return None
        inner = (
            self.resolve_output(completion, event)
            if completion.output is not None and completion.parent is not None
            else None
        )
        return self.resolve_output(root, events.done_state(completion.id, inner))

    def microstep(self, transitions: list[Transition], event: Mapping[str, Any], initial: bool = False) -> bool:
        """SCXML microstep. Returns whether the snapshot changed (XState compares
        snapshot identity to decide whether eventless transitions are re-selected)."""
        if not transitions:
            return False
        self.microsteps += 1
        before_nodes = list(self.nodes)
        before_history = self.history
        self.mutated = False
        filtered = self.remove_conflicting_transitions(transitions)
        for t in filtered:
            if self.recent is not None:
                self.recent.append(t.source)
        # The domain is decided once, before exit states record history. XState computes
        # it again afterwards, which for an unrecorded history state of a parallel state
        # targeted from inside it leaves the parallel state out of the configuration
        # (docs/semantics.md, "Deviations"); deciding once keeps the configuration legal.
        self.domains = {t: self.transition_domain(t) for t in filtered}
        if not initial:
            self.exit_states(filtered, event)
        for t in filtered:
            self.run_actions(t.actions, event, t.source)
        self.enter_states(filtered, event, initial)
        if self.status == DONE:
            for state in sorted(self.nodes, key=_order, reverse=True):
                self.run_actions(state.exit, event, state)
        if self.on_microstep is not None or self.rec is not None:
            info = {
                "transitions": [
                    {"source": t.source.id, "event": t.event, "targets": [n.id for n in t.targets or ()]}
                    for t in filtered
                ],
                "configuration": [n.id for n in self.nodes],
            }
            if self.rec is not None:
                self.rec.append((OP_MICRO, info))
            if self.on_microstep is not None:
                self.on_microstep({"event": event, **info})
        if self.history is before_history and set(self.nodes) == set(before_nodes):
            # XState keeps the previous snapshot's configuration (and its order) when the
            # set of active states and the history are unchanged.
            if list(self.nodes) != before_nodes:
                self.nodes = dict.fromkeys(before_nodes)
            return self.mutated or self.status != ACTIVE
        return True

    def macrostep(self, event: Mapping[str, Any]) -> None:
        """Run-to-completion: the event's microstep, then eventless transitions and the
        internal queue until the machine settles (bounded by ``max_microsteps``)."""
        if event["type"] != events.INIT:
            transitions = self.select_transitions(event)
            if event["type"].startswith(events.ERROR_ACTOR_PREFIX) and not transitions:
                if self.rec is not None:
                    self.rec.append((OP_ERROR,))
                self.status = ERROR
                self.error = event.get("error")
                self.stop_all_children(event)
                return
            self.microstep(transitions, event)
        if self.recent is not None:
            self.recent.clear()  # a loop report names the states of the loop, not the event's
        select_eventless = True
        bound = self.model.max_microsteps
        iterations = 0
        current = event
        while self.status == ACTIVE:
            iterations += 1
            if iterations > bound:
                ids = list(dict.fromkeys(n.id for n in self.recent or ()))
                raise InfiniteLoopError(bound, ids, event["type"])
            enabled = self.select_eventless_transitions(current) if select_eventless else []
            had_eventless = bool(enabled)
            if not enabled:
                if not self.queue:
                    break
                current = self.queue.popleft()
                if self.rec is not None:
                    self.rec.append((OP_POP, current["type"]))
                enabled = self.select_transitions(current)
            changed = self.microstep(enabled, current)
            select_eventless = changed if had_eventless else True
        if self.status != ACTIVE:
            self.stop_all_children(current)

    # -- actions -----------------------------------------------------------------------

    def run_actions(self, refs: tuple[ActionRef, ...], event: Mapping[str, Any], state: StateNode) -> None:
        if self.rec is not None and refs:
            self.rec.append((OP_ACTIONS, refs, state))
        plain = self.impl.plain
        for ref in refs:
            if ref.name in plain:  # the common case: a custom action becomes an effect
                self.effects.append(
                    Effect(ref.name, ref.params, self.context, event, False, self.impl.actions[ref.name])
                )
                continue
            impl = self.impl.actions.get(ref.name)
            try:
                if impl is None and ref.builtin is not None:
                    self.resolve_builtin(ref.builtin, ref.params, event)
                else:
                    self.resolve_impl(ref.name, impl, ref.params, event)
            except StepError:
                raise
            except Exception as exc:
                raise StepError(
                    f"action {ref.name!r} failed in state #{state.id} while processing event "
                    f"{event.get('type')!r} ({ref.path}): {exc}",
                    state_id=state.id,
                    event_type=event.get("type"),
                    cause=exc,
                ) from exc

    def resolve_impl(
        self, name: str, impl: Any, params: Any, event: Mapping[str, Any], path: tuple[int, ...] = ()
    ) -> None:
        if isinstance(impl, BuiltinAction):
            self.resolve_builtin(impl, params, event)
        elif isinstance(impl, (list, tuple)):
            for index, item in enumerate(impl):
                if isinstance(item, str):
                    self.resolve_impl(item, self.impl.actions.get(item), params, event)
                else:
                    self.resolve_impl(name, item, params, event, (*path, index))
        else:
            self.effects.append(Effect(name, params, self.context, event, False, impl, path))

    def resolve_builtin(self, action: BuiltinAction, params: Any, event: Mapping[str, Any]) -> None:
        self.event = event
        action.resolve(self, params or {})
        if isinstance(action, Assign):
            self.mutated = True

    # ActionScope protocol (used by fsm.actions)

    def assign(self, updates: Mapping[str, Any]) -> None:
        # A new dict every time: the input snapshot's context must stay as it was.
        self.context = {**self.context, **updates}

    def raise_internal(self, event: dict[str, Any]) -> None:
        self.queue.append(events.normalize(event))

    def schedule(self, event: dict[str, Any], delay: Any, send_id: str | None, to: str | None) -> None:
        ms = self.resolve_delay(delay)
        event = events.normalize(event)
        if ms is None:
            # XState: a delay that does not resolve to a number raises immediately. That
            # changes the step's structure, so such a step is not replayed from a plan.
            if self.replaying:
                raise PlanMismatch("a delay did not resolve to a number")
            self.cacheable = False
            if to is None:
                self.queue.append(event)
            else:
                self.effects.append(
                    Effect("xstate.sendTo", {"to": to, "event": event, "id": send_id}, self.context, self.event, True)
                )
            return
        timer_id = send_id if send_id is not None else f"xstate.timer.{self.timer_seq}"
        self.timers = [t for t in self.timers if t.id != timer_id]
        timer = Timer(timer_id, event, self.now + ms, self.timer_seq, to)
        self.timer_seq += 1
        self.timers.append(timer)
        params = timer.to_dict() | {"delay": ms}
        if isinstance(delay, str):
            params["delay_name"] = delay  # lets a replay reuse the value a delay function gave
        self.effects.append(Effect("xstate.schedule", params, self.context, self.event, True))

    def resolve_delay(self, delay: Any) -> float | None:
        if isinstance(delay, str):
            impl = self.impl.delays.get(delay)
            if impl is None:
                raise StepError(f"delay {delay!r} is not provided; pass it with machine.provide(delays=...)")
            delay = impl(self.context, self.event, {}) if callable(impl) else impl
        if isinstance(delay, bool) or not isinstance(delay, (int, float)):
            return None
        return float(delay)

    def cancel(self, send_id: str) -> None:
        if not any(t.id == send_id for t in self.timers):
            return
        self.timers = [t for t in self.timers if t.id != send_id]
        self.effects.append(Effect("xstate.cancel", {"id": send_id}, self.context, self.event, True))

    def effect(self, type_: str, params: dict[str, Any]) -> None:
        self.effects.append(Effect(type_, params, self.context, self.event, True))

    def stop_child(self, child_id: str, event: Mapping[str, Any] | None = None) -> None:
        if event is not None:
            self.event = event
        self.mutated = True
        if child_id in self.children:
            self.children = {k: v for k, v in self.children.items() if k != child_id}
            self.effects.append(Effect("xstate.stopChild", {"id": child_id}, self.context, self.event, True))

    def spawn(self, inv: InvokeDef, event: Mapping[str, Any]) -> None:
        self.mutated = True
        try:
            value = inv.input_fn({"context": self.context, "event": event}) if inv.input_fn else inv.input
        except ExpressionError as exc:
            raise StepError(f"invoke {inv.id!r} input ({inv.path}): {exc}", cause=exc) from exc
        self.children = {**self.children, inv.id: {"src": inv.src, "input": value}}
        self.effects.append(
            Effect("xstate.spawnChild", {"id": inv.id, "src": inv.src, "input": value}, self.context, event, True)
        )

    def stop_all_children(self, event: Mapping[str, Any]) -> None:
        if self.rec is not None:
            self.rec.append((OP_STOP_ALL,))
        self.event = event
        for child_id in list(self.children):
            self.stop_child(child_id)

    # -- result ------------------------------------------------------------------------

    def snapshot(self, machine: Any, config: Configuration | None = None) -> Snapshot:
        if config is None:
            config = intern_configuration(self.model, tuple(self.nodes))
        return Snapshot.make(
            machine,
            config,
            self.context,
            self.status,
            self.output,
            self.error,
            self.history,
            self.timers if type(self.timers) is tuple else tuple(self.timers),
            self.children,
            self.timer_seq,
        )


def _order(node: StateNode) -> int:
    return node.order


def proper_ancestors(node: StateNode, upto: StateNode | None) -> list[StateNode]:
    """Ancestors of ``node``, nearest first, stopping before ``upto`` (all if None)."""
    if upto is node:
        return []
    out = []
    for anc in node.ancestors:
        if anc is upto:
            break
        out.append(anc)
    return out


def find_lca(nodes: list[StateNode]) -> StateNode | None:
    head, tail = nodes[0], nodes[1:]
    for anc in head.ancestors:
        if all(anc in n.ancestors for n in tail):
            return anc
    return None


def initial_targets(root: StateNode) -> tuple[StateNode, ...]:
    """XState ``getInitialStateNodes``: the root and its default descendants."""
    out: dict[StateNode, None] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if node in out:
            continue
        out[node] = None
        if node.type == COMPOUND and node.initial is not None and node.initial.targets:
            stack.append(node.initial.targets[0])
        elif node.type == PARALLEL:
            stack.extend(reversed(node.children))
    return tuple(out)


def initial_step(
    model: Model,
    impl: Implementations,
    context: dict[str, Any],
    now: float,
    input_: Any = None,
    on_microstep: Callable[[dict[str, Any]], None] | None = None,
    record: bool = False,
) -> Step:
    step = Step(model, impl, None, now)
    step.context = context
    step.on_microstep = on_microstep
    if record:
        step.rec = []
    event: dict[str, Any] = {"type": events.INIT}
    if input_ is not None:
        event["input"] = input_
    start = Transition(model.root, None, initial_targets(model.root), None, (), True, "")
    step.microstep([start], event, initial=True)
    step.macrostep(event)
    return step
