"""The PostgreSQL backend of the store: the same mirror and protocol as SQLite, shared by several instances.

- ``schema``: the tables of one installation (in a schema of its own) and their versioned migrations.
- ``child``: the writer process's script: group commit, the fencing check, reconnect with backoff, one bad write
  alone (the loop side is the SQLite store's ``ProcessWriter``).
- ``store``: ``PostgresStore``: open, reads, leases, instances, LISTEN/NOTIFY wake-ups.
"""

from __future__ import annotations

from relayd.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
