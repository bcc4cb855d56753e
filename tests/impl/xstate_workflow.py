"""Implementations for ``machines/xstate_workflow.json``.

``runWorkflow`` is a plain synchronous service: it adds up ``job["items"]`` and fails
while ``input["attempt"] <= job["failTimes"]``, so a job can be made to fail a given
number of times without any hidden state. ``saveResult`` / ``saveError`` are ``assign``
built-ins provided from Python, as XState's ``setup({actions})`` would provide them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import fsm


class WorkflowFailed(RuntimeError):
    """Raised by the service for a job that is set up to fail."""


def run_workflow(context: Mapping[str, Any], event: Mapping[str, Any], input: Mapping[str, Any]) -> dict[str, Any]:
    job = input["job"] or {}
    if input["attempt"] <= job.get("failTimes", 0):
        raise WorkflowFailed(f"attempt {input['attempt']} failed")
    return {"total": sum(job.get("items", [])), "attempt": input["attempt"]}


def initialize(context: Mapping[str, Any], event: Mapping[str, Any], params: Mapping[str, Any]) -> None:
    """A side effect on entering ``running`` (here: nothing; tests record the call)."""


save_result = fsm.assign(lambda ctx, ev, params: {"result": ev["output"]})
# The error is an exception object; context must stay JSON data, so keep its message.
save_error = fsm.assign(lambda ctx, ev, params: {"error": ev["error"]["message"]})

actions: dict[str, Any] = {"initialize": initialize, "saveResult": save_result, "saveError": save_error}
guards: dict[str, Any] = {}
services: dict[str, Any] = {"runWorkflow": run_workflow}
delays: dict[str, Any] = {}
