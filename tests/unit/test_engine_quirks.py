"""The engine in every plausible platform world: the in-memory platform plays each strict answer to the open
questions (destination uniqueness, Update refused while running, past StartTime refused, Relaunch only from 停用,
the not-found code), and no segment fails because of one. Injected clock, milliseconds per test."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from relayd.engine import Engine, EngineConfig
from relayd.ids import SegmentKey
from relayd.platform.facts import PlatformFacts, RelaunchFrom
from relayd.platform.memory import MemoryPlatform, MemoryQuirks
from relayd.store import SegmentState, Store
from relayd.volc.errors import api_error
from relayd.volc.models import TaskStatus
from relayd.web.api import segment_json
from relayd.web.views import SegmentNotes
from tests.unit.test_engine import CONFIG, POLICY, T0, Clock, FakeJobs, Rig, schedule

KEY0, KEY1 = SegmentKey("news.0"), SegmentKey("news.1")
CHAINED_END = T0 + 1200  # two segments of 600 s: news.0 [T0, T0+600), news.1 [T0+600, T0+1200)

RigFactory = Callable[..., Any]


@pytest.fixture
async def make_rig(tmp_path: Path) -> AsyncIterator[RigFactory]:
    stores: list[Store] = []

    async def make(
        quirks: MemoryQuirks | None = None,
        facts: PlatformFacts | None = None,
        config: EngineConfig = CONFIG,
        start_at: float = T0 - 100,
    ) -> Rig:
        clock = Clock(start_at)
        store = await Store.open(tmp_path / f"state{len(stores)}.db", clock=clock)
        stores.append(store)
        platform = MemoryPlatform(clock, quirks=quirks)
        jobs = FakeJobs()
        engine = Engine(
            store=store,
            platform=platform,
            config=config,
            callback_url=lambda key: None,
            jobs=jobs,  # type: ignore[arg-type]
            clock=clock,
            rand=lambda: 0.5,
            facts=facts,
        )
        engine.set_schedules([schedule(end=CHAINED_END)])
        return Rig(engine, platform, store, clock, jobs)

    yield make
    for store in stores:
        await store.close()


def starts(rig: Rig) -> list[int]:
    return sorted(int(body["StartTime"]) for body in rig.platform.bodies.values())


# --- Q10: destination uniqueness ----------------------------------------------------------------------------------


async def test_touching_windows_refused_the_next_task_starts_a_second_later_and_nothing_fails(make_rig: Any) -> None:
    rig = await make_rig(MemoryQuirks(destination="exclusive"))
    await rig.at(T0 - 60)
    await rig.at(T0 + 600 - 60)  # news.1 created ahead: refused once (touching), learnt, created shifted
    successor = rig.record(KEY1)
    assert successor.state == SegmentState.SCHEDULED and successor.attempts == 0
    assert starts(rig) == [T0, T0 + 601] and rig.platform.calls["create"] == 3
    facts = rig.engine.knowledge.facts
    assert facts.destination_exclusive is True and facts.destination_touching_ok is False
    assert "DstAddr" in facts.evidence["destination_exclusive"]
    assert rig.engine.handoff_gaps[KEY1] == 1.0
    events = await rig.store.events(kind="create")
    assert sorted((e.segment_key, e.data.get("gap_s")) for e in events) == [("news.0", None), ("news.1", 1.0)]


async def test_touching_windows_accepted_chain_without_a_gap(make_rig: Any) -> None:
    rig = await make_rig(MemoryQuirks(destination="exclusive-touching-ok"))
    await rig.at(T0 - 60)
    await rig.at(T0 + 600 - 60)
    assert starts(rig) == [T0, T0 + 600] and rig.platform.calls["create"] == 2
    assert rig.engine.handoff_gaps[KEY1] == 0.0 and rig.engine.knowledge.facts.destination_exclusive is None


async def test_known_exclusive_destination_creates_shifted_without_a_refusal(make_rig: Any) -> None:
    facts = PlatformFacts(destination_exclusive=True, destination_touching_ok=False)
    rig = await make_rig(MemoryQuirks(destination="exclusive"), facts=facts)
    await rig.at(T0 - 60)
    await rig.at(T0 + 600 - 60)
    assert starts(rig) == [T0, T0 + 601] and rig.platform.calls["create"] == 2


async def test_a_destination_held_by_another_task_is_retried_never_failed(make_rig: Any) -> None:
    rig = await make_rig(MemoryQuirks(destination="exclusive"))
    rig.platform.add(
        {"Title": "foreign", "StartTime": T0 - 1000, "EndTime": T0 + 30, "DstAddr": "rtmp://push.example.net/live/a"}
    )
    await rig.at(T0 - 60)
    for _ in range(2 * POLICY.max_attempts):
        record = rig.record()
        assert record.state == SegmentState.PENDING and record.attempts == 0 and record.task_id is None
        await rig.next()
        if rig.clock.now >= T0 + 30:
            break
    await rig.at(T0 + 31)  # the holder ended: the segment's task is created
    assert rig.record().task_id is not None and rig.record().attempts == 0


# --- Q9: StartTime in the past -------------------------------------------------------------------------------------


async def test_a_late_task_refused_for_its_past_start_is_created_a_few_seconds_ahead(make_rig: Any) -> None:
    rig = await make_rig(MemoryQuirks(past_start=False), start_at=T0 + 10.5)
    await rig.at(T0 + 10.5)  # relayd was down at the start: StartTime = now (already past) is refused
    record = rig.record()
    assert record.task_id is not None and record.attempts == 0 and record.state == SegmentState.RUNNING
    assert starts(rig) == [T0 + 13] and rig.engine.knowledge.facts.past_start is False


async def test_a_late_segment_too_short_to_start_ahead_is_left_to_end_not_failed(make_rig: Any) -> None:
    # Two seconds of news.0 are left: a StartTime a few seconds ahead would fall after its EndTime (the client's
    # rules refuse that before sending, which used to count as a failed attempt and fail the segment).
    rig = await make_rig(MemoryQuirks(past_start=False), PlatformFacts(past_start=False), start_at=T0 + 598)
    for at in (T0 + 598, T0 + 599, T0 + 600.5):
        await rig.at(at)
    assert [b for b in rig.platform.bodies.values() if int(b["StartTime"]) >= int(b["EndTime"])] == []
    late = rig.store.segment(KEY0)
    assert late is None or (late.task_id is None and late.state != SegmentState.FAILED), late
    assert rig.record(KEY1).task_id is not None, "the next segment is created as usual"
    assert rig.platform.calls["create"] == 1


async def test_a_late_segment_refused_beside_its_own_successor_ends_a_second_early_and_relays(make_rig: Any) -> None:
    # relayd starts 40 s into news.0 with news.1 due ahead in the same pass, on a platform where tasks on one
    # destination may not even touch and a past StartTime is refused, neither known yet. news.0's first Create is
    # refused (past start), news.1 is created touching news.0's end, and news.0's next try touches news.1's task.
    rig = await make_rig(MemoryQuirks(destination="exclusive", past_start=False), start_at=T0 + 560.5)
    await rig.at(T0 + 560.5)
    for _ in range(6):
        if rig.store.segment(KEY0) is not None and rig.record(KEY0).task_id is not None:
            break
        await rig.at(max(rig.clock.now + 1, rig.record(KEY0).next_attempt_at or 0))
    late = rig.record(KEY0)
    assert late.task_id is not None and late.state != SegmentState.FAILED, late
    body = rig.platform.bodies[late.task_id]
    assert int(body["EndTime"]) == T0 + 599 and int(body["StartTime"]) < T0 + 570, body  # relays until a second early
    assert rig.record(KEY1).task_id is not None
    assert rig.engine.knowledge.facts.destination_touching_ok is False
    assert await rig.store.events(kind="failed") == []


# --- Q5: Update while running ------------------------------------------------------------------------------------


async def running_then_edited(rig: Rig) -> None:
    await rig.at(T0 - 60)
    await rig.at(T0 + 10)
    rig.engine.set_schedules([schedule(end=CHAINED_END, source="rtmp://origin.example.com/live/b")])
    await rig.at(T0 + 20)


async def test_an_update_refused_while_running_applies_from_the_next_segment(make_rig: Any) -> None:
    rig = await make_rig(MemoryQuirks(update_running=False))
    await running_then_edited(rig)
    old = rig.record()
    assert rig.platform.calls["update"] == 1 and rig.engine.knowledge.facts.update_running is False
    assert rig.engine.deferred == {old.key: "next_segment"} and old.last_error is None
    await rig.at(T0 + 300)
    assert rig.platform.calls["update"] == 1, "a refused update is not retried while the segment runs"
    await rig.at(T0 + 600 - 60)  # the next segment is created with the new spec
    assert rig.platform.bodies[rig.record(KEY1).task_id]["SrcAddr"] == "rtmp://origin.example.com/live/b"
    assert rig.platform.bodies[old.task_id]["SrcAddr"] == "rtmp://origin.example.com/live/a"
    assert rig.record().state != SegmentState.FAILED


async def test_an_update_refused_while_running_replaces_the_task_when_asked(make_rig: Any) -> None:
    config = dataclasses.replace(CONFIG, replace_running=True)
    rig = await make_rig(MemoryQuirks(update_running=False, destination="exclusive"), config=config)
    await running_then_edited(rig)
    record = rig.record()
    assert rig.platform.calls["delete"] == 1 and record.task_id in rig.platform.tasks
    assert rig.platform.bodies[record.task_id]["SrcAddr"] == "rtmp://origin.example.com/live/b"
    assert len(rig.platform.titled(record.title)) == 1 and record.state == SegmentState.RUNNING


def shown(rig: Rig, key: SegmentKey = KEY0) -> dict[str, Any]:
    """The segment as ``/v1/schedules`` shows it, with the engine's notes."""
    notes = SegmentNotes(rig.engine.handoff_gaps.get(key), rig.engine.deferred.get(key))
    return segment_json(rig.record(key), None, rig.clock.now, notes)


