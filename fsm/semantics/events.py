"""Event objects: the XState v5 shape (a dict with a string ``type``) and its names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fsm.errors import EventError

INIT = "xstate.init"
STOP = "xstate.stop"
WILDCARD = "*"
ERROR_ACTOR_PREFIX = "xstate.error.actor"


def done_state(state_id: str, output: Any = None) -> dict[str, Any]:
    return {"type": f"xstate.done.state.{state_id}", "output": output}


def done_actor(invoke_id: str, output: Any = None) -> dict[str, Any]:
    return {"type": f"xstate.done.actor.{invoke_id}", "output": output, "actorId": invoke_id}


class ErrorInfo(dict[str, Any]):
    """How a failure travels in an event: ``{"type": "ValueError", "message": "..."}``.

    Plain data, so a machine reads ``event.error.message`` in an expression, the event
    can be journaled, and a replay sees exactly what the live step saw. The exception
    itself is kept as ``.exception`` for Python code (None once read back from JSON).
    """

    exception: BaseException | None = None

    @classmethod
    def of(cls, error: Any) -> Any:
        """The error as data: exceptions and bare messages become ``{type, message}``;
        anything else (a dict from a journal) is kept as it is."""
        if isinstance(error, str):
            return cls({"type": "Error", "message": error})
        if not isinstance(error, BaseException):
            return error
        info = cls({"type": type(error).__name__, "message": str(error)})
        if isinstance(error, Mapping):
            info.update({k: v for k, v in error.items() if isinstance(k, str) and k not in info})
        info.exception = error
        return info


def error_actor(invoke_id: str, error: Any) -> dict[str, Any]:
    return {"type": f"xstate.error.actor.{invoke_id}", "error": ErrorInfo.of(error), "actorId": invoke_id}


def normalize(event: Any, payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Accept ``"TYPE"`` (+ payload), ``{"type": ...}``, or a CloudEvents envelope.

    A CloudEvents envelope (``specversion`` + ``type`` + optional ``data``) maps to
    ``{"type": type, **data}`` so events from brokers can be sent unchanged.
    """
    if isinstance(event, str):
        result: dict[str, Any] = {"type": event}
        if payload:
            if "type" in payload:
                raise EventError("the payload of an event cannot have its own 'type'", event)
            result.update(payload)
    elif isinstance(event, Mapping):
        if payload:
            raise EventError("pass the payload inside the event dict, or send('TYPE', **payload)", event)
        if "specversion" in event and "type" in event:
            data = event.get("data")
            result = {"type": event["type"]}
            if isinstance(data, Mapping):
                result.update({k: v for k, v in data.items() if k != "type"})
            elif data is not None:
                result["data"] = data
        else:
            result = dict(event)
    else:
        raise EventError(f"an event must be a string or a dict with a 'type', got {type(event).__name__}", event)
    kind = result.get("type")
    if not isinstance(kind, str) or not kind:
        raise EventError(f"an event needs a non-empty string 'type', got {kind!r}", event)
    if kind == WILDCARD:
        raise EventError("an event cannot have the wildcard type '*'", event)
    if "error" in result and kind.startswith(ERROR_ACTOR_PREFIX):
        result["error"] = ErrorInfo.of(result["error"])
    return result
