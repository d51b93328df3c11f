"""The daemon: every part wired on one event loop, started in order and stopped in reverse.

Reads top to bottom like the lifecycle it implements:

1. signals are captured (they only set events);
2. resources open into an ``AsyncExitStack`` in order — store (with its single-instance lock), HTTP client
   session and API client, the config directory, the scheduler, the HTTP server — each registering its own
   cleanup;
3. the platform is listed, every schedule is reconciled once, timers start, then READY=1 is sent;
4. the main loop is a set of named, supervised tasks (reconcile workers, notice handling, config watching,
   reloads, watchdog pings, loop-lag sampling); if one crashes the daemon stops rather than limping on;
5. on SIGTERM/SIGINT: STOPPING=1, tasks stop via an ``asyncio.Event``, in-flight work finishes within
   ``shutdown_timeout`` (then it is cancelled), the store flushes, and the lock is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import secrets
import signal
import time
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aiohttp
import structlog
from watchfiles import awatch

from relayd.engine import Engine, engine_config
from relayd.groups import sync_groups
from relayd.ids import ScheduleId, SegmentKey
from relayd.jobs import Jobs, build_scheduler
from relayd.metrics import Metrics, loop_lag_monitor
from relayd.observations import LivePlatform
from relayd.queueing import ReconcileQueue
from relayd.schedules.loader import DirResult, load_dir
from relayd.schedules.model import GroupSpec, Schedule
from relayd.sdnotify import Notifier, watchdog_loop
from relayd.settings import Settings
from relayd.store import AppliedSchedule, SegmentState, Store, StoreError
from relayd.volc.client import LiveClient
from relayd.web.app import WebServer, build_app, parse_listen
from relayd.web.auth import ensure_token_file, token_file
from relayd.web.notices import CallbackEvent, CallbackNotice
from relayd.web.signing import callback_url
from relayd.web.views import NextAction, ScheduleInfo

log = structlog.get_logger("relayd.daemon")

READY_WAIT_S = 60.0
# The first pass waits mostly on store commits and the platform: many passes at once share both. Afterwards
# resyncs are CPU-bound, and fewer concurrent passes keep callback latency low.
FIRST_PASS_WORKERS = 32
STEADY_WORKERS = 8
_FAILURE_EVENTS = frozenset({CallbackEvent.FAIL, CallbackEvent.STOP})


class RunState(StrEnum):
    STARTING = "starting"
    STARTED = "started"
    STOPPING = "stopping"
    STOPPED = "stopped"


class DaemonError(Exception):
    """Start-up cannot proceed (message names the cause and the fix)."""


@dataclass(frozen=True, slots=True)
class _Notice:
    schedule_id: ScheduleId
    key: SegmentKey
    notice: CallbackNotice


class Supervisor:
    """Named long-lived tasks; a crash in any of them is logged and stops the daemon."""

    def __init__(self, on_crash: Callable[[], None]) -> None:
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

    async def stop(self, grace_s: float) -> None:
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace_s)
            for task in late:
                log.warning("task_cancelled_at_shutdown", task=task.get_name())
                task.cancel()
            if late:
                await asyncio.wait(late)


def _ensure_api_token(settings: Settings) -> str:
    """The configured token, or one generated once and kept (mode 0600) next to the state file."""
    if settings.api_token is not None:
        return settings.api_token.get_secret_value()
    return ensure_token_file(token_file(settings.state_path))


async def _ensure_callback_secret(settings: Settings, store: Store) -> bytes:
    if settings.callback_secret is not None:
        return settings.callback_secret.get_secret_value().encode()
    stored = store.meta("callback_secret")
    if stored is None:
        stored = secrets.token_hex(32)
        await store.set_meta("callback_secret", stored)
    return stored.encode()


def _public_url(settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host, port = parse_listen(settings.listen)
    log.warning("public_url_unset", listen=settings.listen, note="callbacks will only work from this machine")
    return f"http://{host}:{port}"


class Daemon:
    """relayd run: owns the lifecycle; everything else is built inside ``run``."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.state = RunState.STOPPED
        self._clock = clock
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._crashed = False
        self._notices: asyncio.Queue[_Notice] = asyncio.Queue()
        self.ready = asyncio.Event()
        self.port: int | None = None
        # Built in run():
        self._client: LiveClient
        self.engine: Engine
        self.store: Store
        self.queue: ReconcileQueue
        self.jobs: Jobs
        self.metrics = Metrics()
        self._observer = self.metrics.api_observer(clock)
        self._notifier = Notifier.from_env()
        self._file_schedules: dict[str, list[Schedule]] = {}
        self._file_groups: dict[str, list[GroupSpec]] = {}
        self._infos: list[ScheduleInfo] = []
        self._problems: list[str] = []
        self._config_loaded = False

    # --- control --------------------------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        self._reload.set()

    def _crash(self) -> None:
        self._crashed = True
        self._stop.set()

    # --- lifecycle ------------------------------------------------------------------------------------------

    async def run(self) -> None:
        self.state = RunState.STARTING
        async with AsyncExitStack() as stack:
            self._capture_signals(stack)
            await self._open(stack)
            supervisor = Supervisor(self._crash)
            stack.push_async_callback(supervisor.stop, self.settings.shutdown_timeout)
            stack.callback(self._stop.set)  # runs first on the way out: tasks see the stop
            self._start_tasks(supervisor)
            await self._first_reconcile()
            self.state = RunState.STARTED
            self._notifier.ready()
            self._notifier.status(self._summary())
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

    async def _open(self, stack: AsyncExitStack) -> None:
        settings = self.settings
        self.store = await Store.open(settings.state_path, clock=self._clock, writer=settings.state_writer)
        stack.push_async_callback(self.store.close)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        self._client = client = LiveClient(
            settings.endpoint,
            settings.credentials(),
            session=session,
            write_qps=settings.write_qps,
            list_qps=settings.list_qps,
            timeout_s=settings.api_timeout,
            max_attempts=settings.api_max_attempts,
            deadline_s=settings.api_deadline,
            observer=self._observer,
        )
        secret = await _ensure_callback_secret(settings, self.store)
        public = _public_url(settings)
        scheduler = build_scheduler()
        self.queue = ReconcileQueue(self._reconcile, workers=FIRST_PASS_WORKERS, limit=STEADY_WORKERS)
        self.jobs = Jobs(scheduler, self.queue.submit, clock=self._clock)
        self.engine = Engine(
            store=self.store,
            platform=LivePlatform(client),
            config=engine_config(self.settings),
            callback_url=lambda key: callback_url(public, secret, key),
            jobs=self.jobs,
            clock=self._clock,
            rand=random.random,
            on_outcome=self._on_outcome,
        )
        self.engine.set_schedules(self._load_config())
        # The parsed configuration lives as long as the process: keep it out of every later full GC pass.
        gc.freeze()
        scheduler.start()
        stack.callback(scheduler.shutdown, wait=False)
        await self._start_web(stack, secret)

    async def _start_web(self, stack: AsyncExitStack, secret: bytes) -> None:
        settings = self.settings
        app = build_app(
            store=self.store,
            view=_View(self),
            metrics=self.metrics,
            hint=self._hint,
            callback_secret=secret,
            callback_auth_key=settings.callback_auth_key.get_secret_value() if settings.callback_auth_key else None,
            callback_max_age=settings.callback_max_age,
            api_token=_ensure_api_token(settings),
            platform_window_s=max(2 * settings.resync_interval, 600.0),
        )
        self.metrics.set_sources(segment_counts=self._segment_counts, next_handoff=self._next_handoff)
        server = WebServer(app, shutdown_timeout=min(5.0, settings.shutdown_timeout))
        host, port = parse_listen(settings.listen)
        self.port = await server.start(host, port)
        stack.push_async_callback(server.stop)

    def _start_tasks(self, supervisor: Supervisor) -> None:
        supervisor.start("relayd-reconcile-queue", self.queue.run(self._stop))
        supervisor.start("relayd-notices", self._notice_loop())
        supervisor.start("relayd-reload", self._reload_loop())
        supervisor.start("relayd-config-watch", self._watch_config())
        supervisor.start("relayd-loop-lag", loop_lag_monitor(self.metrics, self._stop))
        supervisor.start("relayd-watchdog", watchdog_loop(self._notifier, self._stop))

    async def _first_reconcile(self) -> None:
        """List the platform (adopting tasks after a crash), reconcile everything once, then start timers."""
        delay = 1.0
        while not await self.engine.list_platform():
            self._notifier.status("waiting for the platform API")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            if self._stop.is_set():
                return
            delay = min(delay * 2, 60.0)
        await self.sync_groups()
        self.queue.submit_many(sorted(self.engine.known_ids()))
        # The first pass runs flat out (READY waits on it); from then on CPU-bound resyncs leave the loop room.
        self.queue.breathe = False
        self.queue.set_limit(FIRST_PASS_WORKERS)
        try:
            await self._await_first_pass()
        finally:
            self.queue.breathe = True
            self.queue.set_limit(STEADY_WORKERS)
        # Likewise the store's mirror and the observations built by the first pass: with 10,000 schedules a full
        # collection over them held the loop for 100-150 ms, which showed up directly in callback latency.
        gc.freeze()
        s = self.settings
        self.jobs.every("resync", s.resync_interval, self.resync, first_in=s.resync_interval)
        self.jobs.every("prune", 3600.0, self.prune, first_in=60.0)

    async def _await_first_pass(self) -> None:
        """Wait for every schedule's first pass, but not forever: with thousands of schedules the first pass is
        paced by the platform's write limit (10 creates/s), far longer than a service manager waits for
        READY=1. Past ``READY_WAIT_S`` relayd reports ready and keeps working through the queue."""
        try:
            async with asyncio.timeout(READY_WAIT_S):
                await self.queue.drained()
        except TimeoutError:
            log.warning("ready_before_first_pass_done", queued=self.queue.depth, waited_s=READY_WAIT_S)
            self._notifier.status(f"reconciling: {self.queue.depth} schedules still queued")

    # --- periodic work --------------------------------------------------------------------------------------

    async def sync_groups(self) -> bool:
        """Create or update the declared ``[[group]]``s (first definition of a name wins)."""
        declared: dict[str, GroupSpec] = {}
        for specs in self._file_groups.values():
            for spec in specs:
                declared.setdefault(spec.name, spec)
        return await sync_groups(self._client, list(declared.values()))

    async def resync(self) -> None:
        """The repair-everything pass: list all owned tasks and groups, then reconcile every schedule."""
        await self._try_persist_applied()
        await self.sync_groups()
        if await self.engine.list_platform():
            self.metrics.set_task_statuses(self.engine.observations.status_counts())
        self.queue.submit_many(sorted(self.engine.known_ids()))
        self._notifier.status(self._summary())

    async def prune(self) -> None:
        cutoff = self._clock() - self.settings.history_days * 86400
        events = await self.store.prune_events(cutoff)
        segments = await self.store.prune_segments(cutoff)
        log.info("history_pruned", events=events, segments=segments)

    async def _reconcile(self, schedule_id: ScheduleId) -> None:
        started = time.perf_counter()
        await self.engine.reconcile(schedule_id)
        self.metrics.observe_reconcile(time.perf_counter() - started)

    def _on_outcome(self, kind: str, outcome: str) -> None:
        if kind in ("continue", "relaunch", "recreate", "restart"):
            self.metrics.restart(kind, outcome)

    # --- callbacks ------------------------------------------------------------------------------------------

    def _hint(self, schedule_id: ScheduleId, key: SegmentKey, notice: CallbackNotice) -> None:
        self._notices.put_nowait(_Notice(schedule_id, key, notice))

    async def _notice_loop(self) -> None:
        while not self._stop.is_set():
            getter = asyncio.ensure_future(self._notices.get())
            stopper = asyncio.ensure_future(self._stop.wait())
            done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if getter not in done:
                getter.cancel()
                return
            await self._apply_notice(getter.result())

    async def _apply_notice(self, item: _Notice) -> None:
        notice = item.notice
        if notice.event in _FAILURE_EVENTS:
            await self.engine.note_failure(item.key, notice.time)
        elif notice.event == CallbackEvent.RECOVER:
            await self.engine.note_recovery(item.key, notice.time)
        self.queue.submit(item.schedule_id)

    # --- configuration --------------------------------------------------------------------------------------

    def _load_config(self) -> list[Schedule]:
        """Load the directory; a file with problems keeps its previous good version (or the store's)."""
        result = load_dir(self.settings.schedules_dir)
        applied = self.store.applied()
        previous = dict(self._file_schedules)
        for file in result.files:
            name = str(file.path)
            if not file.problems:
                previous[name] = file.schedules
                self._file_groups[name] = file.groups
            elif name not in previous:
                previous[name] = [Schedule.model_validate(a.payload) for a in applied.values() if a.source_file == name]
        present = {str(f.path) for f in result.files}
        self._file_schedules = {k: v for k, v in previous.items() if k in present}
        self._file_groups = {k: v for k, v in self._file_groups.items() if k in present}
        self._record_problems(result)
        self._config_loaded = True
        return _dedupe([s for group in self._file_schedules.values() for s in group])

    def _record_problems(self, result: DirResult) -> None:
        problems = [str(p) for p in result.all_problems()]
        for problem in problems:
            log.error("config_problem", problem=problem)
        self._problems = problems
        self.metrics.config_load_errors(sum(1 for f in result.files if f.problems), current_problems=len(problems))
        self._infos = [
            ScheduleInfo(
                id=s.id,
                title=s.title or "",
                enabled=s.enabled,
                source=s.source_file,
                group=s.group,
                problems=tuple(str(p) for p in f.problems),
            )
            for f in result.files
            for s in self._file_schedules.get(str(f.path), [])
        ]

    async def reload(self) -> None:
        self._notifier.reloading()
        schedules = self._load_config()
        changed = self.engine.set_schedules(schedules)
        await self._try_persist_applied()
        await self.sync_groups()
        log.info("config_reloaded", schedules=len(schedules), changed=len(changed), problems=len(self._problems))
        self.queue.submit_many(sorted(changed))
        self._notifier.ready()

    async def _try_persist_applied(self) -> None:
        """Persist the applied schedules; a state file that cannot be written (disk full, read-only) is reported
        by the store and retried on the next reload or resync — it must not stop the daemon."""
        try:
            await self._persist_applied()
        except StoreError as error:
            log.error("applied_schedules_not_saved", error=str(error), note="retried on the next resync")

    async def _persist_applied(self) -> None:
        """Record each schedule's last good version. The writes are queued together so they share commits."""
        current = self.engine.schedules
        stored = self.store.applied()
        writes = [
            self.store.set_applied(AppliedSchedule(sid, digest, schedule.source_file, schedule.model_dump(mode="json")))
            for sid, schedule in current.items()
            if (digest := schedule.digest()) != (stored[sid].digest if sid in stored else None)
        ]
        writes += [self.store.remove_applied(sid) for sid in stored.keys() - current.keys()]
        for outcome in await asyncio.gather(*writes, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome

    async def _reload_loop(self) -> None:
        # The first snapshot of applied schedules waits for READY: it is needed only at a later start-up.
        await self._first_of(self.ready, self._stop)
        if not self._stop.is_set():
            await self._try_persist_applied()
        while not self._stop.is_set():
            await self._first_of(self._reload, self._stop)
            if self._stop.is_set():
                return
            self._reload.clear()
            await self.reload()

    @staticmethod
    async def _first_of(*events: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _watch_config(self) -> None:
        directory = self.settings.schedules_dir
        if not directory.is_dir():
            log.warning("config_watch_disabled", directory=str(directory), reason="not a directory")
            return
        async for _changes in awatch(directory, stop_event=self._stop, debounce=500, recursive=False):
            log.info("config_changed", directory=str(directory))
            self._reload.set()

    # --- views ----------------------------------------------------------------------------------------------

    def _segment_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.store.segments():
            counts[record.state.value] = counts.get(record.state.value, 0) + 1
        return counts

    def _next_handoff(self) -> float | None:
        now = self._clock()
        upcoming = [r.start for r in self.store.segments() if r.start > now and r.state != SegmentState.DELETED]
        return min(upcoming) - now if upcoming else None

    def _summary(self) -> str:
        counts = self._segment_counts()
        running = counts.get("running", 0)
        failed = counts.get("failed", 0)
        return f"{len(self.engine.schedules)} schedules, {running} relaying, {failed} failed"


def _dedupe(schedules: Sequence[Schedule]) -> list[Schedule]:
    """First definition of an id wins (the loader reports duplicates as problems)."""
    seen: dict[ScheduleId, Schedule] = {}
    for schedule in schedules:
        seen.setdefault(schedule.id, schedule)
    return list(seen.values())


class _View:
    """``DaemonView`` for the HTTP server: cheap reads of the daemon's memory."""

    def __init__(self, daemon: Daemon) -> None:
        self._d = daemon

    def schedules(self) -> Sequence[ScheduleInfo]:
        return self._d._infos

    def next_action(self, key: SegmentKey) -> NextAction | None:
        record = self._d.store.segment(key)
        if record is None or record.state in (SegmentState.DELETED, SegmentState.FAILED):
            return None
        policy = self._d.engine.policy_for(record.schedule_id)
        if record.state == SegmentState.PENDING:
            due = max(record.start - policy.prepare_ahead, record.next_attempt_at or 0.0)
            return NextAction("create", due)
        if record.state == SegmentState.ENDED:
            return NextAction("delete", record.end + policy.retention)
        if record.next_attempt_at is not None:
            return NextAction("retry", record.next_attempt_at)
        wake = self._d.jobs.next_wake(record.schedule_id)
        return NextAction("check", wake) if wake is not None else None

    def config_loaded(self) -> bool:
        return self._d._config_loaded

    def config_problems(self) -> Sequence[str]:
        return self._d._problems

    def last_platform_success(self) -> float | None:
        times = [t for t in (self._d.engine.last_platform_success, self._d._observer.last_ok) if t is not None]
        return max(times) if times else None

    def platform_error(self) -> str | None:
        return self._d.engine.last_platform_error

    def now(self) -> float:
        return self._d._clock()
