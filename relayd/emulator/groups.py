"""Pull-to-push task groups.

The ``default`` group exists from the start and cannot be deleted (tasks created without GroupName join it).
Names are unique among usable groups. Inferred choices, documented in docs/emulator.md: deleting a group that
still holds tasks is refused with InvalidParam; a deleted group is kept with Status 1 so that
``StatusList: [1]`` can list it, and its name can be reused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relayd.emulator.errors import ApiError

DEFAULT_GROUP = "default"


@dataclass
class Group:
    name: str
    project: str
    tags: list[dict[str, Any]] = field(default_factory=list)
    status: int = 0

    def as_item(self) -> dict[str, Any]:
        tags = [
            {"Key": t.get("Key"), "Value": t.get("Value", ""), "Category": t.get("Category") or "Custom"}
            for t in self.tags
        ]
        return {"Name": self.name, "ProjectName": self.project, "Status": self.status, "Tags": tags}


class Groups:
    def __init__(self) -> None:
        self._usable: dict[str, Group] = {DEFAULT_GROUP: Group(DEFAULT_GROUP, "default")}
        self._deleted: list[Group] = []

    def require(self, name: str) -> Group:
        group = self._usable.get(name)
        if group is None:
            raise ApiError("ResourceNotFound", f"GroupName: group {name!r} does not exist")
        return group

    def create(self, name: str, project: str, tags: list[dict[str, Any]]) -> None:
        if name in self._usable:
            raise ApiError("InvalidParam", f"Name: group {name!r} already exists")
        self._usable[name] = Group(name, project, list(tags))

    def update(self, name: str, tags: list[dict[str, Any]] | None) -> None:
        group = self.require(name)
        if tags is not None:
            group.tags = list(tags)

    def delete(self, name: str, task_count: int) -> None:
        if name == DEFAULT_GROUP:
            raise ApiError("InvalidParam", "Name: the default group cannot be deleted")
        group = self.require(name)
        if task_count:
            raise ApiError("InvalidParam", f"Name: group {name!r} still holds {task_count} tasks; delete them first")
        del self._usable[name]
        group.status = 1
        self._deleted.append(group)

    def listing(self, statuses: list[int]) -> list[Group]:
        wanted = set(statuses) or {0}
        chosen = list(self._usable.values()) if 0 in wanted else []
        return chosen + (self._deleted if 1 in wanted else [])
