"""The health monitor: probes every schedule's playback URL on the daemon's loop and reports stalls.

Pipeline per stream: due (deterministic phase within the interval, so 500 streams at 5 s are 100 probes a
second, not 500 at once) → relaying? (the injected ``relaying_since``; not relaying or within ``grace``: no
probe) → a slot (one semaphore for all probes, a smaller one for ffprobe children) → look (the probe bounds its
own time; an ffprobe child gets a safety limit on top) → :func:`~relayd.health.verdict.record` and
:func:`~relayd.health.verdict.judge` → on a turn to *stalled*: ``on_stall(schedule_id, since)``.

One scheduler task keeps a heap of due streams and wakes for each 50 ms batch of them (``BATCH_WINDOW``): a
sleeping task per stream, each probe at its own instant, cost nearly twice the CPU (bench/health_cost.py), as the
loop's per-iteration cost was no longer shared; a batch (~5 probes at 100 a second) keeps its request sends to
about a millisecond of loop time.

It owns a small aiohttp session (its own connector and limit) so probes never take connections from the
platform client, and it never blocks the loop: probes are tasks, parsing is small and bounded, and ffprobe is a
child process. One probe per stream at a time: a stream whose previous probe is still running skips its turn.
``run(stop)`` is the supervised loop; ``set_targets`` takes the checks of a (re)loaded configuration.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
import structlog

from relayd.health.observations import Observation, ProbeError, ProbeErrorKind
from relayd.health.probes import Probe, make_probe
from relayd.health.status import StreamStatus
from relayd.health.verdict import Health, Timing, Track, Verdict, judge, record
from relayd.ids import ScheduleId
from relayd.schedules.model import FFPROBE, HealthCheck, Schedule, StreamKind

log = structlog.get_logger("relayd.health")

RelayingSince = Callable[[ScheduleId, float], float | None]
"""``(schedule_id, now) -> since``: when the segment relaying now started (or last restarted), None if none."""
OnStall = Callable[[ScheduleId, float], None]
"""``(schedule_id, since)``: called once when a stream's verdict turns to stalled."""

SAFETY_MARGIN = 5.0
"""Seconds an ffprobe probe may overrun its own time limit (it kills and reaps the child) before it is abandoned."""
BATCH_WINDOW = 0.05
"""Streams due within this many seconds of each other are started in one wake-up."""
LOOK_SLACK = 0.5
"""Seconds (at most a quarter of the interval) a look may come short of ``stall_after`` and still decide a stall:
looks are timed when they finish, so two of them one slot grid apart differ by the grid +- milliseconds."""


class HealthEvents(Protocol):
    """Where stall and probe-error counts go (``relayd.metrics.Metrics`` implements it)."""

    def stream_stalled(self, schedule_id: str) -> None: ...

    def stream_probe_error(self, schedule_id: str, kind: str) -> None: ...


def targets(schedules: Iterable[Schedule]) -> dict[ScheduleId, HealthCheck]:
    """The checks to watch for a loaded configuration: every enabled schedule that declares ``health``."""
    return {s.id: s.health for s in schedules if s.enabled and s.health is not None}


