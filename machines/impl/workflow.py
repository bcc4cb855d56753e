"""The custom action of machines/workflow.yaml, so the job runs as a stored instance:

    fsm run machines/workflow.yaml --impl machines/impl/workflow.py --store sqlite:///fsm.db -e START

Without ``--store``, ``fsm run`` prints actions it has no implementation for; a stored
run journals each action as a durable effect and refuses to stand in for it. The
notice goes to stderr, so ``--json`` output stays JSON Lines.
"""

from __future__ import annotations

import sys
from typing import Any


def notify_started(context: Any, event: Any, params: Any, *, effect: Any) -> None:
    # effect.key ("<instance>:<seq>:<index>") is the same on every attempt: a real
    # notifier would pass it on as an idempotency key.
    key = f", effect {effect.key}" if effect.key else ""
    print(f"     notify: the job started (run {context['attempts']}{key})", file=sys.stderr)


actions = {"notifyStarted": notify_started}
