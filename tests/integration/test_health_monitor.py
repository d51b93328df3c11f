"""The health monitor on a real loop against local playback servers: stalls found in time, no false stalls."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from relayd.health.monitor import HealthMonitor
from relayd.health.verdict import Health
from relayd.ids import ScheduleId
from relayd.metrics import Metrics
from relayd.schedules.model import NO_PROGRAM_CHECK, HealthCheck
from tests.integration.playback import Playback, fake_ffprobe, serve

pytestmark = pytest.mark.timeout(180)


def check(url: str, **timing: Any) -> HealthCheck:
    values = {"interval": 1, "stall_after": 3, "timeout": 0.5, "grace": 0, **timing}
    return HealthCheck.model_validate({"url": url, **values}, context=NO_PROGRAM_CHECK)


@dataclass
class Watch:
    """A running monitor with its stall reports and metrics."""

    monitor: HealthMonitor
    metrics: Metrics
    stalls: list[tuple[ScheduleId, float, float]] = field(default_factory=list)  # (id, since, reported at)
    stalled: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Wait for ``predicate`` to hold, polling the monitor's state (the monitor has no change feed)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.05)

    def health(self, schedule_id: str) -> Health | None:
        status = self.monitor.status(ScheduleId(schedule_id))
        return None if status is None else status.health


@asynccontextmanager
async def watching(
    checks: Mapping[str, HealthCheck],
    relaying: Callable[[ScheduleId, float], float | None] | None = None,
    **options: Any,
) -> AsyncIterator[Watch]:
    started = time.time()
    metrics = Metrics()
    watch: Watch

    def on_stall(schedule_id: ScheduleId, since: float) -> None:
        watch.stalls.append((schedule_id, since, time.time()))
        watch.stalled.set()

    monitor = HealthMonitor(
        relaying_since=relaying or (lambda _sid, _now: started), on_stall=on_stall, events=metrics, **options
    )
    watch = Watch(monitor, metrics)
    monitor.set_targets({ScheduleId(k): v for k, v in checks.items()})
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop), name="health-monitor")
    try:
        yield watch
    finally:
        stop.set()
        async with asyncio.timeout(15):
            await task


@pytest.fixture
async def playback() -> AsyncIterator[Playback]:
    async with serve() as server:
        yield server


async def test_a_frozen_playlist_is_reported_within_stall_after_plus_an_interval(playback: Playback) -> None:
    stream = playback.stream("news")
    stream.segment = 0.3
    health = check(playback.url("hls", "news"))
    async with watching({"news": health}) as watch:
        await watch.until(lambda: watch.health("news") is Health.UP, timeout=20)
        stream.freeze()
        frozen_at = time.time()
        async with asyncio.timeout(30):
            await watch.stalled.wait()
        ((schedule_id, since, reported_at),) = watch.stalls
        assert schedule_id == "news"
        slack = 3.0  # a loaded machine
        assert reported_at - frozen_at <= health.stall_after + health.interval + health.probe_timeout + slack
        assert frozen_at - health.interval - slack <= since <= frozen_at + health.interval + slack
        status = watch.monitor.status(ScheduleId("news"))
        assert status is not None and status.describe().startswith("stalled since 20")
        assert watch.metrics.stream_stalls.labels(schedule="news")._value.get() == 1

        stream.status = 403  # a probe error in the middle of a stall is unknown, and does not repeat the report
        await watch.until(lambda: watch.health("news") is Health.UNKNOWN, timeout=20)
        stream.status = 200
        await watch.until(lambda: watch.health("news") is Health.STALLED, timeout=20)
        assert len(watch.stalls) == 1

        stream.frozen = None  # the stream comes back: up again, and no second report
        await watch.until(lambda: watch.health("news") is Health.UP, timeout=20)
        assert len(watch.stalls) == 1


async def test_lagging_playlists_and_probe_timeouts_cause_no_stall(playback: Playback) -> None:
    rng = random.Random(17)
    lagging = playback.stream("lagging")
    lagging.segment = 1.0
    lagging.lag = lambda: rng.uniform(2.0, 3.0) if int(time.monotonic() / 4) % 2 else 0.0  # an edge 2-3 s behind
    flaky = playback.stream("flaky")
    flaky.segment = 0.5
    flaky.slow = lambda n: 1.5 if n % 4 == 0 else 0.0  # every 4th answer comes after the probe's time limit
    checks = {
        "lagging": check(playback.url("hls", "lagging"), stall_after=8),
        "flaky": check(playback.url("hls", "flaky"), stall_after=8),
    }
    async with watching(checks) as watch:
        await watch.until(lambda: lagging.requests >= 20 and flaky.requests >= 20, timeout=120)
        assert watch.stalls == []
        assert watch.health("lagging") is Health.UP
        timeouts = watch.metrics.stream_probe_errors.labels(schedule="flaky", kind="timeout")._value.get()
        assert timeouts >= 3


async def test_forbidden_playback_is_unknown_never_stalled(playback: Playback) -> None:
    denied = playback.stream("denied")
    denied.status = 403
    async with watching({"denied": check(playback.url("hls", "denied"), stall_after=2, interval=1)}) as watch:
        await watch.until(lambda: denied.requests >= 6, timeout=60)  # well past stall_after
        status = watch.monitor.status(ScheduleId("denied"))
        assert status is not None and status.health is Health.UNKNOWN
        assert status.describe().startswith("unknown: probe error http_status: HTTP 403")
        assert watch.stalls == []
        assert watch.monitor.levels() == {"denied": (False, None)}


async def test_no_probe_while_not_relaying(playback: Playback) -> None:
    checks = {"on": check(playback.url("hls", "on")), "off": check(playback.url("hls", "off"))}
    started = time.time()

    def relaying(schedule_id: ScheduleId, now: float) -> float | None:
        return started if schedule_id == "on" else None

    async with watching(checks, relaying) as watch:
        await watch.until(lambda: playback.stream("on").requests >= 3 and watch.health("off") is not None, 30)
        assert playback.stream("off").requests == 0
        status = watch.monitor.status(ScheduleId("off"))
        assert status is not None and status.describe() == "paused: not relaying"
        assert "off" not in watch.monitor.levels()


async def test_set_targets_adds_keeps_and_drops(playback: Playback) -> None:
    first = check(playback.url("hls", "a"))
    async with watching({"a": first}) as watch:
        await watch.until(lambda: watch.health("a") is Health.UP, timeout=30)
        same = check(playback.url("hls", "a"))
        watch.monitor.set_targets({ScheduleId("a"): same, ScheduleId("b"): check(playback.url("flv", "b"))})
        assert watch.health("a") is Health.UP  # an unchanged check keeps its memory
        await watch.until(lambda: watch.health("b") is Health.UP, timeout=30)
        watch.monitor.set_targets({ScheduleId("a"): check(playback.url("hls", "a"), stall_after=4)})
        assert watch.health("a") is Health.UNKNOWN  # a changed check starts afresh
        assert set(watch.monitor.statuses()) == {"a"}  # b is dropped


async def test_a_hanging_ffprobe_is_unknown_and_killed(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    program = fake_ffprobe(tmp_path / "bin", f'echo $$ >> "{pids}"\nexec sleep 600\n')
    rtmp = check("rtmp://127.0.0.1:1/live/news", timeout=1, stall_after=2)
    async with watching({"news": rtmp}, ffprobe=str(program)) as watch:
        await watch.until(lambda: pids.exists() and len(pids.read_text().split()) >= 3, timeout=60)
        await watch.until(lambda: watch.health("news") is Health.UNKNOWN and "timeout" in describe(watch), 30)
        assert watch.stalls == []
    for pid in pids.read_text().split():
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)  # every overrunning child was killed and reaped, including at stop


def describe(watch: Watch) -> str:
    status = watch.monitor.status(ScheduleId("news"))
    return "" if status is None else status.describe()


async def test_each_stream_is_probed_at_most_once_an_interval(playback: Playback) -> None:
    names = [f"s{i}" for i in range(20)]
    async with watching({n: check(playback.url("hls", n)) for n in names}) as watch:
        started = time.monotonic()
        await watch.until(lambda: sum(playback.stream(n).requests for n in names) >= 3 * len(names), timeout=60)
        elapsed = time.monotonic() - started
        most = max(playback.stream(n).requests for n in names)
        assert most <= (elapsed + 0.1) / 1.0 + 1  # interval 1 s: one probe per slot (started up to 50 ms early)
