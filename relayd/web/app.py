"""The aiohttp application and its server lifecycle.

``build_app`` wires the routes (callbacks, status API, health, metrics, the web console) and one middleware that does
two things: the ``/v1/*`` gate (bearer token, or a console session; callbacks excepted: their URL carries a mac
instead), and the error mapping — the one place where exceptions become HTTP statuses, with JSON bodies and no
tracebacks. ``WebServer`` starts it on the daemon's event loop and stops it gracefully; the daemon enters it into its
``AsyncExitStack``.

The server is guarded against slow and numerous clients (``connections``: a read timeout, a connection cap that
drops the oldest idle connection first, the cap kept below the open-file limit) and against the log flood of
``accept()`` failures (``accepts``). Binding a busy address raises ``ListenError``, one line naming ``listen``.

Nothing here logs request paths: a callback path contains its mac, which is a credential. aiohttp's access log is
therefore off; the handlers log stable events with the segment key instead.
"""

from __future__ import annotations

import asyncio
import errno
import time
from types import TracebackType

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from relayd.metrics import Metrics
from relayd.web.accepts import AcceptErrorLog
from relayd.web.alerts import AlertsApi, AlertsProvider, no_alerts
from relayd.web.api import StatusApi
from relayd.web.auth import Handler, authorize, needs_token
from relayd.web.callbacks import MAX_BODY_BYTES, CallbackAuth, CallbackReceiver
from relayd.web.connections import (
    ConnectionGuard,
    GuardedSite,
    HttpLimits,
    busy_middleware,
    effective_max_connections,
    nofile_soft_limit,
)
from relayd.web.console.live import overview_of
from relayd.web.console.routes import setup_console
from relayd.web.errors import WebError
from relayd.web.health import Health, Started
from relayd.web.instances import InstancesApi
from relayd.web.views import ConsoleActions, DaemonView, ReconcileHint, StoreView

log = structlog.get_logger("relayd.web")

CALLBACK_ROUTE = "/v1/callbacks/{key}/{mac}"
GUARD = web.AppKey("relayd_connection_guard", ConnectionGuard)
DEFAULT_LIMITS = HttpLimits()


class ListenError(Exception):
    """The HTTP server cannot bind its address; the message names the ``listen`` setting and the fix."""


