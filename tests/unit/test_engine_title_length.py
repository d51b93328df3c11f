"""Changing the Title tag length under running tasks: the engine recognises and adopts tasks of the other length
and never creates a duplicate, updates or deletes them because of the length alone."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relayd.engine import Engine
from relayd.platform.memory import MemoryPlatform
from relayd.schedules.titles import TitleLength, same_segment
from relayd.store import SegmentState, Store
from relayd.volc.models import TaskStatus
from tests.unit.test_engine import CONFIG, KEY0, SID, T0, Clock, FakeJobs, schedule


@dataclasses.dataclass
class Site:
    platform: MemoryPlatform
    store: Store
    clock: Clock

    def engine(self, length: TitleLength) -> Engine:
        """A daemon (re)started with this tag length on the same store and platform."""
        engine = Engine(
            store=self.store,
            platform=self.platform,
            config=dataclasses.replace(CONFIG, title_length=length),
            callback_url=lambda key: f"http://127.0.0.1:9/v1/callbacks/{key}/mac",
            jobs=FakeJobs(),  # type: ignore[arg-type]
            clock=self.clock,
            rand=lambda: 0.5,
        )
        engine.set_schedules([schedule(end=T0 + 900)])  # two segments of 600 s
        return engine

    def owned(self) -> list[str]:
        return [t.task.title for t in self.platform.tasks.values()]


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    clock = Clock(T0 - 60)
    store = await Store.open(tmp_path / "state.db", clock=clock)
    try:
        yield Site(MemoryPlatform(clock), store, clock)
    finally:
        await store.close()


async def run_at(engine: Engine, site: Site, instant: float) -> None:
    site.clock.now = instant
    await engine.reconcile(SID)


@pytest.mark.parametrize(
    ("before", "after"), [(TitleLength.FULL, TitleLength.SHORT), (TitleLength.SHORT, TitleLength.FULL)]
)
async def test_a_running_task_tagged_at_the_other_length_is_kept_not_duplicated(
    site: Site, before: TitleLength, after: TitleLength
) -> None:
    old = site.engine(before)
    await run_at(old, site, T0 - 60)
    await run_at(old, site, T0 + 1)
    [task_id] = site.platform.tasks
    assert [len(t) for t in site.owned()] == [before]

    new = site.engine(after)
    assert await new.list_platform()
    for instant in (T0 + 2, T0 + 100, T0 + 300):
        await run_at(new, site, instant)
    assert list(site.platform.tasks) == [task_id]  # adopted by either tag: no second task
    assert site.platform.calls.get("update") is None and site.platform.calls.get("delete") is None
    record = site.store.segment(KEY0)
    assert record is not None and record.task_id == task_id and record.state == SegmentState.RUNNING

    await run_at(new, site, T0 + 600 - 60)  # the next segment is created with the new length
    assert sorted(len(t) for t in site.owned()) == sorted([before, after])


async def test_a_task_left_by_a_crash_at_the_other_length_is_adopted(site: Site) -> None:
    old = site.engine(TitleLength.FULL)
    await run_at(old, site, T0 - 100)  # remembered, not created yet
    full = site.store.segment(KEY0)
    assert full is not None and full.task_id is None
    # The create went out and the daemon died before recording it; it comes back with short tags.
    existing = site.platform.add({"Title": full.title, "StartTime": T0, "EndTime": T0 + 600, "DstAddr": "rtmp://x/y"})
    new = site.engine(TitleLength.SHORT)
    assert await new.list_platform()
    await run_at(new, site, T0 - 60)
    record = site.store.segment(KEY0)
    assert record is not None and record.task_id == existing and len(record.title) == 10
    assert site.platform.calls.get("create") is None


async def test_a_failure_of_a_task_tagged_at_the_other_length_is_confirmed_and_restarted_in_place(site: Site) -> None:
    old = site.engine(TitleLength.FULL)
    await run_at(old, site, T0 - 60)
    [task_id] = site.platform.tasks
    site.platform.set_status(task_id, TaskStatus.DISABLED)
    new = site.engine(TitleLength.SHORT)
    assert await new.list_platform()
    await run_at(new, site, T0 + 1)
    record = site.store.segment(KEY0)
    assert record is not None and record.next_attempt_at is not None  # backing off before the restart
    await run_at(new, site, record.next_attempt_at)
    assert site.platform.calls.get("resume") == 1 and site.platform.calls.get("create") == 1
    assert list(site.platform.tasks) == [task_id]
    assert same_segment(site.owned()[0], title_short(site))


def title_short(site: Site) -> str:
    record = site.store.segment(KEY0)
    assert record is not None
    return record.title
