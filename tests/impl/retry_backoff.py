"""Implementations for ``machines/retry_backoff.yaml``.

``callService`` fails while ``input["attempt"] <= request["failTimes"]`` (stateless, so
runs are reproducible); ``retryDelay`` is exponential backoff with jitter drawn from an
injected ``random.Random``, so a seed makes every delay, and every retry time, exact.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

BASE_MS = 100.0
MULTIPLIER = 2.0
JITTER_MS = 50.0


class ServiceUnavailable(RuntimeError):
    """The simulated remote service is down for this attempt."""


def call_service(context: Mapping[str, Any], event: Mapping[str, Any], input: Mapping[str, Any]) -> dict[str, Any]:
    request = input["request"] or {}
    if input["attempt"] <= request.get("failTimes", 0):
        raise ServiceUnavailable(f"503 on attempt {input['attempt']}")
    return {"status": 200, "attempt": input["attempt"]}


def backoff(
    rng: random.Random, base: float = BASE_MS, multiplier: float = MULTIPLIER, jitter: float = JITTER_MS
) -> Callable[[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]], float]:
    """The ``retryDelay`` implementation: ``base * multiplier ** (attempt - 1)`` plus up
    to ``jitter`` ms of random jitter (``attempt`` = calls made so far)."""

    def retry_delay(context: Mapping[str, Any], event: Mapping[str, Any], params: Mapping[str, Any]) -> float:
        return base * multiplier ** (context["attempt"] - 1) + rng.uniform(0, jitter)

    return retry_delay


actions: dict[str, Any] = {}
guards: dict[str, Any] = {}
services: dict[str, Any] = {"callService": call_service}
delays: dict[str, Any] = {"retryDelay": backoff(random.Random(42))}
