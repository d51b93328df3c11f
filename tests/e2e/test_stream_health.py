"""Stream health end to end: the daemon watches the emulator's HLS playback of its destinations.

A silent failure (the task stays 生效中, no callback, the playback stops advancing) is found by the health check
and restarted by the usual path; the playback advances again within ``stall_after`` + 10 s of the stall. The
stall shows everywhere an operator looks: the event log (``stream_stalled``), ``/v1/schedules`` (``stalled since
…``, then ``up``) and ``relayd_stream_up`` (0, then 1). A health URL that answers 404 is the probe's problem:
the stream reads ``unknown`` and nothing is restarted.

A sampler polls the playlist, ``/v1/schedules`` and ``/metrics`` every 0.1 s and keeps what it saw, so the test
asserts on the sequence of states rather than on a moment it might miss.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import m3u8
import pytest
from prometheus_client.parser import text_string_to_metric_families

from relayd.daemon import Daemon
from relayd.emulator.server import Emulator
from relayd.ids import SegmentKey
from relayd.store import SegmentState
from tests.e2e.harness import in_background, live_schedule, running_daemon, settings_for, wait_for, write_schedules

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

STALL_AFTER = 5.0
INTERVAL = 2.0
HEALTH = f'stall_after = "{STALL_AFTER:g}s", interval = "{INTERVAL:g}s", grace = "2s"'


def dst(sid: str) -> str:
    return f"rtmp://push.test/live/{sid}"


@dataclass
class Sample:
    at: float
    sequence: int | None  # the playlist's media sequence of the watched stream, None if it did not answer
    health: dict[str, str]  # schedule id -> the health text /v1/schedules shows
    up: dict[str, float]  # schedule id -> relayd_stream_up
    probe_errors: dict[str, float] = field(default_factory=dict)  # schedule id -> probe errors counted


@dataclass
class Sampler:
    """What the playback, the status API and the metrics said, every 0.1 s (a sampling period, not a wait)."""

    daemon: Daemon
    playlist_url: str
    samples: list[Sample] = field(default_factory=list)

    async def _get(self, http: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, str]:
        async with http.get(url, headers=headers) as response:
            return response.status, await response.text()

    async def sample(self, http: aiohttp.ClientSession) -> Sample:
        token = (self.daemon.settings.state_path.parent / "api_token").read_text().strip()
        base, auth = f"http://127.0.0.1:{self.daemon.port}", {"Authorization": f"Bearer {token}"}
        status, playlist = await self._get(http, self.playlist_url)
        _, listing = await self._get(http, f"{base}/v1/schedules", **auth)
        _, metrics = await self._get(http, f"{base}/metrics", **auth)
        sequence = m3u8.loads(playlist).media_sequence if status == 200 else None
        schedules = json.loads(listing)["schedules"]
        health = {s["id"]: s["health"]["text"] for s in schedules if s.get("health")}
        sample = Sample(time.time(), sequence, health, {})
        for family in text_string_to_metric_families(metrics):
            for metric in family.samples:
                if metric.name == "relayd_stream_up":
                    sample.up[metric.labels["schedule"]] = metric.value
                elif metric.name == "relayd_stream_probe_errors_total":
                    sid = metric.labels["schedule"]
                    sample.probe_errors[sid] = sample.probe_errors.get(sid, 0.0) + metric.value
        return sample

    async def _loop(self) -> None:
        async with aiohttp.ClientSession() as http:
            while True:
                self.samples.append(await self.sample(http))
                await asyncio.sleep(0.1)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Sampler]:
        async with in_background(self._loop(), "health-sampler"):
            yield self

    def last(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    def health(self, sid: str) -> str:
        last = self.last()
        return "" if last is None else last.health.get(sid, "")

    def up_values(self, sid: str) -> list[float]:
        """The distinct successive values of ``relayd_stream_up`` for ``sid`` (absent samples skipped)."""
        values: list[float] = []
        for sample in self.samples:
            value = sample.up.get(sid)
            if value is not None and (not values or values[-1] != value):
                values.append(value)
        return values


async def playlist_sequence(url: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200, url
        return int(m3u8.loads(await response.text()).media_sequence)


def relaying_task(emu: Emulator, sid: str) -> dict[str, Any] | None:
    return next((t for t in emu.tasks() if t["DstAddr"] == dst(sid) and t["Status"] == "生效中"), None)


def running(daemon: Daemon, sid: str) -> bool:
    record = daemon.store.segment(SegmentKey(f"{sid}.0"))
    return record is not None and record.state == SegmentState.RUNNING


def advanced_after(samples: list[Sample], at: float, frozen: int) -> float | None:
    """The first instant after ``at`` the playlist's media sequence was past ``frozen``."""
    return next((s.at for s in samples if s.at > at and s.sequence is not None and s.sequence > frozen), None)


