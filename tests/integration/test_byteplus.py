"""BytePlus MediaLive through the ``platform = "byteplus"`` preset: the real settings loader and signed client
against the emulator's ``byteplus`` profile (10-character Titles, Create/Update at 1 QPS, region ap-singapore-1)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from relayd.apiclient import live_client
from relayd.backoff import Backoff
from relayd.emulator import Emulator
from relayd.ids import SegmentKey, TaskId
from relayd.schedules.titles import TitleLength, title_for
from relayd.settings import load_settings
from relayd.volc import ApiError, CreateTaskRequest, LiveClient
from relayd.volc.errors import ThrottledError
from relayd.volc.pacing import ActionClass

EmulatorFactory = Callable[..., Awaitable[Emulator]]


@pytest.fixture(autouse=True)
def _no_relayd_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELAYD_CONFIG", raising=False)
    for name in ("PLATFORM", "REGION", "ENDPOINT", "SERVICE", "TITLE_LIMIT", "CREATE_UPDATE_QPS"):
        monkeypatch.delenv(f"RELAYD_{name}", raising=False)


def byteplus_client(emu: Emulator, **overrides: Any) -> LiveClient:
    """The client as the daemon builds it from settings: platform preset, endpoint pointed at the emulator."""
    settings = load_settings(
        platform="byteplus",
        endpoint=emu.url,
        access_key=emu.config.access_key,
        secret_key=emu.config.secret_key,
        **overrides,
    )
    assert settings.title_limit == 10 and settings.create_update_qps == overrides.get("create_update_qps", 1)
    return live_client(settings, backoff=Backoff(base=0.2, factor=2, cap=1.0))


def request(i: int, now: int) -> CreateTaskRequest:
    return CreateTaskRequest(
        title=title_for(SegmentKey(f"bp.{i}"), "relayd", TitleLength.SHORT),
        start_time=now + 600,
        end_time=now + 3600,
        src_addr=f"rtmp://src.example.com/live/{i}",
        dst_addr=f"rtmp://dst.example.com/live/{i}",
    )


async def test_create_list_delete_through_the_preset_without_a_throttle(emulator: EmulatorFactory) -> None:
    emu = await emulator(profile="byteplus")
    now = int(time.time())
    async with byteplus_client(emu) as client:
        assert client.endpoint == emu.url  # the explicit endpoint wins over open.byteplusapi.com
        started = time.monotonic()
        ids = await asyncio.gather(*(client.create_task(request(i, now)) for i in range(4)))
        elapsed = time.monotonic() - started
        listed = {item.title: item.task_id for item in [i async for i in client.iter_tasks()]}
        assert sorted(listed.values()) == sorted(ids)
        assert all(len(title) == 10 for title in listed)
        for task_id in ids:
            await client.delete_task(task_id)
    assert emu.tasks() == []
    assert emu.stats()["throttled"] == {}
    assert elapsed >= 3.0  # four Creates at 1 QPS: the pace held, the platform did not have to refuse


async def test_explicit_region_wins_over_the_preset(emulator: EmulatorFactory) -> None:
    emu = await emulator(profile="byteplus")
    async with byteplus_client(emu, region="cn-north-1") as client:
        error = await refused(client.create_task(request(0, int(time.time()))))
    assert error.code == "InvalidCredential" and "ap-singapore-1" in error.message


async def _create_until_done(client: LiveClient, body: CreateTaskRequest) -> TaskId:
    """As the engine does: a throttled answer proves the platform did nothing (the segment stays pending), so the
    create is made again later — here at once, the client's gate doing the pacing — for at most 60 s."""
    async with asyncio.timeout(60):
        while True:
            try:
                return await client.create_task(body)
            except ThrottledError:
                continue


async def test_a_throttled_create_slows_the_pace_and_still_creates(emulator: EmulatorFactory) -> None:
    # The client believes Create may go at 10/s; the platform says 1/s: throttled, then paced down. The client's own
    # retries may run out while the gate is still above the platform's limit (it halves once per 5 s, so that a
    # short burst of throttled answers costs little); the caller's next try then goes at the lower pace.
    emu = await emulator(profile="byteplus")
    now = int(time.time())
    async with byteplus_client(emu, create_update_qps=10) as client:
        ids = await asyncio.gather(*(_create_until_done(client, request(i, now)) for i in range(3)))
        rate = client.pacer.gate(ActionClass.CREATE).rate
    assert len(set(ids)) == 3 and len(emu.tasks()) == 3
    assert emu.stats()["throttled"]  # the platform did refuse some
    assert rate < 10  # and the gate slowed down


async def refused(call: Awaitable[Any]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await call
    return caught.value
