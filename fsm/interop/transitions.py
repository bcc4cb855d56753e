"""pytransitions <-> fsm: convert machine definitions, keeping their behaviour.

``from_transitions`` reads a configured ``transitions.Machine`` / ``HierarchicalMachine``
(or the configuration dict you would pass to one) and writes an fsm definition plus the
implementations its callbacks need. ``to_transitions`` goes the other way for the machines
transitions can express. docs/interop.md is the user guide; this docstring explains the
mapping decisions, each of which a differential test (tests/test_interop_transitions.py)
checks against transitions itself.

Why these decisions:

- **Callback order is kept.** transitions runs ``prepare``, ``conditions``/``unless``,
  ``before_state_change``, ``before``, ``on_exit``, ``on_enter``, ``on_final``,
  ``after``, ``after_state_change``; XState runs guards, exit actions, transition actions,
  entry actions. A transition whose ``before`` callbacks must run before some ``on_exit``
  callback, or whose ``after`` callbacks must run after some ``on_enter`` callback, is
  therefore split in *stages*: a targetless guarded transition runs ``before`` and sets a
  context marker (``$<trigger>#<n>``); an ``always`` transition of the same state,
  guarded by the marker, changes state; the root's ``always`` runs ``after`` behind a
  second marker value. Eventless transitions run right after the microstep that enabled
  them, before any queued event, so the stages act as one transition (raised events
  would not: a trigger fired by ``before`` would overtake the state change). When no
  exit/entry callback can be involved, ``before`` and ``after`` are plain transition
  actions and the definition stays as it was written.
- **prepare is part of the guard**, as in transitions (``may_<trigger>`` runs it too): a
  guard ``transitions.prepare`` whose params name the callbacks, first in an ``and`` with
  the conditions. So ``prepare`` runs, in order, for every candidate transition tried,
  even those whose conditions then fail.
- **Domains follow transitions.** A transition to its own source (``=`` or dest ==
  source) re-enters it (``reenter: true``); ``dest=None`` is targetless. Wildcard and auto
  transitions (``to_<state>``) are placed on every ancestor of their target, so the
  innermost active one is taken: like transitions, that exits only below the deepest
  active ancestor of the target.
- **Auto transitions into a region of a parallel state are refused.** transitions enters
  (or re-enters) only the target's region, XState every region; transitions adds them
  for every state, so ``from_transitions(..., auto_transitions="skip")`` offers to leave
  exactly those out (the others are converted).
- **Timeouts start when a state is entered.** transitions does not enter its initial
  states, so a timeout on a state active from the start is refused both ways. The
  trigger ``to_transitions`` writes for an ``after`` is ``after.<delay>.<id>``, not fsm's
  timer event ``xstate.after.<delay>.<id>``: converted back, a raise of the timer event
  would be taken by the ``after`` transition raising it.
- **Nothing approximate is emitted.** Features without an equivalent raise
  :class:`ConversionError` naming the feature and the reason. The differences that
  remain (docs/interop.md, "Inherent differences") change which callbacks run or their
  order, not the resulting state (except conditions that read what the callbacks of the
  same step changed, "Conditions of a fired trigger").
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from fsm.errors import FsmError
from fsm.machine import Machine as FsmMachine

try:
    import transitions as _tx
    from transitions.extensions import HierarchicalMachine
    from transitions.extensions.nesting import NestedState
    from transitions.extensions.states import Tags, Timeout, add_state_features
except ImportError as _exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("fsm.interop.transitions needs the 'transitions' package: pip install 'fsm[interop]'") from _exc

__all__ = [
    "ORIGIN",
    "PREPARE_GUARD",
    "SELF_STATE",
    "ConversionError",
    "Converted",
    "build",
    "from_transitions",
    "state_name",
    "to_transitions",
]

ORIGIN = "$origin"
"""Key under which a raised stage or trigger event carries the event that caused it, so
callbacks of later stages receive the original trigger arguments."""

PREPARE_GUARD = "transitions.prepare"
"""The guard that runs a transition's ``prepare`` callbacks (named in ``params.run``)."""

SELF_STATE = "(self)"
"""Child key standing for "in the parent, no substate": transitions lets a nested state
without ``initial`` be the current state itself; XState needs an initial child."""

Callback = Any  # a model attribute name (str) or a callable

_UNSUPPORTED_STATE_FEATURES = ("Error", "Volatile", "Retry", "AsyncTimeout", "AsyncState", "AsyncNestedState")
_MACHINE_REFUSALS = {
    "prepare_event": "runs once per trigger even when no transition is possible; XState has no per-event hook",
    "finalize_event": "runs after every trigger whatever happened; XState has no per-event hook",
    "on_exception": "handles exceptions of callbacks; in fsm a failing step leaves the actor in the 'error' status",
}


class ConversionError(FsmError, ValueError):
    """A feature of the source machine has no faithful equivalent in the target.

    ``feature`` names it (``"queued=False"``, ``"state 'B' on_final"`` ...), ``reason``
    says why it cannot be converted.
    """

    def __init__(self, feature: str, reason: str) -> None:
        self.feature = feature
        self.reason = reason
        super().__init__(f"cannot convert {feature}: {reason}")


# -- the neutral description of a transitions machine -------------------------------------


@dataclass
class _State:
    path: tuple[str, ...]
    on_enter: list[Callback] = field(default_factory=list)
    on_exit: list[Callback] = field(default_factory=list)
    on_final: list[Callback] = field(default_factory=list)
    final: bool = False
    children: list[_State] = field(default_factory=list)
    initial: str | None = None
    parallel: bool = False
    timeout: float = 0.0
    on_timeout: list[Callback] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path[-1]


@dataclass
class _Transition:
    trigger: str
    source: tuple[str, ...]
    dest: tuple[str, ...] | None
    scope: tuple[str, ...] = ()
    prepare: list[Callback] = field(default_factory=list)
    conditions: list[tuple[Callback, bool]] = field(default_factory=list)
    before: list[Callback] = field(default_factory=list)
    after: list[Callback] = field(default_factory=list)

    def same_behaviour(self, other: _Transition) -> bool:
        return (
            self.dest == other.dest
            and self.prepare == other.prepare
            and self.conditions == other.conditions
            and self.before == other.before
            and self.after == other.after
        )


@dataclass
class _Spec:
    name: str
    states: list[_State]
    initial: list[tuple[str, ...]]
    transitions: list[_Transition]
    hierarchical: bool
    separator: str
    before_state_change: list[Callback] = field(default_factory=list)
    after_state_change: list[Callback] = field(default_factory=list)
    on_final: list[Callback] = field(default_factory=list)
    queued: bool = False
    auto_transitions: bool = True
    triggers: set[str] = field(default_factory=set)

    def walk(self) -> list[_State]:
        out: list[_State] = []
        stack = list(reversed(self.states))
        while stack:
            state = stack.pop()
            out.append(state)
            stack.extend(reversed(state.children))
        return out

    def full_name(self, path: Sequence[str]) -> str:
        return self.separator.join(path) if self.hierarchical else path[0]


# -- reading transitions ------------------------------------------------------------------


def _instantiate(config: Mapping[str, Any], machine_class: type | None) -> Any:
    """Build a transitions machine from its configuration, without a model.

    transitions itself interprets the configuration (list-form transitions, ``*`` and
    ``=``, nested ``children``/``states``, ``parallel``), so the conversion sees exactly
    what transitions would run. No model is attached: transitions would add trigger
    methods to it.
    """
    cls, options = _machine_class(_copy_structure(config), machine_class)
    try:
        return cls(model=None, **options)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise ConversionError("the configuration", f"transitions refused it: {exc!r}") from exc


