"""The Store on a real file, on the event loop: round trips, dedupe, group commit, write errors, pruning, volume."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sqlite3
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import relayd.store.mirror
from relayd.ids import GroupName, ScheduleId, SegmentKey, TaskId
from relayd.store import (
    AppliedSchedule,
    Event,
    SegmentRecord,
    SegmentState,
    Store,
    StoreError,
    StoreLockedError,
    StoreWriteError,
)
from relayd.store.postgres import PostgresStore


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def seg(key: str, schedule: str = "s1", start: int = 0, **changes: Any) -> SegmentRecord:
    base = SegmentRecord(
        key=SegmentKey(key),
        schedule_id=ScheduleId(schedule),
        index=start // 10,
        occurrence=None,
        start=start,
        end=start + 10,
        title="rd" + key,
        group=None,
        spec_hash="h",
        body={"Title": "rd" + key, "StartTime": start},
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "relayd.db"


@pytest.fixture
def clock() -> Clock:
    return Clock()


Opener = Callable[[Clock], Awaitable[Any]]
_openers: dict[str, Opener] = {}
"""store.location -> how to open that store again (for ``reopen``)."""


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, state_path: Path, clock: Clock) -> AsyncIterator[Any]:
    """The store under test, on each backend: behaviour, not SQLite specifics, is tested through it."""
    if request.param == "sqlite":
        opener: Opener = lambda c: Store.open(state_path, clock=c)  # noqa: E731
    else:
        url, schema = request.getfixturevalue("postgres").url, request.getfixturevalue("pg_schema")
        opener = lambda c: PostgresStore.open(url, schema=schema, namespace="test", clock=c)  # noqa: E731
    s = await opener(clock)
    _openers[s.location] = opener
    yield s
    await s.close()
    _openers.pop(s.location, None)


@pytest.fixture
async def sqlite_store(state_path: Path, clock: Clock) -> AsyncIterator[Store]:
    """For tests of SQLite specifics (PRAGMAs that simulate a read-only disk)."""
    s = await Store.open(state_path, clock=clock)
    yield s
    await s.close()


async def reopen(store: Any, clock: Clock | None = None) -> Any:
    await store.close()
    opener = _openers.get(store.location) or (lambda c: Store.open(store.path, clock=c))
    return await opener(clock or Clock())


class WriterGate:
    """Holds the writer inside one transaction (the "hold" seam, on a FIFO) so the test decides exactly what lands
    in the next batches: the transaction has started when the test's open of the FIFO returns, and it goes on when
    the test closes it."""

    def __init__(self, directory: Path) -> None:
        self.fifo = directory / "gate.fifo"
        os.mkfifo(self.fifo)
        self._fd: int | None = None

    async def close_on(self, store: Store) -> asyncio.Future[Any]:
        future = store._run_call("hold", str(self.fifo))
        async with asyncio.timeout(10):
            self._fd = await asyncio.to_thread(os.open, self.fifo, os.O_WRONLY)
        return future

    def release(self) -> None:
        assert self._fd is not None
        os.close(self._fd)


async def started(store: Store, *writes: Coroutine[Any, Any, Any]) -> list[asyncio.Task[Any]]:
    """Start write coroutines and wait until all of them are queued (their cache changes are then visible)."""
    target = store.pending + len(writes)
    tasks = [asyncio.ensure_future(w) for w in writes]
    async with asyncio.timeout(10):
        while store.pending < target:
            await asyncio.sleep(0)
    return tasks


async def fail(store: Store, message: str) -> None:
    """A write that fails the way the disk does (the writer's "fail" seam), queued when the coroutine starts."""
    await store._run_call("fail", message)


# -- round trips ---------------------------------------------------------------------------------------------------


async def test_segment_round_trip_and_stamps(store: Store, clock: Clock) -> None:
    record = seg("a", group=GroupName("g"), task_id=TaskId("t" * 32), state=SegmentState.RUNNING, attempts=2,
                 next_attempt_at=5.5, failure_seen_at=4.5, healthy_since=3.5, last_error="boom", last_request_id="r",
                 occurrence=7, body={"Title": "rda", "中文": ["x", 1, None, {"y": 2.5}]})  # fmt: skip
    await store.put(record)
    stamped = dataclasses.replace(record, created_at=1_000.0, updated_at=1_000.0)
    assert store.segment(SegmentKey("a")) == stamped

    clock.now = 2_000.0
    await store.put(dataclasses.replace(record, state=SegmentState.ENDED))
    again = store.segment(SegmentKey("a"))
    assert again is not None
    assert (again.created_at, again.updated_at, again.state) == (1_000.0, 2_000.0, SegmentState.ENDED)

    store = await reopen(store)
    try:
        assert store.segment(SegmentKey("a")) == again
    finally:
        await store.close()


async def test_many_segments_in_one_write_round_trip_exactly(store: Store, clock: Clock) -> None:
    # PostgreSQL sends a put_many as one statement over a JSON array of rows: every type must come back unchanged.
    first = [
        seg("a", occurrence=2**40, start=2**53 + 1, next_attempt_at=1 / 3 + 1e9, failure_seen_at=-0.0,
            healthy_since=1e-300, last_error="  \\ \" 中文 😀", body={"k": [1.5, None, True, {"z": "é"}]}),
        seg("b", group=GroupName("g"), task_id=TaskId("t" * 32), state=SegmentState.RUNNING, attempts=3),
        seg("c"),
    ]  # fmt: skip
    await store.put_many(first)
    clock.now = 2_000.0
    again = [dataclasses.replace(first[1], state=SegmentState.ENDED, task_id=None), seg("d"),
             dataclasses.replace(first[2], attempts=1), dataclasses.replace(first[2], attempts=2)]  # fmt: skip
    await store.put_many(again)  # updates, a new key, and one key twice (the later wins)
    expected = {r.key: r for r in store.segments()}
    assert [expected[SegmentKey(k)].attempts for k in ("a", "b", "c", "d")] == [0, 3, 2, 0]
    store = await reopen(store)
    try:
        assert {r.key: r for r in store.segments()} == expected
    finally:
        await store.close()


async def test_segment_queries(store: Store) -> None:
    await store.put_many(
        [
            seg("b", "s1", 20, task_id=TaskId("tb")),
            seg("a", "s1", 10),
            seg("c", "s2", 0, state=SegmentState.DELETED, task_id=TaskId("tc")),
            seg("d", "s3", 0, state=SegmentState.RUNNING),
        ]
    )
    assert [r.key for r in store.segments()] == ["a", "b", "d"]
    assert [r.key for r in store.segments(include_deleted=True)] == ["a", "b", "c", "d"]
    assert [r.key for r in store.segments(ScheduleId("s1"))] == ["a", "b"]
    assert store.schedule_ids() == {"s1", "s3"}
    found = store.by_task_id(TaskId("tb"))
    assert found is not None and found.key == "b"
    await store.put(seg("b", "s1", 20, task_id=TaskId("tb2")))
    assert store.by_task_id(TaskId("tb")) is None
    assert store.segment(SegmentKey("missing")) is None


async def test_applied_and_meta_round_trip(store: Store) -> None:
    first = AppliedSchedule(ScheduleId("s1"), "d1", "schedules/s1.toml", {"id": "s1", "dst": "rtmp://x/y"})
    second = AppliedSchedule(ScheduleId("s2"), "d2", "schedules/s2.yaml", {"id": "s2"})
    await store.set_applied(first)
    await store.set_applied(second)
    await store.remove_applied(ScheduleId("s2"))
    await store.set_meta("callback_secret", "c2VjcmV0")
    assert store.applied() == {"s1": first}
    store = await reopen(store)
    try:
        assert store.applied() == {"s1": first}
        assert store.meta("callback_secret") == "c2VjcmV0"
        assert store.meta("missing") is None
    finally:
        await store.close()


async def test_events_round_trip_filters_and_paging(store: Store) -> None:
    for i in range(10):
        kind = "callback" if i % 2 else "create"
        event = Event(ts=float(i), kind=kind, schedule_id=ScheduleId(f"s{i % 3}"), segment_key=SegmentKey(f"k{i % 5}"),
                      task_id=TaskId("t"), data={"i": i}, raw=f'{{"i":{i}}}')  # fmt: skip
        assert await store.add_event(event)
    newest = await store.events(limit=3)
    assert [e.data["i"] for e in newest] == [9, 8, 7]
    assert newest[0] == Event(ts=9.0, kind="callback", schedule_id=ScheduleId("s0"), segment_key=SegmentKey("k4"),
                              task_id=TaskId("t"), data={"i": 9}, raw='{"i":9}', id=newest[0].id)  # fmt: skip
    page2 = await store.events(limit=3, before_id=newest[-1].id)
    assert [e.data["i"] for e in page2] == [6, 5, 4]
    assert [e.data["i"] for e in await store.events(schedule_id=ScheduleId("s1"))] == [7, 4, 1]
    assert [e.data["i"] for e in await store.events(segment_key=SegmentKey("k0"), kind="callback")] == [5]
    assert await store.count_events() == 10
    assert await store.count_events(kind="create") == 5


# -- dedupe and group commit ---------------------------------------------------------------------------------------


async def test_duplicate_events_are_recorded_exactly_once_under_concurrency(store: Store) -> None:
    def make(i: int) -> Event:
        return Event(ts=1.0, kind="callback", dedupe_key=f"cb-{i % 7}", data={"copy": i})

    outcomes = await asyncio.gather(
        *(store.add_event(make(i)) for i in range(50)), *(store.add_event_nowait(make(i)) for i in range(50, 100))
    )
    assert sum(outcomes) == 7
    assert await store.count_events() == 7
    for i in range(7):
        assert await store.count_events(dedupe_key=f"cb-{i}") == 1
    assert await store.add_event(Event(ts=2.0, kind="callback", dedupe_key="cb-0")) is False
    assert await store.add_event(Event(ts=2.0, kind="callback")) is True  # no key: never deduplicated
    assert await store.add_event(Event(ts=2.0, kind="callback")) is True


async def test_queued_writes_share_commits(state_path: Path) -> None:
    store = await Store.open(state_path, batch_max=1000)
    try:
        gate = WriterGate(state_path.parent)
        held = await gate.close_on(store)
        before = store.commits
        writes = await started(store, *(store.put(seg(f"k{i}", start=i)) for i in range(2500)))
        gate.release()
        await asyncio.gather(held, *writes)
        # The held op's batch, then everything queued behind it in batches of at most batch_max.
        assert store.commits - before == 1 + 3
        assert len(store.segments()) == 2500
    finally:
        await store.close()


async def test_concurrent_writers_need_far_fewer_commits_than_writes(store: Store) -> None:
    async def writer(n: int) -> None:
        for j in range(20):
            await store.add_event(Event(ts=float(j), kind="callback", data={"w": n}))

    before = store.commits
    await asyncio.gather(*(writer(n) for n in range(100)))
    assert await store.count_events() == 2000
    assert store.commits - before < 2000 / 4


async def test_flush_waits_for_unawaited_writes(store: Store) -> None:
    futures = [store.add_event_nowait(Event(ts=1.0, kind="callback", data={"i": i})) for i in range(200)]
    await store.flush()
    assert all(f.done() and f.result() is True for f in futures)
    assert store.pending == 0


# -- failures --------------------------------------------------------------------------------------------------------


async def test_disk_full_fails_the_whole_batch_and_memory_matches_disk(state_path: Path) -> None:
    store = await Store.open(state_path, clock=Clock())
    original = seg("a")
    await store.put(original)
    pages = (await store._run_sql("PRAGMA page_count"))[0][0]
    await store._run_sql(f"PRAGMA max_page_count = {pages}")

    gate = WriterGate(state_path.parent)
    held = await gate.close_on(store)
    writes = await started(
        store,
        store.put(dataclasses.replace(original, state=SegmentState.RUNNING)),
        store.put(seg("b")),
        store.add_event(Event(ts=1.0, kind="callback", raw="x" * 200_000)),
    )
    assert store.segment(SegmentKey("a")).state is SegmentState.RUNNING  # type: ignore[union-attr]
    gate.release()
    await held
    results = await asyncio.gather(*writes, return_exceptions=True)

    assert all(isinstance(r, StoreWriteError) for r in results), results
    assert "database or disk is full" in str(results[0]) and "free space" in str(results[0])
    assert str(store.path) in str(results[0])
    assert not store.healthy
    assert store.segment(SegmentKey("a")) == dataclasses.replace(original, created_at=1_000.0, updated_at=1_000.0)
    assert store.segment(SegmentKey("b")) is None
    await store.flush()
    assert not store.healthy  # an empty commit is no evidence of recovery

    await store._run_sql("PRAGMA max_page_count = 1073741823")
    assert store.healthy
    await store.put(seg("c"))
    assert await store.count_events() == 0
    expected = store.segments(include_deleted=True)
    store = await reopen(store)
    try:
        assert store.segments(include_deleted=True) == expected
    finally:
        await store.close()


async def test_read_only_database_surfaces_and_recovers(sqlite_store: Store) -> None:
    store = sqlite_store
    # Root ignores file permissions, so a chmod would not make the file read-only in CI; query_only makes SQLite
    # refuse writes with the same error a read-only file or mount gives.
    await store._run_sql("PRAGMA query_only = 1")
    with pytest.raises(StoreWriteError, match="readonly database — check that the relayd user can write"):
        await store.set_meta("k", "v")
    assert store.meta("k") is None
    assert not store.healthy
    assert store.last_error is not None and str(store.path) in store.last_error
    await store._run_sql("PRAGMA query_only = 0")
    await store.set_meta("k", "v2")
    assert store.healthy and store.meta("k") == "v2"


async def test_failed_batch_does_not_undo_a_later_write_of_the_same_key(state_path: Path) -> None:
    store = await Store.open(state_path, batch_max=2)
    try:
        await store.put(seg("a"))
        gate = WriterGate(state_path.parent)
        held = await gate.close_on(store)
        doomed = store.put(seg("a", state=SegmentState.RUNNING))  # batch 1 with the failure below
        boom = fail(store, "disk I/O error")
        later = store.put(seg("a", state=SegmentState.FAILED))  # batch 2: commits
        gate.release()
        results = await asyncio.gather(held, doomed, boom, later, return_exceptions=True)
        assert isinstance(results[1], StoreWriteError) and "check the disk" in str(results[1])
        assert results[3] is None
        assert store.segment(SegmentKey("a")).state is SegmentState.FAILED  # type: ignore[union-attr]
        store = await reopen(store)
        assert store.segment(SegmentKey("a")).state is SegmentState.FAILED  # type: ignore[union-attr]
    finally:
        await store.close()


async def test_unawaited_event_failure_is_reported_on_its_future(sqlite_store: Store) -> None:
    store = sqlite_store
    await store._run_sql("PRAGMA query_only = 1")
    future = store.add_event_nowait(Event(ts=1.0, kind="callback"))
    await store.flush()
    assert isinstance(future.exception(), StoreWriteError)
    await store._run_sql("PRAGMA query_only = 0")


async def test_an_unawaited_put_shows_at_once_and_is_durable_once_a_later_awaited_write_is(store: Store) -> None:
    store.put_many_nowait([seg("a"), seg("b", state=SegmentState.RUNNING)])
    assert store.segment(SegmentKey("b")).state is SegmentState.RUNNING  # type: ignore[union-attr]
    assert store.pending == 1
    await store.put(seg("c"))  # the writer commits in order: this one's commit covers the unawaited one
    assert store.pending == 0
    expected = store.segments()
    store = await reopen(store)
    try:
        assert [r.key for r in store.segments()] == ["a", "b", "c"] and store.segments() == expected
    finally:
        await store.close()


async def test_a_burst_of_events_in_one_batch_reports_each_one_recorded_or_duplicate(store: Store) -> None:
    # On PostgreSQL a run of event inserts goes as one statement over a JSON array of rows (a key twice in one run:
    # one insert each, as before); every event still gets its own answer, and ids follow the order of the calls.
    assert await store.add_event(Event(ts=1.0, kind="callback", dedupe_key="old"))
    burst = [
        Event(ts=2.0 + i, kind="callback", dedupe_key=f"k{i}" if i % 3 else None, data={"i": i}) for i in range(60)
    ]
    burst.append(Event(ts=90.0, kind="callback", dedupe_key="old", data={"late": True}))
    assert await asyncio.gather(*(store.add_event(e) for e in burst)) == [True] * 60 + [False]
    twice = [
        Event(ts=100.0, kind="callback", dedupe_key="twice", data={"n": 1}),
        Event(ts=101.0, kind="callback", dedupe_key="twice", data={"n": 2}),
        Event(ts=102.0, kind="callback", raw='{"Status": "生效中", "a": "\u00e9"}'),
    ]
    assert await asyncio.gather(*(store.add_event(e) for e in twice)) == [True, False, True]
    events = await store.events(limit=1000)
    assert [e.data["i"] for e in reversed(events) if "i" in e.data] == list(range(60))
    assert [e.ts for e in reversed(events) if "i" in e.data] == [2.0 + i for i in range(60)]
    assert [e.data for e in events if e.dedupe_key == "twice"] == [{"n": 1}]
    assert not [e for e in events if e.data.get("late")]
    assert events[0].raw == '{"Status": "生效中", "a": "\u00e9"}'


async def test_event_queries_include_events_still_in_flight(store: Store) -> None:
    # Events are read on a connection of their own; the executor does not wait for a create's event.
    futures = [store.add_event_nowait(Event(ts=1.0 + i, kind="create", data={"i": i})) for i in range(50)]
    assert [e.data["i"] for e in await store.events(kind="create")] == list(range(49, -1, -1))
    futures.append(store.add_event_nowait(Event(ts=99.0, kind="create")))
    assert await store.count_events(kind="create") == 51
    assert all(f.done() for f in futures)


async def test_a_failed_unawaited_put_is_undone_in_memory_and_reported_by_the_store(sqlite_store: Store) -> None:
    store = sqlite_store
    await store.put(seg("a"))
    await store._run_sql("PRAGMA query_only = 1")
    store.put_many_nowait([seg("a", state=SegmentState.RUNNING), seg("b")])
    assert store.segment(SegmentKey("a")).state is SegmentState.RUNNING  # type: ignore[union-attr]
    await store.flush()  # settles the failed batch; nobody awaited it, and nothing raises here
    assert store.segment(SegmentKey("a")).state is SegmentState.PENDING  # type: ignore[union-attr]
    assert store.segment(SegmentKey("b")) is None
    assert not store.healthy and store.last_error is not None and "readonly" in store.last_error
    await store._run_sql("PRAGMA query_only = 0")


async def test_writes_after_close_are_refused(store: Store) -> None:
    await store.put(seg("a"))
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreError, match="is closed"):
        await store.put(seg("a", state=SegmentState.RUNNING))
    assert store.segment(SegmentKey("a")).state is SegmentState.PENDING  # type: ignore[union-attr]
    with pytest.raises(StoreError, match="is closed"):
        await store.events()


