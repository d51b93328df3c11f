"""Reliability under hostile traffic: a slow-loris flood against ``relayd run`` with few file descriptors.

Hundreds of connections that each send half a request line and wait used to hold the server for good: with the
process's open-file limit reached, ``accept()`` failed for ``/healthz`` and the platform's callbacks alike, and
asyncio logged every failed attempt. Now the oldest idle connections are dropped for newcomers, the cap stays
below the open-file limit, and accept failures are logged at a bounded rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from relayd.ids import SegmentKey
from relayd.web.signing import callback_url
from tests.e2e.harness import (
    DaemonProcess,
    free_port,
    live_schedule,
    process_settings,
    wait_for,
    write_env_config,
    write_schedules,
)

pytestmark = pytest.mark.slow

NOFILE = 256
ATTACKERS = 400
SECRET = "slowloris-callback-secret-0123456789"


@contextlib.asynccontextmanager
async def slow_clients(port: int, n: int) -> AsyncIterator[list[asyncio.StreamWriter]]:
    """``n`` connections that each sent half a request line and then say nothing."""
    writers: list[asyncio.StreamWriter] = []
    try:
        for _ in range(n):
            with contextlib.suppress(ConnectionError, TimeoutError):
                _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
                writer.write(b"GET /heal")
                writers.append(writer)
        yield writers
    finally:
        for writer in writers:
            writer.transport.abort()


async def answered(http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> int | None:
    """The status, or None if no answer came within 5 s."""
    try:
        async with asyncio.timeout(5), http.request(method, url, **kwargs) as response:
            return response.status
    except (TimeoutError, aiohttp.ClientError):
        return None


def lines_with(log: Path, text: str) -> int:
    return sum(1 for line in log.read_text(errors="replace").splitlines() if text in line)


async def test_slow_loris_with_256_open_files_cannot_lock_out_healthz_or_callbacks(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(max_task_seconds=120)
    now = time.time()
    write_schedules(tmp_path, live_schedule("news", now - 10, now + 600))
    port = free_port()
    config = tmp_path / "relayd.toml"
    settings = process_settings(emu, tmp_path, listen=f"127.0.0.1:{port}", callback_secret=SECRET, max_task_seconds=120)
    write_env_config(config, settings)
    log = tmp_path / "relayd.log"
    proc = DaemonProcess(config, log)
    proc.start(nofile=NOFILE)
    base = f"http://127.0.0.1:{port}"
    callback = callback_url(base, SECRET.encode(), SegmentKey("news.0"))
    try:
        async with aiohttp.ClientSession() as http:
            await wait_for(lambda: lines_with(log, '"relayd_ready"') > 0, 60, what="relayd ready")
            async with slow_clients(port, ATTACKERS) as writers:
                assert len(writers) > NOFILE  # more than the process could ever hold at once
                # Three rounds while the flood holds: each must be answered, not just the first.
                statuses = []
                for _ in range(3):
                    statuses.append(await answered(http, "GET", f"{base}/healthz"))
                    statuses.append(await answered(http, "POST", callback, json={"Status": "生效中"}))
            assert statuses == [200] * 6
            assert await answered(http, "GET", f"{base}/healthz") == 200
    finally:
        code = proc.terminate()
    assert code == 0
    assert lines_with(log, "socket.accept() out of system resource") == 0
    assert lines_with(log, '"http_accept_failed"') <= 10
    assert lines_with(log, '"http_max_connections_lowered"') == 1
