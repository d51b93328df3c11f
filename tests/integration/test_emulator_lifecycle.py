"""Task status over real time, status callbacks (retries, sign) and the relaying history."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from typing import Any

LIVE = {"Type": 0, "SrcAddr": "rtmp://src.example.com/live/a"}


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def body(start: int, end: int, sink_url: str, dst: str = "rtmp://dst.example.com/live/b", **extra: Any) -> dict:
    return {**LIVE, "DstAddr": dst, "StartTime": start, "EndTime": end, "CallbackURL": sink_url, **extra}


async def test_chained_tasks_hand_off_with_zero_gap_and_callbacks(emulator, raw, sink) -> None:
    emu = await emulator(max_task_seconds=2)
    client = raw(emu)
    s = int(time.time()) + 1
    first = await client.call("CreatePullToPushTask", body(s, s + 1, sink.url, Title="segA"))
    second = await client.call("CreatePullToPushTask", body(s + 1, s + 2, sink.url, Title="segB"))
    too_long = await client.call("CreatePullToPushTask", body(s, s + 3, sink.url))
    assert too_long.code == "InvalidParam" and "limit is 2 s" in too_long.error["Message"]
    a, b = first.result["TaskId"], second.result["TaskId"]
    await sink.wait_for(lambda bodies: sum(x["EventType"] == "end" for x in bodies) == 2)
    assert sink.events(a) == ["start", "end"] and sink.events(b) == ["start", "end"]
    assert {x["_content_type"] for x in sink.bodies} == {"application/json"}
    ends = {x["TaskId"]: x for x in sink.bodies if x["EventType"] == "end"}
    assert (ends[a]["Status"], ends[a]["TaskStatus"], ends[a]["Time"]) == ("已结束", 3, s + 1)
    history = {h["TaskId"]: h for h in emu.history()}
    assert history[a]["Active"] == [[s, s + 1]] and history[b]["Active"] == [[s + 1, s + 2]]
    assert history[b]["Active"][0][0] - history[a]["Active"][-1][1] == 0
    listed = await client.call("ListPullToPushTaskV2", {"Page": 1, "Size": 10})
    assert [i["Status"] for i in listed.result["List"]] == ["已结束", "已结束"]


async def test_api_actions_emit_callbacks_in_order(emulator, raw, sink) -> None:
    emu = await emulator()
    client = raw(emu)
    now = int(time.time())
    task_id = (await client.call("CreatePullToPushTask", body(now - 10, now + 600, sink.url))).result["TaskId"]
    await sink.wait_for(lambda bodies: len(bodies) == 1)
    for action in ("StopPullToPushTask", "ContinuePullToPushTask", "RelaunchPullToPushTask", "DeletePullToPushTask"):
        seen = len(sink.bodies)
        reply = await client.call(action, {"TaskId": task_id})
        assert reply.status == 200, reply.body
        await sink.wait_for(lambda bodies, seen=seen: len(bodies) > seen)
    assert sink.events(task_id) == ["start", "stop", "continue", "relaunch", "delete"]
    statuses = [x["Status"] for x in sink.bodies]
    assert statuses == ["生效中", "停用", "生效中", "生效中", "生效中"]
    assert len({x["EventId"] for x in sink.bodies}) == 5
    [history] = emu.history()
    assert len(history["Active"]) == 2 and history["Active"][-1][1] == history["DeletedAt"]


async def test_callback_retries_then_succeeds_with_stable_event_id_and_sign(emulator, raw, sink) -> None:
    emu = await emulator(callback_auth_key="cbkey", callback_retries=3, callback_retry_delay_s=0.05)
    sink.statuses = [500, 503]
    now = int(time.time())
    await raw(emu).call("CreatePullToPushTask", body(now - 1, now + 600, sink.url))
    await sink.wait_for(lambda bodies: len(bodies) == 3)
    assert [x["_status"] for x in sink.bodies] == [500, 503, 200]
    assert len({x["EventId"] for x in sink.bodies}) == 1
    delivered = sink.bodies[-1]
    assert delivered["sign"] == hashlib.md5(f"cbkey{delivered['t']}".encode()).hexdigest()
    assert 590 <= delivered["t"] - time.time() <= 610
    await eventually(lambda: emu.stats()["callbacks"]["delivered"] == 1)
    assert emu.stats()["callbacks"]["attempts"] == 3


async def test_callback_gives_up_after_the_retries(emulator, raw, sink) -> None:
    emu = await emulator(callback_retries=2, callback_retry_delay_s=0.02)
    sink.statuses = [500] * 10
    now = int(time.time())
    await raw(emu).call("CreatePullToPushTask", body(now - 1, now + 600, sink.url))
    await eventually(lambda: emu.stats()["callbacks"]["failed"] == 1)
    assert len(sink.bodies) == 3 and emu.stats()["callbacks"]["delivered"] == 0


async def test_unreachable_callback_does_not_block_the_api(emulator, raw) -> None:
    emu = await emulator(callback_retries=1, callback_retry_delay_s=0.01, callback_timeout_s=0.5)
    now = int(time.time())
    reply = await raw(emu).call("CreatePullToPushTask", body(now - 1, now + 600, "http://127.0.0.1:9/cb"))
    assert reply.status == 200
    await eventually(lambda: emu.stats()["callbacks"]["failed"] == 1)


async def test_update_extends_a_running_task(emulator, raw, sink) -> None:
    emu = await emulator()
    client = raw(emu)
    now = int(time.time())
    task_id = (await client.call("CreatePullToPushTask", body(now - 5, now + 1, sink.url))).result["TaskId"]
    update = await client.call("UpdatePullToPushTask", {**body(now - 5, now + 600, sink.url), "TaskId": task_id})
    assert update.status == 200, update.body
    [item] = (await client.call("ListPullToPushTask", method="GET", query={"Title": ""})).result["List"]
    assert item["Status"] == "生效中" and item["Title"] == ""
    assert item["EndTime"] != item["StartTime"]
    [history] = emu.history()
    assert history["EndTime"] == now + 600 and history["Active"] == [[history["CreatedAt"], None]]
