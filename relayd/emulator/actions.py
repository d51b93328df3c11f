"""The API actions: type binding, the platform's field rules, and the state change each action makes.

Each handler takes the emulator :class:`State`, the request parameters (JSON body, or the query for the GET
list) and ``now``, and returns an :class:`Outcome` (the Result, if the action has one, and the status events it
caused). Handlers do no I/O and read no clock, so they are unit-testable with plain dicts.

Binding comes first, like the platform's Go gateway binding JSON into typed structs: a value of the wrong JSON
type answers ``InvalidParam.BindError``. Then :mod:`relayd.volc.rules` (the same checks the client runs) with the
emulator's own window cap and clock; every broken rule is named in one ``InvalidParam`` message.

The quirks that change what an action accepts (:mod:`relayd.emulator.quirks`) are read here, each in one helper:
``_check_title`` (title_limit), ``_check_past_start`` (past_start), ``_check_destination`` (destination),
``_check_update_running`` (update_running), ``_find`` (not_found), ``_RELAUNCH_FROM`` (relaunch_from) and
``task_item`` (list_time).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from relayd.emulator import envelope
from relayd.emulator.destinations import destination_key, dst_addr
from relayd.emulator.errors import ApiError
from relayd.emulator.groups import DEFAULT_GROUP, Groups
from relayd.emulator.quirks import Destination, ListTime, NotFound, PastStart, Quirks, RelaunchFrom, UpdateRunning
from relayd.emulator.tasks import Event, Status, Task, Tasks, WrongState
from relayd.volc import rules

WRITE, LIST = "write", "list"


class State:
    """Everything the actions act on."""

    def __init__(self, *, max_task_seconds: int, rng: random.Random, quirks: Quirks | None = None) -> None:
        self.tasks = Tasks()
        self.groups = Groups()
        self.max_task_seconds = max_task_seconds
        self.rng = rng
        self.quirks = quirks or Quirks()


@dataclass
class Outcome:
    result: dict[str, Any] | None = None
    events: list[Event] = field(default_factory=list)


Handler = Callable[[State, dict[str, Any], float], Outcome]


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    methods: frozenset[str]
    kind: str
    handler: Handler

    @property
    def mutates(self) -> bool:
        """A write request (journalled): every action but the lists."""
        return not self.name.startswith("List")


# --- binding ------------------------------------------------------------------------------------------------

_INT, _NUM, _STR, _LIST, _OBJ = "integer", "number", "string", "array", "object"
_TASK_TYPES = {
    **dict.fromkeys(
        ("StartTime", "EndTime", "Type", "CycleMode", "PlayTimes", "PreDownload", "ContinueStrategy"), _INT
    ),
    **dict.fromkeys(("Title", "CallbackURL", "SrcAddr", "DstAddr", "Domain", "App", "Stream"), _STR),
    **dict.fromkeys(("GroupName", "TaskId"), _STR),
    **dict.fromkeys(("SrcAddrS", "OffsetS", "VodSrcAddrs"), _LIST),
    "Watermark": _OBJ,
    "Offset": _NUM,
}
_REF_TYPES = {"TaskId": _STR, "GroupName": _STR}
_LIST_TYPES = {"Page": _INT, "Size": _INT, "Title": _STR, "GroupName": _STR, "GroupNames": _LIST}
_GROUP_TYPES = {
    "Name": _STR,
    "ProjectName": _STR,
    "Tags": _LIST,
    "PageNum": _INT,
    "PageSize": _INT,
    "StatusList": _LIST,
}


def _fits(value: Any, kind: str) -> bool:
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == _NUM:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, {_STR: str, _LIST: list, _OBJ: dict}[kind])


def bind(params: Mapping[str, Any], types: Mapping[str, str]) -> None:
    """Raise BindError for the first known field whose JSON type is wrong (null counts as absent)."""
    for name, kind in types.items():
        value = params.get(name)
        if value is not None and not _fits(value, kind):
            raise ApiError.bind(f"{name}: expected {kind}, got {type(value).__name__}")


def query_params(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The GET list's query as typed parameters (Page/Size integers, the rest strings)."""
    params: dict[str, Any] = {}
    for key, value in pairs:
        if key in ("Page", "Size"):
            try:
                params[key] = int(value)
            except ValueError as e:
                raise ApiError.bind(f"{key}: expected integer, got {value!r}") from e
        elif key not in ("Action", "Version"):
            params[key] = value
    return params


