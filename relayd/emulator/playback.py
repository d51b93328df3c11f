"""What a destination plays: its URLs, its media clock, HLS playlists, MPEG-TS segments and FLV tags (pure).

A destination's *media time* is the total time that tasks pushing it have been relaying (生效中 and not failed),
read from the tasks' relaying intervals. It advances in real time while a task relays and freezes when the relay
fails, stops, ends or is deleted, so a player watching the destination sees exactly what the task history says.
The HLS media sequence is ``floor(media time / segment length)``; the FLV stream sends one tag per
``FLV_TAG_MS`` of media time.

The jitter fault makes playback lag: in a drawn fraction of ``period_s`` buckets the visible clock stops at the
bucket's start for 2-3 s (``lag_min_s``..``lag_max_s``), then catches up. Draws are a pure function of the seed,
the destination and the bucket, so a test can predict them and two requests agree.

URL pattern (docs/emulator.md), for a DstAddr ``rtmp://HOST/APP/STREAM?auth`` (scheme and query ignored):

* ``/play/HOST/APP/STREAM.m3u8``: live media playlist;
* ``/play/HOST/APP/STREAM.master.m3u8``: master playlist with that one variant;
* ``/play/HOST/APP/STREAM-N.ts``: segment N (a tiny valid MPEG-TS);
* ``/play/HOST/APP/STREAM.flv``: HTTP-FLV (ends when the destination stops relaying).
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from relayd.emulator.destinations import destination_key

PREFIX = "/play/"
FLV_TAG_MS = 200
TS_PACKET = bytes([0x47, 0x1F, 0xFF, 0x10]) + b"\xff" * 184  # an MPEG-TS null packet (PID 0x1FFF)
FLV_HEADER = b"FLV\x01\x01\x00\x00\x00\x09" + b"\x00\x00\x00\x00"  # version 1, video only, PreviousTagSize0
_AVC_KEYFRAME = bytes([0x17, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x65])


class Kind(StrEnum):
    MEDIA = "media"
    MASTER = "master"
    SEGMENT = "segment"
    FLV = "flv"


_SUFFIXES = {Kind.MASTER: ".master.m3u8", Kind.MEDIA: ".m3u8", Kind.FLV: ".flv"}


def playback_url(base_url: str, dst_addr: str, kind: Kind | str = Kind.MEDIA) -> str:
    """The emulator URL that plays ``dst_addr``: ``{base_url}/play/HOST/APP/STREAM.m3u8`` (or master / flv)."""
    return f"{base_url.rstrip('/')}{PREFIX}{destination_key(dst_addr)}{_SUFFIXES[Kind(kind)]}"


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed playback path: the destination key, what is asked for, and the segment number for a segment."""

    key: str
    kind: Kind
    sequence: int = 0


def parse(tail: str) -> Request | None:
    """``HOST/APP/STREAM.m3u8`` (the path after ``/play/``) as a :class:`Request`, or None if it is no such path."""
    for kind, suffix in _SUFFIXES.items():
        if tail.endswith(suffix) and len(tail) > len(suffix):
            return Request(tail.removesuffix(suffix), kind)
    stem, dash, number = tail.removesuffix(".ts").rpartition("-")
    if tail.endswith(".ts") and dash and stem and number.isdigit():
        return Request(stem, Kind.SEGMENT, int(number))
    return None


# --- the media clock ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Jitter:
    """Playback lag: ``rate`` of the ``period_s`` buckets freeze for ``lag_min_s``..``lag_max_s`` seconds."""

    rate: float = 0.0
    period_s: float = 10.0
    lag_min_s: float = 2.0
    lag_max_s: float = 3.0

    def __post_init__(self) -> None:
        if not 0 <= self.rate <= 1:
            raise ValueError("jitter rate must be in [0, 1]")
        if not 0 <= self.lag_min_s <= self.lag_max_s < self.period_s:
            raise ValueError("jitter needs 0 <= lag_min_s <= lag_max_s < period_s")


def visible_time(now: float, key: str, jitter: Jitter, seed: int) -> float:
    """The instant whose media the destination shows at ``now``: ``now``, or a lagging bucket's start."""
    if jitter.rate <= 0:
        return now
    bucket = math.floor(now / jitter.period_s)
    draw = random.Random(f"{seed}:{key}:{bucket}")  # noqa: S311 - a reproducible test fault, not a secret
    if draw.random() >= jitter.rate:
        return now
    start = bucket * jitter.period_s
    lag = jitter.lag_min_s + draw.random() * (jitter.lag_max_s - jitter.lag_min_s)
    return start if now < start + lag else now


def media_seconds(intervals: Iterable[list[float | None]], at: float) -> float:
    """Total relaying time up to ``at`` over ``[from, to]`` intervals (``to`` None = still relaying)."""
    total = 0.0
    for began, ended in intervals:
        assert began is not None
        stop = at if ended is None else min(ended, at)
        total += max(0.0, stop - began)
    return total


# --- formats ------------------------------------------------------------------------------------------------


def media_playlist(stream: str, media_s: float, segment_s: float, window: int) -> str:
    """A live HLS playlist of the last ``window`` complete segments (no ENDLIST: a stall just stops advancing)."""
    done = math.floor(media_s / segment_s)
    first = max(0, done - window)
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{math.ceil(segment_s)}",
        f"#EXT-X-MEDIA-SEQUENCE:{first}",
    ]
    for n in range(first, done):
        lines += [f"#EXTINF:{segment_s:.3f},", f"{stream}-{n}.ts"]
    return "\n".join(lines) + "\n"


def master_playlist(stream: str) -> str:
    return f'#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS="avc1.42e01e"\n{stream}.m3u8\n'


def segments_done(media_s: float, segment_s: float) -> int:
    return math.floor(media_s / segment_s)


def ts_segment() -> bytes:
    return TS_PACKET * 2


def flv_tag(timestamp_ms: int) -> bytes:
    """One FLV video tag (an AVC keyframe NALU) at ``timestamp_ms``, followed by its PreviousTagSize."""
    data = _AVC_KEYFRAME
    ts = timestamp_ms & 0xFFFFFF
    head = bytes([9]) + len(data).to_bytes(3, "big") + ts.to_bytes(3, "big")
    head += bytes([(timestamp_ms >> 24) & 0xFF]) + b"\x00\x00\x00"
    return head + data + struct.pack(">I", len(head) + len(data))
