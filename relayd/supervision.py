"""Named long-lived tasks under one supervisor: a crash — or a loop that returns before the stop — stops relayd.

Every loop of the daemon (reconcile workers, notices, reloads, config watching, watchdog, loop-lag sampling) is
started here and kept referenced. A loop is meant to run until the stop event is set; one that ends earlier has
stopped doing its job as surely as one that raised, so both are logged and turned into a stop, never a daemon
that limps on without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

log = structlog.get_logger("relayd.supervision")


class Supervisor:
    def __init__(self, stop: asyncio.Event, on_crash: Callable[[], None]) -> None:
        self._stop = stop
        self._tasks: list[asyncio.Task[None]] = []
        self._on_crash = on_crash

    def start(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        task.add_done_callback(self._done)
        self._tasks.append(task)

    def _done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("task_crashed", task=task.get_name(), error=repr(error), exc_info=error)
            self._on_crash()
        elif not self._stop.is_set():
            log.error("task_ended_early", task=task.get_name(), note="a relayd loop returned before the stop")
            self._on_crash()

    async def stop(self, grace_s: float) -> None:
        """Wait up to ``grace_s`` for every task to finish (the stop event is already set), then cancel the rest."""
        pending = [t for t in self._tasks if not t.done()]
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=grace_s)
        for task in late:
            log.warning("task_cancelled_at_shutdown", task=task.get_name())
            task.cancel()
        if late:
            await asyncio.wait(late)


async def first_of(*events: asyncio.Event) -> None:
    """Wait until any of ``events`` is set."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
