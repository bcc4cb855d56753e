"""Recorded macrosteps: the fast path of the step function.

Most of the work of a step is structural: which transitions are selected, which states
are exited and entered, in which order actions run. For a given configuration, event
type (and history memory) that structure depends only on the outcomes of the guards
evaluated along the way and on the types of the internal events the step raises. So the
slow path (the full SCXML algorithm in :mod:`fsm.semantics.algorithm`) records what it
did as a list of operations, and later steps replay them:

- structural work is skipped entirely;
- guards are evaluated again (against the current context and event) and so are actions
  (assignments, built-ins, effects) — everything that reads data;
- the recording is a trie: a guard (or an internal event's type) is a branch point, so
  each outcome combination is recorded once and replaying never evaluates a guard twice.

A replay that reaches an outcome not recorded yet, or anything unexpected, gives up and
the slow path runs from the untouched input snapshot (and records the new branch). The
conformance and property tests run with plans on, and a property test
(tests/test_properties.py) runs generated machines with repeated events both ways and
requires identical traces.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fsm.semantics import events
from fsm.semantics.snapshot import Effect

_new_effect = tuple.__new__

if TYPE_CHECKING:
    from fsm.semantics.algorithm import Step
    from fsm.semantics.snapshot import Configuration

# Operation codes. Each recorded operation is a tuple starting with its code.
OP_GUARD = 0  # (OP_GUARD, guard, outcome, ...)        branch point on the guard's result
OP_ACTIONS = 1  # (OP_ACTIONS, refs, state)
OP_STOP = 2  # (OP_STOP, child_id)
OP_STOP_ALL = 3  # (OP_STOP_ALL,)
OP_SPAWN = 4  # (OP_SPAWN, invoke_def)
OP_HISTORY = 5  # (OP_HISTORY, {history id: remembered states})
OP_DONE = 6  # (OP_DONE, final state, parent id)        raise xstate.done.state with output
OP_DONE_PARALLEL = 7  # (OP_DONE_PARALLEL, parallel id)
OP_FINISH = 8  # (OP_FINISH, completion state)           the machine reached a top-level final
OP_ERROR = 9  # (OP_ERROR,)                              unhandled xstate.error.actor event
OP_POP = 10  # (OP_POP, event type)                      branch point on the event's type
OP_MICRO = 11  # (OP_MICRO, microstep description)      for inspection hooks
OP_FAST = 12  # (OP_FAST, lowered actions)               OP_ACTIONS resolved at record time

# Lowered actions (OP_FAST items): (kind, a, b, c)
A_PLAIN = 0  # a custom action: (A_PLAIN, name, params, fn) -> an Effect
A_BUILTIN = 1  # (A_BUILTIN, builtin action, params, is_assign) -> resolved in the step
A_OTHER = 2  # (A_OTHER, (ref,), state) -> the general path (lists of implementations...)

BRANCHES = (OP_GUARD, OP_POP)
MAX_NODES = 4096  # per machine; past this, new paths are not recorded
#: Switch recording off (every step takes the slow path): for tests that compare both.
ENABLED = True


class End:
    __slots__ = ("config", "microsteps")

    def __init__(self, config: Configuration, microsteps: int) -> None:
        self.config = config
        self.microsteps = microsteps


class Node:
    """Straight-line operations, then either a branch on a guard / event type, or the end."""

    __slots__ = ("branch", "branches", "end", "guard_fn", "lean", "lean_ops", "ops", "static")

    def __init__(self, ops: tuple[tuple[Any, ...], ...]) -> None:
        self.ops = ops
        self.branch: tuple[Any, ...] | None = None
        # For a branch on a named guard implemented by a plain function: (fn, params).
        self.guard_fn: tuple[Any, Any] | None = None
        self.branches: dict[Any, Node] = {}
        self.end: End | None = None
        # Only the configuration changes (no guard, no action, no event raised): the
        # step is a lookup, and needs no working state at all.
        self.static = False
        # This node's operations when all of them are plain actions and assignments
        # (else None), flattened; see replay_lean.
        self.lean_ops: tuple[tuple[Any, ...], ...] | None = _lean_ops(ops)
        # On a root: every recorded path is lean (lean nodes, branches on plain guard
        # functions), so replay_lean can run the step without a Step.
        self.lean = False


class PlanCache:
    """Recorded macrosteps of one machine (its implementations included), by
    (configuration, event type, history memory)."""

    def __init__(self, impl: Any = None) -> None:
        self.roots: dict[Any, Node] = {}
        self.size = 0
        self._lock = threading.Lock()
        # The machine's implementations: recorded actions and guards are resolved
        # against them once, at record time, instead of at every replay.
        self.impl = impl

    @property
    def full(self) -> bool:
        return self.size >= MAX_NODES or not ENABLED

    def lookup(self, key: Any) -> Node | None:
        return self.roots.get(key)

    def insert(self, key: Any, ops: list[tuple[Any, ...]], end: End) -> None:
        """Add a recorded path. Paths with the same key agree up to their first
        differing branch outcome (the algorithm is deterministic), so the prefix is
        shared."""
        with self._lock:
            if self.full:
                return
            cuts = [i for i, op in enumerate(ops) if op[0] in BRANCHES]
            node = self.roots.get(key)
            lean = True
            if node is None:
                node = self._new(ops, 0, cuts[0] if cuts else len(ops))
                self.roots[key] = node
            else:
                lean = node.lean
            lean = lean and node.lean_ops is not None
            for cut in cuts:
                op = ops[cut]
                outcome = op[2] if op[0] == OP_GUARD else op[1]
                node.branch = op
                if op[0] == OP_GUARD:
                    node.guard_fn = self._guard_fn(op[1])
                child = node.branches.get(outcome)
                nxt = next((c for c in cuts if c > cut), len(ops))
                if child is None:
                    child = self._new(ops, cut + 1, nxt)
                    node.branches[outcome] = child
                lean = lean and node.guard_fn is not None and child.lean_ops is not None
                node = child
            node.end = end
            root = self.roots[key]
            root.static = root.end is not None and all(op[0] == OP_MICRO for op in root.ops)
            root.lean = lean

    def _new(self, ops: list[tuple[Any, ...]], start: int, stop: int) -> Node:
        self.size += 1
        return Node(tuple(self._lower(op) for op in ops[start:stop]))

    def _lower(self, op: tuple[Any, ...]) -> tuple[Any, ...]:
        if op[0] != OP_ACTIONS or self.impl is None:
            return op
        from fsm.actions import Assign, BuiltinAction

        refs, state = op[1], op[2]
        actions = self.impl.actions
        items: list[tuple[Any, ...]] = []
        for ref in refs:
            impl = actions.get(ref.name)
            if ref.name in self.impl.plain:
                items.append((A_PLAIN, ref.name, ref.params, impl))
            elif impl is None and ref.builtin is not None:
                items.append((A_BUILTIN, ref.builtin, ref.params or {}, isinstance(ref.builtin, Assign)))
            elif isinstance(impl, BuiltinAction):
                items.append((A_BUILTIN, impl, ref.params or {}, isinstance(impl, Assign)))
            else:
                items.append((A_OTHER, (ref,), state))
        return (OP_FAST, tuple(items))

    def _guard_fn(self, guard: Any) -> tuple[Any, Any] | None:
        from fsm.guards import Guard, Named

        if self.impl is None or type(guard) is not Named:
            return None
        fn = self.impl.guards.get(guard.name)
        if fn is None or isinstance(fn, Guard) or not callable(fn):
            return None
        return fn, guard.params


def _lean_ops(ops: tuple[tuple[Any, ...], ...]) -> tuple[tuple[Any, ...], ...] | None:
    out: list[tuple[Any, ...]] = []
    for op in ops:
        if op[0] == OP_FAST and all(item[0] == A_PLAIN or (item[0] == A_BUILTIN and item[3]) for item in op[1]):
            out.extend(op[1])
        elif op[0] != OP_MICRO:
            return None
    return tuple(out)


def replay_lean(
    root: Node, context: dict[str, Any], event: Mapping[str, Any], known: list[tuple[Any, bool]]
) -> tuple[End, dict[str, Any], list[Effect]] | None:
    """Replay a lean recording (``root.lean``): plain actions become effects, assignments
    update a local context, guards are plain functions. No :class:`Step` is built, which
    is most of the cost of a replay for the common guard + assign and entry/exit action
    steps. Guard outcomes go to ``known`` so that on a miss (None) the slow path does not
    call the guards again; exceptions propagate, and the caller runs the slow path."""
    node: Node | None = root
    effects: list[Effect] = []
    while node is not None:
        for kind, a, b, c in node.lean_ops:  # type: ignore[union-attr]
            if kind == A_PLAIN:
                effects.append(_new_effect(Effect, (a, b, context, event, False, c, ())))
            else:
                context = a.updated(context, event, b)
        end = node.end
        if end is not None:
            return end, context, effects
        fn, params = node.guard_fn  # type: ignore[misc]
        outcome = bool(fn(context, event, params))
        known.append((node.branch[1], outcome))  # type: ignore[index]
        node = node.branches.get(outcome)
    return None


def replay(step: Step, root: Node, event: Mapping[str, Any]) -> End | None:
    """Run a recorded macrostep on ``step``; None when the recording does not cover
    this case (the caller then runs the slow path on a fresh step)."""
    node: Node | None = root
    current = event
    effects = step.effects
    micro: list[dict[str, Any]] = []  # reported only if the whole recording applies
    while node is not None:
        for op in node.ops:
            code = op[0]
            if code == OP_FAST:
                for kind, a, b, c in op[1]:
                    if kind == A_PLAIN:
                        effects.append(_new_effect(Effect, (a, b, step.context, current, False, c, ())))
                    elif kind == A_BUILTIN:
                        step.event = current
                        a.resolve(step, b)
                        if c:
                            step.mutated = True
                    else:
                        step.run_actions(a, current, b)
            elif code == OP_ACTIONS:
                step.run_actions(op[1], current, op[2])
            elif code == OP_MICRO:
                if step.on_microstep is not None:
                    micro.append({"event": current, **op[1]})
            elif code == OP_STOP:
                step.stop_child(op[1], current)
            elif code == OP_SPAWN:
                step.spawn(op[1], current)
            elif code == OP_HISTORY:
                history = dict(step.history)
                history.update(op[1])
                step.history = history
            elif code == OP_DONE:
                state = op[1]
                output = step.resolve_output(state, current) if state.output is not None else None
                step.queue.append(events.done_state(op[2], output))
            elif code == OP_DONE_PARALLEL:
                step.queue.append(events.done_state(op[1]))
            elif code == OP_FINISH:
                step.status = "done"
                step.output = step.machine_output(current, op[1])
            elif code == OP_STOP_ALL:
                step.stop_all_children(current)
            elif code == OP_ERROR:
                step.status = "error"
                step.error = current.get("error")
            else:  # pragma: no cover - every code is handled above
                return None
        if node.end is not None:
            if step.queue:
                return None
            hook = step.on_microstep
            if hook is not None:
                for info in micro:
                    hook(info)
            return node.end
        branch = node.branch
        if branch is None:
            return None
        if branch[0] == OP_GUARD:
            fast = node.guard_fn
            if fast is not None:
                outcome: Any = bool(fast[0](step.context, current, fast[1]))
            else:
                outcome = step.evaluate(branch[1], current)
            # if the recording stops here, the slow path reuses these outcomes instead of
            # calling the guards again
            step.known.append((branch[1], outcome))
        else:
            if not step.queue:
                return None
            current = step.queue.popleft()
            outcome = current["type"]
        node = node.branches.get(outcome)
    return None
