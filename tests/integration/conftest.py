"""Integration fixtures: in-process emulators on free ports, and a raw signed-request client.

* ``emulator``: a factory ``await emulator(**config_overrides) -> Emulator`` (EmulatorConfig fields); every
  emulator it started is stopped at teardown.
* ``emulator_url``: the URL of one default emulator with the admin API on.
* ``raw``: a factory ``raw(emulator, access_key=..., secret_key=...) -> RawClient`` that signs requests with
  :mod:`relayd.volc.signer` exactly like the SDK, for tests that bypass the relayd client.
* ``sink``: a callback receiver on a free port (``.url``, ``.bodies``, ``await .wait_for(predicate)``).
* ``postgres``: one real PostgreSQL server for the session (``.url``, ``.stop()``, ``.start()``); ``pg_schema``: a
  fresh schema name per test, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import psycopg
import psycopg.sql
import pytest
from aiohttp import web
from yarl import URL

from relayd.emulator import Emulator, EmulatorConfig
from relayd.volc import signer
from tests.integration.postgres import PostgresServer, bin_dir

EmulatorFactory = Callable[..., Awaitable[Emulator]]


@pytest.fixture
async def emulator() -> AsyncIterator[EmulatorFactory]:
    started: list[Emulator] = []

    async def make(**overrides: Any) -> Emulator:
        instance = Emulator(EmulatorConfig(**overrides))
        await instance.start("127.0.0.1", 0)
        started.append(instance)
        return instance

    yield make
    for instance in reversed(started):
        await instance.stop()


@pytest.fixture
async def emulator_url(emulator: EmulatorFactory) -> str:
    return (await emulator(admin=True)).url


@dataclass
class Reply:
    status: int
    body: dict[str, Any]

    @property
    def error(self) -> dict[str, Any] | None:
        error: dict[str, Any] | None = self.body.get("ResponseMetadata", {}).get("Error")
        return error

    @property
    def code(self) -> str | None:
        return self.error["Code"] if self.error else None

    @property
    def result(self) -> Any:
        return self.body.get("Result")


@dataclass
class RawClient:
    """Signs and sends one platform request; every knob of the signature can be bent for negative tests."""

    session: aiohttp.ClientSession
    url: str
    access_key: str
    secret_key: str
    region: str = "cn-north-1"
    extra_headers: dict[str, str] = field(default_factory=dict)

    async def call(
        self,
        action: str,
        body: Mapping[str, Any] | None = None,
        *,
        method: str = "POST",
        query: Mapping[str, Any] | None = None,
        version: str = "2023-01-01",
        now: datetime | None = None,
        raw_body: bytes | None = None,
        sign: bool = True,
        tamper: Callable[[dict[str, str]], None] | None = None,
    ) -> Reply:
        pairs = [("Action", action), ("Version", version), *((k, str(v)) for k, v in (query or {}).items())]
        data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else b"")
        headers = {"Host": urlsplit(self.url).netloc, **self.extra_headers}
        if method != "GET":
            headers["Content-Type"] = "application/json"
        if sign:
            creds = signer.Credentials(self.access_key, self.secret_key, region=self.region)
            headers = signer.sign(
                method=method,
                path="/",
                query=pairs,
                headers=headers,
                body=data,
                credentials=creds,
                now=now or datetime.now(UTC),
            )
        if tamper is not None:
            tamper(headers)
        target = URL(f"{self.url}/?{urlencode(pairs)}", encoded=True)
        async with self.session.request(method, target, data=data or None, headers=headers) as resp:
            return Reply(resp.status, await resp.json(content_type=None))


@pytest.fixture
async def raw() -> AsyncIterator[Callable[..., RawClient]]:
    async with aiohttp.ClientSession() as session:

        def make(instance: Emulator, **overrides: Any) -> RawClient:
            fields: dict[str, Any] = {
                "access_key": instance.config.access_key,
                "secret_key": instance.config.secret_key,
                **overrides,
            }
            return RawClient(session=session, url=instance.url, **fields)

        yield make


class Sink:
    """An HTTP endpoint that records the JSON bodies POSTed to it and answers from a status script."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # consumed one per request; 200 once empty
        self.url = ""
        self._changed = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        status = self.statuses.pop(0) if self.statuses else 200
        async with self._changed:
            self.bodies.append({**body, "_content_type": request.content_type, "_status": status})
            self._changed.notify_all()
        return web.Response(status=status)

    async def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: predicate(self.bodies))

    def events(self, task_id: str | None = None) -> list[str]:
        """EventTypes of the deliveries answered 200, in arrival order."""
        return [b["EventType"] for b in self.bodies if b["_status"] == 200 and task_id in (None, b["TaskId"])]


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    receiver = Sink()
    app = web.Application()
    app.router.add_post("/cb", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/cb"
    yield receiver
    await runner.cleanup()


# -- PostgreSQL --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the session (see ``tests/integration/postgres.py``); skipped where it is not
    installed (``scripts/debian-packages.txt`` lists it, so CI has it). Its directory is not under pytest's
    temporary root, which is private to root while the server may run as ``postgres``."""
    bindir = bin_dir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="relayd-pg-"))
    try:
        server = PostgresServer(root, bindir)
        server.init()
        yield server
        with contextlib.suppress(RuntimeError):  # already stopped (a test of an outage that failed midway)
            server.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_schema(postgres: PostgresServer) -> Iterator[str]:
    """A fresh schema name per test (each installation lives in its own schema); dropped afterwards."""
    name = f"t{uuid.uuid4().hex[:12]}"
    yield name
    try:
        with psycopg.connect(postgres.url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(psycopg.sql.Identifier(name)))
    except psycopg.OperationalError:
        pass  # a test that stopped the server restarts it; if it did not, the schema goes with the server
