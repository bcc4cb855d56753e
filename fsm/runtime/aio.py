"""The asyncio front end: :class:`AsyncActor`.

One documented way to run machines inside an event loop::

    actor = await fsm.AsyncActor(machine).start()
    await actor.send("PAY", amount=3)      # returns once the actor is idle again

Async actions (``async def`` implementations) are awaited in order, async services run as
tasks, plain callable services run in the loop's default executor, and timers use the
loop's clock (or a :class:`~fsm.runtime.clock.VirtualClock`, advanced with
``await clock.advance_async(ms)``). The event loop is never blocked by the actor itself;
run-to-completion still holds: events that arrive while an async action is awaited wait
in the mailbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fsm.errors import StepError
from fsm.runtime.actor import ActorBase, MailItem
from fsm.runtime.clock import Clock, TimerHandle
from fsm.semantics import events
from fsm.semantics.snapshot import Effect, Snapshot

if TYPE_CHECKING:
    from fsm.machine import Machine


class LoopClock:
    """Milliseconds on the running event loop's clock; timers via ``loop.call_at``."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def now(self) -> float:
        return self.loop.time() * 1000.0

    def call_at(self, due: float, callback: Callable[[], Any]) -> TimerHandle:
        handle = _LoopTimerHandle(due, 0, callback)
        handle.inner = self.loop.call_at(due / 1000.0, handle.run)
        return handle


class _LoopTimerHandle(TimerHandle):
    __slots__ = ("inner",)

    inner: asyncio.TimerHandle | None

    def run(self) -> None:
        if not self.cancelled:
            self.callback()

    def cancel(self) -> None:
        super().cancel()
        inner = getattr(self, "inner", None)
        if inner is not None:
            inner.cancel()


class AsyncActor(ActorBase):
    """A running machine instance driven by an asyncio event loop."""

    is_async = True

    def __init__(self, machine: Machine, **options: Any) -> None:
        super().__init__(machine, **options)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._idle: list[asyncio.Future[None]] = []

    def _default_clock(self) -> Clock:
        return LoopClock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    async def start(self) -> AsyncActor:
        """Compute the initial snapshot (unless restored) and run its effects."""
        if self._started:
            return self
        self.machine.check_implementations()
        self._loop = asyncio.get_running_loop()
        self._started = True
        self._processing = True
        try:
            if self._snapshot is None:
                begun = self._begin()
                if isinstance(begun, StepError):
                    self._fail(None, begun)
                else:
                    await self._apply(None, *begun)
            else:
                self._resume()
        finally:
            self._processing = False
        if self._mailbox:
            await self._wait_idle()
        return self

    async def send(self, event: Any, **payload: Any) -> None:
        """Send an event and wait until the actor is idle again (the event and anything
        it caused have been processed). From inside one of this actor's own actions the
        event is queued and ``send`` returns at once: run-to-completion."""
        self._put(("event", (events.normalize(event, payload), None)))
        if asyncio.current_task() is self._task and self._task is not None:
            return
        await self._wait_idle()

    def send_nowait(self, event: Any, **payload: Any) -> None:
        """Queue an event without waiting for it to be processed."""
        self._put(("event", (events.normalize(event, payload), None)))

    async def settle(self) -> None:
        """Wait until the mailbox is empty and nothing is being processed."""
        if self._mailbox or self._task is not None:
            await self._wait_idle()

    def stop(self) -> None:
        self._stop()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            self._task = None

    # -- mailbox -----------------------------------------------------------------------

    def _enqueue(self, item: MailItem) -> None:
        """From timers, children and other threads: queue and make sure it is processed."""
        loop = self.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._put(item)
        else:
            loop.call_soon_threadsafe(self._put, item)

    def _put(self, item: MailItem) -> None:
        self._mailbox.append(item)
        if self._started and self._task is None and not self._processing:
            self._task = self.loop.create_task(self._drain())

    def _wait_idle(self) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self.loop.create_future()
        if self._task is None and not self._processing:
            if not self._mailbox:
                future.set_result(None)
                return future
            self._task = self.loop.create_task(self._drain())
        self._idle.append(future)
        return future

    def _timer_callback(self, timer: Any) -> Callable[[], Any]:
        item = ("timer", (timer.id, timer.seq))

        def fire() -> asyncio.Future[None]:
            self._put(item)
            return self._wait_idle()

        return fire

    async def _drain(self) -> None:
        try:
            while (item := self._take()) is not None:
                event, timer, _ = item
                before = self.snapshot
                result = self._compute(event, timer)
                if isinstance(result, StepError):
                    await self._run_partial(result.effects)
                    self._fail(before, result)
                else:
                    await self._apply(before, result[0], result[1], event)
        finally:
            self._task = None
            waiters, self._idle = self._idle, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def _apply(
        self, before: Snapshot | None, snapshot: Snapshot, effects: list[Effect], event: dict[str, Any]
    ) -> None:
        for effect in effects:
            if effect.immediate:
                try:
                    result = self._call(effect)
                    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                        await result
                except Exception as exc:
                    self._fail(before, self._action_error(effect, event, exc))
                    return
        self._commit(snapshot, effects, event)

    async def _run_partial(self, effects: list[Effect]) -> None:
        for effect in effects:
            if effect.immediate:
                try:
                    result = self._call(effect)
                    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                        await result
                except Exception:
                    return
