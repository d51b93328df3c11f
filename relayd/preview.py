"""``relayd plan --live``: the actions the daemon would take now, without taking them.

It observes exactly what the daemon observes — a complete listing of the platform's tasks and, when no daemon
holds it, the state store — and asks the same pure :func:`relayd.reconcile.decide`. The listing is treated as
authoritative (as a confirmed observation is in the daemon), so a task missing from it shows as a re-create.

When a running daemon holds the store's lock the preview still works from the listing alone, and says so: it
then cannot know about tasks of schedules that were removed from the config (the store remembers those).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from relayd.apiclient import live_client
from relayd.engine import engine_config
from relayd.ids import ScheduleId
from relayd.observations import Observations
from relayd.platform.live import LivePlatform
from relayd.policy import Policy, policy_for
from relayd.reconcile import ActionKind, PlatformView, decide
from relayd.schedules.model import Schedule, Segment
from relayd.settings import Settings
from relayd.store import SegmentRecord, Store, StoreError, StoreLockedError
from relayd.web.api import action_json


@dataclass
class LiveState:
    observations: Observations
    records: dict[ScheduleId, list[SegmentRecord]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


async def _records(settings: Settings, state: LiveState) -> None:
    path = settings.state_path
    if not path.exists():
        state.notes.append(f"no state file at {path}: every existing task would be adopted by its Title")
        return
    try:
        store = await Store.open(path, read_only=True)  # reads only: no writer process to start
    except StoreLockedError:
        state.notes.append("a running daemon holds the state file; actions are computed from the platform alone")
        return
    except StoreError as error:
        state.notes.append(f"state file unreadable ({error}); actions are computed from the platform alone")
        return
    try:
        for record in store.segments():
            state.records.setdefault(record.schedule_id, []).append(record)
    finally:
        await store.close()


async def observe(settings: Settings) -> LiveState:
    """List the platform's tasks and read the store (if free)."""
    state = LiveState(Observations(time.time))
    async with live_client(settings) as client:  # built as the daemon's is (pacing, timeouts, retries)
        await state.observations.resync(LivePlatform(client))
    await _records(settings, state)
    return state


class Preview:
    """Decisions over an observed state: per configured schedule, and for schedules only the store knows."""

    def __init__(self, state: LiveState, settings: Settings, *, now: int) -> None:
        self._state = state
        self._policy = engine_config(settings).policy
        self._now = now

    @property
    def notes(self) -> list[str]:
        return self._state.notes

    def actions(self, schedule: Schedule, segments: Sequence[Segment]) -> list[Mapping[str, Any]]:
        """The ``ActionsFn`` for ``plan_report``."""
        return list(self._decide(schedule.id, segments, policy_for(self._policy, schedule.restart)))

    def removed(self, configured: set[ScheduleId]) -> list[dict[str, Any]]:
        """Rows for schedules gone from the config whose tasks the daemon would delete."""
        rows = []
        for sid in sorted(set(self._state.records) - configured):
            actions = self._decide(sid, [], self._policy)
            if actions:
                rows.append(
                    {
                        "id": sid,
                        "enabled": False,
                        "segments": [],
                        "actions": actions,
                        "note": "not in the config any more",
                    }
                )
        return rows

    def _decide(self, sid: ScheduleId, segments: Sequence[Segment], policy: Policy) -> list[dict[str, Any]]:
        records = self._state.records.get(sid, [])
        titles = {s.title for s in segments} | {r.title for r in records}
        seen = self._state.observations.view(titles)
        view = PlatformView(tasks=seen.tasks, fresh=frozenset(titles), listed_at=seen.listed_at)
        plan = decide(segments, records, view, now=self._now, policy=policy, rand=0.5)
        return [action_json(a) for a in plan.actions if a.kind != ActionKind.SAVE]
