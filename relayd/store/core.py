"""The SQLite store: relayd's durable memory in one WAL file, written by a child process, read from memory.

The mirror and the meaning of every operation are in ``mirror.py``; this module adds what is SQLite's own: the
single-instance lock, opening (WAL, migrations, loading the mirror — in a worker thread, so ``open`` never blocks
the loop and is the only place that can raise StoreLockedError or a schema error), the writer process
(``writer_process.py``; it commits off the event loop's GIL), and event queries on a separate read-only connection
in a worker thread. The lock is held until ``close``.

Why no writer thread any more: measured on the same machine, the writer thread and the writer process commit events
at the same rate (``bench/store_writes.py``: 11-15k vs 14-20k events/s with 100 writers), and the one place that
wanted to avoid starting a process, ``relayd plan --live``, only reads; it opens the store with ``read_only=True``,
which starts no writer at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import structlog

from relayd.store import batch, schema
from relayd.store.batch import Call, Hello
from relayd.store.errors import StoreError, StoreWriteError, explain, open_error, write_error
from relayd.store.leases import SingleLeader
from relayd.store.locking import FileLock
from relayd.store.mirror import MirroredStore
from relayd.store.records import AppliedSchedule, SegmentRecord
from relayd.store.sql import SQLITE
from relayd.store.writer import Op, Outcome
from relayd.store.writer_process import Child, ProcessWriter

log = structlog.get_logger("relayd.store")

Synchronous = Literal["NORMAL", "FULL"]


@dataclass(slots=True)
class _Opened:
    """What the blocking part of ``open`` hands back to the loop."""

    lock: FileLock
    reader: sqlite3.Connection
    version: int
    segments: list[SegmentRecord]
    applied: dict[str, AppliedSchedule]
    meta: dict[str, str]


class _ReadOnlyWriter:
    """The writer of a store opened read-only: every write is refused before it changes anything."""

    def __init__(self, path: Path, settle: Callable[[Outcome], None]) -> None:
        self._path = path
        self._settle = settle

    async def start(self) -> None:
        return None

    def submit(self, op: Op) -> None:
        refused = StoreWriteError(f"relayd state file {self._path} was opened read-only")
        asyncio.get_running_loop().call_soon(self._settle, Outcome([op], error=refused, on_disk=None))

    async def stop(self) -> None:
        return None


class Store(SingleLeader, MirroredStore):
    """The SQLite store. Build with ``await Store.open(path)``; close with ``await store.close()``."""

    def __init__(
        self,
        path: Path,
        opened: _Opened,
        *,
        clock: Callable[[], float],
        batch_max: int,
        synchronous: Synchronous = "NORMAL",
        read_only: bool = False,
    ) -> None:
        super().__init__(str(path), SQLITE, (opened.segments, opened.applied, opened.meta), clock=clock)
        self.path = path
        self.schema_version = opened.version
        self._lock = opened.lock
        self._reader = opened.reader
        self._reader_lock = threading.Lock()
        loop = asyncio.get_running_loop()
        if read_only:
            self._writer = _ReadOnlyWriter(path, self._settle)
        else:
            hello = Hello(schema.writer_pragmas(synchronous), SQLITE.reread)
            child = Child(("-I", "-S", batch.__file__, str(path)), (hello.pragmas, hello.reread),
                          f"relayd state file {path}", lambda exc: open_error(path, exc))  # fmt: skip
            self._writer = ProcessWriter(
                child, loop, batch_max=batch_max, settle=self._settle,
                reread=lambda keys: asyncio.to_thread(self._read_rows, keys),
            )  # fmt: skip

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        batch_max: int = 1000,
        synchronous: Synchronous = "NORMAL",
        read_only: bool = False,
    ) -> Store:
        """Lock, open (WAL), migrate and load ``path``; raise StoreLockedError or StoreError with the fix.

        ``read_only``: start no writer (every write fails with StoreError); for commands that only look.
        """
        path = Path(path)
        started = time.perf_counter()
        opened = await asyncio.to_thread(_open_blocking, path, synchronous)
        store = cls(path, opened, clock=clock, batch_max=batch_max, synchronous=synchronous, read_only=read_only)
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
            read_only=read_only,
            duration_s=round(time.perf_counter() - started, 3),
        )
        return store

    async def __aenter__(self) -> Store:
        return self

    async def _close_backend(self) -> None:
        await asyncio.to_thread(self._close_reader)
        self._lock.release()

    def _close_reader(self) -> None:
        with self._reader_lock, contextlib.suppress(sqlite3.Error):
            self._reader.close()

    def _write_error(self, exc: BaseException) -> StoreWriteError:
        return exc if isinstance(exc, StoreWriteError) else write_error(self.path, exc)

    def _describe(self, exc: BaseException) -> str:
        return explain(self.path, exc)

    async def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
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
            return batch.read_rows(self._reader, keys, SQLITE.reread)

    async def _run_sql(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on the writer connection inside a batch (tests use it to simulate a full disk)."""
        rows: list[tuple[Any, ...]] = await self._submit(Op(Call("fetchall", (sql, params))))
        return rows

    def _run_call(self, verb: str, *args: Any) -> asyncio.Future[Any]:
        """Queue one of the writer's test seams (``batch.VERBS``: "hold", "fail") as an operation of its own."""
        return self._submit_nowait(Op(Call(verb, args)))


def _open_blocking(path: Path, synchronous: Synchronous) -> _Opened:
    _ensure_dir(path)
    lock = FileLock.acquire(path)
    conn: sqlite3.Connection | None = None
    try:
        _ensure_file(path)
        conn = schema.connect(path, synchronous=synchronous)
        version = schema.migrate(conn, path)
        segments, applied, meta = schema.load_segments(conn), schema.load_applied(conn), schema.load_meta(conn)
        reader = schema.connect(path, synchronous=synchronous, read_only=True)
        conn.close()  # the writer process opens its own connection
    except BaseException as exc:
        if conn is not None:
            conn.close()
        lock.release()
        if isinstance(exc, (sqlite3.Error, OSError)):
            raise open_error(path, exc) from exc
        raise
    return _Opened(lock, reader, version, segments, applied, meta)


def _ensure_dir(path: Path) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise open_error(path, exc) from exc


def _ensure_file(path: Path) -> None:
    """Create the state file owner-only before SQLite does: it holds the callback secret (-wal/-shm inherit)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.close(fd)
