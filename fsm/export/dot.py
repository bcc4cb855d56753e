"""Graphviz DOT renderer over the diagram IR, and SVG/PNG through the ``dot`` program.

Statecharts need three things plain graphs do not have, and each maps onto a Graphviz
feature: nesting (compound and parallel states are clusters, parallel regions are
dashed clusters inside their parallel state, as UML draws orthogonal regions), edges to
and from a compound state that stop at its border (``compound=true`` with
``lhead``/``ltail``, aimed at an invisible anchor node inside the cluster), and a
pseudo-state marking where a compound state starts (a small filled circle).

The ``graphviz`` Python package builds the DOT text; it and the ``dot`` binary are
imported / looked up only when a diagram is asked for, so ``import fsm`` needs neither.
"""

from __future__ import annotations

import html
import importlib
import shutil
import textwrap
from typing import Any

from fsm.errors import FsmError
from fsm.export.diagram import Diagram, DiagramEdge, DiagramOptions, DiagramState

# Colours: neutral structure, one warm colour for "where the instance is now" and one
# for "how it got there", blue for time-driven edges.
INK = "#3c3c3c"
MUTED = "#6a6a6a"
ACTIVE_FILL = "#fff1a8"
ACTIVE_INK = "#b07d00"
TAKEN = "#d9480f"
AFTER = "#1c5d99"
REGION = "#8a8a8a"


class DiagramError(FsmError):
    """A diagram could not be produced (a missing tool, or Graphviz refused the input)."""


class GraphvizNotFound(DiagramError):
    """The ``graphviz`` Python package or the ``dot`` program is missing."""


def graphviz_module() -> Any:
    """Import the ``graphviz`` package on demand, with an error that says how to get it."""
    try:
        # Through importlib: the package ships no type information, and nothing here
        # needs more than `Any` from it.
        return importlib.import_module("graphviz")
    except ImportError:
        raise GraphvizNotFound(
            "DOT export needs the `graphviz` Python package: pip install 'fsm[diagrams]' (or pip install graphviz)"
        ) from None


def render_dot(diagram: Diagram, options: DiagramOptions | None = None) -> str:
    """The DOT source for a diagram (deterministic: same diagram, same text)."""
    return _DotWriter(diagram, options or DiagramOptions()).write()


def pipe(source: str, fmt: str) -> bytes:
    """Run ``dot -T<fmt>`` over DOT source.

    Raises :class:`GraphvizNotFound` naming the package to install when ``dot`` is not
    on PATH, and :class:`DiagramError` with Graphviz's message when it fails.
    """
    gv = graphviz_module()
    if shutil.which("dot") is None:
        raise GraphvizNotFound(
            f"rendering {fmt.upper()} needs Graphviz's `dot` program, which is not on PATH: install the "
            "Debian/Ubuntu package `graphviz` (apt-get install graphviz; brew install graphviz on macOS), "
            "or export DOT text with fsm.export.to_dot()"
        )
    try:
        data: bytes = gv.pipe("dot", fmt, source.encode("utf-8"), quiet=True)
    except gv.ExecutableNotFound as exc:
        raise GraphvizNotFound(
            f"Graphviz's `dot` program could not be run ({exc}): install the Debian/Ubuntu package `graphviz`"
        ) from None
    except gv.CalledProcessError as exc:
        stderr = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else str(exc.stderr)
        raise DiagramError(f"dot -T{fmt} failed: {stderr.strip()}") from None
    return data


