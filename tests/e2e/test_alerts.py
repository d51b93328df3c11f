"""Alerts end to end: the real daemon against the emulator, a JSON webhook receiver on 127.0.0.1 as the target.

A relay that relayd cannot keep alive opens exactly one alert; a restart of relayd sends nothing twice; when the
cause is gone and the relay runs again, exactly one resolution follows. A target that hangs delays nothing else.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from relayd.store import SegmentState
from relayd.volc.models import TaskStatus
from tests.e2e.harness import live_schedule, running_daemon, settings_for, wait_for
from tests.webhooks import Receiver, webhook_receiver

pytestmark = pytest.mark.slow

TOKEN = "hook-5b1d0e93c7a24f68"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with webhook_receiver(TOKEN) as rx:
        yield rx


async def test_a_failing_relay_is_alerted_once_and_resolved_once_across_a_restart(
    emulator: Any, receiver: Receiver, tmp_path: Path
) -> None:
    emu = await emulator(max_task_seconds=120)
    now = time.time()
    (tmp_path / "schedules").mkdir()
    (tmp_path / "schedules" / "news.toml").write_text(live_schedule("news", now + 2, now + 110))
    settings = settings_for(
        emu,
        tmp_path,
        alert_urls=[receiver.url("ok"), receiver.url("hang")],
        alert_open_after=0.5,
        alert_resolve_after=0.5,
        alert_send_timeout=3,
        restart_max_attempts=1,
        failed_retry_interval=12,  # longer than the alert evaluation period (10 s): the failure is seen for sure
    )

    def segment() -> Any:
        return daemon.store.segment("news.0")

    async with running_daemon(settings) as daemon:
        await wait_for(lambda: (s := segment()) is not None and s.state == SegmentState.RUNNING, 20, what="relaying")
        # Fails again after the first two restarts (one in the budget, one slow retry), then runs: the cause is gone.
        emu.fail_task(segment().task_id, mode="disable", repeat=2)
        await wait_for(lambda: segment().state == SegmentState.FAILED, 20, what="the budget to be spent")
        await wait_for(lambda: len(receiver.titles("ok")) >= 1, 40, what="the opening (evaluated every 10 s)")
        assert "OPENED critical: segment_failing news.0" in receiver.titles("ok")[0]
        # The hanging target holds its sends for seconds; reconcile passes and callbacks go on meanwhile.
        started = time.monotonic()
        await daemon.engine.reconcile("news")
        assert time.monotonic() - started < 1.0
    async with running_daemon(settings) as daemon:
        await wait_for(lambda: bool(daemon.parts.alerts.open_alerts()), 10, what="the alert, restored")
        await wait_for(lambda: segment().state == SegmentState.RUNNING, 60, what="the slow retries to restart it")
        await wait_for(lambda: len(receiver.titles("ok")) >= 2, 40, what="the resolution")
        task = next(t for t in emu.tasks() if t["TaskId"] == segment().task_id)
        assert task["Status"] == TaskStatus.ACTIVE.value
    titles = receiver.titles("ok")
    assert len(titles) == 2, titles
    assert "RESOLVED: segment_failing news.0" in titles[1]
