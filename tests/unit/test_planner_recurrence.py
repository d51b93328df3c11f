"""Cron parsing and recurrence expansion, including DST changes in zones that have them."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relayd.schedules.model import Schedule
from relayd.schedules.planner import plan
from relayd.schedules.recurrence import CronError, local_instant, min_gap_seconds, occurrences, parse_cron

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
DST_ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe", "America/Santiago"]
CAP = 604800


def recurring(cron: str, duration: int | str, tz: str, **bounds: str) -> Schedule:
    return Schedule.model_validate(
        {
            "id": "rec",
            "source": "rtmp://o.example/live/a",
            "destination": "rtmp://p.example/live/a",
            "recurrence": {"cron": cron, "duration": duration, "timezone": tz} | bounds,
        }
    )


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def test_daily_evening_in_shanghai() -> None:
    schedule = recurring("0 20 * * *", "2h", "Asia/Shanghai")
    segments = plan(schedule, now=ts("2026-03-01T21:00:00+08:00"), max_task_seconds=CAP, horizon_s=2 * 86400)
    assert [(s.start, s.end) for s in segments] == [
        (ts("2026-03-01T20:00:00+08:00"), ts("2026-03-01T22:00:00+08:00")),  # running now
        (ts("2026-03-02T20:00:00+08:00"), ts("2026-03-02T22:00:00+08:00")),
        (ts("2026-03-03T20:00:00+08:00"), ts("2026-03-03T22:00:00+08:00")),
    ]
    assert segments[0].key == f"rec.{ts('2026-03-01T20:00:00+08:00')}.0"
    assert segments[0].occurrence == ts("2026-03-01T20:00:00+08:00")


def test_bounds_select_occurrences_by_start() -> None:
    schedule = recurring("0 20 * * *", "2h", "UTC", start="2026-01-02T00:00:00", end="2026-01-04T20:00:00")
    segments = plan(schedule, now=ts("2026-01-01T00:00:00+00:00"), max_task_seconds=CAP, horizon_s=10 * 86400)
    assert [datetime.fromtimestamp(s.start, UTC).day for s in segments] == [2, 3]


def test_long_occurrence_is_split_under_the_cap() -> None:
    schedule = recurring("0 0 1 * *", "20d", "UTC")
    segments = plan(schedule, now=ts("2026-01-01T00:00:00+00:00"), max_task_seconds=CAP, horizon_s=10 * 86400)
    assert [s.index for s in segments] == [0, 1]
    assert segments[0].end == segments[1].start
    assert {s.occurrence for s in segments} == {ts("2026-01-01T00:00:00+00:00")}


def test_weekday_and_month_names_and_shorthands() -> None:
    spec = parse_cron("30 9 * jan-mar mon-fri")
    assert spec.day_matches(date(2026, 1, 5))  # a Monday in January
    assert not spec.day_matches(date(2026, 1, 4))  # Sunday
    assert not spec.day_matches(date(2026, 4, 6))  # April
    assert parse_cron("@daily").times == ((0, 0),)
    assert parse_cron("0 0 * * 7").weekdays == parse_cron("0 0 * * sun").weekdays == frozenset({6})


def test_both_day_fields_restricted_means_either() -> None:
    spec = parse_cron("0 12 13 * fri")
    assert spec.day_matches(date(2026, 2, 13))  # the 13th
    assert spec.day_matches(date(2026, 2, 6))  # a Friday
    assert not spec.day_matches(date(2026, 2, 7))


@pytest.mark.parametrize(
    ("expr", "needle"),
    [
        ("0 20 * *", "has 4 fields"),
        ("61 * * * *", "outside 0-59"),
        ("0 25 * * *", "outside 0-23"),
        ("0 0 * foo *", "neither a number nor a name"),
        ("0 0 * * 1/x", "does not parse"),
        ("5-1 * * * *", "outside"),
    ],
)
def test_bad_cron_is_rejected_with_the_reason(expr: str, needle: str) -> None:
    with pytest.raises(CronError, match=needle):
        parse_cron(expr)


def test_cron_that_never_fires_is_rejected() -> None:
    with pytest.raises(CronError, match="never fires"):
        min_gap_seconds(parse_cron("0 0 30 2 *"))


@pytest.mark.parametrize(
    ("expr", "gap"),
    [("0 20 * * *", 86400), ("0 */2 * * *", 7200), ("0 8,20 * * *", 12 * 3600), ("0 20 * * 1,3", 2 * 86400)],
)
def test_min_gap(expr: str, gap: int) -> None:
    assert min_gap_seconds(parse_cron(expr)) == gap


# --- DST -----------------------------------------------------------------------------------------------------------


def test_spring_forward_gap_time_fires_when_clocks_jump() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # 2026-03-29 02:30 does not exist in Berlin; clocks jump from 02:00 CET to 03:00 CEST (01:00 UTC).
    assert local_instant(date(2026, 3, 29), 2, 30, berlin) == ts("2026-03-29T01:00:00+00:00")
    # 2026-10-25 02:30 happens twice; the first one (CEST) is used.
    assert local_instant(date(2026, 10, 25), 2, 30, berlin) == ts("2026-10-25T02:30:00+02:00")


def test_same_instant_fires_once() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    spec = parse_cron("30 2 * * *")
    spec_both = parse_cron("0,30 2,3 * * *")
    day = ts("2026-03-29T00:00:00+01:00")
    found = list(occurrences(spec, berlin, since=day, until=day + 86400))
    assert found == [ts("2026-03-29T03:00:00+02:00")]
    both = list(occurrences(spec_both, berlin, since=day, until=day + 86400))
    # 02:00, 02:30 and the real 03:00 are one instant (03:00 CEST); then 03:30
    assert both == [ts("2026-03-29T03:00:00+02:00"), ts("2026-03-29T03:30:00+02:00")]


@FAST
@given(
    tz=st.sampled_from(DST_ZONES),
    hour=st.integers(min_value=0, max_value=23),
    minute=st.sampled_from([0, 15, 30, 59]),
    duration=st.integers(min_value=60, max_value=86400),
    day_offset=st.integers(min_value=0, max_value=730),
)
def test_daily_recurrence_across_dst(tz: str, hour: int, minute: int, duration: int, day_offset: int) -> None:
    zone = ZoneInfo(tz)
    now = ts("2025-01-01T00:00:00+00:00") + day_offset * 86400
    segments = plan(
        recurring(f"{minute} {hour} * * *", duration, tz), now=now, max_task_seconds=CAP, horizon_s=400 * 86400
    )
    starts = [s.start for s in segments]
    assert starts == sorted(set(starts))
    local_days = [datetime.fromtimestamp(s, zone).date() for s in starts]
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(local_days)), "one per day"
    for segment in segments:
        local = datetime.fromtimestamp(segment.start, zone)
        if (local.hour, local.minute) != (hour, minute):
            # only allowed when the wall time did not exist: the start is the instant the clocks jumped
            before = datetime.fromtimestamp(segment.start - 1, zone)
            assert before.utcoffset() != local.utcoffset()
            assert (local.hour, local.minute) > (hour, minute)
    for a, b in itertools.pairwise(segments):
        assert a.end <= b.start, "occurrences must never overlap on the destination"
        assert a.end - a.start == min(duration, b.start - a.start)


cron_field = st.one_of(
    st.just("*"),
    st.integers(min_value=0, max_value=20).map(str),
    st.tuples(st.integers(0, 10), st.integers(11, 20)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.integers(min_value=2, max_value=7).map(lambda n: f"*/{n}"),
    st.lists(st.integers(0, 20), min_size=1, max_size=3, unique=True).map(lambda v: ",".join(map(str, v))),
)


@FAST
@given(
    minute=cron_field,
    hour=cron_field,
    day=st.one_of(st.just("*"), st.sampled_from(["1", "1-15", "*/3", "5,20,28"])),
    month=st.one_of(st.just("*"), st.sampled_from(["1", "2-5", "*/4", "6,12"])),
    start_day=st.integers(min_value=0, max_value=2000),
)
def test_occurrences_match_apscheduler_in_utc(minute: str, hour: str, day: str, month: str, start_day: int) -> None:
    since = ts("2026-01-01T00:00:00+00:00") + start_day * 86400
    until = since + 3 * 86400
    ours = list(occurrences(parse_cron(f"{minute} {hour} {day} {month} *"), ZoneInfo("UTC"), since=since, until=until))
    trigger = CronTrigger(minute=minute, hour=hour, day=day, month=month, timezone=UTC)
    theirs: list[int] = []
    moment = trigger.get_next_fire_time(None, datetime.fromtimestamp(since, UTC))
    while moment is not None and moment.timestamp() < until and len(theirs) <= len(ours):
        theirs.append(int(moment.timestamp()))
        moment = trigger.get_next_fire_time(moment, moment + timedelta(seconds=1))
    assert ours == theirs
