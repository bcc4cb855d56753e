"""Ready-made inspectors: structured logging and OpenTelemetry tracing.

An inspector is any callable receiving the records an actor emits
(``actor.inspect(fn)`` or ``machine.start(inspect=fn)``): ``@fsm.event``,
``@fsm.microstep``, ``@fsm.action``, ``@fsm.snapshot``, ``@fsm.error``. Neither adapter
is needed by the core; OpenTelemetry is imported only when :func:`otel_inspector` is
called (``pip install 'fsm[otel]'``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

Inspector = Callable[[dict[str, Any]], None]


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def log_inspector(logger: logging.Logger | None = None, level: int = logging.INFO) -> Inspector:
    """Log every event, transition, action and resulting state as one structured record.

    Fields go in ``extra`` (``fsm_actor``, ``fsm_event``, ``fsm_value``, ...) so JSON log
    formatters pick them up; the message stays readable for plain text handlers.
    """
    log = logger or logging.getLogger("fsm.inspect")

    def inspect(record: dict[str, Any]) -> None:
        kind = record["type"]
        actor = record.get("actor")
        if kind == "@fsm.event":
            event = record["event"]
            log.log(
                level, "%s: event %s", actor, event["type"], extra={"fsm_actor": actor, "fsm_event": _jsonable(event)}
            )
        elif kind == "@fsm.microstep":
            moves = [f"{t['source']} -> {','.join(t['targets']) or '(targetless)'}" for t in record["transitions"]]
            log.log(
                level,
                "%s: microstep %s",
                actor,
                "; ".join(moves),
                extra={"fsm_actor": actor, "fsm_transitions": record["transitions"]},
            )
        elif kind == "@fsm.action":
            action = record["action"]
            log.log(
                level,
                "%s: action %s",
                actor,
                action["type"],
                extra={"fsm_actor": actor, "fsm_action": action["type"], "fsm_params": _jsonable(action["params"])},
            )
        elif kind == "@fsm.snapshot":
            snapshot = record["snapshot"]
            log.log(
                level,
                "%s: now %s (%s)",
                actor,
                json.dumps(snapshot.value),
                snapshot.status,
                extra={
                    "fsm_actor": actor,
                    "fsm_value": snapshot.value,
                    "fsm_status": snapshot.status,
                    "fsm_context": _jsonable(snapshot.context),
                },
            )
        elif kind == "@fsm.error":
            log.error("%s: failed: %s", actor, record["error"], extra={"fsm_actor": actor})

    return inspect


def otel_inspector(tracer: Any = None) -> Inspector:
    """One span per macrostep: opened at the event, closed at the resulting snapshot.

    Span name ``fsm <event type>``; attributes ``fsm.actor``, ``fsm.event.type``,
    ``fsm.state.before``, ``fsm.state.after``, ``fsm.status``; microsteps and actions
    are span events; a failed step records the exception and sets an error status.
    """
    from opentelemetry import trace

    tracer = tracer or trace.get_tracer("fsm")
    open_spans: dict[Any, Any] = {}

    def inspect(record: dict[str, Any]) -> None:
        kind = record["type"]
        actor = record.get("actor")
        if kind == "@fsm.event":
            event = record["event"]
            span = tracer.start_span(f"fsm {event['type']}")
            span.set_attribute("fsm.actor", str(actor))
            span.set_attribute("fsm.event.type", event["type"])
            before = record.get("snapshot")
            if before is not None:
                span.set_attribute("fsm.state.before", json.dumps(before.value))
            previous = open_spans.pop(actor, None)
            if previous is not None:
                previous.end()
            open_spans[actor] = span
            return
        span = open_spans.get(actor)
        if span is None:
            return
        if kind == "@fsm.microstep":
            span.add_event(
                "microstep",
                {"fsm.transitions": [f"{t['source']}->{','.join(t['targets'])}" for t in record["transitions"]]},
            )
        elif kind == "@fsm.action":
            span.add_event("action", {"fsm.action": record["action"]["type"]})
        elif kind == "@fsm.snapshot":
            snapshot = record["snapshot"]
            span.set_attribute("fsm.state.after", json.dumps(snapshot.value))
            span.set_attribute("fsm.status", snapshot.status)
            span.end()
            del open_spans[actor]
        elif kind == "@fsm.error":
            error = record["error"]
            if isinstance(error, BaseException):
                span.record_exception(error)
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)))
            span.end()
            del open_spans[actor]

    return inspect
