"""Callback ingest benchmark: the real endpoint against a bare aiohttp handler, driven by one load client.

One run, one machine, measured in the same run so the ratio is meaningful:

1. **Throughput.** This process serves two apps on one event loop: the real relayd app (mac check, size limit,
   JSON parse, durable event write through the real Store's group commit on a temp dir, reconcile hint) and a
   bare app whose handler only returns 200. A load client in a *separate process* (so it does not share the
   server's loop or core) posts the same number of distinct callbacks to each, at each concurrency of a sweep
   (32, 64, 128 requests in flight), interleaving bare and real runs; it reports requests/second. Each side's
   throughput is its best median over the sweep (see ``throughput_phase``), and every concurrency's ratio is
   printed too. Target: real >= 0.5 x bare.
2. **Latency under load.** The client sends callbacks open-loop at a fixed rate (default 1,000/s) to the real
   endpoint while a background load runs on the server's loop, and reports p50/p99. Target: p99 <= 20 ms.

The background load is pluggable: ``--background module:function`` names an ``async def fn(store, stop)`` that
runs on the server's loop until ``stop`` (an ``asyncio.Event``) is set. The default is a synthetic stand-in for
"a reconcile of 10,000 schedules": it walks 10,000 schedules, rewrites one segment record each through the same
store in batches of 100, and yields to the loop between batches, over and over. To measure with the real
reconciler, point ``--background`` at a function that builds the daemon's engine over ``store`` with 10,000
schedules against the emulator and calls its full reconcile in a loop until ``stop`` is set.

With ``--consoles N`` the latency phase runs ``--console-rounds`` times in pairs, alternating: without consoles, then
with N open web consoles (``bench/console_sse.py``'s console client in a child process: an open ``/v1/stream``, and on
each ``changed`` signal, at most once a second, a re-read of the schedules it names, as the page does). The report
adds the pairwise difference of the p99s; target: the consoles add <= 2 ms (median of the pairs).

Usage: ``.venv/bin/python bench/callbacks.py [--requests 4000] [--concurrency 32,64,128] [--rate 1000] [--seconds 5]
[--consoles 10 [--console-rounds 3]]``. Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import gc
import importlib
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from relayd.ids import ScheduleId, SegmentKey, TaskId
from relayd.metrics import Metrics, loop_lag_monitor
from relayd.store import SegmentRecord, SegmentState, Store
from relayd.volc.models import TaskStatus
from relayd.web.app import WebServer, build_app
from relayd.web.signing import callback_mac
from relayd.web.views import DaemonPlan, NextAction, ScheduleInfo, SegmentNotes

SECRET = b"bench-secret-bench-secret-bench!"
SEGMENTS = 200
THROUGHPUT_TARGET = 0.5
P99_TARGET_S = 0.020
CONSOLES_TARGET_MS = 2.0
CONSOLE_TOKEN = "bench-console-token"

Background = Callable[[Store, asyncio.Event], Awaitable[None]]


# -- the server side ----------------------------------------------------------------------------------------------


class BenchView:
    """The smallest DaemonView: no schedules, always ready."""

    def schedules(self) -> list[ScheduleInfo]:
        return []

    def next_action(self, key: SegmentKey) -> NextAction | None:
        return None

    def segment_notes(self, key: SegmentKey) -> SegmentNotes:
        return SegmentNotes()

    def config_loaded(self) -> bool:
        return True

    def config_problems(self) -> list[str]:
        return []

    def stream_health(self, schedule_id: ScheduleId) -> None:
        return None

    def config_warnings(self) -> list[str]:
        return []

    def held_removals(self) -> list[ScheduleId]:
        return []

    def conflicts(self) -> list[str]:
        return []

    def last_platform_success(self) -> float | None:
        return time.time()

    def platform_error(self) -> str | None:
        return None

    def now(self) -> float:
        return time.time()

    def platform_status(self, key: SegmentKey) -> TaskStatus | None:
        return None

    def plan_now(self, schedule_id: ScheduleId) -> DaemonPlan | None:
        return None


def bench_segment(i: int, now: float, schedule: str = "bench") -> SegmentRecord:
    return SegmentRecord(
        key=SegmentKey(f"{schedule}-{i}"), schedule_id=ScheduleId(schedule), index=i, occurrence=None,
        start=int(now), end=int(now) + 86400, title=f"rd{i}", group=None, spec_hash="h", body={},
        task_id=TaskId(f"{i:032x}"), state=SegmentState.RUNNING,
    )  # fmt: skip


async def bare_handler(request: web.Request) -> web.Response:
    return web.Response(status=200)


@dataclasses.dataclass
class LoadStats:
    passes: int = 0
    writes: int = 0


SYNTHETIC = LoadStats()


async def synthetic_reconcile(store: Store, stop: asyncio.Event, schedules: int = 10_000, batch: int = 50) -> None:
    """Stand-in for back-to-back reconciles of 10,000 schedules: every pass reads each schedule's segment, decides,
    and rewrites it through the store (a worst case: a real pass writes only what changed), yielding to the loop
    after every ``batch`` schedules as the reconciler must."""
    now = time.time()
    records = [bench_segment(0, now, f"load{i}") for i in range(schedules)]
    while not stop.is_set():
        for start in range(0, schedules, batch):
            chunk = [dataclasses.replace(r, attempts=SYNTHETIC.passes) for r in records[start : start + batch]]
            [store.segment(r.key) for r in chunk]  # the reconciler reads before it decides
            await store.put_many(chunk)
            SYNTHETIC.writes += len(chunk)
            if stop.is_set():
                return
        SYNTHETIC.passes += 1


def load_background(args: argparse.Namespace) -> Background:
    spec = args.background
    if not spec:
        return functools.partial(synthetic_reconcile, schedules=args.schedules)
    os.environ["RELAYD_BENCH_SCHEDULES"] = str(args.schedules)  # read by bench.reconcile_load when imported
    module, _, name = spec.partition(":")
    fn: Background = getattr(importlib.import_module(module), name)
    return fn


# -- the client side (runs in a child process) ------------------------------------------------------------------


def callback_body(i: int) -> bytes:
    return json.dumps({"TaskId": f"{i % SEGMENTS:032x}", "Status": "生效中", "EventType": "start", "Time": i}).encode()


def callback_target(base: str, i: int) -> str:
    key = SegmentKey(f"bench-{i % SEGMENTS}")
    return f"{base}/v1/callbacks/{key}/{callback_mac(SECRET, key)}"


async def client_throughput(base: str, requests: int, concurrency: int, offset: int) -> dict[str, Any]:
    bodies = [(callback_target(base, i), callback_body(offset + i)) for i in range(requests)]
    counter = iter(range(requests))
    failures = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        for i in counter:
            url, body = bodies[i]
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                await r.read()
                failures += r.status != 200

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"rps": requests / elapsed, "seconds": elapsed, "failures": failures}


async def client_paced(base: str, rate: float, seconds: float, offset: int) -> dict[str, Any]:
    total = int(rate * seconds)
    latencies: list[float] = []
    failures = 0

    async def one(session: aiohttp.ClientSession, i: int) -> None:
        nonlocal failures
        started = time.perf_counter()
        async with session.post(callback_target(base, i), data=callback_body(offset + i)) as r:
            await r.read()
            failures += r.status != 200
        latencies.append(time.perf_counter() - started)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session:
        t0 = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, i)))
        await asyncio.gather(*tasks)
        achieved = total / (time.perf_counter() - t0)
    latencies.sort()
    return {
        "sent": total,
        "achieved_rate": achieved,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "max_ms": 1000 * latencies[-1],
        "failures": failures,
    }


def client_main(args: argparse.Namespace) -> None:
    # The load client is measuring apparatus: a full collection of its thousands of in-flight request tasks took
    # 40-75 ms and showed up as server latency. It lives seconds, so it runs without the cyclic collector.
    gc.disable()
    if args.client == "throughput":
        result = asyncio.run(client_throughput(args.url, args.requests, args.concurrency[0], args.offset))
    else:
        result = asyncio.run(client_paced(args.url, args.rate, args.seconds, args.offset))
    print(json.dumps(result))


# -- orchestration ----------------------------------------------------------------------------------------------


async def run_client(*extra: str) -> dict[str, Any]:
    """Run this script in client mode in a child process; its one line of JSON is the result."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, *extra, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"load client failed: {err.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def timed_schedule_reads(into: Callable[[web.Request], list[float] | None]) -> Any:
    """A middleware timing each ``/v1/schedules`` read, in seconds of wall time, into the list ``into`` picks for
    it (None: not timed).

    A read answered in one stretch (the re-read of a few named schedules: under one of the render's 2 ms slices)
    holds the loop all its wall time; a full read gives the loop back every slice, so its wall time over-counts."""

    @web.middleware
    async def timed(request: web.Request, handler: Any) -> web.StreamResponse:
        durations = into(request) if request.path == "/v1/schedules" else None
        if durations is None:
            return await handler(request)
        started = time.perf_counter()
        try:
            return await handler(request)
        finally:
            durations.append(time.perf_counter() - started)

    return timed


@dataclasses.dataclass
class ReadTimer:
    """The consoles' re-reads as the server saw them: how many read everything (each console's first read, shared
    with the others that asked at once), and the wall time of the re-reads of named schedules (loop time)."""

    full: int = 0
    named: list[float] = dataclasses.field(default_factory=list)

    def take(self) -> dict[str, Any]:
        taken = {"full": self.full, "named": self.named}
        self.full, self.named = 0, []
        return taken

    def middleware(self) -> Any:
        return timed_schedule_reads(self._into)

    def _into(self, request: web.Request) -> list[float] | None:
        if "id" in request.query:
            return self.named
        self.full += 1
        return None


READS = ReadTimer()


async def start_apps(store: Store, api_token: str | None = None) -> tuple[WebServer, WebServer, str, str]:
    real_app = build_app(
        store=store, view=BenchView(), metrics=Metrics(), hint=lambda *a: None, callback_secret=SECRET,
        api_token=api_token,
    )  # fmt: skip
    real_app.middlewares.append(READS.middleware())
    bare_app = web.Application()
    bare_app.router.add_post("/v1/callbacks/{key}/{mac}", bare_handler)
    real, bare = WebServer(real_app), WebServer(bare_app)
    real_port = await real.start("127.0.0.1", 0)
    bare_port = await bare.start("127.0.0.1", 0)
    return real, bare, f"http://127.0.0.1:{real_port}", f"http://127.0.0.1:{bare_port}"


@dataclasses.dataclass
class Throughput:
    """Medians of the interleaved runs, per concurrency, for each endpoint."""

    bare: dict[int, float]
    real: dict[int, float]

    def peak(self, side: dict[int, float]) -> tuple[float, int]:
        concurrency = max(side, key=lambda c: side[c])
        return side[concurrency], concurrency


async def throughput_phase(args: argparse.Namespace, real_url: str, bare_url: str) -> Throughput:
    """Bare and real runs interleaved ``--rounds`` times at each ``--concurrency``; medians per concurrency.

    Throughput is a capacity: a closed-loop client measures it only with enough requests in flight to keep the
    server busy (Little's law). The real endpoint holds each request for a durable commit, so at low concurrency
    the client measures that round trip, not how many callbacks the server can take; the bare handler is limited
    by the load client at any concurrency. Each side's capacity is its best median over the sweep.
    """
    await run_client("--client", "throughput", "--url", bare_url, "--requests", "500", "--offset", "0")  # warm-up
    bares: dict[int, list[float]] = {c: [] for c in args.concurrency}
    reals: dict[int, list[float]] = {c: [] for c in args.concurrency}
    for n in range(args.rounds):
        for k, concurrency in enumerate(args.concurrency):
            # distinct bodies every run (and apart from the paced runs): no duplicates
            offset = 10_000_000 * (1 + n * len(args.concurrency) + k)
            common = ["--requests", str(args.requests), "--concurrency", str(concurrency), "--offset", str(offset)]
            bare = await run_client("--client", "throughput", "--url", bare_url, *common)
            real = await run_client("--client", "throughput", "--url", real_url, *common)
            for name, result in (("bare", bare), ("real", real)):
                if result["failures"]:
                    raise RuntimeError(f"{name} run had {result['failures']} non-200 answers")
            bares[concurrency].append(bare["rps"])
            reals[concurrency].append(real["rps"])
    return Throughput(bare=_medians(bares), real=_medians(reals))


def _medians(runs: dict[int, list[float]]) -> dict[int, float]:
    return {concurrency: statistics.median(values) for concurrency, values in runs.items()}


async def paced(args: argparse.Namespace, real_url: str, seconds: float, offset: int) -> dict[str, Any]:
    return await run_client(
        "--client", "paced", "--url", real_url, "--rate", str(args.rate), "--seconds", str(seconds),
        "--offset", str(offset),
    )  # fmt: skip


async def latency_phase(
    args: argparse.Namespace, store: Store, real_url: str, *, consoles: int = 0, offset: int = 2_000_000
) -> dict[str, Any]:
    """Paced callbacks while the background load and a loop-lag monitor run on this loop (and ``consoles`` open
    web consoles, connected before the callbacks start, in a child process)."""
    stop = asyncio.Event()
    metrics = Metrics()
    writes_before = SYNTHETIC.writes
    background = asyncio.create_task(load_background(args)(store, stop), name="bench-background")
    monitor = asyncio.create_task(loop_lag_monitor(metrics, stop, interval=0.01), name="bench-loop-lag")
    started = time.perf_counter()
    watchers = None
    if consoles:
        from bench.console_sse import consoles_result, open_consoles  # noqa: PLC0415 (it imports this module)

        watchers = await open_consoles(real_url, "changed", consoles, args.seconds + 2)
    try:
        result = await paced(args, real_url, args.seconds, offset)
    finally:
        stop.set()
        await asyncio.gather(background, monitor)
    if watchers is not None:
        seen = await consoles_result(watchers)
        result["console_reads"], result["consoles_cpu_s"] = seen["reads"], seen["cpu_s"]
        result["reads"] = READS.take()
    result["loop_lag_max_ms"] = 1000 * max_lag(metrics)
    result["background_writes_per_s"] = (SYNTHETIC.writes - writes_before) / (time.perf_counter() - started)
    return result


async def console_pairs(args: argparse.Namespace, store: Store, real_url: str) -> list[tuple[dict[str, Any], ...]]:
    """Latency without and with the consoles, alternating, ``--console-rounds`` times."""
    pairs = []
    for n in range(args.console_rounds):
        offset = 20_000_000 + 2_000_000 * n
        alone = await latency_phase(args, store, real_url, offset=offset)
        watched = await latency_phase(args, store, real_url, consoles=args.consoles, offset=offset + 1_000_000)
        pairs.append((alone, watched))
    return pairs


def max_lag(metrics: Metrics) -> float:
    """The smallest histogram bound that holds every loop-lag sample: an upper bound on the worst lag, in s."""
    buckets = [s for s in metrics.loop_lag_hist.collect()[0].samples if s.name.endswith("_bucket")]
    total = buckets[-1].value
    bound = next(s.labels["le"] for s in buckets if s.value >= total)
    return float(bound)  # "+Inf" parses to inf


async def _postgres_store(url: str) -> Any:
    """The shared store in a fresh schema: every round of the bench starts empty, as with SQLite's temp file."""
    from relayd.store.postgres.store import PostgresStore  # noqa: PLC0415

    schema = f"bench_{int(time.time() * 1000)}"
    return await PostgresStore.open(url, schema=schema, namespace="bench")


async def server_main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="relayd-bench-") as tmp:
        if args.postgres_url:
            store = await _postgres_store(args.postgres_url)
        else:
            store = await Store.open(Path(tmp) / "state.db")
        now = time.time()
        await store.put_many(bench_segment(i, now) for i in range(SEGMENTS))
        real, bare, real_url, bare_url = await start_apps(store, CONSOLE_TOKEN if args.consoles else None)
        try:
            throughput = await throughput_phase(args, real_url, bare_url)
            quiet = await paced(args, real_url, max(1.0, args.seconds / 2), 3_000_000)
            latency = await latency_phase(args, store, real_url)
            pairs = await console_pairs(args, store, real_url) if args.consoles else []
            recorded = await store.count_events(kind="callback")
        finally:
            await real.stop()
            await bare.stop()
            await store.close()
    return min(report(args, throughput, quiet, latency, recorded), report_consoles(args, pairs))


