"""Reliability under poison callbacks: bodies that once broke the store's group commit or answered 500 — a lone UTF-16
surrogate, JSON nested 20,000 deep, ``"Time": 1`` followed by 4,000 zeros — posted back to back from one valid
callback URL, while legitimate callbacks to other segments flow and the emulator keeps relaying.

Asserted: every poison body gets 400, never a 5xx; every legitimate callback gets 200 and is recorded once; no store
write fails, no reconcile pass crashes, no loop dies; ``/readyz`` answers 200 throughout; the plan stays exact.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from relayd.daemon import Daemon
from relayd.ids import SegmentKey
from relayd.web.signing import callback_url
from tests.e2e import invariants as inv
from tests.e2e.conftest import Monitor, timing_of
from tests.e2e.harness import live_schedule, running_daemon, settings_for, wait_for, write_schedules

pytestmark = pytest.mark.slow

CAP = 30
LEGIT = ["clean1", "clean2", "clean3"]
POISON = [
    b'{"TaskId": "\\udcff", "EventType": "start"}',
    b"[" * 20_000 + b"]" * 20_000,
    b'{"TaskId": "x", "EventType": "start", "Time": 1' + b"0" * 4000 + b"}",
]
ROUNDS = 400
BAD_LOG_EVENTS = ("store_write_failed", "store_record_failed", "reconcile_crashed", "task_crashed", "task_ended_early")


def _url(daemon: Daemon, key: str) -> str:
    secret = str(daemon.store.meta("callback_secret")).encode()
    return callback_url(f"http://127.0.0.1:{daemon.port}", secret, SegmentKey(key))


async def _poison(http: aiohttp.ClientSession, url: str, statuses: Counter[int]) -> None:
    for n in range(ROUNDS):
        body = POISON[n % len(POISON)]
        async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
            statuses[response.status] += 1


async def _legit(http: aiohttp.ClientSession, daemon: Daemon, stop: asyncio.Event, sent: list[str]) -> Counter[int]:
    statuses: Counter[int] = Counter()
    n = 0
    while not stop.is_set():
        sid = LEGIT[n % len(LEGIT)]
        record = daemon.store.segment(SegmentKey(f"{sid}.0"))
        assert record is not None and record.task_id
        event_id = f"legit-{n}"
        body = {"TaskId": record.task_id, "EventType": "start", "Time": int(time.time()), "EventId": event_id}
        async with http.post(_url(daemon, f"{sid}.0"), json=body) as response:
            statuses[response.status] += 1
            if response.status == 200:
                sent.append(event_id)
        n += 1
        await asyncio.sleep(0.01)  # a pace for the legitimate sender, not synchronisation
    return statuses


async def _readiness(http: aiohttp.ClientSession, daemon: Daemon, stop: asyncio.Event) -> Counter[int]:
    statuses: Counter[int] = Counter()
    while not stop.is_set():
        async with http.get(f"http://127.0.0.1:{daemon.port}/readyz") as response:
            statuses[response.status] += 1
        await asyncio.sleep(0.1)  # a sampling period, not synchronisation
    return statuses


async def test_poison_callbacks_cost_nothing(emulator: Any, tmp_path: Path, log_lines: Callable[[], list[str]]) -> None:
    emu = await emulator(max_task_seconds=CAP, admin=True, callback_retry_delay_s=0.2)
    now = int(time.time())
    write_schedules(tmp_path, "".join(live_schedule(sid, now - 5, now + 55) for sid in ["victim", *LEGIT]))
    settings = settings_for(emu, tmp_path, max_task_seconds=CAP, resync_interval=3)
    async with running_daemon(settings) as daemon:
        monitor = Monitor(emu, daemon, timing_of(daemon), budget_s=15)
        poison: Counter[int] = Counter()
        sent: list[str] = []
        stop = asyncio.Event()
        async with monitor.running(), aiohttp.ClientSession() as http:
            legit = asyncio.create_task(_legit(http, daemon, stop, sent))
            ready = asyncio.create_task(_readiness(http, daemon, stop))
            await asyncio.gather(*(_poison(http, _url(daemon, "victim.0"), poison) for _ in range(4)))
            stop.set()
            legit_statuses, ready_statuses = await legit, await ready
            await wait_for(lambda: daemon.store.healthy, 5, what="store healthy")
        recorded = await daemon.store.events(kind="callback", limit=100_000)
        passes = daemon.engine.passes
    assert poison == Counter({400: 4 * ROUNDS})
    assert set(legit_statuses) == {200} and legit_statuses[200] >= 20  # they kept flowing throughout
    assert set(ready_statuses) == {200} and ready_statuses[200] > 5
    ids = Counter(str(e.data.get("event_id")) for e in recorded)
    assert [i for i in sent if ids[i] != 1] == []  # every legitimate callback recorded exactly once
    assert [str(v) for v in monitor.violations] == []
    assert any('"event": "relayd_ready"' in line for line in log_lines())  # the log is captured
    bad = [line for line in log_lines() if any(f'"event": "{name}"' in line for name in BAD_LOG_EVENTS)]
    assert bad == []
    assert passes > len(LEGIT)
    assert not [json.loads(line) for line in log_lines() if '"http_status": 500' in line]
    assert inv.check_exact_plan(emu.tasks(), daemon.engine.schedules.values(), time.time(), timing_of(daemon)) == []
