"""``relayd demo --duration 60 --check``: the newcomer's first run doubles as a smoke test of the whole product."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys

import pytest

from relayd.emulator.config import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY
from tests.e2e.harness import free_port

pytestmark = pytest.mark.slow

OLD_DEFAULT_PORT = 8080


async def test_demo_chains_restarts_and_cleans_up_within_a_minute() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAYD_", "VOLC_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "relayd",
        "demo",
        "--duration",
        "60",
        "--check",
        "--log-format",
        "json",
        "--listen",
        f"127.0.0.1:{free_port()}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    summary, logs = out.decode(), err.decode().splitlines()
    assert proc.returncode == 0, summary + err.decode()[-3000:]
    # The summary is read from the emulator's history: zero-gap hand-offs, a restart, deleted tasks.
    assert "hand-offs (gap):      2 (0s, 0s); overlaps: 0" in summary
    assert "restarts:             1" in summary
    assert "ended tasks deleted:  2" in summary
    events = [json.loads(line) for line in logs if line.startswith("{")]  # every log line is JSON
    assert len(events) == sum(1 for line in logs if line.strip())
    names = [e["event"] for e in events]
    assert {"task_created", "demo_injecting_failure", "task_restarted", "task_deleted"} <= set(names)
    assert names.index("demo_injecting_failure") < names.index("task_restarted")
    assert not any(secret in err.decode() for secret in (DEFAULT_SECRET_KEY, DEFAULT_ACCESS_KEY))


async def _demo(*args: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAYD_", "VOLC_"))}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "relayd",
        "demo",
        "--log-format",
        "json",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


async def _wait_for_line(stream: asyncio.StreamReader, text: str, timeout: float = 60) -> list[str]:
    """Lines read until one containing ``text`` (AssertionError if the stream ends or the time is up first)."""
    seen: list[str] = []
    async with asyncio.timeout(timeout):
        while line := (await stream.readline()).decode():
            seen.append(line)
            if text in line:
                return seen
    raise AssertionError(f"{text!r} never logged; got:\n{''.join(seen)[-3000:]}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
async def test_stopping_the_demo_as_the_readme_says_prints_its_summary_and_exits_0(signum: int) -> None:
    proc = await _demo()  # no --listen: the default must not collide with anything on this machine either
    assert proc.stdout is not None and proc.stderr is not None
    before = await _wait_for_line(proc.stderr, '"demo_ready"')
    proc.send_signal(signum)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    errors = "".join(before) + err.decode()
    assert proc.returncode == 0, errors[-3000:]
    assert "relayd demo summary" in out.decode() and "tasks created:" in out.decode()
    assert "Traceback" not in errors and "StoreError" not in errors and "is closed" not in errors


async def test_the_demo_picks_a_free_port_and_prints_it() -> None:
    with socket.socket() as taken:
        with contextlib.suppress(OSError):  # already busy is just as good: the old fixed default must be taken
            taken.bind(("127.0.0.1", OLD_DEFAULT_PORT))
            taken.listen()
        proc = await _demo()
        assert proc.stdout is not None and proc.stderr is not None
        lines = await _wait_for_line(proc.stderr, '"demo_ready"')
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.communicate(), 60)
    events = [json.loads(line) for line in lines if line.startswith("{")]
    ready = next(e for e in events if e["event"] == "demo_ready")
    assert ready["url"].startswith("http://127.0.0.1:") and ready["url"] != f"http://127.0.0.1:{OLD_DEFAULT_PORT}"
    assert ready["url"] in ready["status_command"]
    assert proc.returncode == 0


async def test_the_demo_on_a_busy_listen_flag_is_one_line_naming_the_flag() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = await _demo("--listen", f"127.0.0.1:{port}")
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    problems = [line for line in err.decode().splitlines() if line.startswith("error:")]
    assert proc.returncode == 2, err.decode()[-3000:]
    assert "Traceback" not in err.decode()
    assert len(problems) == 1 and "already in use" in problems[0] and "--listen" in problems[0]
