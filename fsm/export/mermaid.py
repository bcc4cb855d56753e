"""Mermaid ``stateDiagram-v2`` renderer over the diagram IR.

Mermaid draws nesting, parallel regions (``--`` between the regions of a composite
state), initial and final pseudo-states and descriptions inside states, but it has
limits that shape this renderer (checked against Mermaid 11):

* ids must be plain words, so state ids (``order.checkout.payment``) are turned into
  ``order_checkout_payment`` and the key is shown as the label;
* an edge between a composite state and one of its own descendants is not drawn
  (Mermaid routes it nowhere), so such transitions, like targetless ones, are listed
  inside the source state: as description lines in a simple state, in a note beside a
  composite one;
* an edge is written in the innermost composite block that contains both ends (never
  inside a parallel state, where it would land in one region), after the states of
  that block are declared, because a state first named in an edge is created in the
  block where the edge is written;
* there is no history pseudo-state: a history state is a state labelled ``H`` or ``H*``;
* ``;`` ends a statement and ``<b>`` is read as HTML even inside labels, so label text
  goes through Mermaid's ``#code;`` entities.

The whole machine is wrapped in one composite state named after the machine, as in the
DOT export, which also gives transitions declared on the root a place to be listed.
"""

from __future__ import annotations

import re

from fsm.export.diagram import Diagram, DiagramEdge, DiagramOptions, DiagramState

ACTIVE_STYLE = "fill:#fff1a8,stroke:#b07d00,stroke-width:2px"
# Words of the stateDiagram grammar that cannot be used as a bare state id.
_KEYWORDS = frozenset({"state", "note", "end", "as", "direction", "class", "classdef", "style", "click", "hide"})


# One pass, so the ";" of an entity just written is not escaped again.
_ENTITIES = str.maketrans({"#": "#35;", ";": "#59;", "<": "#lt;", ">": "#gt;", '"': "#quot;", "\n": " "})


def render_mermaid(diagram: Diagram, options: DiagramOptions | None = None) -> str:
    """The Mermaid ``stateDiagram-v2`` source for a diagram (deterministic)."""
    return _MermaidWriter(diagram, options or DiagramOptions()).write()


def mermaid_ids(diagram: Diagram) -> dict[str, str]:
    """State id -> Mermaid id: word characters only, unique, never a keyword."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for state in diagram.states():
        base = re.sub(r"[^A-Za-z0-9_]", "_", state.id) or "state"
        if base[0].isdigit() or base.lower() in _KEYWORDS:
            base = "s_" + base
        name, n = base, 2
        while name in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        out[state.id] = name
    return out


def escape(text: str) -> str:
    """Make text safe in a Mermaid label: entities for ``#``, ``;``, ``<``, ``>`` and ``"``."""
    return text.translate(_ENTITIES)


