"""Task groups declared in the config directory (``[[group]]``): created or updated on the platform.

Level-triggered like everything else: each sync lists the platform's groups, and :func:`group_actions` (pure)
says which declared groups to create and which to update (tags differ). Nothing is ever deleted — a group
removed from the config may still hold tasks another tool manages — and a project that differs from the
platform's is reported, because the platform cannot change a group's project after creation.

Groups are synced before the first reconcile (a task cannot join a group that does not exist), on every
reload, and on every periodic resync, so a group deleted by hand comes back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from relayd.schedules.model import GroupSpec
from relayd.volc.errors import LiveError
from relayd.volc.models import CreateGroupRequest, GroupItem, ListGroupsRequest, Tag, UpdateGroupRequest

log = structlog.get_logger("relayd.groups")

PAGE_SIZE = 100


class GroupApi(Protocol):
    async def list_groups(self, request: ListGroupsRequest) -> object: ...
    async def create_group(self, request: CreateGroupRequest) -> None: ...
    async def update_group(self, request: UpdateGroupRequest) -> None: ...


@dataclass(frozen=True, slots=True)
class GroupAction:
    kind: str  # "create" | "update" | "project_mismatch"
    spec: GroupSpec
    detail: str = ""


def _tags(spec: GroupSpec) -> list[Tag]:
    return [Tag(key=k, value=v, category="Custom") for k, v in sorted(spec.tags.items())]


def _custom_tags(item: GroupItem) -> dict[str, str]:
    return {t.key: t.value for t in item.tags if t.category in ("", "Custom")}


def group_actions(declared: Iterable[GroupSpec], existing: Sequence[GroupItem]) -> list[GroupAction]:
    """What to do so every declared group exists with its tags (pure)."""
    by_name = {g.name: g for g in existing if g.status == 0}
    actions = []
    for spec in declared:
        item = by_name.get(spec.name)
        if item is None:
            actions.append(GroupAction("create", spec))
            continue
        if item.project_name and item.project_name != spec.project:
            detail = f"platform has project {item.project_name!r}; a group's project cannot change"
            actions.append(GroupAction("project_mismatch", spec, detail))
        if _custom_tags(item) != spec.tags:
            actions.append(GroupAction("update", spec))
    return actions


async def list_all_groups(api: GroupApi) -> list[GroupItem]:
    items: list[GroupItem] = []
    page = 1
    while True:
        result = await api.list_groups(ListGroupsRequest(page_num=page, page_size=PAGE_SIZE, status_list=[0]))
        batch = list(getattr(result, "items", []))
        items.extend(batch)
        if len(batch) < PAGE_SIZE or len(items) >= int(getattr(result, "total", 0) or 0):
            return items
        page += 1


async def sync_groups(api: GroupApi, declared: Sequence[GroupSpec]) -> bool:
    """Create/update declared groups; True if everything succeeded (errors are logged, retried next sync)."""
    if not declared:
        return True
    try:
        actions = group_actions(declared, await list_all_groups(api))
    except LiveError as error:
        log.warning("group_list_failed", error=str(error))
        return False
    ok = True
    for action in actions:
        ok = await _apply(api, action) and ok
    return ok


async def _apply(api: GroupApi, action: GroupAction) -> bool:
    spec = action.spec
    bound = log.bind(group=spec.name, source=f"{spec.source_file}:{spec.source_line}")
    if action.kind == "project_mismatch":
        bound.warning("group_project_mismatch", detail=action.detail)
        return True
    try:
        if action.kind == "create":
            await api.create_group(CreateGroupRequest(name=spec.name, project_name=spec.project, tags=_tags(spec)))
        else:
            await api.update_group(UpdateGroupRequest(name=spec.name, tags=_tags(spec)))
    except LiveError as error:
        bound.error("group_sync_failed", action=action.kind, error=str(error))
        return False
    bound.info("group_synced", action=action.kind, tags=len(spec.tags))
    return True