def error_body(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


def _route_of(request: web.Request) -> str:
    """The route template (``/v1/callbacks/{key}/{mac}``), never the concrete path with its mac."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def http_middleware(api_token: str | None, guard: ConnectionGuard) -> Middleware:
    """The one middleware: marks the connection busy, checks the bearer token on protected paths, then maps every
    error to a JSON response.

    WebError by its status, aiohttp's own 4xx/5xx (404, 405, 413) by theirs, anything else 500 with the traceback
    logged and not sent. One coroutine layer rather than one per concern: callbacks pass through it on the hot path.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        with guard.busy(request.transport):
            return await _handle(request, handler, api_token)

    return middleware


async def _handle(request: web.Request, handler: Handler, api_token: str | None) -> web.StreamResponse:
    try:
        if needs_token(request.path):
            authorize(request, api_token, time.time())
        return await handler(request)
    except WebError as e:
        return error_body(e.status, e.code, e.message)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return error_body(e.status, (e.reason or "error").lower().replace(" ", "_"), e.reason or "error")
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("http_handler_failed", route=_route_of(request), method=request.method)
        return error_body(500, "internal", "internal error")


def build_app(
    *,
    store: StoreView,
    view: DaemonView,
    metrics: Metrics,
    hint: ReconcileHint,
    callback_secret: bytes,
    callback_auth_key: str | None = None,
    callback_max_age: float = 900.0,
    api_token: str | None = None,
    platform_window_s: float = 600.0,
    max_body: int = MAX_BODY_BYTES,
    limits: HttpLimits = DEFAULT_LIMITS,
    started: Started | None = None,
    alerts: AlertsProvider = no_alerts,
    actions: ConsoleActions | None = None,
    instances: InstancesApi | None = None,
) -> web.Application:
    """The complete relayd HTTP application. Secrets are passed as plain values and never logged.

    ``started`` says whether the daemon has finished starting; ``/readyz`` answers 503 until it does. None means
    the caller has no start-up phase to report (readiness then rests on the other checks alone).
    """
    if not callback_secret:
        raise ValueError("callback_secret must not be empty")
    guard = ConnectionGuard.from_limits(limits)
    app = web.Application(middlewares=[http_middleware(api_token, guard)], client_max_size=max_body)
    app[GUARD] = guard
    auth = CallbackAuth(callback_secret, callback_auth_key or None, callback_max_age)
    receiver = CallbackReceiver(
        store=store,
        auth=auth,
        metrics=metrics,
        hint=hint,
        clock=view.now,
        max_body=max_body,
        read_timeout_s=limits.read_timeout_s,
    )
    app.router.add_post(CALLBACK_ROUTE, receiver.handle)
    app.router.add_routes(StatusApi(store=store, view=view, alerts=alerts).routes())
    health = Health(
        store=store, view=view, metrics=metrics, platform_window_s=platform_window_s, started=started or _always,
        standing=instances.standing if instances is not None else None,
    )  # fmt: skip
    if instances is not None:
        app.router.add_routes(instances.routes())
    app.router.add_routes(AlertsApi(alerts, clock=view.now).routes())
    app.router.add_routes(health.routes())
    setup_console(app, store=store, api_token=api_token, actions=actions, overview=overview_of(view, alerts))
    return app


def _always() -> bool:
    return True


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as a (host, port) pair; ValueError if malformed."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"listen must be host:port, got {listen!r}")
    number = int(port)
    if number > 65535:
        raise ValueError(f"port out of range in {listen!r}")
    return host.strip("[]"), number


class WebServer:
    """Runs an app on one host:port of the current loop. ``start`` returns the bound port (useful with port 0)."""

    def __init__(self, app: web.Application, *, shutdown_timeout: float = 5.0) -> None:
        # handler_cancellation: a connection that is gone (closed by its client, or dropped by the guard) ends its
        # handler task at once, instead of lingering up to 10 s over a body that will never come. The callback
        # handler shields its record-and-hint step, so a platform that hangs up mid-way loses nothing.
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout, handler_cancellation=True
        )
        self._guard = app.get(GUARD) or _install_guard(app)
        self._accepts: AcceptErrorLog | None = None
        self._site: GuardedSite | None = None
        self.port: int | None = None

    @property
    def guard(self) -> ConnectionGuard:
        return self._guard

    async def start(self, host: str, port: int) -> int:
        await self._runner.setup()
        self._fit_connection_cap()
        self._site = GuardedSite(self._runner, host, port, guard=self._guard)
        try:
            await self._site.start()
        except BaseException as e:
            await self._runner.cleanup()
            if isinstance(e, OSError):
                raise ListenError(listen_problem(host, port, e)) from e
            raise
        self._accepts = AcceptErrorLog(asyncio.get_running_loop())
        self._accepts.install()
        self.port = _bound_port(self._runner, port)
        log.info("http_listening", host=host, port=self.port, max_connections=self._guard.max_connections)
        return self.port

    def _fit_connection_cap(self) -> None:
        requested = self._guard.max_connections
        soft = nofile_soft_limit()
        self._guard.max_connections = effective_max_connections(requested, soft)
        if self._guard.max_connections < requested:
            log.warning(
                "http_max_connections_lowered",
                requested=requested,
                used=self._guard.max_connections,
                nofile=soft,
                note="the open-file limit is low: raise LimitNOFILE (ulimit -n)",
            )

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (up to the shutdown timeout), close connections."""
        if self._accepts is not None:
            self._accepts.uninstall()
            self._accepts = None
        await self._runner.cleanup()
        self._site = None

    async def __aenter__(self) -> WebServer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def _install_guard(app: web.Application) -> ConnectionGuard:
    """A guard with the default limits for an app not built by ``build_app`` (e.g. a benchmark's bare app)."""
    guard = ConnectionGuard.from_limits(DEFAULT_LIMITS)
    app.middlewares.append(busy_middleware(guard))
    app[GUARD] = guard
    return guard


def listen_problem(host: str, port: int, error: OSError) -> str:
    """One line for an address that cannot be bound: what, why, which setting, the fix."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if error.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {where}: the address is already in use (another relayd, or another program); "
            "set `listen` (env RELAYD_LISTEN, flag --listen) to a free host:port, or stop the other program"
        )
    reason = error.strerror or type(error).__name__
    return f"cannot listen on {where}: {reason}; set `listen` (env RELAYD_LISTEN, flag --listen) to a usable host:port"


def _bound_port(runner: web.AppRunner, requested: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return requested
