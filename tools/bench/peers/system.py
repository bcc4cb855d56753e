"""What a peer module provides: a :class:`System` naming its bench functions.

Bench functions by workload key:

- ``W1``..``W4``: ``f(events: list[str]) -> Trial`` (send each event through the public API)
- ``W5a``: ``f(count) -> Trial`` (create and start ``count`` W3 instances)
- ``W5b``: ``f(count) -> Trial`` (``count`` snapshot -> JSON -> restore round trips)
- ``L1``: ``f() -> Trial`` (validate + compile the 1,000-state machine once)
- ``M1``: ``(factory, check)``: make one idle started W3 instance; check one

A workload the system cannot express is listed in ``na`` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any


@dataclass
class System:
    key: str
    label: str
    version: Callable[[], str]
    benches: dict[str, Any] = field(default_factory=dict)
    na: dict[str, str] = field(default_factory=dict)
    description: str = ""


def dist_version(name: str) -> Callable[[], str]:
    def version() -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return version
