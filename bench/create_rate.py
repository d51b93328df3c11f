"""Benchmark: creating N tasks through the real daemon against the emulator's rate limit; target <= 1.02 x N/QPS.

The unmodified ``relayd.daemon.Daemon`` starts against an in-process emulator that enforces the platform's limits
(10 writes/s, 15 lists/s, sliding one-second windows, ``FlowLimitExceeded`` over the limit). With
``--platform byteplus`` the emulator plays its ``byteplus`` profile (Create/Update at 1/s each, 10-character
Titles, region ap-singapore-1) and the daemon runs with ``platform = "byteplus"``: the floor is N / 1 QPS.
The config directory holds N schedules, each with exactly one segment due now, so the first reconcile creates N
tasks through the real queue (8 workers), engine, executor, ``LivePlatform`` and the signed, paced ``LiveClient``.
The emulator's status callbacks go back to the daemon's real callback endpoint, as in production.

Measured: the wall time from the first CreatePullToPushTask call to the last one's answer (the engine's platform
is wrapped to timestamp its calls; nothing else changes), against the floor N / write-QPS that the issue names;
the emulator's throttled count (must be 0); and the most requests of each class the emulator saw in any one-second
window (must not exceed its limit). Also reported: daemon start to READY, which adds start-up and the listing, and
the ratio recorded before the pacing gates (token buckets spacing every grant ``1/qps + 5 ms`` apart).

    .venv/bin/python bench/create_rate.py [--count 200] [--write-qps 10] [--target 1.02] [--platform byteplus]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import devnull, emulator_bench_settings, local_postgres, patched_platform, verdict, write_schedules
from relayd.daemon import Daemon
from relayd.emulator import Emulator, EmulatorConfig
from relayd.ids import TaskId
from relayd.logs import configure_logging
from relayd.platform.live import LivePlatform
from relayd.volc.client import LiveClient

BEFORE = {"volcengine": "1.045 (token buckets, 5 ms margin on every interval; 200 creates at 10 QPS)"}
"""The ratio measured with this bench before the pacing gates (the buckets paced Create at the write rate, so with
BytePlus's 1 QPS every Create past the first in a second was throttled, and its 20-character Titles refused)."""

ONE_SEGMENT = """
[[schedule]]
id = "rate-{i}"
source = "rtmp://origin.example.com/live/r{i}"
destination = "rtmp://push.example.net/live/r{i}"
window = {{ start = {day_ago}, end = {in_two_days} }}
"""


class TimedPlatform(LivePlatform):
    """The real LivePlatform, timestamping each create call (monotonic start and end)."""

    def __init__(self, client: LiveClient) -> None:
        super().__init__(client)
        self.creates: list[tuple[float, float]] = []

    async def create(self, body: dict[str, Any]) -> TaskId:
        started = time.monotonic()
        try:
            return await super().create(body)
        finally:
            self.creates.append((started, time.monotonic()))


@dataclass
class Figures:
    count: int
    created: int
    calls: int
    create_s: float
    ready_s: float
    throttled: dict[str, int]
    max_per_1s: dict[str, int]


async def measure(workdir: Path, count: int, write_qps: int, platform: str, database_url: str | None = None) -> Figures:
    platforms: list[TimedPlatform] = []

    def timed(client: LiveClient) -> TimedPlatform:
        platforms.append(TimedPlatform(client))
        return platforms[-1]

    async with Emulator(EmulatorConfig(write_qps=write_qps, list_qps=15, profile=_profile(platform))) as emu:
        settings = emulator_bench_settings(
            workdir, emu, write_qps=float(write_qps), platform=platform, database_url=database_url
        )
        with patched_platform(timed):
            daemon = Daemon(settings)
            started = time.monotonic()
            runner = asyncio.create_task(daemon.run(), name="bench-daemon")
            async with asyncio.timeout(count / (1 if platform == "byteplus" else write_qps) * 2 + 30):
                await daemon.ready.wait()
            ready_s = time.monotonic() - started
            daemon.request_stop()
            await runner
        stats = emu.stats()
        created = len(emu.tasks())
    creates = platforms[0].creates
    return Figures(
        count=count,
        created=created,
        calls=len(creates),
        create_s=max(end for _, end in creates) - min(start for start, _ in creates) if creates else 0.0,
        ready_s=ready_s,
        throttled=dict(stats["throttled"]),
        max_per_1s=dict(stats["max_requests_per_1s"]),
    )


def _profile(platform: str) -> str:
    return "byteplus" if platform == "byteplus" else "lenient"


def limits(platform: str, write_qps: int) -> dict[str, float]:
    """The emulator's limit of each class it reports in ``max_requests_per_1s``."""
    if platform == "byteplus":
        return {"write": write_qps, "list": 15, "CreatePullToPushTask": 1, "UpdatePullToPushTask": 1}
    return {"write": write_qps, "list": 15}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=None, help="tasks to create (default 200; 30 for byteplus)")
    parser.add_argument("--write-qps", type=int, default=10)
    parser.add_argument("--target", type=float, default=1.02)
    parser.add_argument("--platform", choices=["volcengine", "byteplus"], default="volcengine")
    parser.add_argument("--postgres", action="store_true", help="the shared store: a local PostgreSQL, not SQLite")
    args = parser.parse_args()
    count = args.count or (30 if args.platform == "byteplus" else 200)
    qps = 1 if args.platform == "byteplus" else args.write_qps
    configure_logging("info", "json", stream=devnull())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="relayd-bench-") as tmp:
        workdir = Path(tmp)
        write_schedules(workdir / "schedules", count, time.time(), template=ONE_SEGMENT)
        with local_postgres() if args.postgres else contextlib.nullcontext() as url:
            f = asyncio.run(measure(workdir, count, args.write_qps, args.platform, url))
    floor = f.count / qps
    ratio = f.create_s / floor
    limit = limits(args.platform, args.write_qps)
    print(
        f"create_rate ({args.platform}): {f.created}/{f.count} tasks created ({f.calls} create calls) in "
        f"{f.create_s:.2f} s; floor N/create-QPS = {floor:.1f} s; ratio {ratio:.3f} (target <= {args.target:g})"
    )
    print(f"  before the pacing gates: {BEFORE.get(args.platform, 'every Create refused or throttled')}")
    print(
        f"  throttled by the emulator: {f.throttled or 'none'}; most requests in any 1 s window: {f.max_per_1s} "
        f"(limits {limit}); daemon start to READY {f.ready_s:.2f} s"
    )
    return verdict(
        {
            "all created": f.created == f.count,
            "ratio": ratio <= args.target,
            "zero throttling": sum(f.throttled.values()) == 0,
            "window within the limit": all(n <= limit.get(k, args.write_qps) for k, n in f.max_per_1s.items()),
        }
    )


if __name__ == "__main__":
    sys.exit(main())
