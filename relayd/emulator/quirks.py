"""Quirks: each open platform question (reference section 9) as a switchable emulator behaviour, and profiles.

The platform leaves much undocumented; the emulator cannot know the real answers, so it implements each plausible
one. A :class:`Quirks` value is the full, frozen set of answers the emulator plays; every field is an enum whose
first member is the lenient answer (the emulator's historical behaviour) and whose docstring names the reference
question it stands for. Each quirk is consulted in exactly one place in the emulator.

Named profiles bundle answers: ``lenient`` (every default), ``strict`` (every strict answer at once) and
``byteplus`` (BytePlus MediaLive's documented limits). :func:`resolve` applies ``NAME=VALUE`` overrides on top of
a profile, and refuses a typo with the list of valid names or values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any


class Destination(StrEnum):
    """Q10: may two tasks push one destination (DstAddr) at once? Alibaba documents that they conflict."""

    SHARED = "shared"  # any overlap is accepted
    EXCLUSIVE = "exclusive"  # refused when windows overlap or touch (end == start counts)
    EXCLUSIVE_TOUCHING_OK = "exclusive-touching-ok"  # refused on overlap; windows that only touch are fine


class UpdateRunning(StrEnum):
    """Q5: may UpdatePullToPushTask change a task that is 生效中 (running)? Alibaba allows little while running."""

    ALLOWED = "allowed"
    REFUSED = "refused"


class PastStart(StrEnum):
    """Q9: is a StartTime in the past accepted on Create (and on an Update that changes StartTime)?"""

    ACCEPTED = "accepted"
    REFUSED = "refused"  # older than ``past_start_tolerance_s`` is InvalidParam


class Failure(StrEnum):
    """Section 4 / Q1: how a failing relay looks (the default of an injected failure without a mode)."""

    DISABLE = "disable"  # the task turns 停用 and a ``fail`` callback is sent
    STAY_CALLBACK = "stay-callback"  # stays 生效中, not relaying, with a failure callback
    STAY_SILENT = "stay-silent"  # stays 生效中, not relaying, no callback at all


class RelaunchFrom(StrEnum):
    """Q1: which status RelaunchPullToPushTask accepts (the only text, a model comment, says 停用)."""

    ACTIVE = "active"  # 生效中 only
    DISABLED = "disabled"  # 停用 only
    ANY = "any"  # 生效中 or 停用


class NotFound(StrEnum):
    """Q1: the error code for an unknown or expired TaskId."""

    RESOURCE_NOT_FOUND = "ResourceNotFound"  # HTTP 404
    TASK_NOT_EXIST = "InvalidParameter.TaskNotExist"  # Tencent's code; HTTP 400
    INVALID_PARAM = "InvalidParam"  # a generic parameter error; HTTP 400


class CallbackSchema(StrEnum):
    """Q11: the body POSTed to a task's CallbackURL."""

    RELAYD = "relayd"  # the emulator's guess (docs/emulator.md)
    ALIBABA = "alibaba"  # TaskStatus 0/1/2/3/-1 with PullStreamFailed / PushStreamFailed; 2 = abnormal, recovering
    TENCENT = "tencent"  # event_type 314 with TaskStart / TaskExit / TaskAlarm
    NONE = "none"  # no relay callbacks at all


class ListTime(StrEnum):
    """Q6: the time zone of StartTime/EndTime in list results (Volcengine sample ``+08:00``, BytePlus ``Z``)."""

    CST = "+08:00"
    UTC = "Z"


class TitleLimit(StrEnum):
    """Section 10: Title length (Volcengine 20 characters; BytePlus MediaLive documents 10)."""

    VOLCENGINE = "20"
    BYTEPLUS = "10"

    @property
    def chars(self) -> int:
        return int(self.value)


class CreateUpdateQps(StrEnum):
    """Section 10: the rate limit of Create/Update (Volcengine: the 10 QPS write class; BytePlus: 1 QPS each)."""

    WRITE_CLASS = "write"
    ONE = "1"


class Region(StrEnum):
    """Section 10: the signing region the gateway expects (BytePlus MediaLive: ``ap-singapore-1``, inferred)."""

    CN_NORTH_1 = "cn-north-1"
    AP_SINGAPORE_1 = "ap-singapore-1"