# -- pruning ---------------------------------------------------------------------------------------------------------


async def test_prune_segments_drops_only_old_deleted_rows(store: Store) -> None:
    await store.put_many(
        [
            seg("old", state=SegmentState.DELETED, deleted_at=10.0),
            seg("recent", state=SegmentState.DELETED, deleted_at=500.0),
            seg("live", state=SegmentState.ENDED),
        ]
    )
    assert await store.prune_segments(100.0) == 1
    assert await store.prune_segments(100.0) == 0
    assert {r.key for r in store.segments(include_deleted=True)} == {"recent", "live"}
    store = await reopen(store)
    try:
        assert {r.key for r in store.segments(include_deleted=True)} == {"recent", "live"}
    finally:
        await store.close()


async def test_prune_events_in_chunks(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relayd.store.mirror, "PRUNE_CHUNK", 7)
    await asyncio.gather(*(store.add_event(Event(ts=float(i), kind="x", dedupe_key=str(i))) for i in range(40)))
    commits = store.commits
    assert await store.prune_events(30.0) == 30
    assert store.commits - commits == 5  # 7+7+7+7+2: other writes can interleave between chunks
    assert [e.ts for e in await store.events(limit=100)] == [float(i) for i in range(39, 29, -1)]
    assert await store.add_event(Event(ts=50.0, kind="x", dedupe_key="0")) is True  # pruned keys are forgotten


