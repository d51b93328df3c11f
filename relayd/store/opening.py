"""Open the store the settings name: the SQLite file at ``state_path``, or PostgreSQL at ``database_url``.

One place decides the backend, so the daemon and ``relayd state migrate`` cannot disagree about it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from relayd.store.core import Store
from relayd.store.postgres import PostgresStore
from relayd.store.protocol import SharedStore

if TYPE_CHECKING:  # settings imports relayd.store.dsn, so a run-time import here would be circular
    from relayd.settings import Settings


async def open_store(
    settings: Settings, *, clock: Callable[[], float] = time.time, read_only: bool = False
) -> SharedStore:
    """The store of ``settings`` (``read_only`` applies to SQLite, for commands that only look)."""
    if settings.database_url is None:
        return await Store.open(settings.state_path, clock=clock, read_only=read_only)
    return await PostgresStore.open(
        settings.database_url.get_secret_value(),
        schema=settings.store_schema,
        namespace=settings.namespace,
        password_file=settings.database_password_file,
        clock=clock,
    )