@dataclass(frozen=True, slots=True)
class Quirks:
    """One answer to each open question. Defaults are the lenient answers (the ``lenient`` profile)."""

    destination: Destination = Destination.SHARED
    update_running: UpdateRunning = UpdateRunning.ALLOWED
    past_start: PastStart = PastStart.ACCEPTED
    past_start_tolerance_s: float = 5.0
    failure: Failure = Failure.DISABLE
    relaunch_from: RelaunchFrom = RelaunchFrom.ACTIVE
    not_found: NotFound = NotFound.RESOURCE_NOT_FOUND
    callback_schema: CallbackSchema = CallbackSchema.RELAYD
    list_time: ListTime = ListTime.CST
    title_limit: TitleLimit = TitleLimit.VOLCENGINE
    create_update_qps: CreateUpdateQps = CreateUpdateQps.WRITE_CLASS
    region: Region = Region.CN_NORTH_1

    def as_json(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


class Profile(StrEnum):
    LENIENT = "lenient"
    STRICT = "strict"
    BYTEPLUS = "byteplus"


PROFILES: dict[Profile, Quirks] = {
    Profile.LENIENT: Quirks(),
    # The failure callback is Alibaba-shaped (TaskStatus 2 = "recovering") rather than absent: silent failures are
    # a fault of their own (docs/emulator.md), and a strict profile that sends no callback could not test schemas.
    # A past StartTime is refused without slack: a server that checks "StartTime >= now" against its own clock
    # refuses StartTime = int(now) for all but the first instant of each second, so a late task must start ahead.
    Profile.STRICT: Quirks(
        destination=Destination.EXCLUSIVE,
        update_running=UpdateRunning.REFUSED,
        past_start=PastStart.REFUSED,
        past_start_tolerance_s=0.0,
        failure=Failure.STAY_CALLBACK,
        relaunch_from=RelaunchFrom.DISABLED,
        not_found=NotFound.INVALID_PARAM,
        callback_schema=CallbackSchema.ALIBABA,
        list_time=ListTime.UTC,
    ),
    Profile.BYTEPLUS: Quirks(
        list_time=ListTime.UTC,
        title_limit=TitleLimit.BYTEPLUS,
        create_update_qps=CreateUpdateQps.ONE,
        region=Region.AP_SINGAPORE_1,
    ),
}


class QuirkError(ValueError):
    """A bad profile, quirk name or value; the message lists the valid ones."""


def resolve(profile: str | Profile = Profile.LENIENT, overrides: Mapping[str, Any] | None = None) -> Quirks:
    """The profile's quirks with ``overrides`` (name -> value or its string form) applied."""
    base = PROFILES[_profile(profile)]
    return replace(base, overrides or {})


def replace(base: Quirks, overrides: Mapping[str, Any]) -> Quirks:
    """``base`` with the named quirks changed; raises :class:`QuirkError` naming the valid choices."""
    fields = {f.name: f for f in dataclasses.fields(Quirks)}
    changes: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in fields:
            raise QuirkError(f"unknown quirk {name!r}; valid quirks: {', '.join(fields)}")
        changes[name] = _coerce(name, getattr(base, name), value)
    return dataclasses.replace(base, **changes)


def parse_assignment(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` (the CLI's ``--quirk``) as a pair."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise QuirkError(f"--quirk {text!r}: expected NAME=VALUE, e.g. destination=exclusive")
    return name.strip(), value.strip()


def describe() -> dict[str, list[str]]:
    """Every quirk with its valid values (numbers are shown as ``<number>``)."""
    out: dict[str, list[str]] = {}
    for f in dataclasses.fields(Quirks):
        default = getattr(Quirks(), f.name)
        out[f.name] = [m.value for m in type(default)] if isinstance(default, Enum) else ["<number>"]
    return out


def _profile(name: str | Profile) -> Profile:
    try:
        return Profile(name)
    except ValueError:
        raise QuirkError(f"unknown profile {name!r}; valid profiles: {', '.join(p.value for p in Profile)}") from None


def _coerce(name: str, current: Any, value: Any) -> Any:
    if isinstance(current, Enum):
        kind = type(current)
        try:
            return kind(value)
        except ValueError:
            valid = ", ".join(m.value for m in kind)
            raise QuirkError(f"quirk {name}: unknown value {value!r}; valid values: {valid}") from None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise QuirkError(f"quirk {name}: {value!r} is not a number") from None
    if number < 0:
        raise QuirkError(f"quirk {name}: {value!r} must be >= 0")
    return number


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value
