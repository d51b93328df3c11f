"""sd_notify against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from relayd.sdnotify import Notifier, watchdog_loop


class FakeSystemd:
    """Receives notify datagrams on a socket, as PID 1 would."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.messages: list[str] = []

    def drain(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.messages

    async def wait_for(self, predicate: object, timeout: float = 5.0) -> list[str]:
        assert callable(predicate)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate(self.drain()):
            if loop.time() > deadline:
                raise AssertionError(f"condition not met; got {self.messages}")
            ready = asyncio.Event()
            loop.add_reader(self.sock.fileno(), ready.set)
            try:
                await asyncio.wait_for(ready.wait(), timeout=max(0.0, deadline - loop.time()))
            except TimeoutError:
                pass
            finally:
                loop.remove_reader(self.sock.fileno())
        return self.messages


def _bound(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.setblocking(False)
    return sock


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[tuple[FakeSystemd, str]]:
    path = str(tmp_path / "notify.sock")
    sock = _bound(path)
    yield FakeSystemd(sock), path
    sock.close()


async def test_messages_arrive_in_order(systemd: tuple[FakeSystemd, str]) -> None:
    fake, path = systemd
    notifier = Notifier.from_env({"NOTIFY_SOCKET": path})
    notifier.ready()
    notifier.status("3 schedules,\n2 tasks running")
    notifier.watchdog()
    notifier.reloading()
    notifier.stopping()
    notifier.close()
    got = await fake.wait_for(lambda m: len(m) >= 5)
    assert got[:3] == ["READY=1", "STATUS=3 schedules, 2 tasks running", "WATCHDOG=1"]
    reloading = got[3].split("\n")
    assert reloading[0] == "RELOADING=1"
    assert reloading[1].startswith("MONOTONIC_USEC=")
    assert int(reloading[1].split("=")[1]) > 0
    assert got[4] == "STOPPING=1"


async def test_abstract_socket(systemd: tuple[FakeSystemd, str]) -> None:
    name = f"relayd-test-{uuid.uuid4().hex}"
    sock = _bound("\0" + name)
    try:
        fake = FakeSystemd(sock)
        notifier = Notifier.from_env({"NOTIFY_SOCKET": "@" + name})
        notifier.ready()
        notifier.close()
        assert await fake.wait_for(lambda m: len(m) >= 1) == ["READY=1"]
    finally:
        sock.close()


async def test_watchdog_pings_keep_coming_while_the_loop_is_healthy(systemd: tuple[FakeSystemd, str]) -> None:
    fake, path = systemd
    notifier = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000", "WATCHDOG_PID": str(os.getpid())})
    assert notifier.watchdog_interval() == pytest.approx(0.02)
    stop = asyncio.Event()
    task = asyncio.create_task(watchdog_loop(notifier, stop))
    try:
        got = await fake.wait_for(lambda m: m.count("WATCHDOG=1") >= 5)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    assert set(got) == {"WATCHDOG=1"}
    notifier.close()


async def test_watchdog_loop_returns_at_once_without_a_watchdog(systemd: tuple[FakeSystemd, str]) -> None:
    _, path = systemd
    for env in ({"NOTIFY_SOCKET": path}, {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000", "WATCHDOG_PID": "1"}, {}):
        notifier = Notifier.from_env(env)
        assert notifier.watchdog_interval() is None
        await asyncio.wait_for(watchdog_loop(notifier, asyncio.Event()), timeout=5)


def test_no_socket_means_no_op() -> None:
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    assert notifier.notify("READY=1") is False
    notifier.ready()
    notifier.stopping()


def test_a_vanished_socket_never_raises(tmp_path: Path) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.enabled
    with capture_logs() as logs:
        assert notifier.notify("READY=1") is False
        notifier.status("still fine")
        notifier.watchdog()
    notifier.close()
    assert [entry["event"] for entry in logs] == ["sd_notify_failed"]
