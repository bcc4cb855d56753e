"""The runtime beyond the basic actor: asyncio, children, timers via the pure API,
inspection adapters."""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

import fsm
from fsm.runtime.inspection import log_inspector, otel_inspector

COUNTER = {
    "id": "counter",
    "initial": "idle",
    "context": {"n": 0},
    "states": {
        "idle": {
            "on": {
                "INC": {"actions": [{"type": "assign", "assignment": {"n": {"expr": "context.n + 1"}}}, "tell"]},
                "GO": "busy",
            }
        },
        "busy": {
            "invoke": {
                "id": "job",
                "src": "job",
                "input": {"n": {"expr": "context.n"}},
                "onDone": {
                    "target": "idle",
                    "actions": {"type": "assign", "assignment": {"result": {"expr": "event.output"}}},
                },
                "onError": {
                    "target": "idle",
                    "actions": {"type": "assign", "assignment": {"error": {"expr": "event.error.message"}}},
                },
            },
            "on": {"CANCEL": "idle"},
        },
    },
}


def counter(**impl: Any) -> fsm.Machine:
    actions = {"tell": lambda ctx, ev, params: None, **impl.pop("actions", {})}
    services = {"job": lambda ctx, ev, input_: input_["n"], **impl.pop("services", {})}
    return fsm.Machine.from_dict(COUNTER).provide(actions=actions, services=services, **impl)


# -- asyncio -----------------------------------------------------------------------------


def test_async_actor_awaits_async_actions_in_order() -> None:
    log: list[str] = []

    async def tell(ctx: Any, ev: Any, params: Any) -> None:
        log.append(f"start {ctx['n']}")
        await asyncio.sleep(0)
        log.append(f"end {ctx['n']}")

    async def main() -> Any:
        actor = await fsm.AsyncActor(counter(actions={"tell": tell})).start()
        await actor.send("INC")
        await actor.send("INC")
        return actor.snapshot.context

    assert asyncio.run(main()) == {"n": 2}
    assert log == ["start 1", "end 1", "start 2", "end 2"]


def test_async_actor_runs_coroutine_services_without_blocking_the_loop() -> None:
    ticks: list[int] = []

    async def job(ctx: Any, ev: Any, input_: Any) -> int:
        for i in range(3):
            ticks.append(i)
            await asyncio.sleep(0.001)
        return input_["n"] * 10

    async def other_work() -> None:
        for _ in range(3):
            ticks.append(-1)
            await asyncio.sleep(0.001)

    async def main() -> Any:
        actor = await fsm.AsyncActor(counter(services={"job": job})).start()
        await actor.send("INC")
        await actor.send("GO")
        assert actor.snapshot.value == "busy"
        await asyncio.gather(other_work(), _until(lambda: actor.snapshot.value == "idle"))
        return actor.snapshot.context

    assert asyncio.run(main()) == {"n": 1, "result": 10}
    assert -1 in ticks[: ticks.index(2)], "the loop ran other work while the service was pending"


def test_async_actor_runs_plain_services_in_an_executor_and_reports_errors() -> None:
    main_thread = threading.get_ident()
    seen: list[int] = []

    def job(ctx: Any, ev: Any, input_: Any) -> int:
        seen.append(threading.get_ident())
        raise ValueError("boom")

    async def main() -> Any:
        actor = await fsm.AsyncActor(counter(services={"job": job})).start()
        await actor.send("GO")
        await _until(lambda: actor.snapshot.value == "idle")
        return actor.snapshot.context

    assert asyncio.run(main()) == {"n": 0, "error": "boom"}
    assert seen and seen[0] != main_thread


def test_async_actor_with_virtual_clock_walks_deadlines() -> None:
    machine = fsm.Machine.from_dict(
        {"id": "chain", "initial": "a", "states": {"a": {"after": {"100": "b"}}, "b": {"after": {"100": "c"}}, "c": {}}}
    )

    async def main() -> list[Any]:
        clock = fsm.VirtualClock()
        actor = await fsm.AsyncActor(machine, clock=clock).start()
        seen = [actor.snapshot.value]
        await clock.advance_async(150)
        seen.append(actor.snapshot.value)
        await clock.advance_async(100)
        seen.append(actor.snapshot.value)
        return seen

    assert asyncio.run(main()) == ["a", "b", "c"]


