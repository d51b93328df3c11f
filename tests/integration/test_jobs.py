"""relayd's alarm clock on a real AsyncIOScheduler: bursts of due wake-ups, a late loop, replacing and cancelling.

Small versions of bench/jobs_burst.py: every wake-up must reach the submit callback exactly when (or, with a
blocked loop, as soon as) it is due, however many are due at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from relayd.ids import ScheduleId
from relayd.jobs import Jobs, build_scheduler


class Submits:
    """The submit callback: every id in arrival order, with its arrival time; waits on a count."""

    def __init__(self) -> None:
        self.calls: list[tuple[ScheduleId, float]] = []
        self._changed = asyncio.Event()

    def __call__(self, schedule_id: ScheduleId) -> None:
        self.calls.append((schedule_id, time.time()))
        self._changed.set()

    @property
    def ids(self) -> list[ScheduleId]:
        return [sid for sid, _ in self.calls]

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.calls) < count:
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
async def scheduler() -> AsyncIterator[AsyncIOScheduler]:
    scheduler = build_scheduler()
    scheduler.start()
    yield scheduler
    scheduler.shutdown(wait=False)
    await asyncio.sleep(0)  # let the shutdown's loop callbacks run


@pytest.fixture
def submits() -> Submits:
    return Submits()


@pytest.fixture
def jobs(scheduler: AsyncIOScheduler, submits: Submits) -> Jobs:
    return Jobs(scheduler, submits)


def sid(i: int) -> ScheduleId:
    return ScheduleId(f"s{i}")


async def test_thousands_due_at_the_same_instant_all_fire(jobs: Jobs, submits: Submits) -> None:
    count = 2000
    due = time.time() + 1.0  # well after the last job is in, even on a busy machine
    for i in range(count):
        jobs.wake(sid(i), due)
    await submits.wait_for(count)
    assert sorted(submits.ids) == sorted(sid(i) for i in range(count))
    assert min(at for _, at in submits.calls) >= due - 0.01  # none early
    assert jobs.fired == count
    assert all(jobs.next_wake(sid(i)) is None for i in range(count))  # fired wake-ups are forgotten


async def test_a_loop_blocked_past_the_due_instant_still_fires_everything(
    jobs: Jobs, submits: Submits, scheduler: AsyncIOScheduler
) -> None:
    count = 500
    due = time.time() + 0.2
    for i in range(count):
        jobs.wake(sid(i), due)
    time.sleep(due - time.time() + 1.5)  # the loop is held 1.5 s past due: beyond APScheduler's default 1 s grace
    await submits.wait_for(count)
    assert len(set(submits.ids)) == count
    assert scheduler.get_jobs() == []


async def test_wake_replaces_the_previous_time(jobs: Jobs, submits: Submits, scheduler: AsyncIOScheduler) -> None:
    soon, later = time.time() + 0.2, time.time() + 0.6
    jobs.wake(sid(1), soon)
    jobs.wake(sid(1), later)
    assert [job.id for job in scheduler.get_jobs()] == ["wake-alarm"]  # one alarm, whatever the wake-ups
    assert jobs.next_wake(sid(1)) == later
    await submits.wait_for(1)
    assert submits.calls[0][1] >= later - 0.01  # fired at the new time, not the old one
    await asyncio.sleep(0.2)
    assert len(submits.calls) == 1  # and only once


async def test_wake_can_move_earlier(jobs: Jobs, submits: Submits) -> None:
    jobs.wake(sid(1), time.time() + 3600)
    jobs.wake(sid(1), time.time() + 0.1)
    await submits.wait_for(1, timeout=5)
    assert submits.ids == [sid(1)]


async def test_none_cancels_and_unknown_cancel_is_harmless(
    jobs: Jobs, submits: Submits, scheduler: AsyncIOScheduler
) -> None:
    jobs.wake(sid(1), time.time() + 0.2)
    jobs.wake(sid(1), None)
    jobs.forget(sid(2))  # never scheduled
    assert jobs.next_wake(sid(1)) is None
    jobs.wake(sid(3), time.time() + 0.3)  # a witness that fires after sid 1 would have
    await submits.wait_for(1)
    assert submits.ids == [sid(3)]


async def test_a_wake_in_the_past_fires_at_once(jobs: Jobs, submits: Submits) -> None:
    jobs.wake(sid(1), time.time() - 60)
    await submits.wait_for(1, timeout=2)
    assert submits.ids == [sid(1)]


async def test_wake_set_again_after_firing_fires_again(jobs: Jobs, submits: Submits) -> None:
    jobs.wake(sid(1), time.time() + 0.05)
    await submits.wait_for(1)
    jobs.wake(sid(1), time.time() + 0.05)
    await submits.wait_for(2)
    assert submits.ids == [sid(1), sid(1)]


async def test_periodic_job_runs_repeatedly(jobs: Jobs) -> None:
    runs: list[float] = []
    twice = asyncio.Event()

    async def tick() -> None:
        runs.append(time.monotonic())
        if len(runs) >= 2:
            twice.set()

    jobs.every("resync", 0.2, tick, first_in=0.05)
    async with asyncio.timeout(5):
        await twice.wait()
    assert runs[1] - runs[0] >= 0.15
