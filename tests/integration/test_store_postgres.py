"""The PostgreSQL store on a real server: outages, leases and fencing between two instances, wake-ups, schemas.

The behaviour both backends share is tested by ``test_store.py`` and ``test_store_poison.py`` (parametrised);
this file tests what only a shared database has.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from relayd.ids import ScheduleId, SegmentKey
from relayd.store import Event, FencedError, Role, SegmentState, Store, StoreError, StoreWriteError
from relayd.store.batch import Call
from relayd.store.postgres import PostgresStore
from relayd.store.postgres import child as writer_child
from relayd.store.postgres.schema import BULK, NOT_TEXT
from relayd.store.schema import SEGMENT_COLUMNS, segment_row
from relayd.store.sql import POSTGRES
from relayd.store.writer_process import ProcessWriter
from tests.integration.postgres import PASSWORD, PostgresServer
from tests.integration.records import seg

Open = Callable[..., Awaitable[PostgresStore]]


@pytest.fixture
async def open_pg(postgres: PostgresServer, pg_schema: str) -> AsyncIterator[Open]:
    """Open instances of one installation (same schema); all closed at teardown."""
    opened: list[PostgresStore] = []

    async def make(**overrides: Any) -> PostgresStore:
        url = overrides.pop("url", postgres.url)
        store = await PostgresStore.open(url, **{"schema": pg_schema, "namespace": "test", **overrides})
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


async def eventually(attempt: Callable[[], Awaitable[Any]], timeout: float = 60.0) -> Any:
    """Call ``attempt`` until it returns something truthy without raising; the last error if time runs out."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                result = await attempt()
            except StoreError:
                result = None
            if result:
                return result
            await asyncio.sleep(0.2)


async def test_an_outage_fails_writes_like_a_disk_error_and_the_store_recovers(
    open_pg: Open, postgres: PostgresServer
) -> None:
    store = await open_pg()
    await store.put(seg("a"))
    postgres.stop()
    try:
        with pytest.raises(StoreWriteError, match="check that PostgreSQL is running") as info:
            await store.put(seg("a", state=SegmentState.RUNNING))
        assert PASSWORD not in str(info.value)
        assert store.location in str(info.value)
        assert not store.healthy
        assert store.segment(SegmentKey("a")).state is SegmentState.PENDING  # type: ignore[union-attr]
        with pytest.raises(StoreError, match="cannot read relayd state"):
            await store.events()
    finally:
        postgres.start()

    async def write() -> bool:
        await store.put(seg("b"))
        return True

    assert await eventually(write)
    assert store.healthy
    assert {r.key for r in store.segments()} == {"a", "b"}
    again = await open_pg()
    assert {r.key for r in again.segments()} == {"a", "b"}


async def test_a_store_that_writes_nothing_after_an_outage_is_healthy_again_by_its_heartbeat(
    open_pg: Open, postgres: PostgresServer
) -> None:
    """A standby writes nothing of its own: its heartbeat proves the database takes writes again (``/readyz``)."""
    store = await open_pg()
    postgres.stop()
    try:
        with pytest.raises(StoreWriteError):
            await store.put(seg("a"))
        assert not store.healthy
    finally:
        postgres.start()

    async def heartbeat() -> bool:
        try:
            await store.heartbeat("standby-1", Role.STANDBY, None)
        except Exception:
            return False
        return True

    assert await eventually(heartbeat)
    assert store.healthy


async def test_the_password_is_never_shown(open_pg: Open, postgres: PostgresServer) -> None:
    store = await open_pg()
    assert PASSWORD not in store.location and ":***@" in store.location
    wrong = postgres.url.replace(PASSWORD, "not-" + PASSWORD)
    with pytest.raises(StoreError, match="cannot open relayd state in postgresql://relayd:\\*\\*\\*@") as info:
        await open_pg(url=wrong)
    assert "not-" + PASSWORD not in str(info.value)