class _MermaidWriter:
    def __init__(self, diagram: Diagram, options: DiagramOptions) -> None:
        self.diagram = diagram
        self.options = options
        self.ids = mermaid_ids(diagram)
        self.parents = diagram.parents()
        # Edges grouped by the block they are written in (None: the top level), and
        # lines listed inside their source state.
        self.scoped: dict[str | None, list[tuple[str, str, DiagramEdge]]] = {}
        self.listed: dict[str, list[str]] = {}
        self.lines: list[str] = []
        for edge in diagram.edges:
            for target in edge.targets:
                self.place(edge, target)

    def ancestors(self, state_id: str) -> list[str]:
        """``state_id`` and its ancestors, innermost first."""
        chain = [state_id]
        while chain[-1] in self.parents:
            chain.append(self.parents[chain[-1]])
        return chain

    def place(self, edge: DiagramEdge, target: str) -> None:
        source = edge.source
        up_source, up_target = self.ancestors(source), self.ancestors(target)
        if source != target and (source in up_target or target in up_source):
            label = edge.text(self.options.labels) or edge.trigger
            arrow = f"→ {self.diagram.state(target).key}"
            self.listed.setdefault(source, []).append(f"{label} {arrow}" if label else arrow)
            return
        scope: str | None = next(s for s in up_source if s in up_target)
        if scope == source == target:
            scope = self.parents.get(scope)
        while scope is not None and self.diagram.state(scope).kind == "parallel":
            scope = self.parents.get(scope)
        self.scoped.setdefault(scope, []).append((source, target, edge))

    # -- output --------------------------------------------------------------------------

    def write(self) -> str:
        self.lines = ["stateDiagram-v2", f"    direction {self.options.rankdir}"]
        root = self.diagram.root
        self.state(root, 1)
        self.notes(root, 1)
        self.edges(None, 1)
        # Only active leaves: Mermaid fills a composite's whole area, and every ancestor of
        # an active leaf is active, so marking them would flood the picture.
        active = [self.ids[s.id] for s in self.diagram.states() if s.active and not s.is_cluster]
        if active:
            self.lines.append(f"    classDef active {ACTIVE_STYLE}")
            self.lines.append(f"    class {','.join(active)} active")
        return "\n".join(self.lines) + "\n"

    def emit(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def label(self, state: DiagramState) -> str:
        if state.kind == "history":
            return "H*" if state.deep else "H"
        return escape(self.diagram.id if state is self.diagram.root else state.key)

    def compartment(self, state: DiagramState) -> list[str]:
        """Lines listed in a state: tags, entry/exit, invocations, targetless and
        nested-endpoint transitions."""
        lines: list[str] = []
        if self.options.tags and state.tags:
            lines.append(" ".join(f"«{t}»" for t in state.tags))
        if self.options.descriptions and state.description:
            lines.append(state.description)
        if self.options.actions:
            if state.entry:
                lines.append("entry / " + ", ".join(state.entry))
            if state.exit:
                lines.append("exit / " + ", ".join(state.exit))
            lines.extend(f"invoke {src}" for src in state.invoke)
            lines.extend(e.text(self.options.labels) or e.trigger for e in state.internal)
        lines.extend(self.listed.get(state.id, ()))
        return lines

    def state(self, state: DiagramState, depth: int) -> None:
        sid = self.ids[state.id]
        if not state.is_cluster:
            self.emit(depth, f'state "{self.label(state)}" as {sid}')
            for line in self.compartment(state):
                self.emit(depth, f"{sid} : {escape(line)}")
            return
        self.emit(depth, f'state "{self.label(state)}" as {sid} {{')
        if state.kind == "parallel":
            for i, region in enumerate(state.children):
                if i:
                    self.emit(depth + 1, "--")
                self.state(region, depth + 1)
                self.notes(region, depth + 1)
        else:
            if state.initial is not None:
                self.emit(depth + 1, f"[*] --> {self.ids[state.initial]}")
            for child in state.children:
                self.state(child, depth + 1)
                self.notes(child, depth + 1)
            self.edges(state.id, depth + 1)
            for child in state.children:
                if child.kind == "final":
                    self.emit(depth + 1, f"{self.ids[child.id]} --> [*]")
        self.emit(depth, "}")

    def notes(self, state: DiagramState, depth: int) -> None:
        """A composite state's listed lines go in a note beside it (Mermaid shows no
        description lines for composites)."""
        if not state.is_cluster:
            return
        lines = self.compartment(state)
        if not lines:
            return
        side = "left" if state is self.diagram.root else "right"
        self.emit(depth, f"note {side} of {self.ids[state.id]}")
        for line in lines:
            text = escape(line)
            # A line starting with "end" would close the note early.
            self.emit(depth + 1, "#8203;" + text if re.match(r"end\b", text) else text)
        self.emit(depth, "end note")

    def edges(self, scope: str | None, depth: int) -> None:
        for source, target, edge in self.scoped.get(scope, ()):
            text = escape(edge.text(self.options.labels))
            arrow = f"{self.ids[source]} --> {self.ids[target]}"
            self.emit(depth, f"{arrow} : {text}" if text else arrow)
