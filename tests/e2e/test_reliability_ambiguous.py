"""Reliability under ambiguous platform answers: the platform acts, then answers badly.

A Create (or Delete, Continue, Relaunch) that the platform carried out but answered with a 500 ``InternalError``, a
504 ``InternalServiceTimeout``, a 502 with an HTML body or a malformed 200 must cost nothing: no duplicate task,
no leaked task, no segment marked ``failed``. A refused create (``InvalidParam``) is never final: once the cause
is gone the segment relays again, within ``failed_retry_interval`` or at once after a reload. A callback from a
task relayd does not know, arriving on a segment's own URL, leads to that task being adopted.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from relayd.daemon import Daemon
from relayd.ids import SegmentKey
from relayd.store import SegmentRecord, SegmentState
from relayd.volc.client import LiveClient
from relayd.volc.models import CreateTaskRequest
from relayd.volc.signer import Credentials
from relayd.web.signing import callback_url
from tests.e2e import invariants as inv
from tests.e2e.conftest import Monitor, timing_of
from tests.e2e.harness import live_schedule, owned_tasks, running_daemon, settings_for, wait_for, write_schedules

pytestmark = pytest.mark.slow

CAP = 8
SCHEDULES = 3
CREATE_ANSWERS = [
    {"answer": "error"},
    {"answer": "error", "error_code": "InternalServiceTimeout"},
    {"answer": "html"},
    {"answer": "malformed"},
]


def _fault_spent(emu: Any, action: str) -> bool:
    return not [f for f in emu.fault_listing()["faults"] if f["action"] == action and f["count"]]


class FailedWatch:
    """Every segment seen ``failed`` while the scenario ran (there must be none: the platform never refused)."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.seen: set[str] = set()

    def sample(self) -> bool:
        self.seen |= {r.key for r in self.daemon.store.segments() if r.state == SegmentState.FAILED}
        return True


async def _acted_creates(emu: Any, watch: FailedWatch) -> None:
    for answer in CREATE_ANSWERS:
        emu.set_fault("CreatePullToPushTask", acted=True, count=2, **answer)
        await wait_for(lambda: watch.sample() and _fault_spent(emu, "CreatePullToPushTask"), 40, what=str(answer))


async def _acted_restart(emu: Any, watch: FailedWatch, action: str, mode: str, answer: dict[str, Any]) -> None:
    """Break one relaying task so that relayd answers it with ``action``, which is carried out and answered badly."""
    now = time.time()
    lasting = {r.task_id for r in watch.daemon.store.segments() if r.start < now and r.end > now + 5}
    active = [t for t in owned_tasks(emu) if t["TaskStatus"] == 2 and not t["Failed"] and t["TaskId"] in lasting]
    assert active, owned_tasks(emu)
    emu.set_fault(action, acted=True, count=1, **answer)
    emu.fail_task(active[0]["TaskId"], mode=mode, repeat=0)
    await wait_for(lambda: watch.sample() and _fault_spent(emu, action), 20, what=f"{action} answered badly")


