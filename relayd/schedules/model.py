"""The schedule file format as pydantic models, and the Segment the planner produces. Domain layer: no I/O.

One ``[[schedule]]`` table validates into one frozen :class:`Schedule`; one ``[[group]]`` into a
:class:`GroupSpec`. Unknown keys are errors (they are almost always typos). Every validator raises a
``ValueError`` whose text is ``what is wrong — how to fix it``; the loader splits it on `` — `` and adds the
file, line and field path, so an operator reads one precise line per problem.

Checks that need files or the platform's own rules (watermark image bytes, URL rules shared with the emulator,
group-name charset) live in the loader; everything here is structural and pure, so a Schedule can also be
rebuilt from the store with ``Schedule.model_validate(schedule.model_dump(mode="json"))``.

The one exception is ``health.url``: an RTMP/SRT playback URL is probed with ``ffprobe``, so validation looks the
program up on PATH (``shutil.which``, or the ``"which"`` callable of the validation context; ``None`` there skips
the lookup, for rebuilding schedules that were validated once already: :data:`NO_PROGRAM_CHECK`).

Times: ``start``/``end`` are RFC 3339 with an offset, or naive with a ``timezone`` (IANA name). Durations are
seconds or strings like ``"90s"``, ``"5m"``, ``"2h"``, ``"1d"``, ``"1h30m"``.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    StrictBool,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from relayd import durations
from relayd.ids import GroupName, ScheduleId, SegmentKey
from relayd.schedules.excerpts import excerpt
from relayd.schedules.recurrence import min_gap_seconds, parse_cron

MIN_WINDOW_SECONDS = 60
_MAX_DURATION_TEXT = 64
_MAX_CRON_TEXT = 200
MAX_PLAYLIST_ITEMS = 30
MAX_TIMED_PLAYLIST_ITEMS = 29  # one platform slot is needed to split the item playing at a hand-off
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_ID_RE = re.compile(ID_PATTERN)
ONE_TIMING = (
    "needs exactly one of window or recurrence — add window = {start = ...} or "
    'recurrence = {cron = "0 20 * * *", duration = "2h", timezone = "..."}'
)
UNION_TAGS = frozenset({"live", "vod"})
"""Tags pydantic puts into error locations for the source union; the loader drops them from field paths."""

_STRICT = ConfigDict(extra="forbid", frozen=True)


# --- scalar types -------------------------------------------------------------------------------------------


def parse_duration(value: object) -> float:
    """Seconds from a number or a string like "90s", "5m", "2h", "1d", "1h30m" (relayd.durations' grammar)."""
    try:
        if not isinstance(value, int | float | str) or (isinstance(value, str) and len(value) > _MAX_DURATION_TEXT):
            raise ValueError("not a duration")  # durations' own message echoes the value whole: keep that short
        return durations.parse_duration(value)
    except (ValueError, OverflowError):
        raise ValueError(
            f'must be a duration ({excerpt(value)}) — write e.g. "90s", "5m", "2h", "1d" or seconds'
        ) from None


def _whole_seconds(value: object) -> int:
    seconds = parse_duration(value)
    if seconds != int(seconds):
        raise ValueError(f"must be whole seconds ({excerpt(value)}) — round it to a whole number of seconds")
    return int(seconds)


_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0, "description": "seconds"},
        {"type": "string", "examples": ["90s", "5m", "2h", "1h30m", "1d"]},
    ],
    "description": 'a duration: seconds, or e.g. "90s", "5m", "2h", "1d", "1h30m"',
}
Seconds = Annotated[int, BeforeValidator(_whole_seconds), WithJsonSchema(_DURATION_SCHEMA)]
FloatSeconds = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(_DURATION_SCHEMA)]


def _loop(value: object) -> int | Literal["forever"]:
    if value == "forever":
        return "forever"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ValueError(f'must be "forever" or a whole number >= 1 ({excerpt(value)}) — e.g. loop = 3 or loop = "forever"')


