"""What ten open consoles cost the callback path: callback p50/p99 with no console, with ten consoles that re-read
every schedule on each signal (how the page worked before), and with ten that re-read only what changed (now).

The real application (``build_app``, real store, 200 segments in 50 schedules) takes paced callbacks from
``bench/callbacks.py``'s load client in a child process, while a stand-in for the daemon rewrites one segment
record every 100 ms (state moves: the change the stream names). Rounds are interleaved: no console, then ten
"full" consoles, then ten "changed" consoles. A console is what the page does: an open ``/v1/stream`` and, on a
``changed`` signal, at most once a second, one re-read — of ``/v1/schedules?segments=brief`` (full), or of
``/v1/schedules?segments=brief&id=…`` for the schedules the signal named (changed; everything on ``overview``). The
consoles run in another child process. Target: the "changed" consoles add ≤ 2 ms to the callback p99 (exit 1 if
not); the "full" figure is printed beside it for comparison.

    .venv/bin/python bench/console_sse.py [--rounds 3] [--rate 500] [--seconds 4] [--consoles 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.callbacks import CONSOLE_TOKEN as TOKEN
from bench.callbacks import SECRET, SEGMENTS, BenchView, bench_segment, run_client, timed_schedule_reads
from relayd.ids import ScheduleId
from relayd.metrics import Metrics
from relayd.store import SegmentRecord, SegmentState, Store
from relayd.web.app import WebServer, build_app

TARGET_MS = 2.0
PER_SCHEDULE = 4
MODES = ("full", "changed")


def seeded(now: float) -> list[SegmentRecord]:
    """``bench/callbacks.py``'s segments (its callbacks address them), spread over schedules of four."""
    return [
        dataclasses.replace(bench_segment(i, now), schedule_id=ScheduleId(f"bench{i // PER_SCHEDULE:03d}"))
        for i in range(SEGMENTS)
    ]


