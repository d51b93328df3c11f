"""The daemon end to end against the emulator, over real sockets, with a 20 s task cap.

Each test measures from the emulator's own history: which tasks existed, when each was actually relaying,
when it was deleted. Waiting is on conditions with deadlines.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from relayd.store import SegmentState
from tests.e2e.harness import (
    chain_on,
    live_schedule,
    live_tasks,
    running_daemon,
    settings_for,
    wait_for,
    write_schedules,
)

pytestmark = pytest.mark.slow


def _on(history: list[dict[str, Any]], dst: str) -> list[dict[str, Any]]:
    return sorted((t for t in history if t["DstAddr"] == dst), key=lambda t: t["StartTime"])


async def test_a_70s_schedule_chains_into_4_tasks_with_zero_gap_and_is_cleaned_up(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(max_task_seconds=20, admin=True)
    start = int(time.time()) + 2
    write_schedules(tmp_path, live_schedule("chain", start, start + 70))
    dst = "rtmp://push.test/live/chain"
    async with running_daemon(settings_for(emu, tmp_path, max_task_seconds=20, retention=3)) as daemon:
        await wait_for(lambda: len(_on(emu.history(), dst)) == 4, 90, what="4 chained tasks")
        await wait_for(
            lambda: all(t["DeletedAt"] is not None for t in _on(emu.history(), dst)), 30, what="all 4 deleted"
        )
        records = daemon.store.segments("chain", include_deleted=True)
    tasks = _on(emu.history(), dst)
    assert [t["EndTime"] - t["StartTime"] for t in tasks] == [20, 20, 20, 10]
    chain = chain_on(emu.history(), dst)
    assert chain.overlaps == [] and chain.gaps == [0.0, 0.0, 0.0]
    assert chain.intervals[0][0] == start and chain.intervals[-1][1] == start + 70
    for task in tasks:  # deleted after the retention, not before and not much later
        assert 3 <= task["DeletedAt"] - task["EndTime"] < 10
    assert sorted(r.state for r in records) == [SegmentState.DELETED] * 4
    assert emu.stats()["throttled"] == {} or sum(emu.stats()["throttled"].values()) == 0


async def test_failures_are_restarted_with_backoff_and_a_lost_cause_ends_failed(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(max_task_seconds=120, admin=True, callback_retry_delay_s=0.2)
    now = int(time.time())
    write_schedules(tmp_path, live_schedule("flaky", now, now + 100) + live_schedule("doomed", now, now + 100))
    settings = settings_for(
        emu, tmp_path, max_task_seconds=120, restart_backoff_base=1, restart_backoff_cap=2, restart_max_attempts=3
    )
    async with running_daemon(settings) as daemon:
        flaky = daemon.store.segment("flaky.0")
        doomed = daemon.store.segment("doomed.0")
        assert flaky is not None and doomed is not None and flaky.task_id and doomed.task_id
        emu.fail_task(flaky.task_id, mode="stay", repeat=1)  # fails, and once more after the first relaunch
        emu.fail_task(doomed.task_id, mode="disable", repeat=None)  # fails again after every restart

        async def restarts(key: str) -> list[Any]:
            return [e for e in await daemon.store.events(kind="restart", limit=100) if e.segment_key == key]

        async def flaky_recovered() -> bool:
            record = daemon.store.segment("flaky.0")
            return len(await restarts("flaky.0")) == 2 and record is not None and record.failure_seen_at is None

        await wait_for(flaky_recovered, 40, what="flaky restarted twice and healthy")
        await wait_for(
            lambda: daemon.store.segment("doomed.0").state == SegmentState.FAILED,  # type: ignore[union-attr]
            40,
            what="doomed marked failed",
        )
        flaky_events = await restarts("flaky.0")
        doomed_events = await restarts("doomed.0")
        metrics = daemon.metrics.render().decode()
        async with aiohttp.ClientSession() as http:
            token = (tmp_path / "state" / "api_token").read_text().strip()
            url = f"http://127.0.0.1:{daemon.port}/v1/schedules/doomed"
            async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
                status = await response.json()
    assert [e.data["action"] for e in flaky_events] == ["relaunch", "relaunch"]
    assert sorted(e.data["attempt"] for e in flaky_events) == [1, 2]
    # The platform shows the failing task active: relayd relaunched it within the backoff ceiling (1 s, then 2 s)
    # plus confirmation and delivery latency.
    first, second = sorted(flaky_events, key=lambda e: e.ts)
    assert second.ts - first.ts < 2 + 3
    assert [e.data["action"] for e in doomed_events] == ["continue"] * 3
    assert "budget" in str(status)
    families = {f.name: f for f in text_string_to_metric_families(metrics)}
    failed = [s.value for s in families["relayd_segments"].samples if s.labels.get("state") == "failed"]
    assert failed == [1.0]
    history = emu.history()
    assert len(live_tasks(history)) == 2  # restarts never created extra tasks


async def test_edits_adds_and_removals_converge_without_touching_unaffected_tasks(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(max_task_seconds=40, admin=True)
    now = int(time.time())
    keep = live_schedule("keep", now, now + 120)
    write_schedules(tmp_path, keep + live_schedule("edit", now + 60, now + 130) + live_schedule("drop", now, now + 120))
    async with running_daemon(settings_for(emu, tmp_path, max_task_seconds=40, prepare_ahead=200)) as daemon:
        before = {t["Title"]: t for t in emu.tasks()}
        keep_ids = {r.task_id for r in daemon.store.segments("keep")}
        assert len(keep_ids) == 3 and len(before) == 3 + 2 + 3
        last_id = max(e.id or 0 for e in await daemon.store.events(limit=1000))
        edited = live_schedule("edit", now + 60, now + 150, dst="rtmp://push.test/live/edited")
        added = live_schedule("added", now, now + 60)
        write_schedules(tmp_path, keep + edited + added)
        await daemon.reload()
        await daemon.queue.drained()

        def converged() -> bool:
            dsts = {t["DstAddr"] for t in emu.tasks()}
            return "rtmp://push.test/live/drop" not in dsts and "rtmp://push.test/live/added" in dsts

        await wait_for(converged, 30, what="drop deleted and added created")
        # relayd's own actions since the edit (platform callbacks are recorded too, but are not actions)
        new_events = [
            e for e in await daemon.store.events(limit=1000) if (e.id or 0) > last_id and e.kind != "callback"
        ]
    tasks = emu.tasks()
    assert keep_ids <= {t["TaskId"] for t in tasks}  # untouched: same task ids
    assert not [e for e in new_events if e.schedule_id == "keep"]  # and no action on them at all
    edit_tasks = [t for t in live_tasks(emu.history()) if t["DstAddr"] == "rtmp://push.test/live/edited"]
    assert len(edit_tasks) == 3 and max(t["EndTime"] for t in edit_tasks) == now + 150
    assert {e.kind for e in new_events if e.schedule_id == "edit"} == {"update", "create"}
    assert {e.kind for e in new_events if e.schedule_id == "drop"} == {"delete"}


async def test_a_broken_file_keeps_its_last_good_version_across_reloads_and_restarts(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(max_task_seconds=60)
    now = int(time.time())
    write_schedules(tmp_path, live_schedule("steady", now, now + 100), name="steady.toml")
    settings = settings_for(emu, tmp_path, max_task_seconds=60, prepare_ahead=120)
    async with running_daemon(settings) as daemon:
        tasks = {t["TaskId"] for t in emu.tasks()}
        assert len(tasks) == 2
        write_schedules(tmp_path, "[[schedule]]\nid = 'steady'\nsource = \n", name="steady.toml")  # a syntax error
        await daemon.reload()
        await daemon.queue.drained()
        assert "steady" in daemon.engine.schedules
        problems = list(daemon.config.problems)
    assert any("steady.toml" in p for p in problems)
    # A restart with the file still broken: the store's applied copy keeps the schedule, nothing is deleted.
    async with running_daemon(settings) as daemon:
        assert "steady" in daemon.engine.schedules
        deletes = await daemon.store.events(kind="delete")
    assert {t["TaskId"] for t in emu.tasks()} == tasks and deletes == []