Loop = Annotated[
    int | Literal["forever"],
    PlainValidator(_loop),
    WithJsonSchema({"anyOf": [{"const": "forever"}, {"type": "integer", "minimum": 1}]}),
]


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """A cached ZoneInfo; ValueError with a fix for unknown names."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f'is not a known IANA time zone ({excerpt(name)}) — use e.g. "Asia/Shanghai" or "UTC"'
        ) from None


def _check_zone(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f'must be a string ({excerpt(value)}) — use an IANA name such as "Asia/Shanghai"')
    zone(value)
    return value


TimeZoneName = Annotated[str, PlainValidator(_check_zone), WithJsonSchema({"type": "string"})]


def _localize(value: datetime, info: ValidationInfo) -> datetime:
    if value.tzinfo is not None:
        return value
    name = info.data.get("timezone")
    if name is None:
        text = value.isoformat()
        raise ValueError(f"has no UTC offset ({text}) — add one (e.g. {text}+08:00) or set a valid timezone")
    return value.replace(tzinfo=zone(name))


def _localize_optional(value: datetime | None, info: ValidationInfo) -> datetime | None:
    return None if value is None else _localize(value, info)


def _check_end(end: datetime | None, info: ValidationInfo) -> datetime | None:
    if end is None:
        return None
    end = _localize(end, info)
    start = info.data.get("start")
    if start is None:
        return end
    if end <= start:
        raise ValueError(
            f"must be after start ({end.isoformat()} <= {start.isoformat()}) — "
            "set end later than start or remove it to run forever"
        )
    if (end - start).total_seconds() < MIN_WINDOW_SECONDS:
        raise ValueError(
            f"is only {(end - start).total_seconds():g} s after start — a window must last at least "
            f"{MIN_WINDOW_SECONDS} s; set end later"
        )
    return end


# --- sources and destinations -------------------------------------------------------------------------------


class LiveSource(BaseModel):
    """A live stream pulled from a URL (platform Type 0)."""

    model_config = _STRICT
    url: str = Field(description="live pull URL: rtmp, rtmps, http(s) (FLV/HLS), srt or rtsp")


class PlaylistItem(BaseModel):
    """One VOD file. With ``duration`` (or ``end_offset``) known for every item, hand-offs keep continuity."""

    model_config = _STRICT
    url: str = Field(description="VOD file URL")
    duration: FloatSeconds | None = Field(default=None, description="file length in seconds")
    start_offset: FloatSeconds | None = Field(default=None, description="start playing this far into the file")
    end_offset: FloatSeconds | None = Field(default=None, description="stop playing this far into the file")

    @model_validator(mode="after")
    def _offsets(self) -> PlaylistItem:
        start = self.start_offset or 0.0
        stop = self.end_offset if self.end_offset is not None else self.duration
        if self.end_offset is not None and self.duration is not None and self.end_offset > self.duration:
            raise ValueError(f"end_offset {self.end_offset:g} is past duration {self.duration:g} — lower end_offset")
        if stop is not None and stop <= start:
            raise ValueError(f"plays nothing: ends at {stop:g} s, starts at {start:g} s — fix the offsets")
        return self

    @property
    def length(self) -> float | None:
        """Seconds this item plays, if known."""
        stop = self.end_offset if self.end_offset is not None else self.duration
        return None if stop is None else stop - (self.start_offset or 0.0)


class VodSource(BaseModel):
    """A playlist of VOD files (platform Type 1), looped ``loop`` times or forever."""

    model_config = _STRICT
    playlist: list[PlaylistItem] = Field(min_length=1, max_length=MAX_PLAYLIST_ITEMS)
    loop: Loop = Field(default="forever", description='"forever" or how many times to play the playlist')

    @field_validator("playlist")
    @classmethod
    def _timed_limit(cls, items: list[PlaylistItem]) -> list[PlaylistItem]:
        if len(items) > MAX_TIMED_PLAYLIST_ITEMS and all(item.length is not None for item in items):
            raise ValueError(
                f"has {len(items)} items with known durations — at most {MAX_TIMED_PLAYLIST_ITEMS} are allowed "
                "(one platform slot splits the item playing at a hand-off); merge or drop items"
            )
        return items

    @property
    def period(self) -> float | None:
        """Seconds one pass of the playlist takes, if every item's length is known."""
        lengths = [item.length for item in self.playlist]
        return None if any(x is None for x in lengths) else sum(x for x in lengths if x is not None)


