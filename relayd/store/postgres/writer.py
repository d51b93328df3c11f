"""The PostgreSQL writer: group commit on a pooled connection, the fencing check, and one bad write alone.

Shape: ``submit`` puts an operation on a queue; one task takes everything queued (up to ``batch_max``), runs it as
one transaction on a connection from the pool, and calls ``settle`` on the loop with the ``Outcome`` — the same
contract as the SQLite writer process, so the mirror cannot tell them apart. Writes that arrive while a transaction
runs share the next one.

Fencing: when a batch holds writes to the state a leader owns (``Op.fenced``), the transaction first reads the
lease row ``FOR SHARE``. A newer epoch than the store's own refuses those writes with FencedError (events still
commit: any instance may record a callback). The share lock makes a new leader's ``try_acquire`` (``FOR UPDATE``)
wait for the batch, so no write of an old epoch commits after a newer epoch is granted.

Outages: the pool reconnects by itself with backoff; while it cannot, getting a connection times out and the batch
fails like a disk error (StoreWriteError, the mirror goes back to what it knew, the store turns unhealthy). Nothing
is retried here: the engine retries at its own pace, and nothing is deleted because the database is away.

One bad write: when a transaction fails for a reason of one write (a value PostgreSQL refuses: out of range, a
constraint), it runs again with a savepoint around each write, so only that write fails.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from relayd.store.batch import Call
from relayd.store.errors import FencedError
from relayd.store.leases import fenced
from relayd.store.writer import Op, Outcome, Rows

log = structlog.get_logger("relayd.store")

CONNECT_TIMEOUT_S = 5.0
"""How long a batch waits for a connection before failing (the pool keeps reconnecting in the background)."""
_STOP: Any = object()
Conn = psycopg.AsyncConnection[Any]


def environmental(exc: BaseException) -> bool:
    """True when ``exc`` is about the database or the connection, not one write: the whole batch fails."""
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError, psycopg.InternalError, PoolTimeout,
                            OSError))  # fmt: skip


class PostgresWriter:
    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        *,
        batch_max: int,
        settle: Callable[[Outcome], None],
        reread: dict[str, str],
        namespace: str,
        epoch: Callable[[], int],
    ) -> None:
        self._pool = pool
        self._batch_max = max(1, batch_max)
        self._settle = settle
        self._reread = reread
        self._namespace = namespace
        self._epoch = epoch
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._main(), name="relayd-store-writer")

    def submit(self, op: Op) -> None:
        self._queue.put_nowait(op)

    async def stop(self) -> None:
        """Commit everything queued so far, then end the task."""
        self._queue.put_nowait(_STOP)
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _main(self) -> None:
        while True:
            batch, more = await self._take()
            if batch:
                self._settle(await self._run(batch))
            if not more:
                return

    async def _take(self) -> tuple[list[Op], bool]:
        first = await self._queue.get()
        if first is _STOP:
            return [], False
        batch: list[Op] = [first]
        while len(batch) < self._batch_max and not self._queue.empty():
            item = self._queue.get_nowait()
            if item is _STOP:
                return batch, False
            batch.append(item)
        return batch, True

    async def _run(self, batch: list[Op]) -> Outcome:
        """One transaction for ``batch``; never raises (the writer must outlive any failure)."""
        try:
            async with self._pool.connection(timeout=CONNECT_TIMEOUT_S) as conn:
                return await self._in_transaction(conn, batch)
        except Exception as exc:  # no connection, or it broke: the batch failed as a whole
            return Outcome(batch, error=exc, on_disk=None)

    async def _in_transaction(self, conn: Conn, batch: list[Op]) -> Outcome:
        try:
            results, failures = await self._transaction(conn, batch, alone=False)
        except Exception as exc:
            if environmental(exc):
                return Outcome(batch, error=exc, on_disk=await self._read_back(conn, batch))
            results, failures = await self._transaction(conn, batch, alone=True)
        failed = [batch[i] for i in failures]
        return Outcome(batch, results=results, failures=failures, on_disk=await self._read_back(conn, failed))

    async def _transaction(
        self, conn: Conn, batch: list[Op], *, alone: bool
    ) -> tuple[list[Any], dict[int, BaseException]]:
        results: list[Any] = []
        failures: dict[int, BaseException] = {}
        async with conn.transaction():
            refused = any(op.fenced for op in batch) and await self._fenced(conn)
            if not alone and not refused:
                return await _pipelined(conn, batch), failures
            for index, op in enumerate(batch):
                if op.fenced and refused:
                    failures[index] = self._fenced_error()
                    results.append(None)
                else:
                    results.append(await _alone(conn, op.call, index, failures))
        return results, failures

    async def _fenced(self, conn: Conn) -> bool:
        cur = await conn.execute("SELECT epoch FROM leases WHERE namespace = %s FOR SHARE", (self._namespace,))
        row = await cur.fetchone()
        return fenced(None if row is None else int(row[0]), self._epoch())

    def _fenced_error(self) -> FencedError:
        return FencedError(
            f"write refused: this instance's lease epoch {self._epoch()} is not the newest for namespace "
            f"{self._namespace!r}; another instance leads now — stop acting on the platform"
        )

    async def _read_back(self, conn: Conn, ops: list[Op]) -> Rows | None:
        """The stored row of every entry ``ops`` touched (None: no row); None if the database cannot be read."""
        keys = {(t.table, t.key) for op in ops for t in op.touches}
        if not keys:
            return {}
        rows: Rows = {}
        try:
            for table, key in keys:
                cur = await conn.execute(self._reread[table], (key,))
                row = await cur.fetchone()
                rows[(table, key)] = None if row is None else tuple(row)
        except Exception:  # the mirror falls back to the values it remembers
            with contextlib.suppress(Exception):
                await conn.rollback()
            return None
        return rows


async def _pipelined(conn: Conn, batch: list[Op]) -> list[Any]:
    """Every call of the batch sent in pipeline mode, the results read once at the end: no round trip (and no loop
    wake-up) per statement. Consecutive executes of one statement (a burst of callback events, a pass's segment
    writes) go as one ``executemany`` that still returns each row count (four times cheaper per row than one
    execute each). Why: run one by one, a batch of a few hundred writes waited on the database a few hundred times,
    and under a reconcile of 10,000 schedules callbacks queued behind it (p99 in the hundreds of ms). A statement that
    fails aborts the pipeline and raises here: the caller runs the batch again write by write."""
    runs = _runs([op.call for op in batch])
    async with conn.pipeline():
        sent = [(run, await _send(conn, run)) for run in runs]
    results: list[Any] = []
    for run, cur in sent:
        results.extend(await _results(run, cur))
    return results


def _runs(calls: list[Call]) -> list[list[Call]]:
    """The calls in order, consecutive executes of the same statement grouped."""
    runs: list[list[Call]] = []
    for call in calls:
        last = runs[-1] if runs else None
        if last and call.verb == "execute" and last[0].verb == "execute" and last[0].args[0] == call.args[0]:
            last.append(call)
        else:
            runs.append([call])
    return runs


async def _send(conn: Conn, run: list[Call]) -> psycopg.AsyncCursor[Any] | None:
    first = run[0]
    if first.verb == "noop":
        return None
    cur = conn.cursor()
    if len(run) > 1:
        await cur.executemany(first.args[0], [call.args[1] for call in run], returning=True)
    elif first.verb == "executemany":
        await cur.executemany(first.args[0], first.args[1])
    else:
        await cur.execute(first.args[0], first.args[1])
    return cur


async def _results(run: list[Call], cur: psycopg.AsyncCursor[Any] | None) -> list[Any]:
    """One result per call of the run: rows for a fetch, else the row count."""
    if cur is None:
        return [None] * len(run)
    async with cur:
        if run[0].verb == "fetchall":
            return [[tuple(row) for row in await cur.fetchall()]]
        counts = [cur.rowcount]
        while len(counts) < len(run) and cur.nextset():
            counts.append(cur.rowcount)
    if len(counts) != len(run):
        raise psycopg.InterfaceError(f"{len(run)} statements gave {len(counts)} results")
    return counts


async def _alone(conn: Conn, call: Call, index: int, failures: dict[int, BaseException]) -> Any:
    """Run ``call`` in a savepoint: a failure of its own is recorded and rolled back alone."""
    try:
        async with conn.transaction():
            return await _run_call(conn, call)
    except Exception as exc:
        if environmental(exc):
            raise
        failures[index] = exc
        return None


async def _run_call(conn: Conn, call: Call) -> Any:
    if call.verb == "noop":
        return None
    if call.verb == "executemany":
        async with conn.cursor() as cur:
            await cur.executemany(call.args[0], call.args[1])
            return cur.rowcount
    cur = await conn.execute(call.args[0], call.args[1])
    if call.verb == "fetchall":
        return [tuple(row) for row in await cur.fetchall()]
    return cur.rowcount
