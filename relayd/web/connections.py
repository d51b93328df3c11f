"""Bounds on what slow, idle or numerous HTTP clients can hold: hostile traffic must cost nothing that runs.

aiohttp has no timeout on reading a request head, and no cap on connections: 1,100 clients that each send half a
request line and wait hold 1,100 file descriptors for good, and once the process runs out, ``accept()`` fails for
the platform's callbacks and for ``/healthz`` alike. The guard sits between the listening socket and aiohttp's
protocol (``GuardedSite`` wraps the protocol factory; ``GuardedProtocol`` forwards every event unchanged) and
knows, for each connection, whether a request is in a handler (the app's middleware calls ``busy``) or not:

* **Read timeout.** A connection that is idle — just opened, or done with its previous request — must complete a
  request head within ``read_timeout_s``, or it is closed. The deadline is not reset by a trickle of bytes, so a
  slow-loris cannot keep it alive; it is also the keep-alive idle limit. The body has its own bound (the callback
  handler reads it within the same budget).
* **Connection cap.** At most ``max_connections`` connections. When a new one would exceed it, the connection
  idle the longest is dropped first; if none is idle (all are in handlers), the newcomer is refused. Attackers
  holding idle connections therefore lose them to newcomers, and a genuine request gets in.
* ``effective_max_connections`` keeps the cap below the process's open-file limit, with room for the store, the
  platform client and logs, so ``accept()`` itself does not run out of descriptors.

Drops are counted (``dropped``) and logged at most once per ``LOG_EVERY_S``; never per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import resource
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web

log = structlog.get_logger("relayd.web.connections")

FD_RESERVE = 128
"""Descriptors left for everything but inbound HTTP: the store and its writer, the platform client's pool, logs."""
MIN_CONNECTIONS = 16
LOG_EVERY_S = 10.0


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """The HTTP server's guards (settings ``http_read_timeout`` and ``http_max_connections``)."""

    read_timeout_s: float = 10.0
    max_connections: int = 512


class DropReason(enum.StrEnum):
    IDLE_TIMEOUT = "idle_timeout"
    EVICTED = "evicted"
    REFUSED = "refused"


def effective_max_connections(requested: int, nofile_soft: int) -> int:
    """The connection cap actually used: ``requested``, but never within ``FD_RESERVE`` of the open-file limit."""
    if nofile_soft == resource.RLIM_INFINITY or nofile_soft <= 0:
        return requested
    return min(requested, max(MIN_CONNECTIONS, nofile_soft - FD_RESERVE))


def nofile_soft_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass(eq=False, slots=True)
class _Conn:
    transport: asyncio.Transport
    busy: int = 0
    timer: asyncio.TimerHandle | None = None


@dataclass
class ConnectionGuard:
    """Tracks every open connection; closes idle ones past their deadline and the oldest idle one at the cap."""

    read_timeout_s: float
    max_connections: int
    dropped: dict[DropReason, int] = field(default_factory=lambda: dict.fromkeys(DropReason, 0))
    _conns: dict[asyncio.BaseTransport, _Conn] = field(default_factory=dict)
    _idle: dict[_Conn, None] = field(default_factory=dict)  # insertion order = idle since, oldest first
    _last_log: float = float("-inf")

    @classmethod
    def from_limits(cls, limits: HttpLimits) -> ConnectionGuard:
        return cls(read_timeout_s=limits.read_timeout_s, max_connections=limits.max_connections)

    @property
    def open(self) -> int:
        return len(self._conns)

    def protocol_factory(self, inner: Callable[[], asyncio.BaseProtocol]) -> Callable[[], asyncio.Protocol]:
        return lambda: GuardedProtocol(self, inner())

    def opened(self, transport: asyncio.Transport) -> None:
        if len(self._conns) >= self.max_connections:
            self._make_room(transport)
            if transport.is_closing():
                return
        conn = _Conn(transport)
        self._conns[transport] = conn
        self._set_idle(conn)

    def closed(self, transport: asyncio.BaseTransport) -> None:
        conn = self._conns.pop(transport, None)
        if conn is not None:
            self._clear_idle(conn)

    @contextlib.contextmanager
    def busy(self, transport: asyncio.BaseTransport | None) -> Iterator[None]:
        """Marks a connection as serving a request for the duration (the app's middleware wraps handlers)."""
        conn = self._conns.get(transport) if transport is not None else None
        if conn is None:
            yield
            return
        conn.busy += 1
        self._clear_idle(conn)
        try:
            yield
        finally:
            conn.busy -= 1
            if conn.busy == 0 and transport in self._conns:
                self._set_idle(conn)

    def _set_idle(self, conn: _Conn) -> None:
        loop = asyncio.get_running_loop()
        self._idle[conn] = None
        conn.timer = loop.call_later(self.read_timeout_s, self._expire, conn)

    def _clear_idle(self, conn: _Conn) -> None:
        self._idle.pop(conn, None)
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None

    def _expire(self, conn: _Conn) -> None:
        conn.timer = None
        if conn in self._idle:
            self._drop(conn, DropReason.IDLE_TIMEOUT)

    def _make_room(self, newcomer: asyncio.Transport) -> None:
        oldest = next(iter(self._idle), None)
        if oldest is not None:
            self._drop(oldest, DropReason.EVICTED)
        else:
            newcomer.abort()
            self._count(DropReason.REFUSED)

    def _drop(self, conn: _Conn, reason: DropReason) -> None:
        self._clear_idle(conn)
        self._conns.pop(conn.transport, None)
        conn.transport.abort()  # frees the descriptor now; an idle connection has nothing left to send
        self._count(reason)

    def _count(self, reason: DropReason) -> None:
        self.dropped[reason] += 1
        now = asyncio.get_running_loop().time()
        if reason is not DropReason.IDLE_TIMEOUT and now - self._last_log >= LOG_EVERY_S:
            self._last_log = now
            log.warning(
                "http_connection_limit",
                max_connections=self.max_connections,
                open=len(self._conns),
                dropped={r.value: n for r, n in self.dropped.items()},
                note="the oldest idle connections are being dropped; raise http_max_connections if this is genuine",
            )


def busy_middleware(guard: ConnectionGuard) -> Any:
    """A middleware that only marks connections busy, for apps other than relayd's own (which does it in its one
    middleware)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        with guard.busy(request.transport):
            response: web.StreamResponse = await handler(request)
            return response

    return middleware


class GuardedProtocol(asyncio.Protocol):
    """Forwards every transport event to aiohttp's protocol and tells the guard when a connection opens and ends."""

    __slots__ = ("_guard", "_inner", "_transport")

    def __init__(self, guard: ConnectionGuard, inner: asyncio.BaseProtocol) -> None:
        self._guard = guard
        self._inner: Any = inner  # aiohttp's RequestHandler: an asyncio.Protocol
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._inner.connection_made(transport)
        assert isinstance(transport, asyncio.Transport)
        self._guard.opened(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._guard.closed(self._transport)
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        result: bool | None = self._inner.eof_received()
        return result

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class GuardedSite(web.BaseSite):
    """A TCP site whose connections go through a ``ConnectionGuard``."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, guard: ConnectionGuard) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._guard = guard

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        factory = self._guard.protocol_factory(server)
        self._server = await loop.create_server(factory, self._host, self._port, backlog=self._backlog)