def _source_kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "vod" if "playlist" in value else "live"
    return "vod" if isinstance(value, VodSource) else "live"


Source = Annotated[
    Annotated[LiveSource, Tag("live")] | Annotated[VodSource, Tag("vod")],
    Discriminator(_source_kind),
]


class Destination(BaseModel):
    """A push URL, or the push domain/app/stream triple."""

    model_config = _STRICT
    url: str | None = Field(default=None, description="push URL, e.g. rtmp://push.example.com/live/stream")
    domain: str | None = None
    app: str | None = None
    stream: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Destination:
        parts = (self.domain, self.app, self.stream)
        if self.url is not None and any(parts):
            raise ValueError("has both url and domain/app/stream — keep one form")
        if self.url is None and not all(parts):
            raise ValueError('needs a push URL or all of domain, app and stream — e.g. destination = "rtmp://..."')
        return self


# --- time -----------------------------------------------------------------------------------------------------


class Window(BaseModel):
    """One window [start, end); no end means forever."""

    model_config = _STRICT
    timezone: TimeZoneName | None = Field(default=None, description="IANA zone for start/end without an offset")
    start: datetime = Field(description="RFC 3339, e.g. 2025-12-01T00:00:00+08:00")
    end: datetime | None = Field(default=None, description="exclusive; omit to run forever")

    _start = field_validator("start")(_localize)
    _end = field_validator("end")(_check_end)


class Recurrence(BaseModel):
    """A cron expression in a time zone; each occurrence runs ``duration``, bounded by optional start/end."""

    model_config = _STRICT
    timezone: TimeZoneName = Field(description='IANA zone the cron fields are read in, e.g. "Asia/Shanghai"')
    cron: str = Field(description='five fields: minute hour day-of-month month day-of-week, e.g. "0 20 * * *"')
    duration: Seconds = Field(description='how long each occurrence runs, e.g. "2h"')
    start: datetime | None = Field(default=None, description="no occurrence starts before this")
    end: datetime | None = Field(default=None, description="no occurrence starts at or after this")

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value) > _MAX_CRON_TEXT:
            raise ValueError(
                f"is {len(value)} characters long — a cron expression is five short fields, e.g. '0 20 * * *'"
            )
        spec = parse_cron(value)
        min_gap_seconds(spec)  # never fires -> error
        return value

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: int, info: ValidationInfo) -> int:
        if value < MIN_WINDOW_SECONDS:
            raise ValueError(f"is {value} s — an occurrence must last at least {MIN_WINDOW_SECONDS} s")
        cron = info.data.get("cron")
        if cron is not None:
            gap = min_gap_seconds(parse_cron(cron))
            if value > gap:
                raise ValueError(
                    f"is {value} s but occurrences of {cron!r} can be only {gap} s apart — shorten the duration "
                    "to at most the gap so occurrences never overlap on the destination"
                )
        return value

    _start = field_validator("start")(_localize_optional)
    _end = field_validator("end")(_check_end)


# --- extras ---------------------------------------------------------------------------------------------------


class Watermark(BaseModel):
    """An image overlay; ``file`` is relative to the schedule file. The loader embeds it as ``picture``."""

    model_config = _STRICT
    file: str = Field(description="PNG or JPEG, 100 B - 2 MB, at most 1080x1080, relative to this file")
    x: float = Field(default=0.0, ge=0, lt=1, description="left offset as a fraction of the width, [0, 1)")
    y: float = Field(default=0.0, ge=0, lt=1, description="top offset as a fraction of the height, [0, 1)")
    ratio: float = Field(gt=0, le=1, description="watermark width as a fraction of the video width, (0, 1]")
    picture: SkipJsonSchema[str | None] = None


class RestartPolicy(BaseModel):
    """Per-schedule overrides of the daemon's restart policy; unset keys keep the global setting."""

    model_config = _STRICT
    attempts: int | None = Field(default=None, ge=1, description="restarts per segment before it is marked failed")
    backoff_base: FloatSeconds | None = Field(default=None, description="first backoff delay")
    backoff_cap: FloatSeconds | None = Field(default=None, description="longest backoff delay")


