"""Compile a (schema-valid) definition dict into the immutable model.

This is the second validation layer: everything the JSON Schema cannot express (targets
that do not resolve, ``initial`` naming no child, duplicate ids, misplaced history
states, illegal multi-targets, bad delays, expressions that are refused) is collected
here, ALL at once, each as a :class:`~fsm.errors.Problem` naming its JSON path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from fsm import actions as builtin_actions
from fsm import guards as guard_mod
from fsm.errors import DefinitionError, ExpressionError, Problem, format_path
from fsm.expressions import compile_value
from fsm.model.nodes import (
    ATOMIC,
    COMPOUND,
    FINAL,
    HISTORY,
    PARALLEL,
    ActionRef,
    InvokeDef,
    Model,
    StateNode,
    Transition,
)

DEFAULT_MAX_MICROSTEPS = 10_000
DEFAULT_MACHINE_ID = "(machine)"

Pointer = tuple[str | int, ...]


class _TargetError(Exception):
    pass


def js_number(text: str) -> float | None:
    """``+text`` as JavaScript computes it for ``after`` keys (None when NaN)."""
    s = text.strip()
    if s == "":
        return 0.0
    try:
        if re.fullmatch(r"0[xX][0-9a-fA-F]+", s):
            return float(int(s, 16))
        if re.fullmatch(r"0[bB][01]+", s):
            return float(int(s, 2))
        if re.fullmatch(r"0[oO][0-7]+", s):
            return float(int(s, 8))
        if re.fullmatch(r"[+-]?(Infinity|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)", s):
            return float(s.replace("Infinity", "inf"))
    except ValueError:
        return None
    return None


def js_number_str(x: float) -> str:
    """Format a number as JavaScript's ``String(x)`` does for the values delays take."""
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == int(x) and abs(x) < 1e21:
        return str(int(x))
    return repr(x)


def split_path(text: str) -> list[str]:
    """Split a state path on ``.``, honouring ``\\.`` escapes as XState does."""
    parts: list[str] = []
    segment = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            segment += text[i + 1]
            i += 2
            continue
        if ch == ".":
            parts.append(segment)
            segment = ""
        else:
            segment += ch
        i += 1
    parts.append(segment)
    return parts


