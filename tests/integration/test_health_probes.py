"""Each probe against a real local server (or a fake ffprobe on PATH): what it reports, and that it stays bounded."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from relayd.health.ffprobe import FfprobeProbe
from relayd.health.flv import FlvProbe
from relayd.health.hls import HlsProbe
from relayd.health.observations import Advanced, ProbeError, ProbeErrorKind, Same
from tests.integration.playback import Playback, fake_ffprobe, flv_tag, serve


@pytest.fixture
async def playback() -> AsyncIterator[Playback]:
    async with serve() as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def test_hls_advances_then_stays_the_same_when_frozen(playback: Playback, session: aiohttp.ClientSession) -> None:
    stream = playback.stream("news")
    stream.segment = 0.2
    probe = HlsProbe(playback.url("hls", "news"), timeout=5)
    first = await probe.look(session, None)
    assert isinstance(first, Same)  # the first look is only a baseline
    async with asyncio.timeout(10):
        while stream.sequence() == int(first.marker.split("/")[0]):
            await asyncio.sleep(0.05)
    second = await probe.look(session, first.marker)
    assert isinstance(second, Advanced) and second.marker != first.marker
    stream.freeze()
    third = await probe.look(session, None)
    assert await probe.look(session, third.marker) == Same(third.marker)  # type: ignore[union-attr]


async def test_hls_master_is_followed_once(playback: Playback, session: aiohttp.ClientSession) -> None:
    probe = HlsProbe(playback.url("master", "news"), timeout=5)
    first = await probe.look(session, None)
    again = await probe.look(session, None)
    assert isinstance(first, Same) and isinstance(again, Same)
    assert probe.variant == playback.url("hls", "news")
    assert playback.stream("master-news").requests == 1
    assert playback.stream("news").requests == 2


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [(403, None, ProbeErrorKind.HTTP_STATUS), (404, None, ProbeErrorKind.HTTP_STATUS), (200, "<html/>", "parse")],
)
async def test_hls_errors_are_the_probes(
    playback: Playback, session: aiohttp.ClientSession, status: int, body: str | None, kind: str
) -> None:
    stream = playback.stream("news")
    stream.status, stream.body = status, body
    found = await HlsProbe(playback.url("hls", "news") + "?token=s3cr3t", timeout=5).look(session, None)
    assert isinstance(found, ProbeError) and found.kind == kind
    assert "s3cr3t" not in found.message


async def test_hls_timeout_and_refused_connection(playback: Playback, session: aiohttp.ClientSession) -> None:
    playback.stream("slow").slow = lambda _: 30.0
    started = time.monotonic()
    found = await HlsProbe(playback.url("hls", "slow"), timeout=0.5).look(session, None)
    assert isinstance(found, ProbeError) and found.kind is ProbeErrorKind.TIMEOUT
    assert time.monotonic() - started < 10
    refused = await HlsProbe("http://127.0.0.1:9/x.m3u8", timeout=5).look(session, None)
    assert isinstance(refused, ProbeError) and refused.kind is ProbeErrorKind.CONNECT


async def test_flv_reads_a_bounded_amount_then_closes(playback: Playback, session: aiohttp.ClientSession) -> None:
    stream = playback.stream("news")
    found = await FlvProbe(playback.url("flv", "news"), timeout=10, max_bytes=4096).look(session, None)
    assert found == Advanced("4096 media bytes")
    async with asyncio.timeout(10):
        await stream.flv_closed.wait()  # the server's endless response ended: the probe closed it


async def test_flv_low_bitrate_is_judged_after_the_flow_window(
    playback: Playback, session: aiohttp.ClientSession
) -> None:
    started = time.monotonic()
    probe = FlvProbe(playback.url("flv", "news"), timeout=60, max_bytes=1 << 20, flow_window=0.5)
    found = await probe.look(session, None)
    assert isinstance(found, Advanced)
    assert time.monotonic() - started < 30  # not the whole time limit: 25 KiB/s never fills 1 MiB


ENDED = f"ended after {3 * len(flv_tag(0))} media bytes"


@pytest.mark.parametrize(("mode", "marker"), [("silent", "silent"), ("ended", ENDED)])
async def test_flv_silent_or_ended_is_the_same(
    playback: Playback, session: aiohttp.ClientSession, mode: str, marker: str
) -> None:
    playback.stream("news").flv_mode = mode
    found = await FlvProbe(playback.url("flv", "news"), timeout=1, max_bytes=1 << 20).look(session, None)
    assert found == Same(marker)


async def test_flv_garbage_and_403(playback: Playback, session: aiohttp.ClientSession) -> None:
    playback.stream("junk").body = "<html>not a stream</html>"
    junk = await FlvProbe(playback.url("flv", "junk"), timeout=5).look(session, None)
    assert isinstance(junk, ProbeError) and junk.kind is ProbeErrorKind.PARSE
    playback.stream("denied").status = 403
    denied = await FlvProbe(playback.url("flv", "denied"), timeout=5).look(session, None)
    assert denied == ProbeError(ProbeErrorKind.HTTP_STATUS, f"HTTP 403 from {playback.url('flv', 'denied')}")


async def test_ffprobe_packets_mean_advanced(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    program = fake_ffprobe(tmp_path / "bin", 'echo "0.040,"\necho "0.080,"\n')
    probe = FfprobeProbe("rtmp://play.example.com/live/news", timeout=10, program=str(program))
    assert await probe.look(session, None) == Advanced("0.080")


async def test_ffprobe_failure_is_classified(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    program = fake_ffprobe(tmp_path / "bin", 'echo "$9: Connection refused" >&2\nexit 1\n')
    found = await FfprobeProbe("rtmp://play.example.com/live/news?k=s3cr3t", timeout=10, program=str(program)).look(
        session, None
    )
    assert found == ProbeError(ProbeErrorKind.CONNECT, "ffprobe: rtmp://play.example.com/live/news: Connection refused")


async def test_ffprobe_overrun_is_killed(
    tmp_path: Path, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "pid"
    fake_ffprobe(tmp_path / "bin", f'echo $$ > "{pid_file}"\nexec sleep 600\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")  # found by name on PATH
    started = time.monotonic()
    found = await FfprobeProbe("srt://play.example.com:9000", timeout=2).look(session, None)
    assert isinstance(found, ProbeError) and found.kind is ProbeErrorKind.TIMEOUT
    assert time.monotonic() - started < 10
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped, not left behind


async def test_ffprobe_missing_is_a_program_error(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    found = await FfprobeProbe("rtmp://h/x", timeout=5, program=str(tmp_path / "nope")).look(session, None)
    assert isinstance(found, ProbeError) and found.kind is ProbeErrorKind.PROGRAM
