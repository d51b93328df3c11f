"""Tolerant parsing of the platform's relay status callbacks into ``CallbackNotice`` — pure, no I/O, no clock.

The JSON Volcengine POSTs to a relay task's CallbackURL is undocumented (reference §6, Q11), so nothing here
insists on a schema:

* Keys are matched case-, underscore- and dash-insensitively: ``TaskId``, ``task_id``, ``taskId`` are one key.
* A BytePlus-style wrapper ``{"code": 0, "message": "ok", "data": {...}}`` is unwrapped; fields found at the top
  level win over those in ``data`` only for ``sign``/``t``, which may sit on either.
* The event comes from an explicit event name (``EventType``, ``Event``, ``Type``, ``Action``) first, then from the
  task status: the Chinese ``Status`` string (停用/未开始/生效中/已结束), an English status word, or the legacy
  ``TaskStatus`` integer (0–3). Anything unrecognised is ``UNKNOWN`` — still recorded, still a reconcile hint.
* Neighbours' schemas are read for what they mean (reference §10, Q11): a failure reason (Alibaba's
  ``Reason: PullStreamFailed``, Tencent's ``alarm_type``) makes the notice a failure whatever the status says —
  Alibaba's ``TaskStatus: 2`` with a reason is "abnormal, recovering", never a start; Alibaba's ``TaskStatus: -1``
  (exited) is a failure; Tencent's ``callback_event`` ``TaskStart`` / ``TaskAlarm`` / ``TaskExit`` is a start / a
  failure / a stop. A stop is a failure signal too: the reconciler confirms it with a listing before acting.
* Time comes from ``Time``/``Timestamp``/``EventTime``/``ts`` as unix seconds, unix milliseconds (values above
  1e11) or an RFC3339 string.

A notice never decides anything by itself: it is a hint that makes the reconciler look at the platform.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from relayd.ids import TaskId


class CallbackEvent(enum.StrEnum):
    START = "start"
    PENDING = "pending"
    END = "end"
    STOP = "stop"
    FAIL = "fail"
    RECOVER = "recover"
    UNKNOWN = "unknown"


_WORDS: dict[CallbackEvent, tuple[str, ...]] = {
    CallbackEvent.START: ("start", "started", "begin", "running", "active", "生效中", "开始", "taskstart"),
    CallbackEvent.PENDING: ("pending", "notstarted", "waiting", "scheduled", "未开始"),
    CallbackEvent.END: ("end", "ended", "finish", "finished", "complete", "completed", "done", "已结束", "结束"),
    CallbackEvent.STOP: ("stop", "stopped", "disable", "disabled", "pause", "paused", "停用", "停止", "taskexit"),
    CallbackEvent.FAIL: (
        "fail",
        "failed",
        "failure",
        "error",
        "interrupt",
        "interrupted",
        "break",
        "broken",
        "abnormal",
        "失败",
        "中断",
        "taskalarm",
    ),
    CallbackEvent.RECOVER: ("recover", "recovered", "resume", "resumed", "restore", "restored", "恢复"),
}
_WORD_TO_EVENT = {word: event for event, words in _WORDS.items() for word in words}
_TASK_STATUS_INT = {0: CallbackEvent.STOP, 1: CallbackEvent.PENDING, 2: CallbackEvent.START, 3: CallbackEvent.END}

_TASK_ID_KEYS = ("taskid", "id")
_EVENT_KEYS = ("eventtype", "event", "callbackevent", "type", "action", "eventname")
_REASON_KEYS = ("reason", "alarmtype", "errorcode", "errcode", "failreason")
_FAILURE_MARKS = ("fail", "unstable", "error", "abnormal", "endearly", "interrupt", "失败", "异常", "中断")
_EXITED = -1  # Alibaba's TaskStatus for a relay that exited on a failure
_STATUS_KEYS = ("status", "taskstatus", "state")
_TIME_KEYS = ("time", "timestamp", "eventtime", "ts", "sendtime")
_EVENT_ID_KEYS = ("eventid", "messageid", "msgid")
_MS_THRESHOLD = 1e11


@dataclass(frozen=True, slots=True)
class CallbackNotice:
    """What relayd understood from one callback body; ``raw`` is the decoded JSON as received."""

    task_id: TaskId | None
    event: CallbackEvent
    status: str | None
    time: float | None
    event_id: str | None
    raw: Mapping[str, Any] = field(repr=False)
    unknown_task: bool = False
    """Set by the receiver when ``task_id`` is no task relayd knows, though the URL is the segment's own: a task
    with the segment's Title may exist that relayd has not seen (a create whose answer was lost, a task made by
    hand). The reconciler lists the Title afresh instead of taking the event for the segment's own task."""


