"""Stream health against the emulator: how fast a silent failure is restarted, and that healthy relays never are.

    .venv/bin/python bench/health_restarts.py [--failures 20] [--spacing 6]
    .venv/bin/python bench/health_restarts.py --false-restarts [--relays 20] [--minutes 10]

The unmodified daemon runs in-process against an in-process emulator, every schedule with a health check on the
emulator's HLS playback of its destination at the *default* patience (``stall_after`` 15 s, ``interval`` 5 s,
``grace`` 10 s) and the daemon's default restart policy (backoff base 5 s, full jitter).

* Default mode: ``--failures`` schedules; once each is up, one silent failure per schedule (the task stays 生效中,
  no callback, playback stalls; the first restart cures it), ``--spacing`` seconds apart. For each, the time from
  the failure to the playlist's media sequence advancing again, read by polling the playlist itself every 0.25 s.
  Prints min/median/p90/max and PASS when every one is within ``stall_after`` + 10 s (exit 1 otherwise).
* ``--false-restarts``: ``--relays`` healthy relays for ``--minutes`` with the emulator's jitter fault (30 % of
  10 s buckets freeze the playback for 2-3 s) and the health URLs behind a proxy that holds 10 % of playlist
  requests past the probe's time limit (probe timeouts). Counts restarts, ``stream_stalled`` events and
  Relaunches the emulator received; PASS when all are 0.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import m3u8
from aiohttp import web

from bench.common import emulator_bench_settings
from relayd.daemon import Daemon
from relayd.emulator import Emulator, EmulatorConfig
from relayd.health.verdict import Health
from relayd.ids import ScheduleId, SegmentKey
from relayd.logs import configure_logging
from relayd.store import SegmentState
from tests.e2e.harness import live_schedule, running_daemon, wait_for, write_schedules

STALL_AFTER = 15.0  # the defaults of HealthCheck, restated for the verdict line
TARGET = STALL_AFTER + 10.0
HOLD_RATE = 0.1
HOLD_S = 6.0  # past the default probe time limit (the 5 s interval)


def dst(sid: str) -> str:
    return f"rtmp://push.bench/live/{sid}"


@asynccontextmanager
async def daemon_against(emu: Emulator, workdir: Path, health_urls: dict[str, str]) -> AsyncIterator[Daemon]:
    """The daemon with one schedule per health URL (windows of an hour), default settings, until it is stopped."""
    now = time.time()
    text = "".join(
        live_schedule(sid, now - 5, now + 3600, dst=dst(sid), extra=f'health = "{url}"')
        for sid, url in health_urls.items()
    )
    write_schedules(workdir, text)
    async with running_daemon(emulator_bench_settings(workdir, emu, log_level="warning")) as daemon:
        yield daemon


def health(daemon: Daemon, sid: str) -> Health | None:
    status = daemon.parts.streams.monitor.status(ScheduleId(sid))
    return None if status is None else status.health


def task_of(daemon: Daemon, sid: str) -> str | None:
    record = daemon.store.segment(SegmentKey(f"{sid}.0"))
    return record.task_id if record is not None and record.state == SegmentState.RUNNING else None


async def sequence(http: aiohttp.ClientSession, url: str) -> int | None:
    async with http.get(url) as response:
        return m3u8.loads(await response.text()).media_sequence if response.status == 200 else None


async def one_failure(emu: Emulator, daemon: Daemon, http: aiohttp.ClientSession, sid: str) -> float:
    """Fail ``sid``'s task silently; seconds until its playlist advances past where it stopped."""
    url = emu.playback_url(dst(sid))
    await wait_for(lambda: health(daemon, sid) is Health.UP, 120, what=f"{sid} up")
    task_id = task_of(daemon, sid)
    assert task_id is not None, sid
    failed_at = time.monotonic()
    emu.fail_task(task_id, mode="silent", repeat=0)
    frozen = await sequence(http, url)
    assert frozen is not None
    while (await sequence(http, url) or frozen) <= frozen:
        if time.monotonic() - failed_at > 180:
            raise AssertionError(f"{sid}: no restart within 180 s")
        await asyncio.sleep(0.25)  # the polling period of the measurement
    return time.monotonic() - failed_at


