"""The emulator plays what it relays: HLS and HTTP-FLV per destination, stalling when the relay does not relay.

HLS tests drive the emulator's task clock by hand (a fake ``clock``), so "ten seconds later" is exact and instant;
the FLV tests run on the real clock because the stream is paced in real time, and read a bounded number of bytes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import m3u8
import pytest

from relayd.emulator import Emulator, playback_url
from relayd.ids import TaskId
from relayd.volc import CreateTaskRequest, Credentials, LiveClient

EmulatorFactory = Callable[..., Awaitable[Emulator]]
DST = "rtmp://push.example.com/live/show?auth=secret"


class FakeClock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


async def start_task(emu: Emulator, *, dst: str = DST, lasts_s: int = 3600, **extra: Any) -> TaskId:
    now = int(emu.config.clock())
    request = CreateTaskRequest(
        title="rdplay", start_time=now, end_time=now + lasts_s, src_addr="rtmp://src/live/a", dst_addr=dst, **extra
    )
    async with LiveClient(emu.url, Credentials(emu.config.access_key, emu.config.secret_key)) as client:
        return await client.create_task(request)


async def fetch(url: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.read()


async def playlist(url: str) -> m3u8.M3U8:
    status, body = await fetch(url)
    assert status == 200
    return m3u8.loads(body.decode(), uri=url)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_hls_advances_in_real_time_with_fetchable_segments(emulator: EmulatorFactory, clock: FakeClock) -> None:
    emu = await emulator(clock=clock)
    await start_task(emu)
    url = emu.playback_url(DST)
    assert url == f"{emu.url}/play/push.example.com/live/show.m3u8" == playback_url(emu.url, DST)
    clock.now += 10.5
    first = await playlist(url)
    clock.now += 4
    later = await playlist(url)
    assert (first.media_sequence, len(first.segments)) == (7, 3)  # 10 done segments, the last 3 listed
    assert later.media_sequence == first.media_sequence + 4 and first.target_duration == 1
    assert not later.is_endlist
    status, data = await fetch(later.segments[-1].absolute_uri)
    assert status == 200 and data[0] == 0x47 and len(data) % 188 == 0
    assert (await fetch(later.segments[-1].absolute_uri.replace("-13.ts", "-14.ts")))[0] == 404  # not yet


async def test_master_playlist_leads_to_the_media_playlist(emulator: EmulatorFactory, clock: FakeClock) -> None:
    emu = await emulator(clock=clock)
    await start_task(emu)
    clock.now += 5
    master = await playlist(emu.playback_url(DST, "master"))
    assert master.is_variant and len(master.playlists) == 1
    media = await playlist(master.playlists[0].absolute_uri)
    assert media.media_sequence == 2 and len(media.segments) == 3


async def test_unknown_destination_is_404(emulator: EmulatorFactory) -> None:
    emu = await emulator()
    for kind in ("media", "master", "flv"):
        assert (await fetch(emu.playback_url("rtmp://nowhere.example.com/live/x", kind)))[0] == 404
    assert (await fetch(f"{emu.url}/play/garbage"))[0] == 404


async def _stop(emu: Emulator, task_id: TaskId, clock: FakeClock, how: str) -> None:
    if how == "silent":
        emu.fail_task(task_id, mode="silent")
    elif how == "disable":
        emu.fail_task(task_id, mode="disable")
    elif how == "stop":
        emu.disable_task_behind_back(task_id)
    elif how == "delete":
        emu.delete_task_behind_back(task_id)
    else:  # end: the window closes
        clock.now += 3600


@pytest.mark.parametrize("how", ["silent", "disable", "stop", "delete", "end"])
async def test_playlist_stops_advancing_when_the_relay_stops(
    emulator: EmulatorFactory, clock: FakeClock, how: str
) -> None:
    emu = await emulator(clock=clock)
    task_id = await start_task(emu)
    clock.now += 6
    await _stop(emu, task_id, clock, how)
    stalled = await playlist(emu.playback_url(DST))
    clock.now += 30
    still = await playlist(emu.playback_url(DST))
    expected = 3600 if how == "end" else 6
    assert stalled.media_sequence == still.media_sequence == expected - 3
    assert [s.uri for s in still.segments] == [s.uri for s in stalled.segments]


async def test_silent_failure_keeps_the_task_running_without_a_callback(
    emulator: EmulatorFactory, clock: FakeClock, sink: Any
) -> None:
    emu = await emulator(clock=clock)
    task_id = await start_task(emu, callback_url=sink.url)
    emu.fail_task(task_id, mode="silent", repeat=0)
    [item] = emu.tasks()
    assert (item["Status"], item["Failed"]) == ("生效中", True)
    assert emu.stats()["callbacks"]["events"] == 1  # the start only
    clock.now += 5
    stalled = (await playlist(emu.playback_url(DST))).media_sequence
    async with LiveClient(emu.url, Credentials(emu.config.access_key, emu.config.secret_key)) as client:
        await client.relaunch_task(task_id)  # the restart relayd would do
    clock.now += 5
    assert (await playlist(emu.playback_url(DST))).media_sequence > stalled


async def test_a_new_task_on_the_destination_resumes_playback(emulator: EmulatorFactory, clock: FakeClock) -> None:
    emu = await emulator(clock=clock)
    first = await start_task(emu)
    clock.now += 5
    emu.delete_task_behind_back(first)
    await start_task(emu, dst="rtmps://PUSH.example.com/live/show?auth=other")  # same stream, other auth
    clock.now += 5
    assert (await playlist(emu.playback_url(DST))).media_sequence == 10 - 3


async def test_jitter_lags_then_catches_up(emulator: EmulatorFactory, clock: FakeClock) -> None:
    emu = await emulator(clock=clock)
    await start_task(emu)
    emu.set_jitter(1.0, period_s=10, lag_min_s=2, lag_max_s=3)  # every bucket lags 2-3 s
    clock.now = (clock.now // 10 + 2) * 10  # a bucket start, 10-20 s after the task started
    at_start = (await playlist(emu.playback_url(DST))).media_sequence
    clock.now += 1.5
    lagging = (await playlist(emu.playback_url(DST))).media_sequence
    clock.now += 2
    caught_up = (await playlist(emu.playback_url(DST))).media_sequence
    assert lagging == at_start and caught_up == at_start + 3
    assert emu.fault_listing()["jitter"]["rate"] == 1.0


async def test_jitter_is_off_by_default_and_validated(emulator: EmulatorFactory) -> None:
    emu = await emulator(admin=True)
    async with aiohttp.ClientSession() as session:
        bad = await session.post(f"{emu.url}/__emulator/playback", json={"rate": 0.5, "lag_max_s": 20})
        assert bad.status == 400 and "lag_max_s" in (await bad.json())["error"]
        ok = await session.post(f"{emu.url}/__emulator/playback", json={"rate": 0.25})
        assert ok.status == 200 and (await ok.json())["jitter"]["rate"] == 0.25


async def read_flv(url: str, tags: int) -> tuple[bytes, list[int]]:
    """The FLV header and the timestamps of the first ``tags`` tags."""
    timestamps: list[int] = []
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "video/x-flv"
        header = await resp.content.readexactly(13)
        for _ in range(tags):
            head = await resp.content.readexactly(11)
            size = int.from_bytes(head[1:4], "big")
            timestamps.append(int.from_bytes(head[4:7], "big") | head[7] << 24)
            body = await resp.content.readexactly(size + 4)
            assert head[0] == 9 and int.from_bytes(body[-4:], "big") == 11 + size
    return header, timestamps


async def test_flv_stream_sends_timed_tags(emulator: EmulatorFactory) -> None:
    emu = await emulator()
    await start_task(emu)
    async with asyncio.timeout(20):
        header, timestamps = await read_flv(emu.playback_url(DST, "flv"), tags=6)
    assert header[:3] == b"FLV" and header[3] == 1 and int.from_bytes(header[5:9], "big") == 9
    assert timestamps == [0, 200, 400, 600, 800, 1000]


async def test_flv_stream_ends_when_the_relay_fails(emulator: EmulatorFactory) -> None:
    emu = await emulator()
    task_id = await start_task(emu)
    async with asyncio.timeout(20), aiohttp.ClientSession() as session:
        async with session.get(emu.playback_url(DST, "flv")) as resp:
            await resp.content.readexactly(13 + 25)  # the header and the first tag: streaming
            emu.fail_task(task_id, mode="silent")
            rest = await resp.content.read()  # returns at the end of the stream
        assert len(rest) % 25 == 0  # whole tags only, then the end
        assert (await session.get(emu.playback_url(DST, "flv"))).status == 404  # nothing to play now


async def test_random_silent_failures(emulator: EmulatorFactory, sink: Any) -> None:
    emu = await emulator(admin=True, seed=5)
    ids = [await start_task(emu, dst=f"rtmp://push.example.com/live/s{n}", callback_url=sink.url) for n in range(3)]
    async with aiohttp.ClientSession() as session:
        reply = await session.post(f"{emu.url}/__emulator/silent-failures", json={"fraction": 1, "interval_s": 0.1})
        assert reply.status == 200 and (await reply.json())["silent_failures"]["fraction"] == 1
    async with asyncio.timeout(20):
        while not all(t["Failed"] for t in emu.tasks()):
            await asyncio.sleep(0.05)  # polling a condition, bounded by the timeout
    assert {t["TaskId"]: t["Status"] for t in emu.tasks()} == dict.fromkeys(ids, "生效中")
    assert emu.stats()["callbacks"]["events"] == 3  # the three starts; the failures were silent
    await emu.set_silent_failures(0)
    assert emu.fault_listing()["silent_failures"]["fraction"] == 0
