"""The write journal: each write request with the caller's instance id, whether or not the id header is signed."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from relayd.emulator import Emulator
from relayd.volc import ApiError, CreateTaskRequest, Credentials, ListTasksV2Request, LiveClient

EmulatorFactory = Callable[..., Awaitable[Emulator]]


def body(stream: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "Type": 0,
        "StartTime": now + 60,
        "EndTime": now + 600,
        "SrcAddr": "rtmp://src/live/a",
        "DstAddr": f"rtmp://dst/live/{stream}",
    }


async def test_instance_header_signed_or_not_and_user_agent_token(emulator: EmulatorFactory, raw: Any) -> None:
    emu = await emulator(admin=True)
    signed = raw(emu, extra_headers={"X-Relayd-Instance": "a"})  # an X- header: the signer signs it
    first = await signed.call("CreatePullToPushTask", body("one"))
    unsigned = await raw(emu).call(
        "CreatePullToPushTask", body("two"), tamper=lambda headers: headers.update({"X-Relayd-Instance": "b"})
    )
    by_agent = await raw(emu, extra_headers={"User-Agent": "relayd/0.1 relayd-instance/c"}).call(
        "DeletePullToPushTask", {"TaskId": first.result["TaskId"]}
    )
    assert [first.code, unsigned.code, by_agent.code] == [None, None, None]
    await signed.call("ListPullToPushTaskV2", {})  # lists are not writes
    entries = emu.requests()
    assert [(e["action"], e["instance"], e["code"]) for e in entries] == [
        ("CreatePullToPushTask", "a", "OK"),
        ("CreatePullToPushTask", "b", "OK"),
        ("DeletePullToPushTask", "c", "OK"),
    ]
    assert entries[0]["time"] <= entries[-1]["time"] <= time.time()
    async with aiohttp.ClientSession() as session, session.get(f"{emu.url}/__emulator/requests?instance=b") as resp:
        listing = await resp.json()
    assert [e["instance"] for e in listing["requests"]] == ["b"] and listing["counts"] == {"a": 1, "b": 1, "c": 1}


async def test_refused_writes_are_journalled_with_their_code(emulator: EmulatorFactory) -> None:
    emu = await emulator()
    emu.set_fault("CreatePullToPushTask", error_code="InternalError", count=1)
    creds = Credentials(emu.config.access_key, emu.config.secret_key)
    async with LiveClient(emu.url, creds, max_attempts=1) as client:
        now = int(time.time())
        request = CreateTaskRequest(
            start_time=now + 60, end_time=now + 600, src_addr="rtmp://s/l/a", dst_addr="rtmp://d/l/b"
        )
        with pytest.raises(ApiError):
            await client.create_task(request)  # the injected failure
        await client.create_task(request)
        await client.list_tasks_v2(ListTasksV2Request())
    assert [(e["code"], e["http_status"], e["instance"]) for e in emu.requests()] == [
        ("InternalError", 500, ""),
        ("OK", 200, ""),
    ]
    assert emu.write_counts() == {"": 2} and emu.write_counts(ok_only=True) == {"": 1}
    assert "relayd-live-client" in emu.requests()[0]["user_agent"]
