"""The PostgreSQL store's writer process: group commit, the fencing check and one bad write alone, off the loop.

Why a process: psycopg's per-statement Python work (building queries, the pipeline's bookkeeping) ran on the event
loop and took about a third of its time during start-up with 10,000 schedules, competing with callbacks; a thread
would have had to win the GIL back from the busy loop for every statement (why SQLite's writer is a process too,
see ``batch.py``). This file is the child's script: ``batch.serve`` (the framing, replies and stdin-EOF shutdown of
the SQLite writer) with a runner on a *sync* psycopg connection. It imports psycopg and ``batch.py`` only, never
relayd, so the child starts quickly; the daemon's side is the same ``ProcessWriter`` as SQLite's.

Set-up frame: ``(conninfo, schema, namespace, reread, reorder, bulk)`` down the pipe (the password never on a command
line). Each batch frame carries the store's fencing epoch at the time it was sent.

One transaction per batch, ``BEGIN`` to ``COMMIT`` in one pipeline (one round trip to the server, not one per
statement: a commit under load took ~30 % less time than with BEGIN, the batch and COMMIT as three), consecutive
executes of one statement as one ``executemany`` that still returns each row count, or as one statement over a JSON
array of their rows (``postgres.schema.BULK``: event inserts, segment upserts). A batch that is a single unfenced
statement (most batches under callback load: one event, or a burst of them) goes without the pipeline and the
BEGIN and COMMIT: in autocommit a statement is a transaction of its own, and the writer's CPU per such batch halved.

Fencing: when a batch holds writes to the state a leader owns (``Call.fenced``), the transaction first reads the
lease row ``FOR SHARE`` through a guard (``FENCE_GUARD``) that fails when a newer epoch than the batch's holds the
lease. That aborts the pipeline, and the batch runs again write by write: the lease is read once more, the writes it
owns are refused (their failure is ``FENCED``, which the daemon turns into FencedError) and events still commit. The
share lock makes a new leader's ``try_acquire`` (``FOR UPDATE``) wait for the batch, so no write of an old epoch
commits after a newer epoch is granted.

Failures: a write that fails for a reason of its own (a value PostgreSQL refuses, a constraint) sends the batch
again with a savepoint around each write, so only that one fails. A lost connection or a database that is down fails
the whole batch (the rows it touched are read back, or None if unreadable); the next batch reconnects, waiting at
most ``CONNECT_TIMEOUT_S``, and after a failed attempt the child waits a growing delay before trying again (batches
meanwhile fail at once). Nothing is retried here: the engine retries at its own pace.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg_pool import PoolTimeout

if TYPE_CHECKING or __package__:
    from relayd.store import batch
else:  # run as the writer process's script: load the stdlib-only sibling by path, without relayd
    _spec = importlib.util.spec_from_file_location("batch", os.path.join(os.path.dirname(__file__), "..", "batch.py"))
    assert _spec is not None and _spec.loader is not None
    batch = sys.modules["batch"] = importlib.util.module_from_spec(_spec)  # dataclasses look their module up
    _spec.loader.exec_module(batch)

Call = batch.Call
Reply = batch.Reply
Rows = dict[tuple[str, str], tuple[Any, ...] | None]

CONNECT_TIMEOUT_S = 5
"""How long a batch waits for a connection before failing (psycopg's ``connect_timeout``: whole seconds)."""
RECONNECT_BASE_S = 0.5
RECONNECT_CAP_S = 2.0
"""Batches that arrive within the backoff after a failed connect fail at once; kept short, since every write in that
window fails though the database may be back (a leader elected just after a database restart lost its first passes)."""
IDLE_CHECK_S = 1.0
"""A connection idle longer than this is checked (one empty query) before a batch: a server restart meanwhile
would otherwise fail the batch."""
Reorder = tuple[tuple[str, ...], tuple[str, ...]]
"""(statements whose calls may go after the rest of their batch, statements in a batch that forbid it)."""
KEEP_ORDER: Reorder = ((), ())
Bulk = dict[str, tuple[str, int]]
"""Statements whose runs go as one statement over a JSON array of their rows, each row an array of its values:
{statement: (bulk statement, index of the dedupe column)}. The bulk statement returns the dedupe key of every row it
wrote."""
FENCED = "fenced"
"""The failure of a write refused by fencing (the daemon builds the FencedError: this script cannot import it)."""


def environmental(exc: BaseException) -> bool:
    """True when ``exc`` is about the database or the connection, not one write: the whole batch fails."""
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError, psycopg.InternalError, PoolTimeout,
                            OSError))  # fmt: skip


