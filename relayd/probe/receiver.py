"""A tiny callback receiver for the probe's duration: it captures the bodies the platform POSTs.

The platform's relay-callback payload is undocumented (reference Q11), so the probe gives its tasks a CallbackURL
of its own and keeps every body that arrives. It listens on the daemon's ``listen`` address (or one given), serves
``{public_url}/v1/callbacks/relayd-probe/{token}`` (under the daemon's callback prefix, so a reverse proxy that
forwards the daemon's callbacks forwards these too) and checks first that it can reach itself through
``public_url``; when it cannot, the probe says so instead of concluding that the platform sends nothing.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from relayd.settings import split_listen

PATH = "/v1/callbacks/relayd-probe/{token}"
MAX_BODY = 64 * 1024


@dataclass
class Receiver:
    """Binds ``listen``; ``url`` is the CallbackURL to give the platform once :meth:`start` succeeded."""

    listen: str
    public_url: str | None
    token: str = field(default_factory=lambda: secrets.token_hex(12))
    bodies: list[dict[str, Any]] = field(default_factory=list)
    url: str | None = None
    problem: str = ""
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None

    async def start(self) -> bool:
        """Listen and check reachability; False (with :attr:`problem` saying why) when callbacks cannot arrive."""
        try:
            host, port = split_listen(self.listen)
        except ValueError as error:
            self.problem = f"listen {self.listen!r}: {error}"
            return False
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", PATH, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        try:
            await site.start()
        except OSError as error:
            self.problem = (
                f"cannot listen on {self.listen}: {error.strerror or error} (stop the daemon or use --listen)"
            )
            return False
        bound = self._bound_port(port)
        base = (self.public_url or f"http://{_url_host(host)}:{bound}").rstrip("/")
        url = f"{base}{PATH.format(token=self.token)}"
        if not await self._reachable(url):
            return False
        self.url = url
        return True

    def _bound_port(self, port: int) -> int:
        if port or self._runner is None:
            return port
        for address in self._runner.addresses:
            return int(address[1])
        return port

    async def _reachable(self, url: str) -> bool:
        try:
            async with aiohttp.ClientSession() as session, session.get(url, timeout=aiohttp.ClientTimeout(5)) as r:
                if r.status == 200 and await r.text() == self.token:
                    return True
                self.problem = f"public_url answered HTTP {r.status}, not the probe's receiver: check public_url"
        except (aiohttp.ClientError, TimeoutError) as error:
            self.problem = f"public_url is not reachable from here ({type(error).__name__}): check public_url"
        return False

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=404)
        if request.method == "GET":
            return web.Response(text=self.token)
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        self.bodies.append(body if isinstance(body, dict) else {"_raw": str(body)[:500]})
        self._arrived.set()
        return web.Response(text="ok")

    async def wait(self, timeout_s: float) -> None:
        """Until at least one body has arrived, or the timeout."""
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout_s)
        except TimeoutError:
            return

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):  # noqa: S104 - a wildcard bind is reached through loopback from here
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
