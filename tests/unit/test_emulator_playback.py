"""Playback maths and formats (pure): URLs, the media clock, jitter, playlists that a player parses, FLV tags."""

from __future__ import annotations

import m3u8
import pytest

from relayd.emulator import playback
from relayd.emulator.destinations import destination_key
from relayd.emulator.playback import Jitter, Kind, Request


def test_destination_key_ignores_scheme_query_and_credentials() -> None:
    assert destination_key("rtmp://user:pw@Push.Example.com:1935/live/b?token=x") == "push.example.com:1935/live/b"
    assert destination_key("srt://push.example.com/live/b/") == "push.example.com/live/b"


def test_urls_and_their_parsing_round_trip() -> None:
    base = "http://127.0.0.1:8900/"
    dst = "rtmp://push.example.com/live/show?auth=1"
    urls = {kind: playback.playback_url(base, dst, kind) for kind in (Kind.MEDIA, Kind.MASTER, Kind.FLV)}
    assert urls[Kind.MEDIA] == "http://127.0.0.1:8900/play/push.example.com/live/show.m3u8"
    assert urls[Kind.MASTER].endswith("/live/show.master.m3u8") and urls[Kind.FLV].endswith("/live/show.flv")
    for kind, url in urls.items():
        assert playback.parse(url.split("/play/", 1)[1]) == Request("push.example.com/live/show", kind)
    assert playback.parse("push.example.com/live/show-12.ts") == Request("push.example.com/live/show", Kind.SEGMENT, 12)
    for bad in ("push.example.com/live/show.mp4", ".m3u8", "x/show-.ts", "x/show-a1.ts"):
        assert playback.parse(bad) is None


def test_media_seconds_sums_relaying_intervals_up_to_an_instant() -> None:
    intervals: list[list[float | None]] = [[100.0, 110.0], [120.0, None]]
    assert playback.media_seconds(intervals, 105) == 5
    assert playback.media_seconds(intervals, 115) == 10
    assert playback.media_seconds(intervals, 130) == 20
    assert playback.media_seconds([], 130) == 0


def test_jitter_freezes_a_bucket_for_two_to_three_seconds() -> None:
    jitter = Jitter(rate=1.0, period_s=10, lag_min_s=2, lag_max_s=3)
    assert playback.visible_time(101.9, "k", jitter, seed=1) == 100
    assert playback.visible_time(103.0, "k", jitter, seed=1) == 103.0
    assert playback.visible_time(101.0, "k", Jitter(), seed=1) == 101.0
    # rate 0.3: about 30 % of the buckets lag, reproducibly for one seed and destination
    some = Jitter(rate=0.3)
    lagging = [b for b in range(1000) if playback.visible_time(b * 10 + 1, "k", some, seed=4) != b * 10 + 1]
    assert 220 <= len(lagging) <= 380
    assert lagging == [b for b in range(1000) if playback.visible_time(b * 10 + 1, "k", some, seed=4) != b * 10 + 1]


@pytest.mark.parametrize("bad", [{"rate": 2.0}, {"lag_min_s": 3, "lag_max_s": 2}, {"lag_max_s": 10}])
def test_jitter_is_validated(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="jitter"):
        Jitter(**bad)


def test_media_playlist_is_a_live_window_that_m3u8_parses() -> None:
    parsed = m3u8.loads(playback.media_playlist("show", media_s=12.4, segment_s=2.0, window=3))
    assert parsed.media_sequence == 3 and parsed.target_duration == 2 and not parsed.is_endlist
    assert [s.uri for s in parsed.segments] == ["show-3.ts", "show-4.ts", "show-5.ts"]
    assert [s.duration for s in parsed.segments] == [2.0, 2.0, 2.0]
    empty = m3u8.loads(playback.media_playlist("show", media_s=0.5, segment_s=1.0, window=3))
    assert empty.media_sequence == 0 and empty.segments == []
    master = m3u8.loads(playback.master_playlist("show"))
    assert master.is_variant and master.playlists[0].uri == "show.m3u8"


def test_segments_are_mpeg_ts_and_tags_are_flv() -> None:
    segment = playback.ts_segment()
    assert len(segment) % 188 == 0 and segment[::188] == b"\x47" * (len(segment) // 188)
    tag = playback.flv_tag(0x01_23_45_67)
    size = int.from_bytes(tag[1:4], "big")
    assert tag[0] == 9 and len(tag) == 11 + size + 4
    assert int.from_bytes(tag[4:7], "big") | tag[7] << 24 == 0x01_23_45_67
    assert int.from_bytes(tag[-4:], "big") == 11 + size
    assert playback.FLV_HEADER[:3] == b"FLV" and len(playback.FLV_HEADER) == 13