async def test_password_from_a_file(open_pg: Open, postgres: PostgresServer, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    store = await open_pg(url=postgres.url.replace(":" + PASSWORD, ""), password_file=secret)
    await store.set_meta("k", "v")
    assert store.meta("k") == "v"


async def test_installations_in_separate_schemas_do_not_see_each_other(open_pg: Open, pg_schema: str) -> None:
    first = await open_pg()
    other = await open_pg(schema=pg_schema + "b", namespace="other")
    try:
        await first.put(seg("a"))
        assert other.segments() == []
        assert (await open_pg()).segment(SegmentKey("a")) is not None
    finally:
        await other.close()
        await first.flush()


async def test_one_leader_at_a_time_with_rising_epochs(open_pg: Open) -> None:
    a, b = await open_pg(), await open_pg()
    lease_a = await a.try_acquire("a", ttl_s=30.0)
    assert lease_a is not None and lease_a.epoch == 1 and a.epoch == 1
    assert await b.try_acquire("b", ttl_s=30.0) is None
    renewed = await a.renew(lease_a, ttl_s=60.0)
    assert renewed is not None and renewed.epoch == 1 and renewed.expires_at > lease_a.expires_at

    await a.release(renewed)
    lease_b = await b.try_acquire("b", ttl_s=30.0)
    assert lease_b is not None and lease_b.epoch == 2 and b.epoch == 2
    assert await a.renew(renewed, ttl_s=30.0) is None


async def test_a_lapsed_lease_is_taken_over_by_the_database_clock(open_pg: Open) -> None:
    a, b = await open_pg(), await open_pg()
    first = await a.try_acquire("a", ttl_s=1.0)
    assert first is not None
    second = await eventually(lambda: b.try_acquire("b", ttl_s=30.0))
    assert second.epoch == first.epoch + 1
    assert await a.renew(first, ttl_s=30.0) is None


async def test_a_deposed_leaders_writes_are_fenced_but_its_events_are_recorded(open_pg: Open) -> None:
    a, b = await open_pg(), await open_pg()
    lease = await a.try_acquire("a", ttl_s=30.0)
    assert lease is not None
    await a.put(seg("x"))
    await a.release(lease)
    assert await b.try_acquire("b", ttl_s=30.0) is not None

    with pytest.raises(FencedError, match="epoch 1 is not the newest"):
        await a.put(seg("x", state=SegmentState.RUNNING))
    with pytest.raises(FencedError):
        await a.set_meta("owner", "a")
    assert a.segment(SegmentKey("x")).state is SegmentState.PENDING  # type: ignore[union-attr]
    assert await a.add_event(Event(ts=1.0, kind="callback", data={"from": "standby"}))
    assert a.healthy  # refused writes are not a database failure

    await b.refresh()
    await b.put(seg("x", state=SegmentState.RUNNING))
    assert [e.data for e in await b.events()] == [{"from": "standby"}]


async def test_one_batch_of_a_deposed_leader_commits_its_event_and_refuses_its_fenced_write(open_pg: Open) -> None:
    # A batch goes to the server in one pipeline behind a guard that fails when a newer epoch holds the lease; it
    # is then run again write by write, and only what the lease owns is refused.
    a, b = await open_pg(), await open_pg()
    lease = await a.try_acquire("a", ttl_s=30.0)
    assert lease is not None
    event = Event(ts=1.0, kind="callback", data={"i": 1})
    assert await asyncio.gather(a.put(seg("x")), a.add_event(event)) == [None, True]  # the leader's: one trip
    await a.release(lease)
    assert await b.try_acquire("b", ttl_s=30.0) is not None

    late = Event(ts=2.0, kind="callback", data={"i": 2})
    put, added = await asyncio.gather(
        a.put(seg("x", state=SegmentState.RUNNING)), a.add_event(late), return_exceptions=True
    )
    assert isinstance(put, FencedError) and added is True
    assert a.healthy
    await b.refresh()
    assert b.segment(SegmentKey("x")).state is SegmentState.PENDING  # type: ignore[union-attr]
    assert sorted(e.data["i"] for e in await b.events()) == [1, 2]


async def test_an_event_json_cannot_carry_is_still_recorded_with_the_rest_of_its_batch(open_pg: Open) -> None:
    # NaN is no JSON number: the bulk insert fails, and the batch runs again one write at a time.
    store = await open_pg()
    odd = Event(ts=float("nan"), kind="callback", dedupe_key="nan")
    plain = Event(ts=5.0, kind="callback", dedupe_key="plain")
    assert await asyncio.gather(store.add_event(odd), store.add_event(plain)) == [True, True]
    assert store.healthy
    assert sorted(str(e.dedupe_key) for e in await store.events()) == ["nan", "plain"]


async def test_the_bulk_writes_read_each_column_as_the_table_stores_it(open_pg: Open, postgres: PostgresServer,
                                                                         pg_schema: str) -> None:  # fmt: skip
    await open_pg()  # creates the tables
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        rows = conn.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                            "WHERE table_schema = %s AND table_name IN ('segments', 'events') AND column_name <> 'id'",
                            (pg_schema,)).fetchall()  # fmt: skip
    assert len(rows) == 21 + 8
    assert {(column, NOT_TEXT.get(column, "text")) for _, column, _ in rows} == {(c, t) for _, c, t in rows}


