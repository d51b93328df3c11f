"""The background checkpointer: commits land in the database file itself without any commit checkpointing.

Observed from outside: a connection opened with ``immutable=1`` reads the main database file and ignores the WAL,
so it sees a row only once a checkpoint has copied it there. Fewer rows are written than the writer's backstop
(``BACKSTOP_PAGES``), so only the checkpointer can have copied them.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from relayd.store import Event, Store, schema
from relayd.store.batch import BACKSTOP_PAGES, Checkpointer
from relayd.store.sql import SQLITE


def rows_in_main_file(path: Path) -> int:
    """Events in the database file proper, ignoring the WAL (0 before the table is there)."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def new_db(path: Path) -> sqlite3.Connection:
    conn = schema.connect(path, synchronous="NORMAL")
    schema.migrate(conn, path)
    return conn


def insert_events(conn: sqlite3.Connection, first: int, count: int) -> None:
    conn.execute("BEGIN")
    for i in range(first, first + count):
        event = Event(ts=float(i), kind="callback", dedupe_key=f"cb:k:{i}", raw="{}")
        conn.execute(SQLITE.insert_event, schema.event_row(event))
    conn.execute("COMMIT")


def test_the_writer_connection_checkpoints_only_as_a_backstop(tmp_path: Path) -> None:
    conn = new_db(tmp_path / "s.db")
    try:
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_PAGES
        insert_events(conn, 0, 50)
        assert rows_in_main_file(tmp_path / "s.db") == 0  # still only in the WAL: nothing checkpointed
    finally:
        conn.close()


async def test_a_commit_reaches_the_database_file_after_the_checkpointer_runs(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    conn = new_db(path)
    checkpointer = Checkpointer(lambda: schema.connect(path, synchronous="NORMAL"), interval=0.05)
    checkpointer.start()
    try:
        insert_events(conn, 0, 50)
        assert rows_in_main_file(path) == 0
        checkpointer.committed()
        await wait_for(lambda: rows_in_main_file(path) == 50)
        insert_events(conn, 50, 25)  # later commits too, one interval later at the latest
        checkpointer.committed()
        await wait_for(lambda: rows_in_main_file(path) == 75)
        await wait_for(lambda: checkpointer.runs >= 2)  # counted just after the pages land, so wait for it too
        assert checkpointer.failures == 0
    finally:
        checkpointer.stop()
        conn.close()


def test_it_is_idle_without_commits_and_stops_promptly(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    new_db(path).close()
    checkpointer = Checkpointer(lambda: schema.connect(path, synchronous="NORMAL"), interval=30.0)
    checkpointer.start()
    started = time.monotonic()
    checkpointer.stop()  # wakes it from its wait for a commit; the 30 s interval is never slept
    assert time.monotonic() - started < 5.0
    assert checkpointer.runs == 0 and not any(t.name == "relayd-store-checkpoint" for t in threading.enumerate())


def test_a_checkpointer_that_cannot_connect_leaves_the_writer_to_its_backstop(tmp_path: Path) -> None:
    def broken() -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    checkpointer = Checkpointer(broken)
    checkpointer.start()
    checkpointer.committed()
    checkpointer.stop()
    assert (checkpointer.failures, checkpointer.runs) == (1, 0)


async def test_the_store_writer_checkpoints_in_the_background(tmp_path: Path) -> None:
    path = tmp_path / "relayd.db"
    store = await Store.open(path)
    try:
        for i in range(40):
            assert await store.add_event(Event(ts=float(i), kind="callback", dedupe_key=f"cb:k:{i}", raw="{}"))
        await wait_for(lambda: rows_in_main_file(path) == 40)
    finally:
        await store.close()
