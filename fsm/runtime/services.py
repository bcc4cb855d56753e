"""Invoked services: what runs while a state with ``invoke`` is active.

A service implementation is one of:

- another :class:`~fsm.Machine` -- started as a child actor; its final output arrives as
  ``xstate.done.actor.<id>`` and ``sendTo`` / ``sendParent`` connect the two;
- a plain callable ``f(context, event, input)`` -- on the synchronous actor it runs on the
  actor's executor (a thread pool by default, or ``"inline"`` to run it right after the
  step, deterministically); on :class:`~fsm.runtime.aio.AsyncActor` in the loop's
  default executor. Its return value arrives as ``xstate.done.actor.<id>`` with
  ``output``, an exception as ``xstate.error.actor.<id>`` with ``error``;
- a coroutine function with the same signature -- a task on the asyncio loop with
  ``AsyncActor``, or run to completion in a worker thread by the synchronous actor.

``context`` is the parent's context when the service starts: right after the step that
entered the invoking state, or the restored snapshot's when an actor resumes. ``event``
is always ``{"type": "xstate.init"}``, not the event that entered the state: as in
XState v5, an invoked actor is started without that event, and only the invoke's
``input`` is computed with it (``"input": {"amount": {"expr": "event.amount"}}``), so
anything the service needs from the event goes through ``input``. Leaving the state
stops the service (on ``AsyncActor`` a coroutine's task is cancelled; whatever runs in
a thread runs to its end); a result that arrives afterwards is dropped.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from fsm.errors import FsmError
from fsm.semantics import events

if TYPE_CHECKING:
    from fsm.runtime.actor import ActorBase

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

    def __init__(self, parent: ActorBase, child_id: str) -> None:
        self.parent = parent
        self.id = child_id
        self.stopped = False

    def start(self) -> None:
        raise NotImplementedError

    def send(self, event: dict[str, Any]) -> None:
        """Events sent to a service that is not a machine are ignored, as in XState."""

    def stop(self) -> None:
        self.stopped = True

    def finish(self, event: dict[str, Any]) -> None:
        if not self.stopped:
            self.parent._deliver_from_child(self, event)


class MachineChild(Child):
    def __init__(self, parent: ActorBase, child_id: str, machine: Any, input_: Any) -> None:
        super().__init__(parent, child_id)
        context = input_ if isinstance(input_, dict) else None
        actor_class: Any
        if getattr(parent, "is_async", False):
            from fsm.runtime.aio import AsyncActor

            actor_class = AsyncActor
        else:
            from fsm.runtime.actor import Actor

            actor_class = Actor
        self.actor = actor_class(machine, context=context, input=input_, parent=parent, id=child_id)
        self.actor._handle = self
        self.task: Any = None

    def start(self) -> None:
        started = self.actor.start()
        if inspect.isawaitable(started):
            self.task = asyncio.ensure_future(started)

    def send(self, event: dict[str, Any]) -> None:
        self.actor._enqueue(("event", (event, None)))

    def stop(self) -> None:
        super().stop()
        self.actor.stop()


class CallableChild(Child):
    """A function (or coroutine function) run off the actor's own thread / task."""

    def __init__(self, parent: ActorBase, child_id: str, fn: Any, input_: Any) -> None:
        super().__init__(parent, child_id)
        self.fn = fn
        self.input = input_
        self.task: asyncio.Task[Any] | None = None

    def start(self) -> None:
        snapshot = self.parent.snapshot
        args = (snapshot.context, {"type": events.INIT}, self.input)
        if getattr(self.parent, "is_async", False):
            self.task = asyncio.ensure_future(self._run_async(args))
            return
        executor = self.parent.executor
        if executor == "inline":
            executor = InlineExecutor()
        elif executor is None:
            executor = default_executor()
        future = executor.submit(_call_blocking, self.fn, *args)
        future.add_done_callback(self._done)

    async def _run_async(self, args: tuple[Any, Any, Any]) -> None:
        try:
            if inspect.iscoroutinefunction(self.fn):
                result = await self.fn(*args)
            else:
                result = await asyncio.get_running_loop().run_in_executor(None, self.fn, *args)
                if inspect.isawaitable(result):
                    result = await result
        except asyncio.CancelledError:
            return
        except Exception as exc:
            self.finish(events.error_actor(self.id, exc))
            return
        self.finish(events.done_actor(self.id, result))

    def _done(self, future: Future[Any]) -> None:
        exc = future.exception()
        if exc is not None:
            self.finish(events.error_actor(self.id, exc))
        else:
            self.finish(events.done_actor(self.id, future.result()))

    def stop(self) -> None:
        super().stop()
        if self.task is not None:
            self.task.cancel()


def _call_blocking(fn: Any, context: Any, event: Any, input_: Any) -> Any:
    if inspect.iscoroutinefunction(fn) and _loop_running():
        raise FsmError("an async service on a synchronous Actor inside a running event loop: use fsm.AsyncActor")
    result = fn(context, event, input_)
    if inspect.isawaitable(result):
        return asyncio.run(_await(result))
    return result


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _await(awaitable: Any) -> Any:
    return await awaitable


def start_service(parent: ActorBase, child_id: str, impl: Any, input_: Any) -> Child:
    """Start the implementation of an ``invoke`` and return its handle."""
    from fsm.machine import Machine

    child: Child
    if isinstance(impl, Machine):
        child = MachineChild(parent, child_id, impl, input_)
    else:
        child = CallableChild(parent, child_id, impl, input_)
    parent.children[child_id] = child
    child.start()
    return child