async def test_a_silent_failure_is_found_by_its_playback_and_restarted(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(max_task_seconds=120, admin=True)
    now = time.time()
    watched = emu.playback_url(dst("news"))
    nowhere = emu.playback_url("rtmp://push.test/live/nobody-pushes-this")  # 404: a probe error, not a stall
    write_schedules(
        tmp_path,
        live_schedule("news", now - 5, now + 110, extra=f'health = {{ url = "{watched}", {HEALTH} }}')
        + live_schedule("deaf", now - 5, now + 110, extra=f'health = {{ url = "{nowhere}", {HEALTH} }}'),
    )
    async with running_daemon(settings_for(emu, tmp_path)) as daemon:
        await wait_for(lambda: running(daemon, "news") and running(daemon, "deaf"), 30, what="both relaying")
        async with Sampler(daemon, watched).running() as sampler:
            await wait_for(lambda: sampler.health("news") == "up", 30, what="the stream up")
            task = relaying_task(emu, "news")
            assert task is not None
            stalled_at = time.time()
            emu.fail_task(task["TaskId"], mode="silent", repeat=0)  # the first restart cures it
            frozen = await playlist_sequence(watched)  # where it stopped: the samples so far may be a segment behind
            await wait_for(
                lambda: advanced_after(sampler.samples, stalled_at, frozen) is not None,
                STALL_AFTER + 30,
                what="the playback to advance again",
            )
            await wait_for(lambda: sampler.health("news") == "up", 30, what="the stream up again")
            await wait_for(lambda: sampler.up_values("news")[-1:] == [1.0], 30, what="relayd_stream_up 1 again")
        events = await daemon.store.events(limit=10_000)

    resumed = advanced_after(sampler.samples, stalled_at, frozen)
    assert resumed is not None
    assert resumed - stalled_at <= STALL_AFTER + 10, resumed - stalled_at
    stalls = [e for e in events if e.kind == "stream_stalled"]
    assert [e.schedule_id for e in stalls] == ["news"], stalls
    assert any(e.kind == "restart" and e.schedule_id == "news" for e in events)
    texts = [s.health.get("news", "") for s in sampler.samples]
    first_stalled = next(i for i, text in enumerate(texts) if text.startswith("stalled since "))
    assert "up" in texts[first_stalled:], "up again after the stall"
    up = sampler.up_values("news")  # 0 while unknown (not probed yet), then 1, 0 while stalled, 1 again
    assert 1.0 in up and up[up.index(1.0) :][:3] == [1.0, 0.0, 1.0], up
    assert emu.stats()["requests"].get("RelaunchPullToPushTask", 0) >= 1

    # The 404 URL: unknown all along, its errors counted, never stalled, never restarted.
    deaf_texts = {s.health.get("deaf", "") for s in sampler.samples}
    # Paused only before its relay is seen running (the first sample can come before the first pass settles).
    assert all(text.startswith(("unknown: ", "paused: ")) for text in deaf_texts), deaf_texts
    assert not any(text.startswith("stalled") or text == "up" for text in deaf_texts), deaf_texts
    assert sampler.health("deaf").startswith("unknown: probe error http_status: HTTP 404"), sampler.health("deaf")
    assert sampler.samples[-1].probe_errors.get("deaf", 0) >= 3
    assert not any(e.schedule_id == "deaf" and e.kind in ("restart", "stream_stalled") for e in events)
    deaf = next(t for t in emu.history() if t["DstAddr"] == dst("deaf"))
    assert len(deaf["Active"]) == 1 and deaf["Active"][0][1] is None, "the deaf relay was never touched"
