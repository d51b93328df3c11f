"""Stream health checks: CPU cost of the monitor watching 500 playback URLs at a 5 s interval.

    .venv/bin/python bench/health_cost.py [--streams 500] [--interval 5] [--seconds 30] [--flv 0]

A playback server runs in a *separate process* (an aiohttp app serving a live HLS playlist per stream that
advances every 2 s, and an HTTP-FLV stream), so this process's CPU time (``time.process_time``) is the
monitor's and its event loop's alone. Each round, the process first idles on its loop for ``--seconds`` (the
baseline), then runs ``HealthMonitor`` over ``--streams`` HLS checks (``--flv`` of them HTTP-FLV instead) for as
long, after one interval of warm-up. Prints each round's share of one core above the baseline, probes per second
and CPU per probe; the verdict uses the best of ``--rounds`` rounds (the machine may be busy with other work; the
least disturbed round is the closest to the monitor's own cost). Exits 1 when that share is above 5 % or any
healthy stream was reported stalled.

The callback side: ``bench/callbacks.py --background health_cost:monitor_load`` runs the same 500-stream monitor
(with its playback server) on the callback bench's loop during its latency phase; compare its "under load" p99
with the "quiet" one of the same run, or with a run of ``--background health_cost:no_load`` (same length).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import web

from relayd.health.monitor import HealthMonitor
from relayd.ids import ScheduleId
from relayd.schedules.model import HealthCheck

TARGET_SHARE = 0.05
SEGMENT = 2.0
FLV_TAG = b"\x09\x00\x04\x00" + b"\x00" * 7 + b"\x00" * 1024 + (1035).to_bytes(4, "big")


# --- the playback server (child process) ----------------------------------------------------------------------


class Counter:
    requests = 0


async def playlist(request: web.Request) -> web.Response:
    Counter.requests += 1
    first = int(time.time() / SEGMENT)
    name = request.match_info["name"]
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{int(SEGMENT)}", f"#EXT-X-MEDIA-SEQUENCE:{first}"]
    for n in range(first, first + 4):
        lines += [f"#EXTINF:{SEGMENT:.3f},", f"{name}/seg{n}.ts"]
    return web.Response(text="\n".join(lines) + "\n", content_type="application/vnd.apple.mpegurl")


async def flv(request: web.Request) -> web.StreamResponse:
    Counter.requests += 1
    response = web.StreamResponse(headers={"Content-Type": "video/x-flv"})
    await response.prepare(request)
    try:
        await response.write(b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00")
        for _ in range(200):  # ~200 KiB, more than a probe reads
            await response.write(FLV_TAG)
    except ConnectionError:
        pass
    return response


async def serve() -> None:
    app = web.Application()
    app.router.add_get("/hls/{name}.m3u8", playlist)
    app.router.add_get("/flv/{name}.flv", flv)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    loop = asyncio.get_running_loop()
    while await loop.run_in_executor(None, sys.stdin.readline):  # each line asks for the count; EOF ends
        print(Counter.requests, flush=True)
    await runner.cleanup()


def start_server() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def server_requests(proc: subprocess.Popen[str]) -> int:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("count\n")
    proc.stdin.flush()
    return int(proc.stdout.readline())


# --- measurement ------------------------------------------------------------------------------------------------


async def idle(seconds: float) -> tuple[float, float]:
    """(wall, cpu) of this process doing nothing on its loop for ``seconds``."""
    stop = asyncio.Event()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        pass
    return time.perf_counter() - wall, time.process_time() - cpu


class ProbeCount:
    """The monitor's events: counts probe errors (there should be none)."""

    errors = 0

    def stream_stalled(self, schedule_id: str) -> None:
        pass

    def stream_probe_error(self, schedule_id: str, kind: str) -> None:
        self.errors += 1


