"""The daemon: a lifecycle shell around parts that each live in a module of their own.

Reads top to bottom like the lifecycle it implements:

1. signals are captured (they only set events);
2. resources open into an ``AsyncExitStack`` in order — store (with its single-instance lock), HTTP client session,
   engine and configuration, scheduler, HTTP server — each registering its own cleanup;
3. the platform is listed, every schedule is reconciled once, timers start, then READY=1 is sent;
4. the named loops (reconcile workers, notices, reloads, config watching, alerts, watchdog, loop lag) run under a
   ``Supervisor``: one that crashes or returns early stops the daemon rather than letting it limp on;
5. on SIGTERM/SIGINT: STOPPING=1, loops stop via an ``asyncio.Event``, in-flight work finishes within
   ``shutdown_timeout`` (then it is cancelled), the store flushes, and the lock is released.

Elsewhere: ``configuration`` (the directory with last-good fallbacks), ``engine`` (one reconcile pass), ``noticing``
(callbacks), ``statusview`` (status, metrics, sd_notify), ``wiring`` (building parts), ``supervision`` (the loops).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from enum import StrEnum

import structlog

from relayd.configuration import Configuration
from relayd.engine import Engine
from relayd.ids import ScheduleId
from relayd.metrics import Metrics, loop_lag_monitor
from relayd.queueing import ReconcileQueue
from relayd.sdnotify import Notifier, watchdog_loop
from relayd.settings import Settings
from relayd.store import SharedStore
from relayd.supervision import Supervisor, first_of
from relayd.watching import watch_config
from relayd.wiring import FIRST_PASS_WORKERS, STEADY_WORKERS, Parts, build_parts, start_web

log = structlog.get_logger("relayd.daemon")

READY_WAIT_S = 60.0


class RunState(StrEnum):
    STARTING = "starting"
    STARTED = "started"
    STOPPING = "stopping"
    STOPPED = "stopped"


class DaemonError(Exception):
    """Start-up cannot proceed (message names the cause and the fix)."""


class Daemon:
    """relayd run: owns the lifecycle; the parts are built in ``run``."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.state = RunState.STOPPED
        self._clock = clock
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._hup = asyncio.Event()
        self._crashed = False
        self.ready = asyncio.Event()
        self.port: int | None = None
        self.metrics = Metrics()
        self._notifier = Notifier.from_env()
        self.parts: Parts
        self.store: SharedStore
        self.engine: Engine
        self.queue: ReconcileQueue
        self.config: Configuration

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        self._reload.set()
        self._hup.set()  # also wakes a start-up still waiting for the platform (a corrected key: retry at once)

    def _crash(self) -> None:
        self._crashed = True
        self._stop.set()

    async def run(self) -> None:
        self.state = RunState.STARTING
        async with AsyncExitStack() as stack:
            self._capture_signals(stack)
            self.parts = parts = await build_parts(self.settings, stack, self.metrics, self._clock, self.is_ready)
            self.store, self.engine, self.queue, self.config = parts.store, parts.engine, parts.queue, parts.config
            self.port = await start_web(self.parts, stack, self.request_reload)
            supervisor = Supervisor(self._stop, self._crash)
            stack.push_async_callback(supervisor.stop, self.settings.shutdown_timeout)
            stack.callback(self._stop.set)  # runs first on the way out: loops see the stop
            self._start_loops(supervisor)  # first: the watchdog beats while the directory loads
            await self._load_config()
            await self._first_reconcile()
            self.state = RunState.STARTED
            self._notifier.ready()
            self._notifier.status(self.parts.view.summary())
            self.ready.set()
            log.info("relayd_ready", schedules=len(self.engine.schedules), port=self.port)
            await self._stop.wait()
            self.state = RunState.STOPPING
            self._notifier.stopping()
            log.info("relayd_stopping")
        self.state = RunState.STOPPED
        log.info("relayd_stopped")
        if self._crashed:
            raise DaemonError("a relayd task crashed; see the task_crashed log line")

    def is_ready(self) -> bool:
        return self.ready.is_set()

    def _capture_signals(self, stack: AsyncExitStack) -> None:
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()

        def _terminate() -> None:
            if self._stop.is_set() and main is not None:
                main.cancel()  # second signal: stop waiting for graceful shutdown
            self._stop.set()

        for signum, handler in (
            (signal.SIGTERM, _terminate),
            (signal.SIGINT, _terminate),
            (signal.SIGHUP, self.request_reload),
        ):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, handler)
                stack.callback(loop.remove_signal_handler, signum)

    def _start_loops(self, supervisor: Supervisor) -> None:
        supervisor.start("relayd-reconcile-queue", self.queue.run(self._stop))
        supervisor.start("relayd-reload", self._reload_loop())
        supervisor.start("relayd-config-watch", watch_config(self.settings.schedules_dir, self._reload, self._stop))
        supervisor.start("relayd-loop-lag", loop_lag_monitor(self.metrics, self._stop))
        for name, loop in self.parts.loops(self._stop):
            supervisor.start(name, loop)
        if self._notifier.watchdog_interval() is not None:
            supervisor.start("relayd-watchdog", watchdog_loop(self._notifier, self._stop))

    async def _first_reconcile(self) -> None:
        """The leader's first pass (``_first_pass``), then timers; a standby is ready at once and acts once elected."""
        if await self.parts.elector.first_round():
            await self._first_pass()
        gc.freeze()  # long-lived mirror and observations: a full GC over 10,000 schedules held the loop 100-150 ms
        s = self.settings
        self.parts.jobs.every("resync", s.resync_interval, self.resync, first_in=s.resync_interval)
        self.parts.jobs.every("prune", 3600.0, self.parts.prune, first_in=60.0)

    async def _first_pass(self) -> None:
        """List the platform (adopting tasks after a crash), then reconcile everything once."""
        delay = 1.0
        while not await self.engine.list_platform():
            self._notifier.status("waiting for the platform API")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(first_of(self._stop, self._hup), delay)
            if self._stop.is_set():
                return
            delay = min(delay * 2, 60.0)
            if self._hup.is_set():  # a reload asked for: re-read the credentials and try again now
                self._hup.clear()
                delay = 1.0 if self.parts.refresh_credentials() else delay
        self.parts.elector.begin_acting()
        await self.parts.sync_groups()
        self.queue.submit_many(sorted(self.engine.known_ids()))
        # The first pass runs flat out (READY waits on it); from then on CPU-bound resyncs leave the loop room.
        self.queue.breathe = False
        self.queue.set_limit(FIRST_PASS_WORKERS)
        try:
            await self._await_first_pass()
        finally:
            self.queue.breathe = True
            self.queue.set_limit(STEADY_WORKERS)
        self.metrics.set_task_statuses(self.engine.observations.status_counts())  # incl. what the first pass made

    async def _await_first_pass(self) -> None:
        """Wait for every schedule's first pass, but at most ``READY_WAIT_S``: thousands of schedules are paced by the
        platform's write limit (10 creates/s), far longer than a service manager waits for READY=1."""
        try:
            async with asyncio.timeout(READY_WAIT_S):
                await self.queue.drained()
        except TimeoutError:
            log.warning("ready_before_first_pass_done", queued=self.queue.depth, waited_s=READY_WAIT_S)
            self._notifier.status(f"reconciling: {self.queue.depth} schedules still queued")

    async def resync(self) -> None:
        """The repair-everything pass: list all owned tasks and groups, then reconcile every schedule (leader only)."""
        if not self.parts.elector.may_act():
            return
        await self.config.persist(self.engine.schedules)
        await self.parts.sync_groups()
        if await self.engine.list_platform():
            self.metrics.set_task_statuses(self.engine.observations.status_counts())
        self.queue.submit_many(sorted(self.engine.known_ids()))
        self._notifier.status(self.parts.view.summary())

    async def _load_config(self) -> set[ScheduleId]:
        loaded = await self.config.load()
        changed = self.parts.set_schedules(loaded.schedules)
        # The parsed configuration lives as long as the process: keep it out of every later full GC pass.
        gc.freeze()
        return changed

    async def reload(self) -> None:
        self._notifier.reloading()
        self.parts.refresh_credentials()  # a corrected key: the nudge below retries what it refused, at once
        changed = await self._load_config()
        await self.config.persist(self.engine.schedules)
        await self.parts.sync_groups()
        log.info(
            "config_reloaded",
            schedules=len(self.engine.schedules),
            changed=len(changed),
            problems=len(self.config.problems),
        )
        self.queue.submit_many(sorted(changed | self.engine.nudge()))
        self._notifier.ready()

    async def _reload_loop(self) -> None:
        # The first snapshot of applied schedules waits for READY: it is needed only at a later start-up.
        await first_of(self.ready, self._stop)
        if not self._stop.is_set():
            await self.config.persist(self.engine.schedules)
        while not self._stop.is_set():
            await first_of(self._reload, self._stop)
            if self._stop.is_set():
                return
            self._reload.clear()
            await self.reload()