@functools.lru_cache(maxsize=1024)  # the same few spellings arrive over and over; bounded against junk keys
def _norm(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


def normalise_keys(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Keys folded to lower case without ``_``/``-``; the first spelling seen wins."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        out.setdefault(_norm(str(key)), value)
    return out


def payload_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """The event fields: ``data`` of a ``{"code":..,"data":{..}}`` wrapper, else the body, keys normalised."""
    top = normalise_keys(body)
    data = top.get("data")
    if isinstance(data, Mapping) and ("code" in top or "message" in top):
        return normalise_keys(data)
    return top


def _first(fields: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = fields.get(key)
        if value is not None and value != "":
            return value
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, str | int) and not isinstance(value, bool):
        text = str(value).strip()
        return text[:200] or None
    return None


def event_from_word(value: Any) -> CallbackEvent | None:
    """An event or status word (English, any case and punctuation; or the platform's Chinese status)."""
    if isinstance(value, str):
        return _WORD_TO_EVENT.get(_norm(value).replace(" ", ""))
    return None


def event_from_status(value: Any) -> CallbackEvent | None:
    """A task status: a word as above, or the legacy ``TaskStatus`` integer 0–3 (also as a digit string)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        return _TASK_STATUS_INT.get(value)
    return event_from_word(value)


def _failure_reason(fields: Mapping[str, Any]) -> bool:
    """A reason or alarm naming a failure: the relay is failing, whatever status or event word comes with it."""
    for key in _REASON_KEYS:
        value = fields.get(key)
        if isinstance(value, str) and any(mark in _norm(value) for mark in _FAILURE_MARKS):
            return True
    return False


def _event(fields: Mapping[str, Any]) -> CallbackEvent:
    if _failure_reason(fields) or _status_int(fields) == _EXITED:
        return CallbackEvent.FAIL
    # An explicit event name says what happened; a status only says where the task is now. A numeric "Type" is
    # the task's live/VOD type, not an event, so integers count only under the status keys.
    for key in _EVENT_KEYS:
        value = fields.get(key)
        if value is not None and (event := event_from_word(value)) is not None:
            return event
    for key in _STATUS_KEYS:
        value = fields.get(key)
        if value is not None and (event := event_from_status(value)) is not None:
            return event
    return CallbackEvent.UNKNOWN


def _status_int(fields: Mapping[str, Any]) -> int | None:
    value = fields.get("taskstatus")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_time(value: Any) -> float | None:
    """Unix seconds from seconds, milliseconds, a digit string or an RFC3339 string; None if unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        stripped = value.strip()
        try:
            value = float(stripped)
        except ValueError:
            return _rfc3339(stripped)
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an integer beyond float range is no time either
            return None
        if not math.isfinite(seconds):
            return None
        return seconds / 1000.0 if seconds > _MS_THRESHOLD else seconds
    return None


def _rfc3339(text: str) -> float | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None


def parse_notice(body: Mapping[str, Any]) -> CallbackNotice:
    """A ``CallbackNotice`` from any JSON object; never raises on odd content."""
    fields = payload_of(body)
    task_id = _text(_first(fields, _TASK_ID_KEYS))
    return CallbackNotice(
        task_id=TaskId(task_id) if task_id else None,
        event=_event(fields),
        status=_text(_first(fields, _STATUS_KEYS)),
        time=parse_time(_first(fields, _TIME_KEYS)),
        event_id=_text(_first(fields, _EVENT_ID_KEYS)),
        raw=body,
    )


def sign_fields(body: Mapping[str, Any]) -> tuple[str, Any] | None:
    """The ``(sign, t)`` pair if the body carries a non-empty sign, at the top level or inside ``data``.

    BytePlus sends ``sign`` empty and ``t`` 0 when callback auth is off; that counts as "not carried".
    """
    top = normalise_keys(body)
    data = top.get("data")
    for fields in (top, normalise_keys(data) if isinstance(data, Mapping) else {}):
        sign = fields.get("sign")
        if isinstance(sign, str) and sign:
            return sign, fields.get("t")
    return None


def dedupe_key(key: str, notice: CallbackNotice, raw: bytes) -> str:
    """Stable identity of one delivery: the platform's event id if it sends one, else a hash of the body."""
    ident = notice.event_id or hashlib.sha256(raw).hexdigest()
    return f"cb:{key}:{ident}"
