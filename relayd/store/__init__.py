"""relayd's durable state behind one protocol, with an in-memory mirror and group commit; SQLite or PostgreSQL.

The store is relayd's memory (APScheduler is only the alarm clock): segments and their platform task ids,
restart attempts, the event history, the last good version of each schedule, and small metadata such as the
callback secret. Modules:

- ``protocol``: ``StateStore`` (what the rest of relayd uses) and ``Leadership`` (leases, instances, wake-ups).
- ``records``: the record types and the segment state enum.
- ``errors``: StoreError / StoreLockedError / StoreWriteError / FencedError with operator-facing messages.
- ``mirror``: the in-memory mirror and the meaning of every operation, shared by the backends.
- ``writer``: operations and batch outcomes (what a writer takes and hands back).
- ``sql``: the mirror's statements in each backend's parameter style.
- ``leases``: the lease rules (pure) and SQLite's single-leader answer.
- ``core``: the SQLite store (``Store``): lock, open, read-only connection for events.
- ``locking``, ``schema``, ``batch``, ``writer_process``, ``cache``: SQLite's lock, schema and migrations, the
  writer process's script (stdlib only; PostgreSQL's ``postgres/child.py`` reuses it with a runner of its own) and
  its loop side (both backends), and the mirror's tables.
"""

from __future__ import annotations

from relayd.store.core import Store
from relayd.store.errors import FencedError, StoreError, StoreLockedError, StoreWriteError
from relayd.store.leases import InstanceInfo, Lease, Role
from relayd.store.protocol import Leadership, SharedStore, StateStore
from relayd.store.records import AppliedSchedule, Event, SegmentRecord, SegmentState

__all__ = [
    "AppliedSchedule",
    "Event",
    "FencedError",
    "InstanceInfo",
    "Leadership",
    "Lease",
    "Role",
    "SegmentRecord",
    "SegmentState",
    "SharedStore",
    "StateStore",
    "Store",
    "StoreError",
    "StoreLockedError",
    "StoreWriteError",
]
