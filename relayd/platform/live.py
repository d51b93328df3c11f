"""``Platform`` over the signed, paced :class:`relayd.volc.client.LiveClient` — what the daemon runs on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from relayd.ids import GroupName, TaskId
from relayd.platform import ListedTask, ObservedTask
from relayd.schedules.titles import same_segment
from relayd.volc.client import LiveClient
from relayd.volc.models import (
    CreateGroupRequest,
    CreateTaskRequest,
    GroupItem,
    ListGroupsRequest,
    ListTasksV2Request,
    Tag,
    TaskItem,
    UpdateGroupRequest,
    UpdateTaskRequest,
)

GROUP_PAGE_SIZE = 100
TASK_PAGE_SIZE = 500


def _listed(item: TaskItem) -> ListedTask:
    task = ObservedTask(
        task_id=TaskId(item.task_id),
        title=item.title or "",
        status=item.status,
        start=item.start_ts,
        end=item.end_ts,
    )
    return ListedTask(task=task, dst_addr=item.dst_addr, group=item.group_name)


def _tags(tags: Mapping[str, str]) -> list[Tag]:
    return [Tag(key=k, value=v, category="Custom") for k, v in sorted(tags.items())]


class LivePlatform:
    def __init__(self, client: LiveClient) -> None:
        self._client = client

    async def create(self, body: dict[str, Any]) -> TaskId:
        """Create a task; at a busy pacing gate the task that starts first goes first (its hand-off is nearest)."""
        request = CreateTaskRequest.model_validate(body)
        return TaskId(await self._client.create_task(request, priority=request.start_time))

    async def update(self, body: dict[str, Any]) -> None:
        """Update a task, as urgent as its StartTime (a running task's is past: before every pending create)."""
        request = UpdateTaskRequest.model_validate(body)
        await self._client.update_task(request, priority=request.start_time)

    async def delete(self, task_id: TaskId, group: str | None) -> None:
        await self._client.delete_task(task_id, group)

    async def stop(self, task_id: TaskId, group: str | None) -> None:
        await self._client.stop_task(task_id, group)

    async def resume(self, task_id: TaskId, group: str | None) -> None:
        await self._client.continue_task(task_id, group)

    async def relaunch(self, task_id: TaskId, group: str | None) -> None:
        await self._client.relaunch_task(task_id, group)

    async def list_all(self) -> AsyncIterator[ListedTask]:
        async for item in self._client.iter_tasks(page_size=TASK_PAGE_SIZE):
            yield _listed(item)

    async def list_title(self, title: str) -> list[ListedTask]:
        page = await self._client.list_tasks_v2(ListTasksV2Request(title=title, page=1, size=TASK_PAGE_SIZE))
        return [_listed(item) for item in page.items if same_segment(title, item.title or "")]

    async def list_groups(self) -> list[GroupItem]:
        """Every active group, page by page."""
        items: list[GroupItem] = []
        page = 1
        while True:
            request = ListGroupsRequest(page_num=page, page_size=GROUP_PAGE_SIZE, status_list=[0])
            result = await self._client.list_groups(request)
            items.extend(result.items)
            if len(result.items) < GROUP_PAGE_SIZE or len(items) >= result.total:
                return items
            page += 1

    async def create_group(self, name: str, project: str, tags: Mapping[str, str]) -> None:
        request = CreateGroupRequest(name=GroupName(name), project_name=project, tags=_tags(tags))
        await self._client.create_group(request)

    async def update_group(self, name: str, tags: Mapping[str, str]) -> None:
        await self._client.update_group(UpdateGroupRequest(name=GroupName(name), tags=_tags(tags)))
