"""Store write benchmark: durable events/s with group commit, bulk segment puts, and open time.

Run: ``.venv/bin/python bench/store_writes.py [--events N] [--writers W] [--segments S]``

Baselines measured in the same run, so the ratios mean something on any machine:
- ``naive``: one sqlite transaction per event on the calling thread (what a store without batching does; it
  also blocks the loop, which the Store never does);
- ``loop``: the same writers awaiting futures that resolve immediately (the event loop's own cost, an upper bound).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path

import structlog

from relayd.ids import ScheduleId, SegmentKey
from relayd.store import Event, SegmentRecord, Store
from relayd.store.schema import connect, event_row, migrate
from relayd.store.sql import SQLITE


def segment(i: int) -> SegmentRecord:
    return SegmentRecord(
        key=SegmentKey(f"k{i:06d}"), schedule_id=ScheduleId(f"s{i % 500}"), index=i, occurrence=None,
        start=1_700_000_000 + i * 604_800, end=1_700_000_000 + (i + 1) * 604_800, title=f"rd{i:06d}", group=None,
        spec_hash="sha256:0123456789abcdef",
        body={"Title": f"rd{i:06d}", "SrcAddrS": ["rtmp://src.example.com/live/a"], "DstAddr": "rtmp://dst/x/y",
              "StartTime": 1_700_000_000 + i * 604_800, "EndTime": 1_700_000_000 + (i + 1) * 604_800,
              "CallbackURL": f"https://relayd.example.com/v1/callbacks/k{i:06d}/0123456789abcdef"},
    )  # fmt: skip


def event(i: int) -> Event:
    raw = f'{{"TaskId":"{i:032x}","Status":"running","Time":1700000000}}'
    return Event(ts=time.time(), kind="callback", segment_key=SegmentKey(f"k{i % 1000:06d}"),
                 dedupe_key=f"cb-{i}", data={"status": "running"}, raw=raw)  # fmt: skip


async def events_per_second(path: Path, total: int, writers: int, synchronous: str) -> tuple[float, int]:
    store = await Store.open(path, synchronous=synchronous)  # type: ignore[arg-type]
    per_writer = total // writers

    async def writer(w: int) -> None:
        for j in range(per_writer):
            await store.add_event(event(w * per_writer + j))

    started = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    elapsed = time.perf_counter() - started
    commits = store.commits
    await store.close()
    return per_writer * writers / elapsed, commits


async def loop_baseline(total: int, writers: int) -> float:
    loop = asyncio.get_running_loop()
    per_writer = total // writers

    async def writer() -> None:
        for _ in range(per_writer):
            future: asyncio.Future[bool] = loop.create_future()
            loop.call_soon(future.set_result, True)
            await future

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    return per_writer * writers / (time.perf_counter() - started)


def naive_baseline(path: Path, total: int) -> float:
    conn = connect(path, synchronous="NORMAL")
    migrate(conn, path)
    started = time.perf_counter()
    for i in range(total):
        conn.execute("BEGIN")
        conn.execute(SQLITE.insert_event, event_row(event(i)))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return total / elapsed


async def segments_bench(path: Path, count: int) -> dict[str, float]:
    records = [segment(i) for i in range(count)]
    store = await Store.open(path)
    started = time.perf_counter()
    await store.put_many(records)
    bulk = time.perf_counter() - started
    started = time.perf_counter()
    await asyncio.gather(*(store.put(r) for r in records))
    single = time.perf_counter() - started
    await store.close()
    started = time.perf_counter()
    store = await Store.open(path)
    opened = time.perf_counter() - started
    assert len(store.segments()) == count
    await store.close()
    return {"put_many_s": bulk, "concurrent_put_s": single, "open_s": opened}


async def main(args: argparse.Namespace) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        naive = naive_baseline(root / "naive.db", min(args.events, 5000))
        loop = await loop_baseline(args.events, args.writers)
        for mode in ("NORMAL", "FULL"):
            rate, commits = await events_per_second(root / f"ev-{mode}.db", args.events, args.writers, mode)
            print(f"add_event synchronous={mode}: {rate:,.0f} events/s with {args.writers} writers "
                  f"({args.events} events in {commits} commits); x{rate / naive:.1f} naive one-commit-per-event "
                  f"({naive:,.0f}/s); {rate / loop:.2f} of bare-loop futures ({loop:,.0f}/s)")  # fmt: skip
        seg = await segments_bench(root / "seg.db", args.segments)
        print(f"{args.segments} segments: put_many {seg['put_many_s']:.3f} s, concurrent put() "
              f"{seg['concurrent_put_s']:.3f} s, open with them on disk {seg['open_s']:.3f} s")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--writers", type=int, default=100)
    parser.add_argument("--segments", type=int, default=30_000)
    asyncio.run(main(parser.parse_args()))