async def failures(count: int, spacing: float) -> int:
    ids = [f"h{i:02d}" for i in range(count)]
    with tempfile.TemporaryDirectory(prefix="relayd-health-bench-") as tmp:
        async with Emulator(EmulatorConfig(admin=True)) as emu:
            urls = {sid: emu.playback_url(dst(sid)) for sid in ids}
            async with daemon_against(emu, Path(tmp), urls) as daemon, aiohttp.ClientSession() as http:
                runs = []
                for n, sid in enumerate(ids):
                    runs.append(asyncio.create_task(one_failure(emu, daemon, http, sid)))
                    if n < count - 1:
                        await asyncio.sleep(spacing * random.uniform(0.5, 1.5))  # spread the failures out
                times = sorted(await asyncio.gather(*runs))
                events = await daemon.store.events(kind="stream_stalled", limit=10_000)
    quantiles = statistics.quantiles(times, n=10, method="inclusive")
    print(f"{count} silent failures, stall -> playback advancing again (s):")
    print(f"  min {times[0]:.1f}  median {statistics.median(times):.1f}  p90 {quantiles[8]:.1f}  max {times[-1]:.1f}")
    print(f"  all: {' '.join(f'{t:.1f}' for t in times)}")
    print(f"  stream_stalled events: {len(events)}")
    ok = times[-1] <= TARGET
    print(f"{'PASS' if ok else 'FAIL'}: max {times[-1]:.1f} s vs target <= stall_after + 10 = {TARGET:g} s")
    return 0 if ok else 1


# --- false restarts -------------------------------------------------------------------------------------------


@asynccontextmanager
async def holding_proxy(upstream: str, rate: float, hold_s: float) -> AsyncIterator[str]:
    """A proxy to ``upstream`` that holds ``rate`` of the requests ``hold_s`` before answering (probe timeouts)."""
    held = 0

    async def forward(request: web.Request) -> web.Response:
        nonlocal held
        if random.random() < rate:
            held += 1
            await asyncio.sleep(hold_s)  # the fault: an edge that answers too late
        async with session.get(upstream + request.path_qs) as answer:
            return web.Response(status=answer.status, body=await answer.read(), content_type=answer.content_type)

    session = aiohttp.ClientSession()
    app = web.Application()
    app.router.add_get("/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        print(f"  proxy held {held} requests for {hold_s:g} s")
        await runner.cleanup()
        await session.close()


async def false_restarts(relays: int, minutes: float) -> int:
    ids = [f"j{i:02d}" for i in range(relays)]
    with tempfile.TemporaryDirectory(prefix="relayd-health-bench-") as tmp:
        async with Emulator(EmulatorConfig(admin=True)) as emu:
            emu.set_jitter(0.3)
            async with holding_proxy(emu.url, HOLD_RATE, HOLD_S) as proxy:
                urls = {sid: emu.playback_url(dst(sid)).replace(emu.url, proxy) for sid in ids}
                async with daemon_against(emu, Path(tmp), urls) as daemon:
                    await wait_for(lambda: all(health(daemon, s) is Health.UP for s in ids), 120, what="all up")
                    await asyncio.sleep(minutes * 60)  # the observation period
                    errors = daemon.metrics.stream_probe_errors
                    timeouts = sum(
                        m.value
                        for f in errors.collect()
                        for m in f.samples
                        if m.name.endswith("_total") and m.labels.get("kind") == "timeout"
                    )
                    restarts = await daemon.store.events(kind="restart", limit=10_000)
                    stalls = await daemon.store.events(kind="stream_stalled", limit=10_000)
            relaunches = emu.stats()["requests"].get("RelaunchPullToPushTask", 0)
    print(f"{relays} healthy relays for {minutes:g} min, jitter 30 % of 10 s buckets (2-3 s), {HOLD_RATE:.0%} held:")
    print(f"  probe timeouts counted {timeouts:g}; restarts {len(restarts)}, stream_stalled {len(stalls)}, ", end="")
    print(f"Relaunch calls {relaunches}")
    ok = not restarts and not stalls and not relaunches
    print(f"{'PASS' if ok else 'FAIL'}: {len(restarts) + len(stalls) + relaunches} false restarts or stalls (target 0)")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--failures", type=int, default=20, help="silent failures to measure (one per schedule)")
    parser.add_argument("--spacing", type=float, default=6.0, help="mean seconds between two failures")
    parser.add_argument("--false-restarts", action="store_true", help="count restarts of healthy, jittery relays")
    parser.add_argument("--relays", type=int, default=20, help="healthy relays for --false-restarts")
    parser.add_argument("--minutes", type=float, default=10.0, help="how long --false-restarts watches")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    random.seed(args.seed)
    configure_logging("warning", "console")
    run: Any = (
        false_restarts(args.relays, args.minutes) if args.false_restarts else failures(args.failures, args.spacing)
    )
    return int(asyncio.run(run))


if __name__ == "__main__":
    sys.exit(main())
