"""Write operations, their batches' outcomes, and the writer thread: one connection, a queue, group commit.

The daemon writes through the writer *process* (``writer_process.py``), which runs the same batches as this thread
(``batch.run_batch``) without sharing the event loop's GIL; the thread remains for in-process use (``relayd plan
--live`` never writes; tests use it to hold a batch open) and as the ``state_writer = "thread"`` fallback.

Why a thread and batches: a commit costs a WAL append (and with ``synchronous=FULL`` an fsync); one commit per
callback would cap relayd at a few hundred events per second and stall the event loop. Instead the loop puts
operations on a queue and awaits a future; the thread takes everything queued (up to ``batch_max``), runs it in
one transaction, commits once, and hands the whole batch back to the loop with a single
``call_soon_threadsafe``. Thousands of concurrent writers therefore share a handful of commits, and the loop never
touches the disk.

Why all-or-nothing batches: a write error here is a property of the disk (full, read-only, I/O error), not of one
operation, so the transaction is rolled back and every operation in it fails with the same StoreWriteError.
Before handing the failure back, the thread re-reads the rows the batch had touched so the loop can put its
in-memory cache back to what is on disk. The thread stays alive; a later batch that commits makes the store
healthy again.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from relayd.store.batch import Call, Checkpointer, run_batch

ABSENT: Any = object()
"""Cache value meaning "no entry" (a removal, or a key not on disk)."""


@dataclass(frozen=True, slots=True)
class Touch:
    """One cache entry an operation changed: enough to undo it if the operation's batch fails."""

    table: str
    key: str
    token: Any
    """The value the operation put in the cache (ABSENT for a removal); compared by identity."""
    previous: Any
    """The cache value before; used only if the disk cannot be re-read."""


@dataclass(slots=True, eq=False)
class Op:
    """A write operation: ``call`` runs inside a batch transaction in the writer; ``convert`` maps its result."""

    call: Call | Callable[[sqlite3.Connection], Any]
    """Data for either writer; a plain callable only works with the thread writer (a test hook)."""
    future: asyncio.Future[Any] | None = None
    touches: tuple[Touch, ...] = ()
    barrier: bool = False
    """A flush marker: resolved with False instead of failing when its batch fails."""
    convert: Callable[[Any], Any] | None = None


@dataclass(slots=True)
class Outcome:
    """What the loop learns about one batch."""

    ops: list[Op]
    results: list[Any] = field(default_factory=list)
    error: BaseException | None = None
    on_disk: dict[tuple[str, str], tuple[Any, ...] | None] | None = None
    """For a failed batch: the current row (None: no row) of every touched entry; None if unreadable."""


class Writer(Protocol):
    """What the Store needs of a writer: start, take operations, settle each batch on the loop, stop."""

    async def start(self) -> None: ...
    def submit(self, op: Op) -> None: ...
    async def stop(self) -> None: ...


_STOP = object()


class ThreadWriter:
    """Owns ``conn`` on a dedicated thread; ``settle`` is called on the loop once per batch."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        loop: asyncio.AbstractEventLoop,
        *,
        batch_max: int,
        settle: Callable[[Outcome], None],
        reread: dict[str, str],
        checkpointer: Checkpointer,
    ) -> None:
        self._conn = conn
        self._checkpointer = checkpointer
        self._loop = loop
        self._batch_max = max(1, batch_max)
        self._settle = settle
        self._reread = reread
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stopped: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(target=self._main, name="relayd-store-writer", daemon=True)

    async def start(self) -> None:
        self._checkpointer.start()
        self._thread.start()

    def submit(self, op: Op) -> None:
        self._queue.put(op)

    async def stop(self) -> None:
        """Commit everything queued so far, close the connection, and end the thread."""
        self._queue.put(_STOP)
        await asyncio.shield(self._stopped)

    def _main(self) -> None:
        try:
            while self._serve_one_batch():
                pass
        finally:
            self._checkpointer.stop()
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._post(_resolve_stopped, self._stopped)

    def _serve_one_batch(self) -> bool:
        """Run one batch; False once the stop marker was seen (after running what preceded it)."""
        batch, more = self._take_batch()
        if batch:
            self._post(self._settle, self._execute(batch))
        return more

    def _take_batch(self) -> tuple[list[Op], bool]:
        first = self._queue.get()
        if first is _STOP:
            return [], False
        batch: list[Op] = [first]
        while len(batch) < self._batch_max:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, False
            batch.append(item)
        return batch, True

    def _execute(self, batch: list[Op]) -> Outcome:
        reply = run_batch(self._conn, [op.call for op in batch], self._reread)
        if reply[0] == "ok":
            self._checkpointer.committed()
            return Outcome(batch, results=reply[1])
        return Outcome(batch, error=reply[1], on_disk=reply[2])

    def _post(self, callback: Callable[[Any], None], arg: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is left to tell
            self._loop.call_soon_threadsafe(callback, arg)


def _resolve_stopped(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def resolve(outcome: Outcome, error: BaseException | None) -> None:
    """Settle every op's future: its result, or ``error`` for a failed batch (barriers get False)."""
    for index, op in enumerate(outcome.ops):
        fut = op.future
        if fut is None or fut.done():
            continue
        if error is None:
            result = outcome.results[index]
            fut.set_result(op.convert(result) if op.convert is not None else result)
        elif op.barrier:
            fut.set_result(False)
        else:
            fut.set_exception(error)
