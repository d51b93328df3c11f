"""Stream health in the daemon: the health monitor fed from the store, its stalls turned into failure signals.

The monitor (``relayd.health``) probes each schedule's playback URL while the schedule should be relaying and calls
back when a stream stalls. Here that becomes the same thing a failure callback is: a notice for the segment that
should be relaying, so the reconciler confirms it with a listing and restarts it by the usual path (backoff,
budget, the action the platform accepts). A stream that comes back resets nothing by itself.

What "should be relaying" means, for the monitor: the schedule has a segment in state RUNNING whose window holds
``now``; probing starts at its start — or at its last restart (``healthy_since``), so every restart opens a new
grace period — and pauses while a segment is being created, restarted or has failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog

from relayd.alerts.conditions import StreamStall
from relayd.health.monitor import HealthEvents, HealthMonitor, targets
from relayd.health.verdict import Health
from relayd.ids import ScheduleId
from relayd.noticing import Notices
from relayd.schedules.model import Schedule
from relayd.store import SegmentRecord, SegmentState, StateStore

log = structlog.get_logger("relayd.streams")


class StreamWatch:
    def __init__(
        self, *, store: StateStore, notices: Notices, events: HealthEvents, clock: Callable[[], float]
    ) -> None:
        self._store = store
        self._notices = notices
        self._clock = clock
        self.monitor = HealthMonitor(
            relaying_since=self._relaying_since, on_stall=self._on_stall, events=events, clock=clock
        )

    def set_schedules(self, schedules: Iterable[Schedule]) -> None:
        self.monitor.set_targets(targets(schedules))

    async def run(self, stop: asyncio.Event) -> None:
        await self.monitor.run(stop)

    def _relaying(self, schedule_id: ScheduleId, now: float) -> SegmentRecord | None:
        for record in self._store.segments(schedule_id):
            if record.state == SegmentState.RUNNING and record.start <= now < record.end:
                return record
        return None

    def _relaying_since(self, schedule_id: ScheduleId, now: float) -> float | None:
        record = self._relaying(schedule_id, now)
        if record is None:
            return None
        return max(float(record.start), record.healthy_since or 0.0)

    def _on_stall(self, schedule_id: ScheduleId, since: float) -> None:
        now = self._clock()
        record = self._relaying(schedule_id, now)
        if record is None:
            return
        log.warning("stream_stalled", schedule_id=schedule_id, segment=record.key, task_id=record.task_id, since=since)
        # Reported at the instant it was seen, not at the last advance: a stream that never advanced after a restart
        # stalled "since" before that restart, and must not read as a stale signal.
        self._notices.stalled(schedule_id, record.key, now, since)

    def status_json(self, schedule_id: ScheduleId) -> dict[str, Any] | None:
        status = self.monitor.status(schedule_id)
        return None if status is None else status.as_dict(self._clock())

    def stalls(self) -> Mapping[ScheduleId, StreamStall]:
        """Streams stalled now, with the restarts tried on their segment (the ``stream_down`` alert's facts)."""
        stalled: dict[ScheduleId, StreamStall] = {}
        now = self._clock()
        for schedule_id, status in self.monitor.statuses().items():
            if status.health is Health.STALLED and status.verdict.since is not None:
                records = self._store.segments(schedule_id)
                tried = max((r.attempts for r in records if r.start <= now < r.end), default=0)
                stalled[schedule_id] = StreamStall(status.verdict.since, tried)
        return stalled
