"""The daemon speaks the systemd notify protocol: READY only after the first reconcile, then STATUS, WATCHDOG
pings from the loop while it is healthy, RELOADING/READY on SIGHUP, STOPPING on shutdown — on a real socket."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import live_schedule, running_daemon, settings_for
from tests.integration.test_sdnotify import FakeSystemd, _bound


async def test_notify_sequence_from_the_daemon(emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    emu = await emulator(max_task_seconds=60)
    address = str(tmp_path / "notify.sock")
    sock = _bound(address)
    fake = FakeSystemd(sock)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # ping every 0.2 s
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    now = int(time.time())
    (tmp_path / "schedules").mkdir()
    (tmp_path / "schedules" / "a.toml").write_text(live_schedule("a", now, now + 120))
    try:
        async with running_daemon(settings_for(emu, tmp_path, max_task_seconds=60)) as daemon:
            record = daemon.store.segment("a.0")
            ready_seen = await fake.wait_for(lambda m: "READY=1" in m)
            assert record is not None and record.task_id  # the task existed before READY=1 was sent
            assert not any(m.startswith("STOPPING") for m in ready_seen)
            await fake.wait_for(lambda m: m.count("WATCHDOG=1") >= 3)  # keeps pinging while healthy
            os.kill(os.getpid(), signal.SIGHUP)  # systemctl reload
            await fake.wait_for(lambda m: any(x.startswith("RELOADING=1") for x in m) and m.count("READY=1") >= 2)
        messages = await fake.wait_for(lambda m: "STOPPING=1" in m)
    finally:
        sock.close()
    status = [m for m in messages if m.startswith("STATUS=")]
    assert status and "1 schedules" in status[0]
    order = [m.split("=")[0] for m in messages if not m.startswith(("WATCHDOG", "STATUS"))]
    assert order == ["READY", "RELOADING", "READY", "STOPPING"]
    assert status[0] == "STATUS=1 schedules, 1 relaying, 0 failed"
