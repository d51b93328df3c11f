"""Pure parts of the store: migrations on an in-memory database, row mapping, the cache, error messages."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from relayd.ids import GroupName, ScheduleId, SegmentKey, TaskId
from relayd.store import AppliedSchedule, Event, SegmentRecord, SegmentState, StoreError, batch, schema
from relayd.store.cache import SegmentCache
from relayd.store.errors import explain, write_error
from relayd.store.sql import SQLITE
from relayd.store.writer import ABSENT

PATH = Path("/var/lib/relayd/state.db")


def seg(key: str, schedule: str = "s1", start: int = 0, **changes: object) -> SegmentRecord:
    base = SegmentRecord(
        key=SegmentKey(key),
        schedule_id=ScheduleId(schedule),
        index=0,
        occurrence=None,
        start=start,
        end=start + 10,
        title="rd" + key,
        group=None,
        spec_hash="h",
        body={"Title": "rd" + key},
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def full_record() -> SegmentRecord:
    """Every field away from its default, so a mapping that drops or swaps one is caught."""
    return SegmentRecord(
        key=SegmentKey("k1"),
        schedule_id=ScheduleId("daily-news"),
        index=3,
        occurrence=17,
        start=1_700_000_000,
        end=1_700_604_800,
        title="rdABC234",
        group=GroupName("g1"),
        spec_hash="sha256:abc",
        body={"Title": "rdABC234", "SrcAddrS": ["rtmp://a/b"], "Note": "直播", "Nested": {"x": [1, 2.5, None]}},
        task_id=TaskId("0123456789abcdef0123456789abcdef"),
        state=SegmentState.RETRYING,
        attempts=4,
        next_attempt_at=1_700_000_123.5,
        failure_seen_at=1_700_000_100.25,
        healthy_since=1_699_999_000.0,
        last_error="InternalError: boom",
        last_request_id="req-1",
        created_at=1_699_990_000.0,
        updated_at=1_700_000_050.0,
        deleted_at=1_700_700_000.0,
    )


def memory_db() -> sqlite3.Connection:
    return sqlite3.connect(":memory:", isolation_level=None)


def test_migrate_from_version_zero_creates_every_table() -> None:
    conn = memory_db()
    assert schema.migrate(conn, PATH) == schema.MIGRATIONS[-1][0]
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"segments", "events", "applied", "meta"} <= tables
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.MIGRATIONS[-1][0]


def test_migrate_runs_only_missing_steps_in_order() -> None:
    conn = memory_db()
    seen: list[int] = []
    steps: list[tuple[int, schema.Step]] = [
        (1, "CREATE TABLE a (x INTEGER);"),
        (2, lambda c: seen.append(2)),
        (3, lambda c: seen.append(3)),
    ]
    schema.migrate(conn, PATH, steps[:2])
    assert seen == [2]
    assert schema.migrate(conn, PATH, steps) == 3
    assert seen == [2, 3]


def test_failed_step_leaves_previous_version_and_no_partial_changes() -> None:
    conn = memory_db()
    steps: list[tuple[int, schema.Step]] = [
        (1, "CREATE TABLE a (x INTEGER);"),
        (2, "CREATE TABLE b (x INTEGER);\nCREATE TABLE a (y INTEGER);"),  # second statement fails: a exists
    ]
    with pytest.raises(sqlite3.OperationalError):
        schema.migrate(conn, PATH, steps)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "b" not in tables


def test_newer_schema_is_refused_with_upgrade_hint() -> None:
    conn = memory_db()
    conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match=r"newer relayd \(schema 99 > 1\); upgrade relayd or restore a backup"):
        schema.migrate(conn, PATH)


def test_segment_row_round_trip_keeps_every_field() -> None:
    record = full_record()
    conn = memory_db()
    schema.migrate(conn, PATH)
    conn.execute(SQLITE.upsert_segment, schema.segment_row(record))
    (loaded,) = schema.load_segments(conn)
    assert loaded == record
    assert isinstance(loaded.state, SegmentState)


def test_stamped_carries_every_other_field_over() -> None:
    record = full_record()
    assert record.stamped(1.5, 2.5) == dataclasses.replace(record, created_at=1.5, updated_at=2.5)
    defaults = {f.name for f in dataclasses.fields(SegmentRecord) if getattr(record, f.name) == f.default}
    assert defaults <= {"created_at", "updated_at"}  # full_record sets every field: a new one must be set there too


def test_segment_upsert_replaces_the_row() -> None:
    conn = memory_db()
    schema.migrate(conn, PATH)
    conn.execute(SQLITE.upsert_segment, schema.segment_row(full_record()))
    changed = dataclasses.replace(full_record(), state=SegmentState.RUNNING, task_id=None, attempts=0)
    conn.execute(SQLITE.upsert_segment, schema.segment_row(changed))
    assert schema.load_segments(conn) == [changed]


def test_event_and_applied_rows_round_trip() -> None:
    conn = memory_db()
    schema.migrate(conn, PATH)
    event = Event(ts=5.5, kind="callback", schedule_id=ScheduleId("s"), segment_key=SegmentKey("k"),
                  task_id=TaskId("t"), dedupe_key="d", data={"status": "生效中"}, raw='{"a": 1}')  # fmt: skip
    conn.execute(SQLITE.insert_event, schema.event_row(event))
    row = conn.execute(f"SELECT {schema.EVENT_COLUMNS} FROM events").fetchone()
    assert schema.event_from_row(row) == dataclasses.replace(event, id=1)
    item = AppliedSchedule(ScheduleId("s"), "digest", "schedules/s.toml", {"id": "s", "window": {"start": 1}})
    conn.execute(SQLITE.upsert_applied, schema.applied_row(item))
    assert schema.load_applied(conn) == {"s": item}
    reread = batch.read_rows(conn, [("applied", "s"), ("meta", "missing")], SQLITE.reread)
    assert reread is not None
    assert schema.entry_from_row("applied", reread[("applied", "s")]) == item
    assert schema.entry_from_row("meta", reread[("meta", "missing")]) is ABSENT


def test_statement_splitter_keeps_statements_whole() -> None:
    script = "CREATE TABLE a (x TEXT DEFAULT ';');\nCREATE TABLE b (\n  y INTEGER\n);\n"
    assert schema._statements(script) == ["CREATE TABLE a (x TEXT DEFAULT ';');", "CREATE TABLE b (\n  y INTEGER\n);"]


def test_cache_indexes_follow_changes() -> None:
    cache = SegmentCache([seg("a", task_id=TaskId("t1")), seg("b", schedule="s2", state=SegmentState.DELETED)])
    assert cache.by_task(TaskId("t1")) is not None
    cache.assign("a", seg("a", task_id=TaskId("t2")))
    assert cache.by_task(TaskId("t1")) is None
    assert cache.by_task(TaskId("t2")) == seg("a", task_id=TaskId("t2"))
    assert cache.schedule_ids() == {"s1"}  # s2 has only a deleted segment
    cache.assign("a", ABSENT)
    assert cache.by_task(TaskId("t2")) is None
    assert cache.schedule_ids() == set()
    assert [r.key for r in cache.select(None, include_deleted=True)] == ["b"]


def test_cache_select_orders_by_schedule_then_start() -> None:
    cache = SegmentCache([seg("c", "s2", 5), seg("b", "s1", 20), seg("a", "s1", 10)])
    assert [r.key for r in cache.select(None, include_deleted=False)] == ["a", "b", "c"]
    assert [r.key for r in cache.select(ScheduleId("s1"), include_deleted=False)] == ["a", "b"]


def test_prunable_uses_deleted_at_then_updated_at() -> None:
    cache = SegmentCache(
        [
            seg("old", state=SegmentState.DELETED, deleted_at=10.0),
            seg("new", state=SegmentState.DELETED, deleted_at=100.0),
            seg("nodate", state=SegmentState.DELETED, updated_at=5.0),
            seg("live", state=SegmentState.ENDED, deleted_at=1.0),
        ]
    )
    assert sorted(r.key for r in cache.prunable(50.0)) == ["nodate", "old"]


@pytest.mark.parametrize(
    ("reason", "hint"),
    [
        (sqlite3.OperationalError("database or disk is full"), "free space on the filesystem holding /var/lib/relayd"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "can write /var/lib/relayd/state.db"),
        (PermissionError(13, "Permission denied"), "not mounted read-only"),
        (sqlite3.OperationalError("disk I/O error"), "check the disk holding /var/lib/relayd"),
        (sqlite3.DatabaseError("file is not a database"), "restore a backup or move it away"),
    ],
)
def test_error_messages_name_path_reason_and_fix(reason: BaseException, hint: str) -> None:
    message = str(write_error(PATH, reason))
    assert str(PATH) in message
    assert str(reason) in message
    assert hint in message
    assert explain(PATH, reason).startswith(str(reason))
