"""The reconcile queue: every trigger only asks "reconcile schedule X"; this runs each ask once, soon.

De-duplicated by schedule: asking for a schedule that is already queued is free; asking for one that is being
reconciled right now marks it dirty, so it runs once more after the current pass (the new trigger may carry
news the running pass did not see). A fixed pool of workers bounds concurrency; the API client's pacing bounds
the request rate.

Why not one task per trigger: 10,000 schedules resynced at once would mean 10,000 tasks contending for the
same rate limiter; a queue keeps memory flat and order fair (FIFO).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import structlog

from relayd.cooperative import Breather
from relayd.ids import ScheduleId

log = structlog.get_logger("relayd.queue")

Handler = Callable[[ScheduleId], Awaitable[None]]


class ReconcileQueue:
    def __init__(self, handler: Handler, *, workers: int = 8, breathe: bool = True, limit: int | None = None) -> None:
        self._handler = handler
        self._workers = workers
        # Workers beyond ``limit`` stay parked until the queue is widened to all of them again (``set_limit``).
        self._wide = asyncio.Event()
        self.limit = workers
        self.set_limit(limit or workers)
        self.breathe = breathe  # pause CPU-bound runs of passes (see Breather); off for the daemon's first pass
        self._queued: OrderedDict[ScheduleId, None] = OrderedDict()
        self._running: set[ScheduleId] = set()
        self._dirty: set[ScheduleId] = set()
        self._has_work = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._breather = Breather()
        self.processed = 0
        self.failures = 0

    def set_limit(self, limit: int) -> None:
        """How many passes may run at once: all workers (wide), or fewer.

        Why two widths: the daemon's first pass mostly waits on the store and the platform, so many concurrent passes
        share commits and pacing; a periodic resync is pure CPU, and then each extra concurrent pass only stands
        between a callback handler and the loop.
        """
        self.limit = max(1, min(limit, self._workers))
        if self.limit == self._workers:
            self._wide.set()
        else:
            self._wide.clear()

    def submit(self, schedule_id: ScheduleId) -> None:
        """Ask for a reconcile of one schedule. Cheap, synchronous, safe to call from any loop callback."""
        if schedule_id in self._running:
            self._dirty.add(schedule_id)
            return
        if schedule_id in self._queued:
            return
        self._queued[schedule_id] = None
        self._idle.clear()
        self._has_work.set()

    def submit_many(self, schedule_ids: list[ScheduleId]) -> None:
        for schedule_id in schedule_ids:
            self.submit(schedule_id)

    @property
    def pauses(self) -> int:
        """How many times the workers paused to leave the loop room."""
        return self._breather.pauses

    @property
    def depth(self) -> int:
        return len(self._queued) + len(self._running)

    async def drained(self) -> None:
        """Wait until nothing is queued or running (wrap in ``asyncio.timeout`` to bound it)."""
        await self._idle.wait()

    async def run(self, stop: asyncio.Event) -> None:
        """Run the worker pool until ``stop`` is set; in-flight passes finish first."""
        async with asyncio.TaskGroup() as group:
            for n in range(self._workers):
                group.create_task(self._worker(stop, n), name=f"relayd-reconcile-{n}")
            await stop.wait()
            self._has_work.set()  # wake idle workers so they see the stop
            self._wide.set()

    async def _next(self, stop: asyncio.Event, index: int) -> ScheduleId | None:
        while not stop.is_set() and (index >= self.limit or not self._queued):
            if index >= self.limit:
                await self._wide.wait()  # set only when every worker may run, or at stop
                continue
            self._has_work.clear()
            await self._has_work.wait()
        if stop.is_set():
            return None
        schedule_id, _ = self._queued.popitem(last=False)
        self._running.add(schedule_id)
        return schedule_id

    async def _worker(self, stop: asyncio.Event, index: int) -> None:
        while (schedule_id := await self._next(stop, index)) is not None:
            try:
                await self._handler(schedule_id)
            except Exception:
                # One schedule's bug must not stop the others; the periodic resync will retry it.
                self.failures += 1
                log.exception("reconcile_crashed", schedule_id=schedule_id)
            finally:
                self._finish(schedule_id)
            # A pass with nothing to do performs no I/O and so never suspends: without this, a resync of thousands
            # of schedules would hold the loop for its whole length and starve callbacks and timers.
            await asyncio.sleep(self._breather.pause() if self.breathe else 0)

    def _finish(self, schedule_id: ScheduleId) -> None:
        self.processed += 1
        self._running.discard(schedule_id)
        if schedule_id in self._dirty:
            self._dirty.discard(schedule_id)
            self.submit(schedule_id)
        if not self._queued and not self._running:
            self._idle.set()
