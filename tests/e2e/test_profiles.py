"""The end-to-end scenarios against every named emulator profile (``lenient``, ``strict``, ``byteplus``).

One daemon per profile, four schedules side by side, each playing one scenario: a chain whose hand-offs are measured
(0 s where tasks may touch, 1 s where one destination may not even be shared by touching windows), a failure that is
restarted with whatever the platform accepts, a task deleted behind relayd's back (drift repair), and a hot reload
of a running schedule (in place, or from the next segment where Update is refused while running). Half way the
daemon is stopped and a new one takes over what the first created; at the end every task is deleted (cleanup). No
segment may ever fail because of the profile's answers. (A real crash, SIGKILL of ``relayd run`` with a Create in
flight, is played against every profile in ``test_profiles_crash.py``.)

The windows began before the test: the first task of each schedule is created late. Under ``strict`` a StartTime
in the past is refused without slack, so that first Create is refused, and relayd must learn to start late tasks a
few seconds ahead. Its next segments are prepared only 4 s ahead there, so the late task is created before its
successor could hold the destination.

BytePlus is played as the profile has it — 10-character Titles, 1 Create/Update per second, signing region
``ap-singapore-1``, list times in ``Z`` — against relayd with ``platform = "byteplus"``. At 1 Create/s the four
schedules need 8 creates (the running segments and the next ones) before the first hand-off, so that profile runs
16 s tasks with its first hand-off 10 s in (the others: 8 s tasks, first hand-off 4 s in).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from relayd.daemon import Daemon
from relayd.ids import ScheduleId
from relayd.platform.facts import RelaunchFrom
from relayd.store import SegmentState
from tests.e2e.harness import (
    chain_on,
    live_schedule,
    owned_tasks,
    relaying_on,
    running_daemon,
    settings_for,
    titles_held_twice,
    wait_for,
    write_schedules,
)

pytestmark = pytest.mark.slow

CAP = 8
END_S = 24
PROFILES: dict[str, tuple[dict[str, str], dict[str, Any]]] = {
    "lenient": ({}, {}),
    "strict": ({}, {"prepare_ahead": 4}),
    "byteplus": ({}, {"platform": "byteplus"}),
}
LAYOUT: dict[str, tuple[int, int, int]] = {
    "lenient": (CAP, 36, END_S),
    "strict": (CAP, 40, END_S),
    "byteplus": (16, 6, 54),
}
"""Per profile: the task cap, how long before the test's start the windows began, and when they end after it
(under ``strict`` a segment starts with the test, so its late task has seconds enough to start ahead of now)."""
GAP = {"lenient": 0.0, "strict": 1.0, "byteplus": 0.0}
"""The hand-off gap each profile allows: 0 where touching windows are accepted, 1 s where they are refused."""
HANDOFFS = {"lenient": 3, "strict": 2, "byteplus": 3}
"""The hand-offs of the measured chain: the segments still ahead when the test starts, less one."""


def dst(sid: str) -> str:
    return f"rtmp://push.test/live/{sid}"


def schedules(t: int, hot_source: str, profile: str) -> str:
    """Windows must last 60 s: they start in the past, so only their last part (three hand-offs) is still ahead."""
    _, before, after = LAYOUT[profile]
    text = "".join(live_schedule(sid, t - before, t + after) for sid in ("ch", "rs", "dr"))
    return text + live_schedule("hr", t - before, t + after).replace("rtmp://pull.test/live/hr", hot_source)


def relaying(emu: Any, sid: str, *, left_s: float = 0.0) -> dict[str, Any] | None:
    """The task relaying to the schedule's destination now, with at least ``left_s`` seconds of its window left."""
    return relaying_on(emu, dst(sid), left_s=left_s)


async def restarted(daemon: Daemon, sid: str) -> bool:
    events = await daemon.store.events(kind="restart", limit=100)
    return any(e.schedule_id == sid for e in events)


