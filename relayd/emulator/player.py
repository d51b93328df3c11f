"""The playback HTTP handler: serves each destination's HLS playlists, segments and HTTP-FLV stream.

Thin over :mod:`relayd.emulator.playback`: it applies the clock transitions due by now, reads the destination's
relaying intervals, and renders. The FLV stream is the one long-lived response: it sends a tag per
``FLV_TAG_MS`` of media time and ends when no task relays the destination any more (or the emulator stops);
between tags it waits on the stop event with a timeout, so a stopping emulator ends it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from relayd.emulator import playback
from relayd.emulator.playback import Jitter, Kind
from relayd.emulator.tasks import Tasks


@dataclass
class Player:
    tasks: Tasks
    tick: Callable[[], None]
    clock: Callable[[], float]
    stopping: asyncio.Event
    segment_s: float
    window: int
    seed: int
    jitter: Jitter = field(default_factory=Jitter)

    def media_seconds(self, key: str) -> float:
        """The destination's media time now, as its viewers see it (jitter applied)."""
        at = playback.visible_time(self.clock(), key, self.jitter, self.seed)
        return playback.media_seconds((i for t in self.tasks.on_destination(key) for i in t.intervals), at)

    def relaying(self, key: str) -> bool:
        return any(t.relaying for t in self.tasks.on_destination(key))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        asked = playback.parse(request.match_info["tail"])
        self.tick()
        if asked is None or not self.tasks.on_destination(asked.key):
            raise web.HTTPNotFound(text="no task has pushed this destination\n")
        stream = asked.key.rpartition("/")[2]
        if asked.kind is Kind.MASTER:
            return _m3u8(playback.master_playlist(stream))
        media = self.media_seconds(asked.key)
        if asked.kind is Kind.MEDIA:
            return _m3u8(playback.media_playlist(stream, media, self.segment_s, self.window))
        if asked.kind is Kind.SEGMENT:
            if asked.sequence >= playback.segments_done(media, self.segment_s):
                raise web.HTTPNotFound(text="no such segment yet\n")
            return web.Response(body=playback.ts_segment(), content_type="video/mp2t")
        return await self._flv(request, asked.key)

    async def _flv(self, request: web.Request, key: str) -> web.StreamResponse:
        if not self.relaying(key):
            raise web.HTTPNotFound(text="the destination is not relaying\n")
        response = web.StreamResponse(headers={"Content-Type": "video/x-flv"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            await response.write(playback.FLV_HEADER)
            await self._send_tags(response, key)
            await response.write_eof()
        return response

    async def _send_tags(self, response: web.StreamResponse, key: str) -> None:
        base, sent_ms = self.media_seconds(key), 0
        while not self.stopping.is_set():
            self.tick()
            if not self.relaying(key):
                return
            played_ms = (self.media_seconds(key) - base) * 1000
            while sent_ms <= played_ms:
                await response.write(playback.flv_tag(sent_ms))
                sent_ms += playback.FLV_TAG_MS
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(playback.FLV_TAG_MS / 1000):
                    await self.stopping.wait()


def _m3u8(text: str) -> web.Response:
    return web.Response(text=text, content_type="application/vnd.apple.mpegurl", headers={"Cache-Control": "no-cache"})