async def test_a_burst_of_rows_is_one_statement_and_a_bad_row_fails_alone(open_pg: Open, postgres: PostgresServer,
                                                                          pg_schema: str) -> None:  # fmt: skip
    await open_pg()
    runner = writer_child.PostgresRunner(writer_child.Connection(postgres.url, pg_schema), "test", POSTGRES.reread,
                                         bulk=BULK)  # fmt: skip
    conn = writer_child.Connection(postgres.url, pg_schema).get()
    records = [
        seg("a", next_attempt_at=1 / 3, occurrence=2**40, last_error='中文 \\ "', healthy_since=1e-300,
            deleted_at=1.7976931348623157e308, failure_seen_at=5e-324, start=-(2**63)),
        seg("b"),
    ]  # fmt: skip
    segments = Call("executemany", (POSTGRES.upsert_segment, [segment_row(r) for r in records]), (), fenced=True)
    events = [Call("execute", (POSTGRES.insert_event, (float(i), "callback", None, None, None, f"k{i}", "{}", None)))
              for i in range(3)]  # fmt: skip
    # Sent as two bulk statements in one transaction: _one_trip raises if either fails (the writer then falls back
    # to one write at a time, which would hide a bulk statement that never works).
    results = writer_child._one_trip(conn, [segments, *events, events[0]], writer_child.KEEP_ORDER, None, BULK)
    assert results == [2, 1, 1, 1, 0]  # the last: its dedupe key is stored already
    stored = conn.execute("SELECT " + SEGMENT_COLUMNS + " FROM segments ORDER BY key").fetchall()
    assert [tuple(row) for row in stored] == [segment_row(r) for r in records]  # every value exactly, through JSON

    bad = Call("execute", (POSTGRES.insert_event, ("not a time", "callback", None, None, None, "bad", "{}", None)))
    good = Call("execute", (POSTGRES.insert_event, (9.0, "callback", None, None, None, "good", "{}", None)))
    assert writer_child.one_statement([bad], BULK) == [0]
    reply = runner.run([Call("noop"), bad], None)
    assert reply[0] == "ok" and reply[1] == [None, None] and list(reply[2]) == [1]
    assert isinstance(reply[2][1], psycopg.errors.InvalidTextRepresentation)
    reply = runner.run([bad, good], None)  # one bulk statement fails: the batch again, one write at a time
    assert reply[0] == "ok" and reply[1] == [None, 1] and list(reply[2]) == [0]
    keys = conn.execute("SELECT dedupe_key FROM events ORDER BY id").fetchall()
    assert [k for (k,) in keys] == ["k0", "k1", "k2", "good"]
    runner.close()
    conn.close()


async def test_a_store_that_never_led_cannot_write_what_a_leader_owns(open_pg: Open) -> None:
    a, b = await open_pg(), await open_pg()
    await b.put(seg("before"))  # nobody leads yet: a single instance without election writes freely
    assert await a.try_acquire("a", ttl_s=30.0) is not None
    with pytest.raises(FencedError):
        await b.put(seg("after"))