async def test_status_says_a_replacement_applies_now_until_the_new_task_exists(make_rig: Any) -> None:
    config = dataclasses.replace(CONFIG, replace_running=True)
    rig = await make_rig(MemoryQuirks(update_running=False), config=config)
    await rig.at(T0 - 60)
    await rig.at(T0 + 10)
    assert shown(rig)["change_applies"] is None
    refusal = api_error("CreatePullToPushTask", http_status=500, code="InternalError", message="try again")
    rig.platform.inject("create", refusal)  # the successor's create fails once
    rig.engine.set_schedules([schedule(end=CHAINED_END, source="rtmp://origin.example.com/live/b")])
    await rig.at(T0 + 20)
    assert rig.platform.calls["delete"] == 1 and rig.record().task_id is None  # replaced: the new task is pending
    assert shown(rig)["change_applies"] == "now"
    assert json.loads(json.dumps(shown(rig)))["change_applies"] == "now"
    await rig.at(T0 + 21)  # a pass before the retry is due: still under way
    assert shown(rig)["change_applies"] == "now"
    await rig.next()
    record = rig.record()
    assert record.task_id in rig.platform.tasks and record.state == SegmentState.RUNNING
    assert rig.platform.bodies[record.task_id]["SrcAddr"] == "rtmp://origin.example.com/live/b"
    assert shown(rig)["change_applies"] is None


