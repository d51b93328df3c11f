"""The election loop and its "may act" gate, against a scripted lease store and a hand-driven monotonic clock."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest

from relayd.cli.status import render_instances
from relayd.ids import ScheduleId, SegmentKey
from relayd.leadership import (
    CallbackReplay,
    Elector,
    LeaseTiming,
    NotLeaderError,
    local_deadline,
    new_callbacks,
    notice_of,
)
from relayd.metrics import Metrics
from relayd.store import Event, StoreError
from relayd.store.leases import InstanceInfo, Lease, Role
from relayd.web.health import NOT_FOLLOWING, readiness
from relayd.web.instances import instance_json
from relayd.web.notices import CallbackEvent, parse_notice

TIMING = LeaseTiming(ttl=10.0, renew=2.0, margin=3.0)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class LeaseStore:
    """Answers lease calls from a script: a Lease, None (lost) or an exception (outage)."""

    def __init__(self) -> None:
        self.acquire: Lease | Exception | None = None
        self.renewal: Lease | Exception | None = None
        self.heartbeats: list[tuple[str, Role, float | None]] = []
        self.released: list[Lease] = []
        self.woken: list[str] = []
        self.events_by_schedule: dict[str, list[Event]] = {}

    async def try_acquire(self, instance_id: str, ttl_s: float) -> Lease | None:
        return self._answer(self.acquire)

    async def renew(self, lease: Lease, ttl_s: float) -> Lease | None:
        return self._answer(self.renewal)

    async def release(self, lease: Lease) -> None:
        self.released.append(lease)

    async def heartbeat(self, instance_id: str, role: Role, lease_expires_at: float | None) -> None:
        self.heartbeats.append((instance_id, role, lease_expires_at))

    async def wake(self, schedule_id: ScheduleId) -> None:
        self.woken.append(schedule_id)

    async def events(self, *, schedule_id: ScheduleId | None = None, **_: Any) -> list[Event]:
        return self.events_by_schedule.get(str(schedule_id), [])

    def _answer(self, value: Lease | Exception | None) -> Lease | None:
        if isinstance(value, Exception):
            raise value
        return value


def elector(store: LeaseStore, clock: Clock, metrics: Metrics | None = None) -> Elector:
    return Elector(store, instance_id="a", timing=TIMING, metrics=metrics or Metrics(), monotonic=clock)  # type: ignore[arg-type]


def test_the_local_deadline_comes_a_margin_before_the_lease_and_never_for_an_endless_lease() -> None:
    assert local_deadline(100.0, Lease("a", 3, 5000.0), TIMING) == 107.0
    assert local_deadline(100.0, Lease("a", 1, math.inf), TIMING) == math.inf


async def test_a_leader_may_act_only_after_its_takeover_and_only_until_its_deadline() -> None:
    store, clock = LeaseStore(), Clock()
    store.acquire = Lease("a", 4, 2e9)
    e = elector(store, clock)
    assert await e.first_round()
    assert not e.may_act()  # elected, but the first pass has not listed the platform yet
    e.begin_acting()
    assert e.may_act()
    e.check_write("CreatePullToPushTask")
    clock.t += TIMING.ttl - TIMING.margin  # the database is gone; no renewal came back
    assert not e.may_act()
    with pytest.raises(NotLeaderError, match="CreatePullToPushTask refused: instance a"):
        e.check_write("CreatePullToPushTask")


async def test_a_renewal_moves_the_deadline_from_when_it_was_asked() -> None:
    store, clock = LeaseStore(), Clock()
    store.acquire = store.renewal = Lease("a", 4, 2e9)
    e = elector(store, clock)
    await e.first_round()
    e.begin_acting()
    clock.t += 5.0
    await e._round()
    clock.t += 6.0  # 11 s after election, 6 s after the renewal began
    assert e.may_act()


async def test_a_lost_lease_deposes_at_once_and_an_outage_only_at_the_deadline() -> None:
    store, clock, metrics = LeaseStore(), Clock(), Metrics()
    store.acquire = Lease("a", 4, 2e9)
    e = elector(store, clock, metrics)
    await e.first_round()
    e.begin_acting()
    store.renewal = OSError("connection refused")
    clock.t += 2.0
    await e._round()
    assert e.is_leader and e.may_act()  # one failed renewal: still within the deadline
    clock.t += 6.0
    await e._round()
    assert not e.is_leader and not e.may_act()
    assert store.heartbeats[-1] == ("a", Role.STANDBY, None)
    text = metrics.render().decode()
    assert 'relayd_leadership_changes_total{change="deposed"} 1.0' in text
    assert "relayd_leader 0.0" in text
    store.acquire, store.renewal = Lease("a", 5, 2e9), None
    await e._round()
    assert e.is_leader
    await e._round()  # the renewal answers None: another instance holds it
    assert not e.is_leader


async def test_a_standby_takes_over_in_the_background_then_acts() -> None:
    store, clock = LeaseStore(), Clock()
    e = elector(store, clock)
    assert not await e.first_round()
    assert e.standing().role == Role.STANDBY and e.standing().following
    prepared = asyncio.Event()
    started: list[bool] = []

    async def prepare() -> bool:
        prepared.set()
        return True

    async def on_acting() -> None:
        started.append(e.may_act())

    e.prepare, e.on_acting = prepare, on_acting
    store.acquire = Lease("a", 2, 2e9)
    await e._round()
    e._follow_up()
    assert e._takeover is not None
    await asyncio.wait_for(e._takeover, 5)
    assert prepared.is_set() and started == [True]
    assert e.standing().as_json()["epoch"] == 2


async def test_a_standby_routes_callbacks_to_the_leader_by_a_wake_up() -> None:
    store, clock = LeaseStore(), Clock()
    e = elector(store, clock)
    await e.first_round()
    handled: list[str] = []
    routed = e.route(lambda sid, key, notice: handled.append(sid))
    routed(ScheduleId("s1"), SegmentKey("s1.0"), parse_notice({"EventType": "fail"}))
    await asyncio.wait_for(asyncio.gather(*e._background), 5)
    assert store.woken == ["s1"] and handled == []


def _callback(event_id: int, ts: float, body: dict[str, Any]) -> Event:
    return Event(ts=ts, kind="callback", schedule_id=ScheduleId("s1"), segment_key=SegmentKey("s1.0"),
                 raw=json.dumps(body), id=event_id)  # fmt: skip


def test_new_callbacks_are_those_after_the_last_replayed_or_recent_ones_at_first() -> None:
    events = [_callback(3, 990.0, {}), _callback(1, 100.0, {}), _callback(2, 980.0, {})]
    assert [e.id for e in new_callbacks(events, None, 900.0)] == [2, 3]
    assert [e.id for e in new_callbacks(events, 2, 0.0)] == [3]
    assert notice_of(_callback(1, 0.0, {"EventType": "fail"})) is not None
    assert notice_of(Event(ts=0.0, kind="callback", raw="[not json")) is None


async def test_the_leader_replays_a_standbys_callbacks_once_then_reconciles() -> None:
    store = LeaseStore()
    store.events_by_schedule["s1"] = [_callback(7, 999.0, {"EventType": "fail", "TaskId": "t"})]
    hinted: list[CallbackEvent] = []
    submitted: list[str] = []
    replay = CallbackReplay(store, lambda s, k, n: hinted.append(n.event), submitted.append, lambda: 1000.0)  # type: ignore[arg-type]
    await replay.replay(ScheduleId("s1"))
    await replay.replay(ScheduleId("s1"))
    assert hinted == [CallbackEvent.FAIL]
    assert submitted == ["s1", "s1"]


async def test_replay_survives_an_unreadable_store() -> None:
    class Broken(LeaseStore):
        async def events(self, **_: Any) -> list[Event]:
            raise StoreError("down")

    submitted: list[str] = []
    replay = CallbackReplay(Broken(), lambda *a: None, submitted.append, lambda: 0.0)  # type: ignore[arg-type]
    await replay.replay(ScheduleId("s2"))
    assert submitted == ["s2"]


async def test_follow_wakes_stops_on_the_stop_event() -> None:
    class Waking(LeaseStore):
        async def wakes(self) -> AsyncIterator[ScheduleId]:
            yield ScheduleId("s1")
            await asyncio.Event().wait()
            yield ScheduleId("never")

    store, clock, stop = Waking(), Clock(), asyncio.Event()
    store.acquire = Lease("a", 1, math.inf)
    e = elector(store, clock)
    await e.first_round()
    e.begin_acting()
    seen: list[str] = []

    class Replay:
        async def replay(self, schedule_id: ScheduleId) -> None:
            seen.append(schedule_id)
            stop.set()

    await asyncio.wait_for(e.follow_wakes(stop, Replay()), 5)  # type: ignore[arg-type]
    assert seen == ["s1"]


def test_status_renders_every_instance_with_role_lease_and_heartbeat() -> None:
    now = 10_000.0
    rows = [
        instance_json(InstanceInfo("a", Role.LEADER, now - 1, now + 8), now, lease_s=10.0),
        instance_json(InstanceInfo("b", Role.STANDBY, now - 45, None), now, lease_s=10.0),
    ]
    assert rows[0]["lease_expires_in_s"] == 8.0 and not rows[0]["stale"]
    assert rows[1]["lease_expires_in_s"] is None and rows[1]["stale"]
    text = render_instances({"self": {"instance_id": "b"}, "instances": rows})
    assert "a " in text and "leader" in text and "8s" in text
    assert "b (this)" in text and "standby" in text and "(stale)" in text
    assert render_instances({"instances": []}) == ""


def test_a_following_standby_is_ready_without_platform_calls_and_one_cut_off_is_not() -> None:
    common: dict[str, Any] = {"store_healthy": True, "config_loaded": True, "now": 100.0, "platform_window_s": 60.0}
    assert readiness(**common, last_platform_success=None, platform_error=None, standby=True) == []
    assert readiness(**common, last_platform_success=None, platform_error=None, standby=True, following=False) == [
        NOT_FOLLOWING
    ]
    assert readiness(**common, last_platform_success=None, platform_error=None) != []
