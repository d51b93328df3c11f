"""What runs inside one write transaction, and the writer *process* that runs it outside the daemon's GIL.

Standard library only, on purpose: this file is also executed as a script (``python -I batch.py``) to become the
store's writer process, and it must start in a few milliseconds without importing relayd's dependencies.

Why a process (see ``writer_process.py`` for the loop side): a writer *thread* shares the GIL with the event loop.
SQLite releases the GIL around every statement and takes it back afterwards; while the loop is busy with a large
reconcile, each take-back waits up to a switch interval (5 ms), so one commit of a few statements stalled callback
answers by tens of milliseconds. A process has its own interpreter: the loop only pickles the operations and reads
the replies from a pipe.

A write is data, not code, so it can cross the pipe: ``(verb, args)`` where ``verb`` names one of ``VERBS``. A
batch runs all its calls in one transaction. When the disk refuses it (full, read-only, I/O error: an
``OperationalError``), the transaction is rolled back, every call fails with the same error, and the rows the batch
touched are read back so the loop can put its cache back to what is on disk. When one call fails for a reason of
its own (a value SQLite cannot bind, a constraint), the batch is run again with a savepoint around each call, so
only that call fails and its neighbours commit: one bad write must never cost the others.

Wire format, both directions: a 4-byte big-endian length, then a pickle. The pipe is private to the daemon and its
child, so pickle is safe here.

* daemon -> child, first frame: the runner's set-up (for SQLite ``(pragmas, reread)``, a ``Hello``); then one frame
  per flush: ``(context, calls)``, ``calls`` a list of ``(verb, args, touches, fenced)`` (a ``Call``) and
  ``context`` what the runner needs with them (PostgreSQL: the store's fencing epoch; SQLite: None). Only builtins
  and the driver's types cross the pipe: the child runs this file as a script and cannot import relayd.
* child -> daemon, on a pipe of its own (its fd is the last argument; stdout stays the daemon's): first
  ``("ready", version)`` or ``("fatal", exception)``; then one reply per transaction: ``("ok", n, results,
  failures, rows_on_disk)`` (``failures``: call index -> exception for the calls that failed alone, and the rows
  those touched) or ``("err", n, exception, rows_on_disk)`` for the next ``n`` calls in order.

The process (``serve``) is the same for both backends; what runs a transaction is a ``Runner``: ``SqliteRunner``
here, the PostgreSQL one in ``postgres/child.py``, which runs ``serve`` with its own runner.

The child commits everything it has received and exits when its stdin closes (the daemon closed the store, or the
daemon died — then the last frames it wrote still land). It ignores SIGINT and SIGTERM: a Ctrl-C in a terminal or
systemd's stop signal to the whole unit must not kill it before the daemon's own shutdown has flushed.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import sqlite3
import struct
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

_HEADER = struct.Struct(">I")
READ_CHUNK = 1 << 20
CHECKPOINT_INTERVAL_S = 0.25
"""At most one background checkpoint per this many seconds, and only after commits."""
BACKSTOP_PAGES = 10_000
"""``wal_autocheckpoint`` of the writer connection: a commit checkpoints itself only if the WAL reaches this."""


@dataclass(frozen=True, slots=True)
class Call:
    """One write operation as data: ``VERBS[verb](conn, *args)``; ``touches`` name the cached rows it changes."""

    verb: str
    args: tuple[Any, ...] = ()
    touches: tuple[tuple[str, str], ...] = ()
    fenced: bool = False
    """Refused when a newer leader holds the lease (PostgreSQL; the writer copies it from ``Op.fenced``)."""


@dataclass(frozen=True, slots=True)
class Hello:
    """The child's set-up: connection pragmas to run, and how to read back one cached row per table."""

    pragmas: tuple[str, ...]
    reread: dict[str, str]
    """table -> ``SELECT ... WHERE <key> = ?``, one row or none."""


def _noop(conn: sqlite3.Connection) -> None:
    return None


