"""Shared pieces of the daemon benchmarks: a schedule directory, an in-memory platform, the engine's wiring, RSS.

* :func:`write_schedules` writes N schedules relative to ``now`` (so the mix is the same whatever the date): 60%
  live windows that started a month ago and run two more months (a task due now, more segments ahead), 15%
  forever relays, 15% daily recurrences in a DST zone, 10% VOD playlists with durations and a finite loop.
* :class:`relayd.platform.memory.MemoryPlatform` (the engine tests' platform too): every call
  answers at once but still suspends once, as a real HTTP call would, and listings yield between pages of 500.
  Benches use it where "API pacing excluded" is the point: the platform's 10 writes/s would otherwise turn
  10,000 creates into 1,000 s of waiting that says nothing about relayd.
* :func:`build_rig` wires the real ``Engine``, ``ReconcileQueue`` (8 workers), ``Jobs`` and AsyncIOScheduler over a
  given store as ``relayd.wiring.build_parts`` does, for benches that cannot run the whole daemon
  (``bench/reconcile_load.py`` must reuse the store it is handed).
* :func:`patched_platform` swaps the platform the real daemon builds around its ``LiveClient`` — the one seam
  a bench needs to run the unmodified daemon against the in-memory platform or to time the real one's calls.
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

from apscheduler.schedulers.asyncio import AsyncIOScheduler

import relayd.wiring
from relayd.emulator import Emulator
from relayd.engine import Engine, engine_config
from relayd.ids import ScheduleId
from relayd.jobs import Jobs, build_scheduler
from relayd.platform import Platform
from relayd.queueing import ReconcileQueue
from relayd.schedules.model import Schedule
from relayd.settings import Settings, load_settings
from relayd.store import Store
from relayd.volc.client import LiveClient

PER_FILE = 100
DAY = 86400

LIVE = """
[[schedule]]
id = "live-{i}"
title = "Live relay {i}"
source = "rtmp://origin.example.com/live/s{i}"
destination = "rtmp://push.example.net/live/s{i}"
window = {{ start = {month_ago}, end = {in_two_months} }}
"""
FOREVER = """
[[schedule]]
id = "forever-{i}"
source = "srt://camera.example.com:9000?streamid=s{i}"
destination = {{ domain = "push.example.net", app = "live", stream = "f{i}" }}
window = {{ start = {week_ago} }}
"""
DAILY = """
[[schedule]]
id = "daily-{i}"
source = "https://origin.example.com/live/s{i}.flv"
destination = "rtmp://push.example.net/live/d{i}"
recurrence = {{ cron = "0 20 * * *", duration = "2h", timezone = "Europe/Berlin" }}
"""
VOD = """
[[schedule]]
id = "vod-{i}"
destination = "rtmp://push.example.net/live/v{i}"
window = {{ start = {day_ago}, end = {in_two_months} }}
source = {{ loop = 300, playlist = [
  {{ url = "https://vod.example.com/a{i}.mp4", duration = 1800 }},
  {{ url = "https://vod.example.com/b{i}.mp4", duration = 2700.5, start_offset = 10 }},
] }}
"""


def _template(i: int) -> str:
    bucket = i % 20
    if bucket < 12:
        return LIVE
    if bucket < 15:
        return FOREVER
    if bucket < 18:
        return DAILY
    return VOD


def _toml_time(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_schedules(root: Path, count: int, now: float, *, first: int = 0, template: str | None = None) -> None:
    """``count`` schedules (ids ``<kind>-<i>``, i from ``first``) in files of 100; the default mix is above."""
    root.mkdir(parents=True, exist_ok=True)
    times = {
        "month_ago": _toml_time(now - 30 * DAY),
        "week_ago": _toml_time(now - 7 * DAY),
        "day_ago": _toml_time(now - DAY),
        "in_two_days": _toml_time(now + 2 * DAY),
        "in_two_months": _toml_time(now + 60 * DAY),
    }
    for start in range(first, first + count, PER_FILE):
        stop = min(start + PER_FILE, first + count)
        text = "".join((template or _template(i)).format(i=i, **times) for i in range(start, stop))
        (root / f"bench-{start // PER_FILE:05d}.toml").write_text(text, encoding="utf-8")


@contextlib.contextmanager
def local_postgres() -> Iterator[str]:
    """A throwaway PostgreSQL (Debian's ``initdb``/``pg_ctl``) on a free local port: its URL, stopped on exit.

    For ``--postgres`` runs of the benches: the same figures with the shared store instead of SQLite. The server
    runs with ``fsync=off`` like the tests' (the figures compare relayd's work, not the disk).
    """
    import shutil  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    from tests.integration.postgres import PostgresServer, bin_dir  # noqa: PLC0415

    bindir = bin_dir()
    if bindir is None:
        raise SystemExit("PostgreSQL is not installed (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="relayd-bench-pg-"))
    server = PostgresServer(root, bindir)
    server.init()
    try:
        yield server.url
    finally:
        server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def bench_settings(workdir: Path, **overrides: Any) -> Settings:
    """Daemon settings for a bench: temp state and schedules, an ephemeral port, placeholder credentials."""
    values: dict[str, Any] = {
        "endpoint": "http://127.0.0.1:9",  # never reached unless a bench says otherwise
        "access_key": "AKLTbench",
        "secret_key": "bench-secret",
        "schedules_dir": workdir / "schedules",
        "state_path": workdir / "state" / "state.db",
        "listen": "127.0.0.1:0",
        "public_url": "http://127.0.0.1:8080",
        "callback_secret": "bench-callback-secret-0123456789",
        "api_token": "bench-api-token-0123456789",
    }
    values.update(overrides)
    (workdir / "state").mkdir(parents=True, exist_ok=True)
    return load_settings(None, **values)


def emulator_bench_settings(workdir: Path, emu: Emulator, **overrides: Any) -> Settings:
    """``bench_settings`` for a daemon against ``emu``: its endpoint and keys, callbacks to a free local port."""
    port = free_port()
    return bench_settings(
        workdir,
        endpoint=emu.url,
        access_key=emu.config.access_key,
        secret_key=emu.config.secret_key,
        listen=f"127.0.0.1:{port}",
        public_url=f"http://127.0.0.1:{port}",
        **overrides,
    )


@contextlib.contextmanager
def patched_platform(factory: Callable[[LiveClient], Platform]) -> Iterator[None]:
    """Make the real daemon build its engine's platform with ``factory(client)``."""
    with mock.patch.object(relayd.wiring, "platform_for", factory):
        yield


