"""The seams between the HTTP server and the rest of the daemon.

The web layer reads two things and writes one:

* ``StoreView`` — the subset of ``relayd.store.Store`` it uses: in-memory segment reads, durable event writes,
  event history reads, and the store's health. The real ``Store`` satisfies it structurally; tests may pass a
  fake of the same shape.
* ``DaemonView`` — what only the running daemon knows: the loaded schedules and their config problems, what it
  will do next for a segment and when, and whether the platform has answered lately. The daemon implements it;
  every method is a cheap, synchronous, non-blocking read of in-memory state.
* ``ConsoleActions`` — the console's two safe actions (retry a failing segment now, release held removals),
  provided by the daemon; optional: without it the action endpoints answer 501.
* ``ReconcileHint`` — the one write: "look at this schedule soon". It must only enqueue (never call the
  platform, never block), because callback handlers call it while the platform waits for the 200.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from relayd.ids import GroupName, ScheduleId, SegmentKey, TaskId
from relayd.reconcile import NextAction, Plan
from relayd.store import Event, SegmentRecord
from relayd.store.journal import ChangeJournal
from relayd.volc.models import TaskStatus
from relayd.web.notices import CallbackNotice

__all__ = ["DaemonPlan", "DaemonView", "NextAction", "ReconcileHint", "ScheduleInfo", "StoreView"]

ReconcileHint = Callable[[ScheduleId, SegmentKey, CallbackNotice], None]
"""Called once per new (non-duplicate) authenticated callback for a known segment. Must not block."""


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """One schedule as the daemon loaded it (also for files that failed to load: ``problems`` non-empty)."""

    id: ScheduleId
    title: str = ""
    enabled: bool = True
    source: str | None = None
    group: GroupName | None = None
    problems: tuple[str, ...] = field(default=())
    line: int | None = None
    """The line of ``source`` where the schedule's table starts (None when unknown)."""


@dataclass(frozen=True, slots=True)
class DaemonPlan:
    """What the daemon would do now for one schedule, decided over its own observations (no platform call)."""

    plan: Plan
    listed_at: float | None
    """When the listing these observations start from began (None: the platform has not been listed yet)."""


@dataclass(frozen=True, slots=True)
class SegmentNotes:
    """What the engine knows of a segment beyond its record (since start-up): its hand-off gap, and where a schedule
    change waits for the next segment because the platform refuses Update while a task runs."""

    handoff_gap_s: float | None = None
    change_applies: str | None = None


class DaemonView(Protocol):
    def schedules(self) -> Sequence[ScheduleInfo]:
        """Every schedule from the last config load, including ones skipped because of problems."""

    def next_action(self, key: SegmentKey) -> NextAction | None:
        """The next timer the daemon holds for this segment, or None."""

    def segment_notes(self, key: SegmentKey) -> SegmentNotes:
        """The engine's notes on this segment (hand-off gap, deferred change)."""

    def config_loaded(self) -> bool:
        """True once the config directory has been loaded at least once."""

    def stream_health(self, schedule_id: ScheduleId) -> Mapping[str, Any] | None:
        """The schedule's stream as the health check sees it (``up`` / ``stalled`` / ``unknown`` / ``paused``, since
        when, last advance), or None when the schedule has no health check."""

    def config_problems(self) -> Sequence[str]:
        """Human-readable problems from the last load (file, field, reason), empty when clean."""

    def config_warnings(self) -> Sequence[str]:
        """Warnings from the last load (never problems: nothing was skipped for them), empty when none."""

    def held_removals(self) -> Sequence[ScheduleId]:
        """Schedules the removal guard keeps running although the config no longer declares them."""

    def conflicts(self) -> Sequence[str]:
        """Another installation using this namespace on the account (each with the fix), empty when none."""

    def last_platform_success(self) -> float | None:
        """Unix time of the last successful platform API call (``ApiObserver.last_ok`` fits), None if none yet."""

    def platform_error(self) -> str | None:
        """The last platform error code if the latest call failed, else None (``ApiObserver.last_error`` fits)."""

    def now(self) -> float:
        """The daemon's clock, unix seconds."""

    def platform_status(self, key: SegmentKey) -> TaskStatus | None:
        """The platform's status of this segment's task as the daemon last saw it (listing, confirmation or its own
        action), None when it has not seen the task."""

    def plan_now(self, schedule_id: ScheduleId) -> DaemonPlan | None:
        """The daemon's own ``plan --live`` for one schedule (pure ``decide`` over its observations; never calls the
        platform), None for a schedule it does not know."""


class StoreView(Protocol):
    commits: int
    """Committed write transactions since open: the console's cheap change signal (read, never written)."""
    journal: ChangeJournal
    """The schedules whose segments changed lately: what the console's stream names (read, never written)."""

    @property
    def healthy(self) -> bool: ...

    def segment(self, key: SegmentKey) -> SegmentRecord | None: ...

    def segments(
        self, schedule_id: ScheduleId | None = None, include_deleted: bool = False
    ) -> Sequence[SegmentRecord]: ...

    def by_task_id(self, task_id: TaskId) -> SegmentRecord | None: ...

    async def add_event(self, event: Event) -> bool: ...

    async def events(
        self,
        *,
        schedule_id: ScheduleId | None = None,
        segment_key: SegmentKey | None = None,
        kind: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> Sequence[Event]: ...


class ConsoleActions(Protocol):
    """The two operator actions the console offers; everything else stays in the config directory."""

    async def retry_now(self, key: SegmentKey) -> bool:
        """Retry this segment at once: clear its backoff wait and queue its schedule for reconcile.

        True when the segment exists and is retrying or failed (a failed segment gets a fresh attempt budget);
        False (nothing changed) for an unknown key or any other state. Must not call the platform inline.
        """

    async def release_removals(self) -> Sequence[ScheduleId]:
        """Confirm every removal the mass-removal guard holds; the schedule ids released (empty if none)."""
