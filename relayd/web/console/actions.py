"""The console's two safe actions as ``/v1`` endpoints: retry a failing segment now, release held removals.

Both are authorised by the ``/v1`` gate (bearer token, or a console session with its CSRF token from the same
origin), carried out by a callable the daemon provides (``views.ConsoleActions``), and logged with who asked:
the remote address and ``token`` or ``session:<id prefix>`` — never the token or cookie itself. Neither changes
desired state: that stays in the config directory.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from relayd.ids import SegmentKey
from relayd.web.auth import PRINCIPAL
from relayd.web.errors import Unavailable, WebError
from relayd.web.views import ConsoleActions

log = structlog.get_logger("relayd.web.console")


class Conflict(WebError):
    status = 409
    code = "conflict"


def _who(request: web.Request) -> dict[str, str]:
    return {"remote": request.remote or "unknown", "principal": str(request.get(PRINCIPAL, "unknown"))}


class ActionApi:
    def __init__(self, actions: ConsoleActions | None) -> None:
        self._actions = actions

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/segments/{key}/retry", self.retry_now),
            web.post("/v1/removals/release", self.release_removals),
        ]

    def _provider(self) -> ConsoleActions:
        if self._actions is None:
            raise Unavailable("this daemon does not offer console actions", code="action_unavailable")
        return self._actions

    async def retry_now(self, request: web.Request) -> web.Response:
        key = SegmentKey(request.match_info["key"])
        done = await self._provider().retry_now(key)
        log.info("console_action", action="retry_now", segment_key=key, done=done, **_who(request))
        if not done:
            raise Conflict(f"segment {key!r} is unknown or not retrying or failed")
        return web.json_response({"ok": True, "segment_key": key})

    async def release_removals(self, request: web.Request) -> web.Response:
        released = list(await self._provider().release_removals())
        log.info("console_action", action="release_removals", released=released, **_who(request))
        return web.json_response({"ok": True, "released": released})
