"""A small playback server for health tests: HLS playlists and HTTP-FLV streams on 127.0.0.1, each scriptable.

* ``/hls/{name}.m3u8``: a live media playlist whose media sequence advances one segment per ``segment`` s;
  ``freeze()`` stops it, ``status``/``body`` override the answer (403, garbage), ``lag`` serves an older
  playlist (a slow CDN edge), ``slow`` delays some answers past a probe's time limit.
* ``/master/{name}.m3u8``: a master playlist pointing at ``/hls/{name}.m3u8``.
* ``/flv/{name}.flv``: an FLV header, then timed tags while ``flv_mode`` is "flowing"; "silent" sends the header
  only and holds the connection; "ended" sends a few tags and closes. ``flv_closed`` is set when a flowing
  response ended (the prober closed it).

``fake_ffprobe`` writes a stand-in ``ffprobe`` script for the RTMP/SRT probe.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

FLV_HEADER = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"


def flv_tag(timestamp_ms: int, size: int = 1024) -> bytes:
    """A video tag of ``size`` payload bytes and its trailing PreviousTagSize."""
    header = bytes([9]) + size.to_bytes(3, "big") + (timestamp_ms & 0xFFFFFF).to_bytes(3, "big")
    header += bytes([(timestamp_ms >> 24) & 0xFF]) + b"\x00\x00\x00"
    return header + b"\x00" * size + (11 + size).to_bytes(4, "big")


@dataclass
class Stream:
    """One scripted stream; all fields may be changed while the server runs."""

    segment: float = 1.0
    started: float = field(default_factory=time.monotonic)
    frozen: int | None = None
    status: int = 200
    body: str | None = None
    lag: Callable[[], float] = lambda: 0.0
    slow: Callable[[int], float] = lambda _: 0.0  # request number -> seconds to hold the answer
    flv_mode: str = "flowing"
    requests: int = 0
    served: int = 0
    flv_closed: asyncio.Event = field(default_factory=asyncio.Event)

    def sequence(self) -> int:
        if self.frozen is not None:
            return self.frozen
        live = math.floor((time.monotonic() - self.lag() - self.started) / self.segment)
        self.served = max(self.served, live)  # an edge may lag, but never serves older than it did
        return self.served

    def freeze(self) -> None:
        self.frozen = self.sequence()

    def playlist(self) -> str:
        first = self.sequence()
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{math.ceil(self.segment)}"]
        lines.append(f"#EXT-X-MEDIA-SEQUENCE:{first}")
        for number in range(first, first + 3):
            lines += [f"#EXTINF:{self.segment:.3f},", f"seg{number}.ts"]
        return "\n".join(lines) + "\n"


class Playback:
    """The server: ``streams[name]`` is created on first use; ``url(kind, name)`` builds addresses."""

    def __init__(self) -> None:
        self.streams: dict[str, Stream] = {}
        self.base = ""
        self.closing = asyncio.Event()

    def stream(self, name: str) -> Stream:
        return self.streams.setdefault(name, Stream())

    def url(self, kind: str, name: str) -> str:
        suffix = "flv" if kind == "flv" else "m3u8"
        return f"{self.base}/{kind}/{name}.{suffix}"

    async def _answer(self, stream: Stream) -> web.Response | None:
        stream.requests += 1
        delay = stream.slow(stream.requests)
        if delay:
            with suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self.closing.wait()
        if stream.status != 200:
            return web.Response(status=stream.status, text="denied")
        if stream.body is not None:
            return web.Response(text=stream.body)
        return None

    async def hls(self, request: web.Request) -> web.Response:
        stream = self.stream(request.match_info["name"])
        answer = await self._answer(stream)
        return answer or web.Response(text=stream.playlist(), content_type="application/vnd.apple.mpegurl")

    async def master(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        answer = await self._answer(self.stream(f"master-{name}"))
        text = f"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\n../hls/{name}.m3u8\n"
        return answer or web.Response(text=text, content_type="application/vnd.apple.mpegurl")

    async def flv(self, request: web.Request) -> web.StreamResponse:
        stream = self.stream(request.match_info["name"])
        answer = await self._answer(stream)
        if answer is not None:
            return answer
        response = web.StreamResponse(headers={"Content-Type": "video/x-flv"})
        await response.prepare(request)
        await response.write(FLV_HEADER)
        try:
            await self._flv_body(stream, response)
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            stream.flv_closed.set()
        return response

    async def _flv_body(self, stream: Stream, response: web.StreamResponse) -> None:
        if stream.flv_mode == "silent":
            await self.closing.wait()
            return
        count = 3 if stream.flv_mode == "ended" else None
        timestamp = 0
        while count is None or timestamp < count * 40:
            await response.write(flv_tag(timestamp))
            timestamp += 40
            if count is None:
                with suppress(TimeoutError):  # pace the stream like a live encoder (25 tags a second)
                    async with asyncio.timeout(0.04):
                        await self.closing.wait()
                if self.closing.is_set():
                    return
        await response.write_eof()


def fake_ffprobe(directory: Path, body: str) -> Path:
    """An executable ``ffprobe`` shell script in ``directory`` running ``body``."""
    directory.mkdir(exist_ok=True)
    path = directory / "ffprobe"
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)
    return path


@asynccontextmanager
async def serve() -> AsyncIterator[Playback]:
    playback = Playback()
    app = web.Application()
    app.router.add_get("/hls/{name}.m3u8", playback.hls)
    app.router.add_get("/master/{name}.m3u8", playback.master)
    app.router.add_get("/flv/{name}.flv", playback.flv)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    playback.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield playback
    finally:
        playback.closing.set()
        await runner.cleanup()
