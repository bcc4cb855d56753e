"""Diagram export: DOT checked by parsing Graphviz's own reading of it, Mermaid by parsing
its structure, for every machine in machines/ (not string snapshots, so a layout tweak
does not break the tests but a missing state, edge or cluster does)."""

from __future__ import annotations

import doctest
import html
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import fsm
from fsm.export import (
    DiagramOptions,
    GraphvizNotFound,
    build_diagram,
    record_step,
    repr_svg,
    to_dot,
    to_mermaid,
    to_png,
    to_svg,
)
from fsm.export import diagram as diagram_mod
from fsm.export import dot as dot_mod
from fsm.export import mermaid as mermaid_mod
from fsm.model.nodes import COMPOUND, FINAL, HISTORY, PARALLEL, StateNode, Transition

ROOT = Path(__file__).resolve().parents[1]
MACHINES = sorted(p for p in (ROOT / "machines").iterdir() if p.suffix in (".json", ".yaml", ".yml"))
HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz `dot` is not installed (apt-get install graphviz)")


def _load(path: Path) -> fsm.Machine:
    return fsm.Machine.from_file(path)


# -- reading DOT back through Graphviz -----------------------------------------------------


@dataclass
class Parsed:
    """Graphviz's view of a DOT document (from ``dot -Tjson``)."""

    nodes: dict[str, dict[str, Any]]
    clusters: dict[str, dict[str, Any]]
    edges: list[dict[str, Any]]
    node_clusters: dict[str, set[str]] = field(default_factory=dict)
    cluster_parent: dict[str, str | None] = field(default_factory=dict)

    def in_cluster(self, node: str, cluster: str) -> bool:
        return cluster in self.node_clusters[node]


def parse_dot(source: str) -> Parsed:
    run = subprocess.run(["dot", "-Tjson"], input=source.encode(), capture_output=True, check=True)
    assert run.stderr.decode().strip() == "", f"dot warned: {run.stderr.decode()}"
    data = json.loads(run.stdout)
    objects = data.get("objects", [])
    by_gvid = {o["_gvid"]: o for o in objects}
    nodes = {o["name"]: o for o in objects if "nodes" not in o and "subgraphs" not in o}
    clusters = {o["name"]: o for o in objects if o["name"].startswith("cluster")}
    parsed = Parsed(nodes, clusters, [])
    parsed.node_clusters = {name: set() for name in nodes}
    parsed.cluster_parent = {name: None for name in clusters}
    for cluster in clusters.values():
        for gvid in cluster.get("nodes", []):
            parsed.node_clusters[by_gvid[gvid]["name"]].add(cluster["name"])
        for gvid in cluster.get("subgraphs", []):
            parsed.cluster_parent[by_gvid[gvid]["name"]] = cluster["name"]
    for edge in data.get("edges", []):
        parsed.edges.append({**edge, "tail": by_gvid[edge["tail"]]["name"], "head": by_gvid[edge["head"]]["name"]})
    return parsed


def text_of(label: str) -> str:
    """The text a reader sees in an HTML-like label."""
    return html.unescape(re.sub(r"<[^>]+>", " ", label.replace("<BR", "\n<BR"))).replace("\n", " ")


def words(label: str) -> str:
    return " ".join(text_of(label).split())


def cluster(node: StateNode) -> str:
    return f"cluster_{node.id}"


def is_cluster(node: StateNode) -> bool:
    return node.type in (COMPOUND, PARALLEL)


def transitions(node: StateNode) -> Iterator[Transition]:
    for ts in node.transitions.values():
        yield from ts
    yield from node.always


def expected_parts(t: Transition) -> list[str]:
    """Pieces of text the label of a transition must contain, taken from the model."""
    parts: list[str] = []
    event = t.event or ""
    if t.delay is not None:
        parts.append("after")
    elif event == "":
        parts.append("always")
    elif event.startswith(("xstate.done.state.", "xstate.done.actor.")):
        parts.append("onDone")
    elif event.startswith("xstate.error.actor."):
        parts.append("onError")
    else:
        parts.append(event)
    if t.guard is not None:
        parts.append(t.guard.label())
    parts.extend(a.name for a in t.actions if a.builtin is None)
    return [" ".join(p.split()) for p in parts]