def test_async_actor_with_the_loop_clock() -> None:
    machine = fsm.Machine.from_dict({"initial": "a", "states": {"a": {"after": {"20": "b"}}, "b": {}}})

    async def main() -> Any:
        actor = await fsm.AsyncActor(machine).start()
        assert actor.snapshot.value == "a"
        await _until(lambda: actor.snapshot.value == "b", timeout=2.0)
        return actor.snapshot.value

    assert asyncio.run(main()) == "b"


def test_send_from_inside_an_async_action_is_queued_not_reentered() -> None:
    machine = fsm.Machine.from_dict(
        {
            "initial": "a",
            "states": {"a": {"on": {"GO": {"target": "b", "actions": "kick"}}}, "b": {"on": {"KICK": "c"}}, "c": {}},
        }
    )
    order: list[str] = []
    holder: dict[str, fsm.AsyncActor] = {}

    async def kick(ctx: Any, ev: Any, params: Any) -> None:
        await holder["actor"].send("KICK")
        order.append(f"after send, still {holder['actor'].snapshot.value}")

    async def main() -> Any:
        holder["actor"] = actor = fsm.AsyncActor(machine.provide(actions={"kick": kick}))
        await actor.start()
        await actor.send("GO")
        return actor.snapshot.value

    assert asyncio.run(main()) == "c"
    assert order == ["after send, still a"]


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.002)


# -- children ---------------------------------------------------------------------------

CHILD = {
    "id": "child",
    "initial": "waiting",
    "context": {"got": 0},
    "states": {
        "waiting": {
            "on": {
                "PING": {
                    "actions": [
                        {"type": "assign", "assignment": {"got": {"expr": "context.got + 1"}}},
                        {"type": "sendParent", "event": {"type": "PONG", "n": {"expr": "context.got"}}},
                    ]
                },
                "FINISH": "finished",
            }
        },
        "finished": {"type": "final", "output": {"expr": "context.got"}},
    },
    "output": {"expr": "context.got"},
}

PARENT = {
    "id": "parent",
    "initial": "running",
    "context": {"pongs": [], "total": None},
    "states": {
        "running": {
            "invoke": {"id": "kid", "src": "kid", "onDone": {"target": "done", "actions": "keepOutput"}},
            "on": {
                "ASK": {"actions": {"type": "sendTo", "to": "kid", "event": {"type": "PING"}}},
                "PONG": {"actions": {"type": "assign", "assignment": {"pongs": {"expr": "context.pongs + [event.n]"}}}},
                "END": {"actions": {"type": "sendTo", "to": "kid", "event": {"type": "FINISH"}}},
                "LEAVE": "left",
            },
        },
        "done": {"type": "final"},
        "left": {},
    },
}


def parent_machine() -> fsm.Machine:
    keep = fsm.assign({"total": lambda ctx, ev, params: ev["output"]})
    return fsm.Machine.from_dict(PARENT).provide(
        services={"kid": fsm.Machine.from_dict(CHILD)}, actions={"keepOutput": keep}
    )


def test_child_machines_talk_both_ways_and_report_done() -> None:
    actor = parent_machine().start(clock=fsm.VirtualClock())
    actor.send("ASK")
    actor.send("ASK")
    assert actor.snapshot.context["pongs"] == [1, 2]
    assert actor.children["kid"].actor.snapshot.context == {"got": 2}
    actor.send("END")
    assert actor.snapshot.status == "done"
    assert actor.snapshot.context["total"] == 2


def test_leaving_the_invoking_state_stops_the_child() -> None:
    actor = parent_machine().start(clock=fsm.VirtualClock())
    child = actor.children["kid"].actor
    actor.send("LEAVE")
    assert child.snapshot.status == "stopped"
    assert "kid" not in actor.children and actor.snapshot.children == {}


DELAYED_KID = {
    "id": "kid",
    "initial": "waiting",
    "context": {"got": 0},
    "states": {
        "waiting": {
            "on": {
                "PING": {
                    "actions": [
                        {"type": "assign", "assignment": {"got": {"expr": "context.got + 1"}}},
                        {"type": "sendParent", "event": {"type": "PONG", "n": {"expr": "context.got"}}, "delay": 500},
                    ]
                }
            }
        }
    },
}

DELAYED_PARENT = {
    "id": "parent",
    "initial": "running",
    "context": {"pongs": []},
    "states": {
        "running": {
            "invoke": {"id": "kid", "src": "kid"},
            "on": {
                "ASK_LATER": {
                    "actions": {"type": "sendTo", "to": "kid", "event": {"type": "PING"}, "delay": 1000, "id": "ping"}
                },
                "NEVER_MIND": {"actions": {"type": "cancel", "id": "ping"}},
                "PONG": {"actions": {"type": "assign", "assignment": {"pongs": {"expr": "context.pongs + [event.n]"}}}},
            },
        }
    },
}


