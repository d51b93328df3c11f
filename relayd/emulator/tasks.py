"""Task state: the platform's status machine, relaying intervals and status events, as pure code.

Nothing here reads a clock or does I/O: every operation takes ``now`` and returns the :class:`Event` list it
caused; the server sends those as callbacks. Status follows the clock lazily: :meth:`Tasks.advance` applies every
clock transition due by ``now`` (未开始 -> 生效中 at StartTime, 生效中 -> 已结束 at EndTime, auto-recovery of a
failed task) in time order, stamping each with its exact instant rather than the moment someone looked. The
server calls it before every request and from one ticker that sleeps until :meth:`Tasks.next_instant`.

A min-heap of (instant, version, task id) makes ``advance`` cheap with thousands of tasks; a task's version is
bumped whenever an action changes it, which invalidates its older heap entries.

The state machine (reference section 4; the inferred parts are documented in docs/emulator.md):

* a task is 停用 while ``disabled``; otherwise its status is the clock's: 未开始 / 生效中 / 已结束;
* it is *relaying* when 生效中 and not ``failed``; each relaying stretch is one ``[from, to]`` interval;
* a stream failure either disables the task (mode ``disable``) or leaves it 生效中 but not relaying
  (mode ``stay``, or ``silent``: the same without a callback), until Relaunch (or an optional automatic recovery);
* Relaunch is accepted from the statuses the caller passes (the ``relaunch_from`` quirk);
* a task whose source cannot be pulled (SrcAddr host in the reserved ``.invalid`` TLD, RFC 6761) fails on its own
  :data:`UNROUTABLE_FAIL_S` after each time it starts relaying, in the mode :attr:`Tasks.unroutable_mode` (the
  server keeps it equal to the ``failure`` quirk), as a real platform's relay of an unresolvable source would.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any
from urllib.parse import urlsplit

from relayd.emulator.destinations import destination_key, dst_addr

UNROUTABLE_TLD = ".invalid"
UNROUTABLE_FAIL_S = 1.0
"""How long a relay of an unresolvable source seems to run before it fails (a real pull gives up after a retry)."""


class Status(IntEnum):
    """The platform's task statuses; the int is the legacy ``TaskStatus`` value."""

    DISABLED = 0
    PENDING = 1
    ACTIVE = 2
    ENDED = 3

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {Status.DISABLED: "停用", Status.PENDING: "未开始", Status.ACTIVE: "生效中", Status.ENDED: "已结束"}


@dataclass(frozen=True, slots=True)
class Event:
    """A status change worth a callback. ``event_id`` is unique and stays the same across retries/duplicates."""

    event_id: str
    task_id: str
    title: str
    group: str
    callback_url: str
    status: Status
    event_type: str
    time: float


class FailMode(StrEnum):
    """How an injected stream failure shows: 停用 with a callback, 生效中 with one, or 生效中 with none."""

    DISABLE = "disable"
    STAY = "stay"
    SILENT = "silent"


@dataclass
class FailPlan:
    """An injected stream failure: how it shows, how often it repeats after a restart, when it heals itself."""

    mode: FailMode = FailMode.DISABLE
    repeat: int | None = None
    recover_after_s: float | None = None

    def __post_init__(self) -> None:
        self.mode = FailMode(self.mode)


@dataclass
class Task:
    task_id: str
    fields: dict[str, Any]
    group: str
    created_at: float
    phase: Status
    disabled: bool = False
    failed: bool = False
    deleted_at: float | None = None
    recover_at: float | None = None
    fail_at: float | None = None
    """When a relay of an unresolvable source fails by itself (None: it does not)."""
    fail_plan: FailPlan | None = None
    intervals: list[list[float | None]] = field(default_factory=list)
    version: int = 0

    @property
    def start(self) -> int:
        return int(self.fields["StartTime"])

    @property
    def end(self) -> int:
        return int(self.fields["EndTime"])

    @property
    def title(self) -> str:
        return str(self.fields.get("Title") or "")

    @property
    def destination(self) -> str:
        """The destination key (:func:`~relayd.emulator.destinations.destination_key`) this task pushes."""
        return destination_key(dst_addr(self.fields))

    @property
    def unroutable(self) -> bool:
        """Its source cannot be pulled: the SrcAddr host is in the reserved ``.invalid`` TLD (never resolves)."""
        host = urlsplit(str(self.fields.get("SrcAddr") or "")).hostname or ""
        return host.endswith(UNROUTABLE_TLD)

    @property
    def relaying(self) -> bool:
        return bool(self.intervals) and self.intervals[-1][1] is None

    def clock_status(self, now: float) -> Status:
        if now < self.start:
            return Status.PENDING
        return Status.ACTIVE if now < self.end else Status.ENDED

    def next_instant(self) -> float | None:
        """When the clock next changes this task, or None."""
        if self.disabled or self.deleted_at is not None:
            return None
        if self.phase is Status.PENDING:
            return self.start
        if self.phase is Status.ACTIVE:
            return min(t for t in (self.end, self.recover_at, self.fail_at) if t is not None)
        return None


