"""Segment records for store tests: one small valid record, changed with keyword arguments."""

from __future__ import annotations

import dataclasses
from typing import Any

from relayd.ids import ScheduleId, SegmentKey
from relayd.store import SegmentRecord


def seg(key: str, schedule: str = "s1", start: int = 0, **changes: Any) -> SegmentRecord:
    base = SegmentRecord(
        key=SegmentKey(key), schedule_id=ScheduleId(schedule), index=start // 10, occurrence=None, start=start,
        end=start + 10, title="rd" + key, group=None, spec_hash="h", body={"Title": "rd" + key, "StartTime": start},
    )  # fmt: skip
    return dataclasses.replace(base, **changes)
