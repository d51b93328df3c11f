"""One write that cannot be stored fails alone: never the other writes of its group commit, never the store's health.

Through the real store on each backend (SQLite with its writer process, PostgreSQL). A lone UTF-16 surrogate is
valid JSON (``"\\udcff"``) but cannot be encoded as UTF-8, so a callback body carrying one used to fail every write
committed with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from relayd.ids import SegmentKey, TaskId
from relayd.store import Event, SegmentState, Store, StoreWriteError
from relayd.store.postgres import PostgresStore
from tests.integration.records import seg


@pytest.fixture(params=["sqlite", "postgresql"])
async def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Awaitable[Any]]:
    """How to open (and open again) the store under test, on each backend."""
    if request.param == "sqlite":
        return lambda: Store.open(tmp_path / "relayd.db")
    url, schema = request.getfixturevalue("postgres").url, request.getfixturevalue("pg_schema")
    return lambda: PostgresStore.open(url, schema=schema, namespace="test")


@pytest.fixture
async def store(opener: Callable[[], Awaitable[Any]]) -> AsyncIterator[Any]:
    s = await opener()
    yield s
    await s.close()


async def test_a_lone_surrogate_is_stored_escaped_and_costs_its_neighbours_nothing(store: Store) -> None:
    good = Event(ts=1.0, kind="callback", segment_key=SegmentKey("k1"), data={"TaskId": "t1"}, raw='{"TaskId":"t1"}')
    poisoned = Event(ts=2.0, kind="callback", task_id=TaskId("\udcff"), data={"TaskId": "\udcff"},
                     raw='{"TaskId": "\\udcff"}', dedupe_key="cb:\udcff")  # fmt: skip
    before = store.commits
    results = await asyncio.gather(store.add_event(good), store.add_event(poisoned), return_exceptions=True)

    assert results == [True, True]
    assert store.commits - before == 1  # one group commit held both
    assert store.healthy
    newest, oldest = await store.events(limit=10)
    assert oldest.data == good.data
    assert newest.data == {"TaskId": "\udcff"}  # JSON escapes read back to the very same value
    assert newest.task_id == "\\udcff" and newest.dedupe_key == "cb:\\udcff"  # plain columns: a visible escape


async def test_a_surrogate_in_a_segment_or_meta_is_stored(store: Store, opener: Callable[[], Awaitable[Any]]) -> None:
    await store.put(seg("a", last_error="bad \udcff", body={"Title": "x\ud800"}))
    await store.set_meta("note", "\udcff")
    await store.close()
    again = await opener()
    try:
        record = again.segment(SegmentKey("a"))
        assert record is not None and record.body == {"Title": "x\ud800"} and record.last_error == "bad \\udcff"
        assert again.meta("note") == "\\udcff"
    finally:
        await again.close()


async def test_a_write_the_database_refuses_fails_alone_and_its_neighbours_commit(store: Store) -> None:
    await store.put(seg("bad"))
    too_big = seg("bad", attempts=2**70, state=SegmentState.RUNNING)  # both databases store 64-bit integers
    before = store.commits
    results = await asyncio.gather(
        store.put(seg("good")),
        store.put(too_big),
        store.add_event(Event(ts=1.0, kind="create")),
        return_exceptions=True,
    )

    assert results[0] is None and results[2] is True
    assert isinstance(results[1], StoreWriteError) and "refused one write" in str(results[1])
    assert store.location in str(results[1])
    assert store.commits - before == 1
    assert store.healthy  # the database is fine; one value was not
    bad = store.segment(SegmentKey("bad"))
    assert bad is not None and bad.state is SegmentState.PENDING and bad.attempts == 0  # back to what is stored
    assert store.segment(SegmentKey("good")) is not None
    assert await store.count_events(kind="create") == 1


async def test_a_nul_character_is_stored_escaped(store: Store) -> None:
    event = Event(ts=1.0, kind="callback", task_id=TaskId("a\x00b"), data={"TaskId": "a\x00b"}, raw="a\x00b")
    assert await store.add_event(event)
    (stored,) = await store.events()
    assert (stored.task_id, stored.raw, stored.data) == ("a\\x00b", "a\\x00b", {"TaskId": "a\x00b"})
    assert store.healthy