def endpoint_matches(parsed: Parsed, dot_node: str, state: StateNode) -> bool:
    """Is this DOT node the drawing of ``state`` (its node, or an anchor in its cluster)?"""
    if not is_cluster(state):
        return dot_node == state.id
    return dot_node.startswith("__") and parsed.in_cluster(dot_node, cluster(state))


# -- DOT, every machine --------------------------------------------------------------------


@needs_dot
@pytest.mark.parametrize("path", MACHINES, ids=[p.stem for p in MACHINES])
def test_dot_has_every_state_once_with_its_shape_and_nesting(path: Path) -> None:
    machine = _load(path)
    parsed = parse_dot(to_dot(machine))
    model = machine.model
    for node in model.nodes:
        ancestors = {cluster(a) for a in node.ancestors}
        if is_cluster(node):
            assert cluster(node) in parsed.clusters, f"no cluster for #{node.id}"
            assert node.id not in parsed.nodes, f"#{node.id} is both a cluster and a node"
            parent = cluster(node.parent) if node.parent is not None else None
            assert parsed.cluster_parent[cluster(node)] == parent
            style = parsed.clusters[cluster(node)].get("style", "")
            if node.parent is not None and node.parent.type == PARALLEL:
                assert "dashed" in style, f"region #{node.id} is not dashed"
            else:
                assert "dashed" not in style
            continue
        assert node.id in parsed.nodes, f"no node for #{node.id}"
        assert parsed.node_clusters[node.id] == ancestors, f"#{node.id} is in the wrong clusters"
        attrs = parsed.nodes[node.id]
        if node.type == HISTORY:
            assert attrs["shape"] == "circle"
            assert attrs["label"] == ("H*" if node.history == "deep" else "H")
        elif node.type == FINAL:
            assert attrs.get("peripheries") == "2"
        else:
            assert attrs.get("peripheries", "1") == "1"
            assert node.key in text_of(attrs["label"])
    # No other visible nodes: everything else is a marker or an invisible anchor.
    state_ids = {n.id for n in model.nodes}
    for name, attrs in parsed.nodes.items():
        if name not in state_ids:
            assert name.startswith("__"), name
            assert attrs.get("style") == "invis" or name.startswith("__initial__")
    # Clusters are exactly the compound and parallel states.
    assert set(parsed.clusters) == {cluster(n) for n in model.nodes if is_cluster(n)}


@needs_dot
@pytest.mark.parametrize("path", MACHINES, ids=[p.stem for p in MACHINES])
def test_dot_has_an_edge_per_transition_with_its_label(path: Path) -> None:
    machine = _load(path)
    parsed = parse_dot(to_dot(machine))
    unused = list(parsed.edges)
    for node in machine.model.nodes:
        if node.initial is not None:
            target = node.initial.targets[0]  # type: ignore[index]
            marker = f"__initial__{node.id}"
            assert parsed.in_cluster(marker, cluster(node))
            assert parsed.nodes[marker]["shape"] == "circle"
            edge = next(e for e in unused if e["tail"] == marker)
            assert endpoint_matches(parsed, edge["head"], target)
            assert (edge.get("lhead") == cluster(target)) == is_cluster(target)
            unused.remove(edge)
        listed = words(parsed.clusters[cluster(node)]["label"] if is_cluster(node) else parsed.nodes[node.id]["label"])
        for t in transitions(node):
            parts = expected_parts(t)
            if not t.targets:
                assert all(p in listed for p in parts), f"targetless {t} not listed in #{node.id}: {listed!r}"
                continue
            for target in t.targets:
                if target is node and is_cluster(node):
                    assert all(p in listed for p in parts) and "↻" in listed
                    continue
                found = [
                    e
                    for e in unused
                    if endpoint_matches(parsed, e["tail"], node)
                    and endpoint_matches(parsed, e["head"], target)
                    and all(p in words(e.get("label", "")) for p in parts)
                ]
                assert found, f"no edge for {t} -> #{target.id} with label parts {parts}"
                edge = found[0]
                unused.remove(edge)
                nested = target.is_descendant_of(node) or node.is_descendant_of(target)
                assert (edge.get("ltail") == cluster(node)) == (is_cluster(node) and not nested)
                assert (edge.get("lhead") == cluster(target)) == (is_cluster(target) and not nested)
                if t.delay is not None:
                    assert edge["color"] == dot_mod.AFTER
                if not t.event and t.delay is None:
                    assert edge.get("style") == "dashed"
        if node.type == HISTORY and node.history_default is not None and node.history_default.source is node:
            for target in node.history_default.targets or ():
                edge = next(e for e in unused if e["tail"] == node.id and endpoint_matches(parsed, e["head"], target))
                assert edge["style"] == "dotted"
                unused.remove(edge)
    assert unused == [], f"edges that draw no transition: {[(e['tail'], e['head']) for e in unused]}"


