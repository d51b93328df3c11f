"""The single-instance lock: an exclusive ``flock`` on ``<state file>.lock``.

Why flock on a side file: SQLite's own locking lets two processes share one database, which is exactly what must
not happen here — two daemons managing one state file would both create and delete tasks. ``flock`` locks belong
to an open file description, so a second open in the same process conflicts too, and the kernel drops the lock
when the holder dies (even by SIGKILL), so a stale lock file never needs manual cleanup. The holder writes its
pid into the file so the error can name it. The file is never unlinked: unlinking a lock file races with a
process that has just opened it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from relayd.store.errors import StoreLockedError, open_error


def lock_path(path: Path) -> Path:
    """The lock file next to the state file ``path``."""
    return path.with_name(path.name + ".lock")


class FileLock:
    """A held exclusive lock; ``release`` is idempotent."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, state_path: Path) -> FileLock:
        """Take the lock without waiting; raise StoreLockedError naming the holder's pid when it is taken."""
        path = lock_path(state_path)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise open_error(state_path, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            raise StoreLockedError(
                f"relayd state file {state_path} is locked by another relayd (pid {holder}, lock file {path}); "
                "stop that process, or give this one a different state file"
            ) from exc
        _write_pid(fd)
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _read_pid(fd: int) -> str:
    with contextlib.suppress(OSError):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text:
            return text
    return "unknown"


def _write_pid(fd: int) -> None:
    # Best effort: the lock is what matters; the pid only improves the message a second instance prints.
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