class Connection:
    """The child's one connection: made on demand, checked after idling, re-made with a growing delay."""

    def __init__(self, conninfo: str, schema: str) -> None:
        self._conninfo = conninfo
        self._schema = schema
        self._conn: psycopg.Connection[Any] | None = None
        self._used_at = 0.0
        self._failures = 0
        self._retry_at = 0.0
        self._last_error = ""

    def get(self) -> psycopg.Connection[Any]:
        """A working connection, or psycopg.OperationalError (at once while waiting to retry)."""
        now = time.monotonic()
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken and self._alive(conn, now):
            self._used_at = now
            return conn
        self.close()
        if now < self._retry_at:
            raise psycopg.OperationalError(self._last_error)
        try:
            self._conn = psycopg.connect(
                self._conninfo, autocommit=True, options=f"-c search_path={self._schema}",
                connect_timeout=CONNECT_TIMEOUT_S,
            )  # fmt: skip
        except psycopg.Error as exc:
            self._failures += 1
            self._retry_at = time.monotonic() + min(RECONNECT_CAP_S, RECONNECT_BASE_S * 2 ** (self._failures - 1))
            self._last_error = str(exc) or type(exc).__name__
            raise
        self._failures = 0
        self._used_at = time.monotonic()
        return self._conn

    def _alive(self, conn: psycopg.Connection[Any], now: float) -> bool:
        if now - self._used_at < IDLE_CHECK_S:
            return True
        try:
            conn.execute("")
        except psycopg.Error:
            return False
        return True

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None


class PostgresRunner:
    """Runs each batch as one transaction (see the module docstring); never raises."""

    def __init__(
        self,
        connection: Connection,
        namespace: str,
        reread: dict[str, str],
        reorder: Reorder = KEEP_ORDER,
        bulk: Bulk | None = None,
    ) -> None:
        self._connection = connection
        self._namespace = namespace
        self._reread = reread
        self._reorder = reorder
        """Which statements' calls may be sent after the rest of their batch, and which forbid it (``send_order``)."""
        self._bulk = bulk or {}

    def run(self, calls: Sequence[Call], context: Any) -> Reply:
        epoch = int(context or 0)
        try:
            conn = self._connection.get()
        except Exception as exc:  # no connection: the batch failed as a whole, and nothing can be read back
            return ("err", exc, None)
        guard = (self._namespace, epoch) if any(call.fenced for call in calls) else None
        failures: dict[int, Any] = {}
        try:
            alone = one_statement(calls, self._bulk)
            if alone is not None:
                results = _autocommit(conn, calls, alone, self._bulk)
            else:
                results = _one_trip(conn, calls, self._reorder, guard, self._bulk)
        except Exception as exc:  # a write failed, or the guard: fenced
            if environmental(exc):
                return ("err", exc, self._read_back(conn, calls))
            try:
                results, failures = self._write_by_write(conn, calls, epoch)
            except Exception as again:  # environmental on the way: the whole batch fails as before
                return ("err", again, self._read_back(conn, calls))
        failed = [calls[i] for i, failure in failures.items() if failure is not FENCED]
        return ("ok", results, failures, self._read_back(conn, failed))

    def close(self) -> None:
        self._connection.close()

    def _write_by_write(
        self, conn: psycopg.Connection[Any], calls: Sequence[Call], epoch: int
    ) -> tuple[list[Any], dict[int, Any]]:
        """The batch as one transaction with a savepoint around each write: the fenced ones refused if a newer
        epoch holds the lease, a write that fails for a reason of its own failing alone."""
        results: list[Any] = []
        failures: dict[int, Any] = {}
        with conn.transaction():
            refused = any(call.fenced for call in calls) and self._fenced(conn, epoch)
            for index, call in enumerate(calls):
                if call.fenced and refused:
                    failures[index] = FENCED
                    results.append(None)
                else:
                    results.append(_alone(conn, call, index, failures))
        return results, failures

    def _fenced(self, conn: psycopg.Connection[Any], epoch: int) -> bool:
        """A newer epoch than ``epoch`` holds the lease (no lease row: nobody ever led, nothing is fenced). The rule
        of ``relayd.store.leases.fenced``, which this script cannot import."""
        row = conn.execute("SELECT epoch FROM leases WHERE namespace = %s FOR SHARE", (self._namespace,)).fetchone()
        return row is not None and int(row[0]) > epoch

    def _read_back(self, conn: psycopg.Connection[Any], calls: Sequence[Call]) -> Rows | None:
        """The stored row of every entry ``calls`` touched (None: no row); None if the database cannot be read."""
        rows: Rows = {}
        try:
            for table, key in {key for call in calls for key in call.touches}:
                row = conn.execute(self._reread[table], (key,)).fetchone()
                rows[(table, key)] = None if row is None else tuple(row)
        except Exception:  # the mirror falls back to the values it remembers
            with contextlib.suppress(Exception):  # a broken connection is re-made by the next batch
                conn.rollback()
            return None
        return rows


