"""``Platform`` in memory: the ground for the engine's fast tests and for benchmarks.

Tasks and groups live in dicts; a task's status follows ``clock`` as the platform's does (未开始 → 生效中 → 已结束),
unless a test set it (停用). Every call still suspends once (``asyncio.sleep(0)``), as a real HTTP call would,
and listings yield between pages, so concurrency bugs show here as they would against the platform.

Faults are injected per action with :meth:`MemoryPlatform.inject`: the call raises the given error, either
before acting (the platform refused) or after acting (``acted=True``: the platform did the work but the answer
was lost or garbled — the ambiguous case a client cannot tell from a refusal).

:class:`MemoryQuirks` plays the emulator's strict answers to the open questions (``docs/emulator.md``) with the same
error codes and messages: destination uniqueness, Update refused while 生效中, StartTime in the past refused,
Relaunch only from 停用, and the not-found code. The default is the lenient platform.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from relayd.ids import GroupName, TaskId
from relayd.platform import ListedTask, ObservedTask, status_at
from relayd.schedules.titles import same_segment
from relayd.volc.errors import ApiError, LiveError
from relayd.volc.models import GroupItem, TagInfo, TaskStatus


@dataclass(frozen=True, slots=True)
class MemoryQuirks:
    """The platform's answers to the open questions, as the emulator's quirks of the same names."""

    destination: str = "shared"  # shared | exclusive | exclusive-touching-ok
    update_running: bool = True
    past_start: bool = True
    relaunch_from: str = "active"  # active | disabled | any
    not_found: str = "ResourceNotFound"


def _refused(message: str) -> ApiError:
    return ApiError("Action", http_status=400, code="InvalidParam", message=message)


@dataclass(frozen=True, slots=True)
class _Fault:
    error: LiveError
    acted: bool


class MemoryPlatform:
    """Owned and foreign tasks by id, groups by name; ``calls`` counts each action."""

    def __init__(
        self, clock: Callable[[], float] = time.time, *, page_size: int = 500, quirks: MemoryQuirks | None = None
    ) -> None:
        self._clock = clock
        self.quirks = quirks or MemoryQuirks()
        self._page_size = page_size
        self._ids = itertools.count(1)
        self._faults: dict[str, deque[_Fault]] = {}
        self.tasks: dict[TaskId, ListedTask] = {}
        self.bodies: dict[TaskId, dict[str, Any]] = {}
        self.groups: dict[str, GroupItem] = {}
        self.calls: dict[str, int] = {}

    # --- test controls --------------------------------------------------------------------------------------

    def inject(self, action: str, error: LiveError, *, times: int = 1, acted: bool = False) -> None:
        """The next ``times`` calls of ``action`` raise ``error`` (after doing the work when ``acted``)."""
        self._faults.setdefault(action, deque()).extend(_Fault(error, acted) for _ in range(times))

    def add(self, body: Mapping[str, Any]) -> TaskId:
        """A task as if created earlier (no call counted)."""
        task_id = TaskId(f"{next(self._ids):032x}")
        self._store(task_id, dict(body))
        return task_id

    def set_status(self, task_id: TaskId, status: TaskStatus) -> None:
        listed = self.tasks[task_id]
        self.tasks[task_id] = replace(listed, task=replace(listed.task, status=status))

    def remove(self, task_id: TaskId) -> None:
        """The task vanishes (deleted by hand, or expired and purged)."""
        self.tasks.pop(task_id, None)
        self.bodies.pop(task_id, None)

    def titled(self, title: str) -> list[TaskId]:
        return [tid for tid, t in self.tasks.items() if t.task.title == title]

    # --- Platform -------------------------------------------------------------------------------------------

    async def create(self, body: dict[str, Any]) -> TaskId:
        async with self._call("create") as acted:
            self._check_start(body, None)
            self._check_destination(body, None)
            task_id = self.add(body)
            acted.append(task_id)
        return task_id

    async def update(self, body: dict[str, Any]) -> None:
        async with self._call("update"):
            task_id = self._known(TaskId(str(body["TaskId"])))
            if not self.quirks.update_running and self._fresh(self.tasks[task_id]).task.status == TaskStatus.ACTIVE:
                raise _refused(f"TaskId: task {task_id} is 生效中 (running) and cannot be updated")
            self._check_start(body, self.tasks[task_id].task)
            self._check_destination(body, task_id)
            if task_id in self.tasks:
                self._store(task_id, {k: v for k, v in body.items() if k != "TaskId"})

    async def delete(self, task_id: TaskId, group: str | None) -> None:
        async with self._call("delete"):
            self.remove(self._known(task_id))

    async def stop(self, task_id: TaskId, group: str | None) -> None:
        async with self._call("stop"):
            self.set_status(self._known(task_id), TaskStatus.DISABLED)

    async def resume(self, task_id: TaskId, group: str | None) -> None:
        async with self._call("resume"):
            if self._known(task_id) in self.tasks:
                task = self.tasks[task_id].task
                self.set_status(task_id, status_at(task.start, task.end, self._clock()))

    async def relaunch(self, task_id: TaskId, group: str | None) -> None:
        async with self._call("relaunch"):
            status = self._fresh(self.tasks[self._known(task_id)]).task.status
            allowed = {"active": (TaskStatus.ACTIVE,), "disabled": (TaskStatus.DISABLED,)}.get(
                self.quirks.relaunch_from, (TaskStatus.ACTIVE, TaskStatus.DISABLED)
            )
            if status not in allowed:
                raise _refused(f"TaskId: task {task_id} is {status.name}; only {allowed[0].name} can be relaunched")
            if status == TaskStatus.DISABLED:
                task = self.tasks[task_id].task
                self.set_status(task_id, status_at(task.start, task.end, self._clock()))

    async def list_all(self) -> AsyncIterator[ListedTask]:
        self._count("list_all")
        self._raise_before("list_all")
        items = list(self.tasks.values())
        for start in range(0, len(items), self._page_size):
            await asyncio.sleep(0)  # one page, one round trip
            for listed in items[start : start + self._page_size]:
                yield self._fresh(listed)

    async def list_title(self, title: str) -> list[ListedTask]:
        async with self._call("list_title"):
            pass
        return [self._fresh(t) for t in self.tasks.values() if same_segment(title, t.task.title)]

    async def list_groups(self) -> list[GroupItem]:
        async with self._call("list_groups"):
            pass
        return list(self.groups.values())

    async def create_group(self, name: str, project: str, tags: Mapping[str, str]) -> None:
        async with self._call("create_group"):
            self.groups[name] = _group(name, project, tags)

    async def update_group(self, name: str, tags: Mapping[str, str]) -> None:
        async with self._call("update_group"):
            project = self.groups[name].project_name if name in self.groups else "default"
            self.groups[name] = _group(name, project, tags)

    # --- internals ------------------------------------------------------------------------------------------

    def _known(self, task_id: TaskId) -> TaskId:
        if task_id not in self.tasks:
            code = self.quirks.not_found
            status = 404 if code == "ResourceNotFound" else 400
            raise ApiError("Action", http_status=status, code=code, message=f"TaskId: task {task_id} does not exist")
        return task_id

    def _check_start(self, body: Mapping[str, Any], current: ObservedTask | None) -> None:
        start = int(body["StartTime"])
        if self.quirks.past_start or (current is not None and current.start == start):
            return
        if start < self._clock():
            raise _refused(f"StartTime: {start} is in the past (now {int(self._clock())}); it must not be earlier")

    def _check_destination(self, body: Mapping[str, Any], itself: TaskId | None) -> None:
        if self.quirks.destination == "shared":
            return
        start, end, dst = int(body["StartTime"]), int(body["EndTime"]), body.get("DstAddr")
        touching = self.quirks.destination == "exclusive"
        for task_id, listed in self.tasks.items():
            other = self._fresh(listed).task
            if task_id == itself or listed.dst_addr != dst or other.end <= self._clock():
                continue
            if (start < other.end and other.start < end) or (touching and (start == other.end or end == other.start)):
                raise _refused(f"DstAddr: the destination is already used by task {task_id}")

    def _count(self, action: str) -> None:
        self.calls[action] = self.calls.get(action, 0) + 1

    def _next_fault(self, action: str) -> _Fault | None:
        queue = self._faults.get(action)
        return queue.popleft() if queue else None

    def _raise_before(self, action: str) -> None:
        fault = self._next_fault(action)
        if fault is not None:
            raise fault.error

    def _call(self, action: str) -> _Call:
        self._count(action)
        return _Call(self._next_fault(action))

    def _store(self, task_id: TaskId, body: dict[str, Any]) -> None:
        start, end = int(body["StartTime"]), int(body["EndTime"])
        observed = ObservedTask(task_id, str(body.get("Title", "")), status_at(start, end, self._clock()), start, end)
        dst = body.get("DstAddr")
        self.tasks[task_id] = ListedTask(observed, str(dst) if dst else None, body.get("GroupName"))
        self.bodies[task_id] = body

    def _fresh(self, listed: ListedTask) -> ListedTask:
        task = listed.task
        if task.status == TaskStatus.DISABLED:
            return listed
        return replace(listed, task=replace(task, status=status_at(task.start, task.end, self._clock())))


class _Call:
    """One call's shape: suspend once; a fault raises before acting, or after acting when it says ``acted``."""

    def __init__(self, fault: _Fault | None) -> None:
        self._fault = fault
        self._acted: list[object] = []

    async def __aenter__(self) -> list[object]:
        await asyncio.sleep(0)
        if self._fault is not None and not self._fault.acted:
            raise self._fault.error
        return self._acted

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc is None and self._fault is not None:
            raise self._fault.error


def _group(name: str, project: str, tags: Mapping[str, str]) -> GroupItem:
    return GroupItem(
        name=GroupName(name),
        project_name=project,
        status=0,
        tags=[TagInfo(key=k, value=v, category="Custom") for k, v in tags.items()],
    )
