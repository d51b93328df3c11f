"""The Store across processes: the lock holds against another process, and SIGKILL loses no acknowledged write."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from relayd.ids import SegmentKey
from relayd.store import Store, StoreLockedError

# The child writes segments and events one await at a time and prints the index of each write whose await has
# returned; whatever it printed before being killed must be on disk.
WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    import structlog
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout is the protocol
    from relayd.store import Event, SegmentRecord, Store

    async def main() -> None:
        store = await Store.open(Path(sys.argv[1]))
        print("ready", flush=True)
        i = 0
        while True:
            record = SegmentRecord(key=f"k{i}", schedule_id="s", index=i, occurrence=None, start=i, end=i + 1,
                                   title=f"rd{i}", group=None, spec_hash="h", body={"i": i})
            await asyncio.gather(store.put(record), store.add_event(Event(ts=i, kind="x", dedupe_key=f"e{i}")))
            print(i, flush=True)
            i += 1

    asyncio.run(main())
    """
)

HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    import structlog
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout is the protocol
    from relayd.store import Store

    async def main() -> None:
        store = await Store.open(Path(sys.argv[1]))
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        await store.close()

    asyncio.run(main())
    """
)


async def spawn(script: str, path: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(path),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip


async def read_line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    async with asyncio.timeout(30):
        line = await proc.stdout.readline()
    assert line, "child exited early"
    return line.decode().strip()


async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "relayd.db"
    proc = await spawn(WRITER, path)
    try:
        assert await read_line(proc) == "ready"
        acknowledged = -1
        while acknowledged < 300:
            acknowledged = int(await read_line(proc))
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL

    store = await Store.open(path)  # the kernel released the dead child's lock
    try:
        for i in range(acknowledged + 1):
            record = store.segment(SegmentKey(f"k{i}"))
            assert record is not None and record.body == {"i": i}
        assert await store.count_events() >= acknowledged + 1
        assert await store.count_events(dedupe_key=f"e{acknowledged}") == 1
    finally:
        await store.close()


async def test_lock_holds_against_another_process(tmp_path: Path) -> None:
    path = tmp_path / "relayd.db"
    proc = await spawn(HOLDER, path)
    try:
        assert await read_line(proc) == "ready"
        with pytest.raises(StoreLockedError, match=rf"pid {proc.pid}, lock file {path}.lock"):
            await Store.open(path)
    finally:
        assert proc.stdin is not None
        proc.stdin.write(b"done\n")
        await proc.stdin.drain()
        async with asyncio.timeout(30):
            await proc.wait()
    assert proc.returncode == 0
    store = await Store.open(path)
    await store.close()