# -- open: lock, migrations, files -----------------------------------------------------------------------------------


async def test_second_open_in_the_same_process_is_locked(sqlite_store: Store) -> None:
    store = sqlite_store
    with pytest.raises(StoreLockedError, match=rf"locked by another relayd \(pid {os.getpid()}"):
        await Store.open(store.path)
    await store.close()
    again = await Store.open(store.path)
    await again.close()


async def test_open_creates_private_directory_and_file(state_path: Path) -> None:
    store = await Store.open(state_path)
    await store.close()
    assert stat.S_IMODE(state_path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(state_path.stat().st_mode) == 0o600
    assert state_path.with_name(state_path.name + ".lock").exists()


async def test_open_migrates_an_empty_version_zero_file(state_path: Path) -> None:
    state_path.parent.mkdir()
    sqlite3.connect(state_path).close()
    store = await Store.open(state_path)
    try:
        assert store.schema_version == 1
        await store.put(seg("a"))
    finally:
        await store.close()


async def test_open_refuses_a_newer_schema_and_releases_the_lock(state_path: Path) -> None:
    state_path.parent.mkdir()
    conn = sqlite3.connect(state_path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    for _ in range(2):  # the second attempt must fail the same way, not as "locked"
        with pytest.raises(StoreError, match=r"newer relayd \(schema 99 > 1\)") as info:
            await Store.open(state_path)
        assert not isinstance(info.value, StoreLockedError)


async def test_open_refuses_a_file_that_is_not_a_database(state_path: Path) -> None:
    state_path.parent.mkdir()
    state_path.write_bytes(b"definitely not sqlite" * 100)
    with pytest.raises(StoreError, match="not a relayd state file or is corrupted"):
        await Store.open(state_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
async def test_open_in_a_read_only_directory_names_the_fix(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="check that the relayd user can write"):
            await Store.open(tmp_path / "relayd.db")
    finally:
        tmp_path.chmod(0o700)


# -- volume ----------------------------------------------------------------------------------------------------------


async def test_thirty_thousand_segments_put_and_reload(store: Store) -> None:
    records = [seg(f"k{i:05d}", f"s{i % 300}", i * 10) for i in range(30_000)]
    started = time.perf_counter()
    await store.put_many(records)
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0  # typically well under a second; generous for a loaded 2-core CI box
    assert len(store.segments()) == 30_000
    store = await reopen(store)
    try:
        loaded = store.segments(ScheduleId("s7"))
        assert [r.start for r in loaded] == [i * 10 for i in range(7, 30_000, 300)]
        assert len(store.segments()) == 30_000
    finally:
        await store.close()


async def test_writes_of_the_same_rows_in_one_group_commit_leave_the_last_of_each(store: Any) -> None:
    """A pass's segment writes share a transaction (on PostgreSQL, consecutive upserts go as one multi-row statement,
    which may not touch a row twice): whatever shares a commit, each row ends as its last write left it, and each
    write's own result is what it would be alone."""
    await store.put(seg("k0"))  # one row already stored: the batch below updates it and inserts the others
    before = store.commits
    writes = [store.put(seg(f"k{i % 7}", attempts=i)) for i in range(40)]
    writes.append(store.put_many([seg("k1", attempts=100), seg("k8", attempts=101), seg("k1", attempts=102)]))
    writes += [store.set_meta("m", str(i)) for i in range(3)]
    writes.append(store.put(seg("k2", attempts=103)))
    results = await asyncio.gather(*writes)

    assert results == [None] * len(writes)
    assert store.commits - before == 1
    expected = {f"k{i % 7}": i for i in range(40)} | {"k1": 102, "k8": 101, "k2": 103}
    again = await reopen(store)
    try:
        assert {str(r.key): r.attempts for r in again.segments()} == expected
        assert again.meta("m") == "2"
    finally:
        await again.close()


async def test_events_and_segment_writes_interleaved_in_one_commit_each_get_their_own_result(store: Any) -> None:
    """A pass writes a segment, then an event, then a segment... (on PostgreSQL the writer sends each statement's
    calls together, events last): whatever order goes to the database, every write gets its own result back and a
    repeated event is refused where it repeats."""
    before = store.commits
    cb = {"kind": "callback", "segment_key": SegmentKey("a")}
    results = await asyncio.gather(
        store.add_event(Event(ts=1.0, dedupe_key="d1", **cb)),
        store.put(seg("a", attempts=1)),
        store.add_event(Event(ts=2.0, dedupe_key="d1", **cb)),  # a repeat of the first: refused
        store.put(seg("b")),
        store.set_meta("m", "1"),
        store.add_event(Event(ts=3.0, dedupe_key="d2", **cb)),
        store.put(seg("a", attempts=2)),
        store.add_event(Event(ts=4.0, **cb)),
    )

    assert store.commits - before == 1
    assert [results[i] for i in (0, 2, 5, 7)] == [True, False, True, True]
    assert [r.ts for r in await store.events(limit=10)] == [4.0, 3.0, 1.0]
    again = await reopen(store)
    try:
        assert again.segment(SegmentKey("a")).attempts == 2
    finally:
        await again.close()