def delayed_pair() -> tuple[fsm.VirtualClock, fsm.Actor]:
    clock = fsm.VirtualClock()
    machine = fsm.Machine.from_dict(DELAYED_PARENT).provide(services={"kid": fsm.Machine.from_dict(DELAYED_KID)})
    return clock, machine.start(clock=clock)


def test_a_delayed_send_to_a_child_arrives_when_due() -> None:
    clock, actor = delayed_pair()
    kid = actor.children["kid"].actor  # type: ignore[attr-defined]
    actor.send("ASK_LATER")
    clock.advance(999)
    assert kid.snapshot.context == {"got": 0}
    clock.advance(1)
    assert kid.snapshot.context == {"got": 1}
    assert actor.snapshot.timers == ()


def test_a_delayed_send_to_the_parent_arrives_when_due() -> None:
    clock, actor = delayed_pair()
    kid = actor.children["kid"].actor  # type: ignore[attr-defined]
    actor.send("ASK_LATER")
    clock.advance(1000)  # the PING arrives; the child answers 500 ms later
    assert [t.to for t in kid.snapshot.timers] == ["#_parent"]
    clock.advance(499)
    assert actor.snapshot.context["pongs"] == []
    clock.advance(1)
    assert actor.snapshot.context["pongs"] == [1]
    assert kid.snapshot.timers == ()


def test_cancel_drops_a_pending_delayed_send_by_id() -> None:
    clock, actor = delayed_pair()
    kid = actor.children["kid"].actor  # type: ignore[attr-defined]
    actor.send("ASK_LATER")
    assert [t.id for t in actor.snapshot.timers] == ["ping"]
    actor.send("NEVER_MIND")
    assert actor.snapshot.timers == ()
    assert clock.advance(5000) == 0
    assert kid.snapshot.context == {"got": 0}
    assert actor.snapshot.context["pongs"] == []


def test_async_actor_with_a_child_machine() -> None:
    async def main() -> Any:
        actor = await fsm.AsyncActor(parent_machine(), clock=fsm.VirtualClock()).start()
        kid = actor.children["kid"].actor  # type: ignore[attr-defined]
        assert isinstance(kid, fsm.AsyncActor)
        # The child runs in its own task: its reply reaches the parent after the
        # parent's own send has returned.
        await actor.send("ASK")
        await _until(lambda: actor.snapshot.context["pongs"] == [1])
        await actor.send("ASK")
        await _until(lambda: actor.snapshot.context["pongs"] == [1, 2])
        assert kid.snapshot.context == {"got": 2}
        await actor.send("END")
        await _until(lambda: actor.snapshot.status != "active")
        return actor.snapshot.status, actor.snapshot.context["total"], kid.snapshot.status

    assert asyncio.run(main()) == ("done", 2, "done")


def test_async_actor_action_that_raises_keeps_the_previous_snapshot() -> None:
    errors: list[BaseException] = []

    async def tell(ctx: Any, ev: Any, params: Any) -> None:
        await asyncio.sleep(0)
        if ctx["n"] == 2:
            raise RuntimeError("no second increment")

    async def main() -> Any:
        actor = await fsm.AsyncActor(counter(actions={"tell": tell}), clock=fsm.VirtualClock()).start()
        actor.subscribe(error=errors.append)
        await actor.send("INC")
        before = actor.snapshot
        await actor.send("INC")
        failed = actor.snapshot
        await actor.send("INC")  # ignored: the actor has stopped
        assert actor.snapshot is failed
        return before, failed

    before, failed = asyncio.run(main())
    assert failed.status == "error"
    assert (failed.value, failed.context) == (before.value, before.context) == ("idle", {"n": 1})
    assert [str(e) for e in errors] == ["action 'tell' raised while processing 'INC': no second increment"]
    assert isinstance(errors[0], fsm.StepError) and isinstance(errors[0].cause, RuntimeError)


