"""The operator's actions on a running daemon: retry a segment now, release held removals.

``retry_now`` runs against the real engine, store and in-memory platform of ``test_engine``'s rig: it must only
write the record and wake the schedule (the platform is called by the next pass, never inline). The removal hold
is exercised with its real metrics; the CLI's renderings are pure.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from relayd.actions import Actions
from relayd.cli.apply import render_released
from relayd.cli.status import render_held, render_overview
from relayd.ids import ScheduleId, SegmentKey
from relayd.metrics import Metrics
from relayd.removals import RemovalHold, RemovalLimits
from relayd.schedules.model import Schedule
from relayd.store import SegmentState
from relayd.volc.errors import api_error
from tests.unit.test_engine import KEY0, POLICY, SID, T0, Rig, rig, running, schedule

__all__ = ["rig"]


def actions_for(rig: Rig, hold: RemovalHold | None = None, reloads: list[bool] | None = None) -> Actions:
    return Actions(
        store=rig.store,
        jobs=rig.jobs,  # type: ignore[arg-type]
        removals=hold or RemovalHold(RemovalLimits(), Metrics()),
        reload=lambda: (reloads if reloads is not None else []).append(True),
        clock=rig.clock,
    )


async def test_retry_now_gives_a_failed_create_a_fresh_budget_and_leaves_the_call_to_the_next_pass(rig: Rig) -> None:
    rig.platform.inject("create", api_error("CreatePullToPushTask", http_status=400, code="InvalidParam"), times=3)
    await rig.at(T0 - 60)
    while rig.record().state != SegmentState.FAILED:
        await rig.next()
    calls = rig.platform.calls["create"]
    rig.clock.now += 1
    assert await actions_for(rig).retry_now(KEY0)
    record = rig.record()
    assert (record.state, record.attempts, record.next_attempt_at) == (SegmentState.PENDING, 0, rig.clock.now)
    assert rig.jobs.wakes[SID] == rig.clock.now and rig.platform.calls["create"] == calls  # not called inline
    await rig.settle()
    assert rig.record().task_id is not None and rig.platform.calls["create"] == calls + 1


async def test_retry_now_acts_again_on_a_failing_task_whose_budget_was_spent(rig: Rig) -> None:
    record = await running(rig)
    rig.platform.inject("relaunch", api_error("RelaunchPullToPushTask", http_status=400, code="InvalidParam"), times=3)
    await rig.engine.note_failure(record.key, rig.clock.now)
    while rig.record().state != SegmentState.FAILED:
        await rig.at(max(rig.clock.now, rig.record().next_attempt_at or rig.clock.now))
    assert rig.platform.calls["relaunch"] == POLICY.max_attempts
    assert await actions_for(rig).retry_now(KEY0)
    assert rig.record().state == SegmentState.RETRYING and rig.record().attempts == 0
    await rig.settle()
    assert rig.platform.calls["relaunch"] == POLICY.max_attempts + 1
    assert rig.record().state == SegmentState.RUNNING


async def test_retry_now_refuses_unknown_keys_and_segments_that_are_not_failing(rig: Rig) -> None:
    await running(rig)
    before, wakes = rig.record(), dict(rig.jobs.wakes)
    actions = actions_for(rig)
    assert not await actions.retry_now(SegmentKey("nope.0"))
    assert not await actions.retry_now(KEY0)
    assert rig.record() == before and rig.jobs.wakes == wakes


def _held_gauge(metrics: Metrics) -> float:
    families = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}
    return families["relayd_config_removals_held"].samples[0].value


def _schedules(*ids: str) -> dict[ScheduleId, Schedule]:
    return {ScheduleId(sid): schedule().model_copy(update={"id": sid}) for sid in ids}


async def test_releasing_approves_exactly_the_held_removals_once(rig: Rig) -> None:
    metrics = Metrics()
    hold = RemovalHold(RemovalLimits(max_removals=3, max_removal_fraction=0.1), metrics)
    applied = _schedules("a", "b", "c", "d", "e", "f")
    kept = [applied[ScheduleId("a")]]
    assert sorted(s.id for s in hold.weigh(applied, kept)) == ["a", "b", "c", "d", "e", "f"]  # 5 > 3: all held
    assert hold.held == ("b", "c", "d", "e", "f") and _held_gauge(metrics) == 5
    reloads: list[bool] = []
    assert list(await actions_for(rig, hold, reloads).release_removals()) == ["b", "c", "d", "e", "f"]
    assert reloads == [True]
    assert [s.id for s in hold.weigh(applied, kept)] == ["a"]  # the approved ones go
    assert hold.held == () and _held_gauge(metrics) == 0
    # The approval was used up: the same mass removal later is held again.
    assert len(hold.weigh(applied, kept)) == 6 and len(hold.held) == 5
    assert list(await actions_for(rig, RemovalHold(RemovalLimits(), metrics), reloads).release_removals()) == []
    assert reloads == [True]  # nothing held: no reload


def test_status_and_apply_show_the_held_removals_and_the_fix() -> None:
    text = render_overview({"schedules": [], "held_removals": ["news", "sport"], "config_warnings": ["w: overlap"]})
    assert "removals held: 2 schedules" in text and "news, sport" in text
    assert "relayd apply --allow-removals" in text and "config warnings:\n  w: overlap" in text
    assert "held" not in render_overview({"schedules": [], "held_removals": []})
    assert render_held([]) == "no removals are held"
    assert render_released(["news", "sport"]) == "removing 2 schedules: news, sport"
    assert "nothing to remove" in render_released([])