class _DotWriter:
    """Walks the IR once, emitting clusters and nodes nested, then every edge at the top
    level (an edge written inside a cluster would create a missing endpoint there)."""

    def __init__(self, diagram: Diagram, options: DiagramOptions) -> None:
        self.diagram = diagram
        self.options = options
        self.parents = diagram.parents()
        self.clusters = {s.id for s in diagram.states() if s.is_cluster}
        # A cluster cannot have a loop drawn around it: a compound state's transitions
        # to itself are listed in its label, marked ↻, instead.
        self.loops: dict[str, list[str]] = {}
        # Anchor nodes (invisible points inside clusters) used by some edge, per cluster.
        self.anchors: dict[str, list[str]] = {}
        self.edges: list[tuple[str, str, dict[str, str]]] = []
        for state in diagram.states():
            if state.initial is not None:
                self.initial_edge(state.id, state.initial)
        for edge in diagram.edges:
            self.add_edge(edge)

    # -- names -------------------------------------------------------------------------

    @staticmethod
    def cluster(state_id: str) -> str:
        return f"cluster_{state_id}"

    @staticmethod
    def initial_marker(state_id: str) -> str:
        return f"__initial__{state_id}"

    def endpoint(self, state_id: str, role: str) -> str:
        """The node an edge is attached to: the state's own node, or for a cluster an
        invisible anchor inside it (the edge is clipped at the border by ``lhead`` /
        ``ltail``).

        A cluster has at most two anchors: ``border`` for edges crossing its border,
        and ``inner`` for edges between it and its own descendants (``FAULT`` declared
        on the root and targeting a child), which cannot be clipped and would otherwise
        pull the border anchor, and the labels of the edges on it, into the cluster.
        (Tried and dropped: separate in/out anchors, and the initial marker as the
        entry anchor; both left large empty areas in nested clusters.) An anchor is
        only created when an edge uses it: a spare one still takes room."""
        if state_id not in self.clusters:
            return state_id
        name = f"__{role}__{state_id}"
        used = self.anchors.setdefault(state_id, [])
        if name not in used:
            used.append(name)
        return name

    def within(self, state_id: str, ancestor: str) -> bool:
        """``state_id`` is ``ancestor`` or one of its descendants."""
        current: str | None = state_id
        while current is not None:
            if current == ancestor:
                return True
            current = self.parents.get(current)
        return False

    # -- the graph ---------------------------------------------------------------------

    def write(self) -> str:
        gv = graphviz_module()
        opts = self.options
        graph = gv.Digraph(name=self.diagram.id)
        graph.attr(
            "graph",
            compound="true",
            rankdir=opts.rankdir,
            newrank="true",
            fontname=opts.font,
            fontsize="11",
            nodesep="0.3",
            ranksep="0.35",
            pad="0.15",
            outputorder="edgesfirst",
            labeljust="l",
        )
        graph.attr(
            "node",
            shape="box",
            style="rounded,filled",
            fillcolor="white",
            color=INK,
            fontname=opts.font,
            fontsize="11",
            margin="0.12,0.05",
            height="0.36",
            width="0.6",
        )
        graph.attr("edge", color=INK, fontname=opts.font, fontsize="9", arrowsize="0.7")
        with graph.subgraph(name=self.cluster(self.diagram.root.id)) as sub:
            self.emit_cluster(sub, self.diagram.root, root=True)
        for tail, head, attrs in self.edges:
            graph.edge(tail, head, **attrs)
        source: str = graph.source
        return source

    def emit_cluster(self, graph: Any, state: DiagramState, root: bool = False) -> None:
        style = ["rounded"]
        if state.region:
            style.append("dashed")
        attrs: dict[str, str] = {
            "label": self.cluster_label(state, root),
            "style": ",".join(style),
            "color": REGION if state.region else INK,
            "penwidth": "1",
            "margin": "10",
            "tooltip": state.description or state.id,
        }
        if state.active:
            # Border only: the root (and every ancestor of an active leaf) is active, so a
            # fill would wash over the whole picture.
            attrs.update(color=ACTIVE_INK, penwidth="2")
        graph.attr(**attrs)
        for anchor in self.anchors.get(state.id, ()):
            graph.node(anchor, label="", shape="point", style="invis", width="0.01", height="0.01")
        if state.initial is not None:
            graph.node(
                self.initial_marker(state.id),
                label="",
                shape="circle",
                style="filled",
                fillcolor=INK,
                color=INK,
                width="0.13",
                height="0.13",
                fixedsize="true",
            )
        for child in state.children:
            if child.is_cluster:
                with graph.subgraph(name=self.cluster(child.id)) as sub:
                    self.emit_cluster(sub, child)
            else:
                graph.node(child.id, **self.node_attrs(child))

    def node_attrs(self, state: DiagramState) -> dict[str, str]:
        attrs: dict[str, str] = {"tooltip": state.description or state.id}
        if state.kind == "history":
            attrs.update(
                label="H*" if state.deep else "H",
                shape="circle",
                style="filled",
                width="0.34",
                height="0.34",
                fixedsize="true",
                fontsize="10",
                margin="0",
            )
        else:
            attrs["label"] = self.state_label(state)
            if state.kind == "final":
                attrs["peripheries"] = "2"
        if state.active:
            attrs.update(fillcolor=ACTIVE_FILL, color=ACTIVE_INK, penwidth="2")
        return attrs

    # -- labels --------------------------------------------------------------------------

    def compartment(self, state: DiagramState) -> list[str]:
        """The lines under a state's name: entry/exit actions, invocations and targetless
        transitions (which have no edge to draw), and a compound state's transitions
        to itself."""
        lines: list[str] = []
        if self.options.actions:
            if state.entry:
                lines.append("entry / " + ", ".join(state.entry))
            if state.exit:
                lines.append("exit / " + ", ".join(state.exit))
            lines.extend(f"invoke {src}" for src in state.invoke)
            lines.extend(e.text(self.options.labels) or e.trigger for e in state.internal)
        lines.extend(self.loops.get(state.id, ()))
        return lines

    def header(self, state: DiagramState, name: str) -> list[str]:
        """Name, tags and description rows, already HTML."""
        rows = [f"<B>{_h(name)}</B>"]
        if self.options.tags and state.tags:
            rows.append(
                f'<FONT POINT-SIZE="8" COLOR="{MUTED}">' + _h(" ".join(f"«{t}»" for t in state.tags)) + "</FONT>"
            )
        if self.options.descriptions and state.description:
            text = "<BR/>".join(_h(line) for line in textwrap.wrap(state.description, 36))
            rows.append(f'<FONT POINT-SIZE="8" COLOR="{MUTED}"><I>{text}</I></FONT>')
        return rows

    def table(self, header: list[str], lines: list[str], align: str) -> str:
        rows = "".join(f'<TR><TD ALIGN="{align}">{row}</TD></TR>' for row in header)
        if lines:
            body = "".join(f'{_h(line)}<BR ALIGN="LEFT"/>' for line in self.wrapped(lines))
            rows += f'<HR/><TR><TD ALIGN="LEFT" BALIGN="LEFT"><FONT POINT-SIZE="9">{body}</FONT></TD></TR>'
        return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{rows}</TABLE>>'

    def wrapped(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        for line in lines:
            out.extend(textwrap.wrap(line, self.options.wrap, subsequent_indent="    ") or [line])
        return out

    def state_label(self, state: DiagramState) -> str:
        header = self.header(state, state.key)
        lines = self.compartment(state)
        if len(header) == 1 and not lines:
            return f"<{header[0]}>"
        return self.table(header, lines, "CENTER")

    def cluster_label(self, state: DiagramState, root: bool) -> str:
        name = self.diagram.id if root else state.key
        return self.table(self.header(state, name), self.compartment(state), "LEFT")

    def edge_label(self, edge: DiagramEdge) -> str:
        detail = self.options.labels
        head = edge.head(detail)
        if not head:
            return ""
        text = _h(head)
        if edge.kind in ("always", "after"):
            # "always" / "after 5s" in italics: these are not events anyone sends.
            trigger = _h(edge.trigger)
            text = f"<I>{trigger}</I>{text[len(trigger) :]}"
        actions = edge.action_text(detail)
        if actions:
            wrapped = textwrap.wrap(actions, self.options.wrap, subsequent_indent="  ")
            text += "".join(f'<BR ALIGN="LEFT"/>{_h(line)}' for line in wrapped) + '<BR ALIGN="LEFT"/>'
        return f"<{text}>"

    # -- edges ---------------------------------------------------------------------------

    def initial_edge(self, state_id: str, initial: str) -> None:
        attrs = {"arrowsize": "0.6"}
        if initial in self.clusters:
            attrs["lhead"] = self.cluster(initial)
        self.edges.append((self.initial_marker(state_id), self.endpoint(initial, "border"), attrs))

    def add_edge(self, edge: DiagramEdge) -> None:
        attrs: dict[str, str] = {}
        label = self.edge_label(edge)
        if label:
            attrs["label"] = label
        if edge.kind == "always":
            attrs["style"] = "dashed"
        elif edge.kind == "after":
            attrs.update(color=AFTER, fontcolor=AFTER)
        elif edge.kind == "history":
            attrs.update(style="dotted", arrowhead="open")
        if edge.taken:
            attrs.update(color=TAKEN, fontcolor=TAKEN, penwidth="2.2")
        source = edge.source
        for target in edge.targets:
            one = dict(attrs)
            if target == source and source in self.clusters:
                self.loops.setdefault(source, []).append(f"{edge.text(self.options.labels) or edge.trigger} ↻")
                continue
            if source in self.clusters and self.within(target, source):
                tail = self.endpoint(source, "inner")
            else:
                tail = self.endpoint(source, "border")
                if source in self.clusters:
                    one["ltail"] = self.cluster(source)
            if target in self.clusters and self.within(source, target):
                head = self.endpoint(target, "inner")
            else:
                head = self.endpoint(target, "border")
                if target in self.clusters:
                    one["lhead"] = self.cluster(target)
            self.edges.append((tail, head, one))


def _h(text: str) -> str:
    """Escape text for a Graphviz HTML-like label."""
    return html.escape(text, quote=False)
