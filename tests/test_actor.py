"""The synchronous actor: mailbox, listeners, effects, errors, timers and the VirtualClock."""

from __future__ import annotations

import copy
import json
import threading
import time
from typing import Any

import pytest

import fsm
from fsm import Actor, ImplementationError, Machine, StepError, VirtualClock

COUNTER = {
    "id": "counter",
    "initial": "counting",
    "context": {"n": 0},
    "states": {
        "counting": {
            "on": {
                "INC": {"actions": "inc"},
                "ADD": {"actions": {"type": "assign", "assignment": {"n": {"expr": "context.n + event.by"}}}},
                "STOP": "stopped",
            }
        },
        "stopped": {"type": "final"},
    },
    "output": {"expr": "event.output"},
}

INC = {"inc": fsm.assign(lambda ctx, ev, params: {"n": ctx["n"] + 1})}


def counter() -> Machine:
    return Machine.from_dict(COUNTER).provide(actions=INC)


def start(machine: Machine, **options: Any) -> Actor:
    options.setdefault("clock", VirtualClock())
    return machine.start(**options)


# ------------------------------------------------------------------------- basics


def test_start_send_snapshot() -> None:
    actor = start(counter())
    assert actor.snapshot.value == "counting"
    assert actor.snapshot.context == {"n": 0}
    assert actor.status == "active"
    actor.send("INC")
    actor.send({"type": "INC"})
    assert actor.snapshot.context == {"n": 2}
    assert actor.get_snapshot() is actor.snapshot


def test_start_with_context() -> None:
    actor = start(counter(), context={"n": 40})
    actor.send("INC")
    assert actor.snapshot.context == {"n": 41}


def test_send_with_payload_kwargs() -> None:
    actor = start(counter())
    actor.send("ADD", by=5)
    actor.send({"type": "ADD", "by": 2})
    assert actor.snapshot.context == {"n": 7}


@pytest.mark.parametrize(
    ("event", "payload"),
    [("ADD", {"type": "X"}), ({"type": "ADD"}, {"by": 1}), ("*", {}), (3, {})],
)
def test_send_refuses_malformed_events(event: Any, payload: dict[str, Any]) -> None:
    actor = start(counter())
    with pytest.raises(fsm.EventError):
        actor.send(event, **payload)
    assert actor.status == "active"


def test_subscribe_gets_every_snapshot_and_unsubscribe_works() -> None:
    actor = start(counter())
    seen: list[int] = []
    sub = actor.subscribe(lambda snap: seen.append(snap.context["n"]))
    for _ in range(3):
        actor.send("INC")
    actor.send("NOPE")  # unhandled: still processed and notified, as XState does
    assert seen == [1, 2, 3, 3]
    sub.unsubscribe()
    actor.send("INC")
    assert seen == [1, 2, 3, 3]
    assert actor.snapshot.context == {"n": 4}


def test_subscription_as_context_manager() -> None:
    actor = start(counter())
    seen: list[int] = []
    with actor.subscribe(lambda snap: seen.append(snap.context["n"])):
        actor.send("INC")
    actor.send("INC")
    assert seen == [1]


def test_listener_failure_does_not_break_the_actor() -> None:
    actor = start(counter())
    seen: list[int] = []

    def bad(snap: Any) -> None:
        raise RuntimeError("listener bug")

    actor.subscribe(bad)
    actor.subscribe(lambda snap: seen.append(snap.context["n"]))
    actor.send("INC")
    assert actor.snapshot.context == {"n": 1}
    assert actor.status == "active"
    assert seen == [1]


def test_complete_listener_and_output() -> None:
    actor = start(counter())
    completed: list[bool] = []
    actor.subscribe(None, None, lambda: completed.append(True))
    actor.send("INC")
    actor.send("STOP")
    assert actor.status == "done"
    assert actor.snapshot.value == "stopped"
    assert completed == [True]
    actor.send("INC")  # ignored once done
    assert actor.snapshot.context == {"n": 1}


