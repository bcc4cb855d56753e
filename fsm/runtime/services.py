"""Invoked services: what runs while a state with ``invoke`` is active.

A service implementation is one of:

- another :class:`~fsm.Machine` -- started as a child actor; its final output arrives as
  ``xstate.done.actor.<id>`` and ``sendTo`` / ``sendParent`` connect the two;
- a plain callable ``f(context, event, input)`` -- run on the actor's executor (a thread
  pool by default, or ``"inline"`` to run it right after the step, deterministically);
  its return value arrives as ``xstate.done.actor.<id>`` with ``output``, an exception as
  ``xstate.error.actor.<id>`` with ``error``;
- a coroutine function with the same signature -- awaited on the asyncio loop by
  :class:`~fsm.runtime.aio.AsyncActor`, or run to completion in a worker thread by the
  synchronous actor.

Leaving the invoking state stops the service; a result that arrives afterwards is dropped.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from fsm.semantics import events

if TYPE_CHECKING:
    from fsm.runtime.actor import Actor

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def default_executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fsm-service")
        return _pool


class InlineExecutor(Executor):
    """Runs each call immediately in the submitting thread (deterministic tests)."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # delivered to the machine as an error event
            future.set_exception(exc)
        return future


class Child:
    """A running invocation, as seen by its parent actor."""

    def __init__(self, parent: Actor, child_id: str) -> None:
        self.parent = parent
        self.id = child_id
        self.stopped = False

    def send(self, event: dict[str, Any]) -> None:
        """Events sent to a service that is not a machine are ignored."""

    def stop(self) -> None:
        self.stopped = True

    def finish(self, event: dict[str, Any]) -> None:
        if not self.stopped:
            self.parent._deliver_from_child(self.id, event)


class MachineChild(Child):
    def __init__(self, parent: Actor, child_id: str, machine: Any, input_: Any) -> None:
        from fsm.runtime.actor import Actor

        super().__init__(parent, child_id)
        context = input_ if isinstance(input_, dict) else None
        self.actor = Actor(machine, context=context, input=input_, parent=parent, id=child_id)

    def start(self) -> None:
        self.actor.start()

    def send(self, event: dict[str, Any]) -> None:
        self.actor.send(event)

    def stop(self) -> None:
        super().stop()
        self.actor.stop()


class CallableChild(Child):
    def __init__(self, parent: Actor, child_id: str, fn: Any, input_: Any) -> None:
        super().__init__(parent, child_id)
        self.fn = fn
        self.input = input_

    def start(self) -> None:
        snapshot = self.parent.snapshot
        context, event = snapshot.context, {"type": events.INIT}
        executor = self.parent.executor
        if executor == "inline":
            executor = InlineExecutor()
        elif executor is None:
            executor = default_executor()
        future = executor.submit(_call, self.fn, context, event, self.input)
        future.add_done_callback(self._done)

    def _done(self, future: Future[Any]) -> None:
        exc = future.exception()
        if exc is not None:
            self.finish(events.error_actor(self.id, exc))
        else:
            self.finish(events.done_actor(self.id, future.result()))


def _call(fn: Any, context: Any, event: Any, input_: Any) -> Any:
    result = fn(context, event, input_)
    if inspect.isawaitable(result):
        return asyncio.run(_await(result))
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


def start_service(parent: Actor, child_id: str, impl: Any, input_: Any, resumed: bool = False) -> Child:
    """Start the implementation of an ``invoke`` and return its handle."""
    from fsm.machine import Machine

    child: MachineChild | CallableChild
    if isinstance(impl, Machine):
        child = MachineChild(parent, child_id, impl, input_)
    else:
        child = CallableChild(parent, child_id, impl, input_)
    parent.children[child_id] = child
    child.start()
    return child
