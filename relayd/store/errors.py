"""Typed store errors whose messages tell the operator what broke and what to do.

Every message names the state file, the OS or SQLite reason, and the fix, because these errors end up on a
terminal or in the journal of a service that refused to start. ``explain`` maps the few reasons an operator can
act on (disk full, read-only, I/O error, not a database) to a hint; anything else is passed through verbatim.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


class StoreError(Exception):
    """Base of every store error; the message names the state path, the reason and the fix."""


class StoreLockedError(StoreError):
    """Another relayd process holds the state file's lock."""


class StoreWriteError(StoreError):
    """A write failed (disk full, read-only, I/O error); its whole transaction was rolled back."""


def explain(path: Path, exc: BaseException) -> str:
    """A one-line reason for ``exc`` with a fix, naming ``path`` (the state file)."""
    reason = str(exc) or type(exc).__name__
    lowered = reason.lower()
    if "disk is full" in lowered or "no space" in lowered:
        return f"{reason} — free space on the filesystem holding {path.parent}"
    if "readonly" in lowered or "read-only" in lowered or isinstance(exc, PermissionError):
        return (
            f"{reason} — check that the relayd user can write {path} and its directory {path.parent} "
            "and that the filesystem is not mounted read-only"
        )
    if "i/o error" in lowered or isinstance(exc, OSError):
        return f"{reason} — check the disk holding {path.parent} (see the kernel log)"
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in lowered or "malformed" in lowered):
        return f"{reason} — {path} is not a relayd state file or is corrupted; restore a backup or move it away"
    return reason


def write_error(path: Path, exc: BaseException) -> StoreWriteError:
    """The error every operation of a failed write batch raises."""
    return StoreWriteError(f"cannot write relayd state file {path}: {explain(path, exc)}")


def open_error(path: Path, exc: BaseException) -> StoreError:
    """The error ``Store.open`` raises when the file cannot be opened, locked or migrated."""
    return StoreError(f"cannot open relayd state file {path}: {explain(path, exc)}")


class FencedError(StoreWriteError):
    """A write carried an old leader's epoch: another instance holds a newer lease. Stop acting on the platform."""
