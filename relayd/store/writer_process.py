"""The store's writer process, seen from the event loop: pickled batches down a pipe, replies back up another.

Why: see ``batch.py``. In short, the writer thread's SQLite calls each had to win the GIL back from a busy loop, so
callbacks waited on commits for tens of milliseconds during a large reconcile; the process has its own GIL.

Shape: ``submit`` appends an operation to an outbox; ``_flush`` pickles the outbox into a frame for the child's
stdin (a non-blocking pipe transport) — at the end of the current loop iteration when nothing is in flight, else
as soon as the transaction in flight is confirmed, so writes that arrive during a commit share the next one (group
commit). The child runs whatever frames are waiting as one transaction and replies with the results of the next
``n`` operations, in order; a reader task pops those ``n`` from the in-flight queue and hands them to ``settle`` as
an ``Outcome``.

If the child dies (killed, out of memory), every operation in flight fails like a failed write (the store turns
unhealthy, the cache goes back to what the read-only connection finds on disk), and a new child is started with
backoff; operations submitted while there is none fail at once. ``stop`` closes the child's stdin: it commits what
it has and exits, and its last replies are settled before ``stop`` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from relayd.backoff import Backoff
from relayd.store import batch
from relayd.store.batch import Frames
from relayd.store.errors import StoreError
from relayd.store.writer import Op, Outcome, Rows

log = structlog.get_logger("relayd.store")

START_TIMEOUT_S = 30.0
PIPELINE = 2
"""Frames in flight at most: one being committed, one waiting in the pipe so the child never idles between them."""
RESPAWN_BACKOFF = Backoff(base=0.5, factor=2.0, cap=30.0)
Reread = Callable[[list[tuple[str, str]]], Awaitable[Rows | None]]
"""The current rows of these cache entries, read on another connection (None if unreadable)."""


def _no_context() -> Any:
    return None


@dataclass(frozen=True, slots=True)
class Child:
    """How to start one backend's writer process (SQLite: ``batch.py``; PostgreSQL: ``postgres/child.py``)."""

    args: tuple[str, ...]
    """The interpreter's options, the script and its own arguments; ``batch_max`` and the reply fd follow."""
    hello: Any
    """The first frame: the runner's set-up (never on the command line, where ``ps`` would show a password)."""
    name: str
    """The state in messages: "relayd state file /var/lib/relayd/relayd.db"."""
    start_error: Callable[[BaseException], StoreError]
    """The StoreError for a child that could not start (from the reason it gave)."""
    context: Callable[[], Any] = _no_context
    """Sent with every frame (PostgreSQL: the store's fencing epoch at the time of sending)."""


class WriterExited(Exception):
    """The writer process is gone; the operations it had not confirmed failed."""


