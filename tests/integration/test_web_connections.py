"""The HTTP server under slow and numerous clients, over real sockets: read timeout, connection cap (oldest idle
dropped first), slow bodies, rate-limited accept errors, and a busy address named in one line."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from relayd.ids import SegmentKey, TaskId
from relayd.settings import Settings
from relayd.web.accepts import ACCEPT_MESSAGE, AcceptErrorLog
from relayd.web.app import ListenError, WebServer, build_app
from relayd.web.connections import FD_RESERVE, MIN_CONNECTIONS, DropReason, HttpLimits, effective_max_connections
from relayd.web.signing import callback_mac
from tests.integration.test_web_support import NOW, SECRET, Harness, open_store, put_segment, segment, start_harness

READ_TIMEOUT = 0.5
MAX_CONNECTIONS = 8

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    store = await open_store(tmp_path)
    await put_segment(store, segment("s1", 0, NOW - 100, NOW + 1000, task_id=TaskId("t1")))
    limits = HttpLimits(read_timeout_s=READ_TIMEOUT, max_connections=MAX_CONNECTIONS)
    harness = await start_harness(store, limits=limits)
    yield harness
    await harness.close()


@contextlib.asynccontextmanager
async def raw_connections(h: Harness, n: int, first_bytes: bytes) -> AsyncIterator[list[Stream]]:
    port = int(h.base.rsplit(":", 1)[1])
    streams: list[Stream] = []
    try:
        for _ in range(n):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(first_bytes)
            await writer.drain()
            streams.append((reader, writer))
        yield streams
    finally:
        for _, writer in streams:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """True when the server closes the connection (EOF or reset) within ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(1024):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


async def healthz(h: Harness) -> int:
    async with asyncio.timeout(5), h.session.get(h.url("/healthz")) as response:
        return response.status


async def test_half_a_request_line_is_closed_after_the_read_timeout(h: Harness) -> None:
    async with raw_connections(h, 1, b"GET /heal") as [(reader, _)]:
        started = time.monotonic()
        assert await closed_by_server(reader, within=10 * READ_TIMEOUT + 5)
    assert time.monotonic() - started >= READ_TIMEOUT * 0.9
    assert h.server.guard.dropped[DropReason.IDLE_TIMEOUT] == 1


async def test_a_trickle_of_header_bytes_does_not_extend_the_deadline(h: Harness) -> None:
    async with raw_connections(h, 1, b"GET /healthz HTTP/1.1\r\n") as [(reader, writer)]:
        started = time.monotonic()

        async def trickle() -> None:  # the attacker's pacing: one header byte every 50 ms, forever
            with contextlib.suppress(ConnectionError):
                while not writer.is_closing():
                    writer.write(b"X")
                    await writer.drain()
                    await asyncio.sleep(0.05)

        sender = asyncio.create_task(trickle())
        try:
            assert await closed_by_server(reader, within=10 * READ_TIMEOUT + 5)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
    assert time.monotonic() - started < 10 * READ_TIMEOUT + 5


