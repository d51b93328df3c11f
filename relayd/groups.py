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
from enum import StrEnum

import structlog

from relayd.platform import Platform
from relayd.schedules.model import GroupSpec
from relayd.volc.errors import LiveError
from relayd.volc.models import GroupItem

log = structlog.get_logger("relayd.groups")


class GroupActionKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    PROJECT_MISMATCH = "project_mismatch"


@dataclass(frozen=True, slots=True)
class GroupAction:
    kind: GroupActionKind
    spec: GroupSpec
    detail: str = ""


def _custom_tags(item: GroupItem) -> dict[str, str]:
    return {t.key: t.value for t in item.tags if t.category in ("", "Custom")}


def group_actions(declared: Iterable[GroupSpec], existing: Sequence[GroupItem]) -> list[GroupAction]:
    """What to do so every declared group exists with its tags (pure)."""
    by_name = {g.name: g for g in existing if g.status == 0}
    actions = []
    for spec in declared:
        item = by_name.get(spec.name)
        if item is None:
            actions.append(GroupAction(GroupActionKind.CREATE, spec))
            continue
        if item.project_name and item.project_name != spec.project:
            detail = f"platform has project {item.project_name!r}; a group's project cannot change"
            actions.append(GroupAction(GroupActionKind.PROJECT_MISMATCH, spec, detail))
        if _custom_tags(item) != spec.tags:
            actions.append(GroupAction(GroupActionKind.UPDATE, spec))
    return actions


async def sync_groups(platform: Platform, declared: Sequence[GroupSpec]) -> bool:
    """Create/update declared groups; True if everything succeeded (errors are logged, retried next sync)."""
    if not declared:
        return True
    try:
        actions = group_actions(declared, await platform.list_groups())
    except LiveError as error:
        log.warning("group_list_failed", error=str(error))
        return False
    ok = True
    for action in actions:
        ok = await _apply(platform, action) and ok
    return ok


async def _apply(platform: Platform, action: GroupAction) -> bool:
    spec = action.spec
    bound = log.bind(group=spec.name, source=f"{spec.source_file}:{spec.source_line}")
    if action.kind == GroupActionKind.PROJECT_MISMATCH:
        bound.warning("group_project_mismatch", detail=action.detail)
        return True
    try:
        if action.kind == GroupActionKind.CREATE:
            await platform.create_group(spec.name, spec.project, spec.tags)
        else:
            await platform.update_group(spec.name, spec.tags)
    except LiveError as error:
        bound.error("group_sync_failed", action=action.kind.value, error=str(error))
        return False
    bound.info("group_synced", action=action.kind.value, tags=len(spec.tags))
    return True
