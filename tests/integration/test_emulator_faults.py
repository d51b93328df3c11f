"""Fault injection through the admin API (``/__emulator/...``) and the in-process methods."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

LIVE = {"Type": 0, "SrcAddr": "rtmp://src.example.com/live/a", "DstAddr": "rtmp://dst.example.com/live/b"}


def active_task(sink_url: str = "", **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    body: dict[str, Any] = {**LIVE, "StartTime": now - 5, "EndTime": now + 600, **extra}
    if sink_url:
        body["CallbackURL"] = sink_url
    return body


async def admin(url: str, method: str, path: str, payload: dict[str, Any] | None = None) -> tuple[int, Any]:
    target = f"{url}/__emulator{path}"
    async with aiohttp.ClientSession() as session, session.request(method, target, json=payload) as resp:
        text = await resp.text()
        return resp.status, json.loads(text) if resp.content_type == "application/json" else text


async def test_admin_api_is_off_by_default(emulator) -> None:
    emu = await emulator()
    for path in ("/history", "/stats", "/tasks"):
        status, _ = await admin(emu.url, "GET", path)
        assert status == 404


async def test_error_code_fault_with_count(emulator, raw) -> None:
    emu = await emulator(admin=True)
    client = raw(emu)
    fault = {"action": "CreatePullToPushTask", "error_code": "CommonErr", "count": 1}
    status, listing = await admin(emu.url, "POST", "/faults", fault)
    assert status == 200 and listing["faults"][0]["error_code"] == "CommonErr"
    first = await client.call("CreatePullToPushTask", active_task())
    assert (first.status, first.code) == (200, "CommonErr")  # the platform's CommonErr comes with HTTP 200
    second = await client.call("CreatePullToPushTask", active_task())
    assert second.code is None and second.result["TaskId"]
    assert len(emu.history()) == 1  # the failed request was not executed


async def test_error_rate_wildcard_and_clear(emulator, raw) -> None:
    emu = await emulator(admin=True, seed=3, list_qps=0)
    client = raw(emu)
    await admin(emu.url, "POST", "/faults", {"action": "*", "error_rate": 0.5})
    replies = [await client.call("ListPullToPushTaskV2", {}) for _ in range(60)]
    failed = [r for r in replies if r.code == "InternalError"]
    assert 15 <= len(failed) <= 45 and {r.status for r in failed} == {500}
    status, listing = await admin(emu.url, "DELETE", "/faults")
    assert status == 200 and listing["faults"] == []
    after = [await client.call("ListPullToPushTaskV2", {}) for _ in range(10)]
    assert {r.status for r in after} == {200}


async def test_bad_fault_is_refused(emulator) -> None:
    emu = await emulator(admin=True)
    status, body = await admin(emu.url, "POST", "/faults", {"action": "*", "error_code": "NoSuchCode"})
    assert status == 400 and "NoSuchCode" in body["error"]


async def test_latency_fault(emulator, raw) -> None:
    emu = await emulator()
    emu.set_fault("ListPullToPushTaskV2", latency_ms=300)
    began = time.monotonic()
    reply = await raw(emu).call("ListPullToPushTaskV2", {})
    assert reply.status == 200 and time.monotonic() - began >= 0.3


async def test_hanging_request_times_out_and_is_released_at_stop(emulator, raw) -> None:
    emu = await emulator()
    emu.set_fault("CreatePullToPushTask", hang=True, count=1)
    client = raw(emu)
    pending = asyncio.create_task(client.call("CreatePullToPushTask", active_task()))
    done, _ = await asyncio.wait({pending}, timeout=0.3)
    assert not done  # still hanging
    await emu.stop()  # releases the hung handler; stop() must not wait for the client
    reply = await pending
    assert reply.code == "InternalServiceTimeout"
    assert emu.history() == []


async def test_callback_drop_and_duplicate(emulator, raw, sink) -> None:
    emu = await emulator(admin=True)
    client = raw(emu)
    await admin(emu.url, "POST", "/callbacks", {"drop_rate": 1.0})
    await client.call("CreatePullToPushTask", active_task(sink.url))
    assert emu.stats()["callbacks"]["dropped"] == 1
    await admin(emu.url, "POST", "/callbacks", {"duplicate_rate": 1.0})
    await client.call("CreatePullToPushTask", active_task(sink.url))
    await sink.wait_for(lambda bodies: len(bodies) == 2)
    assert sink.bodies[0]["EventId"] == sink.bodies[1]["EventId"]
    assert emu.stats()["callbacks"]["duplicated"] == 1


async def test_callback_reorder_lets_a_later_event_overtake(emulator, raw, sink) -> None:
    emu = await emulator(admin=True)
    client = raw(emu)
    await admin(emu.url, "POST", "/callbacks", {"reorder": True, "delay_ms": 300})
    task_id = (await client.call("CreatePullToPushTask", active_task(sink.url))).result["TaskId"]
    await client.call("StopPullToPushTask", {"TaskId": task_id})
    await sink.wait_for(lambda bodies: len(bodies) == 2)
    assert sink.events(task_id) == ["stop", "start"]


async def test_fail_task_disable_then_continue(emulator, raw, sink) -> None:
    emu = await emulator(admin=True)
    client = raw(emu)
    task_id = (await client.call("CreatePullToPushTask", active_task(sink.url))).result["TaskId"]
    status, _ = await admin(emu.url, "POST", f"/tasks/{task_id}/fail", {"mode": "disable", "repeat": 1})
    assert status == 200
    [item] = (await client.call("ListPullToPushTaskV2", {})).result["List"]
    assert item["Status"] == "停用"
    await client.call("ContinuePullToPushTask", {"TaskId": task_id})  # fails again right away (repeat 1)
    await client.call("ContinuePullToPushTask", {"TaskId": task_id})  # now it holds
    await sink.wait_for(lambda bodies: len(bodies) == 5)
    # Deliveries run concurrently, so compare as a multiset.
    assert sorted(sink.events(task_id)) == sorted(["start", "fail", "continue", "fail", "continue"])
    fails = [b for b in sink.bodies if b["EventType"] == "fail"]
    assert {b["Status"] for b in fails} == {"停用"}
    [history] = emu.history()
    assert len(history["Active"]) == 2 and history["Active"][-1][1] is None


async def test_fail_task_stay_then_relaunch(emulator, raw, sink) -> None:
    emu = await emulator(admin=True)
    client = raw(emu)
    task_id = (await client.call("CreatePullToPushTask", active_task(sink.url))).result["TaskId"]
    status, _ = await admin(emu.url, "POST", f"/tasks/{task_id}/fail", {"mode": "stay", "repeat": 0})
    assert status == 200
    _, [item] = await admin(emu.url, "GET", "/tasks")
    assert (item["Status"], item["Failed"]) == ("生效中", True)
    assert emu.history()[0]["Active"][0][1] is not None  # not relaying while failed
    await client.call("RelaunchPullToPushTask", {"TaskId": task_id})
    await sink.wait_for(lambda bodies: len(bodies) == 3)
    assert sorted(sink.events(task_id)) == ["fail", "recover", "start"]
    assert [b["Status"] for b in sink.bodies if b["EventType"] == "fail"] == ["生效中"]
    assert emu.history()[0]["Active"][-1][1] is None
    conflict, _ = await admin(emu.url, "POST", "/tasks/nope/fail", {})
    assert conflict == 404


async def test_fail_stay_recovers_on_its_own(emulator, raw, sink) -> None:
    emu = await emulator()
    task_id = (await raw(emu).call("CreatePullToPushTask", active_task(sink.url))).result["TaskId"]
    emu.fail_task(task_id, mode="stay", recover_after_s=0.2)
    await sink.wait_for(lambda bodies: "recover" in [b["EventType"] for b in bodies])
    [history] = emu.history()
    gap = history["Active"][1][0] - history["Active"][0][1]
    assert abs(gap - 0.2) < 1e-6


async def test_behind_the_back_delete_and_disable(emulator, raw, sink) -> None:
    emu = await emulator(admin=True)
    client = raw(emu)
    gone = (await client.call("CreatePullToPushTask", active_task(sink.url, Title="gone"))).result["TaskId"]
    off = (await client.call("CreatePullToPushTask", active_task(sink.url, Title="off"))).result["TaskId"]
    await sink.wait_for(lambda bodies: len(bodies) == 2)
    requests_before = sum(emu.stats()["requests"].values())
    assert (await admin(emu.url, "POST", f"/tasks/{gone}/delete"))[0] == 200
    assert (await admin(emu.url, "POST", f"/tasks/{off}/disable"))[0] == 200
    await sink.wait_for(lambda bodies: len(bodies) == 3)
    assert sink.events(off) == ["start", "stop"] and sink.events(gone) == ["start"]
    assert sum(emu.stats()["requests"].values()) == requests_before
    [item] = (await client.call("ListPullToPushTaskV2", {})).result["List"]
    assert (item["TaskId"], item["Status"]) == (off, "停用")
    status, history = await admin(emu.url, "GET", "/history")
    assert status == 200 and {h["TaskId"] for h in history if h["DeletedAt"]} == {gone}
    again, _ = await admin(emu.url, "POST", f"/tasks/{off}/disable")
    assert again == 409
    status, stats = await admin(emu.url, "GET", "/stats")
    assert status == 200 and stats["requests"]["CreatePullToPushTask"] == 2