async def test_at_the_cap_the_oldest_idle_connections_go_first_and_healthz_gets_in(h: Harness) -> None:
    async with raw_connections(h, 3 * MAX_CONNECTIONS, b"GET /heal") as streams:
        assert h.server.guard.open <= MAX_CONNECTIONS
        assert await healthz(h) == 200
        oldest, newest = streams[:MAX_CONNECTIONS], streams[-(MAX_CONNECTIONS // 2) :]
        assert all([await closed_by_server(reader, within=2) for reader, _ in oldest])
        assert h.server.guard.dropped[DropReason.EVICTED] >= 2 * MAX_CONNECTIONS
        # The newest attackers were not dropped for the cap (only their read timeout will close them).
        assert h.server.guard.dropped[DropReason.IDLE_TIMEOUT] == 0
        assert not any(reader.at_eof() for reader, _ in newest)


async def test_a_valid_callback_gets_in_while_the_cap_is_full_of_slow_clients(h: Harness) -> None:
    url = h.url(f"/v1/callbacks/s1-0/{callback_mac(SECRET, SegmentKey('s1-0'))}")
    body = {"TaskId": "t1", "Status": "生效中"}
    async with (
        raw_connections(h, 2 * MAX_CONNECTIONS, b"POST /v1/callbacks/s1-0/"),
        asyncio.timeout(5),
        h.session.post(url, json=body) as response,
    ):
        assert response.status == 200
        assert (await response.json())["result"] == "accepted"


async def test_a_body_that_never_arrives_is_408_after_the_read_timeout(h: Harness) -> None:
    path = f"/v1/callbacks/s1-0/{callback_mac(SECRET, SegmentKey('s1-0'))}"
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    async with raw_connections(h, 1, head.encode() + b'{"TaskId": ') as [(reader, _)]:
        async with asyncio.timeout(10 * READ_TIMEOUT + 5):
            status_line = await reader.readline()
    assert status_line.split()[1] == b"408"
    assert list(await h.store.events(kind="callback")) == []


async def test_keep_alive_connections_serve_requests_and_close_when_idle(h: Harness) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    async with raw_connections(h, 1, request) as [(reader, writer)]:
        assert (await reader.readline()).split()[1] == b"200"
        await reader.readuntil(b'{"alive": true}')
        writer.write(request)  # the same connection serves a second request …
        assert (await reader.readline()).split()[1] == b"200"
        await reader.readuntil(b'{"alive": true}')
        assert await closed_by_server(reader, within=10 * READ_TIMEOUT + 5)  # … then closes once idle


async def test_a_busy_address_is_one_line_naming_listen(h: Harness) -> None:
    port = int(h.base.rsplit(":", 1)[1])
    app = build_app(store=h.store, view=h.view, metrics=h.metrics, hint=lambda *a: None, callback_secret=SECRET)
    server = WebServer(app)
    with pytest.raises(ListenError) as caught:
        await server.start("127.0.0.1", port)
    message = str(caught.value)
    assert "\n" not in message and "already in use" in message and "`listen`" in message and str(port) in message


async def test_accept_errors_are_logged_once_per_interval_with_a_count() -> None:
    loop = asyncio.get_running_loop()
    passed_on: list[str] = []
    loop.set_exception_handler(lambda _loop, context: passed_on.append(context["message"]))
    accepts = AcceptErrorLog(loop, interval_s=60.0)
    accepts.install()
    try:
        with capture_logs() as logs:
            for _ in range(1000):  # what asyncio's accept loop reports when descriptors run out
                loop.call_exception_handler({"message": ACCEPT_MESSAGE, "exception": OSError(errno.EMFILE, "x")})
            loop.call_exception_handler({"message": "something else"})
    finally:
        accepts.uninstall()
        loop.set_exception_handler(None)
    assert [(e["event"], e["error"], e["suppressed"]) for e in logs] == [("http_accept_failed", "EMFILE", 0)]
    assert passed_on == ["something else"]


def test_the_connection_cap_stays_below_the_open_file_limit() -> None:
    assert effective_max_connections(512, 1024) == 512
    assert effective_max_connections(512, 256) == 256 - FD_RESERVE
    assert effective_max_connections(512, 64) == MIN_CONNECTIONS
    assert effective_max_connections(512, -1) == 512  # RLIM_INFINITY


def test_the_server_defaults_are_the_settings_defaults() -> None:
    defaults = Settings()
    assert HttpLimits() == HttpLimits(defaults.http_read_timeout, defaults.http_max_connections)


async def test_an_app_not_built_by_build_app_is_guarded_too() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3 * READ_TIMEOUT)  # a handler longer than the read timeout: busy, so never dropped
        return web.Response(text="done")

    app = web.Application()
    app.router.add_get("/slow", slow)
    server = WebServer(app, shutdown_timeout=1.0)
    server.guard.read_timeout_s = READ_TIMEOUT
    port = await server.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/slow") as response:
            assert (response.status, await response.text()) == (200, "done")
        assert server.guard.dropped[DropReason.IDLE_TIMEOUT] <= 1  # at most the kept-alive client connection
    finally:
        await server.stop()
