"""The workloads, as data every system shares: machine definitions (XState JSON, which
fsm, xstate-statemachine and XState load unchanged; the other peers are written from the
same shapes), event sequences, and what a correct run ends with.

W1 flat       a -EV-> b -EV-> c -EV-> a
W2 guard      a targetless INC guarded by ``n < limit`` assigning ``n + 1`` (limit = n events,
              so every guard passes and the run ends with n == limit)
W3 hierarchy  root > A > A1 > {x, y} and B > B1 > {p, q}; T toggles leaves, GO crosses
              y -> p -> x; entry and exit actions on all 8 states
W4 parallel   3 regions of off <-> on, all toggled by one event
W5 instances  create + start instances of W3 from one built definition (W5a); snapshot a
              W3 instance to JSON and restore it into a live instance (W5b)
W6 durable    W2 with every step committed to a store (fsm only; raw floors in durable.py)
L1 compile    validate + compile a generated 1,000-state machine
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

W1 = {
    "id": "w1",
    "initial": "a",
    "states": {"a": {"on": {"EV": "b"}}, "b": {"on": {"EV": "c"}}, "c": {"on": {"EV": "a"}}},
}
W1_CYCLE = ("EV", "EV", "EV")
W1_STATES = ("a", "b", "c")


def w2_definition(limit: int) -> dict[str, Any]:
    return {
        "id": "w2",
        "initial": "a",
        "context": {"n": 0, "limit": limit},
        "states": {"a": {"on": {"INC": {"guard": "below", "actions": "inc"}}}},
    }


W2_CYCLE = ("INC",)


def _counted(state: dict[str, Any]) -> dict[str, Any]:
    return {"entry": ["entered"], "exit": ["exited"], **state}


W3 = {
    "id": "w3",
    "initial": "A",
    "states": {
        "A": _counted(
            {
                "initial": "A1",
                "states": {
                    "A1": _counted(
                        {
                            "initial": "x",
                            "states": {
                                "x": _counted({"id": "x", "on": {"T": "y"}}),
                                "y": _counted({"on": {"T": "x", "GO": "#p"}}),
                            },
                        }
                    )
                },
            }
        ),
        "B": _counted(
            {
                "initial": "B1",
                "states": {
                    "B1": _counted(
                        {
                            "initial": "p",
                            "states": {
                                "p": _counted({"id": "p", "on": {"T": "q", "GO": "#x"}}),
                                "q": _counted({"on": {"T": "p"}}),
                            },
                        }
                    )
                },
            }
        ),
    },
}
# x -T-> y -GO-> p -T-> q -T-> p -GO-> x: back where it started after each cycle
W3_CYCLE = ("T", "GO", "T", "T", "GO")
W3_CYCLE_CALLS = 9  # entries (and as many exits) per cycle: 1 + 3 + 1 + 1 + 3
W3_INITIAL_ENTRIES = 3  # A, A1, x


def w3_leaf_after(events: int) -> str:
    """The active leaf after ``events`` events of the cycle from x."""
    return ("x", "y", "p", "q", "p")[events % len(W3_CYCLE)]


W3_SNAPSHOT_EVENTS = ("T", "GO")  # the instance W5b snapshots sits in p
W3_SNAPSHOT_LEAF = "p"

W4_REGIONS = ("r1", "r2", "r3")
W4 = {
    "id": "w4",
    "type": "parallel",
    "states": {
        region: {"initial": "off", "states": {"off": {"on": {"TOGGLE": "on"}}, "on": {"on": {"TOGGLE": "off"}}}}
        for region in W4_REGIONS
    },
}
W4_CYCLE = ("TOGGLE", "TOGGLE")


def w4_region_after(events: int) -> str:
    return "on" if events % 2 else "off"


# -- L1: a generated 1,000-state machine --------------------------------------------------------

BIG_GROUPS = 100
BIG_LEAVES = 9  # 100 compound states x 9 leaves + the 100 compounds = 1,000 states


def big_definition() -> dict[str, Any]:
    """100 compound states of 9 leaves each. Every leaf has NEXT to the next leaf (the
    last one of a group to the first of the next group, by id) and a guarded RESET back
    to the very first leaf; every compound state has an entry action. 1,800 transitions,
    900 guard references."""
    groups: dict[str, Any] = {}
    for g in range(BIG_GROUPS):
        leaves: dict[str, Any] = {}
        for s in range(BIG_LEAVES):
            if s + 1 < BIG_LEAVES:
                target = f"s{s + 1}"
            else:
                target = f"#g{(g + 1) % BIG_GROUPS}s0"
            leaves[f"s{s}"] = {
                "id": f"g{g}s{s}",
                "on": {"NEXT": target, "RESET": {"target": "#g0s0", "guard": "ok"}},
            }
        groups[f"g{g}"] = {"initial": "s0", "entry": ["entered"], "states": leaves}
    return {"id": "big", "initial": "g0", "states": groups}


BIG_STATES = BIG_GROUPS * (BIG_LEAVES + 1)
BIG_CHECK_EVENTS = ("NEXT",) * (BIG_LEAVES + 1)  # from g0.s0 to g1.s1
BIG_CHECK_LEAF = ("g1", "s1")


# -- sizes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """How much each measurement does. Slow systems run fewer events than ``events``
    (see timing.choose_n), never more."""

    events: int = 200_000
    instances: int = 10_000
    durable: int = 2_000
    memory_instances: int = 2_000
    reps: int = 5
    budget_s: float = 1.0  # one timed repetition aims at no more than this (wall time)
    durable_budget_s: float = 3.0  # the same for W6, whose steps wait on fsync
    warmup_s: float = 3.0  # Node only: JIT warm-up per cell before timing
    import_runs: int = 7


FULL = Sizes()
QUICK = Sizes(
    events=40_000,
    instances=2_000,
    durable=300,
    memory_instances=500,
    reps=3,
    budget_s=0.2,
    durable_budget_s=0.5,
    warmup_s=0.8,
    import_runs=3,
)

EVENT_WORKLOADS = ("W1", "W2", "W3", "W4")
CYCLES = {"W1": W1_CYCLE, "W2": W2_CYCLE, "W3": W3_CYCLE, "W4": W4_CYCLE}


def events_for(workload: str, n: int) -> list[str]:
    """The event sequence of a run: whole cycles, n events at most."""
    cycle = CYCLES[workload]
    return list(cycle) * (n // len(cycle))


def round_to_cycle(workload: str, n: int) -> int:
    size = len(CYCLES.get(workload, ("",)))
    return max(size, n - n % size)
