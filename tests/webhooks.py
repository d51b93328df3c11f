"""A webhook target for alert tests: an aiohttp server on 127.0.0.1 that records the JSON bodies posted to it.

Paths are ``/{kind}/{token}``: ``/hang/...`` never answers until ``release`` is set, ``/fail/...`` (and any kind in
``failing``) answers 500, every other kind answers 200. ``url(kind)`` is the Apprise ``json://`` URL of a kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web


class Receiver:
    def __init__(self, token: str) -> None:
        self.token = token
        self.bodies: dict[str, list[dict[str, Any]]] = {}
        self.base = ""
        self.release = asyncio.Event()
        self.failing: set[str] = set()
        self.hanging = 0
        """Requests to ``/hang/...`` received (each held until ``release``)."""
        self._changed = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        if kind == "hang":
            async with self._changed:
                self.hanging += 1
                self._changed.notify_all()
            await self.release.wait()
        body = await request.json()
        async with self._changed:
            self.bodies.setdefault(kind, []).append({**body, "_at": time.monotonic()})
            self._changed.notify_all()
        return web.Response(status=500 if kind == "fail" or kind in self.failing else 200)

    def url(self, kind: str) -> str:
        return f"json://{self.base}/{kind}/{self.token}"

    def got(self, kind: str) -> list[dict[str, Any]]:
        return self.bodies.get(kind, [])

    def titles(self, kind: str) -> list[str]:
        return [str(b.get("title", "")) for b in self.got(kind)]

    async def wait_for(self, kind: str, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.got(kind)) >= count)
        return self.got(kind)

    async def wait_hanging(self, count: int, timeout: float = 15.0) -> None:
        """Until ``count`` requests to ``/hang/...`` have arrived (and are being held)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.hanging >= count)


@contextlib.asynccontextmanager
async def webhook_receiver(token: str) -> AsyncIterator[Receiver]:
    """A running receiver on a free port of 127.0.0.1; hanging requests are released and the server stopped on exit."""
    rx = Receiver(token)
    app = web.Application()
    app.router.add_post("/{kind}/{token}", rx.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rx.base = f"127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield rx
    finally:
        rx.release.set()
        await runner.cleanup()
