"""The daemon's current :class:`PlatformFacts`: read from the probe's file at start-up, extended by refusals.

One mutable holder shared by the engine (which passes ``facts`` to every decision) and the executor (which learns
from the platform's refusals). A fact learnt at run time is logged once, with its evidence (the error code, the
message and the request id), so the operator sees which world the account is in; learning the same answer again is
silent. A learnt fact never contradicts the file silently: the change is logged with both values.
"""

from __future__ import annotations

from typing import Any

import structlog

from relayd.platform.facts import PlatformFacts

log = structlog.get_logger("relayd.knowledge")


class Knowledge:
    def __init__(self, facts: PlatformFacts | None = None) -> None:
        self.facts = facts or PlatformFacts()

    def learn(self, name: str, value: Any, evidence: str) -> bool:
        """Record one answer; True (and logged) when it is news."""
        before = getattr(self.facts, name)
        if before == value:
            return False
        self.facts = self.facts.with_fact(name, value, evidence)
        log.warning("platform_fact_learnt", fact=name, value=value, previous=before, evidence=evidence)
        return True
