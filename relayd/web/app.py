"""The aiohttp application and its server lifecycle.

``build_app`` wires the routes (callbacks, status API, health, metrics, the web console) and one middleware that does
two things: the ``/v1/*`` gate (bearer token, or a console session; callbacks excepted: their URL carries a mac
instead), and the error mapping — the one place where exceptions become HTTP statuses, with JSON bodies and no
tracebacks. ``WebServer`` starts it on the daemon's event loop and stops it gracefully; the daemon enters it into its
``AsyncExitStack``.

Nothing here logs request paths: a callback path contains its mac, which is a credential. aiohttp's access log is
therefore off; the handlers log stable events with the segment key instead.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from relayd.metrics import Metrics
from relayd.web.api import StatusApi
from relayd.web.auth import Handler, authorize, needs_token
from relayd.web.callbacks import MAX_BODY_BYTES, CallbackAuth, CallbackReceiver
from relayd.web.console.routes import setup_console
from relayd.web.errors import WebError
from relayd.web.health import Health
from relayd.web.views import ConsoleActions, DaemonView, ReconcileHint, StoreView

log = structlog.get_logger("relayd.web")

CALLBACK_ROUTE = "/v1/callbacks/{key}/{mac}"


def error_body(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


def _route_of(request: web.Request) -> str:
    """The route template (``/v1/callbacks/{key}/{mac}``), never the concrete path with its mac."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def http_middleware(api_token: str | None) -> Middleware:
    """The one middleware: the bearer token on protected paths, then every error mapped to a JSON response.

    WebError by its status, aiohttp's own 4xx/5xx (404, 405, 413) by theirs, anything else 500 with the traceback
    logged and not sent. One coroutine layer rather than one per concern: callbacks pass through it on the hot path.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
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

    return middleware


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
    actions: ConsoleActions | None = None,
) -> web.Application:
    """The complete relayd HTTP application. Secrets are passed as plain values and never logged."""
    if not callback_secret:
        raise ValueError("callback_secret must not be empty")
    app = web.Application(middlewares=[http_middleware(api_token)], client_max_size=max_body)
    auth = CallbackAuth(callback_secret, callback_auth_key or None, callback_max_age)
    receiver = CallbackReceiver(store=store, auth=auth, metrics=metrics, hint=hint, clock=view.now, max_body=max_body)
    app.router.add_post(CALLBACK_ROUTE, receiver.handle)
    app.router.add_routes(StatusApi(store=store, view=view).routes())
    app.router.add_routes(Health(store=store, view=view, metrics=metrics, platform_window_s=platform_window_s).routes())
    setup_console(app, store=store, api_token=api_token, actions=actions)
    return app


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
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout)
        self._site: web.TCPSite | None = None
        self.port: int | None = None

    async def start(self, host: str, port: int) -> int:
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, host, port)
        try:
            await self._site.start()
        except BaseException:
            await self._runner.cleanup()
            raise
        self.port = _bound_port(self._runner, port)
        log.info("http_listening", host=host, port=self.port)
        return self.port

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (up to the shutdown timeout), close connections."""
        await self._runner.cleanup()
        self._site = None

    async def __aenter__(self) -> WebServer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def _bound_port(runner: web.AppRunner, requested: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return requested
