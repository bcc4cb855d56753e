"""Shared pytest configuration: hypothesis profiles and the XState oracle.

``ci`` (the default) keeps the whole suite fast; ``long`` is for a thorough run::

    HYPOTHESIS_PROFILE=long pytest tests/test_properties.py
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from fsm.testing.xstate_oracle import XStateOracle, node_available

settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=5000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def xstate_oracle() -> Iterator[XStateOracle]:
    """One XState process (Node) for the whole run. Without Node the tests that need it
    skip with the reason, unless FSM_REQUIRE_NODE is set (as CI does): then they fail,
    so a broken Node set-up cannot pass for a green run."""
    reason = node_available()
    if reason is not None:
        if os.environ.get("FSM_REQUIRE_NODE"):
            pytest.fail(f"the XState oracle is required here (FSM_REQUIRE_NODE is set) but: {reason}")
        pytest.skip(f"XState oracle unavailable: {reason}")
    with XStateOracle(timeout=60) as oracle:
        yield oracle
