"""Server-sent events for open consoles: a "changed" signal within a second of any store commit.

Why a counter and one timer: the store counts its commits, so noticing "something changed" costs the callback path
nothing at all — no hook, no per-event notify, no per-client work. One task (``ChangeFeed``) reads the counter once
per ``interval_s`` while at least one console is connected (it does not exist otherwise), and wakes every stream
at once; bursts of commits coalesce into one signal per tick. Each stream then writes one tiny event, and the page
re-reads ``/v1/schedules``: the same source as ``relayd status``. A comment line every ``heartbeat_s`` keeps proxies
from closing idle streams and lets the browser notice a dead connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog
from aiohttp import web

log = structlog.get_logger("relayd.web.console")


class ChangeFeed:
    """Watches a change counter on one timer and wakes every waiting stream when it moves."""

    def __init__(self, version: Callable[[], int], *, interval_s: float = 0.5, heartbeat_s: float = 15.0) -> None:
        self._version = version
        self._interval = interval_s
        self.heartbeat_s = heartbeat_s
        self._changed = asyncio.Event()
        self._closing = False
        self._listeners = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def listeners(self) -> int:
        return self._listeners

    async def wait(self, within_s: float) -> bool:
        """True when a change arrived within ``within_s``; False on a quiet heartbeat period or when closing."""
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), within_s)
        except TimeoutError:
            return False
        return not self._closing

    @property
    def closing(self) -> bool:
        return self._closing

    def join(self) -> None:
        self._listeners += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch(), name="relayd-console-feed")

    def leave(self) -> None:
        self._listeners -= 1

    async def close(self) -> None:
        """Wake every stream so it ends, and stop the timer (the server is shutting down)."""
        self._closing = True
        self._changed.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        seen = self._version()
        while self._listeners > 0 and not self._closing:
            await asyncio.sleep(self._interval)  # the one timer: a sampling period, not synchronisation
            current = self._version()
            if current != seen:
                seen = current
                self._changed.set()
                self._changed = asyncio.Event()  # streams waiting on the old one wake; later waits start fresh


class EventStream:
    """``GET /v1/stream``: ``event: changed`` when the store moved, ``: ping`` otherwise."""

    def __init__(self, feed: ChangeFeed) -> None:
        self._feed = feed

    async def handle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        self._feed.join()
        try:
            await response.write(b"retry: 1000\nevent: hello\ndata: {}\n\n")
            await self._pump(response)
        except ConnectionResetError:
            pass  # the browser went away; it reconnects by itself
        finally:
            self._feed.leave()
        return response

    async def _pump(self, response: web.StreamResponse) -> None:
        while not self._feed.closing:
            changed = await self._feed.wait(self._feed.heartbeat_s)
            if self._feed.closing:
                return
            await response.write(b"event: changed\ndata: {}\n\n" if changed else b": ping\n\n")
