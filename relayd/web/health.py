"""``GET /healthz`` (the process answers), ``GET /readyz`` (it can do its job) and ``GET /metrics``.

Readiness is a pure function of five facts (``readiness``): the daemon has finished starting (its first reconcile
pass — the same moment it tells systemd ``READY=1``; an explicit input, ``Started``, because nothing else the web
layer sees tells "first pass running" from "steady"), the store is open and healthy, the config directory has been
loaded, and the platform answered successfully within ``platform_window_s`` (the daemon passes e.g.
``max(2 × resync interval, 10 min)``, so one missed resync does not flap readiness), and no other installation holds
relayd's namespace on the account (``relayd.installation``). 503 lists every failing
reason, so an operator sees all of them at once.

A **standby** (high availability: another instance leads) does not call the platform, so the platform check does
not apply to it; instead it must be *following* — it reached the shared store within a lease length — and it says
so in the body (``"role": "standby"``), so that a load balancer keeps sending it callbacks, which it records and
passes to the leader.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiohttp import web

from relayd.metrics import CONTENT_TYPE, Metrics
from relayd.web.instances import Standings
from relayd.web.views import DaemonView, StoreView

STARTING = "starting: first reconcile pass"
NOT_FOLLOWING = "standby: the shared store has not answered within a lease length"
STANDBY_NOTE = "standby: healthy and following the leader; callbacks received here are recorded and passed to it"

Started = Callable[[], bool]
"""True once the daemon has finished its first reconcile pass (``Daemon.ready`` is set)."""


def readiness(
    *,
    started: bool = True,
    store_healthy: bool,
    config_loaded: bool,
    last_platform_success: float | None,
    platform_error: str | None,
    now: float,
    platform_window_s: float,
    standby: bool = False,
    following: bool = True,
    conflicts: Sequence[str] = (),
) -> list[str]:
    """The reasons relayd is not ready; empty when ready. A ``standby`` must be ``following`` instead of having
    reached the platform; another installation on this namespace is a reason of its own."""
    reasons: list[str] = list(conflicts)
    if not started:
        reasons.append(STARTING)
    if not store_healthy:
        reasons.append("store is not open or not healthy")
    if not config_loaded:
        reasons.append("config directory not loaded yet")
    if standby:
        return reasons if following else [*reasons, NOT_FOLLOWING]
    if last_platform_success is None:
        reasons.append("no successful platform call yet" + _suffix(platform_error))
    elif now - last_platform_success > platform_window_s:
        age = int(now - last_platform_success)
        reasons.append(f"no successful platform call for {age} s" + _suffix(platform_error))
    return reasons


def _suffix(error: str | None) -> str:
    return f" (last error: {error})" if error else ""


class Health:
    def __init__(
        self,
        *,
        store: StoreView,
        view: DaemonView,
        metrics: Metrics,
        platform_window_s: float,
        started: Started,
        standing: Standings | None = None,
    ) -> None:
        self._started = started
        self._standing = standing
        self._store = store
        self._view = view
        self._metrics = metrics
        self._window = platform_window_s

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/healthz", self.healthz),
            web.get("/readyz", self.readyz),
            web.get("/metrics", self.metrics),
        ]

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    async def readyz(self, request: web.Request) -> web.Response:
        view = self._view
        standing = self._standing() if self._standing is not None else None
        standby = standing is not None and standing.role == "standby"
        reasons = readiness(
            started=self._started(),
            store_healthy=self._store.healthy,
            config_loaded=view.config_loaded(),
            last_platform_success=view.last_platform_success(),
            platform_error=view.platform_error(),
            now=view.now(),
            platform_window_s=self._window,
            standby=standby,
            following=standing.following if standing is not None else True,
            conflicts=view.conflicts(),
        )
        role = {} if standing is None else {"role": standing.role}
        if reasons:
            return web.json_response({"ready": False, **role, "reasons": reasons}, status=503)
        return web.json_response({"ready": True, **role, **({"note": STANDBY_NOTE} if standby else {})})

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self._metrics.render(), headers={"Content-Type": CONTENT_TYPE})
