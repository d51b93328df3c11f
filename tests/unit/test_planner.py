"""Planner properties: exact tiling of windows, titles, laziness, VOD continuity across hand-offs."""

from __future__ import annotations

import base64
import hashlib
import itertools
import math
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relayd.ids import SegmentKey
from relayd.schedules.model import Schedule, Segment
from relayd.schedules.planner import is_relayd_title, plan, title_for
from relayd.volc import rules

CAP = 604800
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def iso(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat()


def live(start: int, end: int | None, *, sid: str = "s1", **extra: Any) -> Schedule:
    window = {"start": iso(start)} | ({"end": iso(end)} if end is not None else {})
    return Schedule.model_validate(
        {"id": sid, "source": "rtmp://o.example/live/a", "destination": "rtmp://p.example/live/a", "window": window}
        | extra
    )


def assert_touching(segments: list[Segment]) -> None:
    for a, b in itertools.pairwise(segments):
        assert a.end == b.start, "segments must touch exactly: no gap, no overlap"


@st.composite
def window_and_cap(draw: st.DrawFn, max_days: int = 400, max_segments: int = 300) -> tuple[int, int]:
    """A window length and a cap, with at most ``max_segments`` segments so the test stays fast."""
    cap = draw(st.integers(min_value=60, max_value=CAP))
    return draw(st.integers(min_value=60, max_value=min(max_days * 86400, cap * max_segments))), cap


@FAST
@given(window=window_and_cap(), start=st.integers(min_value=T0 - 10**8, max_value=T0 + 10**8))
def test_window_is_tiled_exactly(window: tuple[int, int], start: int) -> None:
    length, cap = window
    segments = plan(live(start, start + length), now=start - 1, max_task_seconds=cap, horizon_s=length + 2)
    assert len(segments) == math.ceil(length / cap)
    assert segments[0].start == start
    assert segments[-1].end == start + length
    assert_touching(segments)
    assert all(0 < s.end - s.start <= cap for s in segments)
    assert [s.index for s in segments] == list(range(len(segments)))


@FAST
@given(
    length=st.integers(min_value=60, max_value=100 * 86400),
    cap=st.integers(min_value=3600, max_value=CAP),
    now_at=st.floats(min_value=0, max_value=1),
    horizon=st.integers(min_value=0, max_value=30 * 86400),
)
def test_only_segments_overlapping_now_and_horizon_are_kept(length: int, cap: int, now_at: float, horizon: int) -> None:
    start = T0
    now = start + int(now_at * length)
    kept = plan(live(start, start + length), now=now, max_task_seconds=cap, horizon_s=horizon)
    everything = plan(live(start, start + length), now=start - 1, max_task_seconds=cap, horizon_s=length + 2)
    expected = [s for s in everything if s.end > now and s.start < now + horizon]
    assert [(s.key, s.start, s.end) for s in kept] == [(s.key, s.start, s.end) for s in expected]
    assert [s.spec_hash for s in kept] == [s.spec_hash for s in expected]


@FAST
@given(
    offset_days=st.integers(min_value=0, max_value=20 * 365),
    cap=st.integers(min_value=3600, max_value=CAP),
    horizon_days=st.integers(min_value=1, max_value=30),
)
def test_forever_is_planned_lazily_within_the_horizon(offset_days: int, cap: int, horizon_days: int) -> None:
    now = T0 + offset_days * 86400 + 12345
    horizon = horizon_days * 86400
    segments = plan(live(T0, None), now=now, max_task_seconds=cap, horizon_s=horizon)
    assert segments[0].start <= now < segments[0].end
    assert segments[-1].start < now + horizon <= segments[-1].end
    assert len(segments) <= horizon // cap + 2
    assert_touching(segments)
    assert all((s.start - T0) % cap == 0 and s.end - s.start == cap for s in segments)


def test_extending_the_end_changes_only_the_last_segment() -> None:
    short = plan(live(T0, T0 + 20 * 86400), now=T0 - 1, max_task_seconds=CAP, horizon_s=10**8)
    longer = plan(live(T0, T0 + 30 * 86400), now=T0 - 1, max_task_seconds=CAP, horizon_s=10**8)
    assert [s.spec_hash for s in short[:-1]] == [s.spec_hash for s in longer[: len(short) - 1]]
    assert short[-1].key == longer[len(short) - 1].key
    assert short[-1].spec_hash != longer[len(short) - 1].spec_hash


def test_a_destination_change_changes_every_spec_hash_but_no_key() -> None:
    a = plan(live(T0, T0 + 20 * 86400), now=T0, max_task_seconds=CAP, horizon_s=10**8)
    b = plan(
        live(T0, T0 + 20 * 86400, destination="rtmp://elsewhere.example/live/b"),
        now=T0,
        max_task_seconds=CAP,
        horizon_s=10**8,
    )
    assert [s.key for s in a] == [s.key for s in b]
    assert all(x.spec_hash != y.spec_hash for x, y in zip(a, b, strict=True))
    assert b[0].body["DstAddr"] == "rtmp://elsewhere.example/live/b"


def test_segment_carries_body_group_and_callbacks() -> None:
    schedule = live(T0, T0 + 3600, group="news", callbacks=False)
    (segment,) = plan(schedule, now=T0, max_task_seconds=CAP, horizon_s=86400)
    assert segment.group == "news"
    assert segment.callbacks is False
    assert segment.key == "s1.0"
    assert segment.occurrence is None
    assert dict(segment.body) == {"Type": 0, "SrcAddr": "rtmp://o.example/live/a", "DstAddr": "rtmp://p.example/live/a"}
    body = {**segment.body, "StartTime": segment.start, "EndTime": segment.end, "Title": segment.title}
    assert rules.check_task(body, now=T0) == []


# --- titles -------------------------------------------------------------------------------------------------------


@given(keys=st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1), min_size=2, unique=True))
@FAST
def test_titles_are_valid_platform_titles_and_unique(keys: list[str]) -> None:
    titles = [title_for(SegmentKey(k), "relayd") for k in keys]
    assert all(rules.is_valid_name(t) and len(t) == 20 and is_relayd_title(t) for t in titles)
    assert len(set(titles)) == len(titles)