def test_late_result_of_a_cancelled_service_is_dropped() -> None:
    # The two invocations differ by input (INC between them), block on their own events
    # and return their own values, so the test decides the order they finish in and can
    # tell whose result the actor took.
    gates = {0: ("first", threading.Event()), 1: ("second", threading.Event())}

    def job(ctx: Any, ev: Any, input_: Any) -> str:
        value, gate = gates[input_["n"]]
        gate.wait(5)
        return value

    executor = RecordingExecutor()
    actor = counter(services={"job": job}).start(clock=fsm.VirtualClock(), executor=executor)
    try:
        actor.send("GO")
        actor.send("CANCEL")
        actor.send("INC")
        actor.send("GO")  # a new invocation with the same id
        first, second = executor.futures
        # Done callbacks run in the order they were added, so once this one has run the
        # actor's own callback has offered the first result to the actor.
        offered = threading.Event()
        first.add_done_callback(lambda _: offered.set())
        gates[0][1].set()
        assert offered.wait(5)
        assert first.result() == "first"
        assert actor.snapshot.value == "busy", "the stopped invocation's result was taken"
        assert "result" not in actor.snapshot.context
        assert "job" in actor.children
        gates[1][1].set()
        assert second.result(5) == "second"
        deadline = time.monotonic() + 5
        while actor.snapshot.value != "idle" and time.monotonic() < deadline:
            time.sleep(0.002)
        assert actor.snapshot.value == "idle"
        assert actor.snapshot.context == {"n": 1, "result": "second"}
    finally:
        for _, gate in gates.values():
            gate.set()
        executor.shutdown(wait=True)


class RecordingExecutor(ThreadPoolExecutor):
    """A thread pool that keeps the futures it hands out, so a test can wait on one."""

    def __init__(self) -> None:
        super().__init__(max_workers=2, thread_name_prefix="test-service")
        self.futures: list[Future[Any]] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        self.futures.append(future)
        return future


def test_a_result_queued_before_its_invocation_stopped_is_dropped() -> None:
    """The harder case: the result is already in the mailbox when the invocation is
    stopped (it arrives while the step that leaves the state runs its actions), and by
    the time it is taken a new invocation with the same id runs. Only the mailbox's
    identity check can tell the two invocations apart here."""
    first_result = asyncio.Event()
    second_result = asyncio.Event()
    calls: list[int] = []
    holder: dict[str, Any] = {}

    async def job(ctx: Any, ev: Any, input_: Any) -> str:
        calls.append(input_["n"])
        if len(calls) == 1:
            await first_result.wait()
            return "first"
        await second_result.wait()
        return "second"

    async def leave(ctx: Any, ev: Any, params: Any) -> None:
        actor = holder["actor"]
        actor.send_nowait("GO")  # queued: re-enter busy right after this step
        first_result.set()
        await _until(holder["task"].done)  # its result is now queued behind GO

    definition: dict[str, Any] = copy.deepcopy(COUNTER)
    definition["states"]["busy"]["on"]["CANCEL"] = {"target": "idle", "actions": "leave"}

    async def main() -> Any:
        machine = fsm.Machine.from_dict(definition).provide(
            actions={"tell": lambda ctx, ev, params: None, "leave": leave}, services={"job": job}
        )
        holder["actor"] = actor = fsm.AsyncActor(machine, clock=fsm.VirtualClock())
        await actor.start()
        await actor.send("GO")
        await _until(lambda: calls == [0])
        holder["task"] = actor.children["job"].task  # type: ignore[attr-defined]
        await actor.send("CANCEL")
        await _until(lambda: len(calls) == 2)  # the second invocation runs
        assert actor.snapshot.value == "busy", "the stopped invocation's result was taken"
        assert "result" not in actor.snapshot.context
        second_result.set()
        await _until(lambda: actor.snapshot.value == "idle")
        return actor.snapshot.context

    assert asyncio.run(main()) == {"n": 0, "result": "second"}


def test_async_actor_leaving_the_invoking_state_cancels_a_coroutine_service() -> None:
    seen: list[str] = []

    async def job(ctx: Any, ev: Any, input_: Any) -> str:
        seen.append("started")
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return "too late"

    async def main() -> Any:
        actor = await fsm.AsyncActor(counter(services={"job": job}), clock=fsm.VirtualClock()).start()
        await actor.send("GO")
        await _until(lambda: seen == ["started"])
        task = actor.children["job"].task  # type: ignore[attr-defined]
        await actor.send("CANCEL")
        assert "job" not in actor.children
        await _until(lambda: task.done())  # the wrapper task ends quietly once cancelled
        return actor.snapshot.value, actor.snapshot.context

    assert asyncio.run(main()) == ("idle", {"n": 0})
    assert seen == ["started", "cancelled"]