async def test_instances_report_role_and_heartbeat(open_pg: Open) -> None:
    a, b = await open_pg(), await open_pg()
    lease = await a.try_acquire("a", ttl_s=30.0)
    assert lease is not None
    await a.heartbeat("a", Role.LEADER, lease.expires_at)
    await b.heartbeat("b", Role.STANDBY, None)
    seen = await b.instances()
    assert [(i.instance_id, i.role, i.lease_expires_at) for i in seen] == [
        ("a", Role.LEADER, lease.expires_at),
        ("b", Role.STANDBY, None),
    ]
    assert all(i.heartbeat_at > 0 for i in seen)


async def test_a_standby_wakes_the_leader(open_pg: Open) -> None:
    leader, standby = await open_pg(), await open_pg()
    wakes = leader.wakes()
    received = asyncio.ensure_future(anext(wakes))
    try:
        async with asyncio.timeout(30):
            while not received.done():  # the LISTEN may not be in place for the first NOTIFY
                await standby.wake(ScheduleId("s7"))
                await asyncio.wait([received], timeout=0.2)
        assert received.result() == "s7"
    finally:
        received.cancel()
        await wakes.aclose()


async def test_sqlite_is_always_the_leader_with_epoch_one(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "relayd.db")
    try:
        lease = await store.try_acquire("only", ttl_s=5.0)
        assert lease is not None and lease.epoch == 1 and store.epoch == 1
        assert await store.renew(lease, ttl_s=5.0) == lease
        await store.heartbeat("only", Role.LEADER, None)
        assert [i.instance_id for i in await store.instances()] == ["only"]
        await store.wake(ScheduleId("s1"))
        assert await anext(store.wakes()) == "s1"
    finally:
        await store.close()


def writer_of(store: PostgresStore) -> ProcessWriter:
    writer = store._writer
    assert isinstance(writer, ProcessWriter)
    return writer


async def test_writes_run_in_a_child_process_whose_command_line_has_no_password(open_pg: Open) -> None:
    store = await open_pg()
    pid = writer_of(store).pid
    assert pid is not None and pid != os.getpid()
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert PASSWORD.encode() not in f.read()
    await store.put(seg("a"))
    assert writer_of(store).pid == pid
    again = await open_pg()
    assert [r.key for r in again.segments()] == ["a"]


async def test_a_killed_writer_fails_the_write_in_flight_and_is_replaced(
    open_pg: Open, postgres: PostgresServer, pg_schema: str
) -> None:
    store = await open_pg()
    assert await store.try_acquire("a", ttl_s=300.0) is not None
    await store.put(seg("a"))
    writer = writer_of(store)
    old = writer.pid
    assert old is not None
    async with await psycopg.AsyncConnection.connect(postgres.url, options=f"-c search_path={pg_schema}") as blocker:
        # Holding the lease row FOR UPDATE parks the next fenced write inside the child's transaction (FOR SHARE).
        await blocker.execute("SELECT epoch FROM leases WHERE namespace = 'test' FOR UPDATE")
        write = asyncio.ensure_future(store.put(seg("a", state=SegmentState.RUNNING)))
        await eventually(lambda: _waiting_on_a_lock(blocker))
        assert not write.done()
        os.kill(old, signal.SIGKILL)
        with pytest.raises(StoreWriteError, match=r"store writer process exited with code -9"):
            await asyncio.wait_for(write, 30)
        await blocker.rollback()
    assert not store.healthy
    assert store.segment(SegmentKey("a")).state is SegmentState.PENDING  # type: ignore[union-attr]  # = stored

    await eventually(lambda: _true(writer.restarts == 1))
    assert writer.pid not in (None, old)
    await store.put(seg("a", state=SegmentState.FAILED))
    assert store.healthy
    again = await open_pg()
    assert again.segment(SegmentKey("a")).state is SegmentState.FAILED  # type: ignore[union-attr]


async def _waiting_on_a_lock(conn: psycopg.AsyncConnection[Any]) -> bool:
    cur = await conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
    row = await cur.fetchone()
    return row is not None and int(row[0]) > 0


async def _true(value: bool) -> bool:
    return value
