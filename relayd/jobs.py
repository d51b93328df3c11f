"""APScheduler wiring: relayd's alarm clock, and nothing more.

The store is the memory; these jobs only say "look at schedule X now". Each schedule has at most one wake-up
job (``wake:<schedule id>``), replaced by every reconcile pass with the next instant the pass asked for: the
next preparation, hand-off, retry, stability check or cleanup. Periodic jobs run the full resync and history
pruning. Jobs live in APScheduler's memory store and are rebuilt from the store at start-up (the first
reconcile of every schedule sets its wake-up), so losing them costs nothing but a delay.

APScheduler's defaults are never relied on: every job sets ``misfire_grace_time=None`` (run however late: the
1 s default silently drops late jobs, and a burst of tens of thousands of due jobs would be dropped whole),
``coalesce=True`` (one run for many missed fire times) and ``max_instances=1``. Job functions are coroutines so
the AsyncIO executor runs them on the event loop instead of a thread pool.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import structlog
from apscheduler.jobstores.base import JobLookupError
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


class Jobs:
    """Schedules wake-ups and periodic work on an AsyncIOScheduler."""

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
        self.fired = 0

    async def _fire(self, schedule_id: ScheduleId) -> None:
        self.fired += 1
        self._wakes.pop(schedule_id, None)
        self._submit(schedule_id)

    def wake(self, schedule_id: ScheduleId, at: float | None) -> None:
        """Ask for a reconcile of ``schedule_id`` at ``at`` (unix seconds); None cancels the wake-up."""
        job_id = f"wake:{schedule_id}"
        if at is None:
            if self._wakes.pop(schedule_id, None) is not None:
                self._remove(job_id)
            return
        if self._wakes.get(schedule_id) == at:
            return  # unchanged: spare the job store a replace
        self._wakes[schedule_id] = at
        self._scheduler.add_job(
            self._fire,
            # ``at`` is on relayd's clock; APScheduler runs on the wall clock. Convert by the offset, so an injected
            # or stepped clock cannot make a wake-up due at once over and over (a hot reconcile loop).
            DateTrigger(run_date=_at(time.time() + (at - self._clock())), timezone=UTC),
            args=[schedule_id],
            id=job_id,
            name=job_id,
            replace_existing=True,
            **JOB_DEFAULTS,
        )

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

    def _remove(self, job_id: str) -> None:
        with contextlib.suppress(JobLookupError):  # already fired: DateTrigger jobs remove themselves
            self._scheduler.remove_job(job_id)
