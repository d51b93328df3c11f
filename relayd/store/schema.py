"""The on-disk schema: connection settings, versioned migrations, and record <-> row mapping.

Why ``PRAGMA user_version`` and an ordered list of steps: the state file outlives any one relayd version. Each step
(a SQL script or a callable taking the connection) runs in its own transaction together with the version bump, so
a crash mid-migration leaves the file at the previous version, never in between. A file whose version is newer
than the last step here was written by a newer relayd; opening it would risk misreading it, so it is refused.

Columns are named ``idx``/``start_ts``/``end_ts``/``grp`` because ``index``, ``end`` and ``group`` are SQL keywords.
JSON-able dicts are stored as compact JSON text.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from relayd.ids import ScheduleId, SegmentKey, TaskId
from relayd.store.batch import BACKSTOP_PAGES
from relayd.store.errors import StoreError
from relayd.store.records import AppliedSchedule, Event, SegmentRecord, SegmentState
from relayd.store.writer import ABSENT

Step = str | Callable[[sqlite3.Connection], None]

_V1 = """
CREATE TABLE segments (
    key TEXT PRIMARY KEY,
    schedule_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    occurrence INTEGER,
    start_ts INTEGER NOT NULL,
    end_ts INTEGER NOT NULL,
    title TEXT NOT NULL,
    grp TEXT,
    spec_hash TEXT NOT NULL,
    body TEXT NOT NULL,
    task_id TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at REAL,
    failure_seen_at REAL,
    healthy_since REAL,
    last_error TEXT,
    last_request_id TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    deleted_at REAL
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    schedule_id TEXT,
    segment_key TEXT,
    task_id TEXT,
    dedupe_key TEXT UNIQUE,
    data TEXT NOT NULL,
    raw TEXT
);
CREATE INDEX events_schedule ON events (schedule_id, id);
CREATE INDEX events_segment ON events (segment_key, id);
CREATE INDEX events_kind ON events (kind, id);
CREATE INDEX events_ts ON events (ts);
CREATE TABLE applied (
    schedule_id TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    source_file TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

MIGRATIONS: list[tuple[int, Step]] = [(1, _V1)]
"""Ordered (version, step) pairs; append, never edit a released step."""

BUSY_TIMEOUT_MS = 5000


_JOURNAL_WAL = "PRAGMA journal_mode = WAL"


def writer_pragmas(synchronous: str) -> tuple[str, ...]:
    """What every connection that writes runs, in order: the daemon's (``connect``), the writer process's and the
    checkpointer's. The writers checkpoint in the background, so SQLite's own checkpoint is only a backstop."""
    return (
        f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
        _JOURNAL_WAL,
        f"PRAGMA synchronous = {synchronous}",
        f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}",
    )


