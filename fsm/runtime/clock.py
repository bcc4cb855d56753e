"""Clocks: where time comes from, for ``after`` transitions and delayed events.

The step function never reads time; the runtime asks a clock for ``now()`` (milliseconds)
and arms timers on it. :class:`VirtualClock` makes time a test input: nothing fires until
``advance`` is called, and then timers fire deadline by deadline, each as its own step,
including timers armed while the advance runs (so a chain of ``after`` transitions moves
through several states in one call). :class:`RealClock` fires on a background thread.
"""

from __future__ import annotations

import heapq
import inspect
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from fsm.errors import FsmError


class TimerHandle:
    """Returned by ``Clock.call_at``; ``cancel()`` stops the callback from running."""

    __slots__ = ("callback", "cancelled", "due", "seq")

    def __init__(self, due: float, seq: int, callback: Callable[[], Any]) -> None:
        self.due = due
        self.seq = seq
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: TimerHandle) -> bool:
        return (self.due, self.seq) < (other.due, other.seq)


class Clock(Protocol):
    def now(self) -> float:
        """Milliseconds on this clock's time line."""
        ...

    def call_at(self, due: float, callback: Callable[[], Any]) -> TimerHandle:
        """Run ``callback`` once the clock reaches ``due`` (ms); ties in arming order."""
        ...


class VirtualClock:
    """Simulated time for tests and simulations: ``advance(ms)`` is the only way forward."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._heap: list[TimerHandle] = []
        self._seq = itertools.count()
        self._lock = threading.RLock()

    def now(self) -> float:
        return self._now

    def call_at(self, due: float, callback: Callable[[], Any]) -> TimerHandle:
        with self._lock:
            handle = TimerHandle(float(due), next(self._seq), callback)
            heapq.heappush(self._heap, handle)
            return handle

    @property
    def pending(self) -> int:
        """Timers armed and not yet fired or cancelled."""
        return sum(1 for h in self._heap if not h.cancelled)

    def next_due(self) -> float | None:
        with self._lock:
            self._drop_cancelled()
            return self._heap[0].due if self._heap else None

    def advance(self, ms: float, max_fires: int = 100_000) -> int:
        """Move time forward by ``ms``, firing due timers in deadline order. Returns how
        many fired."""
        if ms < 0:
            raise ValueError("a clock cannot go back in time")
        return self.advance_to(self._now + ms, max_fires)

    def advance_to(self, target: float, max_fires: int = 100_000) -> int:
        """Fire every timer due up to ``target``, deadline by deadline. ``max_fires``
        stops a timer loop that never lets time move (zero delays re-arming themselves)."""
        if target < self._now:
            raise ValueError("a clock cannot go back in time")
        fired = 0
        while True:
            if fired >= max_fires:
                raise FsmError(
                    f"more than {max_fires} timers fired by t={self._now} ms: "
                    "a zero-delay `after` or delayed event keeps re-arming itself"
                )
            with self._lock:
                self._drop_cancelled()
                if not self._heap or self._heap[0].due > target:
                    break
                handle = heapq.heappop(self._heap)
                self._now = max(self._now, handle.due)
            fired += 1
            handle.callback()
        self._now = target
        return fired

    async def advance_async(self, ms: float, max_fires: int = 100_000) -> int:
        """``advance`` for asyncio actors: after each timer fires, wait for the actor to
        process it before looking at the next deadline."""
        if ms < 0:
            raise ValueError("a clock cannot go back in time")
        target = self._now + ms
        fired = 0
        while True:
            if fired >= max_fires:
                raise FsmError(f"more than {max_fires} timers fired by t={self._now} ms")
            with self._lock:
                self._drop_cancelled()
                if not self._heap or self._heap[0].due > target:
                    break
                handle = heapq.heappop(self._heap)
                self._now = max(self._now, handle.due)
            fired += 1
            result: Any = handle.callback()
            if inspect.isawaitable(result):
                await result
        self._now = target
        return fired

    def run_until_idle(self, limit: float = float("inf")) -> int:
        """Advance to each next deadline until no timers remain (or ``limit`` ms pass)."""
        fired = 0
        end = self._now + limit
        while (due := self.next_due()) is not None and due <= end:
            fired += self.advance_to(due)
        return fired

    def _drop_cancelled(self) -> None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)


class RealClock:
    """Wall-clock time in epoch milliseconds, with one daemon thread running due callbacks.

    Epoch time (not a process-local monotonic origin) is what makes due times in a
    persisted snapshot meaningful to the next process that resumes it.
    """

    def __init__(self) -> None:
        self._heap: list[TimerHandle] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def now(self) -> float:
        return time.time() * 1000.0

    def call_at(self, due: float, callback: Callable[[], Any]) -> TimerHandle:
        with self._cond:
            handle = TimerHandle(float(due), next(self._seq), callback)
            heapq.heappush(self._heap, handle)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="fsm-clock", daemon=True)
                self._thread.start()
            self._cond.notify()
            return handle

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0].cancelled:
                    heapq.heappop(self._heap)
                if not self._heap:
                    if not self._cond.wait(timeout=5.0) and not self._heap:
                        self._thread = None
                        return
                    continue
                delay = (self._heap[0].due - self.now()) / 1000.0
                if delay > 0:
                    self._cond.wait(timeout=delay)
                    continue
                handle = heapq.heappop(self._heap)
            try:
                handle.callback()
            except Exception:  # a failing callback must not kill the clock thread
                import logging

                logging.getLogger("fsm.runtime").exception("timer callback failed")


_default_clock: RealClock | None = None


def default_clock() -> RealClock:
    """The process-wide real clock shared by actors started without a clock."""
    global _default_clock
    if _default_clock is None:
        _default_clock = RealClock()
    return _default_clock
