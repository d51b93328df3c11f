"""``PostgresStore``: the state of one installation in a PostgreSQL schema, shared by its instances.

Same contract as the SQLite store (``relayd.store.protocol``): reads from the in-memory mirror, writes durable
before they return, events queried in the database. What PostgreSQL adds:

* several instances open the same schema; one leads (``try_acquire``/``renew``/``release`` on the ``leases`` row,
  decided by ``relayd.store.leases`` with the database's clock) and its writes carry its fencing epoch; the others
  may record events, report themselves in ``instances``, ``wake`` the leader (NOTIFY) and ``refresh`` their mirror
  when they take over;
* writes run in a child process (``child.py``, through the same ``ProcessWriter`` as SQLite's), so psycopg's
  per-statement work stays off the event loop; reads, leases and LISTEN/NOTIFY use a pool here;
* the pool and the writer process reconnect with backoff after a restart or an outage; meanwhile writes fail with
  StoreWriteError (like a full disk) and reads of events with StoreError, and nothing crashes;
* the password (from the URL, ``PGPASSWORD`` or a file) is never in a log line or an error: ``location`` is the
  URL without it, and every database message is scrubbed of it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from relayd.backoff import Backoff
from relayd.ids import ScheduleId
from relayd.store.dsn import redact_dsn, url_password, with_password
from relayd.store.errors import FencedError, StoreError, StoreWriteError
from relayd.store.leases import InstanceInfo, Lease, Role, claim, extend, give_up
from relayd.store.mirror import MirroredStore
from relayd.store.postgres import child as writer_child
from relayd.store.postgres import schema as pg_schema
from relayd.store.postgres.child import CONNECT_TIMEOUT_S, FENCED, environmental
from relayd.store.sql import POSTGRES
from relayd.store.writer import Outcome, Rows
from relayd.store.writer_process import Child, ProcessWriter

log = structlog.get_logger("relayd.store")
Conn = psycopg.AsyncConnection[Any]

LISTEN_BACKOFF = Backoff(base=0.5, factor=2.0, cap=30.0)
_NOW = "SELECT extract(epoch FROM clock_timestamp())::double precision"
_HEARTBEAT = (
    "INSERT INTO instances (instance_id, role, heartbeat_at, lease_expires_at) "
    "VALUES (%s, %s, extract(epoch FROM clock_timestamp()), %s) ON CONFLICT (instance_id) DO UPDATE SET "
    "role = excluded.role, heartbeat_at = excluded.heartbeat_at, lease_expires_at = excluded.lease_expires_at"
)


class PostgresStore(MirroredStore):
    """See the module docstring. Build with ``await PostgresStore.open(url, schema=..., namespace=...)``."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        conninfo: str,
        location: str,
        loaded: tuple[Any, Any, Any],
        *,
        schema_name: str,
        namespace: str,
        clock: Callable[[], float],
        batch_max: int,
    ) -> None:
        super().__init__(location, POSTGRES, loaded, clock=clock)
        self.schema = schema_name
        self.namespace = namespace
        self.schema_version = 0
        self.epoch = 0
        """The fencing epoch this store's writes carry: 0 until ``try_acquire`` succeeds."""
        self._pool = pool
        self._conninfo = conninfo
        self._password = url_password(conninfo)
        self._channel = f"relayd_wake_{schema_name}"[:63]
        child = Child(
            ("-I", writer_child.__file__),
            (conninfo, schema_name, namespace, POSTGRES.reread, ((POSTGRES.insert_event,), (POSTGRES.prune_events,)),
             pg_schema.BULK),
            f"relayd state in {location}", self._start_error, context=lambda: self.epoch,
        )  # fmt: skip
        self._writer = ProcessWriter(
            child, asyncio.get_running_loop(), batch_max=batch_max, settle=self._settle_child, reread=self._reread
        )

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        schema: str,
        namespace: str,
        password_file: Path | None = None,
        clock: Callable[[], float] = time.time,
        batch_max: int = 1000,
        pool_max: int = 4,
    ) -> PostgresStore:
        """Connect, migrate ``schema`` and load the mirror; StoreError naming the server (never the password)."""
        conninfo = with_password(url, password_file)
        location = f"{redact_dsn(url)} (schema {schema})"
        pool = _pool(conninfo, schema, pool_max)
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S * 2)
            async with pool.connection(timeout=CONNECT_TIMEOUT_S) as conn:
                version = await pg_schema.migrate(conn, schema)
                loaded = await pg_schema.load(conn)
        except (psycopg.Error, PoolTimeout, OSError) as exc:
            await pool.close()
            reason = _scrub(str(exc) or type(exc).__name__, url_password(conninfo))
            raise StoreError(f"cannot open relayd state in {location}: {reason} — {_REACH}") from None
        except BaseException:
            await pool.close()
            raise
        store = cls(pool, conninfo, location, loaded, schema_name=schema, namespace=namespace, clock=clock,
                    batch_max=batch_max)  # fmt: skip
        store.schema_version = version
        await store._writer.start()
        log.info("store_opened", location=location, schema_version=version, segments=len(loaded[0]))
        return store

    async def refresh(self) -> None:
        """Reload the mirror from the database (a standby taking over: the old leader wrote meanwhile)."""
        await self.flush()
        async with self._connection() as conn:
            segments, applied, meta = await pg_schema.load(conn)
        self._replace_mirror(segments, applied, meta)

    # -- backend hooks -------------------------------------------------------------------------------------------

    async def _close_backend(self) -> None:
        await self._pool.close()

    def _write_error(self, exc: BaseException) -> StoreWriteError:
        if isinstance(exc, StoreWriteError):
            return exc
        return StoreWriteError(f"cannot write relayd state in {self.location}: {self._describe(exc)}")

    def _start_error(self, exc: BaseException) -> StoreError:
        return StoreError(f"cannot open relayd state in {self.location}: {self._describe(exc)}")

    def _settle_child(self, outcome: Outcome) -> None:
        """The writer process's outcome, its fenced writes' failures made FencedError (it cannot import that)."""
        for index, failure in outcome.failures.items():
            if isinstance(failure, str) and failure == FENCED:
                outcome.failures[index] = self._fenced_error()
        self._settle(outcome)

    def _fenced_error(self) -> FencedError:
        return FencedError(
            f"write refused: this instance's lease epoch {self.epoch} is not the newest for namespace "
            f"{self.namespace!r}; another instance leads now — stop acting on the platform"
        )

    async def _reread(self, keys: list[tuple[str, str]]) -> Rows | None:
        """The stored rows of these entries (None: no row), after the writer process died; None if unreadable."""
        rows: Rows = {}
        try:
            async with self._connection() as conn:
                for table, key in keys:
                    row = await (await conn.execute(POSTGRES.reread[table], (key,))).fetchone()
                    rows[(table, key)] = None if row is None else tuple(row)
        except (psycopg.Error, PoolTimeout, OSError):
            return None
        return rows

    def _describe(self, exc: BaseException) -> str:
        reason = _scrub(str(exc) or type(exc).__name__, self._password)
        return f"{reason} — {_REACH}" if environmental(exc) else reason

    async def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            async with self._connection() as conn:
                cur = await conn.execute(sql, params)
                return [tuple(row) for row in await cur.fetchall()]
        except (psycopg.Error, PoolTimeout, OSError) as exc:
            raise StoreError(f"cannot read relayd state in {self.location}: {self._describe(exc)}") from None

    def _connection(self) -> Any:
        return self._pool.connection(timeout=CONNECT_TIMEOUT_S)

    # -- leadership ----------------------------------------------------------------------------------------------

    async def try_acquire(self, instance_id: str, ttl_s: float) -> Lease | None:
        """Take (or keep) the lease for ``ttl_s`` seconds by the database's clock; None while another holds it.

        On success this store's writes carry the lease's epoch from now on."""
        lease = await self._change_lease(lambda current, now: claim(current, instance_id, ttl_s, now))
        if lease is not None:
            self.epoch = lease.epoch
        return lease

    async def renew(self, lease: Lease, ttl_s: float) -> Lease | None:
        """Extend ``lease``; None when it lapsed or another instance took it (stop acting at once)."""
        return await self._change_lease(lambda current, now: extend(current, lease, ttl_s, now))

    async def release(self, lease: Lease) -> None:
        """Hand the lease back so a standby can take it without waiting for it to lapse."""
        await self._change_lease(lambda current, now: give_up(current, lease, now))

    async def _change_lease(self, rule: Callable[[Lease | None, float], Lease | None]) -> Lease | None:
        async with self._connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO leases (namespace, holder, epoch, expires_at) VALUES (%s, '', 0, 0) "
                "ON CONFLICT (namespace) DO NOTHING",
                (self.namespace,),
            )
            cur = await conn.execute(
                "SELECT holder, epoch, expires_at FROM leases WHERE namespace = %s FOR UPDATE", (self.namespace,)
            )
            row = await cur.fetchone()
            current = None if row is None or row[1] == 0 else Lease(str(row[0]), int(row[1]), float(row[2]))
            now = await _now(conn)
            changed = rule(current, now)
            if changed is not None and changed != current:
                await conn.execute(
                    "UPDATE leases SET holder = %s, epoch = %s, expires_at = %s WHERE namespace = %s",
                    (changed.holder, changed.epoch, changed.expires_at, self.namespace),
                )
        return changed

    async def heartbeat(self, instance_id: str, role: Role, lease_expires_at: float | None) -> None:
        """Record that ``instance_id`` is alive in ``role`` (database clock), for status."""
        async with self._connection() as conn:
            await conn.execute(_HEARTBEAT, (instance_id, role.value, lease_expires_at))
        self._writes_answered()

    async def instances(self) -> list[InstanceInfo]:
        rows = await self._read(
            "SELECT instance_id, role, heartbeat_at, lease_expires_at FROM instances ORDER BY instance_id", ()
        )
        return [InstanceInfo(str(r[0]), Role(r[1]), float(r[2]), None if r[3] is None else float(r[3])) for r in rows]

    async def wake(self, schedule_id: ScheduleId) -> None:
        """Ask whoever listens (the leader) to look at ``schedule_id`` soon (NOTIFY; lost if nobody listens)."""
        async with self._connection() as conn:
            await conn.execute("SELECT pg_notify(%s, %s)", (self._channel, schedule_id))

    async def wakes(self) -> AsyncIterator[ScheduleId]:
        """Schedule ids from ``wake`` on any instance, as they come; reconnects with backoff, never raises on an
        outage (wake-ups sent while disconnected are lost: the leader's periodic resync covers them)."""
        attempt = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
                    await conn.execute(f'LISTEN "{self._channel}"')
                    attempt = 0
                    async for notify in conn.notifies():
                        yield ScheduleId(notify.payload)
            except (psycopg.Error, OSError) as exc:
                attempt += 1
                delay = LISTEN_BACKOFF.ceiling(attempt)
                log.warning("store_listen_lost", location=self.location, reason=self._describe(exc),
                            retry_in_s=round(delay, 1))  # fmt: skip
                await asyncio.sleep(delay)


_REACH = "check that PostgreSQL is running and reachable and the credentials are right; relayd reconnects by itself"


async def _now(conn: Conn) -> float:
    row = await (await conn.execute(_NOW)).fetchone()
    assert row is not None
    return float(row[0])


def _pool(conninfo: str, schema_name: str, size: int) -> AsyncConnectionPool[Any]:
    return AsyncConnectionPool(
        conninfo,
        kwargs={"autocommit": True, "options": f"-c search_path={schema_name}", "connect_timeout": 10},
        min_size=1,
        max_size=max(2, size),
        open=False,
        check=AsyncConnectionPool.check_connection,  # a connection broken by a server restart is replaced, not used
        timeout=CONNECT_TIMEOUT_S,
        reconnect_timeout=float("inf"),
        name="relayd-store",
    )


def _scrub(text: str, password: str | None) -> str:
    return text.replace(password, "***") if password else text
