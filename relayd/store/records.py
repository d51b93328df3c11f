"""The records the store keeps: segments, events, applied schedules.

Why frozen dataclasses rather than pydantic models: records are created by the thousand on the hot path (every
reconcile pass, every callback) and only ever come from relayd itself, so validation would be pure cost. Frozen
records can be shared between the in-memory cache and callers without copies; change one with
``dataclasses.replace``. The JSON-able ``dict`` fields (``body``, ``data``, ``payload``) are shared too: treat them
as read-only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from relayd.ids import GroupName, ScheduleId, SegmentKey, TaskId

if TYPE_CHECKING:
    from relayd.schedules.model import Segment


class SegmentState(StrEnum):
    """Where one planned segment stands in its life on the platform."""

    PENDING = "pending"
    """Planned; no task on the platform yet."""
    CREATING = "creating"
    """Intent recorded before CreatePullToPushTask (a crash here means: adopt by Title on restart)."""
    SCHEDULED = "scheduled"
    """The task exists; its window has not started."""
    RUNNING = "running"
    """The task exists and should be relaying."""
    RETRYING = "retrying"
    """A failure was seen; the next attempt is at ``next_attempt_at``."""
    FAILED = "failed"
    """The restart budget is spent; visible in status and metrics."""
    ENDED = "ended"
    """The window is over; the task awaits deletion after the retention period."""
    REMOVING = "removing"
    """No longer planned (schedule edited or removed); stop and delete in progress."""
    DELETED = "deleted"
    """The task was deleted (or never created and abandoned); kept as history until pruned."""


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    """relayd's durable knowledge of one segment and the platform task that carries it."""

    key: SegmentKey
    schedule_id: ScheduleId
    index: int
    occurrence: int | None
    start: int
    end: int
    title: str
    group: GroupName | None
    spec_hash: str
    """Hash of the desired spec last applied to the platform."""
    body: dict[str, Any]
    """The full Create body last sent (JSON-able), incl. StartTime/EndTime/Title/CallbackURL/GroupName."""
    task_id: TaskId | None = None
    state: SegmentState = SegmentState.PENDING
    attempts: int = 0
    """Restart attempts in the current failure streak."""
    next_attempt_at: float | None = None
    failure_seen_at: float | None = None
    """First unresolved failure signal (callback or observation)."""
    healthy_since: float | None = None
    last_error: str | None = None
    last_request_id: str | None = None
    created_at: float = 0.0
    """Set by the store on the first put when left at 0."""
    updated_at: float = 0.0
    """Set by the store on every put."""
    deleted_at: float | None = None

    @classmethod
    def from_segment(cls, segment: Segment, now: float) -> SegmentRecord:
        """A PENDING record for a planned segment that has none yet."""
        return cls(
            key=segment.key,
            schedule_id=segment.schedule_id,
            spec_hash=segment.spec_hash,
            body={},
            created_at=now,
            updated_at=now,
            **_identity(segment),
        )

    def stamped(self, created_at: float, updated_at: float) -> SegmentRecord:
        """This record with the store's timestamps. Positional, because the store stamps every put (~27,000 at a
        first pass of 10,000 schedules) and ``dataclasses.replace`` costs twice as much; a test checks that every
        other field is carried over."""
        return SegmentRecord(
            self.key, self.schedule_id, self.index, self.occurrence, self.start, self.end, self.title, self.group,
            self.spec_hash, self.body, self.task_id, self.state, self.attempts, self.next_attempt_at,
            self.failure_seen_at, self.healthy_since, self.last_error, self.last_request_id, created_at, updated_at,
            self.deleted_at,
        )  # fmt: skip

    def with_segment(self, segment: Segment, **changes: Any) -> SegmentRecord:
        """This record carrying the segment's current window and identity fields (its spec hash is left alone:
        it says what the platform was last given, which only a create or update changes), and ``changes``."""
        return dataclasses.replace(self, **_identity(segment), **changes)


def _identity(segment: Segment) -> dict[str, Any]:
    """The fields a record copies from its segment: the one list of them."""
    return {
        "index": segment.index,
        "occurrence": segment.occurrence,
        "start": segment.start,
        "end": segment.end,
        "title": segment.title,
        "group": segment.group,
    }


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the durable event history."""

    ts: float
    kind: str
    """e.g. "callback", "create", "restart", "failed", "delete", "config"."""
    schedule_id: ScheduleId | None = None
    segment_key: SegmentKey | None = None
    task_id: TaskId | None = None
    dedupe_key: str | None = None
    """Unique when set: a second add with the same key is a no-op."""
    data: dict[str, Any] = field(default_factory=dict)
    raw: str | None = None
    """The raw body, for callbacks."""
    id: int | None = None
    """Assigned by the store; None on events not yet read back."""


@dataclass(frozen=True, slots=True)
class AppliedSchedule:
    """The last good version of one schedule, so a file broken at start-up keeps its previous version running."""

    schedule_id: ScheduleId
    digest: str
    source_file: str
    payload: dict[str, Any]
    """``Schedule.model_dump(mode="json")``."""
