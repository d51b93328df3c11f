"""relayd's durable state: a SQLite (WAL) file with a versioned schema, written by one writer with group commit.

The store is relayd's memory (APScheduler is only the alarm clock): segments and their platform task ids,
restart attempts, the event history, the last good version of each schedule, and small metadata such as the
callback secret. Modules:

- ``records``: the record types and the segment state enum.
- ``errors``: StoreError / StoreLockedError / StoreWriteError with operator-facing messages.
- ``locking``: the single-instance ``flock`` on ``<state file>.lock``.
- ``schema``: connection settings, migrations, record <-> row mapping.
- ``batch``: what runs in one write transaction (all-or-nothing); also the writer process's script (stdlib only).
- ``writer_process``: the writer process seen from the loop (the default): frames down a pipe, replies back.
- ``writer``: operations, batch outcomes, and the writer thread (the fallback).
- ``cache``: the in-memory mirror of segments, applied schedules and meta.
- ``core``: the Store that ties them together on the event loop.
"""

from __future__ import annotations

from relayd.store.core import Store
from relayd.store.errors import StoreError, StoreLockedError, StoreWriteError
from relayd.store.records import AppliedSchedule, Event, SegmentRecord, SegmentState

__all__ = [
    "AppliedSchedule",
    "Event",
    "SegmentRecord",
    "SegmentState",
    "Store",
    "StoreError",
    "StoreLockedError",
    "StoreWriteError",
]
