"""What ten open consoles cost the callback path: callback p50/p99 with no console vs ten consoles connected.

The real application (``build_app``, real store, 200 segments) takes paced callbacks from ``bench/callbacks.py``'s
load client in a child process, in interleaved rounds: no console, then ten consoles. A console is what the page
does: an open ``/v1/stream`` and, on every ``changed`` signal, one re-read of ``/v1/schedules?segments=1`` at most
once a second (the page's coalescing); the consoles run in another child process. Target: ten consoles add ≤ 2 ms
to the callback p99 (exit 1 if not).

    .venv/bin/python bench/console_sse.py [--rounds 3] [--rate 500] [--seconds 4] [--consoles 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.callbacks import SECRET, SEGMENTS, BenchView, bench_segment, run_client
from relayd.metrics import Metrics
from relayd.store import Store
from relayd.web.app import WebServer, build_app

TOKEN = "bench-console-token"
TARGET_MS = 2.0
READS = "--stream-only" not in sys.argv


async def console(base: str, stop_at: float, reads: list[int]) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    last = 0.0
    async with aiohttp.ClientSession(headers=headers) as session, session.get(base + "/v1/stream") as stream:
        while time.monotonic() < stop_at:
            try:
                line = await asyncio.wait_for(stream.content.readline(), max(0.01, stop_at - time.monotonic()))
            except TimeoutError:
                break
            if READS and line.startswith(b"event: changed") and time.monotonic() - last >= 1.0:
                last = time.monotonic()
                async with session.get(base + "/v1/schedules?segments=1") as r:
                    await r.read()
                reads.append(1)


async def consoles_main(base: str, count: int, seconds: float) -> None:
    reads: list[int] = []
    stop_at = time.monotonic() + seconds
    await asyncio.gather(*(console(base, stop_at, reads) for _ in range(count)))
    print(json.dumps({"reads": len(reads)}))


async def spawn_consoles(base: str, count: int, seconds: float) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--consoles-child", base, "--consoles", str(count), "--seconds", str(seconds),
        *([] if READS else ["--stream-only"]), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def paced(base: str, args: argparse.Namespace, offset: int) -> dict[str, Any]:
    return await run_client(
        "--client", "paced", "--url", base, "--rate", str(args.rate), "--seconds", str(args.seconds),
        "--offset", str(offset),
    )  # fmt: skip


async def one_round(base: str, args: argparse.Namespace, offset: int) -> tuple[dict[str, Any], dict[str, Any], int]:
    quiet = await paced(base, args, offset)
    proc = await spawn_consoles(base, args.consoles, args.seconds + 2)
    await asyncio.sleep(1.0)  # let the consoles connect before the load starts (a warm-up, not synchronisation)
    watched = await paced(base, args, offset + 1_000_000)
    out, _ = await proc.communicate()
    reads = int(json.loads(out.decode().strip().splitlines()[-1])["reads"])
    return quiet, watched, reads


async def server_main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="relayd-bench-") as tmp:
        store = await Store.open(Path(tmp) / "state.db")
        await store.put_many(bench_segment(i, time.time()) for i in range(SEGMENTS))
        app = build_app(
            store=store, view=BenchView(), metrics=Metrics(), hint=lambda *a: None, callback_secret=SECRET,
            api_token=TOKEN,
        )  # fmt: skip
        server = WebServer(app)
        base = f"http://127.0.0.1:{await server.start('127.0.0.1', 0)}"
        rounds = []
        try:
            for r in range(args.rounds):
                rounds.append(await one_round(base, args, 10_000_000 * (r + 1)))
        finally:
            await server.stop()
            await store.close()
    return report(args, rounds)


def report(args: argparse.Namespace, rounds: list[tuple[dict[str, Any], dict[str, Any], int]]) -> int:
    print(f"callbacks at {args.rate:.0f}/s for {args.seconds:.0f} s, {args.rounds} interleaved rounds")
    print("round  none p50/p99 ms    consoles p50/p99 ms   console re-reads")
    for i, (quiet, watched, reads) in enumerate(rounds):
        print(
            f"{i + 1:>5}  {quiet['p50_ms']:6.2f} / {quiet['p99_ms']:6.2f}   "
            f"{watched['p50_ms']:6.2f} / {watched['p99_ms']:6.2f}      {reads}"
        )
    none_p99 = statistics.median(q["p99_ms"] for q, _, _ in rounds)
    with_p99 = statistics.median(w["p99_ms"] for _, w, _ in rounds)
    added = with_p99 - none_p99
    print(f"median p99: none {none_p99:.2f} ms, {args.consoles} consoles {with_p99:.2f} ms, added {added:+.2f} ms")
    print(f"target: added <= {TARGET_MS} ms -> {'ok' if added <= TARGET_MS else 'MISSED'}")
    return 0 if added <= TARGET_MS else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rate", type=float, default=500.0)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--consoles", type=int, default=10)
    p.add_argument("--consoles-child", help=argparse.SUPPRESS)
    p.add_argument("--stream-only", action="store_true", help="consoles hold the stream but never re-read")
    args = p.parse_args()
    if args.consoles_child:
        asyncio.run(consoles_main(args.consoles_child, args.consoles, args.seconds))
        return 0
    return asyncio.run(server_main(args))


if __name__ == "__main__":
    sys.exit(main())