def test_stop() -> None:
    clock = VirtualClock()
    machine = Machine.from_dict({"id": "m", "initial": "a", "states": {"a": {"after": {"100": "b"}}, "b": {}}})
    actor = start(machine, clock=clock)
    seen: list[str] = []
    completed: list[bool] = []
    actor.subscribe(lambda snap: seen.append(snap.status), None, lambda: completed.append(True))
    assert clock.pending == 1
    actor.stop()
    assert actor.status == "stopped"
    assert seen == ["stopped"]
    assert completed == [True]
    assert clock.pending == 0
    clock.advance(1000)
    actor.send("ANY")
    assert actor.snapshot.value == "a"
    assert actor.status == "stopped"
    actor.stop()  # idempotent
    assert actor.status == "stopped"


def test_snapshot_before_start_is_an_error() -> None:
    actor = Actor(counter(), clock=VirtualClock())
    with pytest.raises(fsm.FsmError):
        _ = actor.snapshot
    actor.start()
    assert actor.snapshot.value == "counting"


# ------------------------------------------------------------------------- effects


def test_custom_actions_run_in_order_with_context_at_that_point() -> None:
    calls: list[tuple[str, Any, Any, Any]] = []

    def record(name: str) -> Any:
        return lambda ctx, ev, params: calls.append((name, dict(ctx), ev["type"], params))

    machine = Machine.from_dict(
        {
            "id": "m",
            "initial": "a",
            "context": {"n": 0},
            "states": {
                "a": {
                    "exit": "leave",
                    "on": {
                        "GO": {
                            "target": "b",
                            "actions": [
                                {"type": "note", "params": {"k": 1}},
                                {"type": "assign", "assignment": {"n": 1}},
                                "note",
                            ],
                        }
                    },
                },
                "b": {"entry": "arrive"},
            },
        }
    ).provide(actions={"leave": record("leave"), "note": record("note"), "arrive": record("arrive")})
    actor = start(machine)
    actor.send("GO")
    assert calls == [
        ("leave", {"n": 0}, "GO", {}),
        ("note", {"n": 0}, "GO", {"k": 1}),
        ("note", {"n": 1}, "GO", {}),
        ("arrive", {"n": 1}, "GO", {}),
    ]


def test_events_sent_from_actions_are_queued_not_reentered() -> None:
    log: list[str] = []
    holder: list[Actor] = []

    def send_more(ctx: Any, ev: Any, params: Any) -> None:
        log.append(f"send_more:start n={ctx['n']}")
        holder[0].send("INC")
        holder[0].send("INC")
        log.append(f"send_more:end n={ctx['n']}")

    def inc(ctx: Any, ev: Any, params: Any) -> dict[str, Any]:
        return {"n": ctx["n"] + 1}

    def after_inc(ctx: Any, ev: Any, params: Any) -> None:
        log.append(f"after_inc n={ctx['n']}")

    machine = Machine.from_dict(
        {
            "id": "m",
            "initial": "a",
            "context": {"n": 0},
            "states": {
                "a": {
                    "on": {"MORE": {"actions": ["send_more", "after_more"]}, "INC": {"actions": ["inc", "after_inc"]}}
                }
            },
        }
    ).provide(
        actions={
            "send_more": send_more,
            "after_more": lambda c, e, p: log.append("after_more"),
            "inc": fsm.assign(inc),
            "after_inc": after_inc,
        }
    )
    actor = start(machine)
    holder.append(actor)
    snapshots: list[int] = []
    actor.subscribe(lambda snap: snapshots.append(snap.context["n"]))
    actor.send("MORE")
    assert log == [
        "send_more:start n=0",
        "send_more:end n=0",
        "after_more",
        "after_inc n=1",
        "after_inc n=2",
    ]
    assert snapshots == [0, 1, 2]
    assert actor.snapshot.context == {"n": 2}


