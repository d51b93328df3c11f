"""Identifier types shared by every layer.

Why NewType: a schedule id, a segment key and a platform task id are all strings, and mixing them up is the
most likely bug in a reconciler. mypy keeps them apart at no runtime cost.
"""

from __future__ import annotations

from typing import NewType

ScheduleId = NewType("ScheduleId", str)
"""The operator's id of a schedule, unique across the config directory."""

SegmentKey = NewType("SegmentKey", str)
"""Deterministic identity of one planned segment: derived from the schedule id and its position."""

TaskId = NewType("TaskId", str)
"""The platform's id of a pull-to-push task (32 lower-case hex characters in practice)."""

GroupName = NewType("GroupName", str)
"""A pull-to-push task group name."""
