"""The PostgreSQL backend of the store: the same mirror and protocol as SQLite, shared by several instances.

- ``schema``: the tables of one installation (in a schema of its own) and their versioned migrations.
- ``writer``: group commit on a connection pool, the fencing check, reconnect by the pool, one bad write alone.
- ``store``: ``PostgresStore``: open, reads, leases, instances, LISTEN/NOTIFY wake-ups.
"""

from __future__ import annotations

from relayd.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
