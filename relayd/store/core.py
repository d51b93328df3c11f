"""The Store: relayd's durable memory, used from the event loop without ever blocking it.

Shape: small tables (segments, applied schedules, meta) are mirrored in memory and read synchronously; every
write changes the mirror at once and is queued to the writer — a child process by default (``writer_process.py``),
or a thread — and the awaiting caller resumes after the commit that contains it (group commit, see
``batch.py``). The event history is append-mostly and unbounded, so it is not mirrored: queries run on a separate
read-only connection in a worker thread.

Consistency rule: memory equals disk except for writes still in flight. When a batch fails (or the writer process
dies with it), the rows it touched are re-read and ``_settle`` puts each cache entry back — unless a later write
has replaced it since, in which case that later write decides (it either commits, or fails and is undone the same
way).

Opening (lock, WAL, migrations, loading the mirror) happens in a worker thread too; ``open`` is the only place
that can raise StoreLockedError or a schema error. The single-instance lock is held until ``close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import structlog

from relayd.ids import ScheduleId, SegmentKey, TaskId
from relayd.store import batch, schema
from relayd.store.batch import Call, Checkpointer, Hello
from relayd.store.cache import DictCache, SegmentCache
from relayd.store.errors import StoreError, explain, open_error, write_error
from relayd.store.locking import FileLock
from relayd.store.records import AppliedSchedule, Event, SegmentRecord
from relayd.store.writer import ABSENT, Op, Outcome, ThreadWriter, Touch, Writer, resolve
from relayd.store.writer_process import ProcessWriter

log = structlog.get_logger("relayd.store")

Synchronous = Literal["NORMAL", "FULL"]
WriterKind = Literal["process", "thread"]
_PRUNE_CHUNK = 5000
"""Rows deleted per transaction when pruning events, so other writes interleave with a large prune."""


@dataclass(slots=True)
class _Opened:
    """What the blocking part of ``open`` hands back to the loop."""

    lock: FileLock
    conn: sqlite3.Connection | None
    """The writer connection (thread writer only; the writer process opens its own)."""
    reader: sqlite3.Connection
    version: int
    segments: list[SegmentRecord]
    applied: dict[str, AppliedSchedule]
    meta: dict[str, str]


class Store:
    """See the module docstring. Build with ``await Store.open(path)``; close with ``await store.close()``."""

    def __init__(
        self,
        path: Path,
        opened: _Opened,
        *,
        clock: Callable[[], float],
        batch_max: int,
        synchronous: Synchronous = "NORMAL",
    ) -> None:
        self.path = path
        self.schema_version = opened.version
        self._clock = clock
        self._lock = opened.lock
        self._reader = opened.reader
        self._reader_lock = threading.Lock()
        self._segments = SegmentCache(opened.segments)
        self._applied = DictCache(dict(opened.applied))
        self._meta = DictCache(dict(opened.meta))
        self._tables: dict[str, SegmentCache | DictCache] = {
            "segments": self._segments,
            "applied": self._applied,
            "meta": self._meta,
        }
        loop = asyncio.get_running_loop()
        self._writer: Writer
        self.writer_kind: WriterKind = "thread" if opened.conn is not None else "process"
        if opened.conn is not None:
            checkpointer = Checkpointer(lambda: schema.connect(path, synchronous=synchronous))
            self._writer = ThreadWriter(
                opened.conn, loop, batch_max=batch_max, settle=self._settle, reread=schema.REREAD,
                checkpointer=checkpointer,
            )  # fmt: skip
        else:
            hello = Hello(schema.writer_pragmas(synchronous), schema.REREAD)
            self._writer = ProcessWriter(
                path, loop, batch_max=batch_max, settle=self._settle, hello=hello, reread=self._read_rows
            )
        self._closed = False
        self._healthy = True
        self.commits = 0
        """Committed write transactions since open (for tests and metrics)."""
        self.write_errors = 0
        """Failed write transactions since open."""
        self.pending = 0
        """Write operations queued and not yet settled."""
        self.last_error: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        batch_max: int = 1000,
        synchronous: Synchronous = "NORMAL",
        writer: WriterKind = "process",
    ) -> Store:
        """Lock, open (WAL), migrate and load ``path``; raise StoreLockedError or StoreError with the fix.

        ``writer``: "process" (the default) commits in a child process, off the event loop's GIL; "thread" in a
        thread of this process (needed only where spawning a process is not allowed).
        """
        path = Path(path)
        started = time.perf_counter()
        opened = await asyncio.to_thread(_open_blocking, path, synchronous, writer == "thread")
        store = cls(path, opened, clock=clock, batch_max=batch_max, synchronous=synchronous)
        try:
            await store._writer.start()
        except BaseException:
            await asyncio.to_thread(store._close_reader)
            opened.lock.release()
            raise
        log.info(
            "store_opened",
            path=str(path),
            schema_version=opened.version,
            segments=len(opened.segments),
            writer=writer,
            duration_s=round(time.perf_counter() - started, 3),
        )
        return store

    async def close(self) -> None:
        """Commit pending writes, stop the writer thread, release the lock. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._writer.stop()
        await asyncio.to_thread(self._close_reader)
        self._lock.release()
        log.info("store_closed", path=str(self.path), commits=self.commits)

    def _close_reader(self) -> None:
        with self._reader_lock, contextlib.suppress(sqlite3.Error):
            self._reader.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def healthy(self) -> bool:
        """False after a write error until a later write commits."""
        return self._healthy

    async def flush(self) -> None:
        """Wait until everything queued so far is committed (or has failed and been reported to its caller)."""
        await self._submit(Op(Call("noop"), barrier=True))

    # -- segments ----------------------------------------------------------------------------------------------

    def segment(self, key: SegmentKey) -> SegmentRecord | None:
        return self._segments.record(key)

    def segments(self, schedule_id: ScheduleId | None = None, include_deleted: bool = False) -> list[SegmentRecord]:
        """Segments ordered by (schedule_id, start); DELETED ones only when asked."""
        return self._segments.select(schedule_id, include_deleted)

    def by_task_id(self, task_id: TaskId) -> SegmentRecord | None:
        return self._segments.by_task(task_id)

    def schedule_ids(self) -> set[ScheduleId]:
        """Schedules with any non-deleted segment."""
        return self._segments.schedule_ids()

    async def put(self, record: SegmentRecord) -> None:
        """Upsert one segment; stamps ``updated_at`` (and ``created_at`` when 0) with the store's clock."""
        await self.put_many((record,))

    async def put_many(self, records: Iterable[SegmentRecord]) -> None:
        """Upsert many segments in one operation (one executemany inside the next batch)."""
        now = self._clock()
        stamped = [self._stamp(record, now) for record in records]
        if not stamped:
            return
        rows = [schema.segment_row(r) for r in stamped]  # serialise first: a bad body fails before any change
        touches = tuple(self._change("segments", r.key, r) for r in stamped)
        if len(rows) == 1:  # the common case; execute is cheaper than executemany for one row
            op = _op("execute", schema.UPSERT_SEGMENT, rows[0], touches=touches)
        else:
            op = _op("executemany", schema.UPSERT_SEGMENT, rows, touches=touches)
        await self._submit(op)

    def _stamp(self, record: SegmentRecord, now: float) -> SegmentRecord:
        created = record.created_at
        if not created:
            known = self._segments.record(record.key)
            created = known.created_at if known is not None and known.created_at else now
        return replace(record, created_at=created, updated_at=now)

    async def prune_segments(self, deleted_before: float) -> int:
        """Drop DELETED segments whose ``deleted_at`` (else ``updated_at``) is before this; returns how many."""
        keys = [r.key for r in self._segments.prunable(deleted_before)]
        if not keys:
            return 0
        touches = tuple(self._change("segments", key, ABSENT) for key in keys)
        params = [(key,) for key in keys]
        await self._submit(_op("executemany", "DELETE FROM segments WHERE key = ?", params, touches=touches))
        return len(keys)

    # -- events ------------------------------------------------------------------------------------------------

    async def add_event(self, event: Event) -> bool:
        """Append to the history; False (and no new row) when ``dedupe_key`` is already present."""
        result: bool = await self._submit_nowait(_event_op(event))  # awaited: no _retrieve (the callback hot path)
        return result

    def add_event_nowait(self, event: Event) -> asyncio.Future[bool]:
        """Queue an event; the future resolves after its commit. Failures are logged even if nobody awaits."""
        future = self._submit_nowait(_event_op(event))
        future.add_done_callback(_retrieve)
        return future

    async def events(
        self,
        *,
        schedule_id: ScheduleId | None = None,
        segment_key: SegmentKey | None = None,
        kind: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[Event]:
        """Newest first; page with ``before_id`` = the last id of the previous page."""
        where, params = _where(schedule_id=schedule_id, segment_key=segment_key, kind=kind, before_id=before_id)
        sql = f"SELECT {schema.EVENT_COLUMNS} FROM events{where} ORDER BY id DESC LIMIT ?"  # noqa: S608 - fixed columns
        rows = await self._read(sql, (*params, max(0, limit)))
        return [schema.event_from_row(row) for row in rows]

    async def count_events(self, *, kind: str | None = None, dedupe_key: str | None = None) -> int:
        where, params = _where(kind=kind, dedupe_key=dedupe_key)
        rows = await self._read(f"SELECT COUNT(*) FROM events{where}", params)  # noqa: S608 - fixed columns
        return int(rows[0][0])

    async def prune_events(self, older_than: float) -> int:
        """Delete events with ``ts`` before this, a chunk per transaction; returns how many."""
        total = 0
        while True:
            removed: int = await self._submit(_op("execute", _PRUNE_EVENTS, (older_than, _PRUNE_CHUNK)))
            total += removed
            if removed < _PRUNE_CHUNK:
                return total

    # -- applied config and meta -------------------------------------------------------------------------------

    def applied(self) -> dict[ScheduleId, AppliedSchedule]:
        return {ScheduleId(k): v for k, v in self._applied.items.items()}

    async def set_applied(self, item: AppliedSchedule) -> None:
        row = schema.applied_row(item)
        touch = self._change("applied", item.schedule_id, item)
        await self._submit(_op("execute", schema.UPSERT_APPLIED, row, touches=(touch,)))

    async def remove_applied(self, schedule_id: ScheduleId) -> None:
        touch = self._change("applied", schedule_id, ABSENT)
        sql = "DELETE FROM applied WHERE schedule_id = ?"
        await self._submit(_op("execute", sql, (schedule_id,), touches=(touch,)))

    def meta(self, name: str) -> str | None:
        value = self._meta.get(name)
        return None if value is ABSENT else str(value)

    async def set_meta(self, name: str, value: str) -> None:
        touch = self._change("meta", name, value)
        await self._submit(_op("execute", schema.UPSERT_META, (name, value), touches=(touch,)))

    # -- plumbing ----------------------------------------------------------------------------------------------

    def _change(self, table: str, key: str, value: Any) -> Touch:
        """Apply a change to the cache now and remember how to undo it."""
        self._ensure_open()  # before touching the cache: a refused write must leave no trace
        cache = self._tables[table]
        previous = cache.get(key)
        cache.assign(key, value)
        return Touch(table, key, value, previous)

    async def _submit(self, op: Op) -> Any:
        return await self._submit_nowait(op)

    def _ensure_open(self) -> None:
        if self._closed:
            raise StoreError(f"relayd state file {self.path} is closed; this is a bug in the caller")

    def _submit_nowait(self, op: Op) -> asyncio.Future[Any]:
        self._ensure_open()
        op.future = asyncio.get_running_loop().create_future()
        self.pending += 1
        self._writer.submit(op)
        return op.future

    def _settle(self, outcome: Outcome) -> None:
        """On the loop: account for one batch, undo its cache changes if it failed, then wake its callers."""
        self.pending -= len(outcome.ops)
        error = None if outcome.error is None else write_error(self.path, outcome.error)
        if error is None:
            self._on_commit(wrote=any(not op.barrier for op in outcome.ops))
        else:
            self._on_failure(outcome, error)
        resolve(outcome, error)

    def _on_commit(self, *, wrote: bool) -> None:
        self.commits += 1
        if wrote and not self._healthy:  # a flush alone proves nothing about the disk
            self._healthy = True
            self.last_error = None
            log.info("store_write_recovered", path=str(self.path))

    def _on_failure(self, outcome: Outcome, error: StoreError) -> None:
        self.write_errors += 1
        self._healthy = False
        self.last_error = str(error)
        self._revert(outcome)
        assert outcome.error is not None
        log.error("store_write_failed", path=str(self.path), reason=explain(self.path, outcome.error),
                  ops=len(outcome.ops))  # fmt: skip

    def _revert(self, outcome: Outcome) -> None:
        tokens: dict[tuple[str, str], list[Any]] = {}
        earliest: dict[tuple[str, str], Any] = {}
        for op in outcome.ops:
            for t in op.touches:
                tokens.setdefault((t.table, t.key), []).append(t.token)
                earliest.setdefault((t.table, t.key), t.previous)
        for (table, key), written in tokens.items():
            cache = self._tables[table]
            current = cache.get(key)
            if any(current is token for token in written):  # not replaced by a later write since
                on_disk = outcome.on_disk
                if on_disk is not None and (table, key) in on_disk:
                    cache.assign(key, schema.entry_from_row(table, on_disk[(table, key)]))
                else:
                    cache.assign(key, earliest[(table, key)])

    async def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        self._ensure_open()
        return await asyncio.to_thread(self._read_blocking, sql, params)

    def _read_blocking(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._reader_lock:
            try:
                return self._reader.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read relayd state file {self.path}: {explain(self.path, exc)}") from exc

    def _read_rows(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[Any, ...] | None] | None:
        """Blocking: the on-disk rows of these cache entries, through the read-only connection (None: unreadable)."""
        with self._reader_lock:
            return batch.read_rows(self._reader, keys, schema.REREAD)

    async def _run_sql(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on the writer connection inside a batch (tests use it to simulate a full disk)."""
        rows: list[tuple[Any, ...]] = await self._submit(_op("fetchall", sql, params))
        return rows

    async def _run_in_writer(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``fn`` on the writer thread's connection inside a batch (a test hook; thread writer only)."""
        if self.writer_kind != "thread":
            raise StoreError("only the thread writer runs callables; use _run_sql with the writer process")
        return await self._submit(Op(fn))


_PRUNE_EVENTS = "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ts < ? ORDER BY id LIMIT ?)"


def _op(verb: str, *args: Any, touches: tuple[Touch, ...] = (), convert: Callable[[Any], Any] | None = None) -> Op:
    keys = tuple((t.table, t.key) for t in touches)
    return Op(Call(verb, args, keys), touches=touches, convert=convert)


def _event_op(event: Event) -> Op:
    return _op("execute", schema.INSERT_EVENT, schema.event_row(event), convert=_inserted)


def _inserted(rowcount: int) -> bool:
    return rowcount == 1


def _where(**filters: Any) -> tuple[str, tuple[Any, ...]]:
    """A WHERE clause from the non-None filters (column names are ours, values are bound)."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in filters.items():
        if value is None:
            continue
        clauses.append("id < ?" if column == "before_id" else f"{column} = ?")
        params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a failure as seen (it was logged by ``_settle``), so unawaited nowait futures do not warn."""
    if not future.cancelled():
        future.exception()


def _open_blocking(path: Path, synchronous: Synchronous, keep_writer: bool) -> _Opened:
    _ensure_dir(path)
    lock = FileLock.acquire(path)
    conn: sqlite3.Connection | None = None
    try:
        _ensure_file(path)
        conn = schema.connect(path, synchronous=synchronous)
        version = schema.migrate(conn, path)
        segments, applied, meta = schema.load_segments(conn), schema.load_applied(conn), schema.load_meta(conn)
        reader = schema.connect(path, synchronous=synchronous, read_only=True)
        if not keep_writer:  # the writer process opens its own connection
            conn.close()
            conn = None
    except BaseException as exc:
        if conn is not None:
            conn.close()
        lock.release()
        if isinstance(exc, (sqlite3.Error, OSError)):
            raise open_error(path, exc) from exc
        raise
    return _Opened(lock, conn, reader, version, segments, applied, meta)


def _ensure_dir(path: Path) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise open_error(path, exc) from exc


def _ensure_file(path: Path) -> None:
    """Create the state file owner-only before SQLite does: it holds the callback secret (-wal/-shm inherit)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.close(fd)