class StreamKind(StrEnum):
    """How a health URL is probed: an HLS playlist, an HTTP-FLV stream, or ffprobe (RTMP, RTMPS, SRT)."""

    HLS = "hls"
    FLV = "flv"
    FFPROBE = "ffprobe"


FFPROBE = "ffprobe"
NO_PROGRAM_CHECK: Mapping[str, Any] = {"which": None}
"""Validation context that skips the ffprobe lookup (for schedules rebuilt from the store)."""
_PROGRAM_SCHEMES = frozenset({"rtmp", "rtmps", "srt"})
_HEALTH_URL_FIX = (
    "use the stream's playback URL: http(s)://….m3u8 (HLS), http(s)://….flv (HTTP-FLV), rtmp(s):// or srt://"
)
MIN_HEALTH_INTERVAL = 1.0


def shown_url(url: str) -> str:
    """The URL without query, fragment or user info: playback URLs often carry auth tokens there."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else url.split("?", 1)[0]


def stream_kind(url: str) -> StreamKind:
    """The probe kind of a health URL, from its scheme and (for HTTP) its path suffix; ValueError with a fix."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in _PROGRAM_SCHEMES and parts.hostname:
        return StreamKind.FFPROBE
    if scheme in ("http", "https") and parts.hostname:
        path = parts.path.lower()
        if path.endswith(".m3u8"):
            return StreamKind.HLS
        if path.endswith(".flv"):
            return StreamKind.FLV
        raise ValueError(f"is neither an HLS (.m3u8) nor an HTTP-FLV (.flv) URL ({shown_url(url)}) — {_HEALTH_URL_FIX}")
    raise ValueError(f"is not a supported playback URL ({shown_url(url)}) — {_HEALTH_URL_FIX}")


def _program_lookup(info: ValidationInfo) -> Callable[[str], str | None] | None:
    context = info.context if isinstance(info.context, Mapping) else {}
    lookup: Callable[[str], str | None] | None = context.get("which", shutil.which)
    return lookup


class HealthCheck(BaseModel):
    """Where the destination stream can be watched, and how patiently: a stall is no advance for ``stall_after``."""

    model_config = _STRICT
    url: str = Field(description="playback URL: http(s)://….m3u8, http(s)://….flv, rtmp(s):// or srt:// (ffprobe)")
    stall_after: FloatSeconds = Field(default=15.0, description="no advance this long while relaying = stalled")
    interval: FloatSeconds = Field(default=5.0, description="time between two probes of this stream")
    timeout: FloatSeconds | None = Field(default=None, description="one probe's time limit (default: interval)")
    grace: FloatSeconds = Field(default=10.0, description="no judgement this long after a segment starts or restarts")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        if stream_kind(value) is StreamKind.FFPROBE:
            which = _program_lookup(info)
            if which is not None and which(FFPROBE) is None:
                scheme = urlsplit(value).scheme.lower()
                raise ValueError(
                    f"{scheme}:// playback URLs are probed with {FFPROBE}, which is not installed (not on PATH) — "
                    "install ffmpeg (e.g. apt-get install ffmpeg) or use the stream's HLS or HTTP-FLV URL"
                )
        return value

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: float) -> float:
        if value < MIN_HEALTH_INTERVAL:
            raise ValueError(f'is {value:g} s — probe at most once a second: use interval = "1s" or more')
        return value

    @model_validator(mode="after")
    def _patience(self) -> HealthCheck:
        if self.stall_after < 2 * self.interval:
            raise ValueError(
                f"stall_after {self.stall_after:g} s is less than two probe intervals ({self.interval:g} s each) — "
                "raise stall_after or shorten interval, so one late probe never reads as a stall"
            )
        if self.timeout is not None and not 0 < self.timeout <= self.stall_after:
            raise ValueError(f"timeout {self.timeout:g} s must be above 0 and at most stall_after — lower it")
        return self

    @property
    def kind(self) -> StreamKind:
        return stream_kind(self.url)

    @property
    def probe_timeout(self) -> float:
        """One probe's time limit: ``timeout``, or the interval."""
        return self.timeout if self.timeout is not None else self.interval