def phase(schedule_id: str, interval: float) -> float:
    """A stable offset in [0, interval) for a schedule: its probes keep their place in every interval."""
    digest = hashlib.sha256(schedule_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * interval


@dataclass
class _Stream:
    """One watched stream: its check, probe, memory and current verdict."""

    schedule_id: ScheduleId
    check: HealthCheck
    probe: Probe
    timing: Timing
    child: bool  # probed by an ffprobe child process
    due: float = 0.0
    busy: bool = False
    track: Track = field(default_factory=Track)
    verdict: Verdict = field(default_factory=lambda: Verdict(Health.UNKNOWN, reason="not probed yet"))
    last_error: ProbeErrorKind | None = None
    reported: float | None = None  # the ``since`` of the last stall reported

    def next_due(self, now: float) -> float:
        """The first slot of this stream's phase after ``now`` (monotonic seconds)."""
        interval = self.check.interval
        offset = phase(self.schedule_id, interval)
        return offset + interval * (math.floor((now - offset) / interval) + 1)


class HealthMonitor:
    """Watches the playback of every schedule that has a ``health`` check. See the module docstring."""

    def __init__(
        self,
        *,
        relaying_since: RelayingSince,
        on_stall: OnStall,
        events: HealthEvents | None = None,
        clock: Callable[[], float] = time.time,
        max_connections: int = 32,
        max_probes: int = 64,
        max_ffprobe: int = 4,
        ffprobe: str = FFPROBE,
    ) -> None:
        self._relaying_since = relaying_since
        self._on_stall = on_stall
        self._events = events
        self._clock = clock
        self._max_connections = max_connections
        self._probes = asyncio.Semaphore(max_probes)
        self._children = asyncio.Semaphore(max_ffprobe)
        self._ffprobe = ffprobe
        self._streams: dict[ScheduleId, _Stream] = {}
        self._queue: list[tuple[float, ScheduleId]] = []  # (due, id), a heap; stale entries are skipped
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()

    # -- configuration and status ------------------------------------------------------------------------------

    def set_targets(self, checks: Mapping[ScheduleId, HealthCheck]) -> None:
        """Watch exactly these streams. An unchanged check keeps its memory; a changed one starts afresh."""
        kept = {sid: s for sid, s in self._streams.items() if checks.get(sid) == s.check}
        now = time.monotonic()
        for sid, check in checks.items():
            if sid not in kept:
                stream = kept[sid] = self._stream(sid, check)
                stream.due = stream.next_due(now)
        self._streams = kept
        self._queue = [(s.due, sid) for sid, s in kept.items()]
        heapq.heapify(self._queue)
        self._wake.set()

    def _stream(self, schedule_id: ScheduleId, check: HealthCheck) -> _Stream:
        probe = make_probe(check, ffprobe=self._ffprobe)
        timing = Timing(check.stall_after, check.grace, slack=min(LOOK_SLACK, check.interval / 4))
        return _Stream(schedule_id, check, probe, timing, child=check.kind is StreamKind.FFPROBE)

    def status(self, schedule_id: ScheduleId) -> StreamStatus | None:
        stream = self._streams.get(schedule_id)
        return None if stream is None else StreamStatus(stream.verdict, stream.track.last_advance)

    def statuses(self) -> dict[ScheduleId, StreamStatus]:
        return {sid: StreamStatus(s.verdict, s.track.last_advance) for sid, s in self._streams.items()}

    def levels(self) -> dict[str, tuple[bool, float | None]]:
        """For metrics: (up, seconds since the last advance) of every stream being judged (not paused)."""
        now = self._clock()
        return {
            sid: (s.verdict.health is Health.UP, None if s.track.last_advance is None else now - s.track.last_advance)
            for sid, s in self._streams.items()
            if s.verdict.health is not Health.PAUSED
        }

    # -- the loop ------------------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Probe streams as they come due until ``stop`` is set; then cancel probes in flight."""
        connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300)
        watcher = asyncio.create_task(self._stop_wakes(stop), name="health-stop")
        try:
            async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:
                while not stop.is_set():
                    self._start_due(session, time.monotonic())
                    await self._sleep(self._next_wake(time.monotonic()))
        finally:
            watcher.cancel()
            for task in (*self._tasks, watcher):
                task.cancel()
            await asyncio.gather(watcher, *self._tasks, return_exceptions=True)

    async def _stop_wakes(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    async def _sleep(self, delay: float | None) -> None:
        try:
            async with asyncio.timeout(delay):
                await self._wake.wait()
        except TimeoutError:
            pass
        self._wake.clear()

    def _next_wake(self, now: float) -> float | None:
        return max(0.0, self._queue[0][0] - now) if self._queue else None

    def _start_due(self, session: aiohttp.ClientSession, now: float) -> None:
        while self._queue and self._queue[0][0] <= now + BATCH_WINDOW:
            due, sid = heapq.heappop(self._queue)
            stream = self._streams.get(sid)
            if stream is None or stream.due != due:
                continue  # removed, or re-queued by set_targets
            stream.due = stream.next_due(now + BATCH_WINDOW)  # the slot after the one taken now
            heapq.heappush(self._queue, (stream.due, sid))
            if not stream.busy and self._should_probe(stream):
                self._launch(stream, session)

    def _launch(self, stream: _Stream, session: aiohttp.ClientSession) -> None:
        stream.busy = True
        task = asyncio.create_task(self._probe(stream, session), name=f"health-probe-{stream.schedule_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _should_probe(self, stream: _Stream) -> bool:
        """No probe while the segment is not relaying or still in its grace period; the verdict says so."""
        now = self._clock()
        since = self._relaying_since(stream.schedule_id, now)
        if since is None or now < since + stream.check.grace:
            self._apply(stream, judge(stream.track, relaying_since=since, now=now, timing=stream.timing))
            return False
        return True

    async def _probe(self, stream: _Stream, session: aiohttp.ClientSession) -> None:
        try:
            observation = await self._look(stream, session)
        finally:
            stream.busy = False
        if self._streams.get(stream.schedule_id) is not stream:
            return  # replaced or removed by set_targets while probing
        now = self._clock()
        stream.track = record(stream.track, observation, now)
        self._count_error(stream, observation)
        since = self._relaying_since(stream.schedule_id, now)
        self._apply(stream, judge(stream.track, relaying_since=since, now=now, timing=stream.timing))

    async def _look(self, stream: _Stream, session: aiohttp.ClientSession) -> Observation:
        """One probe in a slot. HTTP probes bound their own time; a child process gets a safety limit on top."""
        async with self._probes:
            if not stream.child:
                return await stream.probe.look(session, stream.track.marker)
            limit = stream.check.probe_timeout + SAFETY_MARGIN
            try:
                async with self._children, asyncio.timeout(limit):
                    return await stream.probe.look(session, stream.track.marker)
            except TimeoutError:
                return ProbeError(ProbeErrorKind.TIMEOUT, f"the probe overran {limit:g} s")

    # -- verdicts ------------------------------------------------------------------------------------------------

    def _count_error(self, stream: _Stream, observation: Observation) -> None:
        """Count every probe error; log one when the kind of error changes, not at every probe."""
        if not isinstance(observation, ProbeError):
            stream.last_error = None
            return
        if self._events is not None:
            self._events.stream_probe_error(stream.schedule_id, observation.kind.value)
        if observation.kind is not stream.last_error:
            log.warning(
                "stream_probe_failed",
                schedule_id=stream.schedule_id,
                kind=observation.kind.value,
                error=observation.message,
            )
        stream.last_error = observation.kind

    def _apply(self, stream: _Stream, verdict: Verdict) -> None:
        """Keep the verdict; report a stall once per episode (an unknown look in between does not repeat it)."""
        before = stream.verdict
        stream.verdict = verdict
        if verdict.health is Health.STALLED and verdict.since != stream.reported:
            stream.reported = verdict.since
            self._stalled(stream, verdict)
        elif before.health is Health.STALLED and verdict.health is Health.UP:
            log.info("stream_recovered", schedule_id=stream.schedule_id, stalled_since=before.since)

    def _stalled(self, stream: _Stream, verdict: Verdict) -> None:
        assert verdict.since is not None
        log.warning(
            "stream_stalled",
            schedule_id=stream.schedule_id,
            since=verdict.since,
            stall_after_s=stream.check.stall_after,
            marker=stream.track.marker,
        )
        if self._events is not None:
            self._events.stream_stalled(stream.schedule_id)
        try:
            self._on_stall(stream.schedule_id, verdict.since)
        except Exception:
            log.exception("stream_stall_handler_failed", schedule_id=stream.schedule_id)
