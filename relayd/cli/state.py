"""``relayd state migrate --to URL``: copy the state of a stopped installation to another store.

The source is the store the settings name (``state_path``, or ``database_url`` when set); the target is a
``postgresql://`` URL or a SQLite file path. The copy refuses to run while the source is in use (its lock, or its
lease) and into a target that already holds state; see ``relayd.store.migration``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import click

from relayd.cli.config import _config_option, _load
from relayd.settings import Settings
from relayd.store import Lease, SharedStore, Store, StoreError
from relayd.store.dsn import is_postgres, redact_dsn
from relayd.store.migration import Copied, copy_state
from relayd.store.opening import open_store
from relayd.store.postgres import PostgresStore

EXIT_FAILED = 1
MIGRATE_HOLDER = "relayd-state-migrate"
HOLD_S = 3600.0


@click.group("state")
def state_group() -> None:
    """The state store: migrate between SQLite and PostgreSQL."""


@state_group.command("migrate")
@_config_option
@click.option("--to", "target", required=True, help="postgresql://… URL, or the path of a new SQLite state file.")
@click.option("--schema", default=None, help="PostgreSQL schema of the target (default: database_schema).")
def migrate_command(config_file: Path | None, target: str, schema: str | None) -> None:
    """Copy the state of this (stopped) installation to TARGET; the target must be empty."""
    settings = _load(config_file)
    try:
        copied = asyncio.run(_migrate(settings, target, schema))
    except StoreError as error:  # StoreLockedError too: the daemon runs on the source
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_FAILED)
    shown = redact_dsn(target) if is_postgres(target) else target
    click.echo(
        f"copied {copied.segments} segments, {copied.applied} applied schedules, {copied.meta} meta values and "
        f"{copied.events} events to {shown}; point relayd at it (database_url or state_path) and start it"
    )


async def _migrate(settings: Settings, target: str, schema: str | None) -> Copied:
    async with _source(settings) as source, _target(settings, target, schema) as destination:
        return await copy_state(source, destination)


@contextlib.asynccontextmanager
async def _source(settings: Settings) -> AsyncIterator[SharedStore]:
    if settings.database_url is None and not settings.state_path.exists():
        raise StoreError(f"there is no relayd state file at {settings.state_path}: check state_path")
    store = await open_store(settings)  # SQLite: takes the lock, so a running daemon refuses the copy
    try:
        lease = await _hold(store)
        yield store
        await store.release(lease)
    finally:
        await store.close()


async def _hold(store: SharedStore) -> Lease:
    """Take the source's lease for the copy: an instance leading right now means it is not stopped."""
    lease = await store.try_acquire(MIGRATE_HOLDER, HOLD_S)
    if lease is None:
        raise StoreError(
            f"an instance of relayd leads on {store.location} (it holds the lease); stop every instance first"
        )
    return lease


@contextlib.asynccontextmanager
async def _target(settings: Settings, target: str, schema: str | None) -> AsyncIterator[SharedStore]:
    store: SharedStore
    if is_postgres(target):
        store = await PostgresStore.open(target, schema=schema or settings.store_schema, namespace=settings.namespace,
                                         password_file=settings.database_password_file)  # fmt: skip
    else:
        store = await Store.open(Path(target))
    try:
        yield store
    finally:
        await store.close()


COMMANDS = [state_group]