class Builder:
    def __init__(self, definition: dict[str, Any], max_microsteps: int | None) -> None:
        self.definition = definition
        self.problems: list[Problem] = []
        self.nodes: list[StateNode] = []
        self.by_id: dict[str, StateNode] = {}
        self.configs: dict[StateNode, dict[str, Any]] = {}
        self.pointers: dict[StateNode, Pointer] = {}
        self.references: dict[tuple[str, str], list[str]] = {}
        self.warnings: list[Problem] = []
        options = definition.get("options") or {}
        self.max_microsteps = int(max_microsteps or options.get("max_microsteps") or DEFAULT_MAX_MICROSTEPS)

    # -- problems ---------------------------------------------------------------------

    def problem(self, pointer: Pointer, message: str) -> None:
        self.problems.append(Problem(format_path(pointer), message, pointer))

    def refer(self, kind: str, name: str, pointer: Pointer) -> None:
        self.references.setdefault((kind, name), []).append(format_path(pointer) or "<root>")

    # -- pass 1: the node tree, in document order ---------------------------------------

    def build(self) -> Model:
        root_id = self.definition.get("id") or DEFAULT_MACHINE_ID
        stack: list[tuple[str, dict[str, Any], StateNode | None, Pointer]] = [(root_id, self.definition, None, ())]
        while stack:
            key, config, parent, pointer = stack.pop()
            node = self.make_node(key, config, parent, pointer)
            children = list((config.get("states") or {}).items())
            for child_key, child_config in reversed(children):
                stack.append((child_key, child_config, node, (*pointer, "states", child_key)))
        for node in self.nodes:
            kids = [n for n in node.states.values()]
            node.children = tuple(n for n in kids if n.type != HISTORY)
            node.history_nodes = tuple(n for n in kids if n.type == HISTORY)
        for node in self.nodes:
            self.check_node(node)
        for node in self.nodes:
            self.link_node(node)
        if self.problems:
            raise DefinitionError(self.problems)
        root = self.nodes[0]
        for index, t in enumerate(t for n in self.nodes for t in _all_transitions(n)):
            t.index = index
        for node in reversed(self.nodes):  # children before parents
            events = set(node.transitions)
            partial = any("*" in d for d in node.transitions)
            for child in node.states.values():
                events |= child.subtree_events
                partial = partial or child.subtree_partial
            node.subtree_events = frozenset(events)
            node.subtree_partial = partial
        context = self.definition.get("context") or {}
        return Model(
            root=root,
            nodes=self.nodes,
            by_id=self.by_id,
            definition=self.definition,
            context=context,
            max_microsteps=self.max_microsteps,
            references=self.references,
            warnings=self.warnings,
        )

    def make_node(self, key: str, config: dict[str, Any], parent: StateNode | None, pointer: Pointer) -> StateNode:
        if parent is None:
            node_id = key
        else:
            node_id = config.get("id") or ".".join([self.nodes[0].id, *parent.path, key])
        node = StateNode(key, node_id, parent, len(self.nodes), format_path(pointer))
        node.ancestors = (parent, *parent.ancestors) if parent is not None else ()
        if node_id in self.by_id:
            other = self.by_id[node_id]
            self.problem(
                (*pointer, "id") if "id" in config else pointer,
                f"duplicate state id {node_id!r} (also used by the state at {other.json_path or '<root>'})",
            )
        else:
            self.by_id[node_id] = node
        self.nodes.append(node)
        self.configs[node] = config
        self.pointers[node] = pointer
        if parent is not None:
            parent.states[key] = node
        states = config.get("states") or {}
        declared = config.get("type")
        if declared:
            node.type = declared
        elif states:
            node.type = COMPOUND
        elif "history" in config:
            node.type = HISTORY
        else:
            node.type = ATOMIC
        node.history = config.get("history") or ("shallow" if node.type == HISTORY else None)
        tags = config.get("tags")
        node.tags = tuple([tags] if isinstance(tags, str) else tags or ())
        node.meta = config.get("meta")
        node.description = config.get("description")
        if node.type == FINAL or parent is None:
            node.output = config.get("output")
            node.output_fn = self.compile(config.get("output"), (*pointer, "output"))
        return node

    def compile(self, value: Any, pointer: Pointer) -> Callable[..., Any] | None:
        try:
            return compile_value(value, format_path(pointer))
        except ExpressionError as exc:
            self.problem(pointer, f"{exc}")
            return None

    # -- structural checks --------------------------------------------------------------

    def check_node(self, node: StateNode) -> None:
        config, pointer = self.configs[node], self.pointers[node]
        states = config.get("states") or {}
        kind = node.type
        if kind == FINAL and states:
            self.problem((*pointer, "states"), f"final state #{node.id} cannot have child states")
        if kind == ATOMIC and states:
            self.problem((*pointer, "type"), f"state #{node.id} is declared atomic but has child states")
        if kind in (COMPOUND, PARALLEL) and not states:
            self.problem(pointer, f"{kind} state #{node.id} needs child states")
        if kind == PARALLEL and "initial" in config:
            self.problem(
                (*pointer, "initial"),
                f"parallel state #{node.id} cannot have `initial`: all its regions are entered",
            )
        if kind in (ATOMIC, FINAL) and "initial" in config:
            self.problem((*pointer, "initial"), f"state #{node.id} has `initial` but no child states")
        if kind == COMPOUND and states and "initial" not in config:
            first = next(iter(states))
            self.problem(
                pointer,
                f'compound state #{node.id} has no `initial` state; add "initial": {first!r}',
            )
        if kind != HISTORY and "history" in config:
            self.problem(
                (*pointer, "history"), f"`history` is only allowed on history states (type: history), not on #{node.id}"
            )
        if kind == HISTORY:
            if node.parent is None:
                self.problem(pointer, "the root of a machine cannot be a history state")
            for bad in ("states", "on", "always", "after", "entry", "exit", "invoke", "onDone", "initial"):
                if bad in config:
                    self.problem((*pointer, bad), f"history state #{node.id} cannot have `{bad}`")
        elif "target" in config:
            self.problem((*pointer, "target"), f"`target` on a state is only allowed on history states (#{node.id})")
        if "output" in config and kind != FINAL and node.parent is not None:
            self.problem((*pointer, "output"), f"`output` is only used on final states and the root, not on #{node.id}")
        if node.parent is not None and node.parent.type == PARALLEL and kind == HISTORY:
            pass  # allowed: remembers the regions' configuration
        for key in config.get("on") or {}:
            if key == "":
                self.problem(
                    (*pointer, "on", key), "an empty event name is not allowed; use `always` for eventless transitions"
                )
            elif "*" in key and key != "*" and not (key.endswith(".*") and "*" not in key[:-2]):
                self.problem(
                    (*pointer, "on", key),
                    f"wildcards may only be the whole descriptor (`*`) or its last token (`order.*`), not {key!r}",
                )

    # -- pass 2: transitions, actions, invocations ---------------------------------------

    def link_node(self, node: StateNode) -> None:
        config, pointer = self.configs[node], self.pointers[node]
        node.entry = self.action_list(config.get("entry"), (*pointer, "entry"))
        node.exit = self.action_list(config.get("exit"), (*pointer, "exit"))
        if node.type == COMPOUND and "initial" in config:
            node.initial = self.initial_transition(node, config["initial"], (*pointer, "initial"))
        transitions: dict[str, list[Transition]] = {}
        for descriptor, spec in (config.get("on") or {}).items():
            transitions[descriptor] = self.transition_list(node, descriptor, spec, (*pointer, "on", descriptor))
        if "onDone" in config:
            descriptor = f"xstate.done.state.{node.id}"
            transitions[descriptor] = self.transition_list(node, descriptor, config["onDone"], (*pointer, "onDone"))
        node.invoke = self.invocations(node, config.get("invoke"), (*pointer, "invoke"), transitions)
        node.after = self.delayed(node, config.get("after") or {}, (*pointer, "after"), transitions)
        node.transitions = transitions
        if "always" in config:
            node.always = tuple(self.transition_list(node, "", config["always"], (*pointer, "always")))
        if node.type == HISTORY:
            node.history_default = self.history_default(node, config.get("target"), (*pointer, "target"))

    def action_list(self, spec: Any, pointer: Pointer) -> tuple[ActionRef, ...]:
        if spec is None:
            return ()
        items = spec if isinstance(spec, list) else [spec]
        out: list[ActionRef] = []
        for i, item in enumerate(items):
            ptr = (*pointer, i) if isinstance(spec, list) else pointer
            path = format_path(ptr)
            if isinstance(item, str):
                self.refer("action", item, ptr)
                out.append(ActionRef(item, None, None, path))
                continue
            kind = item["type"]
            params = item.get("params")
            if kind in builtin_actions.BUILTIN_TYPES:
                try:
                    builtin = builtin_actions.from_json(item, path)
                except ExpressionError as exc:
                    self.problem(ptr, str(exc))
                    continue
                for ref_kind, name in builtin.names():
                    self.refer(ref_kind, name, ptr)
                out.append(ActionRef(kind, params, builtin, path))
            else:
                self.refer("action", kind, ptr)
                out.append(ActionRef(kind, params, None, path))
        return tuple(out)

    def guard(self, spec: Any, pointer: Pointer) -> guard_mod.Guard | None:
        if spec is None:
            return None
        try:
            guard = guard_mod.from_json(spec, format_path(pointer))
        except ExpressionError as exc:
            self.problem(pointer, str(exc))
            return None
        for name in guard.names():
            self.refer("guard", name, pointer)
        self.check_state_in(guard, pointer)
        return guard

    def check_state_in(self, guard: guard_mod.Guard, pointer: Pointer) -> None:
        if isinstance(guard, guard_mod.StateIn) and isinstance(guard.state, str) and guard.state.startswith("#"):
            try:
                self.by_path(self.nodes[0], guard.state)
            except _TargetError as exc:
                self.problem(pointer, f"stateIn: {exc}")
        for sub in getattr(guard, "guards", ()) or ():
            self.check_state_in(sub, pointer)
        inner = getattr(guard, "guard", None)
        if isinstance(inner, guard_mod.Guard):
            self.check_state_in(inner, pointer)

    def transition_list(self, node: StateNode, descriptor: str, spec: Any, pointer: Pointer) -> list[Transition]:
        items = spec if isinstance(spec, list) else [spec]
        out: list[Transition] = []
        for i, item in enumerate(items):
            ptr = (*pointer, i) if isinstance(spec, list) else pointer
            if item is None or isinstance(item, str):
                item = {"target": item}
            out.append(self.transition(node, descriptor, item, ptr))
        return out

    def transition(self, node: StateNode, descriptor: str | None, item: dict[str, Any], ptr: Pointer) -> Transition:
        targets = self.targets(node, item.get("target"), (*ptr, "target"))
        return Transition(
            source=node,
            event=descriptor,
            targets=targets,
            guard=self.guard(item.get("guard"), (*ptr, "guard")),
            actions=self.action_list(item.get("actions"), (*ptr, "actions")),
            reenter=bool(item.get("reenter", False)),
            path=format_path(ptr),
            description=item.get("description"),
            meta=item.get("meta"),
        )

    def targets(self, node: StateNode, spec: Any, pointer: Pointer) -> tuple[StateNode, ...] | None:
        if spec is None or spec == "":
            return None
        items = spec if isinstance(spec, list) else [spec]
        resolved: list[StateNode] = []
        for i, target in enumerate(items):
            ptr = (*pointer, i) if isinstance(spec, list) else pointer
            try:
                resolved.append(self.resolve_target(node, target))
            except _TargetError as exc:
                self.problem(ptr, str(exc))
            else:
                self.check_dotted_id(target, resolved[-1], ptr)
        if len(resolved) > 1:
            self.check_compatible(resolved, pointer)
        return tuple(resolved)

    def check_compatible(self, targets: list[StateNode], pointer: Pointer) -> None:
        for i, a in enumerate(targets):
            for b in targets[i + 1 :]:
                if a is b or a in b.ancestors or b in a.ancestors:
                    continue
                common = next(x for x in a.ancestors if x in b.ancestors)
                if common.type != PARALLEL:
                    self.problem(
                        pointer,
                        f"targets #{a.id} and #{b.id} cannot be active at the same time "
                        f"(their closest common ancestor #{common.id} is not a parallel state)",
                    )

    def check_dotted_id(self, target: str, found: StateNode, pointer: Pointer) -> None:
        """``#a.b`` means the child ``b`` of the state with id ``a``, as in XState, even
        when another state has the id ``a.b``: legal, but rarely what the author meant."""
        if not target.startswith("#"):
            return
        named = self.by_id.get(target[1:])
        if named is not None and named is not found:
            escaped = "#" + target[1:].replace(".", "\\.")
            self.warnings.append(
                Problem(
                    format_path(pointer),
                    f"target {target!r} is the state #{found.id} (the id {split_path(target[1:])[0]!r}, then a path), "
                    f"not the state whose id is {target[1:]!r}; to target that one write {escaped!r}",
                    pointer,
                )
            )

    def resolve_target(self, node: StateNode, target: str) -> StateNode:
        """XState's target resolution: ``#id`` (then a relative path), ``.child`` relative
        to the source, anything else relative to the source's parent (siblings)."""
        if target.startswith("#"):
            return self.by_path(self.nodes[0], target)
        if target.startswith("."):
            base = node
            rest = target[1:]
        elif node.parent is None:
            raise _TargetError(f"target {target!r} is not valid from the root state; did you mean '.{target}'?")
        else:
            base = node.parent
            rest = target
        return self.by_path(base, rest)

    def by_path(self, base: StateNode, text: str) -> StateNode:
        parts = split_path(text)
        current = base
        if parts and parts[0].startswith("#"):
            ident = parts[0][1:]
            found = self.by_id.get(ident)
            if found is None:
                raise _TargetError(f"no state has the id {ident!r}{_suggest(ident, list(self.by_id))}")
            current = found
            parts = parts[1:]
        for key in parts:
            if key == "":
                break
            child = current.states.get(key)
            if child is None:
                where = f"#{current.id}"
                if not current.states:
                    raise _TargetError(f"cannot resolve {text!r}: {where} has no child states")
                raise _TargetError(
                    f"cannot resolve {text!r}: {where} has no child {key!r}{_suggest(key, list(current.states))}"
                )
            current = child
        return current

    def initial_transition(self, node: StateNode, spec: Any, pointer: Pointer) -> Transition | None:
        key = spec if isinstance(spec, str) else spec.get("target")
        child = node.states.get(key) if isinstance(key, str) else None
        if child is None:
            ptr = pointer if isinstance(spec, str) else (*pointer, "target")
            self.problem(
                ptr,
                f"initial state {key!r} is not a child of #{node.id}{_suggest(str(key), list(node.states))}",
            )
            return None
        if child.type == HISTORY and "target" not in self.configs[child]:
            # Its default would be this very initial transition: a cycle.
            ptr = pointer if isinstance(spec, str) else (*pointer, "target")
            self.problem(
                ptr,
                f"the initial state of #{node.id} is the history state {key!r}, which needs a `target` "
                "(its default would otherwise be this initial state again)",
            )
            return None
        actions = () if isinstance(spec, str) else self.action_list(spec.get("actions"), (*pointer, "actions"))
        return Transition(node, None, (child,), None, actions, False, format_path(pointer))

    def invocations(
        self, node: StateNode, spec: Any, pointer: Pointer, transitions: dict[str, list[Transition]]
    ) -> tuple[InvokeDef, ...]:
        if spec is None:
            return ()
        items = spec if isinstance(spec, list) else [spec]
        out: list[InvokeDef] = []
        for i, item in enumerate(items):
            ptr = (*pointer, i) if isinstance(spec, list) else pointer
            invoke_id = item.get("id") or f"{i}.{node.id}"
            self.refer("service", item["src"], (*ptr, "src"))
            input_fn = self.compile(item.get("input"), (*ptr, "input"))
            out.append(InvokeDef(invoke_id, item["src"], item.get("input"), input_fn, format_path(ptr)))
            for key, prefix in (
                ("onDone", "xstate.done.actor."),
                ("onError", "xstate.error.actor."),
                ("onSnapshot", "xstate.snapshot."),
            ):
                if key in item:
                    descriptor = prefix + invoke_id
                    transitions[descriptor] = self.transition_list(node, descriptor, item[key], (*ptr, key))
        return tuple(out)

    def delayed(
        self, node: StateNode, spec: dict[str, Any], pointer: Pointer, transitions: dict[str, list[Transition]]
    ) -> tuple[Transition, ...]:
        out: list[Transition] = []
        entry = list(node.entry)
        exit_ = list(node.exit)
        for key, tspec in spec.items():
            ptr = (*pointer, key)
            number = js_number(key)
            delay: float | str
            if number is None:
                if not re.fullmatch(r"[A-Za-z_$][\w$.-]*", key):
                    self.problem(ptr, f'invalid delay {key!r}: use milliseconds ("1000") or a delay name')
                    continue
                delay = key
                self.refer("delay", key, ptr)
                label = key
            else:
                if math.isnan(number) or number < 0 or math.isinf(number):
                    self.problem(ptr, f"invalid delay {key!r}: must be a finite number of milliseconds >= 0")
                    continue
                delay = number
                label = js_number_str(number)
            event_type = f"xstate.after.{label}.{node.id}"
            path = format_path(ptr)
            entry.append(
                ActionRef("xstate.raise", None, builtin_actions.Raise({"type": event_type}, delay, event_type), path)
            )
            exit_.append(ActionRef("xstate.cancel", None, builtin_actions.Cancel(event_type), path))
            made = self.transition_list(node, event_type, tspec, ptr)
            for t in made:
                t.delay = delay
            transitions.setdefault(event_type, []).extend(made)
            out.extend(made)
        node.entry = tuple(entry)
        node.exit = tuple(exit_)
        return tuple(out)

    def history_default(self, node: StateNode, spec: Any, pointer: Pointer) -> Transition | None:
        parent = node.parent
        if parent is None:
            return None
        if spec is None or spec == "":
            if parent.type == PARALLEL:
                return Transition(node, None, (parent,), None, (), False, format_path(pointer))
            return parent.initial
        items = spec if isinstance(spec, list) else [spec]
        resolved = []
        for i, target in enumerate(items):
            ptr = (*pointer, i) if isinstance(spec, list) else pointer
            try:
                found = self.by_path(parent, target)
            except _TargetError as exc:
                self.problem(ptr, str(exc))
                continue
            if parent not in found.ancestors:
                self.problem(
                    ptr, f"the default of history state #{node.id} must be inside #{parent.id}, not #{found.id}"
                )
                continue
            if found.type == HISTORY:
                self.problem(
                    ptr, f"the default of history state #{node.id} cannot be another history state (#{found.id})"
                )
                continue
            resolved.append(found)
        return Transition(node, None, tuple(resolved), None, (), False, format_path(pointer))


def _all_transitions(node: StateNode) -> list[Transition]:
    out = [t for ts in node.transitions.values() for t in ts]
    out.extend(node.always)
    if node.initial is not None:
        out.append(node.initial)
    return out


def _suggest(word: str, options: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def build_model(definition: dict[str, Any], max_microsteps: int | None = None) -> Model:
    """Compile a schema-valid definition; raise DefinitionError listing every problem."""
    return Builder(definition, max_microsteps).build()
