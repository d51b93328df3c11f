"""``relayd demo --duration 60 --check``: the newcomer's first run doubles as a smoke test of the whole product."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest

from relayd.emulator.config import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY
from tests.e2e.harness import free_port

pytestmark = pytest.mark.slow


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