def checks(port: int, streams: int, flv_count: int, interval: float) -> dict[ScheduleId, HealthCheck]:
    out = {}
    for i in range(streams):
        kind, suffix = ("flv", "flv") if i < flv_count else ("hls", "m3u8")
        url = f"http://127.0.0.1:{port}/{kind}/s{i}.{suffix}"
        out[ScheduleId(f"stream-{i}")] = HealthCheck(url=url, interval=interval, stall_after=3 * interval)
    return out


@dataclass
class Round:
    idle_wall: float
    idle_cpu: float
    wall: float
    cpu: float
    requests: int
    errors: int
    stalls: int
    verdicts: dict[str, int]

    @property
    def share(self) -> float:
        return self.cpu / self.wall - self.idle_cpu / self.idle_wall


async def watch(port: int, args: argparse.Namespace) -> Round:
    """One round: idle, then the monitor over ``args.seconds`` after one interval of warm-up."""
    idle_wall, idle_cpu = await idle(args.seconds)
    started = time.time()
    stalls: list[ScheduleId] = []
    probes = ProbeCount()
    monitor = HealthMonitor(
        relaying_since=lambda _sid, _now: started - 60, on_stall=lambda sid, _: stalls.append(sid), events=probes
    )
    monitor.set_targets(checks(port, args.streams, args.flv, args.interval))
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))
    await idle(args.interval)  # warm-up: connections, first baselines
    wall, cpu = await idle(args.seconds)
    stop.set()
    await task
    verdicts: dict[str, int] = {}
    for status in monitor.statuses().values():
        verdicts[status.health.value] = verdicts.get(status.health.value, 0) + 1
    return Round(idle_wall, idle_cpu, wall, cpu, 0, probes.errors, len(stalls), verdicts)


async def no_load(store: object, stop: asyncio.Event) -> None:
    """``bench/callbacks.py --background`` baseline: nothing but waiting, for a like-for-like p99."""
    del store
    await stop.wait()


async def monitor_load(store: object, stop: asyncio.Event, streams: int = 500, interval: float = 5.0) -> None:
    """``bench/callbacks.py --background`` load: the monitor over ``streams`` HLS checks until ``stop``.

    The playback server's start (a child's imports) and stop are waited for on a thread, never on the loop that
    the callback bench is timing."""
    del store  # the callback bench hands its store to every background load; the monitor needs none
    proc, port = await asyncio.to_thread(start_server)
    started = time.time()
    monitor = HealthMonitor(relaying_since=lambda _sid, _now: started - 60, on_stall=lambda _sid, _since: None)
    monitor.set_targets(checks(port, streams, 0, interval))
    try:
        await monitor.run(stop)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        await asyncio.to_thread(proc.wait, 10)


async def main(args: argparse.Namespace) -> int:
    proc, port = start_server()
    rounds: list[Round] = []
    try:
        for number in range(1, args.rounds + 1):
            before = server_requests(proc)
            found = await watch(port, args)
            found.requests = server_requests(proc) - before
            rounds.append(found)
            rate = found.requests / (found.wall + args.interval)
            print(
                f"round {number}: monitor {found.share:.2%} of one core above the idle baseline "
                f"({found.idle_cpu / found.idle_wall:.2%}); ~{rate:.0f} probes/s, "
                f"~{found.cpu / max(rate * found.wall, 1) * 1e6:.0f} µs CPU per probe; probe errors {found.errors}; "
                f"verdicts {found.verdicts}; stalls reported: {found.stalls}",
                flush=True,
            )
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)
    best = min(rounds, key=lambda r: r.share)
    stalls = sum(r.stalls for r in rounds)
    print(f"streams: {args.streams} ({args.flv} HTTP-FLV), interval {args.interval:g} s, {args.seconds:g} s per phase")
    print(f"best round: {best.share:.2%} of one core (target <= {TARGET_SHARE:.0%}); stalls reported: {stalls}")
    return 0 if best.share <= TARGET_SHARE and stalls == 0 else 1


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flv", type=int, default=0, help="how many of the streams are HTTP-FLV")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    if arguments.serve:
        asyncio.run(serve())
    else:
        sys.exit(asyncio.run(main(arguments)))