def test_titles_are_stable_and_namespaced() -> None:
    key = SegmentKey("news.3")
    assert title_for(key, "relayd") == title_for(SegmentKey("news.3"), "relayd")
    assert title_for(key, "relayd") != title_for(key, "staging")
    many = {title_for(SegmentKey(f"s{i}.{j}"), "relayd") for i in range(200) for j in range(50)}
    assert len(many) == 200 * 50
    assert not is_relayd_title("rdlowercase000000000")
    assert not is_relayd_title("News tonight")


# --- VOD continuity -----------------------------------------------------------------------------------------------

half_seconds = st.integers(min_value=2, max_value=4000).map(lambda n: n / 2)


@st.composite
def playlists(draw: st.DrawFn) -> list[dict[str, Any]]:
    items = []
    for i in range(draw(st.integers(min_value=1, max_value=6))):
        duration = draw(half_seconds)
        item: dict[str, Any] = {"url": f"https://vod.example/{i}.mp4", "duration": duration}
        if draw(st.booleans()):
            item["start_offset"] = draw(st.integers(min_value=0, max_value=int(duration * 2) - 1)) / 2
            if item["start_offset"] >= duration:
                del item["start_offset"]
        items.append(item)
    return items


def pass_position(addr: dict[str, Any], file_pos: float, items: list[dict[str, Any]]) -> float:
    """Seconds into one pass of the operator's playlist for a (file, position in file)."""
    acc = 0.0
    for item in items:
        if item["url"] == addr["SrcAddr"]:
            return acc + file_pos - item.get("start_offset", 0.0)
        acc += item["duration"] - item.get("start_offset", 0.0)
    raise AssertionError("unknown file")


