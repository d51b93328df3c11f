"""Grouping: the notifications queued for one target → one message.

Why: a platform outage fails every schedule at once, and 1,000 messages in a chat group are worse than none. A
batch of one reads as that alert's own message; a larger batch becomes one message with counts per transition and
kind, the first few subjects of each, and "and N more". Pure; delivery calls it with whatever was queued when the
target was free to send.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from relayd.alerts.model import AlertKind, Notification, Severity, Transition

FIRST_SUBJECTS = 5


class Tone(StrEnum):
    """How the message is presented (the values are Apprise's notify types)."""

    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str
    tone: Tone
    count: int
    """Notifications in this message."""


def group(notifications: Sequence[Notification], *, installation: str) -> Message:
    """One message telling every notification in ``notifications`` (which must not be empty)."""
    if not notifications:
        raise ValueError("nothing to group")
    prefix = f"[relayd {installation}]"
    if len(notifications) == 1:
        return _single(notifications[0], prefix)
    return _many(notifications, prefix)


def _single(n: Notification, prefix: str) -> Message:
    alert = n.alert
    if n.transition is Transition.TEST:
        body = f"{alert.condition.message}\nSent at {_time(n.at)}."
        return Message(f"{prefix} test notification", body, Tone.INFO, 1)
    what = f"{alert.kind.value} {alert.subject}"
    links = f"\nSee: {', '.join(alert.condition.links)}" if alert.condition.links else ""
    if n.transition is Transition.OPENED:
        title = f"{prefix} OPENED {alert.severity.value}: {what}"
        body = f"{alert.condition.message}{links}\nOpened at {_time(alert.opened_at)}."
        return Message(title, body, _tone([n]), 1)
    title = f"{prefix} RESOLVED: {what}"
    body = f"Resolved after {_elapsed(n.at - alert.opened_at)} (opened at {_time(alert.opened_at)}). Was: "
    return Message(title, body + alert.condition.message, Tone.SUCCESS, 1)


def _many(notifications: Sequence[Notification], prefix: str) -> Message:
    opened = [n for n in notifications if n.transition is not Transition.RESOLVED]
    resolved = [n for n in notifications if n.transition is Transition.RESOLVED]
    counts = [f"{len(opened)} opened"] if opened else []
    counts += [f"{len(resolved)} resolved"] if resolved else []
    sections = [_section("Opened", opened), _section("Resolved", resolved)]
    body = "\n\n".join(s for s in sections if s) + "\n\nDetails: relayd alerts (or GET /v1/alerts)."
    return Message(
        f"{prefix} {len(notifications)} alerts: {', '.join(counts)}", body, _tone(notifications), len(notifications)
    )


def _section(heading: str, notifications: Sequence[Notification]) -> str:
    if not notifications:
        return ""
    by_kind: dict[AlertKind, list[Notification]] = defaultdict(list)
    for n in notifications:
        by_kind[n.alert.kind].append(n)
    lines = [f"{heading} ({len(notifications)}):"]
    for kind in sorted(by_kind, key=lambda k: (-_worst(by_kind[k]).rank, k.value)):
        items = by_kind[kind]
        subjects = sorted(n.alert.subject for n in items)
        more = f" and {len(subjects) - FIRST_SUBJECTS} more" if len(subjects) > FIRST_SUBJECTS else ""
        shown = ", ".join(subjects[:FIRST_SUBJECTS])
        lines.append(f"- {kind.value} ×{len(items)} ({_worst(items).value}): {shown}{more}")
    return "\n".join(lines)


def _worst(notifications: Sequence[Notification]) -> Severity:
    return max((n.alert.severity for n in notifications), key=lambda s: s.rank)


def _tone(notifications: Sequence[Notification]) -> Tone:
    opened = [n for n in notifications if n.transition is Transition.OPENED]
    if not opened:
        return Tone.SUCCESS if any(n.transition is Transition.RESOLVED for n in notifications) else Tone.INFO
    worst = _worst(opened)
    return {Severity.CRITICAL: Tone.FAILURE, Severity.WARNING: Tone.WARNING}.get(worst, Tone.INFO)


def _time(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _elapsed(seconds: float) -> str:
    s = max(0, int(seconds))
    hours, rem = divmod(s, 3600)
    minutes, secs = divmod(rem, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