def connect(path: Path, *, synchronous: str, read_only: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, with a busy timeout."""
    if read_only:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in writer_pragmas(synchronous):
        row = conn.execute(pragma).fetchone()
        if pragma == _JOURNAL_WAL and str(row[0]).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot switch to WAL journal mode (got {row[0]})")
    return conn


def migrate(conn: sqlite3.Connection, path: Path, steps: Sequence[tuple[int, Step]] = MIGRATIONS) -> int:
    """Bring the file up to the last step's version; returns the version it now has."""
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    latest = steps[-1][0] if steps else 0
    if current > latest:
        raise StoreError(
            f"relayd state file {path} was written by a newer relayd (schema {current} > {latest}); "
            "upgrade relayd or restore a backup"
        )
    for version, step in steps:
        if version > current:
            _apply(conn, version, step)
            current = version
    return current


def _apply(conn: sqlite3.Connection, version: int, step: Step) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        if isinstance(step, str):
            for statement in _statements(step):
                conn.execute(statement)
        else:
            step(conn)
        conn.execute(f"PRAGMA user_version = {int(version)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> list[str]:
    """Split a script into complete statements (so each runs inside our transaction, unlike executescript)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return statements


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_ASCII_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)


def dumps(value: Any) -> str:
    """Compact JSON that any database can store; one shared encoder (``json.dumps`` with options builds a new one
    per call, 3x slower).

    A lone UTF-16 surrogate (``"\\udcff"`` in a callback body is valid JSON) cannot be encoded as UTF-8, so no
    database will bind it; such a value is written with ASCII escapes instead, which read back to the same value."""
    text = _ENCODER.encode(value)
    return text if _utf8(text) else _ASCII_ENCODER.encode(value)


def storable(text: str | None) -> str | None:
    """``text`` with lone surrogates written as ``\\udcff`` escapes and NUL as ``\\x00`` (PostgreSQL's text
    refuses it), so that every backend can store it (None stays None)."""
    if text is None or (_utf8(text) and "\x00" not in text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _utf8(text: str) -> bool:
    if text.isascii():  # the common case, and cheap
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


SEGMENT_COLUMNS = (
    "key, schedule_id, idx, occurrence, start_ts, end_ts, title, grp, spec_hash, body, task_id, state, attempts, "
    "next_attempt_at, failure_seen_at, healthy_since, last_error, last_request_id, created_at, updated_at, deleted_at"
)


def segment_row(r: SegmentRecord) -> tuple[Any, ...]:
    s = storable
    return (
        r.key, r.schedule_id, r.index, r.occurrence, r.start, r.end, s(r.title), s(r.group), r.spec_hash,
        dumps(r.body), s(r.task_id), r.state.value, r.attempts, r.next_attempt_at, r.failure_seen_at, r.healthy_since,
        s(r.last_error), s(r.last_request_id), r.created_at, r.updated_at, r.deleted_at,
    )  # fmt: skip


def segment_from_row(row: Sequence[Any]) -> SegmentRecord:
    # The columns are in field order and the id NewTypes are plain str at run time, so the row maps positionally;
    # this runs 30,000 times at start-up for a large state, so it avoids keyword arguments and Enum lookups.
    r = row
    return SegmentRecord(
        r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], json.loads(r[9]), r[10], _STATES[r[11]],
        r[12], r[13], r[14], r[15], r[16], r[17], r[18], r[19], r[20],
    )  # fmt: skip


_STATES = {state.value: state for state in SegmentState}


EVENT_COLUMNS = "id, ts, kind, schedule_id, segment_key, task_id, dedupe_key, data, raw"


def event_row(e: Event) -> tuple[Any, ...]:
    """The row of an event, every string made storable (a callback body is untrusted input)."""
    s = storable
    return (e.ts, s(e.kind), s(e.schedule_id), s(e.segment_key), s(e.task_id), s(e.dedupe_key), dumps(e.data), s(e.raw))


def event_from_row(row: Sequence[Any]) -> Event:
    return Event(
        id=row[0], ts=row[1], kind=row[2],
        schedule_id=None if row[3] is None else ScheduleId(row[3]),
        segment_key=None if row[4] is None else SegmentKey(row[4]),
        task_id=None if row[5] is None else TaskId(row[5]),
        dedupe_key=row[6], data=json.loads(row[7]), raw=row[8],
    )  # fmt: skip


APPLIED_COLUMNS = "schedule_id, digest, source_file, payload"


def applied_row(a: AppliedSchedule) -> tuple[Any, ...]:
    return (a.schedule_id, a.digest, storable(a.source_file), dumps(a.payload))


def applied_from_row(row: Sequence[Any]) -> AppliedSchedule:
    return AppliedSchedule(ScheduleId(row[0]), row[1], row[2], json.loads(row[3]))


def load_segments(conn: sqlite3.Connection) -> list[SegmentRecord]:
    return [segment_from_row(row) for row in conn.execute(f"SELECT {SEGMENT_COLUMNS} FROM segments")]  # noqa: S608


def load_applied(conn: sqlite3.Connection) -> dict[str, AppliedSchedule]:
    rows = conn.execute(f"SELECT {APPLIED_COLUMNS} FROM applied")  # noqa: S608 - constant columns
    return {row[0]: applied_from_row(row) for row in rows}


def load_meta(conn: sqlite3.Connection) -> dict[str, str]:
    return {row[0]: row[1] for row in conn.execute("SELECT name, value FROM meta")}


def entry_from_row(table: str, row: Sequence[Any] | None) -> Any:
    """The cache value for a row of ``REREAD[table]``, or ``ABSENT`` when there is no row."""
    if row is None:
        return ABSENT
    if table == "segments":
        return segment_from_row(row)
    if table == "applied":
        return applied_from_row(row)
    return row[0]