def _execute(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> int:
    # Results are plain values: a cursor must never cross to the loop thread (freeing it there would race with
    # this connection's use on the writer thread) and cannot be pickled for the pipe anyway.
    return int(conn.execute(sql, params).rowcount)


def _executemany(conn: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> int:
    return int(conn.executemany(sql, rows).rowcount)


def _fetchall(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in conn.execute(sql, params).fetchall()]


def _hold(conn: sqlite3.Connection, fifo: str) -> None:
    """A test seam: keep this transaction open until the writer of the FIFO ``fifo`` closes it.

    Tests use it to decide exactly which writes share the next transaction. Opening a FIFO for reading blocks until
    a writer opens it, so the test knows the transaction has started when its own open returns."""
    with open(fifo, "rb") as pipe:
        pipe.read()


def _fail(conn: sqlite3.Connection, message: str) -> None:
    """A test seam: fail the transaction the way the disk does (an OperationalError with ``message``)."""
    raise sqlite3.OperationalError(message)


VERBS: dict[str, Callable[..., Any]] = {
    "noop": _noop,
    "execute": _execute,
    "executemany": _executemany,
    "fetchall": _fetchall,
    "hold": _hold,
    "fail": _fail,
}

Reply = tuple[Any, ...]
"""``("ok", results, failures, rows_on_disk)`` or ``("err", exception, rows_on_disk)``; the process adds the call
count."""


def environmental(exc: BaseException) -> bool:
    """True when ``exc`` is about the database as a whole (disk full, read-only, I/O, corruption), not one call.

    SQLite reports those as ``OperationalError`` (or a bare ``DatabaseError`` for a file that is not a database);
    a value it cannot bind (a lone surrogate, an integer too large), a constraint or a malformed statement is
    another type, and retrying the other calls of its batch without it will succeed."""
    return isinstance(exc, (sqlite3.OperationalError, sqlite3.InternalError, OSError, MemoryError)) or (
        type(exc) is sqlite3.DatabaseError
    )


def run_batch(conn: sqlite3.Connection, calls: Sequence[Call], reread: dict[str, str]) -> Reply:
    """Run ``calls`` in one transaction; on a failure of one call's own, again with each call on its own."""
    try:
        conn.execute("BEGIN")  # deferred: relayd is the only writer (the lock), so nothing to wait for
        results = [VERBS[c.verb](conn, *c.args) for c in calls]
        conn.execute("COMMIT")
    except Exception as exc:  # any failure fails the batch; the writer must survive it
        _rollback(conn)
        if environmental(exc):
            return _failed(conn, exc, calls, reread)
        return _one_by_one(conn, calls, reread)
    return ("ok", results, {}, {})


def _one_by_one(conn: sqlite3.Connection, calls: Sequence[Call], reread: dict[str, str]) -> Reply:
    """The batch again, each call inside a savepoint: a call that fails alone is rolled back alone."""
    results: list[Any] = []
    failures: dict[int, BaseException] = {}
    try:
        conn.execute("BEGIN")
        for index, call in enumerate(calls):
            results.append(_in_savepoint(conn, call, index, failures))
        conn.execute("COMMIT")
    except Exception as exc:  # an environmental error on the way: the whole batch fails as before
        _rollback(conn)
        return _failed(conn, exc, calls, reread)
    on_disk = read_back(conn, [calls[i] for i in failures], reread)
    return ("ok", results, failures, on_disk)


def _in_savepoint(conn: sqlite3.Connection, call: Call, index: int, failures: dict[int, BaseException]) -> Any:
    conn.execute("SAVEPOINT one_call")
    try:
        result = VERBS[call.verb](conn, *call.args)
    except Exception as exc:
        if environmental(exc):
            raise
        conn.execute("ROLLBACK TO one_call")
        conn.execute("RELEASE one_call")
        failures[index] = exc
        return None
    conn.execute("RELEASE one_call")
    return result


def _failed(conn: sqlite3.Connection, exc: BaseException, calls: Sequence[Call], reread: dict[str, str]) -> Reply:
    return ("err", exc, read_back(conn, calls, reread))


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass


def read_back(
    conn: sqlite3.Connection, calls: Sequence[Call], reread: dict[str, str]
) -> dict[tuple[str, str], tuple[Any, ...] | None] | None:
    """The current row (None: no row) of every entry the calls touched; None if the disk cannot be read."""
    return read_rows(conn, {key for c in calls for key in c.touches}, reread)


def read_rows(
    conn: sqlite3.Connection, keys: Iterable[tuple[str, str]], reread: dict[str, str]
) -> dict[tuple[str, str], tuple[Any, ...] | None] | None:
    """The current row (None: no row) of each (table, key) by ``reread[table]``; None if the disk cannot be read."""
    try:
        return {(table, key): _one(conn.execute(reread[table], (key,)).fetchone()) for table, key in keys}
    except Exception:  # the loop falls back to the values it remembers
        return None


def _one(row: Sequence[Any] | None) -> tuple[Any, ...] | None:
    return None if row is None else tuple(row)


def connect(path: str, pragmas: Sequence[str]) -> sqlite3.Connection:
    """The writer connection: autocommit mode (transactions are explicit), then ``pragmas`` in order."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in pragmas:
        conn.execute(pragma).fetchall()
    return conn


class Checkpointer:
    """Copies the WAL back into the database file on a thread of its own, so that no commit waits for it.

    SQLite's automatic checkpoint runs inside the commit that takes the WAL past 1,000 pages: that one commit
    copies the pages and fsyncs both files, 10-20 ms on a virtual disk, and every write queued behind it waits.
    Here the writer connection keeps that only as a backstop (``BACKSTOP_PAGES``, if this thread falls behind),
    and this thread runs a PASSIVE checkpoint on its own connection at most every ``interval`` seconds after the
    writer reports a commit. A passive checkpoint never blocks the writer, and SQLite releases the GIL while it
    runs. A failed checkpoint (e.g. a full disk) is counted and tried again after the next commit.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], interval: float = CHECKPOINT_INTERVAL_S) -> None:
        self._connect = connect
        self._interval = interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._main, name="relayd-store-checkpoint", daemon=True)
        self.runs = 0
        self.failures = 0

    def start(self) -> None:
        self._thread.start()

    def committed(self) -> None:
        """The writer committed: checkpoint soon. Cheap; called after every transaction."""
        self._wake.set()

    def stop(self) -> None:
        """End the thread (a checkpoint in progress finishes first) and close its connection."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def _main(self) -> None:
        try:
            conn = self._connect()
            conn.execute("PRAGMA wal_autocheckpoint = 0").fetchall()
        except sqlite3.Error:
            self.failures += 1
            return  # the writer's backstop checkpoints instead
        try:
            while True:
                self._wake.wait()
                if self._stopping.is_set():
                    return
                self._wake.clear()
                self._checkpoint(conn)
                if self._stopping.wait(self._interval):
                    return
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.runs += 1
        except sqlite3.Error:
            self.failures += 1


# -- framing -------------------------------------------------------------------------------------------------------


def frame(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


class Frames:
    """Splits a byte stream into unpickled frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        self._buffer += data
        out: list[Any] = []
        while len(self._buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buffer)
            end = _HEADER.size + size
            if len(self._buffer) < end:
                break
            out.append(pickle.loads(self._buffer[_HEADER.size : end]))  # noqa: S301 - our own pipe, see docstring
            del self._buffer[:end]
        return out