@pytest.mark.parametrize("path", MACHINES, ids=[p.stem for p in MACHINES])
def test_exports_are_stable(path: Path) -> None:
    """Same machine, same text: no dict-order or id() randomness (loaded twice, so no
    object identity leaks into the output either)."""
    first, second = _load(path), _load(path)
    assert to_dot(first) == to_dot(second) == to_dot(first)
    assert to_mermaid(first) == to_mermaid(second)
    # Diffable: one statement per line, nodes before edges.
    lines = to_dot(first).splitlines()
    assert lines[0].startswith("digraph ")
    first_edge = next(i for i, line in enumerate(lines) if "->" in line)
    assert all("->" in line for line in lines[first_edge:-1]), "edges come last, one per line"


# -- Mermaid, every machine ----------------------------------------------------------------


@dataclass
class MermaidDoc:
    states: dict[str, tuple[str, str | None]]  # mermaid id -> (label, parent block id)
    edges: list[tuple[str, str, str, str | None]]  # source, target, label, block
    initial: dict[str | None, str]
    finals: dict[str, str | None]
    lines_of: dict[str, list[str]]  # descriptions and notes per state
    separators: dict[str, int]  # block id -> number of `--`


STATE = re.compile(r'^state "(?P<label>[^"]*)" as (?P<id>\w+)(?P<open> \{)?$')
EDGE = re.compile(r"^(?P<a>\w+|\[\*\]) --> (?P<b>\w+|\[\*\])(?: : (?P<label>.*))?$")
DESCR = re.compile(r"^(?P<id>\w+) : (?P<text>.*)$")
NOTE = re.compile(r"^note (left|right) of (?P<id>\w+)$")


def parse_mermaid(text: str) -> MermaidDoc:
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    doc = MermaidDoc({}, [], {}, {}, {}, {})
    stack: list[str] = []
    note: str | None = None
    for raw in lines[1:]:
        line = raw.strip()
        block = stack[-1] if stack else None
        if note is not None:
            if line == "end note":
                note = None
            else:
                doc.lines_of.setdefault(note, []).append(line)
            continue
        if line.startswith(("direction ", "classDef ", "class ")):
            continue
        if line == "}":
            stack.pop()
        elif line == "--":
            assert block is not None
            doc.separators[block] = doc.separators.get(block, 0) + 1
        elif m := STATE.match(line):
            assert m["id"] not in doc.states, f"{m['id']} declared twice"
            doc.states[m["id"]] = (m["label"], block)
            if m["open"]:
                stack.append(m["id"])
        elif m := EDGE.match(line):
            if m["a"] == "[*]":
                doc.initial[block] = m["b"]
            elif m["b"] == "[*]":
                doc.finals[m["a"]] = block
            else:
                doc.edges.append((m["a"], m["b"], m["label"] or "", block))
        elif m := NOTE.match(line):
            note = m["id"]
        elif m := DESCR.match(line):
            doc.lines_of.setdefault(m["id"], []).append(m["text"])
        else:
            raise AssertionError(f"unexpected Mermaid line: {raw!r}")
    assert stack == [], "unbalanced braces"
    return doc


def unescape_mermaid(text: str) -> str:
    entities = {"#35;": "#", "#59;": ";", "#lt;": "<", "#gt;": ">", "#quot;": '"'}
    return re.sub(r"#(?:35|59|lt|gt|quot);", lambda m: entities[m.group(0)], text)


