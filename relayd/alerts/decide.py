"""Alert decisions: the conditions true now + the durable alert state + ``now`` → new state + notifications.

Pure, like :mod:`relayd.reconcile`: :func:`decide` is the one entry point, every input is passed in, and nothing
here reads a clock or does I/O. The manager saves the state it returns and hands the notifications to delivery.

Why damping: a condition seen once can be a blip (one failed listing, a restart that takes a few seconds). An
alert opens only after its condition has held for ``open_after`` without a break, and resolves only after the
condition has been absent for ``resolve_after``; a condition that comes back while an open alert is clearing
simply keeps the alert open. So a flapping condition produces one opening and, when it finally settles, one
resolution — never a pair per flap.

Why "exactly once": every alert's life is a small state machine (absent → pending → open → clearing → absent) and
only two of its edges emit: pending → open (OPENED) and clearing → absent (RESOLVED). A pending condition that
goes away was never told, so nothing is resolved. Because the state is durable, a restart resumes the same
machine: what was opened is not opened again, and what cleared while relayd was down is resolved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from relayd.alerts.model import Alert, Condition, Notification, Transition


class Phase(StrEnum):
    PENDING = "pending"
    """The condition holds, not yet for ``open_after``: nothing told."""
    OPEN = "open"
    """The opening was told. ``clear_since`` set means the condition is absent and the alert is clearing."""


@dataclass(frozen=True, slots=True)
class Tracked:
    """One alert's durable life: its latest condition, phase, and the instants that drive its damping."""

    condition: Condition
    phase: Phase
    since: float
    """When the condition started holding (this streak)."""
    opened_at: float | None = None
    clear_since: float | None = None
    """When an open alert's condition was last seen absent for the first time (None while it holds)."""

    def alert(self) -> Alert:
        assert self.opened_at is not None
        return Alert(self.condition, self.opened_at)


AlertState = Mapping[str, Tracked]


@dataclass(frozen=True, slots=True)
class Damping:
    open_after: float = 30.0
    """Seconds a condition must hold before its alert opens."""
    resolve_after: float = 60.0
    """Seconds a condition must stay clear before its alert resolves."""


@dataclass(frozen=True, slots=True)
class Decision:
    state: dict[str, Tracked]
    notifications: list[Notification]
    next_check: float | None
    """The earliest instant at which deciding again could change something (a pending open, a clearing)."""


def decide(conditions: Iterable[Condition], state: AlertState, now: float, damping: Damping) -> Decision:
    """Advance every alert's state machine to ``now``; see the module docstring for the rules."""
    present = {c.key: c for c in conditions}
    new_state: dict[str, Tracked] = {}
    notifications: list[Notification] = []
    for key in sorted(present.keys() | state.keys()):
        tracked, told = _step(state.get(key), present.get(key), now, damping)
        if tracked is not None:
            new_state[key] = tracked
        if told is not None:
            notifications.append(told)
    return Decision(new_state, notifications, _next_check(new_state.values(), damping))


def open_alerts(state: AlertState) -> list[Alert]:
    """The alerts that have been opened and not yet resolved (clearing ones included), most severe first."""
    opened = [t.alert() for t in state.values() if t.phase is Phase.OPEN]
    return sorted(opened, key=lambda a: (-a.severity.rank, a.opened_at, a.key))


def _step(
    tracked: Tracked | None, condition: Condition | None, now: float, damping: Damping
) -> tuple[Tracked | None, Notification | None]:
    if condition is not None:
        return _holding(tracked, condition, now, damping)
    if tracked is None or tracked.phase is Phase.PENDING:
        return None, None  # never told: forget it quietly
    return _clearing(tracked, now, damping)


def _holding(
    tracked: Tracked | None, condition: Condition, now: float, damping: Damping
) -> tuple[Tracked, Notification | None]:
    """The condition holds: start or continue its streak, open when it has held long enough."""
    if tracked is None:
        tracked = Tracked(condition, Phase.PENDING, since=now)
    if tracked.phase is Phase.OPEN:
        return replace(tracked, condition=condition, clear_since=None), None
    tracked = replace(tracked, condition=condition)
    if now - tracked.since < damping.open_after:
        return tracked, None
    opened = replace(tracked, phase=Phase.OPEN, opened_at=now)
    return opened, Notification(Transition.OPENED, opened.alert(), now)


def _clearing(tracked: Tracked, now: float, damping: Damping) -> tuple[Tracked | None, Notification | None]:
    """An open alert's condition is absent: resolve once it has stayed absent for ``resolve_after``."""
    if tracked.clear_since is None:
        tracked = replace(tracked, clear_since=now)
    assert tracked.clear_since is not None
    if now - tracked.clear_since < damping.resolve_after:
        return tracked, None
    return None, Notification(Transition.RESOLVED, tracked.alert(), now)


def _next_check(tracked: Iterable[Tracked], damping: Damping) -> float | None:
    instants = [_due(t, damping) for t in tracked]
    due = [at for at in instants if at is not None]
    return min(due) if due else None


def _due(tracked: Tracked, damping: Damping) -> float | None:
    if tracked.phase is Phase.PENDING:
        return tracked.since + damping.open_after
    if tracked.clear_since is not None:
        return tracked.clear_since + damping.resolve_after
    return None
