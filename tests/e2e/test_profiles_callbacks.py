"""A relay failure restarted through the daemon under each way a failure may show (reference Q11, §4).

* ``callback_schema=tencent`` with failures that leave the task 生效中: only the Tencent-shaped ``TaskAlarm``
  callback says the relay failed, so the restart proves relayd read that schema end to end.
* ``callback_schema=none`` with silent failures: no callback at all and the list still says 生效中; relayd must
  find the failure by the stream health check on the emulator's HLS playback of the destination.

One schedule each; the failure is cured by the first restart, and the relay must be back.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from relayd.daemon import Daemon
from relayd.emulator.server import Emulator
from relayd.health.verdict import Health
from relayd.ids import ScheduleId
from tests.e2e.harness import live_schedule, relaying_on, running_daemon, settings_for, wait_for, write_schedules

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

DST = "rtmp://push.test/live/cb"
HEALTH = 'stall_after = "4s", interval = "1s", grace = "2s"'


async def restart_events(daemon: Daemon) -> list[Any]:
    return [e for e in await daemon.store.events(kind="restart", limit=100) if e.schedule_id == "cb"]


async def fail_and_recover(emu: Emulator, daemon: Daemon, mode: str | None) -> tuple[str, list[Any]]:
    """Fail the relaying task (cured by its first restart); wait until relayd restarted it and it relays again."""
    await wait_for(lambda: relaying_on(emu, DST, left_s=30) is not None, 30, what="the relay running")
    task = relaying_on(emu, DST)
    assert task is not None
    emu.fail_task(task["TaskId"], mode=mode, repeat=0)
    await wait_for(lambda: relaying_on(emu, DST) is None, 10, what="the relay failing")
    await wait_for(lambda: restart_events(daemon), 40, what="relayd restarting the relay")
    await wait_for(lambda: relaying_on(emu, DST) is not None, 20, what="the relay back")
    return task["TaskId"], await restart_events(daemon)


async def test_a_failure_reported_by_a_tencent_shaped_callback_is_restarted(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(
        max_task_seconds=120,
        admin=True,
        quirks={"callback_schema": "tencent", "failure": "stay-callback"},
        callback_retry_delay_s=0.2,
    )
    now = time.time()
    write_schedules(tmp_path, live_schedule("cb", now - 5, now + 115, dst=DST))
    async with running_daemon(settings_for(emu, tmp_path, resync_interval=30)) as daemon:
        failed_id, restarts = await fail_and_recover(emu, daemon, mode=None)  # the quirk: 生效中 + TaskAlarm
        callbacks = await daemon.store.events(kind="callback", limit=100)
        failed = await daemon.store.events(kind="failed", limit=10)
    assert restarts and failed == []
    assert any('"TaskAlarm"' in (e.raw or "") for e in callbacks), "the Tencent-shaped alarm reached relayd"
    assert emu.stats()["requests"].get("RelaunchPullToPushTask", 0) >= 1
    back = relaying_on(emu, DST)
    assert back is not None and back["TaskId"] == failed_id, "relaunched in place"


async def test_a_silent_failure_without_callbacks_is_found_by_the_health_check(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(max_task_seconds=120, admin=True, quirks={"callback_schema": "none", "failure": "stay-silent"})
    now = time.time()
    health = f'health = {{ url = "{emu.playback_url(DST)}", {HEALTH} }}'
    write_schedules(tmp_path, live_schedule("cb", now - 5, now + 115, dst=DST, extra=health))
    async with running_daemon(settings_for(emu, tmp_path, resync_interval=30)) as daemon:
        await wait_for(lambda: relaying_on(emu, DST) is not None, 30, what="the relay running")
        await wait_for(lambda: stream_up(daemon), 30, what="the stream seen up")
        _, restarts = await fail_and_recover(emu, daemon, mode=None)  # the quirk: 生效中, no callback
        events = await daemon.store.events(limit=1000)
    assert restarts and not any(e.kind == "failed" for e in events)
    assert not any(e.kind == "callback" for e in events), "no callback was ever sent"
    assert any(e.kind == "stream_stalled" and e.schedule_id == "cb" for e in events), "found by its playback"
    assert emu.stats()["callbacks"]["events"] == 0


def stream_up(daemon: Daemon) -> bool:
    """The health check has seen the stream advance (so the stall is measured from a known-good state)."""
    status = daemon.parts.streams.monitor.status(ScheduleId("cb"))
    return status is not None and status.health is Health.UP