async def daemon_writes(store: Store, records: list[SegmentRecord], stop: asyncio.Event) -> None:
    """One segment record rewritten every 100 ms (a restart, a state move): what the stream reports."""
    rand = random.Random(7)
    states = (SegmentState.RUNNING, SegmentState.RETRYING)
    while not stop.is_set():
        record = rand.choice(records)
        await store.put(dataclasses.replace(record, state=rand.choice(states), attempts=rand.randrange(5)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)  # the stand-in's pace, not synchronisation


@dataclasses.dataclass
class ReadCost:
    """The wall time of the consoles' re-reads on the server, by mode: the cost that queues callbacks behind it
    (loop time for the re-reads of named schedules; see ``timed_schedule_reads``). The p99 figures on a shared
    machine are noisy, these are not."""

    mode: str = "none"
    reads: dict[str, list[float]] = dataclasses.field(default_factory=lambda: {m: [] for m in MODES})

    def middleware(self) -> Any:
        return timed_schedule_reads(lambda request: self.reads.get(self.mode))


COST = ReadCost()


def changed_url(base: str, data: bytes) -> str:
    signal = json.loads(data)
    if signal.get("overview"):
        return base + "/v1/schedules?segments=brief"
    ids = signal.get("schedules") or []
    return base + "/v1/schedules?segments=brief&" + "&".join("id=" + quote(i) for i in ids) if ids else ""


async def console(base: str, mode: str, stop_at: float, reads: list[int]) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    last = 0.0
    async with aiohttp.ClientSession(headers=headers) as session, session.get(base + "/v1/stream") as stream:
        if stream.status != 200:
            raise RuntimeError(f"console stream: HTTP {stream.status}")
        while time.monotonic() < stop_at:
            try:
                line = await asyncio.wait_for(stream.content.readline(), max(0.01, stop_at - time.monotonic()))
            except TimeoutError:
                break
            if not line.startswith(b'data: {"') or time.monotonic() - last < 1.0:
                continue
            url = base + "/v1/schedules?segments=brief" if mode == "full" else changed_url(base, line[6:])
            if url:
                last = time.monotonic()
                async with session.get(url) as r:
                    await r.read()
                    if r.status != 200:  # a bench that reads error pages measures nothing
                        raise RuntimeError(f"console re-read {url}: HTTP {r.status}")
                reads.append(1)


async def consoles_main(base: str, mode: str, count: int, seconds: float) -> None:
    reads: list[int] = []
    stop_at = time.monotonic() + seconds
    await asyncio.gather(*(console(base, mode, stop_at, reads) for _ in range(count)))
    print(json.dumps({"reads": len(reads), "cpu_s": time.process_time()}))


async def spawn_consoles(base: str, mode: str, count: int, seconds: float) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--consoles-child", base, "--mode", mode, "--consoles", str(count),
        "--seconds", str(seconds), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def consoles_result(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    """How many re-reads the consoles made and the CPU their process used; an error if any read failed (a bench
    reading errors measures nothing)."""
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"consoles failed: {err.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def paced(base: str, args: argparse.Namespace, offset: int) -> dict[str, Any]:
    return await run_client(
        "--client", "paced", "--url", base, "--rate", str(args.rate), "--seconds", str(args.seconds),
        "--offset", str(offset),
    )  # fmt: skip


async def open_consoles(base: str, mode: str, count: int, seconds: float) -> asyncio.subprocess.Process:
    """``count`` consoles in a child process, given a second to open their streams before the load starts (a
    warm-up, not synchronisation)."""
    proc = await spawn_consoles(base, mode, count, seconds)
    await asyncio.sleep(1.0)
    return proc


async def watched(base: str, args: argparse.Namespace, mode: str, offset: int) -> dict[str, Any]:
    proc = await open_consoles(base, mode, args.consoles, args.seconds + 2)
    result = await paced(base, args, offset)
    return {**result, "reads": (await consoles_result(proc))["reads"]}


async def one_round(base: str, args: argparse.Namespace, offset: int) -> dict[str, dict[str, Any]]:
    COST.mode = "none"
    results = {"none": await paced(base, args, offset)}
    for n, mode in enumerate(MODES, start=1):
        COST.mode = mode
        results[mode] = await watched(base, args, mode, offset + n * 1_000_000)
    COST.mode = "none"
    return results


async def server_main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="relayd-bench-") as tmp:
        store = await Store.open(Path(tmp) / "state.db")
        records = seeded(time.time())
        await store.put_many(records)
        app = build_app(
            store=store, view=BenchView(), metrics=Metrics(), hint=lambda *a: None, callback_secret=SECRET,
            api_token=TOKEN,
        )  # fmt: skip
        app.middlewares.append(COST.middleware())
        server = WebServer(app)
        base = f"http://127.0.0.1:{await server.start('127.0.0.1', 0)}"
        stop = asyncio.Event()
        writer = asyncio.create_task(daemon_writes(store, records, stop), name="bench-daemon-writes")
        rounds = []
        try:
            for r in range(args.rounds):
                rounds.append(await one_round(base, args, 10_000_000 * (r + 1)))
        finally:
            stop.set()
            await writer
            await server.stop()
            await store.close()
    return report(args, rounds)


def report(args: argparse.Namespace, rounds: list[dict[str, dict[str, Any]]]) -> int:
    shape = f"{SEGMENTS} segments in {SEGMENTS // PER_SCHEDULE} schedules, one segment rewritten every 100 ms"
    print(f"callbacks at {args.rate:.0f}/s for {args.seconds:.0f} s, {args.rounds} interleaved rounds, {shape}")
    print("round  none p50/p99 ms    full re-read p50/p99 (reads)   changed only p50/p99 (reads)")
    for i, r in enumerate(rounds):
        cells = [f"{r[m]['p50_ms']:6.2f} / {r[m]['p99_ms']:6.2f}" for m in ("none", *MODES)]
        print(
            f"{i + 1:>5}  {cells[0]}   {cells[1]} ({r['full']['reads']:>4})   {cells[2]} ({r['changed']['reads']:>4})"
        )
    none = statistics.median(r["none"]["p99_ms"] for r in rounds)
    added = {m: statistics.median(r[m]["p99_ms"] for r in rounds) - none for m in MODES}
    print(f"median p99 with no console: {none:.2f} ms")
    print(f"{args.consoles} consoles re-reading everything (before): added {added['full']:+.2f} ms")
    print(f"{args.consoles} consoles re-reading what changed (now):   added {added['changed']:+.2f} ms")
    for mode, label in (("full", "everything (before)"), ("changed", "what changed (now)")):
        reads = COST.reads[mode]
        spent = 1000 * sum(reads) / (len(rounds) * (args.seconds + 2))
        longest = 1000 * max(reads, default=0.0)
        median = 1000 * statistics.median(reads) if reads else 0.0
        print(f"re-reading {label}: {len(reads)} reads, median {median:.2f} ms, longest {longest:.2f} ms, "
              f"{spent:.1f} ms of loop time per second")  # fmt: skip
    ok = added["changed"] <= TARGET_MS
    print(f"target: added <= {TARGET_MS} ms -> {'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rate", type=float, default=500.0)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--consoles", type=int, default=10)
    p.add_argument("--consoles-child", help=argparse.SUPPRESS)
    p.add_argument("--mode", choices=MODES, default="changed", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.consoles_child:
        asyncio.run(consoles_main(args.consoles_child, args.mode, args.consoles, args.seconds))
        return 0
    return asyncio.run(server_main(args))


if __name__ == "__main__":
    sys.exit(main())