def report_consoles(args: argparse.Namespace, pairs: list[tuple[dict[str, Any], ...]]) -> int:
    """The consoles' pairs, and the median of the pairwise p99 differences against the target."""
    if not pairs:
        return 0
    print(f"with {args.consoles} consoles : p99 without / with, alternating (console re-reads)")
    window = args.seconds + 2
    for alone, watched in pairs:
        reads, named = watched["reads"], watched["reads"]["named"]
        print(
            f"  {alone['p99_ms']:6.1f} / {watched['p99_ms']:6.1f} ms  (+{watched['p99_ms'] - alone['p99_ms']:.1f}; "
            f"{reads['full']} full reads, {len(named)} of named schedules taking {1000 * sum(named) / window:.1f} ms "
            f"of the loop per second (longest {1000 * max(named, default=0):.1f} ms); the consoles' own process "
            f"{100 * watched['consoles_cpu_s'] / window:.0f} % of a core; loop lag <= "
            f"{alone['loop_lag_max_ms']:.0f} / {watched['loop_lag_max_ms']:.0f} ms)"
        )
    added = statistics.median(w["p99_ms"] - a["p99_ms"] for a, w in pairs)
    ok = added <= CONSOLES_TARGET_MS and all(w["failures"] == 0 for _, w in pairs)
    print(
        f"consoles add      : {added:+.1f} ms to p99, median of {len(pairs)} pairs (target <= {CONSOLES_TARGET_MS} ms)"
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def report(
    args: argparse.Namespace, throughput: Throughput, quiet: dict[str, Any], latency: dict[str, Any], recorded: int
) -> int:
    print(f"concurrency       : bare req/s  real req/s  ratio   (medians of {args.rounds} interleaved runs)")
    for c in args.concurrency:
        bare_c, real_c = throughput.bare[c], throughput.real[c]
        print(f"  {c:15d} : {bare_c:10.0f}  {real_c:10.0f}  {real_c / bare_c:5.2f}x")
    bare_rps, bare_at = throughput.peak(throughput.bare)
    real_rps, real_at = throughput.peak(throughput.real)
    ratio = real_rps / bare_rps
    print(f"bare handler      : {bare_rps:8.0f} req/s  (best median, at concurrency {bare_at})")
    print(
        f"callback endpoint : {real_rps:8.0f} req/s  (mac + limit + JSON + durable event + hint; best median, "
        f"at concurrency {real_at})"
    )
    print(f"ratio             : {ratio:8.2f}x  (target >= {THROUGHPUT_TARGET}x)")
    print(
        f"quiet             : {quiet['achieved_rate']:.0f}/s: p50 {quiet['p50_ms']:.1f} ms, "
        f"p99 {quiet['p99_ms']:.1f} ms, max {quiet['max_ms']:.1f} ms"
    )
    writes = latency["background_writes_per_s"]
    load = args.background or f"synthetic {args.schedules:,}-schedule reconcile, {writes:.0f} writes/s"
    print(
        f"under load        : {latency['achieved_rate']:.0f}/s for {args.seconds:g} s with {load}: "
        f"p50 {latency['p50_ms']:.1f} ms, p99 {latency['p99_ms']:.1f} ms, max {latency['max_ms']:.1f} ms "
        f"(target p99 <= {P99_TARGET_S * 1000:.0f} ms); loop lag <= {latency['loop_lag_max_ms']:.0f} ms"
    )
    print(f"events recorded   : {recorded}")
    ok = ratio >= THROUGHPUT_TARGET and latency["p99_ms"] <= P99_TARGET_S * 1000 and latency["failures"] == 0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--requests", type=int, default=4000)
    p.add_argument(
        "--concurrency", type=_int_list, default=[32, 64, 128],
        help="requests in flight, a comma-separated sweep (each side's capacity is its best median)",
    )  # fmt: skip
    p.add_argument("--rounds", type=int, default=5, help="interleaved bare/real throughput runs (medians compared)")
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--background", help="module:function, an async fn(store, stop) run during the latency phase")
    p.add_argument("--postgres", action="store_true", help="the shared store: a local PostgreSQL, not SQLite")
    p.add_argument("--schedules", type=int, default=10_000, help="schedules the background reconciles")
    p.add_argument("--consoles", type=int, default=0, help="also measure p99 with this many open web consoles")
    p.add_argument("--console-rounds", type=int, default=3, help="alternating without/with-consoles latency pairs")
    p.add_argument("--client", choices=["throughput", "paced"], help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _int_list(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}")
    return values


def main() -> int:
    args = parse_args(sys.argv[1:])
    # As in production: info and above (accepted callbacks log at debug; the event history has them).
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    if args.client:
        client_main(args)
        return 0
    args.postgres_url = None
    if not args.postgres:
        return asyncio.run(server_main(args))
    from bench.common import local_postgres  # noqa: PLC0415

    with local_postgres() as url:
        args.postgres_url = url
        return asyncio.run(server_main(args))


if __name__ == "__main__":
    sys.exit(main())
