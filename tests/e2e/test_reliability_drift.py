"""Reliability under drift: the platform changed behind relayd's back.

A task deleted by hand (no callback) is noticed on the next resync and re-created; a task disabled by hand is
continued; a task someone else created on one of relayd's destinations is reported once and never touched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from relayd.ids import SegmentKey
from tests.e2e import invariants as inv
from tests.e2e.conftest import Monitor, timing_of
from tests.e2e.harness import live_schedule, running_daemon, settings_for, wait_for
from tests.integration.conftest import RawClient

pytestmark = pytest.mark.slow

CAP = 30


async def _foreign_task(emu: Any, dst: str, end: int) -> str:
    """A task created by another tool (no relayd Title) pushing to ``dst``."""
    async with aiohttp.ClientSession() as session:
        client = RawClient(session, emu.url, emu.config.access_key, emu.config.secret_key)
        body = {"Title": "manual", "Type": 0, "SrcAddr": "rtmp://pull.test/other", "DstAddr": dst}
        reply = await client.call("CreatePullToPushTask", {**body, "StartTime": int(time.time()), "EndTime": end})
    assert reply.error is None, reply.body
    return str(reply.result["TaskId"])


async def test_drift_is_repaired_and_foreign_tasks_are_reported_never_touched(
    emulator: Any, tmp_path: Path, log_lines: Callable[[], list[str]]
) -> None:
    emu = await emulator(max_task_seconds=CAP, admin=True, callback_retry_delay_s=0.2)
    now = int(time.time())
    (tmp_path / "schedules").mkdir()
    ids = ["deleted", "disabled", "shared", "calm"]
    (tmp_path / "schedules" / "drift.toml").write_text("".join(live_schedule(s, now - 40, now + 20) for s in ids))
    foreign = await _foreign_task(emu, "rtmp://push.test/live/shared", now + 25)
    settings = settings_for(emu, tmp_path, max_task_seconds=CAP, resync_interval=2)
    async with running_daemon(settings) as daemon:
        monitor = Monitor(emu, daemon, timing_of(daemon), budget_s=10, grace_s=4)  # resync every 2 s
        async with monitor.running():
            gone, off = daemon.store.segment(SegmentKey("deleted.1")), daemon.store.segment(SegmentKey("disabled.1"))
            assert gone is not None and off is not None and gone.task_id and off.task_id
            calm_before = {r.key: r.task_id for r in daemon.store.segments("calm")}
            emu.delete_task_behind_back(gone.task_id)
            emu.disable_task_behind_back(off.task_id)

            def repaired() -> bool:
                live = {t["Title"]: t for t in emu.tasks()}
                return live.get(gone.title, {}).get("TaskStatus") == 2 and live[off.title]["TaskStatus"] == 2

            await wait_for(repaired, 15, what="deleted task re-created and disabled task continued")
            await wait_for(lambda: monitor.checks > 8, 10, what="a few more invariant checks")
        restarts = await daemon.store.events(kind="restart", limit=100)
        creates = await daemon.store.events(kind="create", limit=100)
        calm_after = {r.key: r.task_id for r in daemon.store.segments("calm")}
        touched_foreign = [e for e in await daemon.store.events(limit=1000) if e.task_id == foreign]
    assert monitor.violations == []
    recreated = daemon.store.segment(SegmentKey("deleted.1"))
    assert recreated is not None and recreated.task_id != gone.task_id
    assert [e.data.get("restart") for e in reversed(creates) if e.segment_key == "deleted.1"] == [False, True]
    assert [e.data["action"] for e in restarts if e.segment_key == "disabled.1"] == ["continue"]
    assert calm_after == calm_before  # drift elsewhere left the calm schedule alone
    # The foreign task: still there, never updated or deleted, reported exactly once.
    history = {t["TaskId"]: t for t in emu.history()}
    assert history[foreign]["DeletedAt"] is None and history[foreign]["Active"][0][1] is None
    assert emu.stats()["requests"].get("UpdatePullToPushTask", 0) == 0 and touched_foreign == []
    reports = [line for line in log_lines() if '"foreign_task_on_destination"' in line and foreign in line]
    assert len(reports) == 1
    assert inv.check_handoffs(emu.history()).violations == []  # foreign overlaps are not relayd's