# -- the process -----------------------------------------------------------------------------------------------------


class Runner(Protocol):
    """What the writer process runs its transactions on: SQLite here, PostgreSQL in ``postgres/child.py``."""

    def run(self, calls: Sequence[Call], context: Any) -> Reply:
        """One transaction for ``calls`` (see ``run_batch``); ``context``: what the daemon sent with the last frame."""
        ...

    def close(self) -> None: ...


class SqliteRunner:
    """The SQLite writer connection, and the checkpointer told after each commit."""

    def __init__(self, path: str, hello: Hello) -> None:
        self._conn = connect(path, hello.pragmas)
        self._reread = hello.reread
        self._checkpointer = Checkpointer(lambda: connect(path, hello.pragmas))
        self._checkpointer.start()

    def run(self, calls: Sequence[Call], context: Any) -> Reply:
        reply = run_batch(self._conn, calls, self._reread)
        if reply[0] == "ok":
            self._checkpointer.committed()
        return reply

    def close(self) -> None:
        self._checkpointer.stop()
        self._conn.close()


class _Child:
    def __init__(self, runner: Runner, batch_max: int, stdin: int, stdout: int, frames: Frames) -> None:
        self._runner = runner
        self._batch_max = batch_max
        self._stdin = stdin
        self._stdout: int | None = stdout
        self._frames = frames  # it may already hold the start of the next frame
        self.pending: list[tuple[Any, list[tuple[Any, ...]]]] = []
        """Frames received and not yet run: ``(context, calls)``."""
        self._eof = False

    def serve(self, fallback: type[Exception]) -> None:
        while self._fill():
            batch: list[Call] = []
            context = None
            while self.pending and (not batch or len(batch) + len(self.pending[0][1]) <= self._batch_max):
                context, calls = self.pending.pop(0)  # the newest frame's context holds for the transaction
                batch.extend(Call(*call) for call in calls)
            reply = self._runner.run(batch, context)
            if reply[0] == "ok":
                failures = {index: picklable(exc, fallback) for index, exc in reply[2].items()}
                self._reply(("ok", len(batch), reply[1], failures, reply[3]))
            else:
                self._reply(("err", len(batch), picklable(reply[1], fallback), reply[2]))

    def _reply(self, message: tuple[Any, ...]) -> None:
        if self._stdout is None:
            return
        try:
            _write(self._stdout, frame(message))
        except BrokenPipeError:  # the daemon is gone: nobody to tell, but keep committing what it sent
            self._stdout = None

    def _fill(self) -> bool:
        """Block for at least one frame, then take whatever else is already in the pipe. False at EOF with nothing."""
        while not self.pending and not self._eof:
            self._read()
        while not self._eof and select.select([self._stdin], [], [], 0)[0]:
            self._read()
        return bool(self.pending)

    def _read(self) -> None:
        data = os.read(self._stdin, READ_CHUNK)
        if not data:
            self._eof = True
            return
        self.pending.extend(self._frames.feed(data))

    def take(self, frames: list[Any]) -> None:
        self.pending.extend(frames)