class ProcessWriter:
    def __init__(
        self,
        child: Child,
        loop: asyncio.AbstractEventLoop,
        *,
        batch_max: int,
        settle: Callable[[Outcome], None],
        reread: Reread,
    ) -> None:
        self._child = child
        self._loop = loop
        self._batch_max = max(1, batch_max)
        self._settle = settle
        self._reread = reread
        self._proc: asyncio.subprocess.Process | None = None
        self._replies: _Replies | None = None
        self._outbox: list[Op] = []
        self._flush_scheduled = False
        self._inflight: deque[Op] = deque()
        self._frames_inflight: deque[int] = deque()
        """Operations per frame sent and not yet confirmed (the child never splits a frame across transactions)."""
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None
        self.restarts = 0
        """How many times a dead writer process was replaced (for tests and logs)."""

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        """Start the child and wait until it has opened the state; StoreError (with the reason) otherwise."""
        self._proc, self._replies = await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(self._proc), name="relayd-store-writer")

    def submit(self, op: Op) -> None:
        self._outbox.append(op)
        if len(self._frames_inflight) < PIPELINE and not self._flush_scheduled:
            # A writer with room gets it at the end of this loop iteration, with whatever else the iteration
            # writes; a full pipeline, with everything that queued up meanwhile, when a transaction is confirmed.
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    async def stop(self) -> None:
        """Send what is queued, let the child commit it and exit, and settle its last replies."""
        if self._stopping:
            return
        self._flush()
        self._stopping = True
        if self._proc is not None:
            _close_input(self._proc)  # a child being started right now is closed by the supervisor instead
        if self._supervisor is not None:
            await asyncio.shield(self._supervisor)

    # -- sending -------------------------------------------------------------------------------------------------

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._outbox:
            return
        ops, self._outbox = self._outbox, []
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.is_closing() or self._stopping:
            self._loop.create_task(self._fail(ops, WriterExited(self._gone_reason())))
            return
        self._inflight.extend(ops)
        context = self._child.context()
        for start in range(0, len(ops), self._batch_max):
            chunk = ops[start : start + self._batch_max]
            self._frames_inflight.append(len(chunk))
            calls = [(op.call.verb, op.call.args, op.call.touches, op.fenced) for op in chunk]
            proc.stdin.write(batch.frame((context, calls)))

    def _gone_reason(self) -> str:
        if self._stopping:
            return f"{self._child.name} is closing"
        return "the store writer process is not running (relayd is restarting it)"

    # -- receiving -----------------------------------------------------------------------------------------------

    async def _supervise(self, proc: asyncio.subprocess.Process) -> None:
        """Settle replies; when the child dies unasked, fail what it held and start another (with backoff)."""
        while True:
            assert self._replies is not None
            await self._replies.closed
            code = await proc.wait()
            lost = list(self._inflight)
            self._inflight.clear()
            self._frames_inflight.clear()
            if self._stopping:
                if lost:  # it exited before confirming everything: nothing is known about these
                    await self._fail(lost, WriterExited(f"the store writer process exited with code {code}"))
                return
            log.error("store_writer_exited", code=code, pid=proc.pid, unconfirmed=len(lost))
            self._proc = None
            await self._fail(lost, WriterExited(f"the store writer process exited with code {code}"))
            self._flush()  # what queued up behind the lost batch fails too (there is no child to send it to)
            respawned = await self._respawn()
            if respawned is None:
                return
            self._proc, self._replies = proc, _ = respawned
            self.restarts += 1
            log.info("store_writer_restarted", pid=proc.pid)
            if self._stopping:  # stop() came while this child was starting
                _close_input(proc)

    async def _respawn(self) -> tuple[asyncio.subprocess.Process, _Replies] | None:
        attempt = 0
        while not self._stopping:
            attempt += 1
            try:
                return await self._spawn()
            except (StoreError, OSError) as exc:
                delay = RESPAWN_BACKOFF.ceiling(attempt)
                log.error("store_writer_start_failed", error=str(exc), retry_in_s=round(delay, 1))
                await asyncio.sleep(delay)
        return None

    def _settle_reply(self, reply: tuple[Any, ...]) -> None:
        count = reply[1]
        ops = [self._inflight.popleft() for _ in range(count)]
        while count > 0 and self._frames_inflight:
            count -= self._frames_inflight.popleft()
        if len(self._frames_inflight) < PIPELINE:  # group commit: what queued up meanwhile goes out together
            self._flush()
        if reply[0] == "ok":
            self._settle(Outcome(ops, results=reply[2], failures=reply[3], on_disk=reply[4]))
        else:
            self._settle(Outcome(ops, error=reply[2], on_disk=reply[3]))

    async def _fail(self, ops: list[Op], error: BaseException) -> None:
        """Fail ops the child never confirmed; the cache goes back to whatever the disk holds now."""
        if not ops:
            return
        keys = sorted({(t.table, t.key) for op in ops for t in op.touches})
        on_disk = await self._reread(keys) if keys else {}
        self._settle(Outcome(ops, error=error, on_disk=on_disk))

    # -- starting ------------------------------------------------------------------------------------------------

    async def _spawn(self) -> tuple[asyncio.subprocess.Process, _Replies]:
        # Replies come back on a pipe of their own, read by a protocol that settles them in the same callback:
        # a StreamReader would add a task wake-up (one more loop iteration) to every commit's way back.
        replies = _Replies(self._loop, self._settle_reply)
        proc = await spawn(self._loop, (*self._child.args, str(self._batch_max)), replies)
        assert proc.stdin is not None
        proc.stdin.write(batch.frame(self._child.hello))
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                first = await asyncio.shield(replies.first)
        except TimeoutError as exc:
            proc.kill()
            await proc.wait()
            raise self._child.start_error(RuntimeError("the store writer process did not start in time")) from exc
        if first[0] != "ready":
            await proc.wait()
            reason = first[1] if first[0] == "fatal" else RuntimeError("the store writer process exited at start")
            raise self._child.start_error(reason)
        return proc, replies


async def spawn(
    loop: asyncio.AbstractEventLoop, args: tuple[str, ...], replies: asyncio.Protocol, **options: Any
) -> asyncio.subprocess.Process:
    """``python ARGS <reply fd>`` with a pipe on its stdin and ``replies`` reading the reply pipe (its fd the last
    argument; stdout stays free). ``options`` go to ``create_subprocess_exec`` (e.g. where stderr goes)."""
    read_fd, write_fd = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *args, str(write_fd), stdin=asyncio.subprocess.PIPE, pass_fds=(write_fd,),
            start_new_session=True,  # a Ctrl-C meant for the daemon must not reach it (it also ignores SIGINT)
            **options,
        )  # fmt: skip
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    try:
        await loop.connect_read_pipe(lambda: replies, os.fdopen(read_fd, "rb", buffering=0))
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    return proc


class _Replies(asyncio.Protocol):
    """The reply pipe: the first frame resolves ``first``; every later one goes to ``on_reply`` at once."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_reply: Callable[[tuple[Any, ...]], None]) -> None:
        self._frames = Frames()
        self._on_reply = on_reply
        self.first: asyncio.Future[tuple[Any, ...]] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def data_received(self, data: bytes) -> None:
        for reply in self._frames.feed(data):
            if not self.first.done():
                self.first.set_result(reply)
            else:
                self._on_reply(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.first.done():
            self.first.set_result(("exited",))
        if not self.closed.done():
            self.closed.set_result(None)


def _close_input(proc: asyncio.subprocess.Process) -> None:
    """EOF on the child's stdin: it commits what it has, replies, and exits."""
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
