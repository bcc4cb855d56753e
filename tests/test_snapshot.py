"""Snapshots: state values, queries, persistence and immutability."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

import fsm
from fsm import Machine, SnapshotError
from fsm.semantics.snapshot import Snapshot

SHOP = {
    "id": "shop",
    "initial": "browsing",
    "context": {"items": [], "total": 0},
    "states": {
        "browsing": {
            "tags": ["visible", "editable"],
            "meta": {"title": "Browse"},
            "on": {
                "ADD": {
                    "actions": {"type": "assign", "assignment": {"items": {"expr": "context.items + [event.item]"}}}
                },
                "CHECKOUT": {"target": "checkout", "guard": {"expr": "len(context.items) > 0"}},
                "NOTHING": {},
                "LOG": {"actions": "log_it"},
                "RESUME": "#shop.checkout.shipping.hist",
            },
        },
        "checkout": {
            "type": "parallel",
            "tags": "busy",
            "meta": {"title": "Checkout"},
            "on": {"CANCEL": "browsing", "DONE": "paid"},
            "states": {
                "payment": {
                    "initial": "card",
                    "states": {
                        "card": {"meta": {"method": "card"}, "on": {"SWITCH": "invoice", "PAY": "charged"}},
                        "invoice": {"on": {"SWITCH": "card"}},
                        "charged": {"tags": ["visible"]},
                    },
                },
                "shipping": {
                    "initial": "address",
                    "states": {
                        "address": {"on": {"NEXT": "method"}},
                        "method": {
                            "initial": "standard",
                            "states": {"standard": {"on": {"FAST": "express"}}, "express": {}},
                        },
                        "hist": {"type": "history", "history": "deep"},
                    },
                },
            },
        },
        "paid": {"type": "final", "output": {"count": {"expr": "len(context.items)"}}},
    },
    "output": {"expr": "event.output"},
}


@pytest.fixture
def shop() -> Machine:
    return Machine.from_dict(SHOP).provide(actions={"log_it": lambda c, e, p: None})


def walk(machine: Machine, *events: Any) -> Snapshot:
    snap, _ = machine.initial_transition()
    for event in events:
        snap, _ = machine.transition(snap, event)
    return snap


# ------------------------------------------------------------------------- values

VALUES = [
    ((), "browsing"),
    (({"type": "ADD", "item": "x"}, "CHECKOUT"), {"checkout": {"payment": "card", "shipping": "address"}}),
    (
        ({"type": "ADD", "item": "x"}, "CHECKOUT", "NEXT", "FAST", "SWITCH"),
        {"checkout": {"payment": "invoice", "shipping": {"method": "express"}}},
    ),
    (({"type": "ADD", "item": "x"}, "CHECKOUT", "DONE"), "paid"),
]


@pytest.mark.parametrize(("events", "value"), VALUES)
def test_state_value_forms(shop: Machine, events: tuple[Any, ...], value: Any) -> None:
    assert walk(shop, *events).value == value


def test_nested_compound_value() -> None:
    machine = Machine.from_dict(
        {
            "id": "m",
            "initial": "a",
            "states": {"a": {"initial": "b", "states": {"b": {"initial": "c", "states": {"c": {}}}}}},
        }
    )
    assert walk(machine).value == {"a": {"b": "c"}}


def test_parallel_root_value() -> None:
    machine = Machine.from_dict(
        {
            "id": "m",
            "type": "parallel",
            "states": {
                "x": {"initial": "x1", "states": {"x1": {}}},
                "y": {},
                "z": {"type": "parallel", "states": {"q": {}}},
            },
        }
    )
    assert walk(machine).value == {"x": "x1", "y": {}, "z": {"q": {}}}


def test_state_ids_in_configuration_order(shop: Machine) -> None:
    snap = walk(shop, {"type": "ADD", "item": "x"}, "CHECKOUT")
    assert snap.state_ids == [
        "shop",
        "shop.checkout",
        "shop.checkout.payment",
        "shop.checkout.payment.card",
        "shop.checkout.shipping",
        "shop.checkout.shipping.address",
    ]
    assert snap.in_state("#shop.checkout.payment.card")
    assert snap.in_state("shop.checkout")
    assert not snap.in_state("shop.browsing")
    assert not snap.in_state("#nope")


# ------------------------------------------------------------------------- queries


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("checkout", True),
        ("checkout.payment", True),
        ("checkout.payment.invoice", True),
        ("checkout.shipping.method.express", True),
        ("checkout.shipping.method", True),
        ({"checkout": "payment"}, True),
        ({"checkout": {"payment": "invoice"}}, True),
        ({"checkout": {"payment": "invoice", "shipping": "method"}}, True),
        ({"checkout": {"payment": "invoice", "shipping": {"method": "express"}}}, True),
        ({"checkout": {"payment": "card"}}, False),
        ({"checkout": {"shipping": {"method": "standard"}}}, False),
        ("checkout.payment.card", False),
        ("browsing", False),
        ("paid", False),
        ("checkout.nope", False),
    ],
)
def test_matches(shop: Machine, query: Any, expected: bool) -> None:
    snap = walk(shop, {"type": "ADD", "item": "x"}, "CHECKOUT", "NEXT", "FAST", "SWITCH")
    assert snap.matches(query) is expected


def test_matches_atomic(shop: Machine) -> None:
    snap = walk(shop)
    assert snap.matches("browsing")
    assert not snap.matches("checkout")
    assert not snap.matches({"browsing": "x"})


def test_tags(shop: Machine) -> None:
    snap = walk(shop)
    assert snap.tags == {"visible", "editable"}
    assert snap.has_tag("editable")
    assert not snap.has_tag("busy")
    snap = walk(shop, {"type": "ADD", "item": "x"}, "CHECKOUT")
    assert snap.tags == {"busy"}
    assert snap.has_tag("busy")
    snap = walk(shop, {"type": "ADD", "item": "x"}, "CHECKOUT", "PAY")
    assert snap.tags == {"busy", "visible"}


def test_meta(shop: Machine) -> None:
    assert walk(shop).meta == {"shop.browsing": {"title": "Browse"}}
    assert walk(shop, {"type": "ADD", "item": "x"}, "CHECKOUT").meta == {
        "shop.checkout": {"title": "Checkout"},
        "shop.checkout.payment.card": {"method": "card"},
    }


def test_next_events(shop: Machine) -> None:
    # Transitions that do nothing (no target, no actions) are not offered.
    assert walk(shop).next_events == ["ADD", "CHECKOUT", "LOG", "RESUME"]
    assert sorted(walk(shop, {"type": "ADD", "item": "x"}, "CHECKOUT").next_events) == sorted(
        ["CANCEL", "DONE", "SWITCH", "PAY", "NEXT"]
    )


def test_next_events_hide_internal_events() -> None:
    machine = Machine.from_dict(
        {"id": "m", "initial": "a", "states": {"a": {"after": {"10": "b"}, "on": {"GO": "b"}}, "b": {}}}
    )
    assert walk(machine).next_events == ["GO"]


@pytest.mark.parametrize(
    ("items", "event", "expected"),
    [
        ([], "CHECKOUT", False),  # guard fails
        (["x"], "CHECKOUT", True),
        ([], {"type": "ADD", "item": "y"}, True),  # actions count
        ([], "LOG", True),
        ([], "NOTHING", False),  # no target, no actions
        ([], "NOPE", False),
        ([], "PAY", False),  # handled only in another state
    ],
)
def test_can(shop: Machine, items: list[str], event: Any, expected: bool) -> None:
    snap, _ = shop.initial_transition({"items": items})
    before = snap.to_dict()
    assert snap.can(event) is expected
    assert snap.to_dict() == before  # can() evaluates guards but changes nothing


def test_can_does_not_run_actions() -> None:
    calls: list[str] = []
    machine = Machine.from_dict(
        {"id": "m", "initial": "a", "states": {"a": {"on": {"GO": {"target": "b", "actions": "act"}}}, "b": {}}}
    )
    machine = machine.provide(actions={"act": lambda c, e, p: calls.append("ran")})
    assert walk(machine).can("GO")
    assert calls == []


# ------------------------------------------------------------------------- persistence


def sample_snapshots(machine: Machine) -> list[Snapshot]:
    add = {"type": "ADD", "item": "x"}
    return [
        walk(machine),
        walk(machine, add, add),
        walk(machine, add, "CHECKOUT", "NEXT", "FAST"),
        walk(machine, add, "CHECKOUT", "NEXT", "FAST", "CANCEL"),  # with history memory
        walk(machine, add, "CHECKOUT", "DONE"),  # done, with output
    ]


def test_to_dict_is_json(shop: Machine) -> None:
    for snap in sample_snapshots(shop):
        data = snap.to_dict()
        assert json.loads(json.dumps(data)) == data
        assert data["machine"] == "shop"
        assert data["value"] == snap.value
        assert data["context"] == snap.context
        assert data["status"] == snap.status


@pytest.mark.parametrize("index", range(5))
def test_round_trip(shop: Machine, index: int) -> None:
    snap = sample_snapshots(shop)[index]
    restored = shop.snapshot_from_dict(json.loads(json.dumps(snap.to_dict())))
    assert restored == snap
    assert restored.value == snap.value
    assert restored.state_ids == snap.state_ids
    assert restored.context == snap.context
    assert restored.history == snap.history
    assert restored.output == snap.output
    assert restored.status == snap.status


def test_round_trip_keeps_history_behaviour(shop: Machine) -> None:
    snap = walk(shop, {"type": "ADD", "item": "x"}, "CHECKOUT", "NEXT", "FAST", "CANCEL")
    assert snap.to_dict()["history"]["shop.checkout.shipping.hist"] == ["shop.checkout.shipping.method.express"]
    restored = shop.snapshot_from_dict(json.loads(json.dumps(snap.to_dict())))
    for start in (snap, restored):
        assert shop.transition(start, "RESUME")[0].value == {
            "checkout": {"payment": "card", "shipping": {"method": "express"}}
        }
        assert shop.transition(start, "CHECKOUT")[0].value == {"checkout": {"payment": "card", "shipping": "address"}}


def test_round_trip_with_timers() -> None:
    machine = Machine.from_dict(
        {
            "id": "t",
            "initial": "a",
            "states": {
                "a": {
                    "after": {"100": "b"},
                    "entry": {"type": "raise", "event": {"type": "X"}, "delay": 50, "id": "x"},
                },
                "b": {},
            },
        }
    )
    snap, _ = machine.initial_transition(now=1000)
    data = json.loads(json.dumps(snap.to_dict()))
    assert [(t["id"], t["due"]) for t in data["timers"]] == [("x", 1050), ("xstate.after.100.t.a", 1100)]
    restored = machine.snapshot_from_dict(data)
    assert restored == snap
    assert restored.timers == snap.timers
    timer = restored.timers[1]
    fired, _ = machine.transition(restored, timer.event, timer=timer.id)
    assert fired.value == "b"


def test_round_trip_of_an_error_snapshot() -> None:
    machine = Machine.from_dict({"id": "m", "initial": "a", "states": {"a": {"on": {"GO": {"actions": "boom"}}}}})
    machine = machine.provide(actions={"boom": lambda c, e, p: 1 / 0})
    actor = machine.start(clock=fsm.VirtualClock())
    actor.subscribe(None, lambda e: None)
    actor.send("GO")
    snap = actor.snapshot
    assert snap.status == "error"
    data = json.loads(json.dumps(snap.to_dict()))
    assert data["error"]["type"] == "StepError"
    assert "ZeroDivisionError" in data["error"]["message"] or "division" in data["error"]["message"]
    restored = machine.snapshot_from_dict(data)
    assert restored.status == "error"
    assert restored == snap


def test_restore_into_a_provided_machine(shop: Machine) -> None:
    snap = walk(shop, {"type": "ADD", "item": "x"})
    other = Machine.from_dict(SHOP)
    restored = other.snapshot_from_dict(snap.to_dict())
    assert restored.context == {"items": ["x"], "total": 0}
    assert other.transition(restored, "CHECKOUT")[0].matches("checkout")


def mutate(data: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    out.update(changes)
    return out


BAD_RESTORES = [
    pytest.param({"configuration": ["shop", "shop.nowhere"]}, "does not exist", id="unknown-id"),
    pytest.param({"configuration": ["shop", 3]}, "does not exist", id="non-string-id"),
    pytest.param({"configuration": ["shop", "shop.browsing", "shop.paid"]}, "exactly one", id="two-children"),
    pytest.param({"configuration": ["shop"]}, "exactly one", id="compound-without-child"),
    pytest.param({"configuration": ["shop.browsing"]}, "root", id="no-root"),
    pytest.param({"configuration": ["shop", "shop.browsing", "shop.browsing"]}, "twice", id="duplicate"),
    pytest.param(
        {"configuration": ["shop", "shop.checkout", "shop.checkout.payment", "shop.checkout.payment.card"]},
        "regions",
        id="missing-region",
    ),
    pytest.param(
        {"configuration": ["shop", "shop.browsing", "shop.checkout.payment.card"]}, "parent", id="missing-parent"
    ),
    pytest.param(
        {
            "configuration": [
                "shop",
                "shop.checkout",
                "shop.checkout.payment",
                "shop.checkout.payment.card",
                "shop.checkout.shipping",
                "shop.checkout.shipping.address",
                "shop.checkout.shipping.hist",
            ]
        },
        "history",
        id="history-active",
    ),
    pytest.param({"configuration": []}, "configuration", id="empty-configuration"),
    pytest.param({"configuration": "shop.browsing"}, "configuration", id="configuration-not-a-list"),
    pytest.param({"machine": "other"}, "other", id="wrong-machine"),
    pytest.param({"status": "sleeping"}, "status", id="unknown-status"),
    pytest.param({"context": [1, 2]}, "context", id="context-not-a-dict"),
    pytest.param({"value": "paid"}, "value", id="value-disagrees"),
    pytest.param({"history": {"shop.nowhere": []}}, "does not exist", id="history-unknown-key"),
    pytest.param(
        {"history": {"shop.checkout.shipping.hist": ["shop.nowhere"]}}, "does not exist", id="history-unknown-member"
    ),
    pytest.param(
        {"history": {"shop.browsing": ["shop.browsing"]}},
        "history",
        id="history-key-not-a-history-state",
    ),
    pytest.param(
        {"history": {"shop.checkout.shipping.hist": ["shop.browsing"]}},
        "history",
        id="history-member-outside-parent",
    ),
    pytest.param(
        {"history": ["shop.browsing"]},
        "history",
        id="history-not-a-dict",
    ),
    pytest.param(
        {"timers": [{"id": "t"}]},
        "timer",
        id="timer-missing-fields",
    ),
    pytest.param(
        {"timers": "soon"},
        "timer",
        id="timers-not-a-list",
    ),
    pytest.param(
        {"timers": [{"id": "t", "event": {"no": "type"}, "due": 5, "seq": 0}]},
        "event",
        id="timer-event-without-type",
    ),
    pytest.param(
        {"timer_seq": "x"},
        "timer_seq",
        id="timer-seq-not-a-number",
    ),
    pytest.param(
        {"children": [1]},
        "children",
        id="children-not-a-dict",
    ),
]


@pytest.mark.parametrize(("changes", "word"), BAD_RESTORES)
def test_bad_restores_raise_snapshot_error(shop: Machine, changes: dict[str, Any], word: str) -> None:
    data = walk(shop).to_dict()
    if "configuration" in changes:
        data.pop("value")
    with pytest.raises(SnapshotError) as info:
        shop.snapshot_from_dict(mutate(data, **changes))
    assert word in str(info.value)


def test_restore_refuses_a_snapshot_of_another_machine(shop: Machine) -> None:
    other = Machine.from_dict({"id": "other", "initial": "browsing", "states": {"browsing": {}}})
    with pytest.raises(SnapshotError):
        shop.snapshot_from_dict(walk(other).to_dict())
    with pytest.raises(SnapshotError):
        other.snapshot_from_dict(walk(shop).to_dict())


def test_restore_refuses_non_dicts(shop: Machine) -> None:
    for data in (None, [], "snapshot", 3):
        with pytest.raises(SnapshotError):
            shop.snapshot_from_dict(data)  # type: ignore[arg-type]


def test_restore_does_not_keep_the_callers_data(shop: Machine) -> None:
    data = json.loads(json.dumps(walk(shop, {"type": "ADD", "item": "x"}).to_dict()))
    restored = shop.snapshot_from_dict(data)
    before = restored.to_dict()
    data["context"]["items"].append("y")
    data["timers"].append({"id": "x"})
    assert restored.to_dict() == before


# ------------------------------------------------------------------------- immutability


@pytest.mark.parametrize(
    "name", ["value", "context", "status", "nodes", "output", "history", "timers", "machine", "extra"]
)
def test_snapshot_attributes_cannot_be_assigned(shop: Machine, name: str) -> None:
    snap = walk(shop)
    before = snap.to_dict()
    with pytest.raises(AttributeError):
        setattr(snap, name, "changed")
    assert snap.to_dict() == before


@pytest.mark.parametrize("name", ["context", "status"])
def test_snapshot_attributes_cannot_be_deleted(shop: Machine, name: str) -> None:
    snap = walk(shop)
    with pytest.raises(AttributeError):
        delattr(snap, name)
    assert snap.to_dict()["status"] == "active"


def test_replace_makes_a_changed_copy(shop: Machine) -> None:
    snap = walk(shop)
    changed = snap.replace(context={"items": ["z"], "total": 1})
    assert changed is not snap
    assert changed.context == {"items": ["z"], "total": 1}
    assert snap.context == {"items": [], "total": 0}
    assert changed.value == snap.value
    assert changed != snap


def test_steps_never_change_the_input_snapshot(shop: Machine) -> None:
    snap = walk(shop)
    before = snap.to_dict()
    for event in ({"type": "ADD", "item": "x"}, "CHECKOUT", "LOG"):
        shop.transition(snap, event)
    assert snap.to_dict() == before


def test_initial_context_is_not_shared_with_the_definition() -> None:
    machine = Machine.from_dict(SHOP)
    snap, _ = machine.initial_transition()
    snap.context["items"].append("leak")
    assert machine.definition["context"] == {"items": [], "total": 0}
    assert machine.initial_transition()[0].context == {"items": [], "total": 0}


def test_snapshot_equality_and_hash(shop: Machine) -> None:
    a = walk(shop, {"type": "ADD", "item": "x"})
    b = walk(shop, {"type": "ADD", "item": "x"})
    c = walk(shop, {"type": "ADD", "item": "y"})
    assert a == b and hash(a) == hash(b)
    assert a != c
    assert a != "not a snapshot"