def picklable(exc: Any, fallback: type[Exception] = sqlite3.OperationalError) -> Any:
    """``exc``, or a ``fallback`` error with its message if ``exc`` would not survive pickling."""
    try:
        pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes
    except Exception:
        return fallback(str(exc) or type(exc).__name__)
    return exc


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def serve(argv: Sequence[str], open_runner: Callable[[Any], tuple[Runner, str]], fallback: type[Exception]) -> int:
    """The writer process of either backend: ``<batch_max> <reply fd>``; the first frame on stdin goes to
    ``open_runner`` (which returns the runner and a version for the "ready" reply), the others are batches."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    batch_max, stdout = int(argv[0]), int(argv[1])
    stdin = sys.stdin.fileno()
    frames = Frames()
    first: list[Any] = []
    while not first:
        data = os.read(stdin, READ_CHUNK)
        if not data:
            return 0
        first = frames.feed(data)
    try:
        runner, version = open_runner(first[0])
    except Exception as exc:
        _write(stdout, frame(("fatal", picklable(exc, fallback))))
        return 1
    _write(stdout, frame(("ready", version)))
    child = _Child(runner, max(1, batch_max), stdin, stdout, frames)
    child.take(first[1:])
    try:
        child.serve(fallback)
    finally:
        runner.close()
    return 0


def main(argv: Sequence[str]) -> int:
    """``batch.py <state file> <batch_max> <reply fd>``: serve write batches from stdin until it closes."""
    path = argv[0]
    return serve(argv[1:], lambda hello: (SqliteRunner(path, Hello(*hello)), sqlite3.sqlite_version),
                 sqlite3.OperationalError)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
