"""Readiness through the real daemon: ``/readyz`` answers 503 while the first pass runs (a slow platform listing
holds it), then 200; ``relayd_owned_tasks`` has samples, including the tasks the first pass created, at READY."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from relayd.daemon import Daemon
from tests.e2e.harness import live_schedule, settings_for, wait_for, write_schedules


async def _get(http: aiohttp.ClientSession, daemon: Daemon, path: str) -> tuple[int, str]:
    async with http.get(f"http://127.0.0.1:{daemon.port}{path}") as response:
        return response.status, await response.text()


def _owned(metrics_text: str) -> dict[str, float]:
    return {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(metrics_text)
        if family.name == "relayd_owned_tasks"
        for sample in family.samples
    }


async def test_readyz_is_503_during_the_first_pass_and_owned_tasks_have_samples_at_ready(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(admin=True)
    now = int(time.time())
    write_schedules(tmp_path, live_schedule("ready", now - 10, now + 600))
    for listing in ("ListPullToPushTask", "ListPullToPushTaskV2"):
        emu.set_fault(listing, latency_ms=2500, count=1)  # the first listing is slow: the first pass waits on it
    daemon = Daemon(settings_for(emu, tmp_path, max_task_seconds=3600, resync_interval=300))
    run = asyncio.create_task(daemon.run(), name="test-daemon")
    try:
        await wait_for(lambda: daemon.port is not None or run.done(), 30, what="the web server")
        async with aiohttp.ClientSession() as http:
            status, body = await _get(http, daemon, "/readyz")
            assert not daemon.ready.is_set(), "the slow listing should still hold the first pass"
            assert status == 503 and "first reconcile pass" in body
            await wait_for(daemon.ready.is_set, 30, what="READY")
            status, _ = await _get(http, daemon, "/readyz")
            _, metrics = await _get(http, daemon, "/metrics")
    finally:
        daemon.request_stop()
        await asyncio.wait_for(run, 30)
    assert status == 200
    owned = _owned(metrics)
    assert owned.get("生效中") == 1.0, owned  # the task the first pass created, before any resync
    assert set(owned) >= {"未开始", "已结束", "停用"}  # every status has a sample
