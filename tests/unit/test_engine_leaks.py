"""No task left behind: every task carrying one of this installation's segment Titles is carried by that segment's
record (adopted while the segment is planned) or deleted once nothing plans it — also when its record was written as
CREATING and never learnt the task id (an instance killed between Create and its record), when the segment ended
before anyone looked, and when the record is already history (``deleted``) or its schedule is gone.

The real engine and executor against the in-memory platform and a temporary store, with an injected clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from relayd.engine import Engine
from relayd.ids import TaskId
from relayd.platform.memory import MemoryPlatform
from relayd.store import SegmentRecord, SegmentState, Store
from tests.unit.test_engine import CONFIG, POLICY, T0, Clock, FakeJobs, Rig, schedule

END = T0 + 300  # the one segment news.0 spans [T0, T0 + 300)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock = Clock(T0 - 100)
    store = await Store.open(tmp_path / "state.db", clock=clock)
    platform = MemoryPlatform(clock)
    jobs = FakeJobs()
    engine = Engine(
        store=store,
        platform=platform,
        config=CONFIG,
        callback_url=lambda key: f"http://127.0.0.1:9/v1/callbacks/{key}/mac",
        jobs=jobs,  # type: ignore[arg-type]
        clock=clock,
        rand=lambda: 0.5,
    )
    engine.set_schedules([schedule()])
    try:
        yield Rig(engine, platform, store, clock, jobs)
    finally:
        await store.close()


async def killed_mid_create(rig: Rig, start: int) -> tuple[SegmentRecord, TaskId]:
    """What an instance killed inside a Create leaves: the CREATING intent, and the task the platform made."""
    await rig.at(T0 - 100)  # the segment is remembered (PENDING)
    body = {"Title": rig.record().title, "StartTime": start, "EndTime": END, "DstAddr": "rtmp://push.example.net/a"}
    intent = dataclasses.replace(rig.record(), state=SegmentState.CREATING, body=body)
    await rig.store.put(intent)
    return intent, rig.platform.add(body)


async def restart_at(rig: Rig, instant: float) -> None:
    """A new instance: the first full listing, then every known schedule's pass (as the daemon starts)."""
    rig.clock.now = instant
    assert await rig.engine.list_platform()
    for schedule_id in sorted(rig.engine.known_ids()):
        await rig.engine.reconcile(schedule_id)


async def test_a_task_created_by_a_killed_instance_is_deleted_when_its_window_ended_before_the_restart(
    rig: Rig,
) -> None:
    # The 24-kill scenario's leak: a late create (its window already begun), the instance killed before the task id
    # was recorded, and the next instance up only after the window's end.
    _, task_id = await killed_mid_create(rig, start=END - 2)
    await restart_at(rig, END + 1)
    await rig.at(END + POLICY.retention + 1)
    await rig.at(END + POLICY.retention + 2)
    assert task_id not in rig.platform.tasks
    assert rig.record().state == SegmentState.DELETED and rig.platform.calls.get("create") is None


async def test_a_task_made_after_its_record_was_forgotten_is_deleted(rig: Rig) -> None:
    # A record already history (``deleted``: an ended segment with no task id, e.g. from an earlier release that
    # forgot such a record without looking), and its Title on the platform all the same.
    _, task_id = await killed_mid_create(rig, start=END - 2)
    forgotten = dataclasses.replace(rig.record(), state=SegmentState.DELETED, deleted_at=END)
    await rig.store.put(forgotten)
    await restart_at(rig, END + POLICY.retention + 1)
    await rig.at(END + POLICY.retention + 2)
    assert task_id not in rig.platform.tasks and rig.record().state == SegmentState.DELETED


async def test_a_stray_task_of_a_removed_schedule_is_deleted(rig: Rig) -> None:
    _, task_id = await killed_mid_create(rig, start=END - 2)
    await rig.store.put(dataclasses.replace(rig.record(), state=SegmentState.DELETED, deleted_at=T0 - 90))
    rig.engine.set_schedules([])  # no schedule plans it, and no live record names the schedule
    await restart_at(rig, T0 - 50)
    assert task_id not in rig.platform.tasks and rig.record().state == SegmentState.DELETED


async def test_a_task_of_a_segment_planned_again_is_adopted_not_deleted(rig: Rig) -> None:
    _, task_id = await killed_mid_create(rig, start=T0)
    await rig.store.put(dataclasses.replace(rig.record(), state=SegmentState.DELETED, deleted_at=T0 - 90))
    await restart_at(rig, T0 - 50)
    record: Any = rig.record()
    assert record.task_id == task_id and record.state == SegmentState.SCHEDULED
    assert task_id in rig.platform.tasks and rig.platform.calls.get("create") is None


async def test_an_unplanned_segment_deletes_the_task_its_record_never_learnt(rig: Rig) -> None:
    _, task_id = await killed_mid_create(rig, start=T0)
    await rig.store.put(dataclasses.replace(rig.record(), state=SegmentState.PENDING))  # a lost answer, read as none
    rig.engine.set_schedules([])
    await restart_at(rig, T0 - 50)
    assert task_id not in rig.platform.tasks and rig.record().state == SegmentState.DELETED