async def test_ambiguous_answers_cost_nothing(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(max_task_seconds=CAP, admin=True, callback_retry_delay_s=0.2, seed=11)
    now = int(time.time())
    start, end = now - 12, now + 50  # a window lasts at least 60 s: most of its segments are still to be created
    write_schedules(tmp_path, "".join(live_schedule(f"amb{n}", start + n, end + n) for n in range(SCHEDULES)))
    settings = settings_for(emu, tmp_path, max_task_seconds=CAP, prepare_ahead=6, resync_interval=10)
    async with running_daemon(settings) as daemon:
        watch = FailedWatch(daemon)
        monitor = Monitor(emu, daemon, timing_of(daemon, slack=4), budget_s=20)
        async with monitor.running():
            await _acted_creates(emu, watch)
            await _acted_restart(emu, watch, "ContinuePullToPushTask", "disable", {"answer": "html"})
            timeout_504 = {"answer": "error", "error_code": "InternalServiceTimeout"}
            await _acted_restart(emu, watch, "RelaunchPullToPushTask", "stay", timeout_504)
            emu.set_fault("DeletePullToPushTask", acted=True, count=3, answer="malformed")
            await wait_for(lambda: watch.sample() and time.time() > end + SCHEDULES + 1, 70, what="the windows to end")
            await wait_for(lambda: watch.sample() and not owned_tasks(emu), 40, what="every ended task deleted")
        history = emu.history()
        planned = inv.segments_between(daemon.engine.schedules.values(), now, end + SCHEDULES, timing_of(daemon))
        assert len(planned) == SCHEDULES * 7
        responses = emu.stats()["responses"]
    assert [str(v) for v in monitor.violations] == []
    titles = Counter(t["Title"] for t in history)
    assert {t: n for t, n in titles.items() if n > 1} == {}  # no duplicate task, ever
    assert set(titles) == set(planned)  # every segment relayed
    assert not owned_tasks(emu)  # nothing leaked
    assert watch.seen == set()  # no false "failed"
    assert responses.get("acted:error", 0) >= 4 and responses.get("acted:html", 0) >= 2  # the faults did bite
    assert responses.get("acted:malformed", 0) >= 3


def _record(daemon: Daemon) -> SegmentRecord | None:
    records = daemon.store.segments()
    return records[0] if records else None


async def _refused_until_failed(emu: Any, daemon: Daemon) -> None:
    emu.set_fault("CreatePullToPushTask", error_code="InvalidParam")
    await wait_for(lambda: (r := _record(daemon)) is not None and r.state == SegmentState.FAILED, 30, what="failed")
    assert owned_tasks(emu) == []


@pytest.mark.parametrize("interval", [4, 600], ids=["slow-retry", "reload"])
async def test_a_refused_create_relays_again_once_cured(emulator: Any, tmp_path: Path, interval: int) -> None:
    emu = await emulator(max_task_seconds=120, admin=True)
    now = int(time.time())
    write_schedules(tmp_path, live_schedule("cured", now + 2, now + 110))
    emu.set_fault("CreatePullToPushTask", error_code="InvalidParam")
    settings = settings_for(emu, tmp_path, max_task_seconds=120, restart_max_attempts=2, failed_retry_interval=interval)
    async with running_daemon(settings) as daemon:
        await _refused_until_failed(emu, daemon)
        emu.clear_faults()
        cured_at = time.monotonic()
        if interval > 60:
            daemon.request_reload()  # a reload retries failed segments at once
        await wait_for(lambda: len(owned_tasks(emu)) == 1, 20, what="the cured segment relaying again")
        took = time.monotonic() - cured_at
        running = SegmentState.RUNNING
        await wait_for(lambda: (r := _record(daemon)) is not None and r.state == running, 10, what="running")
    assert took < 1.2 * min(interval, 10) + 3


async def test_a_callback_from_an_unknown_task_on_a_segment_url_gets_it_adopted(emulator: Any, tmp_path: Path) -> None:
    """A task with a segment's Title made behind relayd's back (or created by a call whose answer was lost) is
    adopted when its callback arrives, long before the next resync or the segment's own create."""
    emu = await emulator(max_task_seconds=600, admin=True, callback_retry_delay_s=0.2)
    now = int(time.time())
    start = now + 40
    write_schedules(tmp_path, live_schedule("stray", start, start + 120))
    settings = settings_for(emu, tmp_path, max_task_seconds=600, prepare_ahead=8, resync_interval=300)
    async with running_daemon(settings) as daemon:
        await wait_for(lambda: _record(daemon) is not None, 10, what="the segment remembered")
        record = _record(daemon)
        assert record is not None and record.state == SegmentState.PENDING
        secret = str(daemon.store.meta("callback_secret")).encode()
        url = callback_url(f"http://127.0.0.1:{daemon.port}", secret, SegmentKey(record.key))
        creds = Credentials(emu.config.access_key, emu.config.secret_key)
        async with LiveClient(emu.url, creds) as client:
            stray = await client.create_task(
                CreateTaskRequest(
                    title=record.title,
                    start_time=int(time.time()),
                    end_time=start + 120,
                    src_addr="rtmp://pull.test/live/stray",
                    dst_addr="rtmp://push.test/live/stray",
                    callback_url=url,
                )
            )
        await wait_for(
            lambda: (r := _record(daemon)) is not None and r.task_id == stray, 20, what="the stray task adopted"
        )
        adopted_at = time.time()
        # Adopted tasks get the schedule's spec (an Update), and nothing else is ever created for the segment.
        await wait_for(lambda: time.time() > start - 8 + 2, 40, what="the segment's own create time to pass")
        history = emu.history()
    assert adopted_at < start - 8  # through the callback, not through the segment's own create or a resync
    assert [t["TaskId"] for t in history if t["Title"] == record.title] == [stray]
