"""APScheduler wiring: relayd's alarm clock, and nothing more.

The store is the memory; these jobs only say "look at schedule X now". Each schedule has at most one wake-up,
replaced by every reconcile pass with the next instant the pass asked for: the next preparation, hand-off,
retry, stability check or cleanup. Wake-ups live in a heap here; APScheduler holds one alarm for the earliest
(``wake-alarm``) plus the periodic jobs (full resync, history pruning). Nothing is persisted: the first
reconcile of every schedule at start-up sets its wake-up again, so losing them costs nothing but a delay.

APScheduler's defaults are never relied on: every job sets ``misfire_grace_time=None`` (run however late: the
1 s default silently drops late jobs, and a burst of tens of thousands of due jobs would be dropped whole),
``coalesce=True`` (one run for many missed fire times) and ``max_instances=1``. Job functions are coroutines so
the AsyncIO executor runs them on the event loop instead of a thread pool.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from relayd.ids import ScheduleId

log = structlog.get_logger("relayd.jobs")

JOB_DEFAULTS = {"misfire_grace_time": None, "coalesce": True, "max_instances": 1}


def build_scheduler() -> AsyncIOScheduler:
    """An AsyncIOScheduler on the running loop with relayd's explicit job defaults, in UTC."""
    return AsyncIOScheduler(job_defaults=dict(JOB_DEFAULTS), timezone=UTC)


def _at(instant: float) -> datetime:
    return datetime.fromtimestamp(instant, UTC)


ALARM_ID = "wake-alarm"
_EARLY_S = 0.001  # APScheduler's run_date has microsecond resolution: tolerate rounding, never real earliness


class Jobs:
    """Per-schedule wake-ups in a heap, with one APScheduler alarm for the earliest; periodic jobs.

    Why one alarm instead of a job per schedule: with 10,000 schedules, APScheduler's per-job bookkeeping
    (``add_job`` validates the callable and dispatches events, ~70 us each) was a tenth of the daemon's start-up.
    A heap holds each schedule's latest wake-up; replaced or cancelled ones stay in the heap and are skipped
    when they surface. When the alarm rings, everything due is submitted at once and the alarm is set again for
    the next instant — the same "late, never early, never dropped" behaviour, with one job in APScheduler.
    """

    def __init__(
        self,
        scheduler: AsyncIOScheduler,
        submit: Callable[[ScheduleId], None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._scheduler = scheduler
        self._submit = submit
        self._clock = clock
        self._wakes: dict[ScheduleId, float] = {}
        self._heap: list[tuple[float, ScheduleId]] = []
        self._alarm_at: float | None = None
        self.fired = 0

    def wake(self, schedule_id: ScheduleId, at: float | None) -> None:
        """Ask for a reconcile of ``schedule_id`` at ``at`` (unix seconds); None cancels the wake-up."""
        if at is None:
            self._wakes.pop(schedule_id, None)  # its heap entry is skipped when it surfaces
            return
        if self._wakes.get(schedule_id) == at:
            return  # unchanged
        self._wakes[schedule_id] = at
        heapq.heappush(self._heap, (at, schedule_id))
        if self._alarm_at is None or at < self._alarm_at:
            self._arm(at)

    def _arm(self, at: float) -> None:
        self._alarm_at = at
        self._scheduler.add_job(
            self._ring,
            # ``at`` is on relayd's clock; APScheduler runs on the wall clock. Convert by the offset, so an injected
            # or stepped clock cannot make a wake-up due at once over and over (a hot reconcile loop).
            DateTrigger(run_date=_at(time.time() + (at - self._clock())), timezone=UTC),
            id=ALARM_ID,
            name=ALARM_ID,
            replace_existing=True,
            **JOB_DEFAULTS,
        )

    async def _ring(self) -> None:
        """Submit every schedule whose wake-up is due, then set the alarm for the next one."""
        self._alarm_at = None
        now = self._clock()
        heap = self._heap
        while heap and (heap[0][0] <= now + _EARLY_S or self._wakes.get(heap[0][1]) != heap[0][0]):
            at, schedule_id = heapq.heappop(heap)
            if self._wakes.get(schedule_id) != at:
                continue  # replaced or cancelled since
            del self._wakes[schedule_id]
            self.fired += 1
            self._submit(schedule_id)
        if heap:
            self._arm(heap[0][0])

    def forget(self, schedule_id: ScheduleId) -> None:
        self.wake(schedule_id, None)

    def next_wake(self, schedule_id: ScheduleId) -> float | None:
        return self._wakes.get(schedule_id)

    def every(self, name: str, seconds: float, func: Callable[[], Awaitable[None]], *, first_in: float) -> None:
        """A periodic coroutine job; the first run ``first_in`` seconds from now."""
        start = datetime.now(UTC) + timedelta(seconds=first_in)
        self._scheduler.add_job(
            func,
            IntervalTrigger(seconds=seconds, start_date=start, timezone=UTC),
            id=name,
            name=name,
            replace_existing=True,
            **JOB_DEFAULTS,
        )
