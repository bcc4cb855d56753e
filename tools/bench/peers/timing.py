"""Timing: one measured cell (a system on a workload), checked before it is timed.

A bench function returns a :class:`Trial`: ``run`` is the timed part, ``check`` verifies
the result afterwards (final state, counters, callback counts) and raises
:class:`WrongResult` when the system did not do the work. Setup (building the machine,
starting the instance, making the event list) happens before ``run`` and is not timed.

Every cell records wall time (``time.perf_counter``) and CPU time (``time.process_time``)
for each repetition. The machine may be shared, so CPU time is the steadier figure; the
two are reported side by side.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from peers.workloads import Sizes, round_to_cycle


class WrongResult(AssertionError):
    """A system's run did not end where the workload says it must."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise WrongResult(message)


@dataclass
class Trial:
    run: Callable[[], Any]
    check: Callable[[], None]


@dataclass
class Cell:
    """One system on one workload: ``n`` operations per repetition, or why not."""

    unit: str = "events/s"
    n: int = 0
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    na: str | None = None
    error: str | None = None
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.na is None and self.error is None and bool(self.wall)

    def value(self, clock: str = "cpu") -> float | None:
        """The cell's figure: a rate (ops/s) from the median repetition, or, for units
        that are a duration or a size, the median itself."""
        if not self.ok:
            return None
        samples = self.cpu if clock == "cpu" else self.wall
        median = statistics.median(samples)
        if self.unit == "ms":
            return median * 1e3
        if self.unit == "bytes":
            return median
        return self.n / median if median > 0 else float("inf")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"unit": self.unit}
        if self.na is not None:
            data["na"] = self.na
        elif self.error is not None:
            data["error"] = self.error
        else:
            data.update(
                n=self.n,
                wall_s=self.wall,
                cpu_s=self.cpu,
                value_wall=self.value("wall"),
                value_cpu=self.value("cpu"),
            )
        if self.note:
            data["note"] = self.note
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cell:
        return cls(
            unit=data.get("unit", "events/s"),
            n=data.get("n", 0),
            wall=list(data.get("wall_s", [])),
            cpu=list(data.get("cpu_s", [])),
            na=data.get("na"),
            error=data.get("error"),
            note=data.get("note"),
        )


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one call, with a collection done beforehand."""
    gc.collect()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall0, time.process_time() - cpu0


def choose_n(workload: str, nominal: int, probe_n: int, probe_s: float, budget_s: float) -> int:
    """The operations per repetition: the nominal count, or fewer for a system so slow
    that one repetition would take longer than the budget (judged on wall time, what the
    run costs; the rates themselves come from the timed repetitions)."""
    if probe_s <= 0:
        return nominal
    affordable = int(probe_n / probe_s * budget_s)
    return round_to_cycle(workload, max(probe_n, min(nominal, affordable)))


def measure(
    make: Callable[[int], Trial],
    workload: str,
    nominal: int,
    sizes: Sizes,
    unit: str = "events/s",
    budget_s: float | None = None,
) -> Cell:
    """Check two small runs, size the repetitions from the second, then time
    ``sizes.reps`` of them (each one set up afresh and checked after)."""
    cell = Cell(unit=unit)
    budget = sizes.budget_s if budget_s is None else budget_s
    try:
        probe_n = round_to_cycle(workload, max(1, nominal // 50))
        for _ in range(2):  # the first probe also fills caches (fsm's recorded steps, ...)
            trial = make(probe_n)
            probe_wall, _ = timed(trial.run)
            trial.check()
        cell.n = choose_n(workload, nominal, probe_n, probe_wall, budget)
        if cell.n < round_to_cycle(workload, nominal):
            cell.note = f"{cell.n:,} of {nominal:,} per repetition (time budget)"
        for _ in range(sizes.reps):
            trial = make(cell.n)
            wall, cpu = timed(trial.run)
            trial.check()
            cell.wall.append(wall)
            cell.cpu.append(cpu)
    except WrongResult as exc:
        cell.error = f"wrong result: {exc}"
    except Exception as exc:
        cell.error = f"{type(exc).__name__}: {exc}"
    return cell


def measure_once(make: Callable[[], Trial], reps: int, unit: str = "ms") -> Cell:
    """A one-shot operation (compiling a machine): each repetition does it once."""
    cell = Cell(unit=unit, n=1)
    try:
        for _ in range(reps + 1):  # the first one warms up (imports, caches) and is dropped
            trial = make()
            wall, cpu = timed(trial.run)
            trial.check()
            cell.wall.append(wall)
            cell.cpu.append(cpu)
        del cell.wall[0], cell.cpu[0]
    except WrongResult as exc:
        cell.error = f"wrong result: {exc}"
    except Exception as exc:
        cell.error = f"{type(exc).__name__}: {exc}"
    return cell


def measure_memory(factory: Callable[[], Any], count: int, check: Callable[[Any], None]) -> Cell:
    """Bytes per idle started instance: ``count`` instances made under tracemalloc, the
    traced growth divided by ``count`` (minus the list slot that keeps each alive)."""
    cell = Cell(unit="bytes", n=count)
    try:
        for _ in range(3):
            check(factory())  # warm caches the first instance fills
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            instances = [None] * count
            slots = tracemalloc.get_traced_memory()[0] - before
            for i in range(count):
                instances[i] = factory()
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        check(instances[-1])
        per_instance = (after - before - slots) / count
        cell.wall.append(per_instance)
        cell.cpu.append(per_instance)
    except WrongResult as exc:
        cell.error = f"wrong result: {exc}"
    except Exception as exc:
        cell.error = f"{type(exc).__name__}: {exc}"
    return cell