class WrongState(Exception):
    """An action that the task's status does not allow; the message names the status."""


class Tasks:
    """Every task, live and deleted, and the transitions between their statuses."""

    def __init__(self) -> None:
        self.live: dict[str, Task] = {}
        self.all: list[Task] = []
        self._by_destination: dict[str, list[Task]] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._events = itertools.count(1)
        self._prefix = ""
        self.unroutable_mode = FailMode.DISABLE
        """How a relay of an unresolvable source fails (the server sets it from the ``failure`` quirk)."""

    def set_event_prefix(self, prefix: str) -> None:
        """Event ids are ``<prefix>-<n>``; a random prefix keeps them unique across emulator runs."""
        self._prefix = prefix

    # --- clock ---------------------------------------------------------------------------------------------

    def advance(self, now: float) -> list[Event]:
        """Apply every clock transition due by ``now``, in time order, each at its exact instant."""
        events: list[Event] = []
        while self._heap and self._heap[0][0] <= now:
            instant, version, task_id = heapq.heappop(self._heap)
            task = self.live.get(task_id)
            if task is None or task.version != version or task.next_instant() != instant:
                continue
            events += self._clock_transition(task, instant)
            self._schedule(task)
        return events

    def next_instant(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def _clock_transition(self, task: Task, at: float) -> list[Event]:
        if task.phase is Status.PENDING:
            task.phase = Status.ACTIVE
            if not task.failed:
                self._open(task, at)
            return [self._event(task, "start", at)]
        if task.fail_at is not None and at == task.fail_at and at < task.end:
            task.fail_at = None
            return self._fail_now(task, FailPlan(self.unroutable_mode), at)
        if task.recover_at is not None and at == task.recover_at and at < task.end:
            task.failed, task.recover_at = False, None
            self._open(task, at)
            return [self._event(task, "recover", at)]
        self._close(task, at)
        task.phase = Status.ENDED
        return [self._event(task, "end", at)]

    def _schedule(self, task: Task) -> None:
        instant = task.next_instant()
        if instant is not None:
            heapq.heappush(self._heap, (instant, task.version, task.task_id))

    def _touch(self, task: Task) -> None:
        task.version += 1
        self._schedule(task)

    # --- intervals and events ------------------------------------------------------------------------------

    @staticmethod
    def _open(task: Task, at: float) -> None:
        if not task.relaying:
            task.intervals.append([max(float(task.start), at), None])
            task.fail_at = at + UNROUTABLE_FAIL_S if task.unroutable else None

    @staticmethod
    def _close(task: Task, at: float) -> None:
        task.fail_at = None
        if task.relaying:
            task.intervals[-1][1] = min(float(task.end), at)

    def _event(self, task: Task, kind: str, at: float) -> Event:
        return Event(
            event_id=f"{self._prefix}-{next(self._events)}" if self._prefix else str(next(self._events)),
            task_id=task.task_id,
            title=task.title,
            group=task.group,
            callback_url=str(task.fields.get("CallbackURL") or ""),
            status=task.phase,
            event_type=kind,
            time=at,
        )

    # --- actions -------------------------------------------------------------------------------------------

    def get(self, task_id: str) -> Task | None:
        return self.live.get(task_id)

    def on_destination(self, key: str) -> list[Task]:
        """Every task (deleted ones too) that ever pushed the destination ``key``, in creation order."""
        return self._by_destination.get(key, [])

    def _index(self, task: Task, old_key: str | None = None) -> None:
        """File ``task`` under its destination; on an Update that changed it, move it from ``old_key``."""
        key = task.destination
        if old_key == key:
            return
        if old_key is not None:
            self._by_destination[old_key] = [t for t in self._by_destination[old_key] if t is not task]
        self._by_destination.setdefault(key, []).append(task)

    def create(self, task_id: str, fields: dict[str, Any], group: str, now: float) -> list[Event]:
        task = Task(task_id=task_id, fields=fields, group=group, created_at=now, phase=Status.PENDING)
        task.phase = task.clock_status(now)
        self.live[task_id] = task
        self.all.append(task)
        self._index(task)
        events: list[Event] = []
        if task.phase is Status.ACTIVE:
            self._open(task, now)
            events.append(self._event(task, "start", now))
        self._touch(task)
        return events

    def update(self, task: Task, fields: dict[str, Any], now: float) -> list[Event]:
        """Full replace of the task's fields (an empty Title keeps the old one); status follows the new window."""
        if task.phase is Status.ENDED:
            raise WrongState(f"task {task.task_id} is {task.phase.label} (ended) and cannot be updated")
        if not fields.get("Title"):
            fields["Title"] = task.title
        old_key, task.fields = task.destination, fields
        self._index(task, old_key)
        events: list[Event] = []
        if not task.disabled:
            events = self._settle(task, now)
        self._touch(task)
        return events

    def _settle(self, task: Task, now: float) -> list[Event]:
        """Move an enabled task to its clock status at ``now`` after its window changed."""
        before, task.phase = task.phase, task.clock_status(now)
        if task.phase is Status.ACTIVE and not task.failed:
            self._open(task, now)
        elif task.phase is not Status.ACTIVE:
            self._close(task, now)
        if task.phase is before:
            return []
        kind = {Status.ACTIVE: "start", Status.ENDED: "end"}.get(task.phase, "update")
        return [self._event(task, kind, now)]

    def stop(self, task: Task, now: float, *, kind: str = "stop") -> list[Event]:
        if task.phase not in (Status.PENDING, Status.ACTIVE):
            raise WrongState(f"task {task.task_id} is {task.phase.label}; only 未开始 or 生效中 tasks can be stopped")
        self._close(task, now)
        task.disabled, task.failed, task.recover_at = True, False, None
        task.phase = Status.DISABLED
        self._touch(task)
        return [self._event(task, kind, now)]

    def enable(self, task: Task, now: float, *, kind: str = "continue") -> list[Event]:
        """Continue (and legacy Restart): re-enable a 停用 task; its status then follows the clock."""
        if task.phase is not Status.DISABLED:
            raise WrongState(f"task {task.task_id} is {task.phase.label}; only 停用 tasks can be continued")
        task.disabled = False
        task.phase = task.clock_status(now)
        events = [self._event(task, kind, now)]
        if task.phase is Status.ACTIVE:
            events += self._begin_after_restart(task, now)
        self._touch(task)
        return events

    def relaunch(self, task: Task, now: float, allowed: Collection[Status] = (Status.ACTIVE,)) -> list[Event]:
        """Restart a task from the beginning; clears a failure (then it is a ``recover``) or a 停用.

        ``allowed``: the statuses Relaunch accepts. From 停用 the task is enabled and follows the clock again.
        """
        if task.phase not in allowed:
            names = " or ".join(s.label for s in sorted(allowed))
            raise WrongState(f"task {task.task_id} is {task.phase.label}; only {names} tasks can be relaunched")
        kind = "recover" if task.failed else "relaunch"
        task.failed, task.recover_at, task.disabled = False, None, False
        task.phase = task.clock_status(now)
        events = [self._event(task, kind, now)]
        if task.phase is Status.ACTIVE:
            events += self._begin_after_restart(task, now)
        self._touch(task)
        return events

    def _begin_after_restart(self, task: Task, now: float) -> list[Event]:
        plan = task.fail_plan
        if plan is None:
            self._open(task, now)
            return []
        if plan.repeat is not None:
            if plan.repeat <= 0:
                task.fail_plan = None
                self._open(task, now)
                return []
            plan.repeat -= 1
        return self._fail_now(task, plan, now)

    def delete(self, task: Task, now: float, *, notify: bool = True) -> list[Event]:
        self._close(task, now)
        task.deleted_at = now
        del self.live[task.task_id]
        task.version += 1
        return [self._event(task, "delete", now)] if notify else []

    # --- injected failures ---------------------------------------------------------------------------------

    def fail(self, task: Task, plan: FailPlan, now: float) -> list[Event]:
        """A stream failure on a 生效中 task (fault injection)."""
        if task.phase is not Status.ACTIVE or task.failed:
            raise WrongState(f"task {task.task_id} is {task.phase.label}; only a healthy 生效中 task can fail")
        task.fail_plan = plan
        events = self._fail_now(task, plan, now)
        self._touch(task)
        return events

    def _fail_now(self, task: Task, plan: FailPlan, now: float) -> list[Event]:
        self._close(task, now)
        if plan.mode is FailMode.DISABLE:
            task.disabled, task.phase = True, Status.DISABLED
        else:
            task.failed = True
            if plan.recover_after_s is not None:
                task.recover_at = now + plan.recover_after_s
        return [] if plan.mode is FailMode.SILENT else [self._event(task, "fail", now)]