def _as_table(key: str) -> Any:
    def coerce(value: Any) -> Any:
        return {key: value} if isinstance(value, str) else value

    return BeforeValidator(coerce)


class Schedule(BaseModel):
    """One validated ``[[schedule]]``."""

    model_config = _STRICT
    id: ScheduleId = Field(description="unique across the directory: 1-64 letters, digits, '_' or '-'")
    enabled: StrictBool = True  # strict: "yes" or "false" in quotes is an error, never silently true
    title: str | None = Field(default=None, max_length=200, description="human title, kept locally")
    group: GroupName | None = Field(default=None, description="platform task group (1-20 letters/digits/CJK)")
    source: Annotated[Source, _as_table("url")] = Field(description="live pull URL, or {playlist = [...], loop}")
    destination: Annotated[Destination, _as_table("url")] = Field(description="push URL or {domain, app, stream}")
    window: Window | None = None
    recurrence: Recurrence | None = None
    watermark: Watermark | None = None
    pre_download: StrictBool | None = Field(
        default=None, description="VOD only: pre-warm files on the CDN (default on)"
    )
    continue_strategy: Literal["resume", "catch_up"] | None = Field(
        default=None, description="VOD only, after a break: resume where it broke, or catch up by elapsed time"
    )
    callbacks: StrictBool = Field(default=True, description="ask the platform for status callbacks")
    restart: RestartPolicy | None = None
    health: Annotated[HealthCheck, _as_table("url")] | None = Field(
        default=None, description="watch the destination's playback for stalls"
    )
    source_file: SkipJsonSchema[str] = ""
    source_line: SkipJsonSchema[int] = 0

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID_RE.match(value):
            raise ValueError(f"is not a valid id ({excerpt(value)}) — use 1-64 letters, digits, '_' or '-'")
        return value

    @field_validator("pre_download", "continue_strategy")
    @classmethod
    def _vod_only(cls, value: object, info: ValidationInfo) -> object:
        if value is not None and isinstance(info.data.get("source"), LiveSource):
            raise ValueError(f"applies to VOD playlists only ({excerpt(value)}) — remove it for a live source")
        return value

    @model_validator(mode="after")
    def _one_timing(self) -> Schedule:
        if (self.window is None) == (self.recurrence is None):
            raise ValueError(ONE_TIMING)
        return self

    def digest(self) -> str:
        """Stable hash of everything but the file location: if it changes, the schedule must be reconciled."""
        data = self.model_dump(mode="json", exclude={"source_file", "source_line"})
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


class GroupSpec(BaseModel):
    """A ``[[group]]`` relayd creates or updates on the platform."""

    model_config = _STRICT
    name: GroupName = Field(description="1-20 letters, digits or Chinese characters")
    project: str = Field(default="default", min_length=1, description="IAM project; fixed once created")
    tags: dict[str, str] = Field(default_factory=dict, description="custom tags, key = value")
    source_file: SkipJsonSchema[str] = ""
    source_line: SkipJsonSchema[int] = 0


class ScheduleFile(BaseModel):
    """The whole file, for ``relayd schema``."""

    model_config = ConfigDict(extra="forbid", title="relayd schedule file")
    schedule: list[Schedule] = Field(default_factory=list)
    group: list[GroupSpec] = Field(default_factory=list)


# --- planner output -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    """One platform task's worth of a schedule: [start, end) of at most the task cap."""

    schedule_id: ScheduleId
    key: SegmentKey
    index: int
    occurrence: int | None
    start: int
    end: int
    title: str
    group: GroupName | None
    body: Mapping[str, Any]
    spec_hash: str
    callbacks: bool


def file_schema() -> dict[str, Any]:
    """JSON Schema of a schedule file (``relayd schema``); a plain URL string is allowed for source/destination."""
    schema = ScheduleFile.model_json_schema()
    properties = schema["$defs"]["Schedule"]["properties"]
    for name, what in (("source", "live pull URL"), ("destination", "push URL"), ("health", "playback URL")):
        original = properties[name]
        properties[name] = {
            "anyOf": [
                {"type": "string", "description": what},
                {k: v for k, v in original.items() if k != "description"},
            ],
            "description": original.get("description", ""),
        }
    return schema