def test_a_service_is_started_without_the_event_only_its_input_sees_it() -> None:
    seen: list[tuple[Any, Any, Any]] = []

    def job(ctx: Any, ev: Any, input_: Any) -> None:
        seen.append((ctx, ev, input_))

    machine = fsm.Machine.from_dict(
        {
            "id": "m",
            "initial": "idle",
            "context": {"k": 1},
            "states": {
                "idle": {"on": {"GO": "busy"}},
                "busy": {"invoke": {"src": "job", "input": {"amount": {"expr": "event.amount"}}}},
            },
        }
    ).provide(services={"job": job})
    actor = machine.start(clock=fsm.VirtualClock(), executor="inline")
    actor.send("GO", amount=7)
    assert seen == [({"k": 1}, {"type": "xstate.init"}, {"amount": 7})]


def test_restore_restarts_a_running_service_with_its_recorded_input() -> None:
    machine = counter(services={"job": lambda ctx, ev, input_: input_["n"] + 100})
    snap, _ = machine.initial_transition()
    snap, _ = machine.transition(snap, "INC")
    snap, _ = machine.transition(snap, "GO")
    assert snap.children == {"job": {"src": "job", "input": {"n": 1}}}
    actor = machine.restore(snap.to_dict(), clock=fsm.VirtualClock(), executor="inline")
    assert actor.snapshot.value == "idle"
    assert actor.snapshot.context["result"] == 101


# -- timers through the pure API ---------------------------------------------------------

BREAKER = {
    "id": "b",
    "initial": "closed",
    "states": {
        "closed": {"on": {"FAIL": "open"}},
        "open": {"after": {"5000": "half"}, "on": {"FAIL": {"target": "open", "reenter": True}}},
        "half": {},
    },
}


def test_a_stale_timer_delivery_is_dropped() -> None:
    machine = fsm.Machine.from_dict(BREAKER)
    snap, _ = machine.initial_transition()
    snap, _ = machine.transition(snap, "FAIL", now=0)
    (first,) = snap.timers
    snap, _ = machine.transition(snap, "FAIL", now=1000)  # re-entered: same id, new timer
    (second,) = snap.timers
    assert first.id == second.id and second.due == 6000
    stale, effects = machine.fire(snap, first)
    assert stale is snap and effects == []
    fired, _ = machine.fire(snap, second)
    assert fired.value == "half"


def test_pure_advance_fires_due_timers_in_order() -> None:
    machine = fsm.Machine.from_dict(
        {"id": "chain", "initial": "a", "states": {"a": {"after": {"100": "b"}}, "b": {"after": {"100": "c"}}, "c": {}}}
    )
    snap, _ = machine.initial_transition(now=0)
    snap, _ = machine.advance(snap, 150)
    assert snap.value == "b" and snap.timers[0].due == 200
    snap, _ = machine.advance(snap, 1000)
    assert snap.value == "c" and snap.timers == ()


# -- inspection --------------------------------------------------------------------------


def test_inspect_receives_events_microsteps_actions_and_snapshots() -> None:
    records: list[dict[str, Any]] = []
    actor = counter().start(clock=fsm.VirtualClock(), inspect=records.append)
    actor.send("INC")
    kinds = [r["type"] for r in records]
    assert kinds[:2] == ["@fsm.event", "@fsm.microstep"]
    inc = kinds[kinds.index("@fsm.event", 1) :]
    assert inc == ["@fsm.event", "@fsm.microstep", "@fsm.action", "@fsm.snapshot"]
    micro = [r for r in records if r["type"] == "@fsm.microstep"][-1]
    assert micro["transitions"] == [{"source": "counter.idle", "event": "INC", "targets": []}]


def test_log_inspector_writes_structured_records(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fsm.inspect")
    actor = counter().start(clock=fsm.VirtualClock(), inspect=log_inspector())
    actor.send("GO")
    messages = [r.getMessage() for r in caplog.records]
    assert "counter: event GO" in messages
    final = [r for r in caplog.records if getattr(r, "fsm_value", None) == "busy"]
    assert final and final[0].fsm_status == "active"  # type: ignore[attr-defined]


def test_otel_inspector_makes_one_span_per_macrostep() -> None:
    sdk = pytest.importorskip("opentelemetry.sdk.trace", reason="opentelemetry-sdk is a dev extra")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    actor = counter().start(clock=fsm.VirtualClock(), inspect=otel_inspector(provider.get_tracer("test")))
    actor.send("INC")
    actor.send("GO")
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["fsm xstate.init", "fsm INC", "fsm GO"]
    go = spans[-1]
    assert go.attributes["fsm.state.before"] == '"idle"'
    assert go.attributes["fsm.state.after"] == '"busy"'
    assert [e.name for e in spans[1].events] == ["microstep", "action"]