@pytest.mark.parametrize("path", MACHINES, ids=[p.stem for p in MACHINES])
def test_mermaid_structure(path: Path) -> None:
    machine = _load(path)
    model = machine.model
    doc = parse_mermaid(to_mermaid(machine))
    ids = mermaid_mod.mermaid_ids(build_diagram(machine))
    assert len(set(ids.values())) == len(ids)
    assert set(doc.states) == set(ids.values()), "every state declared exactly once"
    for node in model.nodes:
        mid = ids[node.id]
        label, parent = doc.states[mid]
        assert parent == (ids[node.parent.id] if node.parent is not None else None), f"#{node.id} nested wrongly"
        if node.type == HISTORY:
            assert label == ("H*" if node.history == "deep" else "H")
        elif node.parent is not None:
            assert unescape_mermaid(label) == node.key
        if node.type == PARALLEL:
            assert doc.separators.get(mid, 0) == len(node.states) - 1
        if node.initial is not None:
            assert doc.initial[mid] == ids[node.initial.targets[0].id]  # type: ignore[index]
        if node.type == FINAL and node.parent is not None and node.parent.type == COMPOUND:
            assert doc.finals[mid] == ids[node.parent.id]
    edges = list(doc.edges)
    for node in model.nodes:
        listed = " ".join(unescape_mermaid(line) for line in doc.lines_of.get(ids[node.id], []))
        for t in transitions(node):
            parts = expected_parts(t)
            for target in t.targets or (None,):
                nested = target is not None and target is not node
                nested = nested and (target.is_descendant_of(node) or node.is_descendant_of(target))  # type: ignore[union-attr]
                if target is None or nested:
                    assert all(p in listed for p in parts), f"{t} not listed in #{node.id}: {listed!r}"
                    continue
                found = [
                    e
                    for e in edges
                    if e[0] == ids[node.id]
                    and e[1] == ids[target.id]
                    and all(p in unescape_mermaid(e[2]) for p in parts)
                ]
                assert found, f"no Mermaid edge for {t} -> #{target.id}"
                edges.remove(found[0])
        if node.type == HISTORY and node.history_default is not None and node.history_default.source is node:
            for target in node.history_default.targets or ():
                edges.remove((ids[node.id], ids[target.id], "", ids[node.parent.id]))  # type: ignore[union-attr]
    assert edges == [], f"Mermaid edges that draw no transition: {edges}"


# -- options, highlighting, odd inputs -----------------------------------------------------

ODD = {
    "id": 'odd "machine"',
    "initial": "a b",
    "on": {"GLOBAL": ".p.r1.x", "PING": {"actions": ["pong"]}},
    "states": {
        "a b": {
            "id": "#weird;id<>",
            "initial": "c",
            "on": {"AGAIN": {"target": "a b", "reenter": True}, "DOWN": ".d", "*": "p"},
            "states": {"c": {"on": {"UP": '#odd "machine".a b'}}, "d": {"always": {"guard": "g", "target": "c"}}},
        },
        "p": {
            "type": "parallel",
            "on": {"OUT": {"target": "a b", "guard": {"type": "not", "guard": "busy"}}},
            "invoke": {"src": "svc", "onDone": "end", "onError": {"target": "a b", "actions": ["log it"]}},
            "states": {
                "r1": {
                    "initial": "x",
                    "states": {"x": {"after": {"1500": "y"}}, "y": {}, "h": {"type": "history", "history": "deep"}},
                },
                "r2": {"initial": "u", "states": {"u": {"on": {"BOTH": ['#odd "machine".p.r1.y', "v"]}}, "v": {}}},
            },
        },
        "end": {"type": "final", "tags": ["done"], "description": "It is over."},
    },
}


@pytest.fixture
def odd() -> fsm.Machine:
    return fsm.Machine.from_dict(ODD)


@needs_dot
def test_odd_names_and_every_construct_parse(odd: fsm.Machine) -> None:
    parsed = parse_dot(to_dot(odd, descriptions=True, tags=True))
    assert "#weird;id<>" in parsed.nodes or "cluster_#weird;id<>" in parsed.clusters
    assert "cluster_#weird;id<>" in parsed.clusters
    end = parsed.nodes['odd "machine".end']
    assert "It is over." in text_of(end["label"]) and "«done»" in text_of(end["label"])
    assert "AGAIN ↻" in words(parsed.clusters["cluster_#weird;id<>"]["label"])
    labels = [words(e.get("label", "")) for e in parsed.edges]
    assert "after 1.5s" in labels
    assert "OUT [!busy]" in labels
    assert "onError(svc) / log it" in labels
    # multi-target transitions draw one edge per target
    assert labels.count("BOTH") == 2
    doc = parse_mermaid(to_mermaid(odd))
    assert len(doc.states) == len(odd.model.nodes)


