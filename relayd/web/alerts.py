"""``GET /v1/alerts``: the open alerts, read from the provider the daemon passes to the app.

The provider is ``AlertsProvider`` — a cheap synchronous read of in-memory state (``AlertManager.open_alerts``
fits). Shaping is pure (``alert_json``). Alert messages never hold target URLs, so nothing here needs redaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiohttp import web

from relayd.alerts.model import Alert
from relayd.web.api import alert_json

AlertsProvider = Callable[[], Sequence[Alert]]
"""The open alerts, most severe first. Must not block."""


def no_alerts() -> Sequence[Alert]:
    """The provider when alerting is not wired in: the endpoint answers with an empty list."""
    return ()


class AlertsApi:
    def __init__(self, provider: AlertsProvider, clock: Callable[[], float]) -> None:
        self._provider = provider
        self._clock = clock

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/v1/alerts", self.alerts)]

    async def alerts(self, request: web.Request) -> web.Response:
        now = self._clock()
        alerts = [alert_json(a, now) for a in self._provider()]
        return web.json_response({"alerts": alerts, "count": len(alerts)})
