"""The timeline's full read on a large installation: shared by concurrent readers, and never one long stretch of the
loop (callbacks are answered between its slices). Also: the benchmarks' stand-in daemon view serves these reads."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from relayd.store import SegmentState
from relayd.web.views import DaemonView
from tests.integration.test_web_support import NOW, TOKEN, Harness, open_store, segment, start_harness

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SCHEDULES = 1500
STRETCH_S = 0.060
"""Far above one slice (2 ms) plus one schedule's encoding, far below a whole rendering (~200 ms here)."""


@pytest.fixture
async def big(tmp_path: Path) -> AsyncIterator[Harness]:
    store = await open_store(tmp_path)
    await store.put_many(
        segment(f"s{i:04d}", k, NOW + k * 3600, NOW + (k + 1) * 3600, state=SegmentState.SCHEDULED)
        for i in range(SCHEDULES)
        for k in range(2)
    )
    harness = await start_harness(store)
    yield harness
    await harness.close()


async def read(h: Harness) -> bytes:
    async with h.session.get(h.url("/v1/schedules?segments=1"), headers=AUTH) as r:
        assert r.status == 200
        return await r.read()


async def worst_stretch_while(work: Any) -> tuple[float, Any]:
    """The longest the loop went without running a 1 ms ticker while ``work`` ran, and its result."""
    worst, done = 0.0, asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst, last = max(worst, now - last), now

    tick = asyncio.create_task(ticker())
    try:
        result = await work
    finally:
        done.set()
        await tick
    return worst, result


async def test_ten_concurrent_full_reads_get_one_answer_without_holding_the_loop(big: Harness) -> None:
    stretches = []
    for n in range(3):  # a fresh rendering each time: a segment changes in between
        await big.store.put(segment("s0000", 0, NOW, NOW + 3600 + n, state=SegmentState.SCHEDULED))
        worst, bodies = await worst_stretch_while(asyncio.gather(*(read(big) for _ in range(10))))
        assert len(set(bodies)) == 1
        stretches.append(worst)
    listed = json.loads(bodies[0])
    assert len(listed["schedules"]) == SCHEDULES
    assert all(len(s["segments"]) == 2 for s in listed["schedules"])
    assert listed["schedules"][0]["segments"][0]["window"]["end_unix"] == int(NOW) + 3600 + 2  # the last change
    # One stretch is OS scheduling noise on a loaded machine; a rendering that holds the loop does it every time.
    assert min(stretches) < STRETCH_S, stretches


def test_the_benchmarks_daemon_view_has_everything_the_status_api_reads() -> None:
    from bench.callbacks import BenchView  # noqa: PLC0415

    wanted = {name for name in dir(DaemonView) if not name.startswith("_")}
    assert wanted - set(dir(BenchView)) == set()


async def test_the_benchmarks_daemon_view_serves_the_timeline(tmp_path: Path) -> None:
    from bench.callbacks import BenchView  # noqa: PLC0415

    store = await open_store(tmp_path)
    await store.put(segment("a", 0, NOW, NOW + 60, state=SegmentState.RUNNING))
    h = await start_harness(store, view=BenchView(), started=lambda: True)  # type: ignore[arg-type]  # a stand-in
    try:
        listed: dict[str, Any] = json.loads(await read(h))
    finally:
        await h.close()
    assert [s["id"] for s in listed["schedules"]] == ["a"]