Sent = tuple[psycopg.Cursor[Any] | None, list[Any] | None]
"""A run's cursor, and the dedupe keys of its rows when it went as one bulk statement."""


def _gathered(sent: list[tuple[list[Call], Sent]], order: list[int], count: int) -> list[Any]:
    """The results of the runs sent, back in the order of the calls given."""
    in_order: list[Any] = []
    for run, (cur, keys) in sent:
        in_order.extend(_results(run, cur, keys))
    results: list[Any] = [None] * count
    for position, index in enumerate(order):
        results[index] = in_order[position]
    return results


FENCE_GUARD = (
    "SELECT CAST(CASE WHEN epoch > %s THEN 'fenced' ELSE '0' END AS integer) FROM leases WHERE namespace = %s FOR SHARE"
)
"""Fails (an integer cast of 'fenced') when a newer epoch holds the lease, which aborts the batch's pipeline."""


def _one_trip(
    conn: psycopg.Connection[Any],
    calls: Sequence[Call],
    reorder: Reorder,
    guard: tuple[str, int] | None,
    bulk: Bulk,
) -> list[Any]:
    """The batch as one transaction in one pipeline, BEGIN to COMMIT (one round trip to the server), the results
    read once at the end. Consecutive executes of one statement (a burst of callback events, a pass's segment
    writes) go as one ``executemany`` that still returns each row count (four times cheaper per row than one
    execute each), or, for a statement in ``bulk`` (event inserts; segment upserts, also when the mirror sent them
    as one ``executemany``), as one statement over a JSON array of the rows (half the CPU per row of an
    ``executemany``, in this process and in the server); the calls are first put in the order that makes those runs
    long (``send_order``). With
    ``guard`` (namespace, epoch), the transaction first takes the lease row FOR SHARE and fails if a newer epoch
    holds it. A statement that fails aborts the pipeline and raises here (the transaction rolled back): the caller
    runs the batch again write by write, in the order given."""
    order = send_order(calls, reorder)
    runs = _runs([calls[i] for i in order])
    try:
        with conn.pipeline():
            conn.execute("BEGIN")
            if guard is not None:
                conn.execute(FENCE_GUARD, (guard[1], guard[0]))
            sent = [(run, _send(conn, run, bulk)) for run in runs]
            conn.execute("COMMIT")
    except Exception:
        with contextlib.suppress(Exception):
            conn.rollback()
        raise
    return _gathered(sent, order, len(calls))


def one_statement(calls: Sequence[Call], bulk: Bulk) -> list[int] | None:
    """The indices of the calls that are not no-ops, when they go to the server as a single statement and nothing
    in the batch is fenced: one write or read, or a run of one statement in ``bulk`` (a burst of callback events).
    Else None. Such a batch needs no BEGIN and COMMIT: in autocommit a statement is a transaction of its own."""
    kept = [i for i, call in enumerate(calls) if call.verb != "noop"]
    if any(calls[i].fenced for i in kept):
        return None
    if len(kept) <= 1:
        return kept if all(calls[i].verb in ("execute", "fetchall") for i in kept) else None
    runs = _runs([calls[i] for i in kept])
    return kept if len(runs) == 1 and _bulk_rows(runs[0], bulk) is not None else None


def _autocommit(conn: psycopg.Connection[Any], calls: Sequence[Call], alone: list[int], bulk: Bulk) -> list[Any]:
    """A batch of ``one_statement`` sent as that statement alone: one round trip and no pipeline (which cost the
    writer ~270 against ~140 us of CPU per batch of one callback event, and most batches under callback load are
    one or two events). Raises like ``_one_trip`` when the statement fails; nothing is left open."""
    results: list[Any] = [None] * len(calls)
    if not alone:  # no-ops alone: every batch before has committed, which is all they wait for
        return results
    run = [calls[i] for i in alone]
    for index, result in zip(alone, _results(run, *_send(conn, run, bulk)), strict=True):
        results[index] = result
    return results


