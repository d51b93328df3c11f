"""The write and read statements of the mirrored tables, once, in each backend's parameter style.

Why one text for both backends: SQLite (3.24+) and PostgreSQL share the ``INSERT ... ON CONFLICT`` upsert, so the
statements differ only in how a parameter is written (``?`` for sqlite3, ``%s`` for psycopg). They are written
here with ``?`` and translated for PostgreSQL; none of them contains a literal question mark.
"""

from __future__ import annotations

from dataclasses import dataclass

from relayd.store.schema import APPLIED_COLUMNS, EVENT_COLUMNS, SEGMENT_COLUMNS

SEGMENT_UPDATES = ", ".join(f"{c} = excluded.{c}" for c in SEGMENT_COLUMNS.split(", ")[1:])
"""What an upsert of a segment sets when its key is stored already: every column but the key."""
EVENT_INSERTED = EVENT_COLUMNS.removeprefix("id, ")
"""The columns an event insert names (the id is the database's)."""


@dataclass(frozen=True, slots=True)
class Dialect:
    """Every statement the mirror runs, in one backend's parameter style."""

    param: str
    upsert_segment: str
    delete_segment: str
    insert_event: str
    prune_events: str
    upsert_applied: str
    delete_applied: str
    upsert_meta: str
    reread: dict[str, str]
    """table -> the one row of a cached entry by its key (how a failed write learns what is stored)."""

    @classmethod
    def build(cls, param: str) -> Dialect:
        def p(sql: str) -> str:
            return sql.replace("?", param)

        return cls(
            param=param,
            upsert_segment=p(
                f"INSERT INTO segments ({SEGMENT_COLUMNS}) VALUES ({', '.join('?' * 21)}) "  # noqa: S608 - constant
                f"ON CONFLICT (key) DO UPDATE SET {SEGMENT_UPDATES}"
            ),
            delete_segment=p("DELETE FROM segments WHERE key = ?"),
            insert_event=p(
                f"INSERT INTO events ({EVENT_INSERTED}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "  # noqa: S608 - constant
                "ON CONFLICT (dedupe_key) DO NOTHING"
            ),
            prune_events=p("DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ts < ? ORDER BY id LIMIT ?)"),
            upsert_applied=p(
                f"INSERT INTO applied ({APPLIED_COLUMNS}) VALUES (?, ?, ?, ?) "  # noqa: S608 - constant
                "ON CONFLICT (schedule_id) DO UPDATE SET digest = excluded.digest, "
                "source_file = excluded.source_file, payload = excluded.payload"
            ),
            delete_applied=p("DELETE FROM applied WHERE schedule_id = ?"),
            upsert_meta=p(
                "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value"
            ),
            reread={
                "segments": p(f"SELECT {SEGMENT_COLUMNS} FROM segments WHERE key = ?"),  # noqa: S608 - constant
                "applied": p(f"SELECT {APPLIED_COLUMNS} FROM applied WHERE schedule_id = ?"),  # noqa: S608
                "meta": p("SELECT value FROM meta WHERE name = ?"),
            },
        )


SQLITE = Dialect.build("?")
POSTGRES = Dialect.build("%s")
