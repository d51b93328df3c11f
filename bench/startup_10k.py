"""Benchmark: the daemon's start-up with 10,000 schedules, to the first reconcile computed; targets <= 5 s, <= 200 MB.

What runs is the unmodified ``relayd.daemon.Daemon`` — settings loaded through ``load_settings``, the real Store
on a temp path (WAL, writer thread, group commit), the config directory loaded and validated, the HTTP server,
the scheduler, the platform listing, then every schedule's first reconcile through the real queue, engine and
executor, and the applied-schedule snapshot the daemon persists alongside — with one substitution: the engine's
platform is ``relayd.platform.memory.MemoryPlatform`` (each call suspends once like an HTTP call). That is
the issue's "API pacing excluded": at the platform's 10 writes/s the ~8,500 creates of this mix alone would take
14 minutes, which measures the platform, not relayd.

The clock starts before settings are loaded and stops when the daemon sets ``ready`` (which it does after the
first reconcile of every schedule has finished); the bench checks that every schedule was decided and nothing is
left queued, so a 60 s READY fallback cannot pass for a finished start-up. Peak RSS is VmHWM of this process
(the whole daemon, including the 10,000 parsed schedules, the store's mirror and the observations).

Logs go through relayd's own JSON configuration at ``info`` (the production default) into /dev/null, so their cost
is counted. ``--profile`` prints the top functions by cumulative time.

    .venv/bin/python bench/startup_10k.py [--count 10000] [--target-s 5] [--target-mb 200] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    bench_settings,
    devnull,
    local_postgres,
    patched_platform,
    peak_rss_mb,
    verdict,
    write_schedules,
)
from relayd.daemon import Daemon
from relayd.logs import configure_logging
from relayd.platform.memory import MemoryPlatform
from relayd.store import SegmentState


@dataclass
class Figures:
    seconds: float
    passes: int
    queued: int
    creates: int
    segments: int
    pending: int
    applied: int


async def measure(workdir: Path, count: int, database_url: str | None = None) -> Figures:
    platform = MemoryPlatform()
    started = time.perf_counter()
    settings = bench_settings(workdir, log_level="info", database_url=database_url)
    with patched_platform(lambda client: platform):
        daemon = Daemon(settings)
        runner = asyncio.create_task(daemon.run(), name="bench-daemon")
        ready = asyncio.create_task(daemon.ready.wait(), name="bench-ready")
        await asyncio.wait({runner, ready}, return_when=asyncio.FIRST_COMPLETED)
        seconds = time.perf_counter() - started
        if runner.done():
            ready.cancel()
            await runner  # raises the daemon's start-up error
            raise RuntimeError("the daemon stopped before it was ready")
        figures = Figures(
            seconds=seconds,
            passes=daemon.engine.passes,
            queued=daemon.queue.depth,
            creates=platform.calls.get("create", 0),
            segments=len(daemon.store.segments()),
            pending=sum(1 for r in daemon.store.segments() if r.state == SegmentState.PENDING),
            applied=len(daemon.store.applied()),
        )
        daemon.request_stop()
        await runner
    return figures


def run(count: int, profile: bool, database_url: str | None = None) -> Figures:
    with tempfile.TemporaryDirectory(prefix="relayd-bench-") as tmp:
        workdir = Path(tmp)
        write_schedules(workdir / "schedules", count, time.time())
        if not profile:
            return asyncio.run(measure(workdir, count, database_url))
        profiler = cProfile.Profile()
        figures = profiler.runcall(asyncio.run, measure(workdir, count, database_url))
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--target-s", type=float, default=5.0)
    parser.add_argument("--target-mb", type=float, default=200.0)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the measured part")
    parser.add_argument("--postgres", action="store_true", help="the shared store: a local PostgreSQL, not SQLite")
    args = parser.parse_args()
    configure_logging("info", "json", stream=devnull())
    if args.postgres:
        with local_postgres() as url:
            f = run(args.count, args.profile, url)
    else:
        f = run(args.count, args.profile)
    rss = peak_rss_mb()
    print(
        f"startup_10k: {args.count} schedules -> first reconcile computed in {f.seconds:.2f} s "
        f"(target <= {args.target_s:g} s, {f.seconds / args.target_s:.0%} of target); peak RSS {rss:.0f} MiB "
        f"(target <= {args.target_mb:g} MB, {rss / args.target_mb:.0%})"
    )
    print(
        f"  {f.passes} reconcile passes, {f.queued} still queued, {f.creates} tasks created (in-memory platform), "
        f"{f.segments} segment records ({f.pending} pending ahead), {f.applied} applied schedules persisted"
    )
    return verdict(
        {
            "every schedule reconciled": f.passes >= args.count and f.queued == 0,
            "time": f.seconds <= args.target_s,
            "rss": rss <= args.target_mb,
        }
    )


if __name__ == "__main__":
    sys.exit(main())