def _check(problems: list[rules.Problem]) -> None:
    if problems:
        raise ApiError.invalid(problems)


# --- tasks --------------------------------------------------------------------------------------------------


def _task_fields(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in ("TaskId", "GroupName") and v is not None}


# --- quirk rules ---------------------------------------------------------------------------------------------


def _check_title(state: State, params: Mapping[str, Any]) -> None:
    """title_limit: BytePlus MediaLive documents Titles of at most 10 characters."""
    limit = state.quirks.title_limit.chars
    title = str(params.get("Title") or "")
    if len(title) > limit:
        raise ApiError("InvalidParam", f"Title: at most {limit} characters (got {len(title)})")


def _check_past_start(state: State, params: Mapping[str, Any], now: float, current: Task | None = None) -> None:
    """past_start: refuse a StartTime older than the tolerance (on Update only when StartTime changes)."""
    if state.quirks.past_start is PastStart.ACCEPTED:
        return
    start = int(params["StartTime"])
    if current is not None and start == current.start:
        return
    if start < now - state.quirks.past_start_tolerance_s:
        raise ApiError("InvalidParam", f"StartTime: {start} is in the past (now {int(now)}); it must not be earlier")


def _check_destination(state: State, params: Mapping[str, Any], now: float, current: Task | None = None) -> None:
    """destination: refuse a window that overlaps (or touches) another non-ended task on the same DstAddr."""
    mode = state.quirks.destination
    if mode is Destination.SHARED:
        return
    window = (int(params["StartTime"]), int(params["EndTime"]))
    for other in state.tasks.on_destination(destination_key(dst_addr(params))):
        if other is current or other.deleted_at is not None or other.phase is Status.ENDED or other.end <= now:
            continue
        if _collide(window, other, mode):
            raise ApiError(
                "InvalidParam",
                f"DstAddr: the destination is already used by task {other.task_id} "
                f"from {other.start} to {other.end}; tasks pushing one destination may not overlap",
            )


def _collide(window: tuple[int, int], other: Task, mode: Destination) -> bool:
    """Half-open windows overlap; under EXCLUSIVE, windows that merely touch (end == start) collide too."""
    start, end = window
    if start < other.end and other.start < end:
        return True
    return mode is Destination.EXCLUSIVE and (start == other.end or end == other.start)


def _check_update_running(state: State, task: Task) -> None:
    """update_running: refuse UpdatePullToPushTask while the task is 生效中."""
    if state.quirks.update_running is UpdateRunning.REFUSED and task.phase is Status.ACTIVE:
        raise ApiError("InvalidParam", f"TaskId: task {task.task_id} is 生效中 (running) and cannot be updated")


_NOT_FOUND_STATUS = {NotFound.RESOURCE_NOT_FOUND: 404, NotFound.TASK_NOT_EXIST: 400, NotFound.INVALID_PARAM: 400}
_RELAUNCH_FROM = {
    RelaunchFrom.ACTIVE: (Status.ACTIVE,),
    RelaunchFrom.DISABLED: (Status.DISABLED,),
    RelaunchFrom.ANY: (Status.ACTIVE, Status.DISABLED),
}


# --- task actions -------------------------------------------------------------------------------------------


def create_task(state: State, params: dict[str, Any], now: float) -> Outcome:
    bind(params, _TASK_TYPES)
    _check(rules.check_task(params, now=int(now), max_task_seconds=state.max_task_seconds))
    _check_title(state, params)
    _check_past_start(state, params, now)
    _check_destination(state, params, now)
    group = params.get("GroupName") or DEFAULT_GROUP
    state.groups.require(group)
    new_id = envelope.task_id(state.rng)
    events = state.tasks.create(new_id, _task_fields(params), group, now)
    return Outcome({"TaskId": new_id}, events)