@needs_dot
def test_options_change_labels(odd: fsm.Machine) -> None:
    full = parse_dot(to_dot(odd))
    events = parse_dot(to_dot(odd, labels="events"))
    bare = parse_dot(to_dot(odd, labels="none", actions=False))
    assert "onError(svc) / log it" in [words(e.get("label", "")) for e in full.edges]
    assert "onError(svc)" in [words(e.get("label", "")) for e in events.edges]
    assert all("label" not in e for e in bare.edges)
    assert "PING" not in words(bare.clusters['cluster_odd "machine"']["label"])
    assert 'rankdir="TB"' in to_dot(odd, rankdir="TB") or "rankdir=TB" in to_dot(odd, rankdir="TB")
    assert "direction TB" in to_mermaid(odd, options=DiagramOptions(rankdir="TB"))
    with pytest.raises(ValueError, match="rankdir"):
        DiagramOptions(rankdir="XY")  # type: ignore[arg-type]


@needs_dot
def test_snapshot_highlights_active_states_and_the_last_step() -> None:
    machine = _load(ROOT / "machines" / "history_player.yaml")
    snap, _ = machine.initial_transition()
    for event in ("POWER", "PLAY", "SEEK"):
        snap, _ = machine.transition(snap, event)
    snap, steps = record_step(machine, snap, "REVERSE")
    parsed = parse_dot(to_dot(machine, snap, taken=steps))
    active = set(snap.state_ids)
    for node in machine.model.nodes:
        if is_cluster(node):
            color = parsed.clusters[cluster(node)]["color"]
            assert (color == dot_mod.ACTIVE_INK) == (node.id in active), node.id
        elif node.type != HISTORY:
            fill = parsed.nodes[node.id]["fillcolor"]
            assert (fill == dot_mod.ACTIVE_FILL) == (node.id in active), node.id
    taken = [e for e in parsed.edges if e.get("color") == dot_mod.TAKEN]
    assert [(e["tail"], e["head"], words(e["label"])) for e in taken] == [
        ("player.on.playing.seeking.forward", "player.on.playing.seeking.backward", "REVERSE")
    ]
    # Transition objects work too, and Mermaid marks the active leaf with a class.
    t = machine.model.by_id["player.off"].transitions["POWER"][0]
    again = parse_dot(to_dot(machine, taken=[t]))
    assert [e["tail"] for e in again.edges if e.get("color") == dot_mod.TAKEN] == ["player.off"]
    text = to_mermaid(machine, snap)
    assert "class player_on_playing_seeking_backward active" in text


def test_eventless_steps_are_highlighted_too() -> None:
    machine = _load(ROOT / "machines" / "order.yaml")
    snap, _ = machine.initial_transition()
    snap, _ = machine.transition(snap, {"type": "ADD_ITEM", "sku": "e-book", "price": 5, "digital": True})
    snap, steps = record_step(machine, snap, "CHECKOUT")
    diagram = build_diagram(machine, snap, steps)
    taken = [(e.source, e.trigger) for e in diagram.edges if e.taken]
    assert taken == [("cart", "CHECKOUT"), ("shipping", "always")]


def test_action_and_delay_labels() -> None:
    assert [diagram_mod.format_delay(d) for d in (0, 250, 1000, 1500, 60000, 90000, 7_200_000, "slow")] == [
        "0ms",
        "250ms",
        "1s",
        "1.5s",
        "1min",
        "1.5min",
        "2h",
        "slow",
    ]
    machine = _load(ROOT / "machines" / "order.yaml")
    cart = machine.model.by_id["cart"]
    labels = [diagram_mod.action_label(a) for a in cart.transitions["ADD_ITEM"][0].actions]
    assert labels == ["assign(items, subtotal, needsShipping)", "raise TOTALS_CHANGED"]
    # The synthetic after-timer actions never show up.
    light = _load(ROOT / "machines" / "traffic_light.yaml")
    state = build_diagram(light).state("trafficLight.yellow")
    assert state.entry == () and state.exit == ()


# -- rendering and missing tools -----------------------------------------------------------


@needs_dot
def test_svg_and_png() -> None:
    machine = _load(ROOT / "machines" / "traffic_light.yaml")
    svg = to_svg(machine)
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "flashing" in svg
    assert to_png(machine).startswith(b"\x89PNG\r\n\x1a\n")
    assert repr_svg(machine) == svg
    assert machine._repr_svg_() == svg  # what Jupyter shows


