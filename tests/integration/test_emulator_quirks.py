"""Each quirk's lenient and strict answer, over real sockets, through relayd's real signed client.

Every test runs the same calls against the lenient answer (the platform as the emulator always assumed it) and
against the strict one, and checks what a caller sees on the wire: accepted, or which code, HTTP status and message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from relayd.backoff import Backoff
from relayd.emulator import Emulator
from relayd.ids import TaskId
from relayd.volc import ApiError, CreateTaskRequest, Credentials, ListTasksV2Request, LiveClient, UpdateTaskRequest

EmulatorFactory = Callable[..., Awaitable[Emulator]]
DST = "rtmp://dst.example.com/live/main?token=a"


def client_for(emu: Emulator, **overrides: Any) -> LiveClient:
    creds = Credentials(emu.config.access_key, emu.config.secret_key, region=emu.state.quirks.region.value)
    options: dict[str, Any] = {"backoff": Backoff(base=0.05, factor=2, cap=0.2), "max_attempts": 1, **overrides}
    return LiveClient(emu.url, creds, **options)


def task(start: int, end: int, *, dst: str = DST, title: str = "rdquirk", **extra: Any) -> CreateTaskRequest:
    return CreateTaskRequest(
        title=title, start_time=start, end_time=end, src_addr="rtmp://src.example.com/live/a", dst_addr=dst, **extra
    )


def update(task_id: TaskId, request: CreateTaskRequest) -> UpdateTaskRequest:
    return UpdateTaskRequest(task_id=task_id, **request.model_dump())


async def refused(call: Awaitable[Any]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await call
    return caught.value


@pytest.mark.parametrize("token", ["?token=b", ""])
async def test_destination_shared_accepts_overlap(emulator: EmulatorFactory, token: str) -> None:
    emu = await emulator()
    now = int(time.time())
    async with client_for(emu) as client:
        await client.create_task(task(now + 60, now + 3600))
        await client.create_task(task(now + 1800, now + 7200, dst="rtmp://DST.example.com/live/main" + token))
    assert len(emu.tasks()) == 2


async def test_destination_exclusive_refuses_overlap_and_touching(emulator: EmulatorFactory) -> None:
    emu = await emulator(quirks={"destination": "exclusive"})
    now = int(time.time())
    async with client_for(emu) as client:
        first = await client.create_task(task(now + 60, now + 3600))
        overlap = await refused(
            client.create_task(task(now + 1800, now + 7200, dst="rtmps://dst.example.com/live/main"))
        )
        touching = await refused(client.create_task(task(now + 3600, now + 7200)))
        await client.create_task(task(now + 3601, now + 7200))  # a 1 s gap is fine
        await client.create_task(task(now + 60, now + 3600, dst="rtmp://dst.example.com/live/other"))
    for error in (overlap, touching):
        assert (error.code, error.http_status) == ("InvalidParam", 400)
        assert error.message.startswith("DstAddr: ") and first in error.message


async def test_destination_exclusive_touching_ok(emulator: EmulatorFactory) -> None:
    emu = await emulator(quirks={"destination": "exclusive-touching-ok"})
    now = int(time.time())
    async with client_for(emu) as client:
        first = await client.create_task(task(now + 60, now + 3600))
        await client.create_task(task(now + 3600, now + 7200))  # touching: accepted
        error = await refused(client.create_task(task(now + 3599, now + 5000)))
        # An Update of a task into its neighbour's window is refused too; the task's own window is not a conflict.
        await client.update_task(update(first, task(now + 120, now + 3600)))
        moved = await refused(client.update_task(update(first, task(now + 120, now + 3700))))
    assert error.code == "InvalidParam" and moved.code == "InvalidParam" and "DstAddr" in moved.message


async def test_destination_conflict_ends_with_the_other_task(emulator: EmulatorFactory) -> None:
    emu = await emulator(quirks={"destination": "exclusive"})
    now = int(time.time())
    async with client_for(emu) as client:
        first = await client.create_task(task(now + 60, now + 3600))
        await client.stop_task(first)  # a 停用 task still holds its destination
        await refused(client.create_task(task(now + 600, now + 1200)))
        await client.delete_task(first)
        await client.create_task(task(now + 600, now + 1200))


@pytest.mark.parametrize(("answer", "accepted"), [("allowed", True), ("refused", False)])
async def test_update_running(emulator: EmulatorFactory, answer: str, accepted: bool) -> None:
    emu = await emulator(quirks={"update_running": answer})
    now = int(time.time())
    async with client_for(emu) as client:
        running = await client.create_task(task(now - 5, now + 3600))
        pending = await client.create_task(task(now + 600, now + 3600, dst="rtmp://dst.example.com/live/x"))
        await client.update_task(update(pending, task(now + 700, now + 3600, dst="rtmp://dst.example.com/live/x")))
        call = client.update_task(update(running, task(now - 5, now + 1800)))
        if accepted:
            await call
        else:
            error = await refused(call)
            assert (error.code, error.http_status) == ("InvalidParam", 400)
            assert "生效中" in error.message and running in error.message
    ends = {t["TaskId"]: t["EndTime"] for t in emu.history()}
    assert (ends[running] == now + 1800) is accepted


async def test_past_start(emulator: EmulatorFactory) -> None:
    lenient = await emulator()
    strict = await emulator(quirks={"past_start": "refused", "past_start_tolerance_s": 30})
    now = int(time.time())
    async with client_for(lenient) as client:
        await client.create_task(task(now - 600, now + 600))
    async with client_for(strict) as client:
        error = await refused(client.create_task(task(now - 600, now + 600)))
        await client.create_task(task(now - 10, now + 600))  # within the tolerance
        later = await client.create_task(task(now + 60, now + 600, dst="rtmp://dst.example.com/live/y"))
        moved = await refused(client.update_task(update(later, task(now - 600, now + 600))))
    assert (error.code, error.http_status) == ("InvalidParam", 400) and error.message.startswith("StartTime: ")
    assert moved.code == "InvalidParam"


@pytest.mark.parametrize(
    ("answer", "from_active", "from_disabled"),
    [("active", True, False), ("disabled", False, True), ("any", True, True)],
)
async def test_relaunch_from(emulator: EmulatorFactory, answer: str, from_active: bool, from_disabled: bool) -> None:
    emu = await emulator(quirks={"relaunch_from": answer})
    now = int(time.time())
    async with client_for(emu) as client:
        active = await client.create_task(task(now - 5, now + 3600))
        disabled = await client.create_task(task(now - 5, now + 3600, dst="rtmp://dst.example.com/live/z"))
        await client.stop_task(disabled)
        outcomes = {}
        for task_id in (active, disabled):
            try:
                await client.relaunch_task(task_id)
                outcomes[task_id] = True
            except ApiError as error:
                assert (error.code, error.http_status) == ("InvalidParam", 400)
                outcomes[task_id] = False
    assert outcomes == {active: from_active, disabled: from_disabled}
    statuses = {t["TaskId"]: t["Status"] for t in emu.tasks()}
    assert statuses[disabled] == ("生效中" if from_disabled else "停用")


@pytest.mark.parametrize(
    ("answer", "status"),
    [("ResourceNotFound", 404), ("InvalidParameter.TaskNotExist", 400), ("InvalidParam", 400)],
)
async def test_not_found_code(emulator: EmulatorFactory, answer: str, status: int) -> None:
    emu = await emulator(quirks={"not_found": answer})
    async with client_for(emu) as client:
        for call in (client.delete_task, client.stop_task, client.relaunch_task):
            error = await refused(call(TaskId("0" * 32)))
            assert (error.code, error.http_status) == (answer, status)
            assert error.message == f"TaskId: task {'0' * 32} does not exist"


@pytest.mark.parametrize(("answer", "suffix"), [("+08:00", "+08:00"), ("Z", "Z")])
async def test_list_time(emulator: EmulatorFactory, answer: str, suffix: str) -> None:
    emu = await emulator(quirks={"list_time": answer})
    async with client_for(emu) as client:
        await client.create_task(task(1_900_000_000, 1_900_003_600))
        raw = await client.call("ListPullToPushTaskV2", body={})
        page = await client.list_tasks_v2(ListTasksV2Request())
    item = raw["List"][0]
    assert item["StartTime"].endswith(suffix) and item["EndTime"].endswith(suffix)
    assert int(page.items[0].start_time.timestamp()) == 1_900_000_000  # the client reads both forms


async def test_byteplus_profile(emulator: EmulatorFactory, raw: Callable[..., Any]) -> None:
    titles, rates = await emulator(profile="byteplus"), await emulator(profile="byteplus")
    now = int(time.time())
    async with client_for(titles, pacing=False) as client:
        long_title = await refused(client.create_task(task(now + 60, now + 600, title="rd123456789")))
    async with client_for(rates, pacing=False) as client:
        await client.create_task(task(now + 60, now + 600, title="rd12345678"))
        throttled = await refused(client.create_task(task(now + 60, now + 600, title="rdb", dst="rtmp://d/l/b")))
        await client.call("ListPullToPushTaskV2", body={})  # lists keep their own limit
    assert (long_title.code, long_title.http_status) == ("InvalidParam", 400) and "Title" in long_title.message
    assert (throttled.code, throttled.http_status) == ("FlowLimitExceeded", 429)
    assert rates.stats()["throttled"] == {"CreatePullToPushTask": 1}
    wrong_region = await raw(rates).call("ListPullToPushTaskV2", {})  # signed for cn-north-1
    assert wrong_region.code == "InvalidCredential" and "ap-singapore-1" in wrong_region.error["Message"]


async def test_quirks_switch_at_run_time_through_admin(emulator: EmulatorFactory) -> None:
    emu = await emulator(admin=True)
    now = int(time.time())
    async with aiohttp.ClientSession() as session:
        bad = await session.post(f"{emu.url}/__emulator/quirks", json={"quirks": {"destination": "nope"}})
        assert bad.status == 400 and "exclusive-touching-ok" in (await bad.json())["error"]
        ok = await session.post(
            f"{emu.url}/__emulator/quirks", json={"profile": "strict", "quirks": {"past_start": "accepted"}}
        )
        listing = await ok.json()
    assert listing["quirks"]["destination"] == "exclusive" and listing["quirks"]["past_start"] == "accepted"
    assert "stay-silent" in listing["valid"]["failure"]
    async with client_for(emu) as client:
        await client.create_task(task(now - 60, now + 600))  # past start accepted by the override
        error = await refused(client.delete_task(TaskId("f" * 32)))
    assert error.code == "InvalidParam"  # the strict profile's not-found code
    emu.set_quirks("lenient")
    async with client_for(emu) as client:
        assert (await refused(client.delete_task(TaskId("f" * 32)))).code == "ResourceNotFound"


def in_order(bodies: list[dict[str, Any]], key: str = "EventId") -> list[dict[str, Any]]:
    """Deliveries sorted by event id (``<prefix>-<n>``): concurrent deliveries may arrive in any order."""
    return sorted(bodies, key=lambda b: int(str(b[key]).rpartition("-")[2]))


async def _failing_task(emu: Emulator, sink_url: str, dst: str = DST) -> TaskId:
    now = int(time.time())
    async with client_for(emu) as client:
        return await client.create_task(task(now - 5, now + 3600, dst=dst, callback_url=sink_url))


@pytest.mark.parametrize(
    ("answer", "status", "fail_callback"),
    [("disable", "停用", True), ("stay-callback", "生效中", True), ("stay-silent", "生效中", False)],
)
async def test_failure(emulator: EmulatorFactory, sink: Any, answer: str, status: str, fail_callback: bool) -> None:
    emu = await emulator(quirks={"failure": answer})
    task_id = await _failing_task(emu, sink.url)
    emu.fail_task(task_id)  # no mode: the quirk decides
    assert {t["TaskId"]: (t["Status"], t["Failed"]) for t in emu.tasks()}[task_id] == (status, answer != "disable")
    assert emu.history()[0]["Active"][-1][1] is not None  # not relaying any more
    emu.delete_task_behind_back(task_id)  # no callback; the fail one (if any) is the last one sent
    expected = ["start", "fail"] if fail_callback else ["start"]
    await sink.wait_for(lambda bodies: len(bodies) >= len(expected))
    assert [b["EventType"] for b in in_order(sink.bodies)] == expected
    assert emu.stats()["callbacks"]["events"] == len(expected)


async def test_callback_schema_alibaba(emulator: EmulatorFactory, sink: Any) -> None:
    emu = await emulator(quirks={"callback_schema": "alibaba"})
    task_id = await _failing_task(emu, sink.url)
    emu.fail_task(task_id, mode="stay", repeat=0)
    async with client_for(emu) as client:
        await client.relaunch_task(task_id)
        await client.stop_task(task_id)
    await sink.wait_for(lambda bodies: len(bodies) >= 4)
    assert [(b["TaskStatus"], b.get("Reason")) for b in in_order(sink.bodies)] == [
        (1, None),
        (2, "PullStreamFailed"),  # abnormal, recovering: NOT a start
        (1, None),
        (3, None),
    ]
    assert {b["TaskId"] for b in sink.bodies} == {task_id} and all("EventType" not in b for b in sink.bodies)


async def test_callback_schema_tencent(emulator: EmulatorFactory, sink: Any) -> None:
    emu = await emulator(quirks={"callback_schema": "tencent"})
    task_id = await _failing_task(emu, sink.url)
    emu.fail_task(task_id, mode="stay")
    other = await _failing_task(emu, sink.url, "rtmp://dst.example.com/live/t2")
    emu.fail_task(other, mode="disable")
    await sink.wait_for(lambda bodies: len(bodies) >= 4)
    events = {(b["task_id"], b["callback_event"], b.get("alarm_type")) for b in sink.bodies}
    assert events == {
        (task_id, "TaskStart", None),
        (task_id, "TaskAlarm", "PushStreamFailed"),
        (other, "TaskStart", None),
        (other, "TaskExit", None),
    }
    assert {b["event_type"] for b in sink.bodies} == {314}


async def test_callback_schema_none(emulator: EmulatorFactory, sink: Any) -> None:
    emu = await emulator(quirks={"callback_schema": "none"})
    task_id = await _failing_task(emu, sink.url)
    emu.fail_task(task_id, repeat=0)
    assert emu.stats()["callbacks"]["events"] == 0  # nothing was even scheduled
    emu.set_quirks(callback_schema="relayd")
    async with client_for(emu) as client:
        await client.continue_task(task_id)
    await sink.wait_for(lambda bodies: len(bodies) >= 1)
    assert sink.events() == ["continue"]


@pytest.mark.parametrize(
    ("answer", "status", "fail_callback"),
    [("disable", "停用", True), ("stay-callback", "生效中", True), ("stay-silent", "生效中", False)],
)
async def test_unroutable_source_fails_by_itself(
    emulator: EmulatorFactory, sink: Any, answer: str, status: str, fail_callback: bool
) -> None:
    """A relay from an ``.invalid`` source (RFC 6761: never resolves) fails within seconds, as the quirk says."""
    emu = await emulator(quirks={"failure": answer})
    now = int(time.time())
    request = task(now - 5, now + 3600, callback_url=sink.url).model_copy(
        update={"src_addr": "rtmp://nowhere.invalid/live/a"}
    )
    async with client_for(emu) as client:
        task_id = await client.create_task(request)
    await sink.wait_for(lambda bodies: len(bodies) >= 1)

    def failed() -> bool:
        return emu.history()[0]["Active"][-1][1] is not None  # not relaying any more

    deadline = time.monotonic() + 10
    while not failed():
        assert time.monotonic() < deadline, "the unroutable relay did not fail"
        await asyncio.sleep(0.05)
    assert {t["TaskId"]: t["Status"] for t in emu.tasks()}[task_id] == status
    emu.delete_task_behind_back(task_id)
    expected = ["start", "fail"] if fail_callback else ["start"]
    await sink.wait_for(lambda bodies: len(bodies) >= len(expected))
    assert [b["EventType"] for b in in_order(sink.bodies)] == expected
    assert emu.stats()["callbacks"]["events"] == len(expected)
