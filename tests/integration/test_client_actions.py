"""Every LiveClient action against the in-process emulator, over real sockets, signed like the platform checks.

Also: the client's pacing keeps the emulator's sliding-window counters under the platform's limits; a throttled,
faulty or hanging emulator is ridden out by the retry loop; a wrong secret is a terminal error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from relayd.backoff import Backoff
from relayd.emulator import Emulator
from relayd.ids import GroupName, TaskId
from relayd.volc import (
    ApiError,
    CreateGroupRequest,
    CreateTaskRequest,
    Credentials,
    ListGroupsRequest,
    ListTasksQuery,
    ListTasksV2Request,
    LiveClient,
    SourceType,
    Tag,
    TaskStatus,
    UpdateGroupRequest,
    UpdateTaskRequest,
    ValidationError,
    VodSrcAddr,
)

EmulatorFactory = Callable[..., Awaitable[Emulator]]


def client_for(emu: Emulator, **overrides: Any) -> LiveClient:
    creds = Credentials(emu.config.access_key, emu.config.secret_key)
    options: dict[str, Any] = {"backoff": Backoff(base=0.05, factor=2, cap=0.5), **overrides}
    return LiveClient(emu.url, creds, **options)


def live(title: str, *, start_in: int = 0, hours: int = 1, group: str | None = None) -> CreateTaskRequest:
    now = int(time.time())
    return CreateTaskRequest(
        title=title,
        start_time=now + start_in,
        end_time=now + start_in + hours * 3600,
        src_addr="rtmp://src.example.com/live/" + title,
        dst_addr="rtmp://dst.example.com/live/" + title,
        group_name=GroupName(group) if group else None,
    )


async def status_of(client: LiveClient, task_id: TaskId) -> TaskStatus:
    return {item.task_id: item.status async for item in client.iter_tasks()}[task_id]


async def test_task_lifecycle_through_every_task_action(emulator: EmulatorFactory) -> None:
    emu = await emulator()
    async with client_for(emu) as client:
        task_id = await client.create_task(live("life1"))
        assert await status_of(client, task_id) is TaskStatus.ACTIVE
        await client.stop_task(task_id, "default")
        assert await status_of(client, task_id) is TaskStatus.DISABLED
        await client.continue_task(task_id)
        assert await status_of(client, task_id) is TaskStatus.ACTIVE
        await client.relaunch_task(task_id)
        await client.stop_task(task_id)
        await client.restart_task(task_id)  # the legacy action of the seed examples
        assert await status_of(client, task_id) is TaskStatus.ACTIVE
        new_end = int(time.time()) + 7200
        update = UpdateTaskRequest.model_validate(live("life1").body() | {"TaskId": task_id, "EndTime": new_end})
        await client.update_task(update)
        [item] = [i async for i in client.iter_tasks(title="life1")]
        assert item.end_ts == new_end and item.title == "life1" and item.group_name == "default"
        await client.delete_task(task_id)
        assert [i async for i in client.iter_tasks(title="life1")] == []
        with pytest.raises(ApiError) as caught:
            await client.delete_task(task_id)
    assert caught.value.not_found and caught.value.request_id


async def test_vod_task_and_future_start(emulator: EmulatorFactory) -> None:
    emu = await emulator()
    now = int(time.time())
    request = CreateTaskRequest(
        type=SourceType.VOD,
        title="vod1",
        start_time=now + 600,
        end_time=now + 4200,
        cycle_mode=-1,
        vod_src_addrs=[VodSrcAddr(src_addr="https://v.example.com/a.mp4", start_offset=65.0)],
        domain="push.example.com",
        app="live",
        stream="vod1",
    )
    async with client_for(emu) as client:
        task_id = await client.create_task(request)
        [item] = [i async for i in client.iter_tasks(title="vod1")]
    assert item.task_id == task_id and item.status is TaskStatus.PENDING and item.type == 1
    assert item.start_ts == now + 600
    assert [v.src_addr for v in item.vod_src_addrs] == ["https://v.example.com/a.mp4"]


async def test_lists_v1_v2_and_paging(emulator: EmulatorFactory) -> None:
    emu = await emulator(write_qps=0)
    async with client_for(emu, pacing=False) as client:
        await client.create_group(CreateGroupRequest(name=GroupName("grpA"), project_name="default"))
        ids = [await client.create_task(live(f"page{i}", group="grpA" if i % 2 else None)) for i in range(7)]
        v1 = await client.list_tasks(ListTasksQuery(page=1, size=5, title="PAGE"))
        v1_group = await client.list_tasks(ListTasksQuery(page=1, size=20, group_name=GroupName("grpA")))
        v2 = await client.list_tasks_v2(ListTasksV2Request(group_names=[GroupName("grpA")], page=1, size=2))
        every = [i.task_id async for i in client.iter_tasks(page_size=3)]
    assert len(v1.items) == 5 and v1.pagination.total_count == 7 and v1.pagination.page_total == 2
    assert {i.task_id for i in v1_group.items} == set(ids[1::2])
    assert v2.pagination.total_count == 3 and len(v2.items) == 2
    assert sorted(every) == sorted(ids)


async def test_group_actions(emulator: EmulatorFactory) -> None:
    emu = await emulator()
    async with client_for(emu) as client:
        await client.create_group(
            CreateGroupRequest(name=GroupName("RelayGroup001"), project_name="default", tags=[Tag(key="k", value="v")])
        )
        await client.update_group(
            UpdateGroupRequest(name=GroupName("RelayGroup001"), tags=[Tag(key="k", value="w", category="Custom")])
        )
        listed = await client.list_groups(ListGroupsRequest(page_num=1, page_size=10))
        mine = [g for g in listed.items if g.name == "RelayGroup001"]
        await client.delete_group("RelayGroup001")
        after = await client.list_groups(ListGroupsRequest(page_num=1, page_size=10))
    assert [(t.key, t.value) for t in mine[0].tags] == [("k", "w")]
    assert "RelayGroup001" not in {g.name for g in after.items}


async def test_pacing_keeps_every_window_under_the_limit(emulator: EmulatorFactory) -> None:
    emu = await emulator()
    async with client_for(emu) as client:
        ids = await asyncio.gather(*(client.create_task(live(f"pace{i}")) for i in range(12)))
        await asyncio.gather(*(client.list_tasks(ListTasksQuery(page=1, size=1)) for _ in range(18)))
    stats = emu.stats()
    assert len(set(ids)) == 12
    assert stats["max_requests_per_1s"]["write"] <= 10
    assert stats["max_requests_per_1s"]["list"] <= 15
    assert sum(stats["throttled"].values()) == 0


async def test_throttling_without_pacing_is_retried_to_success(emulator: EmulatorFactory) -> None:
    emu = await emulator(write_qps=3)
    async with client_for(emu) as client:
        ids = await asyncio.gather(*(client.create_task(live(f"thr{i}")) for i in range(3)))
    # The paced creates fill the 1 s window, so the last stop is admitted only ~1 s later. Full-jitter delays
    # (base 0.05 s, cap 0.5 s) over 10 attempts sum to under 1 s often enough to fail now and then; 30 attempts
    # span ~7 s on average.
    async with client_for(emu, pacing=False, max_attempts=30) as client:
        await asyncio.gather(*(client.stop_task(task_id) for task_id in ids))
        statuses = {i.task_id: i.status async for i in client.iter_tasks()}
    assert sum(emu.stats()["throttled"].values()) > 0
    assert all(statuses[t] is TaskStatus.DISABLED for t in ids)


async def test_injected_errors_and_hangs_are_ridden_out(emulator: EmulatorFactory) -> None:
    emu = await emulator(admin=True)
    calls: list[tuple[str, str, int]] = []

    class Observer:
        def on_call(self, action: str, outcome: str, seconds: float, attempt: int) -> None:
            calls.append((action, outcome, attempt))

    emu.set_fault("ListPullToPushTaskV2", error_code="InternalError", count=2)
    async with client_for(emu, observer=Observer(), timeout_s=0.3) as client:
        assert [i async for i in client.iter_tasks()] == []
        emu.set_fault("ListPullToPushGroup", hang=True, count=1)
        groups = await client.list_groups(ListGroupsRequest())
    assert [c[1:] for c in calls[:3]] == [("InternalError", 1), ("InternalError", 2), ("ok", 3)]
    assert calls[3:] == [("ListPullToPushGroup", "Timeout", 1), ("ListPullToPushGroup", "ok", 2)]
    assert "default" in {g.name for g in groups.items}


async def test_wrong_secret_is_terminal(emulator: EmulatorFactory) -> None:
    emu = await emulator()
    async with LiveClient(emu.url, Credentials(emu.config.access_key, "wrong")) as client:
        with pytest.raises(ApiError) as caught:
            await client.list_tasks(ListTasksQuery())
    assert caught.value.code == "SignatureDoesNotMatch" and not caught.value.retryable
    assert emu.stats()["requests"].get("ListPullToPushTask") == 1


async def test_the_emulator_agrees_with_local_validation(emulator: EmulatorFactory) -> None:
    emu = await emulator()
    body = live("ok1").body() | {"Title": "not valid!"}
    async with client_for(emu) as client:
        with pytest.raises(ValidationError):
            await client.call("CreatePullToPushTask", body=body)
        with pytest.raises(ApiError) as caught:
            await client.call("CreatePullToPushTask", body=body, validate=False)
    assert caught.value.code.startswith("InvalidParam") and "Title" in caught.value.message
