"""The in-memory mirror in front of a database, shared by every backend: reads from memory, writes durable.

Shape: small tables (segments, applied schedules, meta) are mirrored in memory and read synchronously; every
write changes the mirror at once and is queued to the backend's writer, and the awaiting caller resumes after the
commit that contains it (group commit, see ``writer.py``). The event history is append-mostly and unbounded, so it
is not mirrored: queries go to the database.

Consistency rule: memory equals the database except for writes still in flight. When a batch fails (or one of its
operations fails alone), the rows it touched are re-read and ``_settle`` puts each cache entry back — unless a
later write has replaced it since, in which case that later write decides (it either commits, or fails and is
undone the same way).

A backend (``core.Store`` for SQLite, ``postgres.store.PostgresStore``) gives this class its writer, its way of
reading, its SQL dialect and its error messages; everything an operation means lives here, once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from relayd.ids import ScheduleId, SegmentKey, TaskId
from relayd.store import schema
from relayd.store.batch import Call
from relayd.store.cache import DictCache, SegmentCache
from relayd.store.errors import StoreError, StoreWriteError
from relayd.store.journal import ChangeJournal
from relayd.store.records import AppliedSchedule, Event, SegmentRecord
from relayd.store.sql import Dialect
from relayd.store.writer import ABSENT, Op, Outcome, Rows, Touch, Writer, resolve

log = structlog.get_logger("relayd.store")

PRUNE_CHUNK = 5000
"""Rows deleted per transaction when pruning events, so other writes interleave with a large prune."""


class MirroredStore:
    """See the module docstring. Subclasses set up ``_writer`` and implement ``_read``, ``_write_error``,
    ``_describe`` and ``_close_backend``."""

    _writer: Writer

    def __init__(
        self,
        location: str,
        dialect: Dialect,
        loaded: tuple[list[SegmentRecord], dict[str, AppliedSchedule], dict[str, str]],
        *,
        clock: Callable[[], float],
    ) -> None:
        self.location = location
        """Where the state lives, safe to show (a path, or a database URL without its password)."""
        self._sql = dialect
        self._clock = clock
        self._replace_mirror(*loaded)
        self._closed = False
        self._healthy = True
        self.commits = 0
        """Committed write transactions since open (for tests and metrics)."""
        self.write_errors = 0
        """Failed write transactions since open."""
        self.pending = 0
        """Write operations queued and not yet settled."""
        self.last_error: str | None = None
        self.journal = ChangeJournal()
        """The schedules whose segments changed lately (the console's change signal)."""

    def _replace_mirror(
        self, segments: list[SegmentRecord], applied: dict[str, AppliedSchedule], meta: dict[str, str]
    ) -> None:
        self._segments = SegmentCache(segments)
        self._applied = DictCache(dict(applied))
        self._meta = DictCache(dict(meta))
        self._tables: dict[str, SegmentCache | DictCache] = {
            "segments": self._segments,
            "applied": self._applied,
            "meta": self._meta,
        }

    # -- backend hooks -----------------------------------------------------------------------------------------

    async def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _write_error(self, exc: BaseException) -> StoreWriteError:
        """The error every operation of a failed batch raises (names the store, the reason and the fix)."""
        raise NotImplementedError

    def _describe(self, exc: BaseException) -> str:
        """A one-line reason for ``exc`` with a fix, for the log."""
        raise NotImplementedError

    async def _close_backend(self) -> None:
        raise NotImplementedError

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Commit pending writes, stop the writer, release what the backend holds. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._writer.stop()
        await self._close_backend()
        log.info("store_closed", location=self.location, commits=self.commits)

    async def __aenter__(self) -> MirroredStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
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

    async def put_many(self, records: Iterable[SegmentRecord], *, stamp: bool = True) -> None:
        """Upsert many segments in one operation (one executemany inside the next batch).

        ``stamp=False`` keeps the records' own ``created_at``/``updated_at`` (copying state between stores)."""
        future = self._put_op(records, stamp)
        if future is not None:
            await future

    def put_many_nowait(self, records: Iterable[SegmentRecord]) -> None:
        """Upsert many segments without waiting for their commit: the mirror shows them at once, the write goes
        into the next batch, and a failure is logged and undone in the mirror like any failed write (nobody is
        told). For records no platform write depends on: the writer commits in order, so the next awaited write
        (a create's intent, say) is durable only after these are."""
        future = self._put_op(records, stamp=True)
        if future is not None:
            future.add_done_callback(_retrieve)

    def _put_op(self, records: Iterable[SegmentRecord], stamp: bool) -> asyncio.Future[Any] | None:
        now = self._clock()
        stamped = [self._stamp(record, now) for record in records] if stamp else list(records)
        if not stamped:
            return None
        rows = [schema.segment_row(r) for r in stamped]  # serialise first: a bad body fails before any change
        touches = tuple(self._change("segments", r.key, r) for r in stamped)
        if len(rows) == 1:  # the common case; execute is cheaper than executemany for one row
            op = self._op("execute", self._sql.upsert_segment, rows[0], touches=touches)
        else:
            op = self._op("executemany", self._sql.upsert_segment, rows, touches=touches)
        return self._submit_nowait(op)

    def _stamp(self, record: SegmentRecord, now: float) -> SegmentRecord:
        created = record.created_at
        if not created:
            known = self._segments.record(record.key)
            created = known.created_at if known is not None and known.created_at else now
        return record.stamped(created, now)

    async def prune_segments(self, deleted_before: float) -> int:
        """Drop DELETED segments whose ``deleted_at`` (else ``updated_at``) is before this; returns how many."""
        keys = [r.key for r in self._segments.prunable(deleted_before)]
        if not keys:
            return 0
        touches = tuple(self._change("segments", key, ABSENT) for key in keys)
        params = [(key,) for key in keys]
        await self._submit(self._op("executemany", self._sql.delete_segment, params, touches=touches))
        return len(keys)

    # -- events ------------------------------------------------------------------------------------------------

    async def add_event(self, event: Event) -> bool:
        """Append to the history; False (and no new row) when ``dedupe_key`` is already present."""
        result: bool = await self._submit_nowait(self._event_op(event))  # awaited: no _retrieve (callback hot path)
        return result

    def add_event_nowait(self, event: Event) -> asyncio.Future[bool]:
        """Queue an event; the future resolves after its commit. Failures are logged even if nobody awaits."""
        future = self._submit_nowait(self._event_op(event))
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
        """Newest first; page with ``before_id`` = the last id of the previous page. Includes every event added
        before the call, awaited or not (see ``_caught_up``)."""
        await self._caught_up()
        where, params = self._where(schedule_id=schedule_id, segment_key=segment_key, kind=kind, before_id=before_id)
        sql = f"SELECT {schema.EVENT_COLUMNS} FROM events{where} ORDER BY id DESC LIMIT {self._sql.param}"  # noqa: S608
        rows = await self._read_open(sql, (*params, max(0, limit)))
        return [schema.event_from_row(row) for row in rows]

    async def count_events(self, *, kind: str | None = None, dedupe_key: str | None = None) -> int:
        await self._caught_up()
        where, params = self._where(kind=kind, dedupe_key=dedupe_key)
        rows = await self._read_open(f"SELECT COUNT(*) FROM events{where}", params)  # noqa: S608 - fixed columns
        return int(rows[0][0])

    async def prune_events(self, older_than: float) -> int:
        """Delete events with ``ts`` before this, a chunk per transaction; returns how many."""
        total = 0
        while True:
            removed: int = await self._submit(self._op("execute", self._sql.prune_events, (older_than, PRUNE_CHUNK)))
            total += removed
            if removed < PRUNE_CHUNK:
                return total

    # -- applied config and meta -------------------------------------------------------------------------------

    def applied(self) -> dict[ScheduleId, AppliedSchedule]:
        return {ScheduleId(k): v for k, v in self._applied.items.items()}

    async def set_applied(self, item: AppliedSchedule) -> None:
        row = schema.applied_row(item)
        touch = self._change("applied", item.schedule_id, item)
        await self._submit(self._op("execute", self._sql.upsert_applied, row, touches=(touch,)))

    async def remove_applied(self, schedule_id: ScheduleId) -> None:
        touch = self._change("applied", schedule_id, ABSENT)
        await self._submit(self._op("execute", self._sql.delete_applied, (schedule_id,), touches=(touch,)))

    def meta(self, name: str) -> str | None:
        value = self._meta.get(name)
        return None if value is ABSENT else str(value)

    def meta_names(self) -> list[str]:
        return sorted(self._meta.items)

    async def set_meta(self, name: str, value: str) -> None:
        touch = self._change("meta", name, value)
        params = (schema.storable(name), schema.storable(value))
        await self._submit(self._op("execute", self._sql.upsert_meta, params, touches=(touch,)))

    # -- plumbing ----------------------------------------------------------------------------------------------

    def _op(self, verb: str, *args: Any, touches: tuple[Touch, ...] = (), fenced: bool = True) -> Op:
        keys = tuple((t.table, t.key) for t in touches)
        return Op(Call(verb, args, keys), touches=touches, fenced=fenced)

    def _event_op(self, event: Event) -> Op:
        op = self._op("execute", self._sql.insert_event, schema.event_row(event), fenced=False)
        op.convert = _inserted
        return op

    def _where(self, **filters: Any) -> tuple[str, tuple[Any, ...]]:
        """A WHERE clause from the non-None filters (column names are ours, values are bound)."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in filters.items():
            if value is None:
                continue
            clauses.append(f"id < {self._sql.param}" if column == "before_id" else f"{column} = {self._sql.param}")
            params.append(value)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)

    def _change(self, table: str, key: str, value: Any) -> Touch:
        """Apply a change to the cache now and remember how to undo it."""
        self._ensure_open()  # before touching the cache: a refused write must leave no trace
        cache = self._tables[table]
        previous = cache.get(key)
        cache.assign(key, value)
        if table == "segments":
            self._note_segment(value, previous)
        return Touch(table, key, value, previous)

    def _note_segment(self, value: Any, previous: Any) -> None:
        record = value if value is not ABSENT else previous
        if isinstance(record, SegmentRecord):
            self.journal.note(record.schedule_id)

    async def _submit(self, op: Op) -> Any:
        return await self._submit_nowait(op)

    def _ensure_open(self) -> None:
        if self._closed:
            raise StoreError(f"relayd state {self.location} is closed; this is a bug in the caller")

    def _submit_nowait(self, op: Op) -> asyncio.Future[Any]:
        self._ensure_open()
        op.future = asyncio.get_running_loop().create_future()
        self.pending += 1
        self._writer.submit(op)
        return op.future

    async def _caught_up(self) -> None:
        """Wait until the writes queued so far have settled. Events are read from the database, not the mirror,
        on a connection of their own, so without this a query would miss an event still in flight: the executor
        does not wait for the event of a create (nothing depends on it), and the history shown right after should
        still hold it. A failed write is not this read's error: the query then shows what is on disk."""
        if self.pending:
            with contextlib.suppress(StoreError):
                await self.flush()

    async def _read_open(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        self._ensure_open()
        return await self._read(sql, params)

    def _settle(self, outcome: Outcome) -> None:
        """On the loop: account for one batch, undo the cache changes of what failed, then wake its callers."""
        self.pending -= len(outcome.ops)
        if outcome.error is None:
            self._on_commit(wrote=any(not op.barrier for op in outcome.ops))
            failures = {i: self._record_failed(outcome, i, exc) for i, exc in outcome.failures.items()}
            resolve(outcome, None, failures)
        else:
            error = self._write_error(outcome.error)
            self._on_failure(outcome, error)
            resolve(outcome, error, {})

    def _on_commit(self, *, wrote: bool) -> None:
        self.commits += 1
        if wrote:  # a flush alone proves nothing about the disk
            self._writes_answered(proof="commit")

    def _writes_answered(self, proof: str = "heartbeat") -> None:
        """A write committed — one of ours, or on another connection to the same database (a heartbeat): the store
        takes writes again. Why the heartbeat counts: a standby writes nothing of its own after an outage, so
        without it its store stayed unhealthy (and ``/readyz`` 503) for good once the database was back."""
        if not self._healthy:
            self._healthy = True
            self.last_error = None
            log.info("store_write_recovered", location=self.location, proof=proof)

    def _on_failure(self, outcome: Outcome, error: StoreError) -> None:
        self.write_errors += 1
        self._healthy = False
        self.last_error = str(error)
        self._revert(outcome.ops, outcome.on_disk)
        assert outcome.error is not None
        log.error("store_write_failed", location=self.location, reason=self._describe(outcome.error),
                  ops=len(outcome.ops))  # fmt: skip

    def _record_failed(self, outcome: Outcome, index: int, exc: BaseException) -> StoreWriteError:
        """One operation failed alone: undo it, log it, and fail only its caller (the store stays healthy)."""
        self._revert([outcome.ops[index]], outcome.on_disk)
        reason = self._describe(exc)
        log.error("store_record_failed", location=self.location, reason=reason, verb=outcome.ops[index].call.verb)
        if isinstance(exc, StoreWriteError):  # already says what and why (FencedError)
            return exc
        return StoreWriteError(f"relayd state {self.location} refused one write: {reason}")

    def _revert(self, ops: list[Op], on_disk: Rows | None) -> None:
        tokens: dict[tuple[str, str], list[Any]] = {}
        earliest: dict[tuple[str, str], Any] = {}
        for op in ops:
            for t in op.touches:
                tokens.setdefault((t.table, t.key), []).append(t.token)
                earliest.setdefault((t.table, t.key), t.previous)
        for (table, key), written in tokens.items():
            cache = self._tables[table]
            current = cache.get(key)
            if any(current is token for token in written):  # not replaced by a later write since
                if on_disk is not None and (table, key) in on_disk:
                    cache.assign(key, schema.entry_from_row(table, on_disk[(table, key)]))
                else:
                    cache.assign(key, earliest[(table, key)])


def _inserted(rowcount: int) -> bool:
    return rowcount == 1


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a failure as seen (it was logged by ``_settle``), so unawaited nowait futures do not warn."""
    if not future.cancelled():
        future.exception()
