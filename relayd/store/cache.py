"""The in-memory mirror of the small tables, owned by the event loop thread.

Why a cache: the reconciler asks "what do I know about schedule X / task Y" on every pass and every callback;
answering from memory keeps those reads synchronous and free. The cache is loaded whole at open and changed only
by the store's write methods, at the moment they are called, so a caller reads its own writes at once; the writer
thread never touches it. All tables share one small interface (``get`` / ``set`` with ``ABSENT``) so a failed
batch can be undone generically.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from relayd.ids import ScheduleId, SegmentKey, TaskId
from relayd.store.records import SegmentRecord, SegmentState
from relayd.store.writer import ABSENT


class DictCache:
    """A plain key -> value table (applied schedules, meta)."""

    def __init__(self, items: dict[str, Any]) -> None:
        self.items = items

    def get(self, key: str) -> Any:
        return self.items.get(key, ABSENT)

    def assign(self, key: str, value: Any) -> None:
        if value is ABSENT:
            self.items.pop(key, None)
        else:
            self.items[key] = value


class SegmentCache:
    """Segments by key, with indexes by schedule and by task id."""

    def __init__(self, records: list[SegmentRecord]) -> None:
        self._by_key: dict[str, SegmentRecord] = {}
        self._by_schedule: defaultdict[str, dict[str, SegmentRecord]] = defaultdict(dict)
        self._by_task: dict[str, str] = {}
        for record in records:
            self.assign(record.key, record)

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, key: str) -> Any:
        return self._by_key.get(key, ABSENT)

    def assign(self, key: str, value: Any) -> None:
        old = self._by_key.pop(key, None)
        if old is not None:
            self._unindex(old)
        if value is not ABSENT:
            self._by_key[key] = value
            self._by_schedule[value.schedule_id][key] = value
            if value.task_id is not None:
                self._by_task[value.task_id] = key

    def _unindex(self, old: SegmentRecord) -> None:
        bucket = self._by_schedule.get(old.schedule_id)
        if bucket is not None:
            bucket.pop(old.key, None)
            if not bucket:
                del self._by_schedule[old.schedule_id]
        if old.task_id is not None and self._by_task.get(old.task_id) == old.key:
            del self._by_task[old.task_id]

    def record(self, key: SegmentKey) -> SegmentRecord | None:
        return self._by_key.get(key)

    def by_task(self, task_id: TaskId) -> SegmentRecord | None:
        key = self._by_task.get(task_id)
        return None if key is None else self._by_key.get(key)

    def select(self, schedule_id: ScheduleId | None, include_deleted: bool) -> list[SegmentRecord]:
        if schedule_id is None:
            pool: list[SegmentRecord] = list(self._by_key.values())
        else:
            pool = list(self._by_schedule.get(schedule_id, {}).values())
        if not include_deleted:
            pool = [r for r in pool if r.state is not SegmentState.DELETED]
        pool.sort(key=lambda r: (r.schedule_id, r.start, r.index))
        return pool

    def schedule_ids(self) -> set[ScheduleId]:
        return {
            ScheduleId(sid)
            for sid, bucket in self._by_schedule.items()
            if any(r.state is not SegmentState.DELETED for r in bucket.values())
        }

    def prunable(self, deleted_before: float) -> list[SegmentRecord]:
        return [
            r
            for r in self._by_key.values()
            if r.state is SegmentState.DELETED
            and (r.deleted_at if r.deleted_at is not None else r.updated_at) < deleted_before
        ]
