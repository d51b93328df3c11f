"""The alert vocabulary: kinds, severities, conditions, alerts and notifications.

A *condition* is something true right now ("segment winter-news#3 has spent its restart budget"); it is computed
afresh from the daemon's facts at every evaluation and has no memory. An *alert* is a condition that has held long
enough to be told to a human; it has an opening time and, later, a resolution. The pair (kind, subject) is an
alert's identity: the same problem seen again is the same alert, whatever its message says now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class AlertKind(StrEnum):
    """What is wrong. The values are the names operators see and filter on (``kinds = [...]`` in a target)."""

    SEGMENT_FAILING = "segment_failing"
    HANDOFF_AT_RISK = "handoff_at_risk"
    STREAM_DOWN = "stream_down"
    CREDENTIALS_REJECTED = "credentials_rejected"
    PLATFORM_UNREACHABLE = "platform_unreachable"
    CONFIG_PROBLEM = "config_problem"
    INSTALLATION_CONFLICT = "installation_conflict"


class Severity(StrEnum):
    """How urgent. Ordered: ``info < warning < critical`` (see :attr:`rank`)."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class Transition(StrEnum):
    """What a notification announces."""

    OPENED = "opened"
    RESOLVED = "resolved"
    TEST = "test"


@dataclass(frozen=True, slots=True)
class Condition:
    """Something wrong right now. ``message`` says what and what to do; ``links`` are commands or URLs to look at."""

    kind: AlertKind
    subject: str
    severity: Severity
    message: str
    links: tuple[str, ...] = field(default=())

    @property
    def key(self) -> str:
        return alert_key(self.kind, self.subject)


def alert_key(kind: AlertKind, subject: str) -> str:
    """An alert's identity as one string (the key of the durable state)."""
    return f"{kind.value}:{subject}"


@dataclass(frozen=True, slots=True)
class Alert:
    """An opened alert: the condition as last seen, and when it was opened (unix seconds)."""

    condition: Condition
    opened_at: float

    @property
    def kind(self) -> AlertKind:
        return self.condition.kind

    @property
    def subject(self) -> str:
        return self.condition.subject

    @property
    def severity(self) -> Severity:
        return self.condition.severity

    @property
    def key(self) -> str:
        return self.condition.key


@dataclass(frozen=True, slots=True)
class Notification:
    """One thing to tell: an alert opened or resolved at ``at`` (or a test message)."""

    transition: Transition
    alert: Alert
    at: float

    @property
    def ident(self) -> str:
        """Unique per alert life and transition: the same opening is never two different notifications."""
        return f"{self.transition.value}:{self.alert.key}:{self.alert.opened_at:.3f}"
