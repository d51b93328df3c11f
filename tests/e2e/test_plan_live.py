"""``relayd plan --live``: the daemon's own decisions over the platform and the store, without acting."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from tests.e2e.harness import live_schedule, running_daemon, settings_for


async def _plan_live(emu: Any, workdir: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAYD_", "VOLC_"))}
    env |= {
        "RELAYD_ENDPOINT": emu.url,
        "RELAYD_ACCESS_KEY": emu.config.access_key,
        "RELAYD_SECRET_KEY": emu.config.secret_key,
        "RELAYD_STATE_PATH": str(workdir / "state" / "state.db"),
        "RELAYD_MAX_TASK_SECONDS": "120",
        "RELAYD_PREPARE_AHEAD": "8",  # as the daemon below runs
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "relayd",
        "plan",
        str(workdir / "schedules"),
        "--live",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return dict(json.loads(out))


def _actions(report: dict[str, Any], sid: str) -> list[str]:
    return [a["action"] for row in report["schedules"] if row["id"] == sid for a in row["actions"]]


async def test_plan_live_shows_creates_then_nothing_then_deletes(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(max_task_seconds=120)
    now = int(time.time())
    (tmp_path / "schedules").mkdir()
    config = tmp_path / "schedules" / "a.toml"
    config.write_text(live_schedule("one", now, now + 300) + live_schedule("two", now, now + 300))

    fresh = await _plan_live(emu, tmp_path)
    assert _actions(fresh, "one") == ["create"] and _actions(fresh, "two") == ["create"]
    assert any("no state file" in note for note in fresh["notes"])
    assert emu.tasks() == []  # a preview never acts

    async with running_daemon(settings_for(emu, tmp_path, max_task_seconds=120)):
        created = {t["TaskId"] for t in emu.tasks()}
    assert len(created) == 2
    settled = await _plan_live(emu, tmp_path)
    assert _actions(settled, "one") == [] and _actions(settled, "two") == []

    config.write_text(live_schedule("one", now, now + 300))
    removed = await _plan_live(emu, tmp_path)
    assert _actions(removed, "two") == ["delete"] and _actions(removed, "one") == []
    assert {t["TaskId"] for t in emu.tasks()} == created
