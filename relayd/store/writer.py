"""Write operations and their batches' outcomes: what the Store hands a writer, and what a writer hands back.

A writer (the writer process in ``writer_process.py``, running SQLite's ``batch.py`` or PostgreSQL's
``postgres/child.py``) takes operations, runs whatever is queued as one transaction (group commit), and calls
``settle`` on the event loop once per transaction with an ``Outcome``. Thousands of concurrent writers therefore
share a handful of commits, and the loop never touches the database.

Why outcomes carry both a batch error and per-operation failures: a write error is usually a property of the
database (disk full, read-only, connection lost), and then every operation of the transaction fails with the same
StoreWriteError and the rows it touched are read back so the loop can put its in-memory cache back to what is
stored. But one operation can also fail for a reason of its own (a value the database cannot store); then the
writer runs the batch again with each operation on its own, and only that operation fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from relayd.store.batch import Call

ABSENT: Any = object()
"""Cache value meaning "no entry" (a removal, or a key not on disk)."""

Rows = dict[tuple[str, str], tuple[Any, ...] | None]
"""(table, key) -> the stored row (None: no row)."""


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

    call: Call
    future: asyncio.Future[Any] | None = None
    touches: tuple[Touch, ...] = ()
    barrier: bool = False
    """A flush marker: resolved with False instead of failing when its batch fails."""
    convert: Callable[[Any], Any] | None = None
    fenced: bool = False
    """Refused when a newer leader holds the lease (writes to the state a leader owns; events are not fenced)."""


@dataclass(slots=True)
class Outcome:
    """What the loop learns about one batch."""

    ops: list[Op]
    results: list[Any] = field(default_factory=list)
    error: BaseException | None = None
    """The whole batch failed (nothing of it was stored)."""
    on_disk: Rows | None = None
    """For a failed batch or failed operations: the current row of every entry they touched; None if unreadable."""
    failures: dict[int, BaseException] = field(default_factory=dict)
    """Index in ``ops`` -> the error of an operation that failed alone (the batch itself committed)."""


class Writer(Protocol):
    """What the Store needs of a writer: start, take operations, settle each batch on the loop, stop."""

    async def start(self) -> None: ...
    def submit(self, op: Op) -> None: ...
    async def stop(self) -> None: ...


def resolve(outcome: Outcome, error: BaseException | None, failures: Mapping[int, BaseException]) -> None:
    """Settle every op's future: its result, ``error`` for a failed batch, or its own failure (barriers get False)."""
    for index, op in enumerate(outcome.ops):
        fut = op.future
        if fut is None or fut.done():
            continue
        failed = error if error is not None else failures.get(index)
        if failed is None:
            result = outcome.results[index]
            fut.set_result(op.convert(result) if op.convert is not None else result)
        elif op.barrier:
            fut.set_result(False)
        else:
            fut.set_exception(failed)
