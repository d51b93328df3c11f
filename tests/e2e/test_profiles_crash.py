"""Crash and adoption against every named emulator profile (``lenient``, ``strict``, ``byteplus``).

``relayd run`` runs as a child process and is killed with SIGKILL twice: once as soon as it has created its first
tasks (more creates are then in flight or due), and once while a Create is in flight on the platform — the platform
carries that Create out after the daemon died, so the record holds a CREATING intent and never learns the task id.
A new daemon must then adopt every task by its Title (10-character Titles under ``byteplus``): never two tasks with
one Title at once, no leaked task, every ended task deleted, no ``failed`` event, no overlap on a destination.

The windows began before the test, so the first daemon creates segments whose windows already started: under
``strict`` (no slack for a past StartTime) that first Create is refused, and relayd learns to start late tasks a
few seconds ahead instead of failing the segment.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from relayd.emulator.server import Emulator
from relayd.store import SegmentState
from tests.e2e.harness import (
    DaemonProcess,
    chain_on,
    kill_on_arrival,
    live_schedule,
    owned_tasks,
    process_settings,
    relaying_on,
    running_daemon,
    settings_for,
    titles_held_twice,
    wait_for,
    write_env_config,
    write_schedules,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SIDS = ("k0", "k1", "k2")
PROFILES: dict[str, dict[str, Any]] = {"lenient": {}, "strict": {}, "byteplus": {"platform": "byteplus"}}
CAP = {"lenient": 8, "strict": 8, "byteplus": 16}
"""The task cap: at 1 Create/s (byteplus) the three schedules need six creates before their first hand-off."""
IN_FLIGHT_MS = 1500
"""How long the platform holds the Create the second kill lands in before carrying it out."""


def dst(sid: str) -> str:
    return f"rtmp://push.test/live/{sid}"


def timing(profile: str) -> dict[str, Any]:
    """The same settings for the killed child processes and for the daemon that adopts what they left."""
    cap = CAP[profile]
    return {
        "max_task_seconds": cap,
        "prepare_ahead": cap,
        "retention": 3,
        "resync_interval": 3,
        "horizon": 300,
        "restart_backoff_base": 0.5,
        "restart_backoff_cap": 2,
        "restart_max_attempts": 3,
        "api_timeout": 3,
        **PROFILES[profile],
    }


def log_events(path: Path, event: str) -> list[dict[str, Any]]:
    """The child's JSON log lines of one event (lines that are not JSON, e.g. a traceback, are skipped)."""
    found = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == event:
            found.append(entry)
    return found


async def kill_once_tasks_exist(proc: DaemonProcess, emu: Emulator, cap: int) -> None:
    """Start the child; once the platform holds a task per schedule, kill it as the next Create arrives."""
    before = {t["TaskId"] for t in emu.history()}
    proc.start()
    await wait_for(lambda: len({t["TaskId"] for t in emu.history()} - before) >= len(SIDS), 60, what="first tasks")
    await kill_on_arrival(proc, emu, "CreatePullToPushTask", 3 * cap)


async def kill_mid_create(proc: DaemonProcess, emu: Emulator, cap: int) -> float:
    """Start the child, let every schedule relay, then kill it while the platform holds a Create that it carries
    out afterwards. Returns the instant of the kill."""
    proc.start()
    await wait_for(lambda: all(relaying_on(emu, dst(s)) for s in SIDS), 60, what="every schedule relaying")
    emu.set_fault("CreatePullToPushTask", latency_ms=IN_FLIGHT_MS, count=1)
    try:
        return await kill_on_arrival(proc, emu, "CreatePullToPushTask", 3 * cap)
    finally:
        emu.clear_faults()


@pytest.mark.parametrize("profile", list(PROFILES))
async def test_sigkilled_daemon_leaves_tasks_a_new_one_adopts_by_title(
    emulator: Any, tmp_path: Path, profile: str
) -> None:
    cap = CAP[profile]
    emu = await emulator(max_task_seconds=cap, admin=True, profile=profile, callback_retry_delay_s=0.2)
    t = int(time.time())
    end = t + 2 * cap + 20
    write_schedules(tmp_path, "".join(live_schedule(sid, end - 60, end) for sid in SIDS))  # windows last >= 60 s
    config, log = tmp_path / "relayd.toml", tmp_path / "relayd.log"
    write_env_config(config, process_settings(emu, tmp_path, **timing(profile)))
    proc = DaemonProcess(config, log)

    await kill_once_tasks_exist(proc, emu, cap)
    killed_at = await kill_mid_create(proc, emu, cap)
    await wait_for(
        lambda: any(h["CreatedAt"] > killed_at for h in emu.history()), 10, what="the in-flight Create carried out"
    )
    orphan = next(h for h in emu.history() if h["CreatedAt"] > killed_at)
    assert proc.proc is not None and proc.proc.returncode == -9

    async with running_daemon(settings_for(emu, tmp_path, **timing(profile))) as daemon:
        await wait_for(lambda: time.time() > end, end - time.time() + 4 * cap, what="every window to end")
        await wait_for(lambda: not owned_tasks(emu), 30, what="every ended task deleted")
        records = daemon.store.segments(include_deleted=True)
        adopted = await daemon.store.events(kind="adopt", limit=500)
        failed = await daemon.store.events(kind="failed", limit=100)

    history = emu.history()
    assert failed == [] and all(r.state == SegmentState.DELETED for r in records), failed
    assert orphan["TaskId"] in {e.task_id for e in adopted}, "the task created after the kill adopted by its Title"
    assert {r.task_id for r in records} >= {h["TaskId"] for h in history}, "every task the platform made is known"
    assert titles_held_twice(history) == [], "never two tasks with one Title at once"
    assert all(h["DeletedAt"] is not None for h in history), "no leaked task"
    for sid in SIDS:
        assert chain_on(history, dst(sid)).overlaps == [], sid
    if profile == "strict":
        learnt = [e for e in log_events(log, "platform_fact_learnt") if e.get("fact") == "past_start"]
        assert learnt and learnt[0]["value"] is False and "StartTime" in learnt[0]["evidence"], learnt
    if profile == "byteplus":
        assert max(len(h["Title"]) for h in history) <= 10
