"""The platform seam: every call the engine makes to Volcengine Live, in the engine's own terms.

``Platform`` is the one protocol between relayd's engine and the platform — task calls (create, update, delete,
stop, continue, relaunch, listing) and group calls (list, create, update). Two implementations, one module each:

- ``relayd.platform.live.LivePlatform`` maps them onto the signed, paced ``LiveClient`` (the daemon's).
- ``relayd.platform.memory.MemoryPlatform`` keeps tasks and groups in memory, with injectable faults: the ground
  for the engine's and executor's fast tests and for benchmarks where the platform's pace is not the point.

Keeping the seam this narrow keeps pydantic request models out of the engine and lets every decision path be
tested in milliseconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from relayd.ids import TaskId
from relayd.volc.models import GroupItem, TaskStatus


@dataclass(frozen=True, slots=True)
class ObservedTask:
    """One platform task as last seen in a listing."""

    task_id: TaskId
    title: str
    status: TaskStatus
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ListedTask:
    """A listed task with the fields only some readers need (foreign-task reports, groups)."""

    task: ObservedTask
    dst_addr: str | None
    group: str | None


class Platform(Protocol):
    async def create(self, body: dict[str, Any]) -> TaskId: ...
    async def update(self, body: dict[str, Any]) -> None: ...
    async def delete(self, task_id: TaskId, group: str | None) -> None: ...
    async def stop(self, task_id: TaskId, group: str | None) -> None: ...
    async def resume(self, task_id: TaskId, group: str | None) -> None: ...
    async def relaunch(self, task_id: TaskId, group: str | None) -> None: ...
    def list_all(self) -> AsyncIterator[ListedTask]: ...
    async def list_title(self, title: str) -> list[ListedTask]:
        """Tasks whose Title is ``title`` or, for a relayd tag, the same segment's tag at the other length."""
        ...

    async def list_groups(self) -> list[GroupItem]: ...
    async def create_group(self, name: str, project: str, tags: Mapping[str, str]) -> None: ...
    async def update_group(self, name: str, tags: Mapping[str, str]) -> None: ...


def status_at(start: int, end: int, now: float) -> TaskStatus:
    """The status the platform shows for an enabled task at ``now``."""
    if now < start:
        return TaskStatus.PENDING
    return TaskStatus.ACTIVE if now < end else TaskStatus.ENDED


__all__ = ["ListedTask", "ObservedTask", "Platform", "status_at"]
