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

from relayd.ids import ScheduleId

log = structlog.get_logger("relayd.queue")

Handler = Callable[[ScheduleId], Awaitable[None]]


class ReconcileQueue:
    def __init__(self, handler: Handler, *, workers: int = 8) -> None:
        self._handler = handler
        self._workers = workers
        self._queued: OrderedDict[ScheduleId, None] = OrderedDict()
        self._running: set[ScheduleId] = set()
        self._dirty: set[ScheduleId] = set()
        self._has_work = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.processed = 0
        self.failures = 0

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
    def depth(self) -> int:
        return len(self._queued) + len(self._running)

    async def drained(self) -> None:
        """Wait until nothing is queued or running (wrap in ``asyncio.timeout`` to bound it)."""
        await self._idle.wait()

    async def run(self, stop: asyncio.Event) -> None:
        """Run the worker pool until ``stop`` is set; in-flight passes finish first."""
        async with asyncio.TaskGroup() as group:
            for n in range(self._workers):
                group.create_task(self._worker(stop), name=f"relayd-reconcile-{n}")
            await stop.wait()
            self._has_work.set()  # wake idle workers so they see the stop

    async def _next(self, stop: asyncio.Event) -> ScheduleId | None:
        while not self._queued and not stop.is_set():
            self._has_work.clear()
            await self._has_work.wait()
        if stop.is_set():
            return None
        schedule_id, _ = self._queued.popitem(last=False)
        self._running.add(schedule_id)
        return schedule_id

    async def _worker(self, stop: asyncio.Event) -> None:
        while (schedule_id := await self._next(stop)) is not None:
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
            await asyncio.sleep(0)

    def _finish(self, schedule_id: ScheduleId) -> None:
        self.processed += 1
        self._running.discard(schedule_id)
        if schedule_id in self._dirty:
            self._dirty.discard(schedule_id)
            self.submit(schedule_id)
        if not self._queued and not self._running:
            self._idle.set()
