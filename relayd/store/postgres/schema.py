"""The tables of one installation in PostgreSQL, in a schema of its own, with versioned migrations.

Why a schema per installation: several installations (one per platform account, say) can share one database
without seeing each other's rows; every connection sets ``search_path`` to its installation's schema, so the
statements are the same as SQLite's (``relayd.store.sql``). The version lives in ``relayd_schema``, the way SQLite
keeps it in ``PRAGMA user_version``: each step runs in one transaction with the version bump, under an advisory lock
so two instances starting together migrate once. A schema newer than this relayd knows is refused.

Types follow SQLite's affinity: ``BIGINT`` where SQLite stores integers, ``DOUBLE PRECISION`` for reals, JSON as
``TEXT`` (the mirror parses it; PostgreSQL never looks inside).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from relayd.store.errors import StoreError
from relayd.store.records import AppliedSchedule, SegmentRecord
from relayd.store.schema import APPLIED_COLUMNS, SEGMENT_COLUMNS, applied_from_row, segment_from_row
from relayd.store.sql import EVENT_INSERTED, POSTGRES, SEGMENT_UPDATES

_V1 = (
    """CREATE TABLE segments (
    key TEXT PRIMARY KEY, schedule_id TEXT NOT NULL, idx BIGINT NOT NULL, occurrence BIGINT,
    start_ts BIGINT NOT NULL, end_ts BIGINT NOT NULL, title TEXT NOT NULL, grp TEXT, spec_hash TEXT NOT NULL,
    body TEXT NOT NULL, task_id TEXT, state TEXT NOT NULL, attempts BIGINT NOT NULL,
    next_attempt_at DOUBLE PRECISION, failure_seen_at DOUBLE PRECISION, healthy_since DOUBLE PRECISION,
    last_error TEXT, last_request_id TEXT, created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL, deleted_at DOUBLE PRECISION)""",
    """CREATE TABLE events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ts DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL,
    schedule_id TEXT, segment_key TEXT, task_id TEXT, dedupe_key TEXT UNIQUE, data TEXT NOT NULL, raw TEXT)""",
    "CREATE INDEX events_schedule ON events (schedule_id, id)",
    "CREATE INDEX events_segment ON events (segment_key, id)",
    "CREATE INDEX events_kind ON events (kind, id)",
    "CREATE INDEX events_ts ON events (ts)",
    "CREATE TABLE applied (schedule_id TEXT PRIMARY KEY, digest TEXT NOT NULL, source_file TEXT NOT NULL, "
    "payload TEXT NOT NULL)",
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE leases (namespace TEXT PRIMARY KEY, holder TEXT NOT NULL, epoch BIGINT NOT NULL, "
    "expires_at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE instances (instance_id TEXT PRIMARY KEY, role TEXT NOT NULL, "
    "heartbeat_at DOUBLE PRECISION NOT NULL, lease_expires_at DOUBLE PRECISION)",
)

MIGRATIONS: list[tuple[int, tuple[str, ...]]] = [(1, _V1)]
"""Ordered (version, statements) pairs; append, never edit a released step."""

NOT_TEXT = {
    **dict.fromkeys(("idx", "occurrence", "start_ts", "end_ts", "attempts"), "bigint"),
    **dict.fromkeys(("ts", "next_attempt_at", "failure_seen_at", "healthy_since", "created_at", "updated_at",
                     "deleted_at"), "double precision"),
}  # fmt: skip
"""The columns of ``segments`` and ``events`` that are not TEXT (as created above): how a bulk write reads them from
its JSON rows. A test compares this with the tables the migrations create."""


def _bulk(table: str, columns: str, conflict: str, key: str) -> tuple[str, int]:
    names = columns.split(", ")
    values = ", ".join(
        f"r->>{i}" if name not in NOT_TEXT else f"(r->>{i})::{NOT_TEXT[name]}" for i, name in enumerate(names)
    )
    statement = (
        f"INSERT INTO {table} ({columns}) SELECT {values} FROM jsonb_array_elements(%s::jsonb) AS r "  # noqa: S608
        f"{conflict} RETURNING {key}"
    )
    return statement, names.index(key)


BULK = {
    POSTGRES.insert_event: _bulk("events", EVENT_INSERTED, "ON CONFLICT (dedupe_key) DO NOTHING", "dedupe_key"),
    POSTGRES.upsert_segment: _bulk("segments", SEGMENT_COLUMNS, f"ON CONFLICT (key) DO UPDATE SET {SEGMENT_UPDATES}",
                                   "key"),
}  # fmt: skip
"""Statements whose runs the writer sends as one statement over a JSON array of their rows, each row the array of
its values (``child.Bulk``): a burst of callback events, a pass's segment writes. Per 350-row batch of segments,
against an ``executemany``, it halved the CPU in the writer and in the server; against rows as JSON objects read
by ``json_to_recordset`` (how this started), the writer builds the array in a third of the time and the server
takes ~20 % less (``jsonb`` finds an element without parsing the row again; ``json`` would, for every column).
Numbers pass through ``jsonb``'s ``numeric``: exact for every finite double (its ``repr`` is what is sent), except
that -0.0 comes back as 0.0 (equal to it in Python). Each returns the key of every row it wrote (an event whose
dedupe key is stored already is not)."""

_LOCK_KEY = 0x72656C6179  # "relay": the advisory lock that serialises migrations of one database


async def migrate(
    conn: psycopg.AsyncConnection[Any], schema: str, steps: Sequence[tuple[int, tuple[str, ...]]] = MIGRATIONS
) -> int:
    """Create ``schema`` if needed and bring it to the last step's version; returns the version it now has."""
    latest = steps[-1][0] if steps else 0
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        await conn.execute("CREATE TABLE IF NOT EXISTS relayd_schema (version BIGINT NOT NULL)")
        row = await (await conn.execute("SELECT max(version) FROM relayd_schema")).fetchone()
        current = int(row[0]) if row is not None and row[0] is not None else 0
        if current > latest:
            raise StoreError(
                f"relayd schema {schema!r} was written by a newer relayd (schema {current} > {latest}); "
                "upgrade relayd or use another database_schema"
            )
        for version, statements in steps:
            if version > current:
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO relayd_schema (version) VALUES (%s)", (version,))
                current = version
    return current


async def load(
    conn: psycopg.AsyncConnection[Any],
) -> tuple[list[SegmentRecord], dict[str, AppliedSchedule], dict[str, str]]:
    """Everything the mirror holds, read in one snapshot."""
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        segments = await (await conn.execute(f"SELECT {SEGMENT_COLUMNS} FROM segments")).fetchall()  # noqa: S608
        applied = await (await conn.execute(f"SELECT {APPLIED_COLUMNS} FROM applied")).fetchall()  # noqa: S608
        meta = await (await conn.execute("SELECT name, value FROM meta")).fetchall()
    return (
        [segment_from_row(row) for row in segments],
        {str(row[0]): applied_from_row(row) for row in applied},
        {str(row[0]): str(row[1]) for row in meta},
    )
