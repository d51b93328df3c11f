"""Declared [[group]]s are created, then kept in line (tags), against the emulator through the real client."""

from __future__ import annotations

from typing import Any

from relayd.groups import group_actions, sync_groups
from relayd.platform.live import LivePlatform
from relayd.schedules.model import GroupSpec
from relayd.volc.client import LiveClient
from relayd.volc.models import GroupItem, TagInfo
from relayd.volc.signer import Credentials


def spec(name: str, project: str = "default", **tags: str) -> GroupSpec:
    return GroupSpec(name=name, project=project, tags=tags, source_file="groups.toml", source_line=1)


def test_group_actions_create_missing_update_changed_tags_and_report_projects() -> None:
    existing = [
        GroupItem(name="same", project_name="default", tags=[TagInfo(key="team", value="a", category="Custom")]),
        GroupItem(name="retag", project_name="default", tags=[TagInfo(key="team", value="old", category="Custom")]),
        GroupItem(name="moved", project_name="other"),
        GroupItem(name="gone", project_name="default", status=1),  # deleted on the platform: create again
    ]
    declared = [spec("same", team="a"), spec("retag", team="new"), spec("moved"), spec("gone"), spec("new")]
    actions = {(a.kind, a.spec.name) for a in group_actions(declared, existing)}
    assert actions == {("update", "retag"), ("project_mismatch", "moved"), ("create", "gone"), ("create", "new")}


async def test_sync_creates_updates_and_is_idempotent(emulator: Any) -> None:
    emu = await emulator()
    creds = Credentials(emu.config.access_key, emu.config.secret_key)
    async with LiveClient(emu.url, creds) as client:
        platform = LivePlatform(client)
        assert await sync_groups(platform, [spec("news", team="broadcast"), spec("sports")])
        groups = {g.name: g for g in await platform.list_groups()}
        assert {"default", "news", "sports"} <= set(groups)
        assert {t.key: t.value for t in groups["news"].tags} == {"team": "broadcast"}
        before = dict(emu.stats()["requests"])
        assert await sync_groups(platform, [spec("news", team="broadcast"), spec("sports")])
        after = emu.stats()["requests"]
        assert after.get("CreatePullToPushGroup") == before.get("CreatePullToPushGroup")  # nothing to do twice
        assert after.get("UpdatePullToPushGroup") == before.get("UpdatePullToPushGroup")
        assert await sync_groups(platform, [spec("news", team="studio")])
        groups = {g.name: g for g in await platform.list_groups()}
        assert {t.key: t.value for t in groups["news"].tags} == {"team": "studio"}
