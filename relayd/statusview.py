"""What the running daemon shows: the status API's ``DaemonView``, the metrics read at scrape time, sd_notify's
status line. Cheap, synchronous reads of state other modules own; no rule is re-derived here (a segment's "next"
comes from :func:`relayd.reconcile.next_action`, its policy from :meth:`relayd.engine.Engine.policy_for`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from relayd.alerts.conditions import AlertFacts
from relayd.configuration import Configuration
from relayd.engine import Engine
from relayd.ids import ScheduleId, SegmentKey
from relayd.jobs import Jobs
from relayd.metrics import ApiObserver
from relayd.observations import shown_status
from relayd.reconcile import NextAction, next_action
from relayd.store import SegmentRecord, SegmentState, StateStore
from relayd.streams import StreamWatch
from relayd.volc.models import TaskStatus
from relayd.web.views import DaemonPlan, ScheduleInfo, SegmentNotes


def segment_counts(records: Iterable[SegmentRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        counts[record.state.value] = counts.get(record.state.value, 0) + 1
    return counts


def next_handoff(records: Iterable[SegmentRecord], now: float) -> float | None:
    """Seconds until the next segment starts (a hand-off, or a relay beginning), None if none is planned."""
    upcoming = [r.start for r in records if r.start > now and r.state != SegmentState.DELETED]
    return min(upcoming) - now if upcoming else None


def summary(schedules: int, records: Iterable[SegmentRecord]) -> str:
    counts = segment_counts(records)
    return f"{schedules} schedules, {counts.get('running', 0)} relaying, {counts.get('failed', 0)} failed"


class StatusView:
    """``relayd.web.views.DaemonView`` over the daemon's parts."""

    def __init__(
        self,
        *,
        config: Configuration,
        engine: Engine,
        store: StateStore,
        jobs: Jobs,
        observer: ApiObserver,
        streams: StreamWatch,
        clock: Callable[[], float],
        is_ready: Callable[[], bool],
    ) -> None:
        self._config = config
        self._engine = engine
        self._store = store
        self._jobs = jobs
        self._observer = observer
        self._streams = streams
        self._clock = clock
        self.ready = is_ready
        self._started_at = clock()
        self.conflicts: Callable[[], Sequence[str]] = lambda: ()
        """Installation conflicts (``relayd.installation.Installation.conflicts``), set by the wiring."""

    def schedules(self) -> Sequence[ScheduleInfo]:
        return self._config.current.infos

    def next_action(self, key: SegmentKey) -> NextAction | None:
        record = self._store.segment(key)
        if record is None:
            return None
        policy = self._engine.policy_for(record.schedule_id)
        return next_action(record, policy, self._jobs.next_wake(record.schedule_id))

    def segment_notes(self, key: SegmentKey) -> SegmentNotes:
        return SegmentNotes(self._engine.handoff_gaps.get(key), self._engine.deferred.get(key))

    def config_loaded(self) -> bool:
        return self._config.loaded

    def config_problems(self) -> Sequence[str]:
        return self._config.problems

    def config_warnings(self) -> Sequence[str]:
        return self._config.current.warnings

    def held_removals(self) -> Sequence[ScheduleId]:
        return self._config.held

    def last_platform_success(self) -> float | None:
        times = [t for t in (self._engine.last_platform_success, self._observer.last_ok) if t is not None]
        return max(times) if times else None

    def platform_error(self) -> str | None:
        return self._engine.last_platform_error

    def now(self) -> float:
        return self._clock()

    def platform_status(self, key: SegmentKey) -> TaskStatus | None:
        record = self._store.segment(key)
        if record is None or record.task_id is None:
            return None
        task = self._engine.observations.task(record.title, record.task_id)
        return None if task is None else shown_status(task, self._clock())

    def plan_now(self, schedule_id: ScheduleId) -> DaemonPlan | None:
        if schedule_id not in self._engine.schedules and not self._store.segments(schedule_id):
            return None
        return DaemonPlan(self._engine.decide_now(schedule_id), self._engine.observations.listed_at)

    def segment_counts(self) -> dict[str, int]:
        return segment_counts(self._store.segments())

    def next_handoff(self) -> float | None:
        return next_handoff(self._store.segments(), self._clock())

    def alert_facts(self) -> AlertFacts:
        """What the alert rules look at, now (``AlertManager.run``'s facts source)."""
        return AlertFacts(
            segments=self._store.segments(),
            started_at=self._started_at,
            last_platform_success=self.last_platform_success(),
            platform_error=self._observer.last_error,
            config_problems=self._config.problems,
            held_removals=self._config.held,
            installation_conflict=next(iter(self.conflicts()), None),
            streams=self._streams.stalls(),
        )

    def stream_health(self, schedule_id: ScheduleId) -> dict[str, Any] | None:
        """The schedule's stream as the health check sees it, or None when it has no check."""
        return self._streams.status_json(schedule_id)

    def summary(self) -> str:
        return summary(len(self._engine.schedules), self._store.segments())