async def recreated(daemon: Daemon, sid: str) -> bool:
    events = await daemon.store.events(kind="create", limit=500)
    return any(e.schedule_id == sid and e.data.get("restart") for e in events)


async def past_starts_refused(daemon: Daemon) -> list[str]:
    """The schedules whose Create was refused for a StartTime in the past (each retried, never failed)."""
    events = await daemon.store.events(kind="create_failed", limit=500)
    return [str(e.schedule_id) for e in events if "StartTime" in str(e.data.get("error")) and "past" in str(e.data)]


async def first_half(emu: Any, daemon: Daemon, tmp_path: Path, t: int, profile: str) -> None:
    """Restart after a failure, drift repair and a hot reload, each on its own schedule."""
    await wait_for(lambda: all(relaying(emu, s, left_s=4) for s in ("rs", "dr", "hr")), 30, what="tasks relaying")
    failing, drifting = relaying(emu, "rs", left_s=4), relaying(emu, "dr", left_s=4)
    assert failing is not None and drifting is not None
    emu.fail_task(failing["TaskId"], repeat=0)  # as the profile's `failure` quirk says: 停用, or 生效中 with a callback
    emu.delete_task_behind_back(drifting["TaskId"])
    write_schedules(tmp_path, schedules(t, "rtmp://pull.test/live/hr-new", profile))
    await daemon.reload()
    await wait_for(lambda: restarted(daemon, ScheduleId("rs")), 30, what="the failed relay restarted")
    await wait_for(lambda: recreated(daemon, ScheduleId("dr")), 30, what="the deleted task created again")


def hot_source_relays(emu: Any) -> bool:
    task = relaying(emu, "hr")
    return task is not None and task["SrcAddr"] == "rtmp://pull.test/live/hr-new"


@pytest.mark.parametrize("profile", list(PROFILES))
async def test_every_scenario_holds_in_the_profile(emulator: Any, tmp_path: Path, profile: str) -> None:
    quirks, settings_extra = PROFILES[profile]
    cap, _, after = LAYOUT[profile]
    emu = await emulator(max_task_seconds=cap, admin=True, profile=profile, quirks=quirks, callback_retry_delay_s=0.2)
    t = int(time.time())
    write_schedules(tmp_path, schedules(t, "rtmp://pull.test/live/hr", profile))
    settings = settings_for(emu, tmp_path, max_task_seconds=cap, resync_interval=3, **settings_extra)
    async with running_daemon(settings) as daemon:
        await first_half(emu, daemon, tmp_path, t, profile)
        learnt = daemon.engine.knowledge.facts
    async with running_daemon(settings) as daemon:  # a new daemon takes over what the first one created
        await wait_for(lambda: hot_source_relays(emu), 3 * cap, what="the reloaded source relaying")
        await wait_for(lambda: time.time() > t + after, 4 * cap, what="every window to end")
        await wait_for(lambda: not owned_tasks(emu), 30, what="every ended task deleted")
        records = daemon.store.segments(include_deleted=True)
        failed = await daemon.store.events(kind="failed", limit=100)
        refused = await past_starts_refused(daemon)
    history = emu.history()
    assert failed == [] and all(r.state == SegmentState.DELETED for r in records)
    assert titles_held_twice(history) == [], "adoption: never two tasks with one Title at once"
    chain = chain_on(history, dst("ch"))
    assert chain.overlaps == [] and len(chain.gaps) == HANDOFFS[profile], chain.intervals
    assert all(abs(gap - GAP[profile]) < 0.05 for gap in chain.gaps), chain.gaps
    for sid in ("rs", "dr", "hr"):
        assert chain_on(history, dst(sid)).overlaps == [], sid
    if profile == "strict":
        assert learnt.destination_exclusive is True and learnt.destination_touching_ok is False
        assert learnt.update_running is False
        assert learnt.past_start is False and learnt.relaunch_from is RelaunchFrom.DISABLED
        assert refused, "a late first Create met the past-start refusal"