def send_order(calls: Sequence[Call], reorder: Reorder) -> list[int]:
    """The indices of ``calls`` in the order to send them: the calls of a movable statement (event inserts) after
    all the others, each kind in its own order. A pass's segment writes and its events alternate, so in the order
    given every run was one statement long, and the pipeline's per-statement work was the writer's largest cost
    in the profile of a first pass of 10,000 schedules.

    Safe because an event insert touches only the events table, which nothing else in a batch writes — unless the
    batch also holds a pinning statement (the events prune) or a read: then the order given is kept."""
    movable, pinning = reorder
    identity = list(range(len(calls)))
    if not movable or any(c.verb == "fetchall" or (c.args and c.args[0] in pinning) for c in calls):
        return identity
    moved = [i for i in identity if calls[i].args and calls[i].args[0] in movable]
    if not moved:
        return identity
    kept = [i for i in identity if not (calls[i].args and calls[i].args[0] in movable)]
    return kept + moved


def _runs(calls: Sequence[Call]) -> list[list[Call]]:
    """The calls in order, consecutive executes of the same statement grouped."""
    runs: list[list[Call]] = []
    for call in calls:
        last = runs[-1] if runs else None
        if last and call.verb == "execute" and last[0].verb == "execute" and last[0].args[0] == call.args[0]:
            last.append(call)
        else:
            runs.append([call])
    return runs


def _send(conn: psycopg.Connection[Any], run: list[Call], bulk: Bulk) -> Sent:
    first = run[0]
    if first.verb == "noop":
        return None, None
    cur = conn.cursor()
    spec = _bulk_rows(run, bulk)
    if spec is not None:
        statement, rows, keys = spec
        cur.execute(statement, (json.dumps(rows, ensure_ascii=False),))
        return cur, keys
    if len(run) > 1:
        cur.executemany(first.args[0], [call.args[1] for call in run], returning=True)
    elif first.verb == "executemany":
        cur.executemany(first.args[0], first.args[1])
    else:
        cur.execute(first.args[0], first.args[1])
    return cur, None


def _bulk_rows(run: list[Call], bulk: Bulk) -> tuple[str, list[Any], list[Any]] | None:
    """(the bulk statement, the rows, the dedupe key of each row) when the run goes as one statement over its rows:
    a run of executes, or one ``executemany``, of a statement in ``bulk``, with more than one row. Else None, also
    when a key comes twice (which row wins is then the ``executemany``'s to decide)."""
    first = run[0]
    spec = bulk.get(first.args[0]) if first.args else None
    if spec is None:
        return None
    if first.verb == "executemany" and len(run) == 1:
        rows = list(first.args[1])
    elif first.verb == "execute" and len(run) > 1:
        rows = [call.args[1] for call in run]
    else:
        return None
    statement, dedupe = spec
    keys = [row[dedupe] for row in rows]
    named = [key for key in keys if key is not None]
    return (statement, rows, keys) if len(rows) > 1 and len(named) == len(set(named)) else None


def _results(run: list[Call], cur: psycopg.Cursor[Any] | None, keys: list[Any] | None = None) -> list[Any]:
    """One result per call of the run: rows for a fetch, else the row count (for a bulk run: 1 for a row whose
    dedupe key came back, or that has none, else 0)."""
    if cur is None:
        return [None] * len(run)
    with cur:
        if keys is not None:
            inserted = {row[0] for row in cur.fetchall()}
            counts = [1 if key is None or key in inserted else 0 for key in keys]
            return [sum(counts)] if run[0].verb == "executemany" else counts
        if run[0].verb == "fetchall":
            return [[tuple(row) for row in cur.fetchall()]]
        counts = [cur.rowcount]
        while len(counts) < len(run) and cur.nextset():
            counts.append(cur.rowcount)
    if len(counts) != len(run):
        raise psycopg.InterfaceError(f"{len(run)} statements gave {len(counts)} results")
    return counts


def _alone(conn: psycopg.Connection[Any], call: Call, index: int, failures: dict[int, Any]) -> Any:
    """Run ``call`` in a savepoint: a failure of its own is recorded and rolled back alone."""
    try:
        with conn.transaction():
            return _results([call], *_send(conn, [call], {}))[0]
    except Exception as exc:
        if environmental(exc):
            raise
        failures[index] = exc
        return None


def open_runner(hello: tuple[str, str, str, dict[str, str], Reorder, Bulk]) -> tuple[PostgresRunner, str]:
    """The runner of the set-up frame; it connects on the first batch (an outage now must not stop the child)."""
    conninfo, schema, namespace, reread, reorder, bulk = hello
    return PostgresRunner(Connection(conninfo, schema), namespace, reread, reorder, bulk), psycopg.__version__


def main(argv: Sequence[str]) -> int:
    """``child.py <batch_max> <reply fd>``: serve write batches from stdin until it closes."""
    return batch.serve(argv, open_runner, psycopg.OperationalError)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
