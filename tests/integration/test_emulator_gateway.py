"""Gateway behaviour over the wire: routing, auth errors, binding, legacy actions and QPS throttling."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

LIVE = {"Type": 0, "SrcAddr": "rtmp://src.example.com/live/a", "DstAddr": "rtmp://dst.example.com/live/b"}


def task(offset: int = 600, **extra: object) -> dict[str, object]:
    now = int(time.time())
    return {**LIVE, "StartTime": now + offset, "EndTime": now + offset + 600, **extra}


async def test_routing_errors(emulator, raw) -> None:
    client = raw(await emulator())
    missing = await client.call("", task())
    assert (missing.status, missing.code) == (400, "MissingParameter")
    unknown = await client.call("CreateSomethingElse", task())
    assert (unknown.status, unknown.code, unknown.error["CodeN"]) == (404, "InvalidActionOrVersion", 100008)
    old = await client.call("CreatePullToPushTask", task(), version="2020-08-01")
    assert old.code == "InvalidActionOrVersion"
    wrong_method = await client.call("CreatePullToPushTask", method="GET")
    assert (wrong_method.status, wrong_method.code) == (405, "MethodNotAllowed")


async def test_auth_errors(emulator, raw) -> None:
    emu = await emulator()
    unsigned = await raw(emu).call("CreatePullToPushTask", task(), sign=False)
    assert (unsigned.status, unsigned.code) == (401, "MissingAuthenticationToken")
    unknown_ak = await raw(emu, access_key="AKLTnobody").call("CreatePullToPushTask", task())
    assert (unknown_ak.status, unknown_ak.code) == (401, "InvalidAccessKey")
    stale = await raw(emu).call("CreatePullToPushTask", task(), now=datetime.now(UTC) - timedelta(minutes=16))
    assert (stale.status, stale.code) == (400, "InvalidTimestamp")
    region = await raw(emu, region="cn-beijing").call("CreatePullToPushTask", task())
    assert region.code == "InvalidCredential"

    def swap_hash(headers: dict[str, str]) -> None:
        headers["X-Content-Sha256"] = "0" * 64

    tampered = await raw(emu).call("CreatePullToPushTask", task(), tamper=swap_hash)
    assert (tampered.status, tampered.code) == (401, "SignatureDoesNotMatch")
    assert emu.history() == []
    assert emu.stats()["responses"]["SignatureDoesNotMatch"] == 1


async def test_signature_checking_can_be_disabled(emulator, raw) -> None:
    reply = await raw(await emulator(verify_signatures=False)).call("CreatePullToPushTask", task(), sign=False)
    assert reply.status == 200, reply.body


async def test_body_binding_errors(emulator, raw) -> None:
    client = raw(await emulator())
    not_json = await client.call("CreatePullToPushTask", raw_body=b"{not json")
    assert (not_json.status, not_json.code) == (400, "InvalidParam.BindError")
    wrong_type = await client.call("CreatePullToPushTask", task(StartTime="soon"))
    assert wrong_type.code == "InvalidParam.BindError" and "StartTime" in wrong_type.error["Message"]
    bad_page = await client.call("ListPullToPushTask", method="GET", query={"Page": "x"})
    assert bad_page.code == "InvalidParam.BindError"
    rules = await client.call("CreatePullToPushTask", task(Title="有 space", CallbackURL="ftp://x"))
    assert rules.code == "InvalidParam"
    assert "Title:" in rules.error["Message"] and "CallbackURL:" in rules.error["Message"]


async def test_legacy_list_post_and_restart(emulator, raw) -> None:
    client = raw(await emulator())
    task_id = (await client.call("CreatePullToPushTask", task(offset=-5, Title="DocSpace"))).result["TaskId"]
    assert (await client.call("StopPullToPushTask", {"TaskId": task_id})).status == 200
    restarted = await client.call("RestartPullToPushTask", {"TaskId": task_id, "GroupName": "default"})
    assert restarted.status == 200 and "Result" not in restarted.body
    legacy = await client.call("ListPullToPushTask", {"Page": 1, "Size": 5, "Title": "docs"})
    [item] = legacy.result["List"]
    assert (item["TaskId"], item["Status"]) == (task_id, "生效中")
    again = await client.call("RestartPullToPushTask", {"TaskId": task_id})
    assert again.code == "InvalidParam" and "生效中" in again.error["Message"]
    gone = await client.call("RelaunchPullToPushTask", {"TaskId": "0" * 32})
    assert (gone.status, gone.code) == (404, "ResourceNotFound")


async def test_write_qps_is_throttled_per_class(emulator, raw) -> None:
    emu = await emulator(write_qps=3, list_qps=0)
    client = raw(emu)
    replies = await asyncio.gather(*(client.call("CreatePullToPushTask", task()) for _ in range(6)))
    throttled = [r for r in replies if r.code == "FlowLimitExceeded"]
    assert len(throttled) == 3 and sum(r.status == 200 for r in replies) == 3
    assert {(r.status, r.error["CodeN"]) for r in throttled} == {(429, 100018)}
    lists = await asyncio.gather(*(client.call("ListPullToPushTaskV2", {}) for _ in range(20)))
    assert all(r.status == 200 for r in lists)  # list_qps=0 disables the list limit
    stats = emu.stats()
    assert stats["throttled"] == {"write": 3}
    assert stats["max_requests_per_1s"]["write"] == 6 and stats["max_requests_per_1s"]["list"] == 20
    assert len(emu.history()) == 3  # throttled requests are not executed