# --- the engine's wiring ----------------------------------------------------------------------------------------


@dataclass
class Rig:
    engine: Engine
    queue: ReconcileQueue
    jobs: Jobs
    scheduler: AsyncIOScheduler


def build_rig(store: Store, platform: Platform, settings: Settings, schedules: Iterable[Schedule]) -> Rig:
    """The daemon's engine, queue and wake-ups over ``store`` (as ``build_parts`` wires them), scheduler started."""

    async def reconcile(schedule_id: ScheduleId) -> None:
        await engine.reconcile(schedule_id)

    scheduler = build_scheduler()
    queue = ReconcileQueue(reconcile)
    jobs = Jobs(scheduler, queue.submit)
    engine = Engine(
        store=store,
        platform=platform,
        config=engine_config(settings),
        callback_url=lambda key: f"{settings.public_url}/v1/callbacks/{key}/bench",
        jobs=jobs,
        rand=random.random,
    )
    engine.set_schedules(schedules)
    scheduler.start()
    return Rig(engine, queue, jobs, scheduler)


async def reconcile_all(rig: Rig, ids: list[ScheduleId]) -> None:
    """One full pass over ``ids`` through the queue, as the daemon's first reconcile and resync do."""
    rig.queue.submit_many(ids)
    await rig.queue.drained()


# --- figures ----------------------------------------------------------------------------------------------------


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1 (for a daemon whose public URL must be known up front)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), in MiB."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def devnull() -> Any:
    return open(os.devnull, "w")  # lives as long as the bench's logging


def verdict(checks: dict[str, bool]) -> int:
    """Print PASS/FAIL (naming what failed); the process exit status."""
    failed = [name for name, ok in checks.items() if not ok]
    print("PASS" if not failed else f"FAIL: {', '.join(failed)}")
    return 1 if failed else 0