def play(body: dict[str, Any], seconds: float, items: list[dict[str, Any]]) -> float:
    """Simulate the platform playing a task body for ``seconds``: the pass position it reaches."""
    durations = {i["url"]: i["duration"] for i in items}
    pieces = [(a, a.get("StartOffset", 0.0), a.get("EndOffset", durations[a["SrcAddr"]])) for a in body["VodSrcAddrs"]]
    period = sum(end - start for _, start, end in pieces)
    loops = math.inf if body["CycleMode"] == -1 else body["CycleMode"]
    assert seconds <= loops * period + 1, "the task would run out of loops before its EndTime"
    rest = seconds % period
    for addr, start, end in pieces:
        if rest < end - start:
            return pass_position(addr, start + rest, items)
        rest -= end - start
    return pass_position(pieces[0][0], pieces[0][1], items)


def first_position(body: dict[str, Any], items: list[dict[str, Any]]) -> float:
    first = body["VodSrcAddrs"][0]
    return pass_position(first, first.get("StartOffset", 0.0), items)


@FAST
@given(
    items=playlists(),
    loop=st.one_of(st.just("forever"), st.integers(min_value=1, max_value=500)),
    window=window_and_cap(max_days=60, max_segments=100),
)
def test_vod_position_and_loops_continue_across_hand_offs(
    items: list[dict[str, Any]], loop: int | str, window: tuple[int, int]
) -> None:
    length, cap = window
    end = T0 + length
    schedule = live(T0, end, source={"playlist": items, "loop": loop})
    segments = plan(schedule, now=T0 - 1, max_task_seconds=cap, horizon_s=10**8)
    period = sum(i["duration"] - i.get("start_offset", 0.0) for i in items)
    assert first_position(dict(segments[0].body), items) == 0.0
    for a, b in itertools.pairwise(segments):
        reached = play(dict(a.body), a.end - a.start, items)
        assert math.isclose(reached % period, first_position(dict(b.body), items), abs_tol=2e-3) or math.isclose(
            abs(reached - first_position(dict(b.body), items)), period, abs_tol=2e-3
        )
    total = T0 + (math.inf if loop == "forever" else math.ceil(int(loop) * period))
    assert segments[-1].end == min(end, total), "a finite playlist ends the schedule when its last loop finishes"
    if loop != "forever":
        for s in segments:
            remaining = int(loop) * period - (s.start - T0)
            assert 0 <= s.body["CycleMode"] * period - remaining < period + 1e-6
            assert len(s.body["VodSrcAddrs"]) <= rules.MAX_VOD_ADDRS


def test_vod_without_durations_restarts_each_segment() -> None:
    items = [{"url": "https://vod.example/a.mp4"}, {"url": "https://vod.example/b.mp4", "start_offset": 3}]
    schedule = live(T0, T0 + 20 * 86400, source={"playlist": items, "loop": 2})
    segments = plan(schedule, now=T0, max_task_seconds=CAP, horizon_s=10**8)
    assert len(segments) == 3
    expected = [{"SrcAddr": "https://vod.example/a.mp4"}, {"SrcAddr": "https://vod.example/b.mp4", "StartOffset": 3.0}]
    assert all(s.body["VodSrcAddrs"] == expected and s.body["CycleMode"] == 2 for s in segments)


def test_vod_hand_off_splits_the_playing_item() -> None:
    items = [
        {"url": "https://vod.example/a.mp4", "duration": 100},
        {"url": "https://vod.example/b.mp4", "duration": 50},
    ]
    schedule = live(T0, T0 + 3600, source={"playlist": items, "loop": "forever"})
    second = plan(schedule, now=T0, max_task_seconds=620, horizon_s=10**8)[1]
    # 620 s = 4 passes of 150 s + 20 s into a.mp4
    assert second.body["VodSrcAddrs"] == [
        {"SrcAddr": "https://vod.example/a.mp4", "StartOffset": 20.0},
        {"SrcAddr": "https://vod.example/b.mp4"},
        {"SrcAddr": "https://vod.example/a.mp4", "EndOffset": 20.0},
    ]
    assert second.body["CycleMode"] == -1


def test_title_is_rd_plus_base32_of_the_sha256() -> None:
    digest = hashlib.sha256(b"relayd\0news.3").digest()
    assert title_for(SegmentKey("news.3"), "relayd") == "rd" + base64.b32encode(digest).decode()[:18]
