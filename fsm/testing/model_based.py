"""Model-based testing: check a real system against its machine, with hypothesis.

Like ``@xstate/test``, the machine is the model of how a system should behave, and the
test drives both side by side: each step picks an event the model can currently handle,
sends it to the system (through a ``drive`` function you write), advances the model
with the pure step function, and checks that the system now agrees with the model's
state (through a ``check`` function, or assertions per state). Hypothesis chooses the
sequences, so they go where hand-written tests do not, and a failure shrinks to a short
sequence of events, printed with the state the model was in.

The adapter is a generated :class:`hypothesis.stateful.RuleBasedStateMachine`, so it
runs like any other: assign ``model_test(...).TestCase`` to a module-level name for
pytest or unittest, or call ``model_test(...).run()`` in a test function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import Phase
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from fsm.machine import Machine
from fsm.semantics.snapshot import ACTIVE, Snapshot
from fsm.testing.analysis import event_types as machine_event_types
from fsm.testing.paths import Coverage, EventSamples, as_event, normalize_samples, state_label
from fsm.testing.strategies import event_of

Check = Callable[[Any, Snapshot], bool | None]
Drive = Callable[[Any, dict[str, Any]], Any]

TIMER = "(let time pass)"


class ModelMismatch(AssertionError):
    """The system under test disagrees with the model. The message says in which model
    state, after which steps, and which check failed."""


@dataclass
class ModelTest:
    """A model-based test of one system against ``machine``.

    ``StateMachine`` is the generated RuleBasedStateMachine, ``TestCase`` its unittest
    class (give it a module-level name starting with ``Test`` for pytest to collect it);
    ``coverage`` accumulates the model's state and transition coverage over every run,
    so a test can also assert that the runs went everywhere they should.
    """

    machine: Machine
    StateMachine: type[RuleBasedStateMachine]
    coverage: Coverage
    settings: Settings

    @property
    def TestCase(self) -> type:  # the name hypothesis and unittest use
        case: type = self.StateMachine.TestCase
        case.settings = self.settings  # type: ignore[attr-defined]
        return case

    def run(self, settings: Settings | None = None) -> None:
        """Run the test now (raises on the first, shrunk, mismatch)."""
        run_state_machine_as_test(self.StateMachine, settings=settings or self.settings)


def model_test(
    machine: Machine,
    *,
    system_factory: Callable[[], Any],
    drive: Drive | None = None,
    drivers: Mapping[str, Drive] | None = None,
    check: Check | None = None,
    states: Mapping[str, Check] | Iterable[tuple[Any, Check]] | None = None,
    payloads: Mapping[str, Any] | None = None,
    events: EventSamples | None = None,
    event_types: Iterable[str] | None = None,
    context: Mapping[str, Any] | None = None,
    input: Any = None,
    advance: Callable[[Any, float], Any] | None = None,
    teardown: Callable[[Any], Any] | None = None,
    settings: Settings | None = None,
    explain: bool = False,
) -> ModelTest:
    """Build a model-based test of the system ``system_factory()`` makes.

    How events reach the system:

    - ``drive(system, event)``: one function for every event (a dict with ``type``);
    - ``drivers={"COIN": lambda system, event: system.insert_coin(), ...}``: one per
      event type (``drive`` is the fallback for types not listed).

    How the system is checked, after it is made and after every step:

    - ``check(system, snapshot)``: one function for every state;
    - ``states={"locked": lambda system, snapshot: system.is_locked(), ...}``: keyed by
      what ``snapshot.matches`` takes (``"a.b"``; for state value dicts, which cannot
      be dict keys, give a list of ``(value, check)`` pairs); every entry the model's
      state matches is run.

    A check fails by raising (``assert ...``) or by returning ``False``; either way the
    test fails with :class:`ModelMismatch`. A model step that raises (a guard failing on
    a payload it did not expect) fails the test with its :class:`~fsm.errors.StepError`.

    Which events are sent: at each step, one whose type some active state of the model
    handles (guards are not consulted: a guarded-off event must leave the system
    unchanged as well, and that is checked too). The types are ``event_types`` when
    given, else the machine's own (see :func:`fsm.testing.analysis.event_types`) plus
    those named in ``events`` and ``payloads``. An event's payload comes from
    ``events`` (samples, as for :func:`fsm.testing.paths.shortest_paths`) or is drawn
    from the JSON Schema in ``payloads`` (see :func:`fsm.testing.strategies.events`).

    Time: with ``advance(system, ms)``, a step may also let time pass, the model with
    ``machine.advance`` and the system through ``advance``, told by how many
    milliseconds its clock moves: either exactly until the model's next timer (an
    ``after`` transition, a delayed event) is due, or part of the way there, so events
    also arrive between timers; with no timer pending, by up to the machine's longest
    ``after`` delay (a system with a timer of its own is caught too).

    ``context`` / ``input`` start the model; ``teardown(system)`` runs after each run;
    ``settings`` are hypothesis settings (``max_examples``, ``stateful_step_count``...).
    Hypothesis's ``explain`` phase is left out unless ``explain=True``: after a failure
    it re-runs the whole system and model hundreds of times to annotate the report,
    which for a model test takes far longer than finding and shrinking the failure.
    """
    samples = normalize_samples(events)
    payloads = dict(payloads or {})
    drivers = dict(drivers or {})
    if event_types is not None:
        types = list(dict.fromkeys(event_types))
    else:
        types = list(dict.fromkeys([*machine_event_types(machine), *samples, *payloads]))
    if drive is None:
        missing = [t for t in types if t not in drivers]
        if missing:
            raise ValueError(
                f"no way to send {', '.join(map(repr, missing))} to the system: add them to drivers=, "
                "pass drive=, or restrict the events with event_types=[...]"
            )
    checks: list[tuple[Any, Check]] = list(states.items() if isinstance(states, Mapping) else states or ())
    if check is None and not checks:
        raise ValueError("nothing would be checked: pass check=(system, snapshot) or states={state: check}")
    strategies = {t: _strategy_for(t, samples.get(t), payloads.get(t)) for t in types}
    numeric = [t.delay for n in machine.model.nodes for t in n.after if isinstance(t.delay, (int, float))]
    idle_ms = int(max(numeric, default=1000)) or 1000
    finish = teardown
    coverage = Coverage.empty(machine)

    def send(system: Any, event: dict[str, Any]) -> None:
        driver = drivers.get(event["type"], drive)
        assert driver is not None
        driver(system, event)

    class MachineModel(RuleBasedStateMachine):
        """Drives the system and the model side by side (see fsm.testing.model_based)."""

        def __init__(self) -> None:
            super().__init__()
            self.system: Any = None
            self.snapshot: Snapshot | None = None
            self.now = 0.0
            self.trail: list[Any] = []

        @initialize()
        def start(self) -> None:
            self.snapshot, _ = machine.initial_transition(context, input=input)
            self.system = system_factory()
            self.verify("when the system is created")

        @rule(data=st.data())
        def step(self, data: st.DataObject) -> None:
            snap = self.snapshot
            assert snap is not None
            options = self.options(snap)
            if not options:
                return  # a final state, or nothing handled: nothing left to do
            choice = data.draw(_cached(("options", *options), lambda: st.sampled_from(options)), label="step")
            if choice == TIMER:
                delay = data.draw(self.delays(snap), label="ms")
                self.now += delay
                self.snapshot, _ = machine.advance(snap, self.now)
                self.trail.append({"advance": delay})
                assert advance is not None
                advance(self.system, delay)
                self.verify(f"after {delay:g} ms passed")
                return
            event = data.draw(strategies[choice], label="event")
            self.snapshot, _ = machine.transition(snap, event, now=self.now)
            self.trail.append(event)
            send(self.system, dict(event))
            self.verify(f"after {_describe(event)}")

        def options(self, snap: Snapshot) -> list[str]:
            if snap.status != ACTIVE:
                return []
            out = [t for t in types if any(n.candidates(t) for n in snap.nodes)]
            if advance is not None:
                out.append(TIMER)
            return out

        def delays(self, snap: Snapshot) -> st.SearchStrategy[float]:
            """Exactly until the next timer is due (what shrinking tends to), or part of
            the way, so the system is also checked between two timers."""
            if not snap.timers:
                return _cached(("idle", idle_ms), lambda: st.integers(1, idle_ms).map(float))
            remaining = max(min(t.due for t in snap.timers) - self.now, 0.0)
            if remaining < 2:
                return st.just(remaining)
            return _cached(
                ("delay", remaining), lambda: st.just(remaining) | st.integers(1, int(remaining) - 1).map(float)
            )

        def verify(self, when: str) -> None:
            snap = self.snapshot
            assert snap is not None
            if check is not None:
                self.run_check(check, snap, when, "check")
            for pattern, fn in checks:
                if snap.matches(pattern):
                    self.run_check(fn, snap, when, f"states[{pattern!r}]")

        def run_check(self, fn: Check, snap: Snapshot, when: str, name: str) -> None:
            try:
                ok = fn(self.system, snap)
            except AssertionError as exc:
                raise ModelMismatch(self.explain(snap, when, name, str(exc))) from exc
            if ok is False:
                raise ModelMismatch(self.explain(snap, when, name, "returned False"))

        def explain(self, snap: Snapshot, when: str, name: str, detail: str) -> str:
            steps = ", ".join(_describe(s) for s in self.trail) or "(none)"
            return (
                f"the system disagrees with the model {when}: {name} failed"
                f"{': ' + detail if detail else ''}\n"
                f"  model state: {state_label(snap.value)}  context: {snap.context!r}\n"
                f"  steps so far: {steps}"
            )

        def teardown(self) -> None:
            if self.snapshot is not None:
                try:
                    coverage.record(self.trail, context=context, input=input)
                except Exception:
                    pass  # coverage is informative; the run itself already passed or failed
            if finish is not None and self.system is not None:
                finish(self.system)

    MachineModel.__name__ = MachineModel.__qualname__ = f"{_class_name(machine.id)}Model"
    base = settings if settings is not None else Settings()
    if not explain:
        base = Settings(base, phases=[p for p in base.phases if p is not Phase.explain])
    return ModelTest(machine, MachineModel, coverage, base)


_STRATEGIES: dict[tuple[Any, ...], st.SearchStrategy[Any]] = {}


def _cached(key: tuple[Any, ...], make: Callable[[], st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Strategies that depend on the model's state are built once per distinct state:
    building them costs more than a step, and a test runs thousands of steps."""
    found = _STRATEGIES.get(key)
    if found is None:
        if len(_STRATEGIES) > 10_000:
            _STRATEGIES.clear()
        found = _STRATEGIES[key] = make()
    return found


def _strategy_for(kind: str, samples: Any, payload: Any) -> st.SearchStrategy[dict[str, Any]]:
    if samples is not None:
        if callable(samples):
            raise ValueError(f"events[{kind!r}]: model-based tests take a list of samples, not a callable")
        return st.sampled_from([as_event(s, kind) for s in samples])
    return event_of(kind, payload)


def _describe(item: Mapping[str, Any]) -> str:
    if "type" not in item and "advance" in item:
        return f"after {item['advance']:g} ms"
    payload = {k: v for k, v in item.items() if k != "type"}
    return f"{item['type']} {payload}" if payload else str(item["type"])


def _class_name(machine_id: str) -> str:
    cleaned = "".join(c if c.isalnum() else " " for c in machine_id).title().replace(" ", "")
    return cleaned if cleaned and cleaned[0].isalpha() else "Machine"
