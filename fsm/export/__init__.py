"""Diagrams of machines: Graphviz DOT / SVG / PNG and Mermaid ``stateDiagram-v2``.

Every export goes machine -> :func:`~fsm.export.diagram.build_diagram` (the diagram IR)
-> a renderer, so DOT and Mermaid agree on what a transition is called and only differ
in how they draw it. Neither the ``graphviz`` package nor the ``dot`` program is needed
to ``import fsm``: they are looked up when a DOT/SVG/PNG export is asked for.

>>> import fsm
>>> from fsm.export import to_dot, to_mermaid
>>> m = fsm.Machine.from_dict({"id": "door", "initial": "closed", "states": {
...     "closed": {"on": {"OPEN": "opened"}}, "opened": {"on": {"CLOSE": "closed"}}}})
>>> print(to_mermaid(m))
stateDiagram-v2
    direction LR
    state "door" as door {
        [*] --> door_closed
        state "closed" as door_closed
        state "opened" as door_opened
        door_closed --> door_opened : OPEN
        door_opened --> door_closed : CLOSE
    }
<BLANKLINE>
>>> "cluster_door" in to_dot(m)
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fsm.export.diagram import (
    Diagram,
    DiagramEdge,
    DiagramOptions,
    DiagramState,
    action_label,
    build_diagram,
    format_delay,
)
from fsm.export.dot import DiagramError, GraphvizNotFound, pipe, render_dot
from fsm.export.mermaid import render_mermaid

if TYPE_CHECKING:
    from fsm.machine import Machine
    from fsm.model.nodes import Transition
    from fsm.semantics.snapshot import Snapshot

Taken = Iterable["Transition | Mapping[str, Any]"]

__all__ = [
    "Diagram",
    "DiagramEdge",
    "DiagramError",
    "DiagramOptions",
    "DiagramState",
    "GraphvizNotFound",
    "action_label",
    "build_diagram",
    "format_delay",
    "record_step",
    "render_dot",
    "render_mermaid",
    "repr_svg",
    "to_dot",
    "to_mermaid",
    "to_png",
    "to_svg",
]


def _options(options: DiagramOptions | None, overrides: dict[str, Any]) -> DiagramOptions:
    """One options dataclass; keyword overrides are its field names (``rankdir="TB"``)."""
    base = options or DiagramOptions()
    return replace(base, **overrides) if overrides else base


def to_dot(
    machine: Machine,
    snapshot: Snapshot | None = None,
    *,
    taken: Taken = (),
    options: DiagramOptions | None = None,
    **overrides: Any,
) -> str:
    """Graphviz DOT source for a machine.

    ``snapshot`` highlights its active states; ``taken`` highlights the transitions of
    the last step (Transition objects or microstep records, see :func:`record_step`).
    ``options`` / keyword overrides: see :class:`DiagramOptions`. The text is the same
    for the same machine and arguments, so it can be committed and diffed.
    """
    return render_dot(build_diagram(machine, snapshot, taken), _options(options, overrides))


def to_svg(
    machine: Machine,
    snapshot: Snapshot | None = None,
    *,
    taken: Taken = (),
    options: DiagramOptions | None = None,
    **overrides: Any,
) -> str:
    """SVG text, rendered by Graphviz's ``dot`` (raises :class:`GraphvizNotFound`,
    naming the ``graphviz`` Debian package, when it is not installed)."""
    source = to_dot(machine, snapshot, taken=taken, options=options, **overrides)
    return pipe(source, "svg").decode("utf-8")


def to_png(
    machine: Machine,
    snapshot: Snapshot | None = None,
    *,
    taken: Taken = (),
    options: DiagramOptions | None = None,
    **overrides: Any,
) -> bytes:
    """PNG bytes, rendered by Graphviz's ``dot`` (same requirements as :func:`to_svg`)."""
    return pipe(to_dot(machine, snapshot, taken=taken, options=options, **overrides), "png")


def to_mermaid(
    machine: Machine,
    snapshot: Snapshot | None = None,
    *,
    taken: Taken = (),
    options: DiagramOptions | None = None,
    **overrides: Any,
) -> str:
    """Mermaid ``stateDiagram-v2`` text (pure Python, no dependency)."""
    return render_mermaid(build_diagram(machine, snapshot, taken), _options(options, overrides))


def repr_svg(machine: Machine, snapshot: Snapshot | None = None) -> str | None:
    """SVG for Jupyter's ``_repr_svg_``, or None when Graphviz is not available, so a
    notebook falls back to the text repr instead of showing a traceback."""
    try:
        return to_svg(machine, snapshot)
    except DiagramError:
        return None


def record_step(
    machine: Machine, snapshot: Snapshot, event: Any, *, now: float = 0.0
) -> tuple[Snapshot, list[dict[str, Any]]]:
    """Take one step and also return its microstep records, ready for ``taken=``:

    >>> import fsm
    >>> from fsm.export import record_step, to_dot
    >>> m = fsm.Machine.from_dict({"id": "t", "initial": "a", "states": {
    ...     "a": {"on": {"GO": "b"}}, "b": {}}})
    >>> snap, _ = m.initial_transition()
    >>> snap, steps = record_step(m, snap, "GO")
    >>> steps[0]["transitions"]
    [{'source': 't.a', 'event': 'GO', 'targets': ['t.b']}]
    >>> dot = to_dot(m, snap, taken=steps)
    """
    records: list[dict[str, Any]] = []
    after, _ = machine.transition(snapshot, event, now=now, on_microstep=records.append)
    return after, records