def _copy_structure(value: Any) -> Any:
    """Copy the dicts and lists of a configuration (transitions writes into the state
    dicts it is given), keeping callbacks and other objects as they are."""
    if isinstance(value, Mapping):
        return {k: _copy_structure(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_structure(v) for v in value]
    return value


def _machine_class(config: Mapping[str, Any], machine_class: type | None) -> tuple[type, dict[str, Any]]:
    """The transitions class for a configuration, and its keyword arguments.

    ``HierarchicalMachine`` when states nest (or use HSM-only keys), else ``Machine``;
    with the ``Timeout`` / ``Tags`` state features when the states use them. A
    ``separator`` key (written by :func:`to_transitions`) becomes the state class's.
    """
    options = {k: v for k, v in config.items() if k not in ("model", "separator")}
    separator = config.get("separator")
    states = options.get("states") or []
    if machine_class is None:
        hierarchical = _nested(states) or isinstance(options.get("initial"), (list, tuple))
        hierarchical = hierarchical or _any_state_has(states, "on_final") or separator is not None
        machine_class = HierarchicalMachine if hierarchical else _tx.Machine
    namespace: dict[str, Any] = {}
    if separator is not None and issubclass(machine_class, HierarchicalMachine):
        base_state = machine_class.state_cls
        namespace["state_cls"] = type("SeparatedState", (base_state,), {"separator": separator})
    features: list[type] = []
    if _any_state_has(states, "timeout"):
        features.append(Timeout)
    if _any_state_has(states, "tags"):
        features.append(Tags)
    if not namespace and not features:
        return machine_class, options
    cls: type = type(machine_class.__name__, (machine_class,), namespace)
    if features:
        cls = add_state_features(*features)(cls)
    return cls, options


def _nested(states: Any) -> bool:
    for state in states if isinstance(states, (list, tuple)) else []:
        if isinstance(state, Mapping) and ("children" in state or "states" in state or "parallel" in state):
            return True
        if isinstance(state, NestedState) and state.states:
            return True
    return False


def _any_state_has(states: Any, key: str) -> bool:
    for state in states if isinstance(states, (list, tuple)) else []:
        if isinstance(state, Mapping):
            if key in state:
                return True
            for sub in ("children", "states", "parallel"):
                if _any_state_has(state.get(sub), key):
                    return True
    return False


def _read(machine: Any, model: Any, from_config: bool) -> _Spec:
    hierarchical = isinstance(machine, HierarchicalMachine)
    sep = machine.state_cls.separator if hierarchical else "_"
    if type(machine).__name__.startswith("Async") or "asyncio" in type(machine).__module__:
        raise ConversionError("an AsyncMachine", "its callbacks are coroutines run by transitions' event loop")
    for key, why in _MACHINE_REFUSALS.items():
        if getattr(machine, key, None):
            raise ConversionError(f"the machine's {key}", why)
    if machine.send_event:
        raise ConversionError(
            "send_event=True",
            "callbacks would receive transitions' EventData; fsm passes the trigger's keyword arguments",
        )

    def split(name: Any) -> tuple[str, ...]:
        text = name.name if hasattr(name, "name") and not isinstance(name, str) else str(name)
        return tuple(text.split(sep)) if hierarchical else (text,)

    def read_state(state: Any, parent: tuple[str, ...]) -> _State:
        names = [c.__name__ for c in type(state).__mro__]
        for feature in _UNSUPPORTED_STATE_FEATURES:
            if feature in names:
                raise ConversionError(f"state feature {feature!r}", "it has no XState equivalent")
        local = state.name if isinstance(state.name, str) else str(state.name)
        path = (*parent, local)
        if "." in local:
            raise ConversionError(
                f"state {local!r}", "XState state keys cannot contain '.' (it separates target paths)"
            )
        out = _State(
            path=path,
            on_enter=list(state.on_enter),
            on_exit=list(state.on_exit),
            on_final=list(getattr(state, "on_final", []) or []),
            final=bool(getattr(state, "final", False)),
            timeout=float(getattr(state, "timeout", 0) or 0),
            on_timeout=list(getattr(state, "on_timeout", []) or []),
            tags=list(getattr(state, "tags", []) or []),
        )
        children = getattr(state, "states", None) or {}
        out.children = [read_state(child, path) for child in children.values()]
        initial = getattr(state, "initial", None)
        if isinstance(initial, (list, tuple)):
            listed = [i.name if hasattr(i, "name") else str(i) for i in initial]
            if sorted(listed) != sorted(c.name for c in out.children):
                raise ConversionError(
                    f"state {local!r} initial={listed!r}",
                    "a list initial enters those children in parallel; XState's parallel states enter all children",
                )
            out.parallel = True
        elif initial:
            out.initial = initial.name if hasattr(initial, "name") else str(initial)
        return out

    states = [read_state(s, ()) for s in machine.states.values()]
    spec = _Spec(
        # transitions' name ("" by default) is the id; "." and "#" would break "#id.path" targets
        name=str(getattr(machine, "name", "") or "").strip().rstrip(":").strip().replace(".", "_").replace("#", "_")
        or "machine",
        states=states,
        initial=[],
        transitions=[],
        hierarchical=hierarchical,
        separator=sep,
        before_state_change=list(machine.before_state_change),
        after_state_change=list(machine.after_state_change),
        on_final=list(getattr(machine, "on_final", []) or []),
        queued=bool(machine.has_queue),
        auto_transitions=bool(machine.auto_transitions),
    )
    if from_config and model is not None:
        _add_conventional_callbacks(spec, model)

    auto_names = {f"to_{spec.full_name(s.path)}" for s in spec.walk()} if spec.auto_transitions else set()

    def read_events(events: Mapping[str, Any], scope: tuple[str, ...]) -> None:
        for trigger, event in events.items():
            spec.triggers.add(trigger)
            if not scope and trigger in auto_names:
                continue
            for source_name, transitions in event.transitions.items():
                source = (*scope, *split(source_name))
                for t in transitions:
                    dest = None if t.dest is None else (*scope, *split(t.dest))
                    spec.transitions.append(
                        _Transition(
                            trigger=trigger,
                            source=source,
                            dest=dest,
                            scope=scope,
                            prepare=list(t.prepare),
                            conditions=[(c.func, bool(c.target)) for c in t.conditions],
                            before=list(t.before),
                            after=list(t.after),
                        )
                    )

    read_events(machine.events, ())
    if hierarchical:
        for state in _walk_objects(machine.states, ()):
            obj, path = state
            if getattr(obj, "events", None):
                read_events(obj.events, path)
    spec.triggers |= auto_names

    initial = machine.initial
    if isinstance(initial, (list, tuple)):
        spec.initial = [split(i) for i in initial]
    elif initial is not None:
        spec.initial = [split(initial)]
    else:
        raise ConversionError("initial=None", "an XState machine starts in its initial state: name it")
    return spec


def _walk_objects(states: Mapping[str, Any], parent: tuple[str, ...]) -> Iterable[tuple[Any, tuple[str, ...]]]:
    for state in states.values():
        name = state.name if isinstance(state.name, str) else str(state.name)
        path = (*parent, name)
        yield state, path
        yield from _walk_objects(getattr(state, "states", None) or {}, path)


def _add_conventional_callbacks(spec: _Spec, model: Any) -> None:
    """transitions adds a model's ``on_enter_<state>`` / ``on_exit_<state>`` (and
    ``on_final_`` / ``on_timeout_``) methods to the state when the model is added; a
    configuration converted with a model gets them the same way."""
    if spec.hierarchical and spec.separator != "_":
        return  # transitions only does this with the default separator
    for state in spec.walk():
        name = spec.full_name(state.path)
        for kind, target in (
            ("on_enter", state.on_enter),
            ("on_exit", state.on_exit),
            ("on_final", state.on_final),
            ("on_timeout", state.on_timeout),
        ):
            method = f"{kind}_{name}"
            if inspect.ismethod(getattr(model, method, None)) and method not in target:
                target.append(method)


# -- callbacks -> implementations ---------------------------------------------------------


def _all_callbacks(spec: _Spec) -> Iterable[Any]:
    yield from spec.before_state_change
    yield from spec.after_state_change
    yield from spec.on_final
    for state in spec.walk():
        yield from (*state.on_enter, *state.on_exit, *state.on_final, *state.on_timeout)
    for t in spec.transitions:
        yield from (*t.prepare, *(cb for cb, _ in t.conditions), *t.before, *t.after)


def _payload(event: Mapping[str, Any]) -> dict[str, Any]:
    """The trigger's keyword arguments: the original event's payload, following the
    ``$origin`` links that stage and trigger events carry."""
    while isinstance(event.get(ORIGIN), Mapping):
        event = event[ORIGIN]
    return {k: v for k, v in event.items() if k not in ("type", ORIGIN)}


def _invoke(target: Any, event: Mapping[str, Any]) -> Any:
    """Call a callback like transitions does (``send_event=False``): with the trigger's
    keyword arguments. A non-callable attribute is its own value (a property used as a
    condition)."""
    if callable(target):
        return target(**_payload(event))
    return target


def _callable_name(fn: Any) -> str:
    while isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return "lambda" if name == "<lambda>" else name


class _Callbacks:
    """Names the callbacks of a machine and builds their fsm implementations.

    A name (str) is looked up on the model when called, like transitions does, so
    properties and later monkeypatching behave the same. A callable keeps its
    ``__name__`` (suffixed when two different callables share one).
    """

    def __init__(self, spec: _Spec, model: Any, machine: Any) -> None:
        self.spec = spec
        self.model = model
        self.machine = machine
        self.actions: dict[str, Any] = {}
        self.guards: dict[str, Any] = {}
        self._by_id: dict[int, str] = {}
        self._keep: list[Any] = []
        self.skipped: set[str] = set()  # auto transitions left out (auto_transitions="skip")
        # Names given as strings are the model's: callables are named around them.
        self._taken: set[str] = {cb for cb in _all_callbacks(spec) if isinstance(cb, str)}

    def _trigger_of(self, cb: Any) -> str | None:
        """The trigger a callback fires, if it is one: a trigger's name not shadowed by a
        model attribute of the user's, or a bound trigger method."""
        if isinstance(cb, str):
            if cb not in self.spec.triggers:
                return None
            if self.model is None or not hasattr(self.model, cb):
                return cb
            return cb if self._is_trigger_method(getattr(self.model, cb)) else None
        return self._trigger_name_of_method(cb)

    def _is_trigger_method(self, obj: Any) -> bool:
        return self._trigger_name_of_method(obj) is not None

    def _trigger_name_of_method(self, obj: Any) -> str | None:
        if not isinstance(obj, functools.partial):
            return None
        # A trigger method transitions put on a model (of this machine, or of the machine
        # the configuration was also used for): it fires the trigger of that name.
        owner = getattr(obj.func, "__self__", None)
        if isinstance(owner, _tx.Machine) and obj.func.__name__ == "trigger_event" and len(obj.args) >= 2:
            return str(obj.args[1])
        if isinstance(owner, _tx.core.Event) and obj.func.__name__ == "trigger":
            return str(owner.name)
        return None

    def _resolve(self, cb: Any, where: str) -> tuple[str, Callable[[], Any]]:
        """(fsm name, a function returning the current target to call)."""
        if isinstance(cb, str):
            if self.model is None:
                raise ConversionError(
                    f"callback {cb!r} ({where})", "it is a name of a model method: pass model=... to resolve it"
                )
            if not hasattr(self.model, cb):
                kind = "an import path" if "." in cb else "an attribute of the model"
                raise ConversionError(f"callback {cb!r} ({where})", f"it is not {kind}; pass the callable instead")
            model, name = self.model, cb
            return cb, lambda: getattr(model, name)
        if not callable(cb):
            raise ConversionError(f"callback {cb!r} ({where})", "it is neither a name nor a callable")
        known = self._by_id.get(id(cb))
        if known is None:
            base = _callable_name(cb)
            known, n = base, 1
            while known in self._taken:
                n += 1
                known = f"{base}_{n}"
            self._taken.add(known)
            self._by_id[id(cb)] = known
            self._keep.append(cb)
        return known, lambda: cb

    def action(self, cb: Any, where: str, *, nested: bool = True) -> Any:
        """The action spec for a callback. A callback that fires a trigger becomes a
        ``raise`` of that event (processed after the current step, like ``queued=True``)."""
        trigger = self._trigger_of(cb)
        if trigger is not None:
            if trigger in self.skipped:
                raise ConversionError(
                    f"callback {trigger!r} ({where})",
                    "it fires an auto transition left out by auto_transitions='skip'",
                )
            if nested and not self.spec.queued:
                raise ConversionError(
                    f"callback {trigger!r} ({where}) with queued=False",
                    "it fires a trigger while another is processed; transitions runs it at once, nested in the "
                    "current transition, fsm after it (like queued=True): create the machine with queued=True",
                )
            return {"type": "raise", "event": {"type": trigger, ORIGIN: {"expr": "event"}}}
        name, get = self._resolve(cb, where)
        if name not in self.actions:
            self.actions[name] = lambda ctx, ev, params, get=get: _invoke(get(), ev)
        return name

    def guard(self, cb: Any, expected: bool, where: str) -> Any:
        if self._trigger_of(cb) is not None:
            raise ConversionError(f"condition {cb!r} ({where})", "it is a trigger, not a predicate")
        name, get = self._resolve(cb, where)
        if name not in self.guards:
            self.guards[name] = lambda ctx, ev, params, get=get: bool(_invoke(get(), ev))
        return name if expected else {"type": "not", "guard": name}

    def prepare(self, cbs: list[Any], where: str) -> Any:
        names = []
        for cb in cbs:
            if self._trigger_of(cb) is not None:
                raise ConversionError(
                    f"prepare callback {cb!r} ({where})",
                    "prepare runs while guards are evaluated and cannot fire events",
                )
            name, get = self._resolve(cb, where)
            if name not in self.actions:
                self.actions[name] = lambda ctx, ev, params, get=get: _invoke(get(), ev)
            names.append(name)
        if PREPARE_GUARD not in self.guards:
            actions = self.actions
            seen: dict[int, Any] = {}

            def run_prepare(ctx: Any, ev: Any, params: Any) -> bool:
                # fsm may evaluate a guard again for the same event (its recorded-step fast
                # path re-runs a step it cannot replay); prepare callbacks have side effects
                # and run once per transition tried, as in transitions.
                if seen.get(id(params)) is ev:
                    return True
                seen[id(params)] = ev
                for n in params["run"]:
                    actions[n](ctx, ev, params)
                return True

            self.guards[PREPARE_GUARD] = run_prepare
        return {"type": PREPARE_GUARD, "params": {"run": names}}


# -- writing the fsm definition -----------------------------------------------------------

Path = tuple[str, ...]


class _Writer:
    """Turns a :class:`_Spec` into an fsm definition (see the module docstring)."""

    def __init__(self, spec: _Spec, cbs: _Callbacks, auto_transitions: str = "refuse") -> None:
        self.spec = spec
        self.cbs = cbs
        self.auto_transitions = auto_transitions
        self.root_id = spec.name
        self.nodes: dict[Path, _State] = {s.path: s for s in spec.walk()}
        self.defs: dict[Path, dict[str, Any]] = {}
        self.root_on: dict[str, list[Any]] = {}
        self.root_always: list[Any] = []
        self.context: dict[str, Any] = {}
        self.stage_count: dict[str, int] = {}
        self.outgoing: set[Path] = {t.source for t in spec.transitions}
        self.parallel_anywhere = any(s.parallel for s in self.nodes.values())
        self.final_type: dict[Path, bool] = {}
        self.root_parallel = len(spec.initial) > 1

    # structure ------------------------------------------------------------------------

    def children(self, path: Path) -> list[Path]:
        if not path:
            return [s.path for s in self.spec.states]
        return [c.path for c in self.nodes[path].children]

    def is_parallel(self, path: Path) -> bool:
        if not path:
            return self.root_parallel
        return self.nodes[path].parallel

    def ref(self, path: Path) -> str:
        return "#" + ".".join((self.root_id, *path))

    def target(self, source: Path, dest: Path) -> str:
        if source and dest[:-1] == source[:-1]:
            return dest[-1]
        if source and dest[: len(source)] == source:
            return "." + ".".join(dest[len(source) :])
        return self.ref(dest)

    def default_entry(self, path: Path) -> list[Path]:
        out = [path]
        kids = self.children(path)
        if not kids:
            return out
        if self.is_parallel(path):
            for kid in kids:
                out += self.default_entry(kid)
        else:
            initial = self.nodes[path].initial
            if initial is not None:
                out += self.default_entry((*path, initial))
        return out

    def domain(self, source: Path, dest: Path, reenter: bool) -> Path:
        if not reenter and dest[: len(source)] == source:
            return source
        common = 0
        while common < min(len(source), len(dest)) and source[common] == dest[common]:
            common += 1
        lca = source[:common]
        if lca in (source, dest):
            lca = lca[:-1] if lca else lca
        return lca

    def entered(self, domain: Path, dest: Path) -> list[Path]:
        out: list[Path] = []
        for i in range(len(domain), len(dest)):
            node = dest[: i + 1]
            parent = dest[:i]
            if self.is_parallel(parent):
                for sibling in self.children(parent):
                    if sibling != node:
                        out += self.default_entry(sibling)
            if i + 1 < len(dest):
                out.append(node)
        out += self.default_entry(dest)
        return out

    def initial_configuration(self) -> set[Path]:
        """The states an fsm actor of the definition starts in."""
        tops = [s.path for s in self.spec.states] if self.root_parallel else [p[:1] for p in self.spec.initial[:1]]
        return {p for top in tops for p in self.default_entry(top)}

    def descendants(self, path: Path) -> list[Path]:
        return [p for p in self.nodes if len(p) > len(path) and p[: len(path)] == path]

    # callbacks in order ------------------------------------------------------------------

    def final_chain(self, dest: Path) -> list[Any]:
        """transitions' on_final callbacks after entering ``dest`` (non-parallel machines):
        the leaf's, then every ancestor's (all of them are final once their only active
        child is), then the machine's."""
        leaf = self.default_entry(dest)[-1]
        if not self.nodes[leaf].final:
            return []
        chain: list[Any] = []
        if self.spec.hierarchical:
            for i in range(len(leaf), 0, -1):
                chain += self.nodes[leaf[:i]].on_final
        return chain + self.spec.on_final

    def acts(self, cbs: Iterable[Any], where: str) -> list[Any]:
        return [self.cbs.action(cb, where) for cb in cbs]

    def guard_of(self, t: _Transition, where: str) -> Any:
        parts: list[Any] = []
        if t.prepare:
            parts.append(self.cbs.prepare(t.prepare, where))
        parts += [self.cbs.guard(cb, expected, where) for cb, expected in t.conditions]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else {"type": "and", "guards": parts}

    def stage_name(self, trigger: str) -> str:
        n = self.stage_count.get(trigger, 0)
        while True:
            n += 1
            name = f"{trigger}#{n}"
            if name not in self.spec.triggers and f"{name}.after" not in self.spec.triggers:
                break
        self.stage_count[trigger] = n
        return name

    # transitions ----------------------------------------------------------------------

    def emit(self, t: _Transition, source: Path) -> list[tuple[str | None, Any]]:
        """The fsm transitions (as ``(event, transition)`` pairs on ``source``, ``None``
        for ``always``) for one transitions transition placed on ``source``; the
        ``after`` stage goes to the root's ``always``."""
        where = f"transition {t.trigger!r} from {self.spec.full_name(t.source) if t.source else '*'}"
        guard = self.guard_of(t, where)
        pre = self.acts([*self.spec.before_state_change, *t.before], where)
        if t.dest is None:
            post = self.acts([*t.after, *self.spec.after_state_change], where)
            return [(t.trigger, _transition(None, guard, pre + post, False))]
        reenter = t.dest == source
        target = self.target(source, t.dest)
        domain = self.domain(source, t.dest, reenter)
        finals = self.final_chain(t.dest) if self.spec.on_final or self._any_on_final else []
        post = self.acts([*finals, *t.after, *self.spec.after_state_change], where)
        exits = [a for p in self.descendants(domain) for a in self.acts(self.nodes[p].on_exit, "")]
        entries = [a for p in self.entered(domain, t.dest) for a in self.acts(self.nodes[p].on_enter, "")]
        split_pre = _order_matters(pre, exits)
        split_post = _order_matters(entries, post)
        if split_post and self._top_level_final(t.dest):
            self.final_type[t.dest] = False
        if not split_pre and not split_post:
            return [(t.trigger, _transition(target, guard, pre + post, reenter))]
        # Stages: the transition continues with eventless transitions guarded by a context
        # marker. They run right after the previous microstep, before any queued event.
        key = "$" + self.stage_name(t.trigger)
        self.context[key] = None
        marker = {"expr": f"context[{key!r}] == 'after'"}
        after = _assign(key, "after" if split_post else None)
        if split_post:
            self.root_always.append(_transition(None, marker, [_assign(key, None), *post], False))
        if not split_pre:
            return [(t.trigger, _transition(target, guard, [after, *pre], reenter))]
        change = {"expr": f"context[{key!r}] == 'change'"}
        return [
            (t.trigger, _transition(None, guard, [_assign(key, "change"), *pre], False)),
            (None, _transition(target, change, [after] if split_post else [after, *post], reenter)),
        ]

    @property
    def _any_on_final(self) -> bool:
        return any(s.on_final for s in self.nodes.values())

    def _top_level_final(self, path: Path) -> bool:
        leaf = self.default_entry(path)[-1]
        return len(leaf) == 1 and self.nodes[leaf].final

    # the whole definition ----------------------------------------------------------------

    def write(self) -> dict[str, Any]:
        spec = self.spec
        if self.parallel_anywhere and (self._any_on_final or spec.on_final):
            raise ConversionError(
                "on_final with parallel states",
                "whether a parallel state is final depends on its other regions at run time; "
                "XState signals it with a done event (onDone) after the entry actions instead",
            )
        self._check_scopes()
        self._check_parallel()
        self.cbs.skipped = self._skipped_auto_transitions()
        root: dict[str, Any] = {"id": self.root_id}
        if self.root_parallel:
            initial = [spec.full_name(p) for p in spec.initial]
            tops = sorted(p[0] for p in spec.initial if len(p) == 1)
            if tops != sorted(s.name for s in spec.states) or any(len(p) != 1 for p in spec.initial):
                raise ConversionError(
                    f"initial={initial!r}",
                    "a list initial must name every top-level state (XState's parallel root enters all of them)",
                )
            for state in spec.states:
                if state.children and (state.parallel or state.initial is not None):
                    raise ConversionError(
                        f"initial={initial!r}",
                        f"transitions starts in the top-level state {state.name!r} itself, without entering its "
                        f"{'regions' if state.parallel else 'initial state'}; XState enters "
                        f"{'them' if state.parallel else 'it'}",
                    )
            root["type"] = "parallel"
        elif spec.initial:
            start = spec.initial[0]
            if start not in self.nodes:
                raise ConversionError(f"initial state {spec.full_name(start)!r}", "no such state")
            if start not in self.default_entry(start[:1]):
                raise ConversionError(
                    f"initial state {spec.full_name(start)!r}",
                    f"XState enters {start[0]!r} through its own initial state; start in {start[0]!r} or make "
                    f"{spec.full_name(start)!r} the initial state of its parent",
                )
            root["initial"] = start[0]
        for state in spec.walk():
            self.defs[state.path] = self.state_def(state)
        self.place_transitions()
        self.place_auto_transitions()
        for path, config in self.defs.items():
            state = self.nodes[path]
            if "on" in config:
                config["on"] = {e: (ts[0] if len(ts) == 1 else ts) for e, ts in config["on"].items()}
            if self.final_type.get(path, True) and self._can_be_final(state):
                config["type"] = "final"
            elif state.final:
                config["tags"] = [*config.get("tags", []), "final"]

        def assemble(state: _State) -> dict[str, Any]:
            config = self.defs[state.path]
            if state.children:
                kids = {c.name: assemble(c) for c in state.children}
                if not state.parallel and state.initial is None:
                    kids[SELF_STATE] = {}
                config["states"] = kids
            return config

        root["states"] = {s.name: assemble(s) for s in spec.states}
        if self.root_on:
            root["on"] = {event: (ts[0] if len(ts) == 1 else ts) for event, ts in self.root_on.items()}
        if self.root_always:
            root["always"] = self.root_always
        if self.context:
            root["context"] = self.context
        return root

    def state_def(self, state: _State) -> dict[str, Any]:
        config: dict[str, Any] = {}
        name = self.spec.full_name(state.path)
        if state.children:
            if state.parallel:
                config["type"] = "parallel"
            else:
                config["initial"] = state.initial if state.initial is not None else SELF_STATE
        if state.on_enter:
            config["entry"] = self.acts(state.on_enter, f"on_enter of state {name!r}")
        if state.on_exit:
            config["exit"] = self.acts(state.on_exit, f"on_exit of state {name!r}")
        if state.timeout > 0:
            if state.path in self.initial_configuration():
                raise ConversionError(
                    f"the timeout of state {name!r}",
                    "the state is active from the start: transitions does not enter its initial states, so their "
                    "timeouts do not start until they are entered again; an fsm actor starts them when it starts",
                )
            ms = state.timeout * 1000
            key = str(int(ms)) if ms == int(ms) else repr(ms)
            timer_event = f"xstate.after.{key}.{'.'.join((self.root_id, *state.path))}"
            if timer_event in self.spec.triggers:
                raise ConversionError(
                    f"trigger {timer_event!r}",
                    f"it is the name of fsm's timer event for the timeout of state {name!r}, whose "
                    "transitions it would take: rename the trigger",
                )
            actions = [self.cbs.action(cb, f"on_timeout of state {name!r}", nested=False) for cb in state.on_timeout]
            config["after"] = {key: {"actions": actions}}
        if state.tags:
            config["tags"] = list(state.tags)
        return config

    def _can_be_final(self, state: _State) -> bool:
        """A transitions final state is an XState final state only when that changes
        nothing: XState final states are atomic and terminal, and reaching a top-level one
        stops the machine (running its exit actions, dropping later raised events)."""
        if not state.final or state.children or state.timeout > 0 or state.path in self.outgoing:
            return False
        if len(state.path) == 1:
            return not state.on_exit and not self.spec.auto_transitions
        return True

    def parallel_ancestors(self, path: Path) -> list[Path]:
        """The parallel states strictly containing ``path``, outermost first."""
        return [path[:i] for i in range(len(path)) if self.is_parallel(path[:i])]

    def _check_parallel(self) -> None:
        """Refuse what transitions does with parallel states that XState cannot: enter
        part of a parallel state, or take transitions of several regions one after the
        other when the first one leaves the parallel state."""
        name = self.spec.full_name
        for t in self.spec.transitions:
            if t.dest is None:
                continue
            for par in self.parallel_ancestors(t.dest):
                if t.source[: len(par)] != par:
                    region = t.dest[: len(par) + 1]
                    raise ConversionError(
                        f"the transition {t.trigger!r} from {name(t.source)!r} to {name(t.dest)!r}",
                        f"it enters the parallel state {name(par) if par else 'root'!r} at region {name(region)!r}: "
                        "transitions enters only that region, XState enters every region",
                    )
        for t in self.spec.transitions:
            if t.dest is None:
                continue
            domain = self.domain(t.source, t.dest, t.dest == t.source)
            if self.is_parallel(domain):
                raise ConversionError(
                    f"the transition {t.trigger!r} from {name(t.source)!r} to {name(t.dest)!r}",
                    f"XState exits and re-enters every region of the parallel state "
                    f"{name(domain) if domain else 'root'!r} for it (back to their initial states), transitions "
                    "only the target's region",
                )
        for a in self.spec.transitions:
            for par in self.parallel_ancestors(a.source):
                leaves = a.dest is None or len(a.dest) <= len(par) or a.dest[: len(par)] != par
                if a.dest is None or not leaves:
                    continue
                region = a.source[: len(par) + 1]
                for b in self.spec.transitions:
                    inside = b.source[: len(par)] == par and len(b.source) > len(par)
                    if b.trigger == a.trigger and inside and b.source[: len(par) + 1] != region:
                        raise ConversionError(
                            f"trigger {a.trigger!r} in the parallel state {name(par) if par else 'root'!r}",
                            f"the transition from {name(a.source)!r} leaves it while region "
                            f"{name(b.source[: len(par) + 1])!r} also handles the trigger: transitions takes "
                            "both, one after the other; XState takes one",
                        )

    def _check_scopes(self) -> None:
        """Transitions defined inside a state (its ``transitions`` key) are tried scope by
        scope, innermost scope first, and exit every active state inside that state;
        XState tries sources innermost first, and exits from the least common ancestor of
        source and target. Refuse the configurations where the two disagree."""
        by_trigger: dict[str, list[_Transition]] = {}
        tops = {s.name for s in self.spec.states}
        for t in self.spec.transitions:
            by_trigger.setdefault(t.trigger, []).append(t)
            if not t.scope or t.dest is None:
                continue
            where = f"the transition {t.trigger!r} from {self.spec.full_name(t.source)!r} defined in state "
            where += repr(self.spec.full_name(t.scope))
            domain = self.domain(t.source, t.dest, t.dest == t.source)
            if len(domain) > len(t.scope) or t.dest[len(t.scope)] in tops:
                raise ConversionError(
                    where,
                    f"transitions exits every active state inside {self.spec.full_name(t.scope)!r} for it, XState only "
                    f"those inside {self.spec.full_name(domain)!r}: define it on the machine",
                )
        for trigger, ts in by_trigger.items():
            for a in ts:
                for b in ts:
                    deeper_source = len(b.source) > len(a.source) and b.source[: len(a.source)] == a.source
                    if deeper_source and len(a.scope) > len(b.scope):
                        raise ConversionError(
                            f"trigger {trigger!r}",
                            f"the transition from {self.spec.full_name(a.source)!r} defined inside "
                            f"{self.spec.full_name(a.scope)!r} is tried before the one from the deeper state "
                            f"{self.spec.full_name(b.source)!r}; XState tries the deeper source first: "
                            "define both at the same level",
                        )

    def place_transitions(self) -> None:
        by_trigger: dict[str, list[_Transition]] = {}
        for t in self.spec.transitions:
            by_trigger.setdefault(t.trigger, []).append(t)
        for ts in by_trigger.values():
            if self._uniform(ts):
                self.place_everywhere(ts[0])
                continue
            ordered = sorted(ts, key=lambda t: -len(t.scope))  # stable: keeps order within a scope
            for t in ordered:
                self.put(t.source, self.emit(t, t.source))

    def put(self, holder: Path, pairs: list[tuple[str | None, Any]]) -> None:
        on = self.defs[holder].setdefault("on", {}) if holder else self.root_on
        for event, spec in pairs:
            if event is None:
                (self.defs[holder].setdefault("always", []) if holder else self.root_always).append(spec)
            else:
                on.setdefault(event, []).append(spec)

    def _uniform(self, ts: list[_Transition]) -> bool:
        """The same transition from every state, or from every top-level state (a ``'*'``
        source): placed once per ancestor of its target instead of on every state.

        That is exact because transitions' exits do not depend on the source (see
        :meth:`place_everywhere`). A guarded one is placed so only when a single copy is
        needed (a top-level or no target) and transitions itself tries it once (from the
        top-level states only): XState would evaluate the guard of every active copy.
        """
        sources = {t.source for t in ts}
        tops = {s.path for s in self.spec.states}
        everywhere = len(ts) == len(self.nodes) and sources == set(self.nodes)
        top_level = len(ts) == len(tops) and sources == tops
        if self.root_parallel or not (everywhere or top_level) or any(t.scope for t in ts):
            return False
        first = ts[0]
        if not all(t.same_behaviour(first) for t in ts[1:]):
            return False
        if first.prepare or first.conditions:
            return top_level and (first.dest is None or len(first.dest) == 1)
        return True

    def place_everywhere(self, t: _Transition) -> None:
        """A transition taken from any state: one copy on every proper ancestor of the
        target, so the innermost active one is taken. Its domain is then the deepest
        active ancestor of the target, which is transitions' rule whatever the source."""
        if t.dest is None:
            self.put((), self.emit(t, ()))
            return
        for i in range(len(t.dest)):
            holder = t.dest[:i]
            copy = _Transition(
                t.trigger, holder, t.dest, (), list(t.prepare), list(t.conditions), list(t.before), list(t.after)
            )
            self.put(holder, self.emit(copy, holder))

    def auto_transition_differs(self, dest: Path) -> Path | None:
        """The parallel state for which transitions' auto transition ``to_<dest>`` ends in
        another configuration than XState's, if there is one.

        transitions enters only the target's region of a parallel state entered from
        outside, and from inside re-enters only that region; XState enters every region,
        and re-enters every region at its initial state (the parallel state is the
        transition's domain). A parallel root cannot be entered from outside: its auto
        transitions agree when the other regions are atomic (nothing to reset).
        """
        for par in self.parallel_ancestors(dest):
            region = dest[: len(par) + 1]
            if par or any(self.children(r) for r in self.children(par) if r != region):
                return par
        return None

    def _skipped_auto_transitions(self) -> set[str]:
        """The auto transitions without an equivalent: refused, or with
        ``auto_transitions="skip"`` left out (their names)."""
        skipped: set[str] = set()
        if not self.spec.auto_transitions:
            return skipped
        name = self.spec.full_name
        for state in self.spec.walk():
            par = self.auto_transition_differs(state.path)
            if par is None:
                continue
            trigger = f"to_{name(state.path)}"
            if self.auto_transitions != "skip":
                raise ConversionError(
                    f"the auto transition {trigger!r} to {name(state.path)!r}",
                    f"it is inside the parallel state {name(par) if par else 'root'!r}: transitions enters or "
                    "re-enters only the region of the target, XState every region (at its initial state). "
                    "Pass auto_transitions='skip' to from_transitions to leave such auto transitions out, or "
                    "create the transitions machine with auto_transitions=False",
                )
            skipped.add(trigger)
        return skipped

    def place_auto_transitions(self) -> None:
        if not self.spec.auto_transitions:
            return
        for state in self.spec.walk():
            trigger = f"to_{self.spec.full_name(state.path)}"
            if trigger not in self.cbs.skipped:
                self.place_everywhere(_Transition(trigger, (), state.path))


def _is_raise(action: Any) -> bool:
    return isinstance(action, Mapping) and action.get("type") == "raise"


def _order_matters(first: list[Any], then: list[Any]) -> bool:
    """Must ``first`` run before ``then``, or may it run after? Callbacks run in order,
    and raised events are queued in order, but a raise and a callback commute (the
    raised event is processed after the step)."""
    kinds = {_is_raise(a) for a in first}
    return any(_is_raise(a) in kinds for a in then)


def _transition(target: str | None, guard: Any, actions: list[Any], reenter: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if target is not None:
        out["target"] = target
    if guard is not None:
        out["guard"] = guard
    if actions:
        out["actions"] = actions
    if reenter:
        out["reenter"] = True
    return out


def _assign(key: str, value: Any) -> dict[str, Any]:
    return {"type": "assign", "assignment": {key: value}}


# -- the public API -----------------------------------------------------------------------


@dataclass
class Converted:
    """The result of :func:`from_transitions`.

    ``definition`` is a plain fsm (XState v5) definition; ``actions`` and ``guards`` are the
    implementations of the callbacks it names, ready for ``machine.provide(...)``.
    """

    definition: dict[str, Any]
    actions: dict[str, Any]
    guards: dict[str, Any]
    separator: str = "_"

    def machine(self) -> FsmMachine:
        """The fsm machine with the callbacks provided."""
        return FsmMachine.from_dict(self.definition).provide(actions=self.actions, guards=self.guards)

    def state_name(self, value: Any) -> Any:
        """transitions' name for an fsm state value (or snapshot): ``"C_1_a"``, or a list for
        parallel states, as ``model.state`` would read."""
        return state_name(value, self.separator)


def from_transitions(
    obj: Any,
    *,
    model: Any = None,
    machine_class: type | None = None,
    auto_transitions: Literal["refuse", "skip"] = "refuse",
) -> Converted:
    """Convert a transitions machine, or its configuration dict, to an fsm definition.

    ``obj`` is a configured ``transitions.Machine`` / ``HierarchicalMachine`` (and their
    Locked/Graph variants, and machines with the ``Timeout`` / ``Tags`` state features),
    or the keyword arguments you would pass to one (``states``, ``transitions``,
    ``initial``, ``before_state_change`` ...). Callbacks given by name are looked up on
    ``model`` when called; for a machine instance, ``model`` defaults to its only model.
    A configuration is interpreted by ``machine_class`` (default: ``HierarchicalMachine``
    when states nest or use ``on_final``, else ``Machine``).

    ``auto_transitions`` says what to do with the auto transitions (``to_<state>``) that
    have no equivalent, those into a region of a parallel state: ``"refuse"`` (raise
    :class:`ConversionError`) or ``"skip"`` (leave them out of the definition; fsm then
    ignores those triggers). The other auto transitions are converted either way.

    Raises :class:`ConversionError` naming the first feature without an equivalent.
    """
    if auto_transitions not in ("refuse", "skip"):
        raise ValueError(f"auto_transitions must be 'refuse' or 'skip', not {auto_transitions!r}")
    if isinstance(obj, Mapping):
        machine = _instantiate(obj, machine_class)
        from_config = True
    elif isinstance(obj, _tx.Machine):
        machine = obj
        from_config = False
        if model is None:
            models = [m for m in machine.models]
            if len(models) > 1:
                raise ConversionError(
                    f"a machine with {len(models)} models", "pass model=... to say whose callbacks to call"
                )
            model = models[0] if models else None
    else:
        raise TypeError(f"from_transitions takes a transitions Machine or its config dict, not {type(obj).__name__}")
    spec = _read(machine, model, from_config)
    callbacks = _Callbacks(spec, model, machine)
    definition = _Writer(spec, callbacks, auto_transitions).write()
    return Converted(definition, callbacks.actions, callbacks.guards, spec.separator)


def state_name(value: Any, separator: str = "_") -> Any:
    """transitions' ``model.state`` for an fsm state value (or snapshot).

    The synthetic ``(self)`` child reads as its parent; parallel states read as lists.
    """
    value = getattr(value, "value", value)

    def walk(v: Any, prefix: list[str]) -> Any:
        if isinstance(v, str):
            return separator.join(prefix if v == SELF_STATE else [*prefix, v])
        items = list(v.items())
        if len(items) == 1:
            key, sub = items[0]
            if sub == {}:
                return separator.join([*prefix, key])
            return walk(sub, [*prefix, key])
        return [walk(sub, [*prefix, key]) if sub != {} else separator.join([*prefix, key]) for key, sub in items]

    return walk(value, [])


# -- fsm -> transitions -------------------------------------------------------------------


def to_transitions(machine: FsmMachine | Mapping[str, Any], *, separator: str | None = None) -> dict[str, Any]:
    """The transitions configuration (``Machine(**config)`` / ``HierarchicalMachine(**config)``)
    of an fsm machine that transitions can express; see :func:`build`.

    Callbacks are named as in the definition: pass a model with those methods to
    :func:`build`. Raises :class:`ConversionError` for what transitions cannot express.
    """
    if not isinstance(machine, FsmMachine):
        machine = FsmMachine.from_dict(machine)
    config = _Reverse(machine.definition, separator, set(machine.impl.actions)).config()
    # The checks from_transitions makes (parallel states, transitions defined in states)
    # apply to the result too: read it back the way transitions will.
    spec = _read(_instantiate(config, None), None, False)
    writer = _Writer(spec, _Callbacks(spec, None, None))
    writer._check_scopes()
    writer._check_parallel()
    return config


def build(config: Mapping[str, Any], model: Any = None) -> Any:
    """A transitions machine for a configuration from :func:`to_transitions`.

    A ``HierarchicalMachine`` when the configuration nests states, else a ``Machine``;
    with the ``Timeout`` / ``Tags`` state features when used. ``model`` defaults to the
    machine itself, as in transitions.
    """
    cls, options = _machine_class(_copy_structure(config), None)
    return cls(model=_tx.Machine.self_literal if model is None else model, **options)


class _Reverse:
    """fsm definition -> transitions configuration."""

    def __init__(self, definition: Mapping[str, Any], separator: str | None, provided: set[str]) -> None:
        self.definition = definition
        self.provided = provided
        self.sep = separator if separator is not None else NestedState.separator
        self.root_id = str(definition.get("id", "machine"))
        self.ids: dict[str, tuple[str, ...]] = {}
        self.configs: dict[tuple[str, ...], Mapping[str, Any]] = {}
        self.events: set[str] = set()
        self._index(definition, ())
        self.hierarchical = any(len(p) > 1 for p in self.configs)
        self.transitions: list[dict[str, Any]] = []
        self.queued = False

    def refuse(self, where: tuple[str, ...] | str, what: str, why: str) -> ConversionError:
        place = where if isinstance(where, str) else ("the root" if not where else f"state {'.'.join(where)!r}")
        return ConversionError(f"{what} on {place}", why)

    def _index(self, config: Mapping[str, Any], path: tuple[str, ...]) -> None:
        self.configs[path] = config
        self.events.update(config.get("on") or {})
        default_id = ".".join((self.root_id, *path))
        self.ids[str(config.get("id", default_id)) if path else self.root_id] = path
        if path and "id" in config:
            self.ids[default_id] = path
        for key, child in (config.get("states") or {}).items():
            self._index(child, (*path, key))

    def name(self, path: tuple[str, ...]) -> str:
        parts = [p for p in path if p != SELF_STATE]
        return self.sep.join(parts) if self.hierarchical else parts[0]

    def resolve(self, source: tuple[str, ...], target: str) -> tuple[str, ...]:
        if target.startswith("#"):
            ref = target[1:]
            for i in range(len(ref), 0, -1):
                head = ref[:i]
                if head in self.ids and (i == len(ref) or ref[i] == "."):
                    rest = tuple(p for p in ref[i + 1 :].split(".") if p) if i < len(ref) else ()
                    return (*self.ids[head], *rest)
            raise self.refuse(source, f"target {target!r}", "no such state")
        if target.startswith("."):
            return (*source, *target[1:].split("."))
        return (*source[:-1], *target.split("."))

    def config(self) -> dict[str, Any]:
        d = self.definition
        for key in ("invoke", "always", "after", "onDone", "entry", "exit"):
            if key in d:
                raise self.refuse((), f"`{key}`", "transitions has no machine-level equivalent")
        if d.get("context"):
            raise self.refuse((), "`context`", "transitions keeps data on the model, not in the machine")
        states = [self.state(key, (key,)) for key in d.get("states", {})]
        out: dict[str, Any] = {"name": self.root_id, "states": states}
        if d.get("type") == "parallel":
            out["initial"] = list(d.get("states", {}))
        else:
            out["initial"] = self.initial_of(d, ())
        for path, config in self.configs.items():
            if path:
                self.on_of(path, config)
        self.on_of((), d)  # the root's transitions apply after every state's own
        out["transitions"] = self.transitions
        out["auto_transitions"] = False
        out["ignore_invalid_triggers"] = True
        if self.queued:
            out["queued"] = True
        if self.hierarchical and self.sep != "_":
            out["separator"] = self.sep
        return out

    def initial_of(self, config: Mapping[str, Any], path: tuple[str, ...]) -> str:
        initial = config.get("initial")
        if isinstance(initial, Mapping):
            if initial.get("actions"):
                raise self.refuse(path, "initial actions", "transitions runs no actions on initial entry")
            initial = initial.get("target")
        return str(initial)

    def state(self, key: str, path: tuple[str, ...]) -> dict[str, Any]:
        config = self.configs[path]
        if self.hierarchical and self.sep in key:
            raise self.refuse(
                path, f"state key {key!r}", f"transitions reads {self.sep!r} as nesting; pass another separator="
            )
        for unsupported, why in (
            ("invoke", "transitions has no invoked services"),
            ("always", "transitions has no eventless transitions"),
            ("onDone", "transitions has no done events (its on_final callbacks are not transitions)"),
            ("history", "transitions has no history states"),
        ):
            if unsupported in config or (unsupported == "history" and config.get("type") == "history"):
                raise self.refuse(path, f"`{unsupported}`", why)
        out: dict[str, Any] = {"name": key}
        if config.get("entry"):
            out["on_enter"] = self.callbacks(config["entry"], path, "entry")
        if config.get("exit"):
            out["on_exit"] = self.callbacks(config["exit"], path, "exit")
        if config.get("type") == "final":
            out["final"] = True
        tags = [t for t in config.get("tags", []) if t != "final"]
        if "final" in config.get("tags", []):
            out["final"] = True
        if tags:
            out["tags"] = tags
        kids = {k: v for k, v in (config.get("states") or {}).items()}
        if kids:
            if config.get("type") == "parallel":
                out["parallel"] = [self.state(k, (*path, k)) for k in kids]
            else:
                children = [self.state(k, (*path, k)) for k in kids if k != SELF_STATE]
                out["children"] = children
                initial = self.initial_of(config, path)
                if initial != SELF_STATE:
                    out["initial"] = initial
        if "after" in config:
            out.update(self.timeout(config["after"], path))
        return out

    def initially_active(self, path: tuple[str, ...]) -> bool:
        """Is the state in the configuration an actor starts in?"""
        for i, key in enumerate(path):
            parent = self.configs[path[:i]]
            if parent.get("type") != "parallel" and self.initial_of(parent, path[:i]) != key:
                return False
        return True

    def timeout(self, after: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        if len(after) != 1:
            raise self.refuse(path, "several `after` delays", "a transitions Timeout state has one timeout")
        if self.initially_active(path):
            raise self.refuse(
                path,
                "`after`",
                "the state is active from the start, and transitions does not enter its initial states: its "
                "Timeout would not start until the state is entered again",
            )
        delay, spec = next(iter(after.items()))
        try:
            seconds = float(delay) / 1000
        except ValueError:
            raise self.refuse(path, f"the delay {delay!r}", "transitions needs a number of seconds") from None
        # Not fsm's own timer event type (xstate.after.<delay>.<id>): converted back, a raise
        # of it would be taken by the `after` transition raising it.
        trigger = f"after.{delay}.{'.'.join((self.root_id, *path))}"
        if trigger in self.events:
            raise self.refuse(path, f"`after` (its trigger {trigger!r})", "the machine has an event of that name")
        self.add_transitions(trigger, path, spec)
        return {"timeout": seconds, "on_timeout": [trigger]}

    def on_of(self, path: tuple[str, ...], config: Mapping[str, Any]) -> None:
        for event, spec in (config.get("on") or {}).items():
            if "*" in event:
                raise self.refuse(path, f"the wildcard event descriptor {event!r}", "transitions triggers are names")
            self.add_transitions(event, path, spec)

    def add_transitions(self, trigger: str, source: tuple[str, ...], spec: Any) -> None:
        for t in spec if isinstance(spec, list) else [spec]:
            t = {"target": t} if isinstance(t, str) else t
            self.transitions.append(self.transition(trigger, source, t))

    def transition(self, trigger: str, source: tuple[str, ...], t: Mapping[str, Any]) -> dict[str, Any]:
        targets = t.get("target")
        if isinstance(targets, list):
            if len(targets) != 1:
                raise self.refuse(
                    source, f"the {trigger!r} transition with several targets", "transitions has one dest"
                )
            targets = targets[0]
        out: dict[str, Any] = {"trigger": trigger}
        if not source:
            if self.definition.get("type") == "parallel":
                raise self.refuse(source, f"the {trigger!r} transition", "a parallel root has no state to hang it on")
            out["source"] = [self.name((k,)) for k in self.definition.get("states", {})]
        else:
            out["source"] = self.name(source)
        reenter = bool(t.get("reenter"))
        if targets is None:
            out["dest"] = None
        else:
            dest = self.resolve(source, str(targets))
            if dest not in self.configs:
                raise self.refuse(source, f"target {targets!r}", "no such state")
            inside = dest[: len(source)] == source
            if not source and len(dest) > 1:
                raise self.refuse(
                    source,
                    f"the {trigger!r} transition to the nested state {targets!r}",
                    "from the root XState exits every active state; transitions keeps the active ancestors",
                )
            if dest == source:
                out["dest"] = self.name(dest) if reenter else None
                if not reenter and self.configs[source].get("states"):
                    raise self.refuse(
                        source,
                        f"the {trigger!r} transition to itself without reenter",
                        "XState re-enters the initial child; transitions would exit the state",
                    )
            elif inside and reenter:
                raise self.refuse(
                    source, f"the reentering {trigger!r} transition", "transitions does not exit the source here"
                )
            elif inside and len(dest) - len(source) > 1 and self.configs[source].get("states"):
                raise self.refuse(
                    source,
                    f"the {trigger!r} transition to {targets!r}",
                    "XState exits every active state inside the source; transitions keeps the active ones",
                )
            else:
                out["dest"] = self.name(dest)
        guard = t.get("guard")
        if guard is not None:
            self.guard(guard, out, source)
        if t.get("actions"):
            out["before"] = self.callbacks(t["actions"], source, f"the {trigger!r} transition")
        return out

    def guard(self, guard: Any, out: dict[str, Any], where: tuple[str, ...]) -> None:
        parts = guard["guards"] if isinstance(guard, Mapping) and guard.get("type") == "and" else [guard]
        for part in parts:
            if isinstance(part, str):
                out.setdefault("conditions", []).append(part)
            elif isinstance(part, Mapping) and part.get("type") == "not" and isinstance(part.get("guard"), str):
                out.setdefault("unless", []).append(part["guard"])
            elif isinstance(part, Mapping) and part.get("type") == PREPARE_GUARD:
                out.setdefault("prepare", []).extend(part.get("params", {}).get("run", []))
            elif isinstance(part, Mapping) and set(part) == {"type"} and part["type"] not in ("and", "or", "not"):
                out.setdefault("conditions", []).append(part["type"])
            else:
                raise self.refuse(
                    where,
                    f"the guard {part!r}",
                    "transitions conditions are names of predicates (and `not` of them), without params",
                )

    def custom(self, name: Any) -> bool:
        """A custom action (a callback), not one of fsm's built-ins (a user implementation
        of the same name takes precedence, as in fsm)."""
        return name in self.provided or name not in _BUILTIN_ACTIONS

    def callbacks(self, actions: Any, where: tuple[str, ...], what: str) -> list[str]:
        out = []
        for action in actions if isinstance(actions, list) else [actions]:
            if isinstance(action, str) and self.custom(action):
                out.append(action)
            elif isinstance(action, Mapping) and action.get("type") == "raise" and _simple_raise(action):
                self.queued = True
                out.append(str(action["event"]["type"]))
            elif isinstance(action, Mapping) and set(action) == {"type"} and self.custom(action["type"]):
                out.append(str(action["type"]))
            else:
                raise self.refuse(
                    where,
                    f"the action {action!r} ({what})",
                    "transitions callbacks are names without params; built-in actions other than a plain raise "
                    "have no equivalent",
                )
        return out


_BUILTIN_ACTIONS = frozenset(("assign", "raise", "sendTo", "sendParent", "cancel", "log", "emit", "stopChild"))


def _simple_raise(action: Mapping[str, Any]) -> bool:
    event = action.get("event")
    if "delay" in action or "id" in action or not isinstance(event, Mapping):
        return False
    return set(event) <= {"type", ORIGIN} and isinstance(event.get("type"), str)