def test_missing_dot_is_a_clear_fsm_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    machine = _load(ROOT / "machines" / "workflow.yaml")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GraphvizNotFound, match=r"Debian/Ubuntu package `graphviz`") as info:
        to_svg(machine)
    assert isinstance(info.value, fsm.FsmError)
    with pytest.raises(GraphvizNotFound):
        to_png(machine)
    assert repr_svg(machine) is None  # notebooks fall back to the text repr
    assert machine._repr_svg_() is None
    assert "digraph" in to_dot(machine)  # DOT text needs no binary


def test_missing_graphviz_package_is_a_clear_fsm_error(monkeypatch: pytest.MonkeyPatch) -> None:
    machine = _load(ROOT / "machines" / "workflow.yaml")
    monkeypatch.setitem(sys.modules, "graphviz", None)  # makes `import graphviz` fail
    with pytest.raises(GraphvizNotFound, match=r"pip install 'fsm\[diagrams\]'"):
        to_dot(machine)
    assert repr_svg(machine) is None
    assert machine._repr_svg_() is None
    assert to_mermaid(machine).startswith("stateDiagram-v2")


def test_import_fsm_does_not_import_graphviz() -> None:
    code = "import sys, fsm, fsm.export; assert 'graphviz' not in sys.modules, 'graphviz imported eagerly'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# -- size ----------------------------------------------------------------------------------


def big_machine(groups: int = 50, per_group: int = 9) -> dict[str, Any]:
    """1 root + 50 compound states of 9 leaves each = 501 states, ~1500 transitions."""
    states: dict[str, Any] = {}
    for g in range(groups):
        leaves = {
            f"s{i}": {
                "on": {
                    "NEXT": f"s{(i + 1) % per_group}",
                    "JUMP": {"target": f"#big.g{(g + 1) % groups}", "guard": "ok", "actions": ["a", "b"]},
                },
                "after": {"1000": f"s{(i + 2) % per_group}"},
            }
            for i in range(per_group)
        }
        states[f"g{g}"] = {"initial": "s0", "states": leaves, "on": {"RESET": ".s0"}}
    return {"id": "big", "initial": "g0", "states": states}


def test_500_states_export_quickly() -> None:
    """Generating the text is fsm's work and must stay fast. Laying it out as SVG or PNG
    is Graphviz's (about ten seconds for this machine) and is not measured here."""
    machine = fsm.Machine.from_dict(big_machine())
    assert len(machine.model.nodes) == 501
    start = time.perf_counter()
    dot = to_dot(machine)
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    mermaid = to_mermaid(machine)
    elapsed_mermaid = time.perf_counter() - start
    print(f"\n501-state machine: DOT {elapsed * 1000:.0f} ms, Mermaid {elapsed_mermaid * 1000:.0f} ms")
    assert mermaid.count(" --> ") > 1400
    assert elapsed < 0.5
    assert elapsed_mermaid < 0.5
    # NEXT, JUMP and `after` per leaf, RESET per group, and 51 initial markers.
    assert dot.count(" -> ") == 50 * 9 * 3 + 50 + 51


# -- docs ----------------------------------------------------------------------------------


def test_module_doctests() -> None:
    import fsm.export

    for module in (fsm.export, diagram_mod, dot_mod, mermaid_mod):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__


def test_rendered_diagrams_in_docs_exist() -> None:
    page = (ROOT / "docs" / "diagrams.md").read_text(encoding="utf-8")
    images = re.findall(r"\]\((diagrams/[^)]+\.svg)\)", page)
    assert images, "docs/diagrams.md embeds no rendered diagram"
    for image in images:
        svg = ROOT / "docs" / image
        assert svg.is_file(), f"docs/diagrams.md shows missing {image}"
        assert "<svg" in svg.read_text(encoding="utf-8")


def test_mermaid_block_in_docs_is_the_printed_output() -> None:
    """The ```mermaid block GitHub renders is the output the doctest above it checks."""
    page = (ROOT / "docs" / "diagrams.md").read_text(encoding="utf-8")
    printed = page.split(">>> print(to_mermaid(door))\n", 1)[1].split("<BLANKLINE>", 1)[0]
    block = page.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert block == printed