def test_concurrent_senders_lose_nothing() -> None:
    actor = start(counter())
    seen: list[int] = []
    actor.subscribe(lambda snap: seen.append(snap.context["n"]))
    threads_count, per_thread = 8, 500
    barrier = threading.Barrier(threads_count)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            for _ in range(per_thread):
                actor.send("INC")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(threads_count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    total = threads_count * per_thread
    assert actor.snapshot.context == {"n": total}
    assert seen == list(range(1, total + 1))


def test_emit_and_on() -> None:
    machine = Machine.from_dict(
        {
            "id": "m",
            "initial": "a",
            "context": {"n": 7},
            "states": {
                "a": {
                    "on": {
                        "GO": {
                            "actions": [
                                {"type": "emit", "event": {"type": "PING", "n": {"expr": "context.n"}}},
                                {"type": "emit", "event": {"type": "PONG"}},
                            ]
                        }
                    }
                }
            },
        }
    )
    actor = start(machine)
    pings: list[Any] = []
    everything: list[Any] = []
    sub = actor.on("PING", pings.append)
    actor.on("*", everything.append)
    actor.send("GO")
    assert pings == [{"type": "PING", "n": 7}]
    assert everything == [{"type": "PING", "n": 7}, {"type": "PONG"}]
    sub.unsubscribe()
    actor.send("GO")
    assert len(pings) == 1
    assert len(everything) == 4


def test_emit_handler_failure_is_contained() -> None:
    machine = Machine.from_dict(
        {
            "id": "m",
            "initial": "a",
            "states": {"a": {"on": {"GO": {"actions": {"type": "emit", "event": {"type": "E"}}}}}},
        }
    )
    actor = start(machine)
    actor.on("E", lambda ev: 1 / 0)
    actor.send("GO")
    assert actor.status == "active"


def test_log_action_calls_the_logger() -> None:
    machine = Machine.from_dict(
        {
            "id": "m",
            "initial": "a",
            "context": {"n": 3},
            "states": {
                "a": {
                    "on": {
                        "GO": {
                            "actions": [
                                {"type": "log", "message": {"expr": "context.n * 2"}, "label": "double"},
                                {"type": "assign", "assignment": {"n": 4}},
                                {"type": "log", "message": "plain"},
                                {"type": "log"},
                            ]
                        }
                    }
                }
            },
        }
    )
    calls: list[tuple[Any, ...]] = []
    actor = start(machine, logger=lambda *args: calls.append(args))
    actor.send("GO")
    assert calls == [
        ("double", 6),
        ("plain",),
        ({"context": {"n": 4}, "event": {"type": "GO"}},),
    ]


def test_log_default_logger_uses_logging(caplog: pytest.LogCaptureFixture) -> None:
    machine = Machine.from_dict(
        {"id": "m", "initial": "a", "states": {"a": {"on": {"GO": {"actions": {"type": "log", "message": "hello"}}}}}}
    )
    actor = start(machine)
    with caplog.at_level("INFO", logger="fsm.log"):
        actor.send("GO")
    assert "hello" in caplog.text


# ------------------------------------------------------------------------- errors

FAILING = {
    "id": "m",
    "initial": "a",
    "context": {"n": 0},
    "states": {
        "a": {
            "exit": "before",
            "on": {
                "BOOM": {"target": "b", "actions": [{"type": "assign", "assignment": {"n": 99}}, "boom", "never"]},
                "GUARD": {"target": "b", "guard": "explodes"},
                "INC": {"actions": {"type": "assign", "assignment": {"n": {"expr": "context.n + 1"}}}},
            },
        },
        "b": {"entry": "never"},
    },
}


@pytest.mark.parametrize("event", ["BOOM", "GUARD"])
def test_failure_puts_the_actor_in_error_with_the_previous_snapshot(event: str) -> None:
    ran: list[str] = []

    def boom(ctx: Any, ev: Any, params: Any) -> None:
        raise RuntimeError("custom action failed")

    def explodes(ctx: Any, ev: Any, params: Any) -> bool:
        raise RuntimeError("guard failed")

    machine = Machine.from_dict(FAILING).provide(
        actions={
            "before": lambda c, e, p: ran.append("before"),
            "boom": boom,
            "never": lambda c, e, p: ran.append("never"),
        },
        guards={"explodes": explodes},
    )
    actor = start(machine)
    actor.send("INC")
    errors: list[BaseException] = []
    seen: list[str] = []
    actor.subscribe(lambda snap: seen.append(snap.status), errors.append)
    actor.send(event)
    snap = actor.snapshot
    assert snap.status == "error"
    assert snap.value == "a"
    assert snap.context == {"n": 1}
    assert isinstance(snap.error, StepError)
    assert len(errors) == 1 and isinstance(errors[0], StepError)
    assert isinstance(errors[0].cause, RuntimeError)
    assert seen == ["error"]
    assert "never" not in ran
    if event == "BOOM":
        assert ran == ["before"]  # actions before the failing one have run, as in XState
    # later events are ignored
    actor.send("INC")
    assert actor.snapshot.context == {"n": 1}
    assert actor.status == "error"


def test_failed_start_puts_the_actor_in_error() -> None:
    machine = Machine.from_dict({"id": "m", "initial": "a", "context": {"n": 1}, "states": {"a": {"entry": "boom"}}})
    machine = machine.provide(actions={"boom": lambda c, e, p: 1 / 0})
    actor = machine.start(clock=VirtualClock())
    assert actor.status == "error"
    assert actor.snapshot.value == "a"
    assert actor.snapshot.context == {"n": 1}


def test_infinite_loop_in_actor() -> None:
    machine = Machine.from_dict(
        {"id": "m", "initial": "a", "states": {"a": {"on": {"GO": "b"}}, "b": {"always": "c"}, "c": {"always": "b"}}},
        max_microsteps=20,
    )
    actor = start(machine)
    errors: list[BaseException] = []
    actor.subscribe(None, errors.append)
    actor.send("GO")
    assert actor.status == "error"
    assert actor.snapshot.value == "a"
    assert isinstance(errors[0], fsm.InfiniteLoopError)


def test_missing_implementations_reported_at_start_all_at_once() -> None:
    machine = Machine.from_dict(
        {
            "id": "needs",
            "initial": "a",
            "states": {
                "a": {
                    "entry": ["greet", {"type": "track", "params": {"k": 1}}],
                    "on": {"GO": {"target": "b", "guard": "allowed", "actions": "greet"}},
                    "after": {"patience": "b"},
                },
                "b": {"invoke": {"src": "worker"}},
            },
        }
    )
    with pytest.raises(ImplementationError) as info:
        machine.start(clock=VirtualClock())
    err = info.value
    assert err.missing == {
        "actions": {"greet": ["states.a.entry[0]", "states.a.on.GO.actions"], "track": ["states.a.entry[1]"]},
        "guards": {"allowed": ["states.a.on.GO.guard"]},
        "delays": {"patience": ["states.a.after.patience"]},
        "services": {"worker": ["states.b.invoke.src"]},
    }
    text = str(err)
    for name in ("greet", "track", "allowed", "patience", "worker", "needs"):
        assert name in text
    # providing some leaves the rest reported
    partial = machine.provide(actions={"greet": print, "track": print})
    with pytest.raises(ImplementationError) as info:
        partial.start(clock=VirtualClock())
    assert set(info.value.missing) == {"guards", "delays", "services"}


def test_restore_also_checks_implementations() -> None:
    machine = Machine.from_dict({"id": "m", "initial": "a", "states": {"a": {"entry": "hello"}}})
    snap, _ = machine.initial_transition()
    with pytest.raises(ImplementationError):
        machine.restore(snap.to_dict(), clock=VirtualClock())


# ------------------------------------------------------------------------- timers

CHAIN = {
    "id": "chain",
    "initial": "a",
    "states": {
        "a": {"entry": "enter_a", "after": {"100": "b"}, "on": {"SKIP": "c"}},
        "b": {"entry": "enter_b", "after": {"100": "c"}},
        "c": {"entry": "enter_c", "after": {"100": "d"}},
        "d": {"type": "final"},
    },
}


def chain(log: list[tuple[str, float]], clock: VirtualClock) -> Machine:
    def record(name: str) -> Any:
        return lambda c, e, p: log.append((name, clock.now()))

    return Machine.from_dict(CHAIN).provide(actions={n: record(n) for n in ("enter_a", "enter_b", "enter_c")})


def test_after_fires_only_when_the_clock_advances() -> None:
    clock = VirtualClock()
    log: list[tuple[str, float]] = []
    actor = start(chain(log, clock), clock=clock)
    assert actor.snapshot.value == "a"
    assert [(t.id, t.due) for t in actor.snapshot.timers] == [("xstate.after.100.chain.a", 100)]
    clock.advance(99)
    assert actor.snapshot.value == "a"
    clock.advance(1)
    assert actor.snapshot.value == "b"
    assert log == [("enter_a", 0), ("enter_b", 100)]


def test_chain_crosses_several_states_in_one_advance() -> None:
    clock = VirtualClock()
    log: list[tuple[str, float]] = []
    actor = start(chain(log, clock), clock=clock)
    fired = clock.advance(250)
    assert fired == 2
    assert actor.snapshot.value == "c"
    assert log == [("enter_a", 0), ("enter_b", 100), ("enter_c", 200)]
    assert clock.now() == 250
    assert [(t.id, t.due) for t in actor.snapshot.timers] == [("xstate.after.100.chain.c", 300)]
    clock.advance(50)
    assert actor.status == "done"


def test_leaving_a_state_cancels_its_timer() -> None:
    clock = VirtualClock()
    log: list[tuple[str, float]] = []
    actor = start(chain(log, clock), clock=clock)
    clock.advance(50)
    actor.send("SKIP")
    assert actor.snapshot.value == "c"
    assert [t.id for t in actor.snapshot.timers] == ["xstate.after.100.chain.c"]
    assert clock.pending == 1
    clock.advance(60)  # a's timer (due 100) must not fire
    assert actor.snapshot.value == "c"
    assert log == [("enter_a", 0), ("enter_c", 50)]
    clock.advance(40)
    assert actor.status == "done"


def test_reentering_a_state_restarts_its_timer() -> None:
    clock = VirtualClock()
    machine = Machine.from_dict(
        {
            "id": "m",
            "initial": "a",
            "states": {"a": {"after": {"100": "b"}, "on": {"RESET": {"target": "a", "reenter": True}}}, "b": {}},
        }
    )
    actor = start(machine, clock=clock)
    clock.advance(80)
    actor.send("RESET")
    assert [t.due for t in actor.snapshot.timers] == [180]
    clock.advance(80)
    assert actor.snapshot.value == "a"
    clock.advance(20)
    assert actor.snapshot.value == "b"


@pytest.mark.parametrize("order", [("A", "B"), ("B", "A")])
def test_timers_due_together_fire_in_arming_order(order: tuple[str, str]) -> None:
    clock = VirtualClock()
    fired: list[str] = []
    machine = Machine.from_dict(
        {
            "id": "m",
            "initial": "a",
            "states": {
                "a": {
                    "entry": [{"type": "raise", "event": {"type": name}, "delay": 100, "id": name} for name in order],
                    "on": {"A": {"actions": "got_a"}, "B": {"actions": "got_b"}},
                }
            },
        }
    ).provide(actions={"got_a": lambda c, e, p: fired.append("A"), "got_b": lambda c, e, p: fired.append("B")})
    start(machine, clock=clock)
    clock.advance(100)
    assert fired == list(order)


def test_parallel_after_ties_fire_in_document_order() -> None:
    clock = VirtualClock()
    fired: list[str] = []
    machine = Machine.from_dict(
        {
            "id": "m",
            "type": "parallel",
            "states": {
                "x": {
                    "initial": "x1",
                    "states": {"x1": {"after": {"100": {"target": "x2", "actions": "x_fired"}}}, "x2": {}},
                },
                "y": {
                    "initial": "y1",
                    "states": {"y1": {"after": {"100": {"target": "y2", "actions": "y_fired"}}}, "y2": {}},
                },
            },
        }
    ).provide(actions={"x_fired": lambda c, e, p: fired.append("x"), "y_fired": lambda c, e, p: fired.append("y")})
    actor = start(machine, clock=clock)
    clock.advance(100)
    assert fired == ["x", "y"]
    assert actor.snapshot.value == {"x": "x2", "y": "y2"}


def test_delayed_raise_and_cancel_through_the_clock() -> None:
    clock = VirtualClock()
    machine = Machine.from_dict(
        {
            "id": "m",
            "initial": "a",
            "states": {
                "a": {
                    "entry": {"type": "raise", "event": {"type": "TIMEOUT"}, "delay": 500, "id": "t"},
                    "on": {"TIMEOUT": "late", "HURRY": {"actions": {"type": "cancel", "id": "t"}}},
                },
                "late": {},
            },
        }
    )
    actor = start(machine, clock=clock)
    actor.send("HURRY")
    clock.advance(1000)
    assert actor.snapshot.value == "a"
    other = start(machine, clock=clock)
    clock.advance(500)
    assert other.snapshot.value == "late"


def test_virtual_clock_basics() -> None:
    clock = VirtualClock(start=10)
    assert clock.now() == 10
    calls: list[float] = []
    clock.call_at(30, lambda: calls.append(clock.now()))
    handle = clock.call_at(20, lambda: calls.append(-1))
    handle.cancel()
    assert clock.pending == 1
    assert clock.next_due() == 30
    with pytest.raises(ValueError):
        clock.advance(-1)
    clock.advance(25)
    assert calls == [30]
    assert clock.now() == 35
    assert clock.run_until_idle() == 0


def test_zero_delay_timer_loop_is_bounded() -> None:
    clock = VirtualClock()
    machine = Machine.from_dict(
        {"id": "m", "initial": "a", "states": {"a": {"after": {"0": "b"}}, "b": {"after": {"0": "a"}}}}
    )
    start(machine, clock=clock)
    with pytest.raises(fsm.FsmError):
        clock.advance(1, max_fires=50)


def test_restore_rearms_pending_timers() -> None:
    clock = VirtualClock()
    log: list[tuple[str, float]] = []
    actor = start(chain(log, clock), clock=clock)
    clock.advance(150)
    assert actor.snapshot.value == "b"
    data = json.loads(json.dumps(actor.snapshot.to_dict()))
    actor.stop()
    assert [(t["id"], t["due"]) for t in data["timers"]] == [("xstate.after.100.chain.b", 200)]

    # another process: a fresh clock at the same time line
    clock2 = VirtualClock(start=150)
    log2: list[tuple[str, float]] = []
    resumed = chain(log2, clock2).restore(data, clock=clock2)
    assert resumed.snapshot.value == "b"
    assert clock2.pending == 1
    clock2.advance(49)
    assert resumed.snapshot.value == "b"
    clock2.advance(1)
    assert resumed.snapshot.value == "c"
    assert log2 == [("enter_c", 200)]  # entry of the restored state is not replayed
    clock2.advance(100)
    assert resumed.status == "done"


def test_restore_with_overdue_timer_fires_on_next_advance() -> None:
    clock = VirtualClock()
    log: list[tuple[str, float]] = []
    actor = start(chain(log, clock), clock=clock)
    data = actor.snapshot.to_dict()
    clock2 = VirtualClock(start=5000)
    resumed = chain([], clock2).restore(data, clock=clock2)
    assert resumed.snapshot.value == "a"
    clock2.advance(0)
    assert resumed.snapshot.value == "b"


def test_restore_from_a_snapshot_object_and_continue() -> None:
    machine = counter()
    actor = start(machine)
    actor.send("ADD", by=5)
    resumed = machine.provide(actions={}).restore(actor.snapshot, clock=VirtualClock())
    resumed.send("INC")
    assert resumed.snapshot.context == {"n": 6}
    assert actor.snapshot.context == {"n": 5}


def test_restore_a_snapshot_object_into_an_equal_machine() -> None:
    actor = start(counter())
    actor.send("ADD", by=5)
    resumed = counter().restore(actor.snapshot, clock=VirtualClock())
    resumed.send("INC")
    assert resumed.snapshot.context == {"n": 6}


def test_real_clock_fires_after() -> None:
    machine = Machine.from_dict({"id": "m", "initial": "a", "states": {"a": {"after": {"20": "b"}}, "b": {}}})
    actor = machine.start()
    deadline = time.monotonic() + 5
    while actor.snapshot.value != "b" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert actor.snapshot.value == "b"


def test_actor_does_not_share_context_with_machine_definition() -> None:
    definition = copy.deepcopy(COUNTER)
    machine = Machine.from_dict(definition).provide(actions=INC)
    a, b = start(machine), start(machine)
    a.send("INC")
    assert a.snapshot.context == {"n": 1}
    assert b.snapshot.context == {"n": 0}


TOGGLE = {"id": "t", "initial": "off", "states": {"off": {"on": {"T": "on"}}, "on": {"on": {"T": "off"}}}}


def test_static_steps_through_send_keep_every_actor_rule() -> None:
    """A string event that only changes the configuration takes send's shortest path
    once its plan is recorded; it must still queue before start and while processing,
    notify listeners, be ignored once stopped, and agree with the pure step function."""
    machine = Machine.from_dict(TOGGLE)
    actor = Actor(machine, clock=VirtualClock())
    seen: list[Any] = []
    actor.subscribe(lambda snap: seen.append(snap.value))
    actor.send("T")  # before start: queued, processed by start
    actor.start()
    assert actor.snapshot.value == "on"
    for _ in range(5):  # the first of these records the plans, the rest replay them
        actor.send("T")
    assert seen == ["off", "on", "off", "on", "off", "on", "off"]
    actor.send("NOPE")  # recorded as handled by nothing: no new snapshot
    assert seen[-1] == "off" and actor.snapshot.value == "off"

    pure, _ = machine.initial_transition()
    for _ in range(6):
        pure, _ = machine.transition(pure, "T")
    assert actor.snapshot.to_dict() == pure.to_dict()
    actor.stop()
    actor.send("T")
    assert actor.snapshot.status == "stopped" and actor.snapshot.value == "off"


def test_static_step_sent_from_an_action_is_queued() -> None:
    holder: list[Actor] = []

    def kick(ctx: Any, ev: Any, params: Any) -> None:
        holder[0].send("T")  # a recorded static step from b, sent while K is processing

    machine = Machine.from_dict(
        {
            "id": "m",
            "initial": "b",
            "states": {"b": {"on": {"T": "c", "K": {"actions": "kick"}}}, "c": {"on": {"T": "b"}}},
        }
    ).provide(actions={"kick": kick})
    actor = start(machine)
    holder.append(actor)
    actor.send("T")
    actor.send("T")  # (b, T) and (c, T) are recorded now
    assert actor.snapshot.value == "b"
    actor.send("K")  # K's step ends in b; only then may the queued T take it to c
    assert actor.snapshot.value == "c"


def test_static_step_sent_before_start_to_a_restored_actor_waits_for_start() -> None:
    machine = Machine.from_dict(TOGGLE)
    warm = start(machine)
    warm.send("T")
    warm.send("T")  # records (off, T) and (on, T)
    actor = Actor(machine, snapshot=warm.snapshot, clock=VirtualClock())
    seen: list[Any] = []
    actor.subscribe(lambda snap: seen.append(snap.value))
    actor.send("T")
    assert seen == []
    actor.start()
    assert seen == ["off", "on"]


def test_python_action_creators_work_as_implementations() -> None:
    """fsm.send_to / send_parent / raise_event(delay, id) / cancel / emit / log, given
    through provide() instead of their JSON forms."""
    child = Machine.from_dict(
        {"id": "kid", "initial": "idle", "states": {"idle": {"on": {"PING": {"actions": "pong"}}}}}
    ).provide(actions={"pong": fsm.send_parent(lambda ctx, ev, params: {"type": "PONG", "n": ev["n"]})})
    logged: list[tuple[Any, ...]] = []
    parent = Machine.from_dict(
        {
            "id": "parent",
            "initial": "on",
            "context": {"pongs": [], "late": 0},
            "states": {
                "on": {
                    "invoke": {"id": "kid", "src": "kid"},
                    "on": {
                        "ASK": {"actions": "ping"},
                        "PONG": {"actions": ["keep", "shout", "note"]},
                        "ARM": {"actions": "arm"},
                        "DISARM": {"actions": "disarm"},
                        "LATE": {"actions": "countLate"},
                    },
                }
            },
        }
    ).provide(
        services={"kid": child},
        actions={
            "ping": fsm.send_to("kid", lambda ctx, ev, params: {"type": "PING", "n": len(ctx["pongs"]) + 1}),
            "keep": fsm.assign(lambda ctx, ev, params: {"pongs": [*ctx["pongs"], ev["n"]]}),
            "shout": fsm.emit(lambda ctx, ev, params: {"type": "SHOUT", "n": ev["n"]}),
            "note": fsm.log(lambda ctx, ev, params: f"pongs={ctx['pongs']}", label="parent"),
            "arm": fsm.raise_event("LATE", delay=100, id="late"),
            "disarm": fsm.cancel("late"),
            "countLate": fsm.assign(lambda ctx, ev, params: {"late": ctx["late"] + 1}),
        },
    )
    clock = VirtualClock()
    actor = Actor(parent, clock=clock, logger=lambda *args: logged.append(args))
    shouts: list[dict[str, Any]] = []
    actor.on("SHOUT", shouts.append)
    actor.start()
    actor.send("ASK")
    actor.send("ASK")
    assert actor.snapshot.context["pongs"] == [1, 2]
    assert shouts == [{"type": "SHOUT", "n": 1}, {"type": "SHOUT", "n": 2}]
    assert logged == [("parent", "pongs=[1]"), ("parent", "pongs=[1, 2]")]

    actor.send("ARM")
    clock.advance(100)
    assert actor.snapshot.context["late"] == 1
    actor.send("ARM")
    actor.send("DISARM")
    clock.advance(1000)
    assert actor.snapshot.context["late"] == 1 and actor.snapshot.timers == ()
