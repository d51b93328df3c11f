"""The operator status API: ``GET /v1/schedules``, ``GET /v1/schedules/{id}``, ``GET /v1/events``.

Shaping is pure (``segment_json``, ``summarise``: records + ``now`` in, JSON-able dicts out) and the handlers are
thin reads of the store's in-memory segments, the daemon view and the event history. Every time is given twice:
RFC3339 UTC (``start``) and unix seconds (``start_unix``). A schedule that the config no longer declares but that
still has segments in the store (its tasks are being removed) is listed with ``"declared": false``. The list also
carries ``config_problems``, ``config_warnings`` and ``held_removals`` (schedules the removal guard keeps running
although the config no longer declares them; ``POST /v1/removals/release`` lets them go).

``GET /v1/schedules?segments=1`` adds every schedule's segments, each with ``warnings`` (``gap_before``,
``overlap``: see ``console.chains``) and ``overlaps`` (the stretches, in unix seconds, it shares with another segment
on its destination). They include the history: deleted segments that ended within ``HISTORY_S`` (a week, the
timeline's widest zoom), so what failed last night and whether it came back stays visible after retention deletes
the tasks. ``segments=brief`` is the console timeline's own read: each segment with only what a bar needs, and each
schedule's line without its current and next segment (the timeline draws them from the segments).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from relayd.alerts.model import Alert
from relayd.ids import ScheduleId, SegmentKey
from relayd.reconcile import Action, ActionKind
from relayd.store import Event, SegmentRecord, SegmentState
from relayd.volc.models import TaskStatus
from relayd.web.console.chains import ChainWarning, overlap_spans, sharing_destinations, warnings
from relayd.web.errors import BadRequest, NotFound
from relayd.web.sharedrender import SharedRenders, encode_each, json_object_with_list
from relayd.web.views import DaemonPlan, DaemonView, NextAction, ScheduleInfo, SegmentNotes, StoreView

MAX_EVENTS = 1000
MAX_IDS = 500
RFC3339_CACHE = 32_768
DEFAULT_EVENTS = 100
_INACTIVE = frozenset({SegmentState.DELETED, SegmentState.REMOVING})
_YES = ("1", "true", "yes")
BRIEF = "brief"
HISTORY_S = 7 * 86400
"""Deleted segments that ended within this long are still drawn on the timeline (bounded: the payload stays small)."""


def rfc3339(ts: float | None) -> str | None:
    """Unix seconds as RFC3339 UTC with a ``Z`` (whole seconds when integral)."""
    return None if ts is None else _rfc3339(ts)


@functools.lru_cache(maxsize=RFC3339_CACHE)
def _rfc3339(ts: float) -> str:
    """Cached: a timeline re-rendered every second formats the same segment boundaries every time (formatting was a
    third of a rendering's CPU)."""
    moment = datetime.fromtimestamp(ts, tz=UTC)
    spec = "seconds" if float(ts).is_integer() else "milliseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def times(name: str, ts: float | None) -> dict[str, Any]:
    """``{name: rfc3339, name_unix: seconds}``."""
    return {name: rfc3339(ts), f"{name}_unix": ts}


def next_action_json(action: NextAction | None, now: float) -> dict[str, Any] | None:
    if action is None:
        return None
    return {"action": action.action, **times("at", action.at), "in_s": round(action.at - now, 3)}


def segment_json(
    seg: SegmentRecord, action: NextAction | None, now: float, notes: SegmentNotes | None = None
) -> dict[str, Any]:
    """One segment as the API shows it."""
    notes = notes or SegmentNotes()
    error = {"message": seg.last_error, "request_id": seg.last_request_id} if seg.last_error else None
    return {
        "key": seg.key,
        "index": seg.index,
        "occurrence": seg.occurrence,
        "title": seg.title,
        "group": seg.group,
        "task_id": seg.task_id,
        "state": seg.state.value,
        "window": {**times("start", seg.start), **times("end", seg.end)},
        "starts_in_s": round(seg.start - now, 3),
        "ends_in_s": round(seg.end - now, 3),
        "attempts": seg.attempts,
        **times("next_attempt_at", seg.next_attempt_at),
        "next_action": next_action_json(action, now),
        "last_error": error,
        **times("healthy_since", seg.healthy_since),
        **times("updated_at", seg.updated_at or None),
        "handoff_gap_s": notes.handoff_gap_s,
        "change_applies": notes.change_applies,
    }


@dataclass(frozen=True, slots=True)
class Position:
    """Where a schedule stands at ``now``: the segment relaying now and the one after it."""

    current: SegmentRecord | None
    next: SegmentRecord | None

    @property
    def handoff_at(self) -> float | None:
        if self.current is not None:
            return float(self.current.end) if self.next is not None else None
        return float(self.next.start) if self.next is not None else None


def position(segments: Iterable[SegmentRecord], now: float) -> Position:
    live = sorted((s for s in segments if s.state not in _INACTIVE), key=lambda s: (s.start, s.index))
    current = next((s for s in reversed(live) if s.start <= now < s.end), None)
    upcoming = next((s for s in live if s.start > now), None)
    return Position(current, upcoming)


def schedule_state(info: ScheduleInfo | None, pos: Position) -> str:
    if info is not None and not info.enabled:
        return "disabled"
    if pos.current is not None:
        return pos.current.state.value
    if pos.next is not None:
        return "waiting"
    if info is None:
        return "removed"
    return "invalid" if info.problems else "idle"


def _last_error(segments: Sequence[SegmentRecord]) -> dict[str, Any] | None:
    failed = [s for s in segments if s.last_error]
    if not failed:
        return None
    latest = max(failed, key=lambda s: s.updated_at)
    return {"message": latest.last_error, "request_id": latest.last_request_id, "segment_key": latest.key}


def summarise(
    sid: ScheduleId,
    info: ScheduleInfo | None,
    segments: Sequence[SegmentRecord],
    view: DaemonView,
    now: float,
    *,
    brief: bool = False,
) -> dict[str, Any]:
    """One schedule's line in the status: its state, current and next segment, hand-off time, failures (``brief``:
    without the current and next segment, which the timeline draws from the segments it gets)."""
    pos = position(segments, now)
    handoff = pos.handoff_at
    around = (
        {}
        if brief
        else {"current": _segment_or_none(pos.current, view, now), "next": _segment_or_none(pos.next, view, now)}
    )
    return {
        "id": sid,
        "declared": info is not None,
        "title": info.title if info else "",
        "enabled": info.enabled if info else False,
        "source": info.source if info else None,
        "line": info.line if info else None,
        "group": info.group if info else None,
        "problems": list(info.problems) if info else [],
        "state": schedule_state(info, pos),
        "segments_total": len(segments),
        **around,
        **times("handoff_at", handoff),
        "handoff_in_s": round(handoff - now, 3) if handoff is not None else None,
        "failed_segments": sum(1 for s in segments if s.state is SegmentState.FAILED),
        "retrying_segments": sum(1 for s in segments if s.state is SegmentState.RETRYING),
        "last_error": _last_error(segments),
        "health": view.stream_health(sid),
    }


def _segment_or_none(seg: SegmentRecord | None, view: DaemonView, now: float) -> dict[str, Any] | None:
    return segment_json(seg, view.next_action(seg.key), now, view.segment_notes(seg.key)) if seg is not None else None


def event_json(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        **times("ts", event.ts),
        "kind": event.kind,
        "schedule_id": event.schedule_id,
        "segment_key": event.segment_key,
        "task_id": event.task_id,
        "data": event.data,
        "raw": event.raw,
    }


def group_by_schedule(segments: Iterable[SegmentRecord]) -> dict[ScheduleId, list[SegmentRecord]]:
    grouped: dict[ScheduleId, list[SegmentRecord]] = defaultdict(list)
    for seg in segments:
        grouped[seg.schedule_id].append(seg)
    return grouped


def int_param(query: Mapping[str, str], name: str, default: int | None, *, low: int, high: int) -> int | None:
    """An integer query parameter within [low, high], or BadRequest."""
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError as e:
        raise BadRequest(f"{name} must be an integer") from e
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return value


def platform_status_json(status: TaskStatus | None) -> dict[str, Any]:
    """The platform's status of a task as the daemon last saw it: a name, and the platform's own word."""
    if status is None:
        return {"platform_status": None, "platform_status_label": None}
    return {"platform_status": status.name.lower(), "platform_status_label": status.value}


def action_json(action: Action) -> dict[str, Any]:
    """One action the daemon would take (``relayd plan --live`` prints the same rows)."""
    record = action.record
    task_id = action.task.task_id if action.task is not None else record.task_id
    return {
        "action": action.kind.value,
        "segment": record.key,
        "title": record.title,
        "task_id": task_id,
        "reason": action.reason.value,
    }


def plan_json(daemon: DaemonPlan | None) -> dict[str, Any] | None:
    """The daemon's own ``plan --live`` for one schedule: decided over what it has observed, no platform call."""
    if daemon is None:
        return None
    actions = [action_json(a) for a in daemon.plan.actions if a.kind != ActionKind.SAVE]
    return {
        "source": "daemon",
        "actions": actions,
        **times("listed_at", daemon.listed_at),
        **times("wake_at", daemon.plan.wake_at),
    }


def _wanted_ids(request: web.Request) -> frozenset[ScheduleId] | None:
    """``?id=a&id=b``: only these schedules (the console re-reading what changed); None: every schedule."""
    ids = request.query.getall("id", [])
    if len(ids) > MAX_IDS:
        raise BadRequest(f"at most {MAX_IDS} id parameters; leave them out to list every schedule")
    return frozenset(ScheduleId(i) for i in ids) if ids else None


def segment_brief(seg: SegmentRecord, flags: Flags) -> dict[str, Any]:
    """A segment as the timeline draws it: a fifth of :func:`segment_json`'s size and cost (what a bar needs)."""
    return {
        "key": seg.key,
        "index": seg.index,
        "occurrence": seg.occurrence,
        "state": seg.state.value,
        "task_id": seg.task_id,
        "window": {"start_unix": seg.start, "end_unix": seg.end},
        **_marks_json(seg.key, flags),
    }


def _marks_json(key: SegmentKey, flags: Flags) -> dict[str, Any]:
    """A segment's ``warnings`` and ``overlaps``, as both shapes of the timeline's read carry them."""
    return {
        "warnings": [w.value for w in flags.warnings.get(key, [])],
        "overlaps": [{"start_unix": a, "end_unix": b} for a, b in flags.spans.get(key, [])],
    }


def _segments_shape(request: web.Request) -> str | None:
    """``segments=1`` (each segment as :func:`segment_json`), ``segments=brief`` (as :func:`segment_brief`), or None."""
    value = request.query.get("segments", "")
    return "full" if value in _YES else BRIEF if value == BRIEF else None


def _marks(segments: Sequence[SegmentRecord]) -> Flags:
    spans = overlap_spans(segments)
    return Flags(warnings(segments, spans), spans)


def _live(grouped: Mapping[ScheduleId, list[SegmentRecord]]) -> dict[ScheduleId, list[SegmentRecord]]:
    """The same segments without the deleted ones (schedules left with none dropped): one read serves both."""
    kept = {sid: [s for s in segs if s.state is not SegmentState.DELETED] for sid, segs in grouped.items()}
    return {sid: segs for sid, segs in kept.items() if segs}


def alert_json(alert: Alert, now: float) -> dict[str, Any]:
    c = alert.condition
    return {
        "kind": c.kind.value,
        "subject": c.subject,
        "severity": c.severity.value,
        "message": c.message,
        "links": list(c.links),
        **times("opened_at", alert.opened_at),
        "open_for_s": round(max(0.0, now - alert.opened_at), 3),
    }


@dataclass(frozen=True, slots=True)
class Flags:
    """What the timeline marks on live segments: gap/overlap warnings, and the overlapping stretches themselves."""

    warnings: dict[SegmentKey, list[ChainWarning]]
    spans: dict[SegmentKey, list[tuple[int, int]]]


class StatusApi:
    """The ``/v1`` read handlers over a store and a daemon view."""

    def __init__(
        self, *, store: StoreView, view: DaemonView, alerts: Callable[[], Sequence[Alert]] = lambda: ()
    ) -> None:
        self._store = store
        self._view = view
        self._alerts = alerts
        self._renders = SharedRenders()
        self._flag_cache: tuple[int, Flags] | None = None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/schedules", self.list_schedules),
            web.get("/v1/schedules/{id}", self.get_schedule),
            web.get("/v1/events", self.list_events),
        ]

    async def list_schedules(self, request: web.Request) -> web.Response:
        if _segments_shape(request) is None:
            body = await self._render_list(request)
        else:
            # Open consoles re-read this on the same "changed" tick: one rendering per segment change and second,
            # shared by every reader (callbacks, which only add events, do not make a new one).
            key = (self._store.journal.seq, int(self._view.now()), request.query_string)
            body = await self._renders.get(key, functools.partial(self._render_list, request))
        return web.Response(body=body, content_type="application/json")

    async def _render_list(self, request: web.Request) -> bytes:
        """The list as JSON, shaped and encoded schedule by schedule with the loop given back between slices."""
        now = self._view.now()
        infos = {info.id: info for info in self._view.schedules()}
        wanted = _wanted_ids(request)
        shape_of = _segments_shape(request)
        timeline = shape_of is not None
        brief = shape_of == BRIEF
        drawn = self._grouped(wanted, history_since=now - HISTORY_S) if timeline else {}
        grouped = _live(drawn) if timeline else self._grouped(wanted)
        known = set(infos) | set(grouped)
        ids = sorted(known if wanted is None else known & wanted)
        flags = self._flags(drawn if wanted is not None else None) if timeline else None

        def shape(sid: ScheduleId) -> dict[str, Any]:
            item = summarise(sid, infos.get(sid), grouped.get(sid, []), self._view, now, brief=brief)
            if flags is not None:
                ordered = sorted(drawn.get(sid, []), key=lambda s: (s.start, s.index))
                item["segments"] = [
                    segment_brief(s, flags) if brief else self._segment_with_flags(s, flags, now) for s in ordered
                ]
            return item

        items = await encode_each(ids, shape)
        rest = {
            **times("now", now),
            "config_problems": list(self._view.config_problems()),
            "alerts": [alert_json(a, now) for a in self._alerts()],
            "config_warnings": list(self._view.config_warnings()),
            "held_removals": list(self._view.held_removals()),
            "conflicts": list(self._view.conflicts()),
        }
        return json_object_with_list("schedules", items, rest)

    def _grouped(
        self, wanted: frozenset[ScheduleId] | None, *, history_since: float | None = None
    ) -> dict[ScheduleId, list[SegmentRecord]]:
        """Live segments by schedule: every schedule's, or only the wanted ones' (each an indexed read); with
        ``history_since``, also the deleted ones that ended after it."""
        history = history_since is not None

        def keep(seg: SegmentRecord) -> bool:
            return seg.state is not SegmentState.DELETED or (history_since is not None and seg.end >= history_since)

        if wanted is None:
            return group_by_schedule(s for s in self._store.segments(include_deleted=history) if keep(s))
        found = {sid: [s for s in self._store.segments(sid, include_deleted=history) if keep(s)] for sid in wanted}
        return {sid: segs for sid, segs in found.items() if segs}

    def _flags(self, asked: Mapping[ScheduleId, list[SegmentRecord]] | None = None) -> Flags:
        """Gaps and overlaps over every live segment (an overlap may involve a schedule not asked for), computed
        once per change of the store's segments however many consoles read. For a few ``asked`` schedules, over
        the segments on their destinations only, unless the whole answer is at hand anyway."""
        seq = self._store.journal.seq
        if self._flag_cache is not None and self._flag_cache[0] == seq:
            return self._flag_cache[1]
        live = self._store.segments()
        if asked is not None:
            return _marks(sharing_destinations((s for segs in asked.values() for s in segs), live))
        self._flag_cache = (seq, _marks(live))
        return self._flag_cache[1]

    def _segment_with_flags(self, seg: SegmentRecord, flags: Flags, now: float) -> dict[str, Any]:
        shown = segment_json(seg, self._view.next_action(seg.key), now, self._view.segment_notes(seg.key))
        return {**shown, **_marks_json(seg.key, flags)}

    async def get_schedule(self, request: web.Request) -> web.Response:
        now = self._view.now()
        sid = ScheduleId(request.match_info["id"])
        info = next((i for i in self._view.schedules() if i.id == sid), None)
        include_deleted = request.query.get("all", "") in _YES
        segments = sorted(self._store.segments(sid, include_deleted=include_deleted), key=lambda s: (s.start, s.index))
        if info is None and not segments:
            raise NotFound(f"no schedule {sid!r}")
        detail = [self._segment_detail(s, now) for s in segments]
        body = {
            **times("now", now),
            "schedule": summarise(sid, info, segments, self._view, now),
            "segments": detail,
            "plan_live": plan_json(self._view.plan_now(sid)),
        }
        return web.json_response(body)

    def _segment_detail(self, seg: SegmentRecord, now: float) -> dict[str, Any]:
        status = self._view.platform_status(seg.key)
        notes = self._view.segment_notes(seg.key)
        return {**segment_json(seg, self._view.next_action(seg.key), now, notes), **platform_status_json(status)}

    async def list_events(self, request: web.Request) -> web.Response:
        q = request.query
        limit = int_param(q, "limit", DEFAULT_EVENTS, low=1, high=MAX_EVENTS)
        before = int_param(q, "before", None, low=1, high=2**62)
        events = await self._store.events(
            schedule_id=ScheduleId(q["schedule"]) if q.get("schedule") else None,
            segment_key=SegmentKey(q["segment"]) if q.get("segment") else None,
            kind=q.get("kind") or None,
            limit=limit or DEFAULT_EVENTS,
            before_id=before,
        )
        items = [event_json(e) for e in events]
        next_before = items[-1]["id"] if len(items) == limit else None
        return web.json_response({"events": items, "next_before": next_before})
