"""The store's writer process: it survives signals meant for the daemon, is replaced when it dies, commits what the
daemon sent before dying, and reports a failed start with the state file's name."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from relayd.ids import ScheduleId, SegmentKey
from relayd.store import Event, SegmentRecord, SegmentState, Store, StoreError, StoreWriteError, core
from relayd.store.batch import Hello
from relayd.store.writer_process import ProcessWriter


def seg(key: str, **changes: Any) -> SegmentRecord:
    base = SegmentRecord(
        key=SegmentKey(key), schedule_id=ScheduleId("s"), index=0, occurrence=None, start=0, end=10,
        title="rd" + key, group=None, spec_hash="h", body={"Title": "rd" + key},
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "relayd.db", clock=lambda: 1_000.0)
    yield s
    await s.close()


def writer_of(store: Store) -> ProcessWriter:
    writer = store._writer
    assert isinstance(writer, ProcessWriter)
    return writer


def is_gone(pid: int) -> bool:
    """Exited (reaped, or a zombie waiting to be)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):  # reaped before the open, or between the open and the read
        return True


async def wait_for(condition: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_the_writer_is_a_separate_process(store: Store) -> None:
    pid = writer_of(store).pid
    assert pid is not None and pid != os.getpid()
    await store.put(seg("a"))
    rows = await store._run_sql("SELECT key FROM segments")
    assert rows == [("a",)]


async def test_the_writer_ignores_signals_meant_for_the_daemon(store: Store) -> None:
    pid = writer_of(store).pid
    assert pid is not None
    os.kill(pid, signal.SIGINT)
    os.kill(pid, signal.SIGTERM)
    await store.put(seg("a"))  # answered by the same process
    assert writer_of(store).pid == pid and writer_of(store).restarts == 0


async def test_a_killed_writer_fails_what_it_held_and_is_replaced(store: Store) -> None:
    await store.put(seg("a"))
    writer = writer_of(store)
    old = writer.pid
    assert old is not None
    os.kill(old, signal.SIGKILL)
    await wait_for(lambda: is_gone(old))

    with pytest.raises(StoreWriteError, match=r"store writer process (exited with code -9|is not running)"):
        await store.put(seg("a", state=SegmentState.RUNNING))
    assert not store.healthy
    assert store.segment(SegmentKey("a")).state is SegmentState.PENDING  # type: ignore[union-attr]  # = disk

    await wait_for(lambda: writer.restarts == 1)  # and while it restarts, more writes fail the same way
    assert writer.pid not in (None, old)
    await store.put(seg("a", state=SegmentState.FAILED))
    assert store.healthy
    assert await store._run_sql("SELECT state FROM segments WHERE key = 'a'") == [("failed",)]


async def test_close_commits_everything_queued(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "relayd.db")
    futures = [store.add_event_nowait(Event(ts=float(i), kind="callback", dedupe_key=f"e{i}")) for i in range(300)]
    await store.close()
    assert all(f.done() and f.result() is True for f in futures)
    again = await Store.open(tmp_path / "relayd.db")
    try:
        assert await again.count_events() == 300
    finally:
        await again.close()


async def test_a_writer_that_cannot_start_names_the_file_and_releases_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "relayd.db"
    with monkeypatch.context() as m:
        # Only the child's connection gets the broken pragma: the daemon's own connection opens the file fine.
        m.setattr(core, "Hello", lambda pragmas, reread: Hello(("PRAGMA this is not sql",), reread))
        with pytest.raises(StoreError, match=f"cannot open relayd state file {path}: .*syntax error"):
            await Store.open(path)
    store = await Store.open(path)  # the lock was released
    await store.close()


# The daemon queues writes, lets the loop send them to its writer process, and is SIGKILLed before any commit is
# confirmed: the writer still commits what it received, then exits on its own.
DAEMON = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from pathlib import Path
    import structlog
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout is the protocol
    from relayd.store import Event, Store

    async def main() -> None:
        store = await Store.open(Path(sys.argv[1]))
        for i in range(200):
            store.add_event_nowait(Event(ts=float(i), kind="x", dedupe_key=f"e{i}"))
        await asyncio.sleep(0)  # the writer's flush runs: one frame down the pipe
        await asyncio.sleep(0)
        print(store._writer.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())
    """
)


async def test_writes_sent_before_the_daemon_dies_are_committed(tmp_path: Path) -> None:
    path = tmp_path / "relayd.db"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", DAEMON, str(path), stdout=asyncio.subprocess.PIPE, cwd=Path(__file__).parents[2]
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == -signal.SIGKILL
    child = int(out.decode().split()[0])
    await wait_for(lambda: is_gone(child))
    store = await Store.open(path)
    try:
        assert await store.count_events(kind="x") == 200
    finally:
        await store.close()
