"""The emulator over real sockets with raw signed requests: envelope, create/list, auth basics."""

from __future__ import annotations

import time
from typing import Any

from relayd.emulator import Emulator

LIVE = {"Type": 0, "SrcAddr": "rtmp://src.example.com/live/a", "DstAddr": "rtmp://dst.example.com/live/b"}


def window(offset: int = 60, length: int = 3600) -> dict[str, int]:
    start = int(time.time()) + offset
    return {"StartTime": start, "EndTime": start + length}


def task_body(**extra: Any) -> dict[str, Any]:
    return {**LIVE, **window(), "Title": "t1", **extra}


async def test_create_then_list_shows_the_task_with_envelope(emulator, raw) -> None:
    emu: Emulator = await emulator()
    client = raw(emu)
    created = await client.call("CreatePullToPushTask", task_body())
    assert created.status == 200, created.body
    meta = created.body["ResponseMetadata"]
    assert meta["Action"] == "CreatePullToPushTask"
    assert meta["Version"] == "2023-01-01"
    assert (meta["Service"], meta["Region"]) == ("live", "cn-north-1")
    assert len(meta["RequestId"]) == 34 and meta["RequestId"][:14].isdigit()
    task_id = created.result["TaskId"]
    assert len(task_id) == 32 and task_id == task_id.lower()

    listed = await client.call("ListPullToPushTask", method="GET", query={"Page": 1, "Size": 20})
    assert listed.status == 200, listed.body
    [item] = listed.result["List"]
    assert item["TaskId"] == task_id
    assert item["Status"] == "未开始" and item["TaskStatus"] == 1
    assert item["GroupName"] == "default"
    assert item["StartTime"].endswith("+08:00")
    assert listed.result["Pagination"] == {"PageCur": 1, "PageSize": 20, "PageTotal": 1, "TotalCount": 1}


async def test_wrong_secret_is_signature_does_not_match(emulator, raw) -> None:
    emu = await emulator()
    reply = await raw(emu, secret_key="wrong").call("CreatePullToPushTask", task_body())
    assert (reply.status, reply.code) == (401, "SignatureDoesNotMatch")
    assert reply.error["CodeN"] == 100010
    assert "Result" not in reply.body
    assert emu.history() == []