async def test_a_known_refusal_is_never_attempted(make_rig: Any) -> None:
    rig = await make_rig(MemoryQuirks(update_running=False), facts=PlatformFacts(update_running=False))
    await running_then_edited(rig)
    assert rig.platform.calls.get("update") is None and rig.engine.deferred


# --- Q1: Relaunch precondition, not-found codes -------------------------------------------------------------------


async def test_relaunch_refused_on_an_active_task_restarts_with_stop_and_continue(make_rig: Any) -> None:
    rig = await make_rig(MemoryQuirks(relaunch_from="disabled"))
    await rig.at(T0 - 60)
    await rig.at(T0 + 10)
    for round_ in range(2):
        await rig.engine.note_failure(rig.record().key, rig.clock.now)
        await rig.at(rig.clock.now + 1)
        while rig.record().failure_seen_at is not None:
            await rig.next()
        assert rig.platform.tasks[rig.record().task_id].task.status == TaskStatus.ACTIVE
        assert rig.platform.calls["relaunch"] == 1, "the refusal is learnt once"
        assert rig.platform.calls["stop"] == rig.platform.calls["resume"] == round_ + 1
        rig.clock.now += POLICY.stable_after + 1
    assert rig.engine.knowledge.facts.relaunch_from == RelaunchFrom.DISABLED
    assert rig.record().state == SegmentState.RUNNING


@pytest.mark.parametrize("code", ["ResourceNotFound", "InvalidParameter.TaskNotExist", "InvalidParam"])
async def test_every_not_found_code_is_understood(make_rig: Any, code: str) -> None:
    rig = await make_rig(MemoryQuirks(not_found=code))
    await rig.at(T0 - 60)
    await rig.at(T0 + 10)
    rig.platform.remove(rig.record().task_id)
    rig.engine.set_schedules([schedule(end=CHAINED_END, source="rtmp://origin.example.com/live/b")])
    await rig.at(T0 + 20)  # the update finds no task: it is created again, with the new spec
    for _ in range(POLICY.max_attempts):
        if rig.record().task_id in rig.platform.tasks:
            break
        await rig.next()
    record = rig.record()
    assert record.task_id in rig.platform.tasks and record.state == SegmentState.RUNNING
    rig.platform.remove(record.task_id)
    await rig.at(T0 + 600 + POLICY.retention)  # the delete finds no task: the segment is done
    await rig.at(rig.clock.now + 1)
    assert rig.record().state == SegmentState.DELETED


async def test_status_shows_the_handoff_gap_and_the_deferred_change(make_rig: Any) -> None:
    rig = await make_rig(MemoryQuirks(update_running=False, destination="exclusive"))
    await running_then_edited(rig)
    await rig.at(T0 + 600 - 60)
    notes = {key: SegmentNotes(rig.engine.handoff_gaps.get(key), rig.engine.deferred.get(key)) for key in (KEY0, KEY1)}
    shown = {key: segment_json(rig.record(key), None, rig.clock.now, notes[key]) for key in (KEY0, KEY1)}
    assert (shown[KEY0]["handoff_gap_s"], shown[KEY0]["change_applies"]) == (None, "next_segment")
    assert (shown[KEY1]["handoff_gap_s"], shown[KEY1]["change_applies"]) == (1.0, None)