def _find(state: State, params: Mapping[str, Any]) -> Task:
    bind(params, _REF_TYPES)
    _check(rules.check_task_ref(params))
    task = state.tasks.get(str(params["TaskId"]))
    if task is None:
        code = state.quirks.not_found
        message = f"TaskId: task {params['TaskId']} does not exist"
        raise ApiError(code.value, message, http_status=_NOT_FOUND_STATUS[code])
    group = params.get("GroupName")
    if group and group != task.group:
        raise ApiError("InvalidParam", f"GroupName: task {task.task_id} is in group {task.group!r}, not {group!r}")
    return task


def update_task(state: State, params: dict[str, Any], now: float) -> Outcome:
    bind(params, _TASK_TYPES)
    _check(rules.check_task(params, now=int(now), max_task_seconds=state.max_task_seconds, update=True))
    _check_title(state, params)
    task = _find(state, params)
    _check_update_running(state, task)
    _check_past_start(state, params, now, task)
    _check_destination(state, params, now, task)
    return Outcome(None, _state_change(lambda: state.tasks.update(task, _task_fields(params), now)))


def _state_change(change: Callable[[], list[Event]]) -> list[Event]:
    try:
        return change()
    except WrongState as e:
        raise ApiError("InvalidParam", f"TaskId: {e}") from e


def stop_task(state: State, params: dict[str, Any], now: float) -> Outcome:
    task = _find(state, params)
    return Outcome(None, _state_change(lambda: state.tasks.stop(task, now)))


def continue_task(state: State, params: dict[str, Any], now: float) -> Outcome:
    task = _find(state, params)
    return Outcome(None, _state_change(lambda: state.tasks.enable(task, now)))


def relaunch_task(state: State, params: dict[str, Any], now: float) -> Outcome:
    task = _find(state, params)
    allowed = _RELAUNCH_FROM[state.quirks.relaunch_from]
    return Outcome(None, _state_change(lambda: state.tasks.relaunch(task, now, allowed)))


def delete_task(state: State, params: dict[str, Any], now: float) -> Outcome:
    task = _find(state, params)
    return Outcome(None, state.tasks.delete(task, now))


# --- task lists ---------------------------------------------------------------------------------------------


def task_item(task: Task, list_time: ListTime = ListTime.CST) -> dict[str, Any]:
    """One list entry: the stored fields with zero values for absent ones, RFC3339 times, both status forms."""
    f = task.fields
    third_party = bool(f.get("DstAddr"))
    utc = list_time is ListTime.UTC
    return {
        "TaskId": task.task_id,
        "Title": task.title,
        "StartTime": envelope.rfc3339(task.start, utc=utc),
        "EndTime": envelope.rfc3339(task.end, utc=utc),
        "CallbackURL": f.get("CallbackURL", ""),
        "Type": f.get("Type", 0),
        "CycleMode": f.get("CycleMode", 0),
        "PlayTimes": f.get("PlayTimes", 0),
        "DstAddr": dst_addr(f),
        "DstAddrType": 2 if third_party else 1,
        "SrcAddr": f.get("SrcAddr", ""),
        "SrcAddrS": f.get("SrcAddrS", []),
        "OffsetS": f.get("OffsetS", []),
        "VodSrcAddrs": f.get("VodSrcAddrs", []),
        "PreDownload": f.get("PreDownload", 0),
        "ContinueStrategy": f.get("ContinueStrategy", 0),
        "Watermark": f.get("Watermark"),
        "Status": task.phase.label,
        "TaskStatus": int(task.phase),
        "GroupName": task.group,
    }


def _listing(state: State, params: Mapping[str, Any], groups: list[str], now: float) -> Outcome:
    _check(rules.check_task_list(params))
    page, size = int(params.get("Page") or 1), int(params.get("Size") or 20)
    title = str(params.get("Title") or "").lower()
    live = state.tasks.live.values()
    if title or groups:
        wanted = set(groups)
        matches = [t for t in live if (not wanted or t.group in wanted) and title in t.title.lower()]
        total, chosen = len(matches), matches[(page - 1) * size : page * size]
    else:
        total, chosen = len(live), list(islice(live, (page - 1) * size, page * size))
    pagination = {"PageCur": page, "PageSize": size, "PageTotal": math.ceil(total / size), "TotalCount": total}
    items = [task_item(t, state.quirks.list_time) for t in chosen]
    return Outcome({"List": items, "Pagination": pagination})


def list_tasks(state: State, params: dict[str, Any], now: float) -> Outcome:
    bind(params, _LIST_TYPES)
    group = params.get("GroupName")
    return _listing(state, params, [group] if group else [], now)


def list_tasks_v2(state: State, params: dict[str, Any], now: float) -> Outcome:
    bind(params, _LIST_TYPES)
    groups = params.get("GroupNames") or []
    if not all(isinstance(g, str) for g in groups):
        raise ApiError.bind("GroupNames: expected an array of strings")
    return _listing(state, params, groups, now)


# --- groups -------------------------------------------------------------------------------------------------


def create_group(state: State, params: dict[str, Any], now: float) -> Outcome:
    bind(params, _GROUP_TYPES)
    _check(rules.check_group_create(params))
    state.groups.create(params["Name"], params["ProjectName"], params.get("Tags") or [])
    return Outcome()


def update_group(state: State, params: dict[str, Any], now: float) -> Outcome:
    bind(params, _GROUP_TYPES)
    _check(rules.check_group_update(params))
    state.groups.update(params["Name"], params.get("Tags"))
    return Outcome()


def delete_group(state: State, params: dict[str, Any], now: float) -> Outcome:
    bind(params, _GROUP_TYPES)
    _check(rules.check_group_name(params.get("Name")))
    name = params["Name"]
    state.groups.delete(name, sum(1 for t in state.tasks.live.values() if t.group == name))
    return Outcome()


def list_groups(state: State, params: dict[str, Any], now: float) -> Outcome:
    bind(params, _GROUP_TYPES)
    _check(rules.check_group_list(params))
    groups = state.groups.listing(params.get("StatusList") or [])
    page, size = params["PageNum"], params["PageSize"]
    chosen = groups[(page - 1) * size : page * size]
    return Outcome({"List": [g.as_item() for g in chosen], "Total": len(groups)})


# --- the table ----------------------------------------------------------------------------------------------

_POST = frozenset({"POST"})
ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("CreatePullToPushTask", _POST, WRITE, create_task),
        Action("UpdatePullToPushTask", _POST, WRITE, update_task),
        Action("DeletePullToPushTask", _POST, WRITE, delete_task),
        Action("StopPullToPushTask", _POST, WRITE, stop_task),
        Action("ContinuePullToPushTask", _POST, WRITE, continue_task),
        Action("RestartPullToPushTask", _POST, WRITE, continue_task),
        Action("RelaunchPullToPushTask", _POST, WRITE, relaunch_task),
        # GET + query per the 2023-01-01 SDKs; POST + JSON like the legacy SDKs is accepted too (reference Q3).
        Action("ListPullToPushTask", frozenset({"GET", "POST"}), LIST, list_tasks),
        Action("ListPullToPushTaskV2", _POST, LIST, list_tasks_v2),
        Action("CreatePullToPushGroup", _POST, WRITE, create_group),
        Action("UpdatePullToPushGroup", _POST, WRITE, update_group),
        Action("DeletePullToPushGroup", _POST, WRITE, delete_group),
        # The documented limit of ListPullToPushGroup is 10 QPS, so it shares the write budget.
        Action("ListPullToPushGroup", _POST, WRITE, list_groups),
    )
}
